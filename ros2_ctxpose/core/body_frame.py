"""The body's own axes from its H36M-17 joints: left, up and forward.

Three users need the same frame: TF publishes each person's ``body_<id>`` frame (REP 155: x
forward, z up), the training data places COCO's surface keypoints relative to H36M's joint centres
in it, and the offset fit measures those offsets in it. Left runs from the right hip to the left
hip; up from the pelvis to the thorax, made orthogonal to left; forward completes a right-handed
frame (left x up), pointing out of the chest.
"""

from __future__ import annotations

import numpy as np

from .skeleton import H36M17, index_of

_PELVIS, _THORAX = index_of(H36M17, "pelvis"), index_of(H36M17, "thorax")
_LEFT_HIP, _RIGHT_HIP = index_of(H36M17, "left_hip"), index_of(H36M17, "right_hip")


def body_axes(joints: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(..., 17, 3) H36M-17 joints -> (..., 3, 3) rotations whose columns are left, up, forward.

    Degenerate bodies (coincident hips, a thorax on the hip line, non-finite joints) give NaN
    rotations, for the caller to replace with what suits it.
    """
    joints = np.asarray(joints, dtype=np.float64)
    left = joints[..., _LEFT_HIP, :] - joints[..., _RIGHT_HIP, :]
    up = joints[..., _THORAX, :] - joints[..., _PELVIS, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        left = left / _norm(left, eps)
        up = up - (up * left).sum(-1, keepdims=True) * left
        up = up / _norm(up, eps)
    return np.stack([left, up, np.cross(left, up)], axis=-1)


def _norm(v: np.ndarray, eps: float) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > eps, n, np.nan)
