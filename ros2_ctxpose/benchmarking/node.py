"""Bookkeeping of benchmarks/node_bench.py that needs no ROS: differencing the node's counters.

The node publishes running totals (frames received, processed, dropped) on /diagnostics; the
benchmark keeps only the change between the first and the last report inside its measurement
window, so start-up and shutdown never count.
"""

from __future__ import annotations


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
