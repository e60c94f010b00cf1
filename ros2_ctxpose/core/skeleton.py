"""Joint layouts shared by the detector, the lifter, the messages and the evaluation.

Two layouts meet in this package: the detector speaks COCO-17 (what YOLO-pose is trained on),
the lifter answers in Human3.6M-17 (what the 3D training data has). Keeping both here, with the
bones that connect them, means every module (and every subscriber, through the message
constants) agrees on one order.
"""

from __future__ import annotations

from typing import Final

#: COCO-17 keypoints, the 2D detector's output order. "left" is the person's left.
COCO17: Final[tuple[str, ...]] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
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

#: Human3.6M-17 joints, the lifter's 3D output order (as in ../shared/README.md).
H36M17: Final[tuple[str, ...]] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head_top",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)

#: Parent of every H36M-17 joint (-1 for the root): the kinematic tree used for bones and TF.
H36M17_PARENTS: Final[tuple[int, ...]] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: H36M-17 bones as (parent, child) index pairs.
H36M17_BONES: Final[tuple[tuple[int, int], ...]] = tuple((p, c) for c, p in enumerate(H36M17_PARENTS) if p >= 0)

#: COCO-17 limbs as drawn by the usual COCO skeleton (0-based).
COCO17_BONES: Final[tuple[tuple[int, int], ...]] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)

#: COCO-17 per-keypoint annotation spread relative to the person's scale: the OKS constants of the
#: COCO keypoint evaluation (used for keypoint similarity and to model detector noise).
COCO17_OKS_SIGMAS: Final[tuple[float, ...]] = (
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
)

#: Mirror permutation of COCO-17 (left <-> right), for flip augmentation and swap noise.
COCO17_FLIP: Final[tuple[int, ...]] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

#: Mirror permutation of H36M-17.
H36M17_FLIP: Final[tuple[int, ...]] = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)

#: Joints that COCO-17 and H36M-17 both name (COCO index, H36M index). COCO's hips sit lower and
#: wider than H36M's hip joint centres, and COCO's nose is not H36M's neck_nose; both are close
#: enough for placing the root by reprojection, which weights them by confidence.
COCO_H36M_SHARED: Final[tuple[tuple[int, int], ...]] = (
    (5, 11),
    (6, 14),
    (7, 12),
    (8, 15),
    (9, 13),
    (10, 16),
    (11, 4),
    (12, 1),
    (13, 5),
    (14, 2),
    (15, 6),
    (16, 3),
)


def index_of(layout: tuple[str, ...], name: str) -> int:
    """Index of ``name`` in ``layout``, with an error that lists the valid names."""
    try:
        return layout.index(name)
    except ValueError:
        raise KeyError(f"unknown joint {name!r}; expected one of {', '.join(layout)}") from None
