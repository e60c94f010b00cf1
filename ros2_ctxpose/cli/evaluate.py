"""``ctxpose eval``: MPJPE, PA-MPJPE and root error (mm) per dataset on annotated images.

Reads an annotations.json (as in ../shared/data/images: per image ``file``, ``dataset``, ``K``,
``dist_k``/``dist_p``, ``joint_names``, ``joints_3d_cam_m``, ``joints_2d_px``), runs the full
pipeline with each image's own calibration, matches each annotation to the detected person whose
2D keypoints are closest, and compares the joints that ``core/joint_sets.py`` declares comparable
(printed per dataset, with the root used). Images without 3D ground truth are skipped.

Records that carry the camera's extrinsics ``R`` and ``T`` (Human3.6M's convention X_cam = R^T
(X_world - T), metres, world z up with the floor at z = 0), or whose ``subject``/``camera`` is
found in ``--cameras FILE`` (``../shared/data/h36m/cameras.json``), are also run floor-aware
(``Pose3DPipeline(..., floor_from_camera=)``): the "floor-aware" rows give MPJPE and absolute
root error of the same people with and without the floor.

Records that carry ``R``, ``T`` and ``instant`` (the views of one instant share it; ``person``
tells its people apart) are also fused per instant: the "fused views" rows (``fused_rows.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config_args import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from ..core.annotations import AnnotatedImage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="MPJPE / PA-MPJPE / root error on annotated images",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("annotations", type=Path, help="annotations.json")
    parser.add_argument(
        "--images-root",
        type=Path,
        default=None,
        help="folder the image paths are relative to (default: the annotations' folder)",
    )
    parser.add_argument(
        "--cameras",
        type=Path,
        default=None,
        help="extrinsics by 'subject/camera' (Human3.6M cameras.json) for records without R and T: "
        "adds the floor-aware rows",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write per-image and per-dataset figures here")
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if "mpjpe_mm" in r]
    out: dict[str, Any] = {"images": len(rows), "matched": len(scored)}
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "root_error_mm"):
        out[key] = float(np.mean([r[key] for r in scored])) if scored else None
    return out


def _floor_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Means over the people scored both ways (None when no record had a floor)."""
    both = [r for r in rows if "mpjpe_mm" in r and "floor" in r]
    if not both:
        return None
    out: dict[str, Any] = {"matched": len(both), "on_floor": sum(r["floor"]["root_source"] == "floor" for r in both)}
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "root_error_mm"):
        out[key] = float(np.mean([r[key] for r in both]))
        out[f"floor_{key}"] = float(np.mean([r["floor"][key] for r in both]))
    return out


def _floor_of(entry: AnnotatedImage, cameras: dict[str, Any]) -> np.ndarray | None:
    """The record's ``floor_from_camera``: its own R and T, else ``--cameras`` by subject/camera."""
    from ..core.floor import floor_from_extrinsics

    if entry.has_extrinsics:
        return floor_from_extrinsics(entry.R, entry.T)
    found = cameras.get(f"{entry.subject}/{entry.camera_name}")
    return None if found is None else floor_from_extrinsics(found["R"], found["T"])


def _keypoints(result: Any) -> np.ndarray:
    """(N, 17, 3) detected keypoints of a FrameResult's people."""
    return np.array([p.keypoints_2d for p in result.people]).reshape(-1, 17, 3)


def run(args: argparse.Namespace) -> int:
    from ..core.annotations import read_annotations
    from ..core.evaluation import match_person, pose_errors
    from ..core.joint_sets import JOINT_SETS
    from ..core.media.frame import MediaError
    from ..core.media.images import read_image
    from ..core.pipeline import Pose3DPipeline
    from .fused_rows import FusedViews, print_rows
    from .fused_rows import fmt_mm as _fmt

    try:
        data = read_annotations(args.annotations, args.images_root)
        unknown = data.joint_sets_used() - set(JOINT_SETS)
        if unknown:
            raise ValueError(f"joint sets without a mapping to H36M-17: {sorted(unknown)}")
        for name, joints in data.joint_sets.items():
            if name in JOINT_SETS and joints != JOINT_SETS[name].joints:
                raise ValueError(f"joint set {name!r} differs from core/joint_sets.py's")
        cameras = json.loads(args.cameras.read_text()) if args.cameras is not None else {}
        if not isinstance(cameras, dict):
            raise ValueError(f"--cameras {args.cameras}: expected a mapping of 'subject/camera' to R and T")
        pipeline = Pose3DPipeline.from_config(config_from_args(args))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"ctxpose eval: {exc}", file=sys.stderr)
        return 2
    per_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    set_of: dict[str, str] = {}
    skipped = []
    fused_views = FusedViews()
    for entry in data:
        truth = entry.truth
        if truth is None:
            skipped.append(entry.file)
            continue
        mapping = JOINT_SETS[truth.joint_set]
        set_of[entry.dataset] = mapping.name
        row: dict[str, Any] = {"file": entry.file}
        per_dataset[entry.dataset].append(row)
        try:
            image = read_image(entry.path, pipeline.config.max_image_pixels)
            camera = entry.camera(image.shape[1], image.shape[0])
            floor = _floor_of(entry, cameras)
            result = pipeline(image, camera)
            on_floor = pipeline(image, camera, floor_from_camera=floor) if floor is not None else None
        except (OSError, MediaError, ValueError) as exc:
            print(f"ctxpose eval: {entry.file}: {exc}", file=sys.stderr)
            row["error"] = str(exc)
            continue
        entry_2d = truth.joints_2d
        match = match_person(_keypoints(result), entry_2d, mapping)
        fused_views.add(entry, mapping, result.people, None if match is None else match[0])
        if match is None:
            row["missed"] = True  # a result (counted as not matched), not a failure
            continue
        person = result.people[match[0]]
        gt = truth.joints_3d
        errors = pose_errors(person.joints_3d, gt, mapping)
        row.update(match_px=round(match[1], 1), root_source=person.root_source, **asdict(errors))
        floor_match = None if on_floor is None else match_person(_keypoints(on_floor), entry_2d, mapping)
        if on_floor is not None and floor_match is not None:
            placed = on_floor.people[floor_match[0]]
            row["floor"] = {
                "root_source": placed.root_source,
                "placement_note": placed.placement_note,
                **asdict(pose_errors(placed.joints_3d, gt, mapping)),
            }

    if skipped:
        print(f"skipped {len(skipped)} image(s) without 3D ground truth: {', '.join(skipped)}")
    for dataset, name in set_of.items():
        m = JOINT_SETS[name]
        print(
            f"{dataset} ({name}): root = {m.root_name}; {len(m.compared)} joints compared: "
            + ", ".join(d if d == h else f"{d}->{h}" for d, h in m.compared)
            + f" ({m.note})"
        )
    summaries = {d: _summary(rows) for d, rows in per_dataset.items()}
    header = f"{'dataset':<24} {'images':>6} {'matched':>7} {'MPJPE':>8} {'PA-MPJPE':>9} {'root err':>9}"
    print(header + "\n" + "-" * len(header))
    for d, s in summaries.items():
        print(
            f"{d:<24} {s['images']:>6} {s['matched']:>7} {_fmt(s['mpjpe_mm']):>8} "
            f"{_fmt(s['pa_mpjpe_mm']):>9} {_fmt(s['root_error_mm']):>9}"
        )
    print("(millimetres; MPJPE after aligning the roots; root error = absolute placement error)")
    floor_summaries = {d: f for d, rows in per_dataset.items() if (f := _floor_summary(rows)) is not None}
    if floor_summaries:
        header = (
            f"{'floor-aware':<24} {'people':>6} {'on floor':>8} {'MPJPE':>8} {'+floor':>8} "
            f"{'PA-MPJPE':>9} {'+floor':>8} {'root err':>9} {'+floor':>8}"
        )
        print("\n" + header + "\n" + "-" * len(header))
        for d, f in floor_summaries.items():
            print(
                f"{d:<24} {f['matched']:>6} {f['on_floor']:>8} {_fmt(f['mpjpe_mm']):>8} "
                f"{_fmt(f['floor_mpjpe_mm']):>8} {_fmt(f['pa_mpjpe_mm']):>9} {_fmt(f['floor_pa_mpjpe_mm']):>8} "
                f"{_fmt(f['root_error_mm']):>9} {_fmt(f['floor_root_error_mm']):>8}"
            )
        print("(the same people without and with the camera's pose above the floor; 'on floor' = placed on it)")
    fused_summaries = fused_views.summaries()
    if fused_summaries:
        print_rows(fused_summaries)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "datasets": summaries,
                    "floor_aware": floor_summaries,
                    "fused_views": fused_summaries,
                    "images": per_dataset,
                    "joint_sets": {
                        d: {"name": n, "root": JOINT_SETS[n].root_name, "compared": JOINT_SETS[n].compared}
                        for d, n in set_of.items()
                    },
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    failed = sum("error" in r for rows in per_dataset.values() for r in rows)
    return 1 if failed else 0
