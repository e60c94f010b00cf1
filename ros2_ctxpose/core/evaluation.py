"""Scoring the pipeline's absolute 3D poses against annotated images (``core.annotations`` records).

Per annotated person: MPJPE (mean joint error after aligning the roots), PA-MPJPE (after the
best similarity transform, i.e. pose shape only) and the absolute root error (placement), all in
millimetres, over the joints ``joint_sets.JOINT_SETS`` declares comparable for that layout. The
annotation is matched to the detected person whose 2D keypoints lie closest to its 2D joints, so
a crowd or a false positive does not get scored in its place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .joint_sets import JointSetMapping
from .metrics import mpjpe, pa_mpjpe


@dataclass(frozen=True)
class PoseErrors:
    mpjpe_mm: float
    pa_mpjpe_mm: float
    root_error_mm: float


def pose_errors(pred_h36m: np.ndarray, gt: np.ndarray, mapping: JointSetMapping) -> PoseErrors:
    """Errors of one person: ``pred_h36m`` (17, 3) absolute H36M-17 joints against the
    annotation ``gt`` (J, 3) in ``mapping``'s layout, both camera frame in metres."""
    pred_root, gt_root = mapping.pred_root(pred_h36m), mapping.gt_root(gt)
    pred = mapping.pred_compared(pred_h36m) - pred_root
    ref = mapping.gt_compared(gt) - gt_root
    pred_t, ref_t = torch.from_numpy(pred[None]).double(), torch.from_numpy(ref[None]).double()
    return PoseErrors(
        1000.0 * float(mpjpe(pred_t, ref_t)),
        1000.0 * float(pa_mpjpe(pred_t, ref_t)),
        1000.0 * float(np.linalg.norm(pred_root - gt_root)),
    )


def match_person(keypoints: np.ndarray, gt_2d: np.ndarray, mapping: JointSetMapping) -> tuple[int, float] | None:
    """Index of the detected person (keypoints (N, 17, 3) COCO-17) closest to the annotation's 2D
    joints (J, 2), and that mean pixel distance; None when nobody was detected."""
    if len(keypoints) == 0:
        return None
    d_idx, c_idx = mapping.coco_pairs()
    dist = np.linalg.norm(np.asarray(keypoints)[:, c_idx, :2] - np.asarray(gt_2d)[d_idx][None], axis=-1)
    mean = dist.mean(axis=1)
    best = int(np.argmin(mean))
    return best, float(mean[best])
