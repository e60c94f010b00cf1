"""``ctxpose``: the command-line entry point, a dispatcher over subcommand modules.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func`` (args -> exit code). Modules import their heavy dependencies (torch, the models)
inside ``func`` so that ``ctxpose --help`` stays fast. Subcommands from modules that are not
installed in this copy are left out; any other import error is a bug and is raised.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
_REQUIRED_MODULES = ("ros2_ctxpose.cli.infer", "ros2_ctxpose.cli.evaluate", "ros2_ctxpose.cli.fuse")
_OPTIONAL_MODULES = ("ros2_ctxpose.cli.train", "ros2_ctxpose.cli.bench", "ros2_ctxpose.cli.synth")


def _register_optional(subparsers: argparse._SubParsersAction, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return
    module.register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctxpose", description="Multi-person 3D human pose from single images, folders and videos."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _REQUIRED_MODULES:
        importlib.import_module(name).register(subparsers)
    for name in _OPTIONAL_MODULES:
        _register_optional(subparsers, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
