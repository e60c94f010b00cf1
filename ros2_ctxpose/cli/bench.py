"""`ctxpose bench`: end-to-end latency of the pipeline, split by stage, per backend, precision,
input size and crowd, side by side in one run.

Every combination of ``--backend``, ``--precision`` and ``--imgsz`` is one pipeline
(``Pose3DPipeline.from_config``; every other pipeline setting is a flag of the same name, as for
the node). All pipelines are loaded first, then measured in interleaved rounds: each round runs
every configuration once on every image, so a machine that gets busier half-way slows them all
alike and their ratios stay fair. Per round the JPEG bytes are decoded and run through the
pipeline; the first ``--warmup`` rounds (allocator, kernel selection, lazy compilation) are not
timed. Stages: decode (JPEG -> BGR array, this command's own clock), detector (letterbox + network
+ postprocess), lifter (its inputs + network), placement, and total (decode plus the wall time of
the pipeline call, so overhead outside the pipeline's own timers is counted too). Figures go to
stdout as a table and, with ``--json``, to a machine-readable file.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..benchmarking import PeakHostMemory, format_table, summarize, write_json
from ..core.camera import DEFAULT_HFOV_DEG, CameraModel
from ..core.config import ConfigError
from .config_args import add_config_arguments, config_from_args

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
#: Pipeline settings that take several values here (one pipeline per combination).
SWEPT = ("backend", "precision", "imgsz")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the ``ctxpose`` parser."""
    parser = subparsers.add_parser(
        "bench",
        help="latency, FPS and peak memory of the pipeline",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--images",
        type=Path,
        nargs="+",
        default=None,
        help="JPEG images to run (default: 1-, 2- and 4-person frames from ../shared)",
    )
    parser.add_argument("--iterations", type=int, default=20, help="timed rounds per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds per configuration")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PSTATS",
        help="instead of timing: run --iterations frames of each image with the first "
        "configuration under cProfile, print where the time goes, save the stats here",
    )
    add_config_arguments(parser, multiple=SWEPT)
    parser.set_defaults(func=run)


def configurations(args: argparse.Namespace) -> list[Any]:
    """One ``PipelineConfig`` per combination of the swept settings, in the order given."""
    fixed = {name: getattr(args, name) for name in SWEPT}
    combos = itertools.product(*(dict.fromkeys(fixed[name]) for name in SWEPT))  # dedup, keep order
    return [config_from_args(args, **dict(zip(SWEPT, combo, strict=True))) for combo in combos]


def run(args: argparse.Namespace) -> int:
    import torch

    from ..core.media.frame import MediaError
    from ..core.media.images import read_image
    from ..core.paths import shared_data_dir
    from ..core.pipeline import Pose3DPipeline

    if args.iterations < 1 or args.warmup < 0:
        print("ctxpose bench: --iterations must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    try:
        configs = configurations(args)
    except ConfigError as error:
        print(f"ctxpose bench: {error}", file=sys.stderr)
        return 2
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

    default_threads = torch.get_num_threads()  # before any pipeline changes it
    pipelines = []
    for config in configs:
        label = f"backend={config.backend} precision={config.precision} imgsz={config.imgsz}"
        try:
            pipelines.append(Pose3DPipeline.from_config(config))
        except (ImportError, ValueError, RuntimeError) as error:  # e.g. torch + int8, bf16 on a CPU without it
            print(f"ctxpose bench: skipping {label}: {error}", file=sys.stderr)
        except OSError as error:  # missing weights: nothing else will load either
            print(f"ctxpose bench: {error}", file=sys.stderr)
            return 1
    if not pipelines:
        print("ctxpose bench: no configuration could be loaded", file=sys.stderr)
        return 1
    if args.profile:
        _profile(pipelines[0], frames, args.warmup, args.iterations, args.profile)
        return 0
    try:
        results = _measure_interleaved(pipelines, frames, args.warmup, args.iterations, default_threads)
    except (ValueError, RuntimeError) as error:
        print(f"ctxpose bench: {error}", file=sys.stderr)
        return 1

    print(_table(results))
    if len({(r["backend"], r["precision"]) for r in results}) > 1:
        print(_speedups(results))
    if args.json:
        write_json(
            args.json,
            "ctxpose-bench",
            {
                "threads": torch.get_num_threads(),
                "iterations": args.iterations,
                "warmup": args.warmup,
                "interleaved": True,
                "stage_definitions": STAGE_DEFINITIONS,
                "results": results,
            },
        )
        print(f"wrote {args.json}")
    return 0


def camera_for(path: Path, width: int, height: int, images_dir: Path) -> CameraModel:
    """The annotated intrinsics when ``path`` is one of the shared annotated images, else a
    camera of DEFAULT_HFOV_DEG (the node does the same while no CameraInfo has arrived)."""
    from ..core.annotations import read_annotations

    annotations = images_dir / "annotations.json"
    entry = read_annotations(annotations).find(path) if annotations.is_file() else None
    if entry is not None and entry.K is not None:
        return entry.camera(width, height)
    return CameraModel.from_fov(width, height, DEFAULT_HFOV_DEG)


def _sync_for(pipeline: Any) -> Callable[[], None]:
    import torch

    device = pipeline.device
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def _measure_interleaved(
    pipelines: list[Any], frames: list[tuple[Path, bytes, Any]], warmup: int, iterations: int, default_threads: int
) -> list[dict[str, Any]]:
    """Rounds of every pipeline on every frame; per (pipeline, frame) the stage samples, people
    found and peak memory. Peak RSS covers the whole run of each pipeline's calls only when the
    pipelines run one after the other, so here it is the process peak over its rounds."""
    import torch

    from ros2_ctxpose.core.pipeline import torch_threads_for

    # torch's thread count is process-wide and each pipeline's construction set it: give each
    # configuration its own before its calls (a torch pipeline keeps torch's default).
    threads = [torch_threads_for(p.config, p.detector.backend) or default_threads for p in pipelines]
    cells = [(p, f) for p in pipelines for f in frames]
    samples = [{stage: [] for stage in STAGES} for _ in cells]
    people: list[list[int]] = [[] for _ in cells]
    peaks = [0.0] * len(cells)
    syncs = [_sync_for(p) for p in pipelines]
    for round_index in range(warmup + iterations):
        for index, (pipeline, (_, jpeg, camera)) in enumerate(cells):
            torch.set_num_threads(threads[pipelines.index(pipeline)])
            with PeakHostMemory() as memory:
                timing = _run_once(pipeline, np.frombuffer(jpeg, np.uint8), camera, syncs[pipelines.index(pipeline)])
            if round_index < warmup:
                continue
            peaks[index] = max(peaks[index], memory.peak_mib)
            for stage, value in timing.items():
                if stage != "people":
                    samples[index][stage].append(value)
            people[index].append(timing["people"])
    results = []
    for index, (pipeline, (path, _, _)) in enumerate(cells):
        detector = pipeline.detector
        cuda = pipeline.device.type == "cuda"
        results.append(
            {
                "backend": detector.backend,
                "precision": detector.precision,
                "device": str(pipeline.device),
                "imgsz": detector.imgsz,
                "image": path.name,
                "people": int(np.median(people[index])),
                "stages": {stage: summarize(values).as_dict() for stage, values in samples[index].items()},
                "peak_rss_mib": peaks[index],
                "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
            }
        )
    return results


def _run_once(pipeline: Any, buffer: np.ndarray, camera: Any, sync: Callable[[], None]) -> dict[str, float]:
    """One decode + pipeline call: stage times in ms and the people found."""
    start = time.perf_counter()
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    decoded = time.perf_counter()
    result = pipeline(image, camera)
    sync()
    finished = time.perf_counter()
    timings = result.timings_ms
    return {
        "decode": (decoded - start) * 1000.0,
        "detector": timings["detector"],
        "lifter": timings["preprocess"] + timings["lifter"],
        "placement": timings["placement"],
        "total": (finished - start) * 1000.0,
        "people": len(result.people),
    }


def _profile(pipeline: Any, frames: list[tuple[Path, bytes, Any]], warmup: int, iterations: int, out: Path) -> None:
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
    headers = (
        "backend",
        "precision",
        "imgsz",
        "image",
        "people",
        "decode",
        "detector",
        "lifter",
        "placement",
        "total p50",
        "total p90",
        "FPS",
        "peak RSS MiB",
    )
    order = sorted(range(len(results)), key=lambda i: (results[i]["imgsz"], results[i]["image"]))
    rows = [
        (
            r["backend"],
            r["precision"],
            r["imgsz"],
            r["image"],
            r["people"],
            *(r["stages"][s]["median_ms"] for s in STAGES[:-1]),
            r["stages"]["total"]["median_ms"],
            r["stages"]["total"]["p90_ms"],
            r["stages"]["total"]["fps"],
            r["peak_rss_mib"],
        )
        for r in (results[i] for i in order)
    ]
    return "stage medians in ms (configurations measured interleaved, round by round)\n" + format_table(headers, rows)


def _speedups(results: list[dict[str, Any]]) -> str:
    """Per input size: each configuration's mean FPS over the images, against the first one's."""
    by: dict[tuple[int, str, str], list[float]] = {}
    for r in results:
        by.setdefault((r["imgsz"], r["backend"], r["precision"]), []).append(r["stages"]["total"]["fps"])
    rows, base = [], {}
    for (imgsz, backend, precision), fps in by.items():
        mean = float(np.mean(fps))
        base.setdefault(imgsz, mean)
        rows.append((imgsz, backend, precision, mean, f"{mean / base[imgsz]:.2f}x"))
    return "\nmean FPS over the images, relative to the first configuration of each imgsz\n" + format_table(
        ("imgsz", "backend", "precision", "FPS", "vs first"), rows
    )
