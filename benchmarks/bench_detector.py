"""Detector alone: latency, FPS and memory per backend, precision, input size and device, plus
weight-load time.

    nice -n 5 python benchmarks/bench_detector.py [--image IMG] [--sizes 640 480 320 256]
        [--backend torch openvino] [--precision auto] [--device cpu cuda] [--frames 30] [--json out.json]

Each row times ``detect`` of the detector ``create_detector`` builds (letterbox, network, decode,
NMS, mapping back to image pixels; image decoding excluded) on one real image, after ``--warmup``
untimed calls. Combinations a backend cannot run (OpenVINO on CUDA, int8 on torch) are skipped;
``.cpu()`` of the results synchronises every CUDA call. Load time compares reading the
Ultralytics pickle (first use) with the converted-weights cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package first, whatever the overlay holds

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ros2_ctxpose.benchmarking import PeakHostMemory, format_table, summarize, write_json  # noqa: E402
from ros2_ctxpose.core.config import PipelineConfig  # noqa: E402
from ros2_ctxpose.core.detector import create_detector, default_weights_path  # noqa: E402
from ros2_ctxpose.core.detector.checkpoint import load_checkpoint  # noqa: E402

SHARED = Path(os.environ.get("CTXPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_IMAGE = SHARED / "data" / "images" / "coco" / "bus.jpg"


def measure_load(weights: Path, repeats: int = 3) -> dict[str, float]:
    """Median ms to get weights + architecture: from the pickle vs from the cache."""
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            first, cached = [], []
            for _ in range(repeats):
                t = time.perf_counter()
                load_checkpoint(weights, use_cache=False)
                first.append((time.perf_counter() - t) * 1e3)
            load_checkpoint(weights)  # writes the cache
            for _ in range(repeats):
                t = time.perf_counter()
                load_checkpoint(weights)
                cached.append((time.perf_counter() - t) * 1e3)
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old
    return {"pickle_ms": float(np.median(first)), "cache_ms": float(np.median(cached))}


def measure(
    image: np.ndarray,
    weights: Path,
    backend: str,
    device: str,
    precision: str,
    imgsz: int,
    rect: bool,
    frames: int,
    warmup: int,
) -> dict[str, Any]:
    detector = create_detector(
        PipelineConfig(backend=backend, device=device, precision=precision, imgsz=imgsz, detector_weights=str(weights))
    )
    detector.rect = rect
    cuda = detector.device.type == "cuda"
    with PeakHostMemory() as host:
        for _ in range(warmup):
            people = len(detector.detect(image))
        if cuda:
            torch.cuda.reset_peak_memory_stats(detector.device)
        samples = []
        for _ in range(frames):
            t = time.perf_counter()
            detector.detect(image)
            samples.append((time.perf_counter() - t) * 1e3)
    stats = summarize(samples)
    return {
        "backend": detector.backend,
        "device": str(detector.device),
        "precision": detector.precision,
        "imgsz": imgsz,
        "rect": rect,
        "input_hw": list(detector.detect(image).letterbox.input_hw),
        "people": people,
        "threads": torch.get_num_threads(),
        **stats.as_dict(),
        "peak_rss_mib": host.peak_mib,
        "rss_scoped": host.scoped,
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated(detector.device) / 2**20 if cuda else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 480, 320, 256])
    parser.add_argument("--backend", nargs="+", default=["torch", "openvino"], help="backends to try")
    parser.add_argument("--precision", nargs="+", default=["auto"], help="precisions to try")
    parser.add_argument(
        "--device", nargs="+", default=["cpu", "cuda"], help="devices to try; cuda is skipped when unavailable"
    )
    parser.add_argument(
        "--square", action="store_true", help="also measure square (imgsz x imgsz) inputs, not only minimal-rect"
    )
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    image = cv2.imread(str(args.image))
    if image is None:
        parser.error(f"cannot read image {args.image} (pass --image)")
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = args.weights or default_weights_path()

    configs = []
    for device in args.device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skipping {device}: CUDA not available")
            continue
        for backend in args.backend:
            for precision in args.precision:
                for imgsz in args.sizes:
                    for rect in [True, False] if args.square else [True]:
                        configs.append((backend, device, precision, imgsz, rect))

    load = measure_load(weights)
    rows = []
    for cfg in configs:
        try:
            rows.append(measure(image, weights, *cfg, frames=args.frames, warmup=args.warmup))
        except (ValueError, RuntimeError) as error:
            print(f"skipping {cfg[:3]}: {error}")

    print(
        f"image {args.image.name} {image.shape[1]}x{image.shape[0]}; weights {weights.name}; "
        f"load: pickle {load['pickle_ms']:.0f} ms, cache {load['cache_ms']:.0f} ms"
    )
    headers = (
        "backend",
        "device",
        "prec",
        "imgsz",
        "input",
        "people",
        "thr",
        "median ms",
        "p90 ms",
        "FPS",
        "peak RSS MiB",
        "CUDA MiB",
    )
    print(
        format_table(
            headers,
            [
                (
                    r["backend"],
                    r["device"],
                    r["precision"],
                    r["imgsz"],
                    "x".join(map(str, r["input_hw"][::-1])),
                    r["people"],
                    r["threads"],
                    r["median_ms"],
                    r["p90_ms"],
                    r["fps"],
                    r["peak_rss_mib"],
                    r["cuda_max_allocated_mib"],
                )
                for r in rows
            ],
        )
    )
    if args.json:
        write_json(
            args.json, "detector", {"image": str(args.image), "weights": str(weights), "load": load, "results": rows}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
