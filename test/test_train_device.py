"""``ctxpose train --device``: the CPU stays the default, batches (drawn on the CPU) go to the
model's device, and a device this machine lacks is one line and exit 2, not a traceback. A real
GPU run is ``benchmarks/gpu_train.sh`` on a lent GPU machine."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ros2_ctxpose.training import train
from ros2_ctxpose.training.options import TrainConfig, add_train_arguments, train_config_from_args
from ros2_ctxpose.training.people import PeopleSet
from ros2_ctxpose.training.sources import PeopleSource, batch_errors


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(list(argv))


class _DeviceRecorder(torch.nn.Module):
    """Answers zeros where its inputs are and records where they were."""

    def forward(self, kp: torch.Tensor, conf: torch.Tensor, *context: object) -> torch.Tensor:
        self.seen = {kp.device.type, conf.device.type}
        return torch.zeros(len(kp), 17, 3, device=kp.device)


def test_the_cpu_stays_the_default_and_the_flag_reaches_the_config() -> None:
    assert TrainConfig().device == "cpu" and train_config_from_args(_parse()).device == "cpu"
    assert train_config_from_args(_parse("--device", "cuda:1")).device == "cuda:1"


def test_batches_drawn_on_the_cpu_reach_the_models_device() -> None:
    rng = np.random.default_rng(0)
    people = PeopleSet(
        kp_norm=rng.normal(size=(20, 17, 2)).astype(np.float32),
        conf=np.ones((20, 17), np.float32),
        joints_grid=np.zeros((20, 17, 2), np.float32),
        crops=(),
        target=rng.normal(size=(20, 17, 3)).astype(np.float32),
    )
    model = _DeviceRecorder()
    source = [(PeopleSource("renders", people), 1.0)]
    # "meta": a device every torch build has, standing in for a GPU (tensors without storage).
    errors = batch_errors(model, source, 8, torch.Generator().manual_seed(0), False, "meta")  # type: ignore[arg-type]
    assert errors.device.type == "meta" and model.seen == {"meta"}
    on_cpu = batch_errors(model, source, 8, torch.Generator().manual_seed(0), False)  # type: ignore[arg-type]
    assert on_cpu.device.type == "cpu" and model.seen == {"cpu"} and on_cpu.shape == (8,)


def test_an_unknown_device_is_one_line_and_exit_2(capsys, tmp_path) -> None:
    assert train.run(_parse("--out", str(tmp_path / "run"), "--device", "nowhere")) == 2
    err = capsys.readouterr().err
    assert err.startswith("ctxpose train:") and err.count("\n") == 1 and "nowhere" in err
    assert not (tmp_path / "run").exists()  # nothing started
