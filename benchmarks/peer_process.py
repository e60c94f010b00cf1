"""Whole processes side by side: ``ctxpose infer`` against MediaPipe BlazePose on the S11 frames.

    python benchmarks/peer_process.py [--frames 40] [--repeats 3] [--images DIR] [ctxpose infer flags]

Each program runs as a user would run it, as a fresh process on N and on 2N frames (JPEG files:
decoding, start-up and writing the results included); per-frame cost = (T(2N) - T(N)) / N, so
start-up cancels (``ros2_ctxpose/benchmarking/process.py``). The runs alternate (ours N, theirs N,
ours 2N, theirs 2N, repeated) so that a change in the machine's load falls on both; medians.

- ours: ``python -m ros2_ctxpose.cli.main infer FRAMES --out FILE`` with the pipeline's defaults
  unless flags are given (e.g. ``--backend torch``); one person per S11 frame, 1000x1002 px;
- theirs: benchmarks/mediapipe_runner.py in ``.venv-mediapipe`` (scripts/setup_mediapipe.sh),
  ``static_image_mode`` with model_complexity 1, as in benchmarks/peer_mediapipe.py.

Prints per-frame ms, FPS and start-up of each, and the FPS ratio ours / BlazePose.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final[Path] = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package first, whatever the overlay holds

from ros2_ctxpose.benchmarking import format_table  # noqa: E402
from ros2_ctxpose.benchmarking.process import process_cost, time_process  # noqa: E402

S11_IMAGES: Final[Path] = ROOT.parent / "shared" / "data" / "h36m_s11_walkdog" / "images"
MEDIAPIPE_PYTHON: Final[Path] = ROOT / ".venv-mediapipe" / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="N (the long runs take 2N)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=Path, default=S11_IMAGES)
    args, infer_flags = parser.parse_known_args(argv)
    frames = sorted(str(p) for p in args.images.glob("*.jpg"))
    if len(frames) < 2 * args.frames:
        parser.error(f"{args.images} holds {len(frames)} JPEG frames; --frames {args.frames} needs {2 * args.frames}")
    if not MEDIAPIPE_PYTHON.is_file():
        parser.error(f"{MEDIAPIPE_PYTHON} not found: run scripts/setup_mediapipe.sh first")
    counts = (args.frames, 2 * args.frames)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    walls: dict[str, tuple[list[float], list[float]]] = {"ros2_ctxpose": ([], []), "blazepose": ([], [])}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in (1, *counts):  # 1: the untimed warm-up run
            jobs = {"images": frames[:n], "video": None, "warmup": 0, "model_complexity": 1}
            (out / f"jobs{n}.json").write_text(json.dumps(jobs))
        commands = {
            "ros2_ctxpose": lambda n: [
                sys.executable, "-m", "ros2_ctxpose.cli.main", "infer", *frames[:n], "--out", str(out / "ours.jsonl"), *infer_flags
            ],
            "blazepose": lambda n: [
                str(MEDIAPIPE_PYTHON), str(ROOT / "benchmarks" / "mediapipe_runner.py"),
                "--jobs", str(out / f"jobs{n}.json"), "--out", str(out / "theirs.json"),
            ],
        }  # fmt: skip
        for command in commands.values():  # untimed: file caches, compiled-model caches
            time_process(command(1), env)
        for repeat in range(args.repeats):
            for i, n in enumerate(counts):
                for name, command in commands.items():
                    walls[name][i].append(time_process(command(n), env))
                    print(
                        f"run {repeat + 1}/{args.repeats}: {name} {n} frames {walls[name][i][-1]:.2f} s",
                        file=sys.stderr,
                    )
    costs = [process_cost(name, counts, wall) for name, wall in walls.items()]
    rows = [(c.name, c.per_frame_ms, c.fps, c.startup_ms / 1000.0) for c in costs]
    print(format_table(("method", "ms/frame", "FPS", "start-up s"), rows))
    print(f"whole-process FPS ratio ros2_ctxpose / BlazePose: {costs[0].fps / costs[1].fps:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
