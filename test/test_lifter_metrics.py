"""MPJPE and PA-MPJPE on cases with known answers."""

from __future__ import annotations

import math

import torch

from ros2_ctxpose.core.metrics import mpjpe, pa_mpjpe, procrustes_align


def rotation_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_mpjpe_known_value() -> None:
    gt = torch.zeros(2, 17, 3)
    pred = gt.clone()
    pred[0, :, 0] = 3.0
    pred[0, :, 1] = 4.0  # every joint 5 away
    pred[1, 0, 2] = 17.0  # one joint 17 away -> mean 1
    torch.testing.assert_close(mpjpe(pred, gt), torch.tensor([5.0, 1.0]))


def test_pa_mpjpe_of_rotated_scaled_shifted_copy_is_zero() -> None:
    gt = torch.randn(4, 17, 3, generator=torch.Generator().manual_seed(0))
    pred = 1.3 * gt @ rotation_z(0.7).T + torch.tensor([0.5, -2.0, 3.0])
    assert mpjpe(pred, gt).min() > 0.1
    assert pa_mpjpe(pred, gt).max() < 1e-5


def test_pa_mpjpe_does_not_undo_a_mirror_image() -> None:
    gt = torch.randn(1, 17, 3, generator=torch.Generator().manual_seed(1))
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt).item() > 0.05
    aligned = procrustes_align(mirrored.double(), gt.double())
    assert (
        torch.linalg.det(
            torch.linalg.lstsq(
                mirrored[0].double() - mirrored[0].double().mean(0), aligned[0] - aligned[0].mean(0)
            ).solution
        )
        > 0
    )
