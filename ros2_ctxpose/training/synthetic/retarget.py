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

Where each part lives: ``body_segments`` (the segments and the bones each moves),
``joint_mapping`` (the mapping and its least-squares fit), ``pose_fit`` (the pose fit, an IK
solver); this module holds the calibration that alternates between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES

from .body import BodyModel, rest_vertices
from .body_segments import J, bone_segments
from .joint_mapping import JointRegressor, build_candidates, solve_regressor
from .pose_fit import fit_poses, prepare_body, skin_points

#: A pose is dropped when its mean joint residual exceeds this (mm) or any joint's exceeds
#: :data:`MAX_JOINT_RESIDUAL_MM`: the fitted body then no longer shows the mocap pose there. On
#: the training subjects (stride 10, 36,681 frames) the mean residual of a pose is 6.5 mm median,
#: 14 mm at worst, its worst joint 18 mm median, 43 mm at the 99th percentile, 68 mm at worst.
MAX_MEAN_RESIDUAL_MM = 20.0
MAX_JOINT_RESIDUAL_MM = 50.0
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
