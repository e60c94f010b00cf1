"""Parameters, MACs and CPU latency of the lifter (a script, not a test: timings vary by machine).

    python -m ros2_ctxpose.core.lifter.complexity [--weights PATH] [--people 5] [--threads 2]

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2; it counts the
matrix multiplications and attention, not the elementwise ops). Latency is the median of repeated
calls of the geometry-only path and of the context path on YOLO11n-shaped feature maps of a
640x640 input. Both are measured as shipped: the geometry-only path includes the flip averaging
(two rows per person) when the weights' ``flip_test`` is on.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ros2_ctxpose.core.lifter.model import ContextLifter, load_lifter

FEATURE_SHAPES = ((64, 160, 160), (128, 80, 80), (128, 40, 40), (256, 20, 20))


def count_macs(model: ContextLifter, people: int, with_context: bool) -> int:
    args = _inputs(people, with_context)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args)
    return counter.get_total_flops() // 2


def median_latency_ms(model: ContextLifter, people: int, with_context: bool, repeats: int = 200) -> float:
    args = _inputs(people, with_context)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 20):
            t = time.perf_counter()
            model(*args)
            if i >= 20:  # warm-up
                times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _inputs(people: int, with_context: bool) -> tuple:
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(people, 17, 2, generator=g) * 0.1
    conf = torch.rand(people, 17, generator=g)
    if not with_context:
        return kp, conf
    feats = [torch.randn(1, *s, generator=g) for s in FEATURE_SHAPES]
    return kp, conf, feats, kp * 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped weights")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_lifter(args.weights)
    total = sum(p.numel() for p in model.parameters())
    context = sum(p.numel() for p in model.context.parameters())
    print(f"parameters: {total} total, {total - context} geometry, {context} context branch")
    for ctx in (False, True):
        name = "context" if ctx else "geometry-only"
        macs1 = count_macs(model, 1, ctx)
        print(
            f"{name:>13}: {macs1 / 1e6:.2f} M MACs per person; "
            f"{args.people} people: {median_latency_ms(model, args.people, ctx):.2f} ms median "
            f"({args.threads} threads)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
