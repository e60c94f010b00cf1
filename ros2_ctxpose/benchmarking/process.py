"""Whole-process speed: what a user waits for when a command processes N frames, start-up included.

A process's wall time is start-up (imports, model loading, compiles) plus N times its per-frame
cost (decode, inference, output). Timing it on N and on 2N frames gives both:
``per_frame = (T(2N) - T(N)) / N`` and ``startup = T(N) - N * per_frame``, so start-up cancels
from the per-frame figure without either program being changed or instrumented. Used by
benchmarks/peer_process.py; the arithmetic lives here so that it is tested without timing anything.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessCost:
    """Per-frame cost and start-up of one program, from runs on two frame counts."""

    name: str
    per_frame_ms: float
    startup_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.per_frame_ms if self.per_frame_ms > 0 else float("inf")


def process_cost(name: str, frames: tuple[int, int], wall_s: tuple[Sequence[float], Sequence[float]]) -> ProcessCost:
    """The cost of ``name`` from wall times (seconds, several runs each) on ``frames = (n, m)``,
    ``n < m``; medians, so one run slowed by a neighbour does not decide the figure."""
    n, m = frames
    if not 0 < n < m:
        raise ValueError(f"frame counts must satisfy 0 < n < m, got {frames}")
    if not wall_s[0] or not wall_s[1]:
        raise ValueError("no runs to compare")
    t_n, t_m = statistics.median(wall_s[0]), statistics.median(wall_s[1])
    per_frame_s = (t_m - t_n) / (m - n)
    return ProcessCost(name, 1000.0 * per_frame_s, 1000.0 * (t_n - n * per_frame_s))


def time_process(command: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float = 1800.0) -> float:
    """Wall seconds of ``command`` run to completion; its output is discarded. A failure raises
    ``RuntimeError`` with the end of its stderr (a crashed run must not count as a fast one)."""
    start = time.perf_counter()
    result = subprocess.run(
        list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{command[0]} ... exited with {result.returncode}:\n{tail}")
    return elapsed
