"""Explicit correspondences between other joint layouts and H36M-17, the lifter's output.

Evaluation compares the lifter's H36M-17 joints with ground truth annotated in three layouts
(``h36m17``, ``mpi3dhp17``, ``gta21`` in ../shared/data/images/annotations.json). Joints with the
same name are not always the same point (MPI-INF-3DHP's "spine" sits higher on the torso than
H36M's, its "head" is the head's centre where H36M's "neck_nose" is near the chin), so each mapping
lists, by name, only the pairs that mean the same anatomical point, and says how the root is
defined. Naming the pairs (rather than index lists) keeps the mapping reviewable.

``H36M17_FROM_COCO`` answers the other question of this kind: which COCO-17 keypoints a lifted
H36M-17 joint rests on, so that every 3D joint can carry a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .skeleton import COCO17, COCO_H36M_SHARED, H36M17, index_of

#: MPI-INF-3DHP, the 17-joint test-set layout (as in annotations.json ``joint_sets``).
MPI3DHP17: Final[tuple[str, ...]] = (
    "head_top",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "spine",
    "head",
)

#: GTA-IM, 21 joints (as in annotations.json ``joint_sets``).
GTA21: Final[tuple[str, ...]] = (
    "head_center",
    "neck",
    "right_clavicle",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_clavicle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "spine0",
    "spine1",
    "spine2",
    "spine3",
    "spine4",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
)

_LIMBS: Final[tuple[str, ...]] = (
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)


@dataclass(frozen=True)
class JointSetMapping:
    """Which joints of one annotated layout are compared with which H36M-17 joints."""

    name: str
    joints: tuple[str, ...]
    #: (dataset joint, H36M-17 joint) pairs that denote the same anatomical point.
    compared: tuple[tuple[str, str], ...]
    #: The root is the mean of these joints, in the dataset and in H36M-17 alike.
    root: tuple[tuple[str, str], ...]
    #: Why joints were left out, or anything else a reader of the figures should know.
    note: str

    def _indices(self, pairs: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.array([index_of(self.joints, d) for d, _ in pairs]),
            np.array([index_of(H36M17, h) for _, h in pairs]),
        )

    @property
    def root_name(self) -> str:
        return "pelvis" if len(self.root) == 1 else "mid-hip (mean of " + " and ".join(d for d, _ in self.root) + ")"

    def gt_compared(self, joints: np.ndarray) -> np.ndarray:
        """(..., len(compared), 3) ground-truth joints, in ``compared`` order."""
        return np.asarray(joints)[..., self._indices(self.compared)[0], :]

    def pred_compared(self, h36m: np.ndarray) -> np.ndarray:
        """(..., len(compared), 3) H36M-17 joints, in ``compared`` order."""
        return np.asarray(h36m)[..., self._indices(self.compared)[1], :]

    def gt_root(self, joints: np.ndarray) -> np.ndarray:
        return np.asarray(joints)[..., self._indices(self.root)[0], :].mean(axis=-2)

    def pred_root(self, h36m: np.ndarray) -> np.ndarray:
        return np.asarray(h36m)[..., self._indices(self.root)[1], :].mean(axis=-2)

    def coco_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(dataset indices, COCO-17 indices) of compared joints the 2D detector also reports.

        Used to tell which detected person an annotation belongs to.
        """
        coco_of = {h: c for c, h in COCO_H36M_SHARED}
        d_idx, h_idx = self._indices(self.compared)
        keep = [i for i, h in enumerate(h_idx) if h in coco_of]
        return d_idx[keep], np.array([coco_of[h_idx[i]] for i in keep])


JOINT_SETS: Final[dict[str, JointSetMapping]] = {
    m.name: m
    for m in (
        JointSetMapping(
            name="h36m17",
            joints=H36M17,
            compared=tuple((j, j) for j in H36M17),
            root=(("pelvis", "pelvis"),),
            note="same layout as the lifter: all 17 joints",
        ),
        JointSetMapping(
            name="mpi3dhp17",
            joints=MPI3DHP17,
            compared=(("pelvis", "pelvis"),)
            + tuple((j, j) for j in _LIMBS)
            + (("neck", "thorax"), ("head_top", "head_top")),
            root=(("pelvis", "pelvis"),),
            note="15 joints; left out: spine (higher on the torso than H36M's) and head "
            "(the head's centre, not H36M's neck_nose)",
        ),
        JointSetMapping(
            name="gta21",
            joints=GTA21,
            compared=tuple((j, j) for j in _LIMBS),
            root=(("left_hip", "left_hip"), ("right_hip", "right_hip")),
            note="12 limb joints; no pelvis, so the root is the mid-hip; left out: head_center, "
            "neck, clavicles, spine0-4 (no H36M counterpart)",
        ),
    )
}

#: For every H36M-17 joint, the COCO-17 keypoints it is inferred from (its confidence is their mean).
H36M17_FROM_COCO: Final[tuple[tuple[str, ...], ...]] = (
    ("left_hip", "right_hip"),  # pelvis
    ("right_hip",),
    ("right_knee",),
    ("right_ankle",),
    ("left_hip",),
    ("left_knee",),
    ("left_ankle",),
    ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),  # spine
    ("left_shoulder", "right_shoulder"),  # thorax
    ("nose",),  # neck_nose
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),  # head_top
    ("left_shoulder",),
    ("left_elbow",),
    ("left_wrist",),
    ("right_shoulder",),
    ("right_elbow",),
    ("right_wrist",),
)


def _conf_matrix() -> np.ndarray:
    """(17 COCO, 17 H36M) averaging matrix built from ``H36M17_FROM_COCO``."""
    m = np.zeros((len(COCO17), len(H36M17)))
    for h, sources in enumerate(H36M17_FROM_COCO):
        for name in sources:
            m[index_of(COCO17, name), h] = 1.0 / len(sources)
    return m


_H36M_CONF_MATRIX: Final[np.ndarray] = _conf_matrix()


def h36m_confidence(coco_conf: np.ndarray) -> np.ndarray:
    """(..., 17) COCO-17 confidences -> (..., 17) H36M-17 joint confidences."""
    return np.asarray(coco_conf, dtype=np.float64) @ _H36M_CONF_MATRIX
