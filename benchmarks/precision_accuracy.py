"""Accuracy and speed of every detector backend and precision against the fp32 torch reference.

    source scripts/env.sh && python benchmarks/precision_accuracy.py [--imgsz 640] [--step 1]

The numbers behind the OpenVINO backend's default precision (``openvino_runtime.AUTO_ORDER``).
For each configuration (default: torch fp32 = the reference, torch bf16, OpenVINO fp32, bf16 and
int8), on the CPU, measured frame by frame in turn (interleaved, so machine load hits all alike):
- keypoint distance to the reference's (px; people paired by box IoU, keypoints the reference
  sees with confidence > 0.5) on the 13 golden images (../shared/data/golden) and on the 399 real
  S11 frames (../shared/data/h36m_s11_walkdog), plus people found by only one side;
- 3D MPJPE / PA-MPJPE (mm) on the S11 frames through the full pipeline, scored as `ctxpose eval`
  scores them (``core.evaluation``), and its difference to the reference;
- the detector stage's median time on the S11 frames (1000x1002 -> 640x640 input).
Then prints which precision ``auto`` should be: the fastest OpenVINO one whose MPJPE is within
``--tolerance-mm`` (1 mm) of fp32 and with which the pipeline reports as many people as the
reference on every golden image ("people differ" = 0; the detector alone may add a low-score
duplicate that the pipeline's duplicate filter removes: "det missed/extra"). INT8 is calibrated
on demo.mp4 frames, never on these frames.
Writes ``--json`` (default output/precision/precision_accuracy.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package first, whatever the overlay holds

import numpy as np  # noqa: E402

from ros2_ctxpose.benchmarking import format_table, summarize, write_json  # noqa: E402
from ros2_ctxpose.benchmarking.accuracy import KeypointDeviation, mean_or_none  # noqa: E402

if TYPE_CHECKING:
    from ros2_ctxpose.core.annotations import AnnotatedImage, GroundTruth

DEFAULT_CONFIGS = ("torch:fp32", "torch:bf16", "openvino:fp32", "openvino:bf16", "openvino:int8")


def _load_s11(s11_dir: Path, step: int) -> list[tuple[AnnotatedImage, GroundTruth, np.ndarray]]:
    from ros2_ctxpose.core.annotations import read_annotations
    from ros2_ctxpose.core.media.images import read_image

    entries = read_annotations(s11_dir / "annotations.json").images[::step]
    return [(e, e.truth, read_image(e.path)) for e in entries if e.truth is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(DEFAULT_CONFIGS),
        metavar="BACKEND:PRECISION",
        help="configurations; the first is the reference",
    )
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--step", type=int, default=1, help="use every STEP-th S11 frame")
    parser.add_argument(
        "--tolerance-mm",
        type=float,
        default=1.0,
        help="largest MPJPE increase over fp32 the default precision may have",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "output" / "precision" / "precision_accuracy.json")
    args = parser.parse_args(argv)

    import cv2
    import torch

    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.evaluation import match_person, pose_errors
    from ros2_ctxpose.core.joint_sets import JOINT_SETS
    from ros2_ctxpose.core.paths import shared_data_dir
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    shared = shared_data_dir() / "data"
    golden_path = shared / "golden" / "yolo11n_pose_ultralytics.npz"
    if not golden_path.is_file() or not (shared / "h36m_s11_walkdog" / "annotations.json").is_file():
        print(f"precision_accuracy: shared data not found under {shared} (set CTXPOSE_SHARED)", file=sys.stderr)
        return 2
    with np.load(golden_path) as golden:
        golden_files = sorted({k.rsplit(":", 1)[0] for k in golden.files if not k.startswith("raw:")})
    golden_images = [(name, cv2.imread(str(shared / "images" / name))) for name in golden_files]
    s11 = _load_s11(shared / "h36m_s11_walkdog", args.step)

    configs, pipelines = [], []
    for spec in args.configs:
        backend, precision = spec.split(":")
        t = time.perf_counter()
        try:
            pipeline = Pose3DPipeline.from_config(
                PipelineConfig(backend=backend, precision=precision, imgsz=args.imgsz, device="cpu")
            )
        except (ImportError, ValueError, RuntimeError) as error:
            print(f"precision_accuracy: skipping {spec}: {error}", file=sys.stderr)
            continue
        print(f"loaded {spec} in {time.perf_counter() - t:.1f} s", flush=True)
        configs.append(spec)
        pipelines.append(pipeline)
    if len(pipelines) < 2:
        print("precision_accuracy: need the reference and at least one other configuration", file=sys.stderr)
        return 1

    # Record every detector call (the pipeline calls detect once per frame).
    last: list[Any] = [None] * len(pipelines)
    for index, pipeline in enumerate(pipelines):
        detect = pipeline.detector.detect

        def recording(image: np.ndarray, bgr: bool = True, _detect: Any = detect, _index: int = index) -> Any:
            last[_index] = _detect(image, bgr=bgr)
            return last[_index]

        pipeline.detector.detect = recording

    from ros2_ctxpose.core.camera import CameraModel

    golden_dev = [KeypointDeviation() for _ in configs]
    people_differ = [0] * len(configs)  # golden images where the pipeline reports another count
    for _, image in golden_images:
        camera = CameraModel.from_fov(image.shape[1], image.shape[0], 60.0)
        counts = [len(p(image, camera).people) for p in pipelines]
        ref = last[0]
        for index, (dev, det) in enumerate(zip(golden_dev, last, strict=True)):
            dev.add(ref.boxes_xyxy, ref.keypoints, det.boxes_xyxy, det.keypoints)
            people_differ[index] += counts[index] != counts[0]

    mapping = JOINT_SETS["h36m17"]
    s11_dev = [KeypointDeviation() for _ in configs]
    errors: list[list[tuple[float, float]]] = [[] for _ in configs]
    detector_ms: list[list[float]] = [[] for _ in configs]
    missed = [0] * len(configs)
    started = time.perf_counter()
    for n, (entry, truth, image) in enumerate(s11):
        camera = entry.camera(image.shape[1], image.shape[0])
        for index, pipeline in enumerate(pipelines):
            result = pipeline(image, camera)
            detector_ms[index].append(result.timings_ms["detector"])
            match = match_person(
                np.array([p.keypoints_2d for p in result.people]).reshape(-1, 17, 3),
                truth.joints_2d,
                mapping,
            )
            if match is None:
                missed[index] += 1
            else:
                e = pose_errors(result.people[match[0]].joints_3d, truth.joints_3d, mapping)
                errors[index].append((e.mpjpe_mm, e.pa_mpjpe_mm))
        ref = last[0]
        for dev, det in zip(s11_dev, last, strict=True):
            dev.add(ref.boxes_xyxy, ref.keypoints, det.boxes_xyxy, det.keypoints)
        if (n + 1) % 50 == 0:
            print(f"  {n + 1}/{len(s11)} S11 frames, {time.perf_counter() - started:.0f} s", flush=True)

    rows = []
    ref_mpjpe = mean_or_none(e[0] for e in errors[0])
    for index, spec in enumerate(configs):
        det = pipelines[index].detector
        mpjpe = mean_or_none(e[0] for e in errors[index])
        rows.append(
            {
                "config": spec,
                "backend": det.backend,
                "precision": det.precision,
                "golden": golden_dev[index].summary(),
                "golden_people_differ": people_differ[index],
                "s11": s11_dev[index].summary(),
                "s11_mpjpe_mm": mpjpe,
                "s11_pa_mpjpe_mm": mean_or_none(e[1] for e in errors[index]),
                "s11_delta_mpjpe_mm": None if mpjpe is None or ref_mpjpe is None else mpjpe - ref_mpjpe,
                "s11_matched": len(errors[index]),
                "s11_missed": missed[index],
                "detector_ms": summarize(detector_ms[index]).as_dict(),
            }
        )

    def fmt(x: Any) -> Any:
        return "-" if x is None else x

    print(f"\nreference: {configs[0]}; imgsz {args.imgsz}; {len(golden_images)} golden images, {len(s11)} S11 frames")
    print(
        format_table(
            (
                "config",
                "golden kp mean px",
                "p95",
                "max",
                "det missed/extra",
                "people differ",
                "S11 kp mean px",
                "p95",
                "max",
                "missed/extra",
                "MPJPE",
                "PA-MPJPE",
                "dMPJPE",
                "detector p50 ms",
            ),
            [
                (
                    r["config"],
                    fmt(r["golden"]["mean_px"]),
                    fmt(r["golden"]["p95_px"]),
                    fmt(r["golden"]["max_px"]),
                    f"{r['golden']['missed']}/{r['golden']['extra']}",
                    r["golden_people_differ"],
                    fmt(r["s11"]["mean_px"]),
                    fmt(r["s11"]["p95_px"]),
                    fmt(r["s11"]["max_px"]),
                    f"{r['s11']['missed']}/{r['s11']['extra']}",
                    fmt(r["s11_mpjpe_mm"]),
                    fmt(r["s11_pa_mpjpe_mm"]),
                    None if r["s11_delta_mpjpe_mm"] is None else f"{r['s11_delta_mpjpe_mm']:+.2f}",
                    r["detector_ms"]["median_ms"],
                )
                for r in rows
            ],
        )
    )

    fp32 = next((r for r in rows if r["backend"] == "openvino" and r["precision"] == "fp32"), None)
    eligible = [
        r
        for r in rows
        if r["backend"] == "openvino"
        and fp32 is not None
        and r["s11_mpjpe_mm"] is not None
        and r["s11_mpjpe_mm"] - ref_mpjpe <= args.tolerance_mm
        and r["s11_missed"] <= fp32["s11_missed"]
        and r["golden_people_differ"] == 0
    ]
    choice = min(eligible, key=lambda r: r["detector_ms"]["median_ms"]) if eligible else None
    if choice:
        print(
            f"\nOpenVINO precision=auto should be {choice['precision']}: the fastest within "
            f"{args.tolerance_mm:g} mm MPJPE of fp32 ({choice['s11_mpjpe_mm']:.2f} vs {ref_mpjpe:.2f} mm, "
            f"detector {choice['detector_ms']['median_ms']:.1f} ms)"
        )
    write_json(
        args.json,
        "precision-accuracy",
        {
            "imgsz": args.imgsz,
            "reference": configs[0],
            "threads": torch.get_num_threads(),
            "golden_images": len(golden_images),
            "s11_frames": len(s11),
            "tolerance_mm": args.tolerance_mm,
            "choice": choice and choice["precision"],
            "results": rows,
        },
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
