"""Latency statistics, peak-memory probes and table output shared by every benchmark.

`ctxpose bench`, benchmarks/peer_mediapipe.py and benchmarks/node_bench.py all report the same
figures (median, p90/p95, FPS, peak memory) in the same JSON shape; keeping the arithmetic here
means the three agree on what "p90" and "FPS" mean, and lets the tests check it without timing
anything. Nothing here imports torch at module level: the node benchmark uses it without a model.
"""

from __future__ import annotations

import json
import os
import platform
import resource
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the JSON documents written by the benchmarks; bump it when a field changes meaning.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LatencySummary:
    """Order statistics of one series of per-frame latencies, in milliseconds."""

    n: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    max_ms: float

    @property
    def fps(self) -> float:
        """Frames per second of a loop that does nothing else: the reciprocal of the mean.

        The mean, not the median, because throughput pays for every slow frame.
        """
        return 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "fps": self.fps}


def summarize(samples_ms: Iterable[float]) -> LatencySummary:
    """Summarise latencies; raises ValueError on an empty or non-finite series."""
    values = np.asarray(list(samples_ms), dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latency samples to summarise")
    if not np.isfinite(values).all():
        raise ValueError("latency samples must be finite")
    p50, p90, p95 = np.percentile(values, [50, 90, 95])
    return LatencySummary(
        n=int(values.size),
        mean_ms=float(values.mean()),
        median_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        max_ms=float(values.max()),
    )


class PeakHostMemory:
    """Peak resident set size of this process over a block of code, in MiB.

    Linux keeps the peak (VmHWM) for the whole process lifetime; writing "5" to
    /proc/self/clear_refs resets it, so each configuration gets its own peak. Where that is not
    allowed the lifetime peak from getrusage() is reported and `scoped` says so.
    """

    def __init__(self) -> None:
        self.peak_mib: float = float("nan")
        self.scoped = False

    def __enter__(self) -> PeakHostMemory:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.scoped = True
        except OSError:
            self.scoped = False
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_mib = _vm_hwm_mib() if self.scoped else _lifetime_peak_mib()


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return _lifetime_peak_mib()


def _lifetime_peak_mib() -> float:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if platform.system() == "Darwin" else peak / 1024.0


def environment() -> dict[str, Any]:
    """Where the figures were measured: needed to compare two JSON files honestly."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": _cpu_count(),
    }
    try:
        import torch

        info.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        )
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_json(path: Path, kind: str, payload: dict[str, Any]) -> None:
    """Write one benchmark document: ``{"schema", "kind", "environment", **payload}``."""
    document = {"schema": SCHEMA_VERSION, "kind": kind, "environment": environment(), **payload}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to benchmark JSON")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain-text table with right-aligned columns; floats get one decimal."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=False)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False)) for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.1f}"
    return str(value)
