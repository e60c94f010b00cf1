"""Training sources: one batch mixed from a list of sources and their shares; the training config
nests the model's ``LifterConfig`` and its flags stay what they were."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from ros2_ctxpose.core.lifter.config import LifterConfig
from ros2_ctxpose.training.options import TrainConfig, add_train_arguments, train_config_from_args
from ros2_ctxpose.training.people import PeopleSet
from ros2_ctxpose.training.sources import PeopleSource, batch_counts, batch_errors


def test_batch_counts_give_the_first_source_the_rest() -> None:
    assert batch_counts(512, [1.0]) == [512]
    assert batch_counts(512, [0.5, 0.5]) == [256, 256]
    assert batch_counts(10, [0.0, 0.33, 0.25]) == [5, 3, 2]  # 3.3 -> 3, 2.5 -> 2 (as round does)
    assert batch_counts(8, [0.0, 1.0]) == [0, 8]
    with pytest.raises(ValueError, match="more than one batch"):
        batch_counts(8, [0.0, 0.75, 0.5])


def test_source_shares_follow_the_config() -> None:
    assert TrainConfig().source_shares() == {"mocap": 1.0}
    assert TrainConfig(render_fraction=0.9).source_shares() == {"mocap": 1.0}  # no renders given
    assert TrainConfig(renders="a").source_shares() == {"mocap": 0.5, "renders": 0.5}
    shares = TrainConfig(renders="a", render_fraction=0.25, real="r.json", real_fraction=0.25).source_shares()
    assert shares == {"mocap": 0.5, "renders": 0.25, "real": 0.25} and list(shares) == ["mocap", "renders", "real"]
    with pytest.raises(ValueError, match="validation frames"):
        TrainConfig(real="s11.json", val_real="s11.json", real_fraction=0.1)
    with pytest.raises(ValueError, match="must not exceed 1"):
        TrainConfig(renders="a", render_fraction=0.8, real="r.json", real_fraction=0.3)


def _people(n: int, seed: int) -> PeopleSet:
    rng = np.random.default_rng(seed)
    return PeopleSet(
        kp_norm=rng.normal(size=(n, 17, 2)).astype(np.float32),
        conf=np.ones((n, 17), np.float32),
        joints_grid=np.zeros((n, 17, 2), np.float32),
        crops=(),
        target=rng.normal(size=(n, 17, 3)).astype(np.float32),
    )


class _Constant:
    """A model whose answer is all zeros: each person's error is then the mean norm of its target."""

    def __call__(self, kp: torch.Tensor, conf: torch.Tensor, *context: object) -> torch.Tensor:
        return torch.zeros(len(kp), 17, 3)


def test_batch_errors_draw_each_source_its_count_in_order() -> None:
    a, b = PeopleSource("a", _people(30, 0)), PeopleSource("b", _people(30, 1))
    norms = {s.name: np.linalg.norm(s.people.target, axis=-1).mean(axis=1) for s in (a, b)}
    errors = batch_errors(_Constant(), [(a, 0.0), (b, 0.25)], 8, torch.Generator().manual_seed(0), False)  # type: ignore[arg-type]
    assert errors.shape == (8,)
    got = errors.numpy()
    assert all(np.isclose(norms["a"], e, atol=1e-5).any() for e in got[:6])  # 6 people from a first
    assert all(np.isclose(norms["b"], e, atol=1e-5).any() for e in got[6:])  # then 2 from b


def test_train_config_nests_the_lifter_config_and_keeps_the_flags() -> None:
    assert TrainConfig().model == LifterConfig()
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    default = train_config_from_args(parser.parse_args([]))
    assert default == TrainConfig()
    cfg = train_config_from_args(
        parser.parse_args(["--dim", "64", "--heads", "2", "--context-depth-only", "--steps", "7"])
    )
    assert (cfg.model.dim, cfg.model.heads, cfg.model.context_depth_only, cfg.steps) == (64, 2, True, 7)
    assert cfg.model.depth == LifterConfig().depth
