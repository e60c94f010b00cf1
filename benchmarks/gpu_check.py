"""The GPU proof: CUDA against the CPU reference, and the pipeline's speed on CUDA, in one run.

    bash benchmarks/gpu_check_prepare.sh   # here, once: weights + footage into .cache/gpu_check
    bash benchmarks/gpu_check.sh           # on the GPU machine (python3 with CUDA torch, no network)
    bash benchmarks/gpu_check.sh --device cpu   # dry run anywhere: same code, CPU only, fewer rounds

ROS-free: only ``ros2_ctxpose.core`` and torch, numpy and opencv (preinstalled on the lent H200).
Frames: the first ``--frames`` frames of Sports2D's demo.mp4 (1768x994, two people walking),
carried in ``.cache/gpu_check`` with the detector weights (no network there).

1. Correctness, against torch fp32 on the CPU of the same machine (the reference backend, which
   matches Ultralytics to 4e-4 px): people found, keypoint distance (px, keypoints the reference
   sees with confidence > 0.5) for CUDA fp32 and fp16, pass when p95 <= 1 px (max printed too);
   the feature maps' largest difference; the lifter's output on identical inputs, CPU vs CUDA (mm).
2. Speed on ``--device``: the pipeline (detector + lifter + placement; precision auto = fp16 on
   CUDA) at imgsz 640 and 1280 with 1 and 4 frames per batch (4: one ``detect_batch`` of four
   frames, then the rest of the pipeline per frame), median and p90 latency per batch and frames
   per second; and the lifter alone for 1, 4 and 16 people.
Prints a table; writes JSON to ``--json`` (default ``$OUT/gpu_check.json`` when ``$OUT`` is set).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's package: nothing is installed on the GPU machine

import numpy as np  # noqa: E402

CARRY = ROOT / ".cache" / "gpu_check"


def _frames(count: int) -> list[np.ndarray]:
    import cv2

    path = CARRY / "demo.mp4"
    if not path.is_file():
        from ros2_ctxpose.core.media.videos import demo_video_path

        path = demo_video_path()
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise RuntimeError(f"no frames read from {path}")
    return frames


def _weights() -> Path:
    carried = CARRY / "yolo11n-pose.pt"
    if carried.is_file():
        return carried
    from ros2_ctxpose.core.detector import default_weights_path

    return default_weights_path()


class _Given:
    """Stands in for the detector inside the pipeline and hands back detections made beforehand
    (by one ``detect_batch`` call), so the rest of the pipeline runs exactly as it does per frame."""

    def __init__(self, detector: Any) -> None:
        self._detector, self.queue = detector, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._detector, name)

    def detect(self, image: np.ndarray, bgr: bool = True) -> Any:
        return self.queue.pop(0)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(samples_ms: list[float], frames_per_call: int) -> dict[str, float]:
    from ros2_ctxpose.benchmarking import summarize

    s = summarize(samples_ms)
    return {"median_ms": s.median_ms, "p90_ms": s.p90_ms, "fps": frames_per_call * s.fps, "n": s.n}


def check_correctness(frames: list[np.ndarray], device: str, weights: Path) -> dict[str, Any]:
    import torch

    from ros2_ctxpose.benchmarking.accuracy import KeypointDeviation
    from ros2_ctxpose.core.camera import CameraModel
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.detector import TorchPoseDetector
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    reference = TorchPoseDetector(weights, device="cpu", precision="fp32")
    ref_dets = [reference.detect(f) for f in frames]
    out: dict[str, Any] = {"frames": len(frames), "detector": {}}
    precisions = ("fp32", "fp16") if device.startswith("cuda") else ("fp32",)
    for precision in precisions:
        detector = TorchPoseDetector(weights, device=device, precision=precision)
        dev, feature_diff = KeypointDeviation(), 0.0
        for frame, ref in zip(frames, ref_dets, strict=True):
            det = detector.detect(frame)
            dev.add(ref.boxes_xyxy, ref.keypoints, det.boxes_xyxy, det.keypoints)
            feature_diff = max(
                feature_diff,
                *(
                    float((a.float().cpu() - b.float()).abs().max())
                    for a, b in zip(det.features, ref.features, strict=True)
                ),
            )
        summary = dev.summary()
        summary["feature_max_abs_diff"] = feature_diff
        summary["pass"] = bool(
            summary["missed"] == 0
            and summary["extra"] == 0
            and summary["p95_px"] is not None
            and summary["p95_px"] <= 1.0
        )
        out["detector"][precision] = summary

    # The lifter on identical inputs (the CPU reference's people of every frame), CPU vs device.
    config = PipelineConfig(backend="torch", device="cpu", precision="fp32", detector_weights=str(weights))
    cpu_pipe = Pose3DPipeline.from_config(config)
    lifter_cpu = cpu_pipe.lifter
    from ros2_ctxpose.core.lifter.model import load_lifter

    lifter_dev = load_lifter(None, device=torch.device(device))
    diffs = []
    for frame, det in zip(frames, ref_dets, strict=True):
        if len(det) == 0:
            continue
        camera = CameraModel.from_fov(frame.shape[1], frame.shape[0], 60.0)
        keypoints = det.keypoints.astype(np.float64)
        kp_norm = camera.normalize(keypoints[..., :2])
        conf = np.nan_to_num(keypoints[..., 2], nan=0.0)
        args = cpu_pipe._lifter_inputs(kp_norm, conf, keypoints, det.boxes_xyxy.astype(np.float64), det)
        with torch.inference_mode():
            a = lifter_cpu(*args).float()
            b = (
                lifter_dev(*(tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device) for x in args))
                .float()
                .cpu()
            )
        diffs.append(float((a - b).abs().max()) * 1000.0)
    out["lifter_max_abs_diff_mm"] = max(diffs) if diffs else None
    out["lifter_pass"] = bool(diffs) and max(diffs) <= 1.0
    return out


def measure_pipeline(
    frames: list[np.ndarray],
    device: str,
    weights: Path,
    sizes: list[int],
    batches: list[int],
    warmup: int,
    iterations: int,
) -> list[dict[str, Any]]:
    from ros2_ctxpose.core.camera import CameraModel
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    camera = CameraModel.from_fov(frames[0].shape[1], frames[0].shape[0], 60.0)
    rows = []
    for imgsz in sizes:
        pipeline = Pose3DPipeline.from_config(
            PipelineConfig(backend="torch", device=device, imgsz=imgsz, detector_weights=str(weights))
        )
        detector = pipeline.detector
        given = _Given(detector)
        for batch in batches:
            samples, people = [], 0
            for i in range(warmup + iterations):
                chunk = [frames[(i * batch + k) % len(frames)] for k in range(batch)]
                start = time.perf_counter()
                if batch == 1:
                    result = pipeline(chunk[0], camera)
                    found = len(result.people)
                else:
                    given.queue = detector.detect_batch(chunk)
                    pipeline.detector = given
                    try:
                        found = sum(len(pipeline(frame, camera).people) for frame in chunk)
                    finally:
                        pipeline.detector = detector
                _sync(pipeline.device)
                if i >= warmup:
                    samples.append((time.perf_counter() - start) * 1000.0)
                    people += found
            rows.append(
                {
                    "imgsz": imgsz,
                    "batch": batch,
                    "precision": detector.precision,
                    "input_hw": list(detector.detect(frames[0]).letterbox.input_hw),
                    "people_per_frame": people / (iterations * batch),
                    **_stats(samples, batch),
                }
            )
            print(f"  pipeline imgsz {imgsz} batch {batch}: {rows[-1]['median_ms']:.1f} ms", flush=True)
    return rows


def measure_lifter(device: str, warmup: int, iterations: int) -> list[dict[str, Any]]:
    import torch

    from ros2_ctxpose.core.lifter.model import load_lifter

    lifter = load_lifter(None, device=torch.device(device))
    cfg = lifter.config
    rows = []
    for people in (1, 4, 16):
        generator = torch.Generator().manual_seed(0)
        kp = torch.randn(people, 17, 2, generator=generator).mul_(0.2).to(device)
        conf = torch.rand(people, 17, generator=generator).to(device)
        args: tuple[Any, ...] = (kp, conf)
        if cfg.context_trained:
            crops = tuple(
                torch.randn(people, c, s, s, generator=generator).to(device)
                for c, s in zip(cfg.context_channels, cfg.context_crop_sizes, strict=True)
            )
            grid = torch.rand(people, 17, 2, generator=generator).mul_(2).sub_(1).to(device)
            args += (crops, grid)
        samples = []
        with torch.inference_mode():
            for i in range(warmup + iterations):
                start = time.perf_counter()
                lifter(*args)
                _sync(torch.device(device))
                if i >= warmup:
                    samples.append((time.perf_counter() - start) * 1000.0)
        rows.append({"people": people, **_stats(samples, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (the proof) or cpu (dry run)")
    parser.add_argument("--frames", type=int, default=16, help="demo.mp4 frames used")
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 1280])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--iterations", type=int, default=None, help="timed calls (default 50 on CUDA, 5 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls (default 10 on CUDA, 1 on CPU)")
    out_dir = os.environ.get("OUT")
    parser.add_argument("--json", type=Path, default=Path(out_dir) / "gpu_check.json" if out_dir else None)
    args = parser.parse_args(argv)

    import torch

    from ros2_ctxpose.benchmarking import environment, format_table, write_json

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(
            f"gpu_check: --device {args.device}, but torch {torch.__version__} sees no CUDA device "
            "(use --device cpu for a dry run)",
            file=sys.stderr,
        )
        return 2
    iterations = args.iterations or (50 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    started = time.perf_counter()
    weights = _weights()
    frames = _frames(args.frames)
    print(
        f"gpu_check: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, weights {weights}, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(0)})" if cuda else " (dry run)"),
        flush=True,
    )
    if cuda:
        torch.backends.cudnn.benchmark = True

    correctness = check_correctness(frames[:8], args.device, weights)
    print(f"correctness done ({time.perf_counter() - started:.0f} s)", flush=True)
    pipeline_rows = measure_pipeline(frames, args.device, weights, args.sizes, args.batches, warmup, iterations)
    lifter_rows = measure_lifter(args.device, warmup, iterations)
    elapsed = time.perf_counter() - started

    print(
        "\n1. CUDA vs the CPU reference (torch fp32 on this machine's CPU)"
        if cuda
        else "\n1. dry run: CPU vs the CPU reference (trivially equal; the CUDA comparison needs a GPU)"
    )
    print(
        format_table(
            (
                "precision",
                "people ref",
                "matched",
                "missed",
                "extra",
                "kp mean px",
                "kp p95 px",
                "kp max px",
                "feature max |d|",
                "pass (p95 <= 1 px)",
            ),
            [
                (
                    p,
                    r["reference_people"],
                    r["matched"],
                    r["missed"],
                    r["extra"],
                    r["mean_px"],
                    r["p95_px"],
                    r["max_px"],
                    f"{r['feature_max_abs_diff']:.2e}",
                    r["pass"],
                )
                for p, r in correctness["detector"].items()
            ],
        )
    )
    lifter_diff = correctness["lifter_max_abs_diff_mm"]
    print(
        f"lifter, identical inputs: max |CPU - {args.device}| = "
        f"{'-' if lifter_diff is None else f'{lifter_diff:.4f}'} mm (pass <= 1 mm: {correctness['lifter_pass']})"
    )
    print(f"\n2. pipeline on {args.device} (demo.mp4 frames; latency per batch; FPS = frames per second)")
    print(
        format_table(
            ("imgsz", "input", "batch", "precision", "median ms", "p90 ms", "FPS", "people/frame"),
            [
                (
                    r["imgsz"],
                    "x".join(map(str, r["input_hw"][::-1])),
                    r["batch"],
                    r["precision"],
                    r["median_ms"],
                    r["p90_ms"],
                    r["fps"],
                    round(r["people_per_frame"], 2),
                )
                for r in pipeline_rows
            ],
        )
    )
    print(f"\n3. lifter alone on {args.device}")
    print(
        format_table(
            ("people", "median ms", "p90 ms", "calls/s"),
            [(r["people"], r["median_ms"], r["p90_ms"], r["fps"]) for r in lifter_rows],
        )
    )
    print(f"\ngpu_check finished in {elapsed:.0f} s")
    if args.json:
        write_json(
            args.json,
            "gpu-check",
            {
                "device": args.device,
                "dry_run": not cuda,
                "elapsed_s": elapsed,
                "iterations": iterations,
                "warmup": warmup,
                "correctness": correctness,
                "pipeline": pipeline_rows,
                "lifter": lifter_rows,
                "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
                "torch_cuda": torch.version.cuda,
                "host": environment(),
            },
        )
        print(f"wrote {args.json}")
    ok = all(r["pass"] for r in correctness["detector"].values()) and correctness["lifter_pass"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
