"""Command-line flags derived from ``PipelineConfig``: one ``--flag`` per setting, same name.

``--person-threshold`` sets ``person_threshold``, with the config's default, description and
choices, so ``ctxpose infer``, ``eval`` and ``bench`` cannot drift from the node's parameters.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable
from typing import Any

from ..core.config import FIELDS, PipelineConfig


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(
    parser: argparse.ArgumentParser, names: Iterable[str] | None = None, multiple: Iterable[str] = ()
) -> None:
    """Add a flag per config field (all, or ``names``); fields in ``multiple`` take several values
    (``nargs="+"``, for commands that sweep them, e.g. ``ctxpose bench --imgsz 640 320``)."""
    group = parser.add_argument_group("pipeline settings (the pose3d_node parameters of the same names)")
    multiple = set(multiple)
    for name in names or FIELDS:
        f = FIELDS[name]
        meta, default = f.metadata, f.default
        kwargs: dict[str, Any] = {"dest": name, "help": meta["description"]}
        if isinstance(default, bool):
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            kwargs.update(
                type=type(default),
                default=[default] if name in multiple else default,
                choices=meta["choices"],
                metavar=None if meta["choices"] else name.upper(),
            )
            if name in multiple:
                kwargs["nargs"] = "+"
        group.add_argument(flag(name), **kwargs)


class _DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: stores into the new flag's ``dest`` and says on stderr which name
    to use (kept so existing scripts run; hidden from ``--help``)."""

    def __init__(self, option_strings: list[str], dest: str, *, replacement: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        print(f"ctxpose: {option} is deprecated, use {self.replacement} (the node's parameter name)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(group: Any, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """``old`` as a hidden, deprecated spelling of the flag ``new`` (same ``dest``, same ``type``)."""
    group.add_argument(
        old,
        dest=dest,
        action=_DeprecatedFlag,
        replacement=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **kwargs,
    )


def config_from_args(args: argparse.Namespace, **overrides: Any) -> PipelineConfig:
    """The ``PipelineConfig`` of the parsed flags (fields without a flag keep their defaults)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(PipelineConfig) if hasattr(args, f.name)}
    values.update(overrides)
    return PipelineConfig(**values)
