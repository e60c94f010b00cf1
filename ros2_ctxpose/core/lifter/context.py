"""Deformable multi-level context sampling (after Context-Aware PoseFormer, Zhao et al. 2023).

2D keypoints alone are ambiguous (depth order of limbs, foreshortening); the detector's feature
maps around each joint hold the appearance cues that resolve it. For every joint token and every
feature level, the module predicts K sampling offsets (relative to the person's 2D size, so the
same offsets fit near and far people) and one attention weight per point, softmax-normalised over
all levels and points. Features are sampled bilinearly at those points, averaged by the weights,
projected to the model width and added to the joint token.

The output projection starts at zero: a lifter trained without images answers exactly the same
with or without feature maps, and fine-tuning on images starts from the geometry-only model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ros2_ctxpose.core.feature_sampling import sample_features


def weighted_centre_scale(xy: Tensor, weight: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Confidence-weighted centre (B, 2) and RMS radius (B,) of a 2D point set (B, J, 2).

    Weighted statistics keep missing (zero-confidence) joints out, and unlike a bounding box they
    move smoothly when one joint flickers in and out.
    """
    w = weight.clamp_min(0.0)
    total = w.sum(-1, keepdim=True).clamp_min(eps)
    centre = (w.unsqueeze(-1) * xy).sum(-2) / total
    sq = ((xy - centre.unsqueeze(-2)) ** 2).sum(-1)
    scale = ((w * sq).sum(-1) / total.squeeze(-1)).sqrt().clamp_min(eps)
    return centre, scale


class DeformableContext(nn.Module):
    """Per-joint context token from multi-level feature maps, sampled at learned offsets."""

    def __init__(self, dim: int, channels: Sequence[int], points: int = 4, offset_range: float = 0.5) -> None:
        super().__init__()
        self.levels = len(channels)
        self.points = points
        self.offset_range = offset_range
        self.offsets = nn.Linear(dim, self.levels * points * 2)
        self.weights = nn.Linear(dim, self.levels * points)
        self.level_proj = nn.ModuleList(nn.Linear(c, dim) for c in channels)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        self._init_parameters()

    def _init_parameters(self) -> None:
        # Start from points on a ring around the joint (as Deformable DETR does), equal weights.
        nn.init.zeros_(self.offsets.weight)
        angles = torch.arange(self.points) * (2 * math.pi / self.points)
        ring = torch.stack([angles.cos(), angles.sin()], -1) * 0.5  # pre-tanh, |offset| ~ 0.46 range
        with torch.no_grad():
            self.offsets.bias.copy_(ring.repeat(self.levels, 1).flatten())
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, tokens: Tensor, crops: Sequence[Tensor], joints_grid: Tensor, conf: Tensor) -> Tensor:
        """Context tokens (B, J, D) for joint tokens (B, J, D).

        ``crops``: one tensor per level, (B, C_l, S_l, S_l), each person's own crop of the detector's
        maps (``core.detector.features.crop_people``); ``joints_grid`` (B, J, 2): the joints in the
        crops' ``grid_sample`` coordinates.
        """
        if len(crops) != self.levels:
            raise ValueError(f"expected {self.levels} feature levels, got {len(crops)}")
        B, J, _ = tokens.shape
        L, K = self.levels, self.points
        _, scale = weighted_centre_scale(joints_grid, conf)
        offsets = torch.tanh(self.offsets(tokens)).view(B, J, L, K, 2) * (self.offset_range * scale.view(B, 1, 1, 1, 1))
        points = joints_grid.view(B, J, 1, 1, 2) + offsets
        weights = self.weights(tokens).view(B, J, L * K).softmax(-1).view(B, J, L, K)
        context = tokens.new_zeros(B, J, tokens.shape[-1])
        for level, (crop, proj) in enumerate(zip(crops, self.level_proj)):
            (sampled,) = sample_features((crop,), points[:, :, level].reshape(B, J * K, 2), padding_mode="zeros")
            pooled = (weights[:, :, level].unsqueeze(-1) * sampled.view(B, J, K, -1)).sum(2)
            context = context + proj(pooled)
        return self.out(self.norm(context))
