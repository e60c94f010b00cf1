"""Multi-camera fusion: the people several calibrated cameras saw at one instant, as one set of people.

Each camera places a person from one image: across the image plane that is precise, along the
viewing ray (how far away) it is not (the lifter's body size and the reprojection fix the depth
to a few per cent of the distance). Two cameras that look from different directions therefore
correct each other's weak axis, but only if each view's estimate is weighted by *its own*
uncertainty, which is long along its ray. Here each view's joint ``j`` gets a covariance
``Sigma_vj`` (the message's root covariance, or :func:`ray_covariance`'s geometric model when
that is unknown), and the fused joint is the information-form (inverse-covariance weighted)
combination ``x = (sum_v Sigma_vj^-1)^-1 sum_v Sigma_vj^-1 x_vj``: the best linear unbiased
estimate for independent Gaussian errors. The plain mean (``method="average"``) is the baseline
it has to beat (benchmarks/fusion_views.py measures both).

Association: views are taken one after another; the people of the next view are matched to the
people fused so far by the Hungarian method (scipy's ``linear_sum_assignment``) on the mean
squared Mahalanobis distance over the joints both estimates have, with the two covariances
summed. Pairs above a chi-square gate are never matched, so a person one camera alone sees
passes through unchanged, with one view. Everything is numpy, in one common frame (metres);
nothing here knows ROS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from .results import ROOT_FROM_VIEWS, Person3D

#: Geometric uncertainty of one view (see :func:`ray_covariance`): standard deviations as
#: fractions of the distance from the camera, along and across the viewing ray.
DEPTH_FRACTION: Final[float] = 0.08
LATERAL_FRACTION: Final[float] = 0.015
#: Std (m) of a joint relative to the root, added to a message's root covariance to make a joint's.
RELATIVE_STD_M: Final[float] = 0.05
#: Joint confidences are floored at this before they divide a covariance (a joint the detector
#: barely saw weighs up to 20 times less, never infinitely less).
MIN_CONFIDENCE: Final[float] = 0.05
#: Default association gate on the mean squared Mahalanobis distance per joint. Chi-square with 3
#: degrees of freedom at 99.9 % would be 16.3, but the covariance model is approximate (a root
#: error moves every joint along the root's ray, not along each joint's own): true matches of
#: simulated views (test/test_fusion.py's model) reach about 22, hence 30.
DEFAULT_GATE: Final[float] = 30.0

METHODS: Final[tuple[str, ...]] = ("ray", "average")


@dataclass(frozen=True)
class ViewPerson:
    """One person as one camera saw them, already in the common frame."""

    joints: np.ndarray  # (J, 3) metres, common frame
    conf: np.ndarray  # (J,) per-joint confidence in [0, 1]
    score: float
    root_cov: np.ndarray  # (3, 3) m^2, common frame; NaN = unknown (the geometric model is used)
    track_id: int = 0


@dataclass(frozen=True)
class View:
    """The people one camera saw at one instant, and where that camera is (common frame)."""

    origin: np.ndarray  # (3,) camera centre
    people: Sequence[ViewPerson]
    name: str = ""


@dataclass
class FusedPerson:
    """One person after fusion. ``members`` are the (view index, person index) pairs fused."""

    joints: np.ndarray  # (J, 3)
    joint_cov: np.ndarray  # (J, 3, 3)
    conf: np.ndarray  # (J,) the best view's confidence per joint
    score: float
    members: list[tuple[int, int]] = field(default_factory=list)
    track_id: int = 0

    @property
    def root_cov(self) -> np.ndarray:
        return self.joint_cov[0]


def ray_covariance(
    origin: np.ndarray,
    points: np.ndarray,
    depth_fraction: float = DEPTH_FRACTION,
    lateral_fraction: float = LATERAL_FRACTION,
) -> np.ndarray:
    """Default covariance (..., 3, 3) of points a camera at ``origin`` placed, used whenever a view
    gives none: std ``depth_fraction * d`` along the ray from the camera to the point and
    ``lateral_fraction * d`` across it, ``d`` the distance. Monocular placement errs along the ray
    (scale-depth ambiguity: a bigger body further away reprojects the same), hardly across it."""
    offset = np.asarray(points, dtype=np.float64) - np.asarray(origin, dtype=np.float64)
    distance = np.maximum(np.linalg.norm(offset, axis=-1, keepdims=True), 1e-6)
    ray = offset / distance
    along, across = (depth_fraction * distance) ** 2, (lateral_fraction * distance) ** 2
    outer = ray[..., :, None] * ray[..., None, :]
    return (along - across)[..., None] * outer + across[..., None] * np.eye(3)


def joint_covariances(person: ViewPerson, origin: np.ndarray) -> np.ndarray:
    """Covariance (J, 3, 3) of each joint of one view's person.

    With a known root covariance the joints share it (the root's translation is what moves them
    all) plus an isotropic ``RELATIVE_STD_M`` for the pose relative to the root; without one, the
    geometric :func:`ray_covariance` per joint. Either is divided by the joint's confidence.
    """
    joints = np.asarray(person.joints, dtype=np.float64)
    root_cov = np.asarray(person.root_cov, dtype=np.float64)
    if np.isfinite(root_cov).all():
        cov = np.broadcast_to(root_cov + RELATIVE_STD_M**2 * np.eye(3), (len(joints), 3, 3)).copy()
    else:
        cov = ray_covariance(origin, joints)
    conf = np.clip(np.nan_to_num(np.asarray(person.conf, dtype=np.float64), nan=0.0), MIN_CONFIDENCE, 1.0)
    return cov / conf[:, None, None]


def association_cost(joints_a: np.ndarray, cov_a: np.ndarray, joints_b: np.ndarray, cov_b: np.ndarray) -> np.ndarray:
    """Mean squared Mahalanobis distance per joint between A people (A, J, 3) and B people
    (B, J, 3), with covariances (A|B, J, 3, 3) summed: (A, B)."""
    diff = joints_a[:, None] - joints_b[None, :]  # (A, B, J, 3)
    cov = cov_a[:, None] + cov_b[None, :]
    d2 = (diff[..., None, :] @ np.linalg.solve(cov, diff[..., None]))[..., 0, 0]
    return d2.mean(axis=-1)


class _Accumulator:
    """The fused people of the views taken so far, as running sums (information form for "ray",
    plain sums for "average"), so that adding a view costs one batched inverse, not a re-fusion."""

    def __init__(self, method: str) -> None:
        self.ray = method == "ray"
        self.people: list[FusedPerson] = []
        self._a: list[np.ndarray] = []  # ray: sum of Sigma^-1 (J,3,3); average: sum of Sigma
        self._b: list[np.ndarray] = []  # ray: sum of Sigma^-1 x (J,3); average: sum of x

    def add(self, targets: list[int | None], joints: np.ndarray, cov: np.ndarray, view: int, people: list) -> None:
        """Fuse the people ``joints`` (P, J, 3), ``cov`` (P, J, 3, 3) of one view into the groups
        ``targets`` (None: a new group); ``people`` are (index in the view, ViewPerson)."""
        info = np.linalg.inv(cov) if self.ray else cov
        weighted = (info @ joints[..., None])[..., 0] if self.ray else joints
        touched = []
        for k, target in enumerate(targets):
            index, person = people[k]
            conf = np.asarray(person.conf, dtype=np.float64)
            if target is None:
                self._a.append(info[k])
                self._b.append(weighted[k])
                self.people.append(FusedPerson(joints[k], cov[k], conf, float(person.score), [(view, index)]))
                continue
            self._a[target] = self._a[target] + info[k]
            self._b[target] = self._b[target] + weighted[k]
            group = self.people[target]
            group.members.append((view, index))
            group.conf = np.maximum(group.conf, conf)
            group.score = max(group.score, float(person.score))
            touched.append(target)
        if not touched:
            return
        a, b = np.stack([self._a[t] for t in touched]), np.stack([self._b[t] for t in touched])
        if self.ray:
            fused_cov = np.linalg.inv(a)
            mean = (fused_cov @ b[..., None])[..., 0]
        else:
            count = np.array([len(self.people[t].members) for t in touched], dtype=np.float64)
            mean, fused_cov = b / count[:, None, None], a / count[:, None, None, None] ** 2
        for t, m, c in zip(touched, mean, fused_cov):
            self.people[t].joints, self.people[t].joint_cov = m, c


def fuse_views(views: Sequence[View], method: str = "ray", gate: float = DEFAULT_GATE) -> list[FusedPerson]:
    """The people of several views of one instant, associated across views and fused.

    ``method``: "ray" (the information form of the module docstring, with per-view ray
    covariances) or "average" (the plain mean; its covariance, sum / V^2, that of a mean of
    independent estimates, so association still has a spread to gate on).
    People of one view are never fused with each other. People whose joints are not all finite
    are skipped (their coordinates cannot be weighed).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    # Imported here: scipy.optimize takes about half a second to import, which `ctxpose --help`
    # (whose parser reads this module's constants) should not pay.
    from scipy.optimize import linear_sum_assignment

    fused = _Accumulator(method)
    for v, view in enumerate(views):
        people = [
            (i, p) for i, p in enumerate(view.people) if np.isfinite(np.asarray(p.joints, dtype=np.float64)).all()
        ]
        if not people:
            continue
        joints = np.stack([np.asarray(p.joints, dtype=np.float64) for _, p in people])
        cov = np.stack([joint_covariances(p, view.origin) for _, p in people])
        targets: list[int | None] = [None] * len(people)
        if fused.people:
            cost = association_cost(
                np.stack([g.joints for g in fused.people]), np.stack([g.joint_cov for g in fused.people]), joints, cov
            )
            rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, gate * 1e3))
            for r, c in zip(rows, cols):
                if cost[r, c] <= gate:
                    targets[int(c)] = int(r)
        fused.add(targets, joints, cov, v, people)
    return fused.people


class FusedIdentities:
    """Ids of fused people that stay with them across instants (and across a camera dropping out).

    A fused person continues the id of the fused person of the previous instant with whom they
    share a camera's track (view index, that camera's track id); otherwise they get a new id from
    a counter (never reused). Camera track ids are the single-camera trackers'.
    """

    def __init__(self) -> None:
        self._by_track: dict[tuple[int, int], int] = {}
        self._next = 1

    def assign(self, views: Sequence[View], fused: Sequence[FusedPerson]) -> None:
        """Set ``track_id`` of every fused person (in place)."""
        taken: set[int] = set()
        by_track: dict[tuple[int, int], int] = {}
        for person in fused:
            keys = [(v, int(views[v].people[i].track_id)) for v, i in person.members]
            previous = [self._by_track[k] for k in keys if k in self._by_track and self._by_track[k] not in taken]
            if previous:
                person.track_id = min(previous)
            else:
                person.track_id = self._next
                self._next += 1
            taken.add(person.track_id)
            by_track.update({k: person.track_id for k in keys})
        self._by_track = by_track


def view_from_camera(people: Sequence[Person3D], rotation: np.ndarray, translation: np.ndarray, name: str = "") -> View:
    """A view from one camera's ``Person3D`` results (camera optical frame) and the camera's pose in
    the common frame, ``X_world = R X_cam + T`` (the cameras.json convention ``X_cam = R^T
    (X_world - T)``), metres. The camera centre is ``T``."""
    R = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    T = np.asarray(translation, dtype=np.float64).reshape(3)
    moved = [
        ViewPerson(
            joints=np.asarray(p.joints_3d, dtype=np.float64) @ R.T + T,
            conf=np.asarray(p.joints_conf, dtype=np.float64),
            score=float(p.score),
            root_cov=R @ np.asarray(p.root_cov, dtype=np.float64).reshape(3, 3) @ R.T,
            track_id=int(p.track_id),
        )
        for p in people
    ]
    return View(origin=T, people=moved, name=name)


def fused_person3d(person: FusedPerson) -> Person3D:
    """A fused person as ``Person3D`` (common frame): the 2D fields belong to no single image and are NaN."""
    joints = person.joints
    count = len(joints)
    return Person3D(
        track_id=person.track_id,
        score=person.score,
        bbox_xyxy=np.full(4, np.nan),
        keypoints_2d=np.full((count, 3), np.nan),
        joints_3d=joints,
        joints_uv=np.full((count, 2), np.nan),
        joints_conf=person.conf,
        root=joints[0].copy(),
        root_source=ROOT_FROM_VIEWS,
        root_cov=person.root_cov.copy(),
        placement_note=f"fused from {len(person.members)} view{'s' if len(person.members) != 1 else ''}",
    )


def fuse_instant(
    views: Sequence[tuple[Sequence[Person3D], np.ndarray, np.ndarray]],
    method: str = "ray",
    gate: float = DEFAULT_GATE,
    identities: FusedIdentities | None = None,
) -> list[Person3D]:
    """What evaluation calls: the ``Person3D`` results of each camera at one instant with that
    camera's (R, T) (see :func:`view_from_camera`) -> the fused people in the world frame.

    Views are matched to the previous instant's by position in ``views`` (keep a camera's place,
    with no people, when it is absent); pass the same ``identities`` on every instant of a
    sequence for ids that persist, otherwise ids count from 1 in each instant."""
    built = [view_from_camera(people, R, T, name=str(k)) for k, (people, R, T) in enumerate(views)]
    fused = fuse_views(built, method=method, gate=gate)
    (identities or FusedIdentities()).assign(built, fused)
    return [fused_person3d(p) for p in fused]
