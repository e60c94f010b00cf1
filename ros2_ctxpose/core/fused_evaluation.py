"""Scoring fused views: the people several annotated cameras saw at one instant, fused, against
the annotated truth in the world frame.

A camera pose is (R, T) in the cameras.json convention ``X_cam = R^T (X_world - T)`` (metres),
so a camera-frame point moves to the world as ``R X_cam + T``. Each view's annotation of a person
moved into the world is that person's truth; the views must agree (else the poses or the
annotations are wrong and nothing measured against them would mean anything). Fused people are
matched to the truth by root distance (one-to-one, Hungarian), and the same people as each camera
alone placed them (the detection each view matched to its annotation in 2D) are scored in the
world frame beside them, so that fused and single-view figures are of the same people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from .evaluation import PoseErrors, pose_errors
from .fusion import fuse_instant
from .joint_sets import JointSetMapping
from .results import Person3D

#: The views' annotations of one person, moved into the world, must agree to this (metres, any joint).
TRUTH_AGREEMENT_M: Final[float] = 0.01
#: A fused person whose root is further than this from a person's true root is not that person
#: (metres; several times the fused root error, well under the distance between two people).
MATCH_RADIUS_M: Final[float] = 0.5

#: One camera at one instant: its people (camera frame), its R (3x3) and T (3,).
CameraView = tuple[Sequence[Person3D], np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Sighting:
    """One view's annotation of a person: the view's index, the joints in that camera's frame
    (the annotation's layout), and the index of the view's person matched to it in 2D (None: missed)."""

    view: int
    joints_cam: np.ndarray
    matched: int | None


@dataclass(frozen=True)
class PersonScore:
    """One annotated person of one instant: the fused person's errors (None: no fused person within
    ``MATCH_RADIUS_M``) and the single-view errors of each view that found the person."""

    fused: PoseErrors | None
    single: list[PoseErrors]


def to_world(points_cam: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) in the world: ``R X + T``."""
    R = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    return np.asarray(points_cam, dtype=np.float64) @ R.T + np.asarray(translation, dtype=np.float64).reshape(3)


def world_truth(sightings: Sequence[Sighting], views: Sequence[CameraView]) -> np.ndarray:
    """The person's annotated joints in the world (mean over the sightings); ValueError when two
    views' annotations are further apart than ``TRUTH_AGREEMENT_M``."""
    moved = np.stack([to_world(s.joints_cam, views[s.view][1], views[s.view][2]) for s in sightings])
    spread = float(np.linalg.norm(moved - moved[:1], axis=-1).max())
    if spread > TRUTH_AGREEMENT_M:
        raise ValueError(
            f"the views' ground truth disagrees by {1000 * spread:.0f} mm in the world frame "
            f"(more than {1000 * TRUTH_AGREEMENT_M:.0f} mm): wrong R, T or annotations"
        )
    return moved.mean(axis=0)


def match_by_root(pred_roots: np.ndarray, true_roots: np.ndarray, radius: float = MATCH_RADIUS_M) -> list[int | None]:
    """For each true root (M, 3), the index of the predicted root (N, 3) assigned to it (one-to-one,
    least total distance), None when there is none within ``radius``."""
    from scipy.optimize import linear_sum_assignment

    found: list[int | None] = [None] * len(true_roots)
    if len(pred_roots) == 0 or len(true_roots) == 0:
        return found
    dist = np.linalg.norm(np.asarray(true_roots)[:, None] - np.asarray(pred_roots)[None], axis=-1)
    for t, p in zip(*linear_sum_assignment(dist)):
        if dist[t, p] <= radius:
            found[int(t)] = int(p)
    return found


def score_fused(
    views: Sequence[CameraView], people: Sequence[Sequence[Sighting]], mapping: JointSetMapping, method: str = "ray"
) -> list[PersonScore]:
    """Fuse one instant's views (``fuse_instant``) and score each annotated person (``people``: the
    sightings of each) in the world frame; raises ValueError (``world_truth``) on disagreeing truth."""
    truths = [world_truth(sightings, views) for sightings in people]
    fused = fuse_instant(views, method=method)
    pred_roots = np.array([mapping.pred_root(p.joints_3d) for p in fused]).reshape(-1, 3)
    found = match_by_root(pred_roots, np.array([mapping.gt_root(t) for t in truths]).reshape(-1, 3))
    scores = []
    for truth, sightings, index in zip(truths, people, found):
        single = [
            pose_errors(
                to_world(views[s.view][0][s.matched].joints_3d, views[s.view][1], views[s.view][2]), truth, mapping
            )
            for s in sightings
            if s.matched is not None
        ]
        scores.append(
            PersonScore(None if index is None else pose_errors(fused[index].joints_3d, truth, mapping), single)
        )
    return scores
