"""``ctxpose fuse``: the ``ctxpose infer`` results of synchronised cameras, fused into one world frame.

    ctxpose fuse --view cam0.jsonl cam0_pose.json --view cam1.jsonl cameras.json#S11/54138969 [--out fused.jsonl]

Each ``--view`` is one camera: its ``ctxpose infer`` JSON lines and its pose in the world, a JSON
file with ``R`` (3x3) and ``T`` (3, metres, the camera centre) in the cameras.json convention
``X_cam = R^T (X_world - T)``; ``FILE#KEY`` picks one camera of a file holding several (as
../shared/data/h36m/cameras.json). The views are synchronised by line: the k-th line of every file
is instant k (frames of synchronised videos). A line with an ``error``, or a file that ended, is a
camera absent from that instant. One line per instant is written::

    {"instant": k, "frame": "world", "files": ["a.mp4#000012", null], "views": 1,
     "people": [{... as ctxpose infer, with joints_3d_world_m / root_world_m instead of the
                 camera-frame fields, root_source "views", root_cov_m2 in the world frame}]}

Fusion: ``core/fusion.py`` (association across cameras, per-joint fusion weighted by each camera's
uncertainty along its viewing ray; ``--method average`` is the plain-mean baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np

#: ``ctxpose infer``'s camera-frame fields and their names in the fused (world-frame) output.
_WORLD_NAMES = {"joints_3d_cam_m": "joints_3d_world_m", "root_cam_m": "root_world_m"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..core.fusion import DEFAULT_GATE, METHODS

    parser = subparsers.add_parser(
        "fuse",
        help="fuse ctxpose infer results of synchronised cameras into one world frame",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--view",
        nargs=2,
        action="append",
        required=True,
        metavar=("RESULTS_JSONL", "CAMERA_JSON"),
        help="one camera: its ctxpose infer output and its pose (R, T; FILE#KEY for one of several)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output JSON lines (default: stdout)")
    parser.add_argument("--method", choices=METHODS, default="ray", help="ray-weighted fusion or the plain average")
    parser.add_argument("--gate", type=float, default=DEFAULT_GATE, help="association gate (mean squared Mahalanobis)")
    parser.set_defaults(func=run)


class InputError(ValueError):
    """An unusable camera file or results line (the message says which and why)."""


def camera_pose(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(R, T) of ``FILE`` or ``FILE#KEY`` (see the module docstring)."""
    path, _, key = spec.partition("#")
    try:
        data: Any = json.loads(Path(path).read_text())
        if key:
            data = data[key]
        R = np.asarray(data["R"], dtype=np.float64).reshape(3, 3)
        T = np.asarray(data["T"], dtype=np.float64).reshape(3)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{spec}: not a camera pose with R (3x3) and T (3): {type(exc).__name__}: {exc}") from exc
    if not (np.isfinite(R).all() and np.isfinite(T).all()) or not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
        raise InputError(f"{spec}: R must be a finite rotation matrix and T finite")
    return R, T


def _instants(files: list[IO[str]]) -> Iterator[list[str]]:
    """Line k of every file, until all have ended ("" for a file that ended)."""
    while True:
        lines = [f.readline() for f in files]
        if not any(lines):
            return
        yield lines


def _parse(line: str, where: str) -> dict[str, Any] | None:
    """One results line, or None (with a message on stderr when it is not valid JSON)."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        print(f"ctxpose fuse: {where}: not JSON ({exc}); camera left out of this instant", file=sys.stderr)
        return None
    return record if isinstance(record, dict) else None


def fused_record(k: int, records: list[dict[str, Any] | None], views: int, people: list) -> dict[str, Any]:
    from ..core.results import person_record

    return {
        "instant": k,
        "frame": "world",
        "files": [r.get("file") if r else None for r in records],
        "views": views,
        "people": [{_WORLD_NAMES.get(n, n): v for n, v in person_record(p).items()} for p in people],
    }


def run(args: argparse.Namespace) -> int:
    from ..core.fusion import FusedIdentities, fuse_instant
    from ..core.results import person_from_record, to_json

    try:
        poses = [camera_pose(camera) for _, camera in args.view]
    except InputError as exc:
        print(f"ctxpose fuse: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        try:
            files = [stack.enter_context(open(results)) for results, _ in args.view]
            out = stack.enter_context(open(args.out, "w")) if args.out else sys.stdout
        except OSError as exc:
            print(f"ctxpose fuse: {exc}", file=sys.stderr)
            return 2
        identities = FusedIdentities()
        for k, lines in enumerate(_instants(files)):
            records = [_parse(line, f"{results} line {k + 1}") for line, (results, _) in zip(lines, args.view)]
            views, used = [], 0
            for (results, _), (R, T), record in zip(args.view, poses, records):
                people = []
                if record is not None and "error" not in record:
                    try:
                        people = [person_from_record(p) for p in record["people"]]
                        used += 1
                    except (KeyError, TypeError, ValueError) as exc:
                        print(
                            f"ctxpose fuse: {results} line {k + 1}: camera left out ({type(exc).__name__}: {exc})",
                            file=sys.stderr,
                        )
                views.append((people, R, T))  # an absent camera keeps its place (stable ids)
            fused = fuse_instant(views, method=args.method, gate=args.gate, identities=identities)
            print(to_json(fused_record(k, records, used, fused)), file=out, flush=True)
    return 0
