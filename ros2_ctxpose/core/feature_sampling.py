"""Bilinear sampling of feature maps at points: what the lifter's deformable context reads.

Neither the detector's nor the lifter's: the detector makes the maps (and their per-person crops,
``core/detector/features.py``), the lifter samples them at learned offsets around each joint. Kept
apart so that neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def sample_features(
    features: Sequence[torch.Tensor], grid_xy: torch.Tensor, padding_mode: str = "border"
) -> list[torch.Tensor]:
    """Sample every feature map at the points ``grid_xy``.

    Args:
        features: maps ``(B, C_l, H_l, W_l)``.
        grid_xy: ``(B, P, 2)`` points as (x, y) in [-1, 1] over each map.
        padding_mode: passed to ``grid_sample``; "border" clamps points just outside to the edge.

    Returns:
        One ``(B, P, C_l)`` tensor per map, in ``grid_xy``'s dtype (maps are cast, so fp16
        detector features feed an fp32 lifter without surprises).
    """
    if grid_xy.ndim != 3 or grid_xy.shape[-1] != 2:
        raise ValueError(f"grid_xy must be (B, P, 2), got {tuple(grid_xy.shape)}")
    out = []
    for f in features:
        if f.ndim != 4 or f.shape[0] != grid_xy.shape[0]:
            raise ValueError(
                f"feature map {tuple(f.shape)} does not match grid batch {grid_xy.shape[0]} (maps must be (B, C, H, W))"
            )
        if f.device != grid_xy.device:
            raise ValueError(f"feature map on {f.device} but grid on {grid_xy.device}")
        f = f.to(grid_xy.dtype)
        if f.is_inference() and grid_xy.requires_grad:
            f = f.clone()  # detector maps come from inference_mode; autograd must save a copy
        sampled = F.grid_sample(
            f, grid_xy.unsqueeze(2), mode="bilinear", padding_mode=padding_mode, align_corners=False
        )
        out.append(sampled.squeeze(3).transpose(1, 2))  # (B, C, P, 1) -> (B, P, C)
    return out
