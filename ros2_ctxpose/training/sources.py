"""Where training people come from: the ``Source`` protocol and its three kinds.

A training batch is drawn from a list of sources and their shares (``TrainConfig.source_shares``):
Human3.6M mocap seen through real and virtual cameras with detector-like 2D (``MocapSource``),
and people as the real detector saw them, rendered or annotated real frames (``PeopleSource`` over
a ``training.people.PeopleSet``). Adding a kind of data is one class with ``errors``; the loop in
``training/train.py`` does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ros2_ctxpose.core.lifter.model import ContextLifter
from ros2_ctxpose.core.metrics import mpjpe
from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS, load_cameras, load_poses, project_real_cameras
from ros2_ctxpose.training.people import PeopleSet, predict
from ros2_ctxpose.training.synthetic_2d import DetectorNoise, lifter_sample, mirror
from ros2_ctxpose.training.virtual_camera import sample_virtual_cameras


class Source(Protocol):
    """A kind of training people."""

    @property
    def name(self) -> str:
        """What the logs call it (mocap, renders, real)."""
        ...

    def __len__(self) -> int: ...

    def errors(
        self, model: ContextLifter, n: int, gen: torch.Generator, context: bool, device: torch.device
    ) -> torch.Tensor:
        """Per-person MPJPE (metres, shape (n,)) of ``model`` (on ``device``) on ``n`` people drawn
        with ``gen`` on the CPU, then moved to ``device``; ``context``: the run trains the context
        branch (people with images then go through it)."""
        ...


@dataclass(frozen=True)
class MocapData:
    real_joints: torch.Tensor  # (N_real, 17, 3) camera frame, metres
    real_bounds: torch.Tensor  # (N_real, 4)
    world: torch.Tensor  # (N_world, 17, 3) world frame, metres (z up, floor at 0)


def load_training_data(stride: int) -> MocapData:
    poses = load_poses(TRAIN_SUBJECTS, stride)
    joints, bounds = project_real_cameras(poses, load_cameras())
    world = torch.from_numpy(np.concatenate(list(poses.values())))
    return MocapData(torch.from_numpy(joints), torch.from_numpy(bounds), world)


@dataclass(frozen=True)
class MocapSource:
    """Mocap people: ``virtual_fraction`` of them seen by fresh random virtual cameras, the rest by
    the subjects' real cameras (projections precomputed), ``flip_prob`` of them mirrored, with
    detector-like 2D made on the fly. No image, so always the geometry path."""

    data: MocapData
    virtual_fraction: float
    flip_prob: float
    noise: DetectorNoise
    name: str = "mocap"

    def __len__(self) -> int:
        return len(self.data.real_joints) + len(self.data.world)

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``n`` mocap people: detector-like 2D (kp, conf) and root-relative targets."""
        n_virtual = int(round(n * self.virtual_fraction))
        idx = torch.randint(len(self.data.real_joints), (n - n_virtual,), generator=gen)
        world = self.data.world[torch.randint(len(self.data.world), (n_virtual,), generator=gen)]
        virt_joints, cams = sample_virtual_cameras(world, generator=gen)
        joints = torch.cat([self.data.real_joints[idx], virt_joints])
        bounds = torch.cat([self.data.real_bounds[idx], cams.bounds])
        joints, bounds = mirror(joints, bounds, torch.rand(n, generator=gen) < self.flip_prob)
        return lifter_sample(joints, bounds, self.noise, gen)

    def errors(
        self, model: ContextLifter, n: int, gen: torch.Generator, context: bool, device: torch.device
    ) -> torch.Tensor:
        kp, conf, target = (t.to(device) for t in self.sample(n, gen))
        return mpjpe(model(kp, conf), target)


@dataclass(frozen=True)
class PeopleSource:
    """People as the real detector saw them (rendered shards, annotated real frames): their
    keypoints, and with ``context`` their feature crops through the context branch."""

    name: str
    people: PeopleSet

    def __len__(self) -> int:
        return len(self.people)

    def errors(
        self, model: ContextLifter, n: int, gen: torch.Generator, context: bool, device: torch.device
    ) -> torch.Tensor:
        rows = self.people.take(torch.randint(len(self.people), (n,), generator=gen).numpy(), with_crops=context)
        rows = {k: tuple(c.to(device) for c in v) if isinstance(v, tuple) else v.to(device) for k, v in rows.items()}
        return mpjpe(predict(model, rows, context), rows["target"])


def batch_counts(batch_size: int, shares: Sequence[float]) -> list[int]:
    """People per source in one batch: every source after the first gets its share (rounded), the
    first what is left, so the counts always add up to ``batch_size``."""
    rest = [int(round(batch_size * share)) for share in shares[1:]]
    first = batch_size - sum(rest)
    if first < 0:
        raise ValueError(f"the shares {list(shares[1:])} of the later sources add up to more than one batch")
    return [first, *rest]


def batch_errors(
    model: ContextLifter,
    sources: Sequence[tuple[Source, float]],
    batch_size: int,
    gen: torch.Generator,
    context: bool,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Per-person errors over one batch mixed from ``sources`` (each with its share), drawn in the
    order given on the CPU and moved to ``device``, where ``model`` is; a source whose count rounds
    to zero draws nothing."""
    counts = batch_counts(batch_size, [share for _, share in sources])
    device = torch.device(device)
    return torch.cat(
        [src.errors(model, n, gen, context, device) for (src, _), n in zip(sources, counts, strict=True) if n]
    )
