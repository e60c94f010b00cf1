"""What benchmarks/node_bench.py and benchmarks/node_stress.py share, without ROS: starting and
stopping the node and the camera as processes, waiting for the first result, and differencing the
node's counters.

The node publishes running totals (frames received, processed, dropped) on /diagnostics; the
benchmarks keep only the change between the first and the last report inside their measurement
window, so start-up and shutdown never count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def spawn(command: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    """``command`` in its own process group (so that stopping it reaches its children), its output
    unbuffered into ``log``."""
    return subprocess.Popen(
        command,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def stop_process(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGINT to the process group (a clean ROS shutdown), SIGKILL if it has not ended in time."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_first_result(
    spin_once: Callable[[], None],
    started: Callable[[], bool],
    processes: Mapping[str, tuple[subprocess.Popen, Path]],
    timeout_s: float,
    settle_s: float = 0.0,
) -> None:
    """Spin until ``started()``, then ``settle_s`` more seconds (warm-up left out of the window);
    RuntimeError naming the log when a process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not started():
        spin_once()
        for name, (process, log) in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"no skeletons within {timeout_s:.0f} s; see the logs in {next(iter(processes.values()))[1].parent}"
            )
    settle_end = time.monotonic() + settle_s
    while time.monotonic() < settle_end:
        spin_once()


def counter_deltas(
    diagnostics: list[tuple[float, dict[str, str]]],
    start: float,
    end: float,
    keys: tuple[str, ...] = ("frames_received", "frames_processed", "frames_dropped"),
) -> dict[str, float] | None:
    """Change of the node's running totals between the first and the last report inside
    [start, end], and the seconds between those reports; None with fewer than two reports."""
    inside = [(t, values) for t, values in diagnostics if start <= t <= end and all(k in values for k in keys)]
    if len(inside) < 2:
        return None
    (t0, first), (t1, last) = inside[0], inside[-1]
    deltas: dict[str, float] = {k: float(last[k]) - float(first[k]) for k in keys}
    deltas["span_s"] = t1 - t0
    return deltas
