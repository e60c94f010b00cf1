"""Scoring ros2_ctxpose against MediaPipe BlazePose (benchmarks/peer_mediapipe.py): the joints both
estimate, BlazePose's landmarks as H36M-17, per-image errors, people counts and the report.

Nothing here runs a model: the script runs both methods and hands their outputs to these
functions, so the scoring is tested (test/test_bench.py) without timing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..core.annotations import read_annotations
from ..core.camera import CameraModel
from ..core.evaluation import match_person, pose_errors
from ..core.joint_sets import JOINT_SETS, JointSetMapping
from ..core.media.images import read_image
from ..core.skeleton import H36M17
from . import format_table

#: Joints both methods estimate, named alike by BlazePose's landmarks and H36M-17.
PEER_JOINTS: Final[tuple[str, ...]] = (
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
#: Folders of ../shared/data/images whose frames have 3D ground truth.
ACCURACY_DATASETS: Final[tuple[str, ...]] = ("h36m", "mpi_inf_3dhp", "gta_im")
#: Images without 3D ground truth, used for people counts: name -> people in it (../shared/README.md).
COUNT_ONLY_IMAGES: Final[dict[str, int]] = {"coco/bus.jpg": 4, "coco/zidane.jpg": 2}
METHODS: Final[tuple[str, ...]] = ("ros2_ctxpose", "blazepose")


def peer_mapping(mapping: JointSetMapping) -> JointSetMapping:
    """``mapping`` narrowed to PEER_JOINTS, rooted at the mid-hip (BlazePose has no pelvis)."""
    compared = tuple((d, h) for d, h in mapping.compared if h in PEER_JOINTS)
    if {h for _, h in compared} != set(PEER_JOINTS):
        missing = set(PEER_JOINTS) - {h for _, h in compared}
        raise ValueError(f"joint set {mapping.name} does not map {sorted(missing)} to H36M-17")
    hips = {h: d for d, h in compared if h in ("left_hip", "right_hip")}
    return JointSetMapping(
        name=f"{mapping.name}/peer",
        joints=mapping.joints,
        compared=compared,
        root=tuple((hips[h], h) for h in ("left_hip", "right_hip")),
        note="the 12 limb joints BlazePose also estimates; root = mid-hip",
    )


def blazepose_as_h36m(world: np.ndarray, landmark_names: list[str]) -> np.ndarray:
    """BlazePose's 33 world landmarks as an H36M-17 array: PEER_JOINTS filled, the rest NaN.

    Its world landmarks are hip-centred metres in the camera's orientation (x right, y down,
    z away from the camera), the camera frame the annotations use, so no axis change is needed.
    Checked on the four H36M frames: 106-188 mm mid-hip MPJPE as is, worse on every frame with
    any axis flipped (172-1114 mm).
    """
    out = np.full((len(H36M17), 3), np.nan)
    for joint in PEER_JOINTS:
        out[H36M17.index(joint)] = world[landmark_names.index(joint)]
    return out


@dataclass(frozen=True)
class Annotated:
    """One image with 3D ground truth, and the mapping that scores it on PEER_JOINTS."""

    path: Path
    dataset: str  # its folder, one of ACCURACY_DATASETS
    camera: CameraModel
    mapping: JointSetMapping
    joints_3d: np.ndarray  # (J, 3) camera metres, the dataset's layout
    joints_2d: np.ndarray  # (J, 2) pixels


def load_annotated(images_dir: Path) -> list[Annotated]:
    items = []
    for entry in read_annotations(images_dir / "annotations.json"):
        folder = Path(entry.file).parts[0]
        if folder not in ACCURACY_DATASETS or entry.truth is None:
            continue
        height, width = read_image(entry.path).shape[:2]
        items.append(
            Annotated(
                entry.path,
                folder,
                entry.camera(width, height),
                peer_mapping(JOINT_SETS[entry.truth.joint_set]),
                entry.truth.joints_3d,
                entry.truth.joints_2d,
            )
        )
    return items


def score(
    annotated: list[Annotated], ours: list[dict[str, Any]], peer: list[dict[str, Any]], landmark_names: list[str]
) -> list[dict[str, Any]]:
    """Per-image errors of both methods (core.evaluation's); a method that found nobody gets None.

    ros2_ctxpose is scored on the detected person closest in 2D to the annotation (as
    ``ctxpose eval`` does); BlazePose reports at most one person, which is scored as it is.
    """
    ours_by, peer_by = {i["source"]: i for i in ours}, {i["source"]: i for i in peer}
    rows = []
    for a in annotated:
        row: dict[str, Any] = {"image": f"{a.path.parent.name}/{a.path.name}", "dataset": a.dataset}
        people = ours_by[str(a.path)]["people"]
        match = match_person(np.array([p["keypoints_2d"] for p in people]).reshape(-1, 17, 3), a.joints_2d, a.mapping)
        found = peer_by.get(str(a.path), {})
        pred = {
            "ros2_ctxpose": None if match is None else people[match[0]]["joints_3d"],
            "blazepose": blazepose_as_h36m(np.asarray(found["world"]), landmark_names) if found.get("found") else None,
        }
        for method, joints in pred.items():
            if joints is None:
                row[method] = None
            else:
                errors = pose_errors(joints, a.joints_3d, a.mapping)
                row[method] = {"mpjpe_mm": errors.mpjpe_mm, "pa_mpjpe_mm": errors.pa_mpjpe_mm}
        rows.append(row)
    return rows


def aggregate(rows: list[dict[str, Any]], method: str, dataset: str | None) -> dict[str, Any]:
    chosen = [r for r in rows if dataset in (None, r["dataset"])]
    scored = [r[method] for r in chosen if r[method] is not None]

    def mean(key):
        return float(np.mean([s[key] for s in scored])) if scored else None

    return {
        "images": len(chosen),
        "found": len(scored),
        "mpjpe_mm": mean("mpjpe_mm"),
        "pa_mpjpe_mm": mean("pa_mpjpe_mm"),
    }


def people_counts(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> dict[str, list[int]]:
    return {"ros2_ctxpose": [len(i["people"]) for i in ours], "blazepose": [int(i["found"]) for i in peer]}


def fps_ratios(latency: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    """ros2_ctxpose's FPS over BlazePose's, per frame set ("images", "video"): above 1 = faster."""
    return {where: latency[where]["ros2_ctxpose"]["fps"] / latency[where]["blazepose"]["fps"] for where in latency}


def report(results: dict[str, Any]) -> str:
    acc_rows = []
    for dataset in (*ACCURACY_DATASETS, None):
        for method in METHODS:
            a = results["accuracy"][dataset or "all"][method]
            acc_rows.append((dataset or "all", method, f"{a['found']}/{a['images']}", a["mpjpe_mm"], a["pa_mpjpe_mm"]))
    names = results["people"]["image_names"]
    crowd_rows = [
        (name, expected, *(results["people"]["images"][m][names.index(name)] for m in METHODS))
        for name, expected in COUNT_ONLY_IMAGES.items()
    ]
    speed_rows = [
        (where, method, s["median_ms"], s["p90_ms"], s["fps"], results["people"][where][method])
        for where in ("images", "video")
        for method in METHODS
        for s in [results["latency"][where][method]]
    ]
    return "\n".join(
        [
            "Accuracy on the 12 shared joints (mm; MPJPE after mid-hip alignment)",
            format_table(("dataset", "method", "found", "MPJPE", "PA-MPJPE"), acc_rows),
            "",
            "People found on multi-person images",
            format_table(("image", "people in it", *METHODS), crowd_rows),
            "",
            "Speed per frame on this CPU (decode excluded) and people found",
            format_table(
                ("frames", "method", "p50 ms", "p90 ms", "FPS", "people/frame (mean)"),
                [(*r[:5], round(float(np.mean(r[5])), 2)) for r in speed_rows],
            ),
            "FPS ratio ros2_ctxpose / BlazePose: "
            + ", ".join(f"{where} {ratio:.2f}x" for where, ratio in fps_ratios(results["latency"]).items())
            + (
                f" (ros2_ctxpose: {ours['backend']} {ours['precision']}, imgsz {ours['imgsz']}, {ours['device']})"
                if (ours := results.get("ours")) and "backend" in ours
                else ""
            ),
        ]
    )
