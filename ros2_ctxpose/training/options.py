"""Command-line options of the lifter's training and evaluation, without torch.

Kept apart from the modules that do the work so that ``ctxpose --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros2_ctxpose.core.lifter.config import LifterConfig

#: The model settings a training run chooses (flags ``--dim`` ... ``--context-depth-only``); the
#: rest of ``TrainConfig.model`` keeps ``LifterConfig``'s defaults.
MODEL_FLAGS: tuple[str, ...] = ("dim", "depth", "heads", "mlp_ratio", "context_depth_only")


@dataclass
class TrainConfig:
    """Training settings. The defaults train the geometry-only lifter from scratch on mocap, as the
    first release was; the rendered-people runs start from those weights (``--init``) and add
    ``--renders`` (see MODEL_CARD.md for the exact commands of the shipped weights)."""

    out: str = "runs/lifter"
    steps: int = 10000
    batch_size: int = 512
    #: Peak of the one-cycle schedule; 2e-3 left the transformer stuck near the mean pose.
    lr: float = 6e-4
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    #: Share of the mocap part of each batch seen through random virtual cameras (the rest: the
    #: real H36M cameras).
    virtual_fraction: float = 0.5
    flip_prob: float = 0.5
    #: Every N-th frame of the 50 Hz mocap for training (4 = 12.5 Hz) and for validation.
    train_stride: int = 4
    val_stride: int = 50
    eval_every: int = 250
    #: Stop after this step (0: run to ``steps``), to split a run over sessions with --resume.
    stop_at: int = 0
    seed: int = 0
    #: One thread: on 2 cores shared with other jobs, two threads ran 2-4x slower (spinning).
    threads: int = 1
    #: Where the model, its batches and the loss live (cpu, cuda, cuda:1). Batches are drawn on the
    #: CPU with the seeded generator and moved there, so a seed draws the same people on any device.
    device: str = "cpu"
    #: The model: a fresh one of this architecture (dim, depth, heads, mlp_ratio) unless ``init``
    #: names weights; ``context_depth_only`` applies to runs with ``context``.
    model: LifterConfig = field(default_factory=LifterConfig)
    #: Weights to start from ("" = a fresh model of ``model``'s architecture; "shipped" = the
    #: packaged weights); the architecture then comes from the file.
    init: str = ""
    #: Shard folders of rendered people (``ctxpose synth``), comma-separated; "" = mocap only.
    renders: str = ""
    #: Share of each batch drawn from the rendered people (when there are any).
    render_fraction: float = 0.5
    #: Annotated real frames to train on (an annotations.json in the lifter's layout, through the
    #: torch fp32 detector like ``val_real``); never the validation frames. "" = none.
    real: str = ""
    #: Share of each batch drawn from ``real`` (when given).
    real_fraction: float = 0.0
    #: Feed the rendered people's feature crops to the context branch and train it; without it the
    #: same batches train the geometry-only model, so two runs differ only in context.
    context: bool = False
    #: The context branch starts untrained: its learning rate is the base one times this.
    context_lr_scale: float = 5.0
    #: Train the geometry weights too; without it only the context branch learns (from the
    #: rendered people alone), so the geometry path stays exactly the starting model's.
    train_geometry: bool = True
    #: Held-out rendered people (e.g. S11 renders), comma-separated shard folders; "" = none.
    val_renders: str = ""
    #: Annotated real frames in the lifter's layout, measured at every evaluation ("" = none).
    val_real: str = ""

    def __post_init__(self) -> None:
        if self.real and self.real == self.val_real:
            raise ValueError(f"--real {self.real} is also --val-real: training on the validation frames")
        if self.render_fraction + self.real_fraction > 1.0:
            raise ValueError("--render-fraction plus --real-fraction must not exceed 1 (mocap fills the rest)")

    def source_shares(self) -> dict[str, float]:
        """The batch's sources and their shares, in drawing order: mocap (whatever the others
        leave), the rendered people and the real frames (each only when given)."""
        shares = {
            "renders": self.render_fraction if self.renders else 0.0,
            "real": self.real_fraction if self.real else 0.0,
        }
        return {"mocap": 1.0 - sum(shares.values()), **{k: v for k, v in shares.items() if v > 0}}


def _add_flag(parser: argparse.ArgumentParser, name: str, value: Any) -> None:
    flag = f"--{name.replace('_', '-')}"
    if isinstance(value, bool):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
    else:
        parser.add_argument(flag, type=type(value), default=value)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per ``TrainConfig`` field (``--batch-size`` for ``batch_size``) and per model
    setting in ``MODEL_FLAGS`` (``--dim``), plus ``--resume``."""
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name != "model":
            _add_flag(parser, f.name, getattr(defaults, f.name))
    for name in MODEL_FLAGS:
        _add_flag(parser, name, getattr(defaults.model, name))
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt if it exists")


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``add_train_arguments`` flags."""
    model = LifterConfig(**{name: getattr(args, name) for name in MODEL_FLAGS})
    return TrainConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "model"}, model=model
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="lifter weights (.pt); default: the shipped weights")
    parser.add_argument("--stride", type=int, default=10, help="use every N-th S11 mocap frame (50 Hz); 1 = all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the detector-like noise")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-flip-test", action="store_true", help="one view per pose instead of averaging with the mirrored input"
    )
    parser.add_argument(
        "--real",
        type=Path,
        default=None,
        help="also annotated real frames (annotations.json) through the torch fp32 detector, as the "
        "training's validation sees them: geometry path, and the context path when the weights have one",
    )
    parser.add_argument(
        "--renders", type=Path, default=None, help="also rendered people (a `ctxpose synth` folder), as --real"
    )
    parser.add_argument(
        "--skip-mocap", action="store_true", help="skip the S11 mocap evaluation (--real/--renders only)"
    )
    parser.add_argument(
        "--noise-ablation",
        action="store_true",
        help="also evaluate each kind of detector-like corruption alone, with image-plane and depth errors",
    )
