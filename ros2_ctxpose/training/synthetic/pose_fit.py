"""The pose fit (an IK solver): per mocap frame, a world rotation for each body segment.

Analytic first (frames, swings and hinge twists onto the mocap bones), then a few Adam steps on
the mapped joints through Anny's forward kinematics and skinning; see ``retarget``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from torch import Tensor

from .body import BodyModel, rest_bodies
from .body_segments import FIT_WEIGHTS, SEGMENT_NAMES, SEGMENTS, bone_segments
from .joint_mapping import JointRegressor


def _normalize(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def rotation_between(a: Tensor, b: Tensor) -> Tensor:
    """Smallest rotation ``(..., 3, 3)`` taking direction ``a`` to direction ``b``."""
    a, b = _normalize(a), _normalize(b)
    cross = torch.cross(a, b, dim=-1)
    sin, cos = cross.norm(dim=-1, keepdim=True), (a * b).sum(-1, keepdim=True)
    # Antiparallel: any axis perpendicular to a does; take one from a's smallest component.
    fallback = _normalize(torch.cross(a, torch.eye(3, dtype=a.dtype)[a.abs().argmin(-1)], dim=-1))
    axis = torch.where(sin > 1e-6, cross / sin.clamp_min(1e-12), fallback)
    return roma.rotvec_to_rotmat(axis * torch.atan2(sin, cos))


def _frame(axis: Tensor, lateral: Tensor) -> Tensor:
    return roma.special_gramschmidt(torch.stack([axis, lateral], -1))


def _vec(joints: Tensor, pair: tuple[int, int]) -> Tensor:
    return joints[..., pair[1], :] - joints[..., pair[0], :]


def analytic_rotations(rest_joints: Tensor, targets: Tensor) -> Tensor:
    """Per-segment world rotations ``(B, S, 3, 3)`` (rest -> posed) from the mapped rest joints
    ``(1 or B, 17, 3)`` and the mocap joints ``(B, 17, 3)`` (see the module docstring)."""
    rest_joints = rest_joints.expand_as(targets)
    rot: dict[str, Tensor] = {}
    for seg in SEGMENTS:
        r, t = _vec(rest_joints, seg.axis), _vec(targets, seg.axis)
        if seg.kind == "frame":
            G = _frame(t, _vec(targets, seg.lateral)) @ _frame(r, _vec(rest_joints, seg.lateral)).transpose(-1, -2)
        else:
            parent = rot[seg.parent]
            G = rotation_between((parent @ r.unsqueeze(-1)).squeeze(-1), t) @ parent
            if seg.kind == "hinge":
                G = _hinge_twist(G, r, t, _vec(targets, seg.lower), seg.flex)
        rot[seg.name] = G
    return torch.stack([rot[name] for name in SEGMENT_NAMES], 1)


def _hinge_twist(G: Tensor, rest_axis: Tensor, axis: Tensor, lower: Tensor, flex: tuple[float, float, float]) -> Tensor:
    """Twist ``G`` about the posed limb axis so that the rest hinge (perpendicular to the limb and
    to its flexion direction) lines up with the mocap limb's hinge; faded out below ~6 degrees of
    flexion and full from ~20, where the mocap's limb plane becomes trustworthy."""
    hinge_rest = torch.cross(rest_axis, torch.tensor(flex, dtype=rest_axis.dtype).expand_as(rest_axis), dim=-1)
    a = _normalize(axis)
    cross = torch.cross(a, _normalize(lower), dim=-1)
    u = (G @ hinge_rest.unsqueeze(-1)).squeeze(-1)
    u = _normalize(u - (u * a).sum(-1, keepdim=True) * a)
    v = _normalize(cross)
    angle = torch.atan2((torch.cross(u, v, dim=-1) * a).sum(-1), (u * v).sum(-1))
    fade = ((cross.norm(dim=-1) - 0.1) / 0.25).clamp(0.0, 1.0)
    return roma.rotvec_to_rotmat(a * (fade * angle).unsqueeze(-1)) @ G


@dataclass
class FitBody:
    """One body (a phenotype) ready for fast pose fitting: its rest bone heads, and the rest
    positions of the vertices the mapping reads with their skinning weights as a dense
    ``(S, U)`` matrix over the ``U`` bones that move them."""

    rest_heads: Tensor  # (J_bones, 3)
    rest_points: Tensor  # (S, 3)
    skin: Tensor  # (S, U)
    skin_bones: Tensor  # (U,)
    vertex_ids: np.ndarray


def prepare_body(body: BodyModel, phenotype: Tensor, vertex_ids: np.ndarray) -> FitBody:
    """Rest data of the body ``phenotype`` ``(6,)`` for the vertices ``vertex_ids``."""
    rest = rest_bodies(body, phenotype.reshape(1, -1))
    ids = torch.as_tensor(vertex_ids)
    weights, bones = body.model.vertex_bone_weights[ids], body.model.vertex_bone_indices[ids].long()
    used = torch.unique(bones[weights > 0])
    dense = torch.zeros(len(ids), body.model.bone_count, dtype=weights.dtype)
    dense.scatter_add_(1, bones, weights)
    return FitBody(rest["bone_heads"][0], rest["vertices"][0, ids], dense[:, used], used, vertex_ids)


def posed_heads(parents: list[int], rest_heads: Tensor, bone_rotations: Tensor, root: Tensor) -> Tensor:
    """Posed bone heads ``(B, J, 3)``: Anny's ``world-orient`` kinematics, where a bone's head
    is carried by its parent, ``w_c = w_p + G_p (h_c - h_p)``. Only translations chain, so this
    is far cheaper than Anny's 4x4 chain product (which is what makes batched fitting fast)."""
    heads = [root]
    for c in range(1, len(parents)):
        p = parents[c]
        heads.append(heads[p] + bone_rotations[:, p] @ (rest_heads[c] - rest_heads[p]))
    return torch.stack(heads, 1)


def skin_points(body: BodyModel, fit_body: FitBody, bone_rotations: Tensor, root: Tensor) -> Tensor:
    """Posed ``(B, S, 3)`` positions of ``fit_body``'s vertices: Anny's linear blend skinning
    with the bone transforms ``[G_c | w_c - G_c h_c]``, blended as 3x4 matrices."""
    heads = posed_heads(body.bone_parents, fit_body.rest_heads, bone_rotations, root)
    G = bone_rotations[:, fit_body.skin_bones]  # (B, U, 3, 3)
    t = heads[:, fit_body.skin_bones] - (G @ fit_body.rest_heads[fit_body.skin_bones].unsqueeze(-1)).squeeze(-1)
    M = torch.cat([G, t.unsqueeze(-1)], -1).flatten(2)  # (B, U, 12)
    M = (fit_body.skin @ M).unflatten(-1, (3, 4))  # (B, S, 3, 4)
    return (M[..., :3] @ fit_body.rest_points.unsqueeze(-1)).squeeze(-1) + M[..., 3]


@dataclass
class PoseFit:
    """Fitted poses: segment rotations ``(B, S, 3, 3)``, root bone head ``(B, 3)`` (world), the
    mapped joints ``(B, 17, 3)`` and their residual to the mocap ``(B, 17)`` in mm."""

    rotations: Tensor
    root: Tensor
    joints: Tensor
    residual_mm: Tensor


def fit_poses(
    body: BodyModel,
    fit_body: FitBody,
    regressor: JointRegressor,
    targets: Tensor,
    steps: int = 30,
    lr: float = 0.02,
    batch_size: int = 2048,
) -> PoseFit:
    """Fit segment rotations so that the mapped joints of ``fit_body`` meet ``targets``
    ``(B, 17, 3)`` (world metres): analytic start, then ``steps`` Adam steps."""
    segments = torch.as_tensor(bone_segments(body))
    weights = torch.as_tensor(regressor.weights)
    if not np.array_equal(regressor.vertex_ids, fit_body.vertex_ids):
        raise ValueError("fit_body was prepared for other vertices than the regressor reads")
    w_fit = FIT_WEIGHTS / FIT_WEIGHTS.sum()

    def mapped(G_seg: Tensor) -> Tensor:
        pts = skin_points(body, fit_body, G_seg[:, segments], torch.zeros(G_seg.shape[0], 3))
        return torch.einsum("js,bsd->bjd", weights, pts)

    rest_joints = torch.einsum("js,sd->jd", weights, fit_body.rest_points).unsqueeze(0)
    out = []
    for start in range(0, targets.shape[0], batch_size):
        tgt = targets[start : start + batch_size].to(torch.float32)
        with torch.no_grad():
            G0 = analytic_rotations(rest_joints, tgt)
        delta = torch.zeros(G0.shape[:2] + (3,), requires_grad=True)
        opt = torch.optim.Adam([delta], lr=lr)
        for _ in range(steps):
            joints = mapped(roma.rotvec_to_rotmat(delta) @ G0)
            shift = ((tgt - joints) * w_fit[:, None]).sum(1, keepdim=True)
            err = ((joints + shift - tgt) ** 2).sum(-1)
            loss = (err * w_fit).sum(-1).mean() + 1e-4 * (delta**2).sum((-1, -2)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            G = roma.rotvec_to_rotmat(delta) @ G0
            joints = mapped(G)
            shift = ((tgt - joints) * w_fit[:, None]).sum(1)
            joints = joints + shift[:, None]
            out.append(PoseFit(G, shift, joints, 1000.0 * (joints - tgt).norm(dim=-1)))
    return PoseFit(*(torch.cat([getattr(p, f) for p in out]) for f in ("rotations", "root", "joints", "residual_mm")))
