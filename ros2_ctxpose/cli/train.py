"""``ctxpose train`` and ``ctxpose eval-h36m``: thin wrappers over the training wing's lifter
training and its S11 evaluation. The work modules (torch) are imported only when a command runs."""

from __future__ import annotations

import argparse
import importlib

from ros2_ctxpose.training import options

_COMMANDS = (
    (
        "train",
        "train",
        options.add_train_arguments,
        "train the lifter on Human3.6M mocap, rendered people and real frames (needs ../shared)",
    ),
    (
        "eval-h36m",
        "evaluate_h36m",
        options.add_eval_arguments,
        "MPJPE / PA-MPJPE of lifter weights: S11 mocap with exact and detector-like 2D; real frames, renders",
    ),
)


def _runner(module: str):
    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(f"ros2_ctxpose.training.{module}").run(args)

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``eval-h36m`` subcommands; each sets
    ``func(args) -> exit code``."""
    for name, module, add_arguments, help_text in _COMMANDS:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(parser)
        parser.set_defaults(func=_runner(module))
