"""ContextLifter: single-frame 2D -> 3D lifter with optional image context.

Input: COCO-17 keypoints as undistorted normalised camera coordinates (x/z, y/z) and their
confidences, so one model serves every camera. The model normalises them itself (below), which
keeps training and inference identical:

* eyes and ears (``LifterConfig.masked_input_joints``) are zeroed with confidence 0: Human3.6M has
  no face points to train them on, and face points from the head's two mocap joints would need
  the head's roll, which the mocap does not fix;
* the points are centred on their confidence-weighted mean and divided by their weighted RMS
  radius; the centre and log radius go in as an extra "global" token, so the model still knows
  the viewing direction and the apparent size (perspective).

Tokens: one per COCO joint, embedding of (x, y, confidence) plus a learned joint embedding, plus
the global token; optionally plus a context token per joint sampled from the detector's feature
maps (``DeformableContext``). A pre-norm transformer mixes the 18 tokens and a linear head on
the flattened tokens regresses the 17 H36M joints, root-relative (pelvis = 0), in metres, in the
camera frame. Without feature maps the context branch is skipped: that is the geometry-only
model trained on mocap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ros2_ctxpose.core.lifter.config import LifterConfig
from ros2_ctxpose.core.lifter.context import DeformableContext, weighted_centre_scale
from ros2_ctxpose.core.skeleton import COCO17_FLIP, H36M17_FLIP
from ros2_ctxpose.core.weights import (
    DIGEST_KEY,
    WeightsError,
    check_content,
    content_sha256,
    non_finite,
    read_weights_file,
)


class Block(nn.Module):
    """Pre-norm transformer block (attention + GELU MLP), written out rather than
    ``nn.TransformerEncoderLayer``: its fused inference path hides the matmuls from
    ``FlopCounterMode`` and is no faster for 18 tokens on a CPU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(attn.transpose(1, 2).reshape(B, N, D))
        return x + self.mlp(self.norm2(x))


class ContextLifter(nn.Module):
    """COCO-17 normalised keypoints (+ optional detector features) -> H36M-17 root-relative metres."""

    # Buffers (register_buffer in __init__), declared for the type checker.
    input_keep: Tensor
    mirror_x: Tensor
    coco_flip: Tensor
    h36m_flip: Tensor

    def __init__(self, config: LifterConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LifterConfig()
        keep = torch.ones(cfg.num_joints_in)
        keep[list(cfg.masked_input_joints)] = 0.0
        self.register_buffer("input_keep", keep, persistent=False)
        self.register_buffer("mirror_x", torch.tensor([-1.0, 1.0, 1.0]), persistent=False)
        self.register_buffer("coco_flip", torch.tensor(COCO17_FLIP), persistent=False)
        self.register_buffer("h36m_flip", torch.tensor(H36M17_FLIP), persistent=False)
        self.joint_in = nn.Linear(3, cfg.dim)
        self.global_in = nn.Linear(3, cfg.dim)
        self.joint_embed = nn.Parameter(torch.zeros(1, cfg.num_joints_in + 1, cfg.dim))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        self.context = DeformableContext(cfg.dim, cfg.context_channels, cfg.context_points, cfg.context_offset_range)
        self.blocks = nn.Sequential(*(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth)))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear((cfg.num_joints_in + 1) * cfg.dim, cfg.num_joints_out * 3)
        # The head starts at zero: the untrained model answers the all-joints-at-the-root pose
        # instead of a random metre-sized one, which made early training wander.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def normalize_input(self, kp_norm: Tensor, conf: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, J, 2), (B, J) -> joint features (B, J, 3), global features (B, 3), confidences (B, J)."""
        conf = conf.clamp(0.0, 1.0) * self.input_keep
        centre, scale = weighted_centre_scale(kp_norm, conf)
        xy = (kp_norm - centre.unsqueeze(1)) / scale.view(-1, 1, 1)
        xy = xy.clamp(-self.config.max_radius, self.config.max_radius) * self.input_keep.view(1, -1, 1)
        joint_feats = torch.cat([xy, conf.unsqueeze(-1)], -1)
        global_feats = torch.cat([centre, scale.log().unsqueeze(-1)], -1)
        return joint_feats, global_feats, conf

    def forward(
        self,
        kp_norm: Tensor,
        conf: Tensor,
        crops: Sequence[Tensor] | None = None,
        joints_grid: Tensor | None = None,
    ) -> Tensor:
        """Lift ``kp_norm (B, 17, 2)`` with ``conf (B, 17)`` to ``(B, 17, 3)`` root-relative metres.

        With ``crops`` (each person's crop of every detector level, ``crop_people``) and
        ``joints_grid (B, 17, 2)`` (the keypoints in the crops' coordinates) the context branch is
        used, for one view (flip averaging would need mirrored feature maps). With
        ``config.context_depth_only`` the image context decides only the joints' depths: the
        image-plane coordinates come from the geometry path (flip-averaged as configured).
        """
        return self.lift(kp_norm, conf, crops, joints_grid)[0]

    def lift(
        self,
        kp_norm: Tensor,
        conf: Tensor,
        crops: Sequence[Tensor] | None = None,
        joints_grid: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The pose of :meth:`forward` and the geometry path's pose, both ``(B, 17, 3)``.

        The two differ only with ``config.context_depth_only`` weights given crops: the context
        answers the joints' depths from renders, whose bodies are not the mocap subjects' and
        whose depth errors shift the feet against the pelvis; placing the root (reprojection,
        floor) with the geometry path's pose, learnt from mocap at true scale, keeps the context's
        better root-relative pose without its worse absolute position (real S11: model card)."""
        if kp_norm.ndim != 3 or kp_norm.shape[1:] != (self.config.num_joints_in, 2):
            raise ValueError(f"kp_norm must be (B, {self.config.num_joints_in}, 2), got {tuple(kp_norm.shape)}")
        if conf.shape != kp_norm.shape[:2]:
            raise ValueError(f"conf must be {tuple(kp_norm.shape[:2])}, got {tuple(conf.shape)}")
        if crops is None:
            geometry = self._geometry(kp_norm, conf)
            return geometry, geometry
        if joints_grid is None:
            raise ValueError("joints_grid is required with crops")
        context_tokens = self._tokens(kp_norm, conf, crops, joints_grid)
        if not self.config.context_depth_only:
            pose = self._decode(context_tokens)
            return pose, pose
        # Image plane from the geometry path, depth from the context path: every view in one batch
        # through the transformer (on a CPU the calls' overhead, not their arithmetic, dominates).
        views_kp, views_conf = self._views(kp_norm, conf)
        out = self._decode(torch.cat([self._tokens(views_kp, views_conf), context_tokens]))
        geometry, with_context = self._merge_views(out[: -len(kp_norm)]), out[-len(kp_norm) :]
        return torch.cat([geometry[..., :2], with_context[..., 2:]], -1), geometry

    def _geometry(self, kp_norm: Tensor, conf: Tensor) -> Tensor:
        """The geometry path: one view, or in eval mode with ``flip_test`` the mean of the direct and
        the mirrored view, both in one batch."""
        return self._merge_views(self._decode(self._tokens(*self._views(kp_norm, conf))))

    def _flip_averaging(self) -> bool:
        return self.config.flip_test and not self.training

    def _views(self, kp_norm: Tensor, conf: Tensor) -> tuple[Tensor, Tensor]:
        """The geometry path's inputs: the pose, and with flip averaging also its mirror image."""
        if not self._flip_averaging():
            return kp_norm, conf
        mirrored = kp_norm[:, self.coco_flip] * self.mirror_x[:2]
        return torch.cat([kp_norm, mirrored]), torch.cat([conf, conf[:, self.coco_flip]])

    def _merge_views(self, out: Tensor) -> Tensor:
        """The geometry answer from the rows ``_views`` made: the mirrored answer mirrored back and averaged."""
        if not self._flip_averaging():
            return out
        direct, flipped = out.chunk(2)
        return 0.5 * (direct + flipped[:, self.h36m_flip] * self.mirror_x)

    def _tokens(
        self, kp_norm: Tensor, conf: Tensor, crops: Sequence[Tensor] | None = None, joints_grid: Tensor | None = None
    ) -> Tensor:
        """The transformer's input tokens (17 joints + 1 global), with the image context when given."""
        joint_feats, global_feats, conf = self.normalize_input(kp_norm, conf)
        # The joint embedding goes in before the context branch: where to look depends on which joint it is.
        joints = self.joint_in(joint_feats) + self.joint_embed[:, :-1]
        if crops is not None:
            joints = joints + self.context(joints, crops, joints_grid, conf)
        return torch.cat([joints, self.global_in(global_feats).unsqueeze(1) + self.joint_embed[:, -1:]], 1)

    def _decode(self, tokens: Tensor) -> Tensor:
        """Tokens -> root-relative H36M-17 joints."""
        tokens = self.norm(self.blocks(tokens))
        out = self.head(tokens.flatten(1)).view(-1, self.config.num_joints_out, 3)
        return out - out[:, :1]

    def geometry_parameters(self) -> list[nn.Parameter]:
        """Everything except the context branch (what mocap-only training learns)."""
        context = {id(p) for p in self.context.parameters()}
        return [p for p in self.parameters() if id(p) not in context]


#: Shipped weights inside the package (state dict + config dict, loadable with weights_only=True).
DEFAULT_WEIGHTS = "weights/ctxpose_lifter.pt"


def save_lifter(model: ContextLifter, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Save only what ``load_lifter`` needs: plain tensors, the config dict and a metadata dict.

    The metadata gets ``content_sha256`` (``core.weights.content_sha256`` of the config and the
    tensors), which ``load_lifter`` checks. Non-finite weights are refused (``WeightsError``). The
    file is written beside ``path`` and renamed into place, so a crash never leaves half a file.
    """
    config = model.config.to_dict()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = non_finite(state)
    if bad:
        raise WeightsError(
            f"refusing to save lifter weights with non-finite values (NaN or inf) to {path}: "
            + ", ".join(f"{k} ({n})" for k, n in list(bad.items())[:5])
        )
    meta = {**(meta or {}), DIGEST_KEY: content_sha256(config, state)}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save({"config": config, "state_dict": state, "meta": meta}, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_lifter(path: str | Path | None = None, device: str | torch.device = "cpu") -> ContextLifter:
    """The lifter from ``path`` (default: the weights shipped in this package), in eval mode.

    Raises ``FileNotFoundError`` or ``core.weights.WeightsError`` (a ``ValueError``) naming the file
    when it is missing, empty, not a torch file, damaged, not lifter weights, holds non-finite
    values or does not match the digest recorded when it was saved.
    """
    if path is None:
        with resources.as_file(resources.files(__package__) / DEFAULT_WEIGHTS) as p:
            return _load(p, device)
    return _load(Path(path), device)


def _load(path: Path, device: str | torch.device) -> ContextLifter:
    blob = read_weights_file(path, map_location="cpu")
    if "config" not in blob or "state_dict" not in blob:
        raise WeightsError(
            f"{path} is not a lifter weights file (needs 'config' and 'state_dict', has {sorted(map(str, blob))[:8]})"
        )
    config, state, meta = blob["config"], blob["state_dict"], blob.get("meta") or {}
    if not isinstance(config, dict) or not isinstance(state, dict) or not isinstance(meta, dict):
        raise WeightsError(f"{path} is not a lifter weights file ('config', 'state_dict' and 'meta' must be dicts)")
    check_content(config, state, meta, str(path))
    try:
        model = ContextLifter(LifterConfig.from_dict(config))
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"lifter weights {path} do not fit the lifter they describe: {exc}") from None
    return model.to(device).eval()
