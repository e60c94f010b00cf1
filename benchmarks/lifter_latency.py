"""Parameters, MACs and CPU latency of the lifter (a benchmark, not a test: timings vary by machine).

    source scripts/env.sh && python benchmarks/lifter_latency.py [--weights PATH] [--people 5] [--threads 1]

Method: ``ros2_ctxpose/benchmarking/lifter.py``. The pipeline runs the lifter with one torch thread
beside OpenVINO (the default backend on a CPU), hence ``--threads 1`` by default.
"""

from __future__ import annotations

import argparse

import torch

from ros2_ctxpose.benchmarking.lifter import lifter_costs
from ros2_ctxpose.core.lifter import load_lifter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped weights")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_lifter(args.weights)
    total = sum(p.numel() for p in model.parameters())
    context = sum(p.numel() for p in model.context.parameters())
    print(f"parameters: {total:,} total, {total - context:,} geometry, {context:,} context branch")
    print(f"context trained: {model.config.context_trained}, depth only: {model.config.context_depth_only}")
    for cost in lifter_costs(model, args.people, args.repeats):
        print(
            f"{cost.path:>13}: {cost.macs_per_person / 1e6:.2f} M MACs per person; {cost.people} people: "
            f"{cost.median_ms:.2f} ms median ({args.threads} thread{'s' if args.threads > 1 else ''})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
