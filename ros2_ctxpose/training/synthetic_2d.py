"""Turn mocap joints into 2D that looks like the detector's output, vectorised in torch.

Two steps. ``coco_points_3d`` maps the 17 H36M joints to COCO-17 points in 3D, adding the
systematic offsets measured by ``keypoint_offsets`` where the 4 annotated H36M frames show one
clearly (hips: about 5 cm inwards, 5 cm down, 4 cm forward of H36M's hip centres, rms 16 -> 8 px;
nose: 2 cm up and 4 cm forward of H36M's neck_nose, rms 9 -> 4 px). Elbow/knee/ankle fits were
dominated by a single bad detection (S5 sitting) and are not applied. Eyes and ears have no H36M
counterpart; the lifter masks them out (see ``model``), so they are placed at the nose here only to
keep the array shape.

``detector_like`` then projects to normalised coordinates and corrupts them the way YOLO-pose
output is corrupted, with a confidence that tracks the damage:

* per-joint Gaussian noise proportional to the person's 2D size and to COCO's per-joint
  annotation spread (hips and ankles are noisier than the face), at a per-sample noise level
  (20 % of samples clean, so exact 2D is covered too);
* outliers (a joint thrown far off), missing joints (confidence near 0), left/right swaps of
  arms or legs, occluded lower bodies;
* truncation: joints outside the image are clamped to the border with low confidence.

The per-joint error of YOLO11n on the annotated H36M frames is 5-15 px on a 276 px tall person
(2-5 %) with occasional 40-75 px failures; the default ranges cover that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ros2_ctxpose.core.body_frame import body_axes
from ros2_ctxpose.core.skeleton import COCO17, COCO17_OKS_SIGMAS, H36M17, H36M17_FLIP, index_of

#: COCO joint -> the H36M joint it sits on (eyes and ears: nose, masked by the lifter).
COCO_SOURCE_H36M: tuple[int, ...] = tuple(
    index_of(H36M17, name)
    for name in (
        "neck_nose",
        "neck_nose",
        "neck_nose",
        "neck_nose",
        "neck_nose",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    )
)

#: Offsets (lateral towards the person's left, up, forward; metres) in the body frame of
#: ``core.body_frame.body_axes``, fitted by ``python -m ros2_ctxpose.training.keypoint_offsets``.
#: Right-side joints use the left value with the lateral part negated.
COCO_OFFSETS_BODY_M: dict[str, tuple[float, float, float]] = {
    "nose": (0.0, 0.022, 0.041),
    "left_hip": (-0.050, -0.048, 0.037),
    "right_hip": (0.050, -0.048, 0.037),
}


_ARMS = ((5, 6), (7, 8), (9, 10))
_LEGS = ((11, 12), (13, 14), (15, 16))
_LOWER_BODY = (13, 14, 15, 16)


def coco_points_3d(joints_h36m: Tensor) -> Tensor:
    """(B, 17, 3) H36M joints (any frame) -> (B, 17, 3) COCO-17 points with measured offsets."""
    coco = joints_h36m[:, list(COCO_SOURCE_H36M)].clone()
    frame = torch.from_numpy(body_axes(joints_h36m.detach().cpu().numpy())).to(joints_h36m)
    for name, offset in COCO_OFFSETS_BODY_M.items():
        coco[:, index_of(COCO17, name)] += frame @ joints_h36m.new_tensor(offset)
    return coco


@dataclass(frozen=True)
class DetectorNoise:
    """Ranges of the corruption applied by ``detector_like`` (probabilities are per joint unless
    said otherwise; sizes are relative to sqrt of the person's 2D box area)."""

    clean_fraction: float = 0.2
    level: tuple[float, float] = (0.1, 1.2)
    outlier_prob: float = 0.03
    outlier_size: float = 0.25
    missing_prob: float = 0.04
    swap_prob: float = 0.03  # per sample, arms and legs separately
    occluded_legs_prob: float = 0.05  # per sample
    truncated_conf_max: float = 0.3


def detector_like(
    coco_cam: Tensor,
    bounds: Tensor,
    noise: DetectorNoise | None = DetectorNoise(),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Camera-frame COCO points (B, 17, 3), image bounds (B, 4) -> normalised 2D (B, 17, 2), conf (B, 17).

    ``noise=None`` gives the exact projection with confidence 1 inside the image (truncation still
    applies: the detector cannot see outside the image either).
    """
    B, J, _ = coco_cam.shape
    xy = coco_cam[..., :2] / coco_cam[..., 2:].clamp_min(1e-3)
    conf = torch.ones(B, J, dtype=xy.dtype)
    if noise is not None:
        xy, conf = _corrupt(xy, noise, generator)
    lo, hi = bounds[:, None, :2], bounds[:, None, 2:]
    outside = ((xy < lo) | (xy > hi)).any(-1)
    xy = torch.maximum(torch.minimum(xy, hi), lo)
    low = torch.rand(B, J, generator=generator) * (noise.truncated_conf_max if noise else 0.0)
    conf = torch.where(outside, low, conf)
    return xy, conf


def _corrupt(xy: Tensor, n: DetectorNoise, g: torch.Generator | None) -> tuple[Tensor, Tensor]:
    B, J, _ = xy.shape
    size = (xy.amax(1) - xy.amin(1)).prod(-1).clamp_min(1e-8).sqrt()  # sqrt(box area), (B,)
    sigmas = xy.new_tensor(COCO17_OKS_SIGMAS)
    level = torch.rand(B, generator=g) * (n.level[1] - n.level[0]) + n.level[0]
    level = torch.where(torch.rand(B, generator=g) < n.clean_fraction, torch.zeros_like(level), level)
    err = torch.randn(B, J, 2, generator=g) * (level[:, None] * size[:, None]).unsqueeze(-1) * sigmas[None, :, None]
    # Confidence falls with the error relative to the joint's usual spread, plus detector jitter.
    rel = err.norm(dim=-1) / (sigmas * size[:, None])
    conf = (0.97 - 0.08 * rel - 0.1 * torch.rand(B, J, generator=g)).clamp(0.3, 1.0)
    xy = xy + err

    outlier = torch.rand(B, J, generator=g) < n.outlier_prob
    jump = torch.randn(B, J, 2, generator=g) * (n.outlier_size * size)[:, None, None]
    xy = torch.where(outlier.unsqueeze(-1), xy + jump, xy)
    conf = torch.where(outlier, 0.05 + 0.55 * torch.rand(B, J, generator=g), conf)

    missing = torch.rand(B, J, generator=g) < n.missing_prob
    legs = (torch.rand(B, generator=g) < n.occluded_legs_prob)[:, None] & _mask(J, _LOWER_BODY)[None]
    missing = missing | legs
    xy = torch.where(missing.unsqueeze(-1), xy + 0.5 * jump, xy)
    conf = torch.where(missing, 0.15 * torch.rand(B, J, generator=g), conf)

    for pairs in (_ARMS, _LEGS):
        swap = torch.rand(B, generator=g) < n.swap_prob
        perm = list(range(J))
        for a, b in pairs:
            perm[a], perm[b] = b, a
        xy = torch.where(swap[:, None, None], xy[:, perm], xy)
        conf = torch.where(swap[:, None] & _mask(J, sum(pairs, ()))[None], conf * 0.8, conf)
    return xy, conf


def _mask(n: int, idx: tuple[int, ...]) -> Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[list(idx)] = True
    return m


def lifter_sample(
    joints_cam: Tensor, bounds: Tensor, noise: DetectorNoise | None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Camera-frame H36M joints (B, 17, 3) -> lifter input (kp (B, 17, 2), conf (B, 17)) and target
    (B, 17, 3), root-relative metres."""
    kp, conf = detector_like(coco_points_3d(joints_cam), bounds, noise, generator)
    return kp, conf, joints_cam - joints_cam[:, :1]


def mirror(joints_cam: Tensor, bounds: Tensor, flip: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror the samples where ``flip`` (B,) is True: x negated, left and right joints swapped,
    the image rectangle mirrored. A mirrored pose seen by a mirrored camera is as real as the
    original, which doubles the motion variety for free."""
    mirrored = joints_cam[:, list(H36M17_FLIP)] * joints_cam.new_tensor([-1.0, 1.0, 1.0])
    mirrored_bounds = torch.stack([-bounds[:, 2], bounds[:, 1], -bounds[:, 0], bounds[:, 3]], -1)
    return (
        torch.where(flip[:, None, None], mirrored, joints_cam),
        torch.where(flip[:, None], mirrored_bounds, bounds),
    )
