"""3D pose errors: MPJPE and PA-MPJPE (after a similarity Procrustes alignment), batched in torch."""

from __future__ import annotations

import torch
from torch import Tensor


def mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean per-joint position error per sample, (B, J, 3) x (B, J, 3) -> (B,), in the input unit."""
    return (pred - gt).norm(dim=-1).mean(-1)


def procrustes_align(pred: Tensor, gt: Tensor) -> Tensor:
    """``pred`` moved onto ``gt`` by the best rotation, uniform scale and translation (Umeyama)."""
    mu_p, mu_g = pred.mean(1, keepdim=True), gt.mean(1, keepdim=True)
    p, q = pred - mu_p, gt - mu_g
    cov = p.transpose(1, 2) @ q  # (B, 3, 3)
    U, S, Vh = torch.linalg.svd(cov)
    # Reflection guard: flip the last singular direction when the best orthogonal map is a mirror.
    d = torch.sign(torch.linalg.det(U @ Vh))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    R = U @ D @ Vh
    scale = (S * D.diagonal(dim1=1, dim2=2)).sum(-1) / p.pow(2).sum((1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * (p @ R) + mu_g


def pa_mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """MPJPE after Procrustes alignment, (B,)."""
    return mpjpe(procrustes_align(pred.double(), gt.double()), gt.double()).to(pred.dtype)
