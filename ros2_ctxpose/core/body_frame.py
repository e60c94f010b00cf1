"""The body's own axes from its H36M-17 joints: left, up and forward.

Two constructions from the same joints. :func:`body_axes` (left primary): the training data
places COCO's surface keypoints relative to H36M's joint centres in it, and the offset fit
measures those offsets in it; left runs from the right hip to the left hip, up from the pelvis to
the thorax made orthogonal to left, forward completes a right-handed frame (left x up), out of
the chest. :func:`rep155_rotation` (up primary, as REP 155's ``body_<id>`` frame: x forward, y
left, z toward the head): what TF (``ros/tf_frames.py``) and the MCAP recording publish.
"""

from __future__ import annotations

from typing import Final

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


#: REP 155 body frame of a person facing the camera upright (camera frame: x right, y down, z ahead):
#: the fallback for degenerate joints.
FACING_CAMERA: Final[np.ndarray] = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rep155_rotation(joints: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) whose columns are a person's forward, left and up axes in the camera frame
    (REP 155's ``body_<id>`` frame), from (17, 3) H36M-17 joints: up from the pelvis to the thorax,
    left from the right hip to the left hip made orthogonal to up; facing the camera
    (:data:`FACING_CAMERA`) when they are degenerate or not finite."""
    joints = np.asarray(joints, dtype=np.float64)
    up = joints[_THORAX] - joints[_PELVIS]
    left = joints[_LEFT_HIP] - joints[_RIGHT_HIP]
    if not (np.isfinite(up).all() and np.isfinite(left).all()) or np.linalg.norm(up) < 1e-6:
        return FACING_CAMERA
    z = up / np.linalg.norm(up)
    left = left - left.dot(z) * z
    if np.linalg.norm(left) < 1e-6:
        return FACING_CAMERA
    y = left / np.linalg.norm(left)
    return np.column_stack([np.cross(y, z), y, z])
