"""ros2_ctxpose against MediaPipe BlazePose: accuracy, people found and speed, in one run.

    python benchmarks/peer_mediapipe.py [--out-dir output/peer] [--max-frames 0]

Both methods see the same decoded frames on the same CPU, one after the other (never at once, so
neither slows the other):
- the annotated frames of ../shared/data/images (h36m, mpi_inf_3dhp, gta_im) for accuracy,
- those frames plus coco/bus.jpg and coco/zidane.jpg for people found per image,
- Sports2D's demo.mp4 (two people walking; from the sports2d wheel) for people per frame and speed.

BlazePose (mediapipe 0.10.21, ``mp.solutions.pose``, model_complexity=1) runs in ``.venv-mediapipe``
(scripts/setup_mediapipe.sh) through benchmarks/mediapipe_runner.py, which writes JSON; all scoring
happens here so both are scored by the same code. Images run BlazePose in ``static_image_mode``,
the video in its tracking mode; ros2_ctxpose detects afresh on every frame in both.

Accuracy is measured on the 12 joints both methods estimate (shoulders, elbows, wrists, hips,
knees, ankles), matched to each dataset's ground truth through ``core.joint_sets``: MPJPE after
aligning the mid-hips (BlazePose has no pelvis joint; its world landmarks are hip-centred metres in
the camera's orientation, x right, y down, z away from the camera, checked against the H36M frames)
and PA-MPJPE after a similarity alignment. Latency is per frame, decode excluded for both.
Outputs: a table on stdout, ``peer_mediapipe.json`` and ``peer_mediapipe.png`` in ``--out-dir``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ros2_ctxpose.benchmarking import format_table, summarize, write_json
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.evaluation import annotation_camera, match_person, pose_errors
from ros2_ctxpose.core.joint_sets import JOINT_SETS, JointSetMapping
from ros2_ctxpose.core.media import iter_frames, read_image
from ros2_ctxpose.core.skeleton import H36M17

ROOT: Final[Path] = Path(__file__).resolve().parents[1]
RUNNER: Final[Path] = Path(__file__).with_name("mediapipe_runner.py")
PEER_PYTHON: Final[Path] = ROOT / ".venv-mediapipe" / "bin" / "python"
#: Joints both methods estimate, named alike by BlazePose's landmarks and H36M-17.
PEER_JOINTS: Final[tuple[str, ...]] = (
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
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
    return JointSetMapping(name=f"{mapping.name}/peer", joints=mapping.joints, compared=compared,
                           root=tuple((hips[h], h) for h in ("left_hip", "right_hip")),
                           note="the 12 limb joints BlazePose also estimates; root = mid-hip")


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
    document = json.loads((images_dir / "annotations.json").read_text())
    items = []
    for entry in document["images"]:
        folder = Path(entry["file"]).parts[0]
        if folder not in ACCURACY_DATASETS or not entry.get("joints_3d_cam_m"):
            continue
        path = images_dir / entry["file"]
        height, width = read_image(path).shape[:2]
        items.append(Annotated(path, folder, annotation_camera(entry, width, height),
                               peer_mapping(JOINT_SETS[entry["joint_names"]]),
                               np.asarray(entry["joints_3d_cam_m"], np.float64),
                               np.asarray(entry["joints_2d_px"], np.float64)))
    return items


def demo_video() -> Path:
    """Sports2D's demo footage, from the sports2d wheel installed (no deps) into .venv."""
    path = Path(str(importlib.resources.files("Sports2D") / "Demo" / "demo.mp4"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; install /tmp/dl/sports2d-0.8.34-py3-none-any.whl with --no-deps")
    return path


def run_blazepose(images: list[Path], video: Path, max_frames: int, warmup: int) -> dict[str, Any]:
    """Run mediapipe_runner.py in .venv-mediapipe and return its JSON."""
    if not PEER_PYTHON.is_file():  # first run: build the peer's own venv (pinned, idempotent)
        subprocess.run(["bash", str(ROOT / "scripts" / "setup_mediapipe.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        jobs, out = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jobs.write_text(json.dumps({"images": [str(p) for p in images], "video": str(video),
                                    "max_frames": max_frames, "warmup": warmup, "model_complexity": 1}))
        completed = subprocess.run([str(PEER_PYTHON), str(RUNNER), "--jobs", str(jobs), "--out", str(out)],
                                   capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"mediapipe_runner failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
        return json.loads(out.read_text())


def run_ours(pipeline: Any, images: list[Path], cameras: dict[Path, CameraModel], video: Path,
             max_frames: int, warmup: int, hfov_deg: float) -> dict[str, list[dict[str, Any]]]:
    """ros2_ctxpose on the same frames: people (2D keypoints, 3D joints) and per-frame latency."""
    def timed(image: np.ndarray, camera: CameraModel) -> tuple[Any, float]:
        start = time.perf_counter()
        result = pipeline(image, camera)
        return result, (time.perf_counter() - start) * 1000.0

    def item(source: str, result: Any, latency: float) -> dict[str, Any]:
        return {"source": source, "latency_ms": latency,
                "people": [{"keypoints_2d": np.asarray(p.keypoints_2d), "joints_3d": np.asarray(p.joints_3d)}
                           for p in result.people]}

    decoded = [(path, read_image(path)) for path in images]
    camera_of = {path: cameras.get(path) or CameraModel.from_fov(img.shape[1], img.shape[0], hfov_deg)
                 for path, img in decoded}
    for _ in range(warmup):
        timed(decoded[0][1], camera_of[decoded[0][0]])
    out: dict[str, list[dict[str, Any]]] = {"images": [], "video": []}
    for path, image in decoded:
        out["images"].append(item(str(path), *timed(image, camera_of[path])))
    camera = None
    for frame in iter_frames([video]):
        if frame.image is None:
            raise RuntimeError(f"cannot read {frame.name}: {frame.error}")
        if max_frames > 0 and len(out["video"]) >= max_frames:
            break
        camera = camera or CameraModel.from_fov(frame.image.shape[1], frame.image.shape[0], hfov_deg)
        result, latency = timed(frame.image, camera)
        if frame.index >= warmup:
            out["video"].append(item(frame.name, result, latency))
    return out


def score(annotated: list[Annotated], ours: list[dict[str, Any]], peer: list[dict[str, Any]],
          landmark_names: list[str]) -> list[dict[str, Any]]:
    """Per-image errors of both methods (core.evaluation's); a method that found nobody gets None.

    ros2_ctxpose is scored on the detected person closest in 2D to the annotation (as
    ``ctxpose eval`` does); BlazePose reports at most one person, which is scored as it is.
    """
    ours_by, peer_by = {i["source"]: i for i in ours}, {i["source"]: i for i in peer}
    rows = []
    for a in annotated:
        row: dict[str, Any] = {"image": f"{a.path.parent.name}/{a.path.name}", "dataset": a.dataset}
        people = ours_by[str(a.path)]["people"]
        match = match_person(np.array([p["keypoints_2d"] for p in people]).reshape(-1, 17, 3),
                             a.joints_2d, a.mapping)
        found = peer_by.get(str(a.path), {})
        pred = {"ros2_ctxpose": None if match is None else people[match[0]]["joints_3d"],
                "blazepose": blazepose_as_h36m(np.asarray(found["world"]), landmark_names)
                if found.get("found") else None}
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
    mean = (lambda key: float(np.mean([s[key] for s in scored])) if scored else None)
    return {"images": len(chosen), "found": len(scored), "mpjpe_mm": mean("mpjpe_mm"),
            "pa_mpjpe_mm": mean("pa_mpjpe_mm")}


def people_counts(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> dict[str, list[int]]:
    return {"ros2_ctxpose": [len(i["people"]) for i in ours], "blazepose": [int(i["found"]) for i in peer]}


def report(results: dict[str, Any]) -> str:
    acc_rows = []
    for dataset in (*ACCURACY_DATASETS, None):
        for method in METHODS:
            a = results["accuracy"][dataset or "all"][method]
            acc_rows.append((dataset or "all", method, f"{a['found']}/{a['images']}", a["mpjpe_mm"], a["pa_mpjpe_mm"]))
    names = results["people"]["image_names"]
    crowd_rows = [(name, expected, *(results["people"]["images"][m][names.index(name)] for m in METHODS))
                  for name, expected in COUNT_ONLY_IMAGES.items()]
    speed_rows = [(where, method, s["median_ms"], s["p90_ms"], s["fps"], results["people"][where][method])
                  for where in ("images", "video") for method in METHODS
                  for s in [results["latency"][where][method]]]
    return "\n".join([
        "Accuracy on the 12 shared joints (mm; MPJPE after mid-hip alignment)",
        format_table(("dataset", "method", "found", "MPJPE", "PA-MPJPE"), acc_rows), "",
        "People found on multi-person images",
        format_table(("image", "people in it", *METHODS), crowd_rows), "",
        "Speed per frame on this CPU (decode excluded) and people found",
        format_table(("frames", "method", "p50 ms", "p90 ms", "FPS", "people/frame (mean)"),
                     [(*r[:5], round(float(np.mean(r[5])), 2)) for r in speed_rows]),
    ])


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(METHODS, ("tab:blue", "tab:orange")))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    groups = [*ACCURACY_DATASETS, "all"]
    x = np.arange(len(groups))
    for offset, method in zip((-0.2, 0.2), METHODS):
        pa = [results["accuracy"][g][method]["pa_mpjpe_mm"] or 0.0 for g in groups]
        raw = [results["accuracy"][g][method]["mpjpe_mm"] or 0.0 for g in groups]
        axes[0].bar(x + offset, raw, 0.4, color=colours[method], alpha=0.35, label=f"{method} MPJPE (mid-hip)")
        axes[0].bar(x + offset, pa, 0.4, color=colours[method], label=f"{method} PA-MPJPE")
    axes[0].set(xticks=x, xticklabels=groups, ylabel="mm (lower is better)", title="3D error, 12 shared joints")
    axes[0].legend(fontsize=7)
    where = ("images", "video")
    for offset, method in zip((-0.2, 0.2), METHODS):
        med = [results["latency"][w][method]["median_ms"] for w in where]
        p90 = [results["latency"][w][method]["p90_ms"] for w in where]
        axes[1].bar(np.arange(2) + offset, med, 0.4, color=colours[method], label=method,
                    yerr=[np.zeros(2), np.subtract(p90, med)], capsize=4)
    axes[1].set(xticks=np.arange(2), xticklabels=where, ylabel="ms per frame (bar p50, whisker p90)",
                title="Latency on this CPU, decode excluded")
    axes[1].legend(fontsize=7)
    for method in METHODS:
        axes[2].plot(results["people"]["video"][method], color=colours[method], label=method,
                     drawstyle="steps-mid")
    axes[2].set(xlabel="demo.mp4 frame", ylabel="people found", title="People per frame of demo.mp4")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from ros2_ctxpose.core.paths import shared_data_dir
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "output" / "peer")
    parser.add_argument("--max-frames", type=int, default=0, help="video frames to time (0: all)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing, per method")
    parser.add_argument("--imgsz", type=int, default=640, help="ros2_ctxpose detector input size")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="ros2_ctxpose's device (BlazePose runs on the CPU)")
    parser.add_argument("--detector-weights", type=Path, default=None)
    parser.add_argument("--lifter-weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for ros2_ctxpose (default: torch's)")
    parser.add_argument("--hfov", type=float, default=60.0,
                        help="horizontal FOV assumed for frames without intrinsics (coco, demo video)")
    args = parser.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        images_dir = shared_data_dir() / "data" / "images"
        annotated = load_annotated(images_dir)
        count_only = [images_dir / name for name in COUNT_ONLY_IMAGES]
        video = demo_video()
        images = [a.path for a in annotated] + count_only
        peer = run_blazepose(images, video, args.max_frames, args.warmup)
        pipeline = Pose3DPipeline.create(detector_weights=args.detector_weights,
                                          lifter_weights=args.lifter_weights, device=args.device,
                                          imgsz=args.imgsz)
        ours = run_ours(pipeline, images, {a.path: a.camera for a in annotated}, video,
                        args.max_frames, args.warmup, args.hfov)
    except (FileNotFoundError, RuntimeError, OSError) as error:
        print(f"peer_mediapipe: {error}", file=sys.stderr)
        return 1

    rows = score(annotated, ours["images"], peer["images"], peer["landmark_names"])
    n_acc = len(annotated)
    results = {
        "peer": {"name": "MediaPipe BlazePose", "version": peer["mediapipe_version"],
                 "model_complexity": peer["model_complexity"]},
        "ours": {"imgsz": args.imgsz, "device": args.device, "threads": args.threads},
        "joints": list(PEER_JOINTS),
        "accuracy": {dataset or "all": {m: aggregate(rows, m, dataset) for m in METHODS}
                     for dataset in (*ACCURACY_DATASETS, None)},
        "per_image": rows,
        "people": {
            "images": people_counts(ours["images"], peer["images"]),
            "video": people_counts(ours["video"], peer["video"]),
            "image_names": [str(p.relative_to(images_dir)) for p in images],
            "annotated_images": n_acc,
        },
        "latency": {where: {"ros2_ctxpose": summarize(i["latency_ms"] for i in ours[where]).as_dict(),
                            "blazepose": summarize(i["latency_ms"] for i in peer[where]).as_dict()}
                    for where in ("images", "video")},
    }
    print(report(results))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.out_dir / "peer_mediapipe.json", "peer-mediapipe", results)
    print(f"wrote {args.out_dir / 'peer_mediapipe.json'}")
    try:
        plot(results, args.out_dir / "peer_mediapipe.png")
    except ImportError:
        print("peer_mediapipe: matplotlib is not installed in this environment; no chart written", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir / 'peer_mediapipe.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
