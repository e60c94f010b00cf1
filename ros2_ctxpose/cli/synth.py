"""``ctxpose synth``: the synthetic data engine (rendered people with known 3D joints, the real
detector run on them). Needs the ``[synth]`` extra; the work module is imported only when the
command runs, so ``ctxpose --help`` stays fast and works without it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: Human3.6M's training subjects (``training.h36m.TRAIN_SUBJECTS``, not imported here: it pulls
#: OpenCV into every ``ctxpose`` start).
DEFAULT_SUBJECTS = "S1,S5,S6,S7,S8"


def _run(args: argparse.Namespace) -> int:
    from ros2_ctxpose.training.synthetic import generate

    try:
        args.subjects = ",".join(generate.parse_subjects(args.subjects))
    except ValueError as e:
        args.parser.error(str(e))
    return generate.run(args)


def _views(text: str) -> int:
    views = int(text)
    if not 1 <= views <= 4:
        raise argparse.ArgumentTypeError(f"--views must be 1-4, got {views}")
    return views


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand; it sets ``func(args) -> exit code``."""
    description = (
        "render people posed from Human3.6M mocap, run the detector on them and store "
        "training samples for the lifter's context branch (deterministic, resumable)"
    )
    parser = subparsers.add_parser(
        "synth", help=description, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="output folder (shards are added to it; reruns resume)")
    parser.add_argument("--people", type=int, default=10_000, help="stop once at least this many people are stored")
    parser.add_argument("--seed", type=int, default=0, help="shard i depends only on (seed, i)")
    parser.add_argument(
        "--subjects",
        default=DEFAULT_SUBJECTS,
        help="mocap subjects posing the bodies; S11 alone for a validation split",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"processes, one torch thread each (default: this machine's {os.cpu_count()} CPUs); 0 runs in this "
        "process; with --ray, actors (default: one per CPU of the cluster)",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="make the shards on Ray instead of local processes: 'auto' (this machine's running Ray, or a new "
        "local one with --workers CPUs) or a cluster (ray://head:10001, head:6379). Every node needs this "
        "package, the [synth] extras and the backgrounds, and --out must be a filesystem every node and this "
        "machine share (NFS, a mounted bucket): checked at the start. Needs the [ray] extra",
    )
    parser.add_argument(
        "--images-per-shard", type=int, default=32, help="scenes rendered per shard (each seen by --views cameras)"
    )
    parser.add_argument(
        "--views",
        type=_views,
        default=1,
        help="cameras per instant (1-4): the same people rendered from each; >1 keeps full-size images "
        "and writes <out>/annotations.json (one record per view image and person, with R, T, instant)",
    )
    parser.add_argument(
        "--stride", type=int, default=10, help="every stride-th mocap frame (50 Hz; 10 -> ~35k training poses)"
    )
    parser.add_argument("--device", default="cpu", help="detector device (cpu, cuda)")
    parser.add_argument("--preview", type=Path, default=None, help="also write a contact sheet PNG of random samples")
    parser.add_argument(
        "--fetch-backgrounds",
        action="store_true",
        help="download the background photographs (Debian packages) into the cache first",
    )
    parser.set_defaults(func=_run, parser=parser)
