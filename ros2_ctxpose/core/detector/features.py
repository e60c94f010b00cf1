"""Bilinear sampling of detector feature maps at joint locations, for the context lifter.

The lifter samples each joint's context at its 2D position plus learned offsets, so this is
a thin, differentiable (w.r.t. the grid and the features), batched wrapper around
``F.grid_sample``. Grid coordinates come from :meth:`Letterbox.to_grid`; with
``align_corners=False`` the same coordinates are valid on every stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def sample_features(features: Sequence[torch.Tensor], grid_xy: torch.Tensor,
                    padding_mode: str = "border") -> list[torch.Tensor]:
    """Sample every feature map at the points ``grid_xy``.

    Args:
        features: maps ``(B, C_l, H_l, W_l)`` (e.g. ``Detections.features``, B = 1).
        grid_xy: ``(B, P, 2)`` points as (x, y) in [-1, 1] over the network input.
            Points outside are clamped to the border ("border"), since a joint just off the
            image should still see the nearest image context rather than zeros.
        padding_mode: passed to ``grid_sample``.

    Returns:
        One ``(B, P, C_l)`` tensor per map, in ``grid_xy``'s dtype (maps are cast, so fp16
        detector features feed an fp32 lifter without surprises).
    """
    if grid_xy.ndim != 3 or grid_xy.shape[-1] != 2:
        raise ValueError(f"grid_xy must be (B, P, 2), got {tuple(grid_xy.shape)}")
    out = []
    for f in features:
        if f.ndim != 4 or f.shape[0] != grid_xy.shape[0]:
            raise ValueError(f"feature map {tuple(f.shape)} does not match grid batch "
                             f"{grid_xy.shape[0]} (maps must be (B, C, H, W))")
        if f.device != grid_xy.device:
            raise ValueError(f"feature map on {f.device} but grid on {grid_xy.device}")
        f = f.to(grid_xy.dtype)
        if f.is_inference() and grid_xy.requires_grad:
            f = f.clone()  # detector maps come from inference_mode; autograd must save a copy
        sampled = F.grid_sample(f, grid_xy.unsqueeze(2), mode="bilinear",
                                padding_mode=padding_mode, align_corners=False)
        out.append(sampled.squeeze(3).transpose(1, 2))  # (B, C, P, 1) -> (B, P, C)
    return out
