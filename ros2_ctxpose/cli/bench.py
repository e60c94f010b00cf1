"""`ctxpose bench`: end-to-end latency of the pipeline, split by stage, per input size and crowd.

For every detector input size and every image, the JPEG bytes are decoded and run through
`Pose3DPipeline` repeatedly; the first ``--warmup`` runs (allocator, kernel selection, lazy
initialisation) are not timed. Stages: decode (JPEG -> BGR array, this command's own
clock), detector (letterbox + network + postprocess), lifter (its inputs + network), placement,
and total (decode plus the wall time of the pipeline call, so overhead outside the pipeline's own
timers is counted too). Figures go to stdout as a table and, with ``--json``, to a machine-readable file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..benchmarking import PeakHostMemory, format_table, summarize, write_json
from ..core.camera import DEFAULT_HFOV_DEG, CameraModel
from ..core.evaluation import annotation_camera

#: Images used when none are given: 1, 2 and 4 people (paths relative to ../shared/data/images).
DEFAULT_IMAGES = ("h36m/S1_Directions_1.54138969_000001.jpg", "coco/zidane.jpg", "coco/bus.jpg")
STAGES = ("decode", "detector", "lifter", "placement", "total")
STAGE_DEFINITIONS = {
    "decode": "cv2.imdecode of the JPEG bytes (this command's clock)",
    "detector": "letterbox + network + NMS/decoding (pipeline timings_ms['detector'])",
    "lifter": "keypoint normalisation, lifter inputs and the lifter network "
              "(pipeline timings_ms['preprocess'] + ['lifter'])",
    "placement": "root placement, projection and result assembly (timings_ms['placement'])",
    "total": "decode + wall time of the pipeline call",
}

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the ``ctxpose`` parser."""
    parser = subparsers.add_parser("bench", help="latency, FPS and peak memory of the pipeline",
                                   description=__doc__.split("\n\n")[1],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--half", action=argparse.BooleanOptionalAction, default=None,
                        help="fp16 (default: on for CUDA, off for CPU)")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="bfloat16 autocast for the detector on CPU (fast where the CPU has native bf16)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 480, 320],
                        help="detector input sizes to measure")
    parser.add_argument("--images", type=Path, nargs="+", default=None,
                        help="JPEG images to run (default: 1-, 2- and 4-person frames from ../shared)")
    parser.add_argument("--iterations", type=int, default=20, help="timed runs per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--detector-weights", type=Path, default=None)
    parser.add_argument("--lifter-weights", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here as JSON")
    parser.add_argument("--profile", type=Path, default=None, metavar="PSTATS",
                        help="instead of timing: run --iterations frames of each image at the first "
                             "--imgsz under cProfile, print where the time goes, save the stats here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..core.paths import shared_data_dir
    from ..core.media import MediaError, read_image
    from ..core.pipeline import Pose3DPipeline

    if args.iterations < 1 or args.warmup < 0:
        print("ctxpose bench: --iterations must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("ctxpose bench: --device cuda requested but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    images_dir = shared_data_dir() / "data" / "images"
    paths = args.images or [images_dir / name for name in DEFAULT_IMAGES]
    frames = []
    for path in map(Path, paths):
        try:
            height, width = read_image(path).shape[:2]
        except (OSError, MediaError) as error:
            hint = "" if args.images else " (pass --images, or set CTXPOSE_SHARED to the shared data)"
            print(f"ctxpose bench: {path}: {error}{hint}", file=sys.stderr)
            return 2
        frames.append((path, path.read_bytes(), camera_for(path, width, height, images_dir)))

    bad_sizes = [size for size in args.imgsz if size < 32 or size % 32]
    if bad_sizes:
        print(f"ctxpose bench: --imgsz must be positive multiples of 32, got {bad_sizes}", file=sys.stderr)
        return 2

    def make_pipeline(imgsz: int) -> Pose3DPipeline:
        return Pose3DPipeline.create(detector_weights=args.detector_weights,
                                     lifter_weights=args.lifter_weights, device=args.device,
                                     half=args.half, imgsz=imgsz, cpu_bf16=args.cpu_bf16)

    try:
        if args.profile:
            _profile(make_pipeline(args.imgsz[0]), frames, args.warmup, args.iterations, args.profile)
            return 0
        cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        sync: Callable[[], None] = torch.cuda.synchronize if cuda else (lambda: None)
        results = []
        for imgsz in args.imgsz:
            pipeline = make_pipeline(imgsz)
            for path, data, camera in frames:
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                with PeakHostMemory() as memory:
                    record = _measure(pipeline, data, camera, args.warmup, args.iterations, sync)
                record.update(image=path.name, imgsz=imgsz, peak_rss_mib=memory.peak_mib,
                              peak_rss_scoped=memory.scoped,
                              peak_cuda_mib=torch.cuda.max_memory_allocated() / 2**20 if cuda else None)
                results.append(record)
    except (OSError, ValueError, RuntimeError) as error:  # missing weights, bad device or checkpoint
        print(f"ctxpose bench: {error}", file=sys.stderr)
        return 1

    print(_table(results))
    if args.json:
        write_json(args.json, "ctxpose-bench", {
            "device": "cuda" if cuda else "cpu", "half": bool(pipeline.detector.half),
            "cpu_bf16": bool(pipeline.detector.cpu_bf16),
            "threads": torch.get_num_threads(), "iterations": args.iterations, "warmup": args.warmup,
            "stage_definitions": STAGE_DEFINITIONS, "results": results})
        print(f"wrote {args.json}")
    return 0


def camera_for(path: Path, width: int, height: int, images_dir: Path) -> CameraModel:
    """The annotated intrinsics when ``path`` is one of the shared annotated images, else a
    camera of DEFAULT_HFOV_DEG (the node does the same while no CameraInfo has arrived)."""
    annotations = images_dir / "annotations.json"
    if annotations.is_file():
        for entry in json.loads(annotations.read_text())["images"]:
            if entry.get("K") is not None and (images_dir / entry["file"]).resolve() == path.resolve():
                return annotation_camera(entry, width, height)
    return CameraModel.from_fov(width, height, DEFAULT_HFOV_DEG)


def _measure(pipeline: Any, jpeg: bytes, camera: Any, warmup: int, iterations: int,
             sync: Callable[[], None]) -> dict[str, Any]:
    """Time ``iterations`` decode+pipeline runs after ``warmup`` untimed ones."""
    buffer = np.frombuffer(jpeg, np.uint8)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    people = []
    for index in range(warmup + iterations):
        start = time.perf_counter()
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        decoded = time.perf_counter()
        result = pipeline(image, camera)
        sync()
        finished = time.perf_counter()
        if index < warmup:
            continue
        timings = result.timings_ms
        samples["decode"].append((decoded - start) * 1000.0)
        samples["detector"].append(timings["detector"])
        samples["lifter"].append(timings["preprocess"] + timings["lifter"])
        samples["placement"].append(timings["placement"])
        samples["total"].append((finished - start) * 1000.0)
        people.append(len(result.people))
    return {"people": int(np.median(people)),
            "stages": {stage: summarize(values).as_dict() for stage, values in samples.items()}}


def _profile(pipeline: Any, frames: list[tuple[Path, bytes, Any]], warmup: int, iterations: int,
             out: Path) -> None:
    """cProfile of decode + pipeline over every frame; prints the top functions by own time and
    by cumulative time (profiling slows Python-heavy code more than torch kernels: read shares,
    not absolute times)."""
    import cProfile
    import pstats

    decoded = [(np.frombuffer(data, np.uint8), camera) for _, data, camera in frames]
    for buffer, camera in decoded:
        for _ in range(warmup):
            pipeline(cv2.imdecode(buffer, cv2.IMREAD_COLOR), camera)
    profiler = cProfile.Profile()
    profiler.enable()
    for buffer, camera in decoded:
        for _ in range(iterations):
            pipeline(cv2.imdecode(buffer, cv2.IMREAD_COLOR), camera)
    profiler.disable()
    out.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(out))
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    print(f"{iterations} runs x {len(frames)} image(s); stats saved to {out}")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def _table(results: list[dict[str, Any]]) -> str:
    headers = ("imgsz", "image", "people", "decode", "detector", "lifter", "placement",
               "total p50", "total p90", "FPS", "peak RSS MiB")
    rows = [(r["imgsz"], r["image"], r["people"],
             *(r["stages"][s]["median_ms"] for s in STAGES[:-1]),
             r["stages"]["total"]["median_ms"], r["stages"]["total"]["p90_ms"],
             r["stages"]["total"]["fps"], r["peak_rss_mib"]) for r in results]
    return "stage medians in ms\n" + format_table(headers, rows)
