"""``python -m ros2_ctxpose.training.synthetic.realism --renders DIR [--renders DIR2 ...] [--json OUT]``:
the realism report of one or more render sets against the real sets (collected once)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .real import collect_real
from .renders import collect_renders
from .report import format_report, render_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ros2_ctxpose.training.synthetic.realism",
        description="The gap between renders and real frames in the detector's behaviour: keypoint error and "
        "confidence distributions, and a classifier telling rendered from real feature crops.",
    )
    parser.add_argument(
        "--renders", type=Path, action="append", required=True, help="a `ctxpose synth --out` folder (repeatable)"
    )
    parser.add_argument("--max-people", type=int, default=2000, help="rendered people sampled per set (seeded)")
    parser.add_argument("--s11-step", type=int, default=4, help="every step-th of the 399 real S11 frames")
    parser.add_argument("--demo-step", type=int, default=4, help="every step-th frame of the demo clip")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the error ratio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    real_by_geometry: dict = {}
    reports = {}
    for root in args.renders:
        try:
            renders = collect_renders(root, args.max_people, args.seed)
        except (FileNotFoundError, ValueError) as exc:
            parser.error(str(exc))
        if renders.geometry not in real_by_geometry:  # real crops are cut as this set's
            real_by_geometry[renders.geometry] = collect_real(renders.geometry, args.s11_step, args.demo_step)
        reports[str(root)] = render_report(renders, real_by_geometry[renders.geometry], args.seed, args.bootstrap)
        print(format_report(str(root), reports[str(root)]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
