"""Anny bodies: the model, adult phenotypes, and posing by per-bone world rotations.

Anny (NAVER LABS, Apache-2.0 code, CC0 assets, all inside its wheel) is a differentiable
MakeHuman body in torch whose six phenotype values (gender, age, muscle, weight, height,
proportions) span real human shapes. It is built with the ``anny-full`` topology because the COCO
keypoint regressors shipped with it are defined on that vertex set; the extra vertices it keeps
(MakeHuman's helper geometry) belong to no face, so they are never rendered, and among them the
"joint cubes" sit exactly on the bone heads, which the Human3.6M mapping (``retarget``) uses.

Posing uses Anny's ``world-orient`` parameterisation: every bone gets a world rotation ``G``
(rest pose -> posed) and its head follows its parent, so a pose fitted on one body transfers to
any other body as the same bone directions with that body's own bone lengths. Skinning is the
plain torch LBS: on a CPU it is as fast as warp's for a handful of bodies and compiles nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

ANNY_TOPOLOGY = "anny-full"
#: Adults only: the lifter is for robots among adults, and Human3.6M's actors are adults.
ADULT_AGE_YEARS = (18.0, 80.0)


@dataclass(frozen=True)
class RenderTopology:
    """The mesh as a renderer needs it: one vertex per (position, UV) pair, since the UV layout
    has seams where a position carries two texture coordinates.

    Attributes:
        vertex_ids: ``(R,)`` the Anny vertex of each render vertex.
        uv: ``(R, 2)`` texture coordinates, origin bottom-left (OpenGL).
        faces: ``(F, 3)`` triangles over the render vertices.
    """

    vertex_ids: np.ndarray
    uv: np.ndarray
    faces: np.ndarray


@dataclass
class BodyModel:
    """The Anny model and what every use of it shares."""

    model: torch.nn.Module
    #: ``(17, V)`` Anny's COCO-17 keypoint regressor (COCO order, as the detector's).
    coco_regressor: Tensor
    render_topology: RenderTopology
    shape_distribution: torch.nn.Module

    @property
    def bone_labels(self) -> list[str]:
        return list(self.model.bone_labels)

    @property
    def bone_parents(self) -> list[int]:
        return [int(p) for p in self.model.bone_parents]

    @property
    def phenotype_labels(self) -> list[str]:
        return list(self.model.phenotype_labels)


def load_body_model() -> BodyModel:
    """Build (first time: ~90 s, cached under ``$ANNY_CACHE_DIR`` or ``~/.cache/anny``) and load
    the float32 Anny model with its COCO regressor and render topology."""
    import anny
    from anny.shape_distribution import SimpleShapeDistribution

    model = anny.Anny(topology=ANNY_TOPOLOGY, skinning_method="lbs").to(torch.float32)
    model.requires_grad_(False)
    coco = anny.KeypointsRegressor.coco(model)
    coco_weights = coco.regression_weights[:17].to(torch.float32)  # the COCO-17 part, in COCO order
    shape = SimpleShapeDistribution(
        model,
        morphological_age_distribution=torch.distributions.Uniform(*map(torch.tensor, ADULT_AGE_YEARS)),
        # Beta(0.4, 0.4) puts most bodies near clearly male (0) or clearly female (1) shapes.
        gender_distribution=torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)),
    )
    return BodyModel(
        model=model, coco_regressor=coco_weights, render_topology=_render_topology(model), shape_distribution=shape
    )


def _render_topology(model: torch.nn.Module) -> RenderTopology:
    faces = model.faces.cpu().numpy().astype(np.int64)
    face_uv = model.face_texture_coordinate_indices.cpu().numpy().astype(np.int64)
    pairs = np.stack([faces.ravel(), face_uv.ravel()], 1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    uv = model.texture_coordinates.cpu().numpy()[unique[:, 1]].astype(np.float32)
    return RenderTopology(vertex_ids=unique[:, 0], uv=uv, faces=inverse.reshape(faces.shape).astype(np.int32))


def dominant_bone_vertices(body: BodyModel, prefixes: tuple[str, ...]) -> np.ndarray:
    """Rendered vertices whose strongest skinning bone's name starts with one of ``prefixes``."""
    weights = body.model.vertex_bone_weights.numpy()
    bones = body.model.vertex_bone_indices.numpy()
    dominant = bones[np.arange(len(weights)), weights.argmax(1)]
    wanted = np.array([label.startswith(prefixes) for label in body.bone_labels])
    rendered = np.unique(body.render_topology.vertex_ids)
    return rendered[wanted[dominant[rendered]]]


def sample_phenotypes(body: BodyModel, n: int, seed: int) -> Tensor:
    """``(n, 6)`` phenotypes of random adults (ages 18-80 uniform, both genders), from Anny's
    own distribution calibrated on WHO height/weight data. It draws from torch's global generator,
    so the draw runs in a forked RNG state seeded with ``seed``: deterministic and side-effect
    free."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, kwargs = body.shape_distribution.sample(n)
    return torch.stack([kwargs[label].to(torch.float32) for label in body.phenotype_labels], 1)


def rest_vertices(body: BodyModel, phenotypes: Tensor, vertex_ids: Tensor) -> Tensor:
    """Rest positions ``(B, S, 3)`` of the vertices ``vertex_ids`` only: the phenotype
    blendshapes restricted to them, ~100x cheaper than a full forward pass when fitting a
    phenotype by gradient descent. Uses Anny's (private) blendshape-coefficient function, stable
    in the pinned anny 0.6.2."""
    model = body.model
    empty = phenotypes.new_zeros(phenotypes.shape[0], 0)
    coeffs = model._get_phenotype_blendshape_coefficients(phenotypes, empty, empty)
    return model.template_vertices[vertex_ids] + torch.einsum("bk,kvd->bvd", coeffs, model.blendshapes[:, vertex_ids])


def rest_bodies(body: BodyModel, phenotypes: Tensor) -> dict[str, Tensor]:
    """Rest-pose vertices ``(B, V, 3)``, bone poses ``(B, J, 4, 4)`` and bone heads ``(B, J, 3)``."""
    out = body.model(phenotype_kwargs=phenotypes)
    return {
        "vertices": out["rest_vertices"],
        "bone_poses": out["rest_bone_poses"],
        "bone_heads": out["rest_bone_heads"],
    }


def world_orient_deltas(rest_bone_poses: Tensor, rotations: Tensor, root: Tensor) -> Tensor:
    """Anny ``world-orient`` pose parameters ``(B, J, 4, 4)``: bone orientation ``G · R_rest``
    for rest-to-posed world rotations ``rotations`` ``(B, J, 3, 3)``, root head at ``root``."""
    orientation = rotations @ rest_bone_poses[..., :3, :3]
    heads = rest_bone_poses[..., :3, 3].expand(rotations.shape[0], -1, -1)
    heads = torch.cat([root.unsqueeze(1), heads[:, 1:]], 1)  # only the root's head is read
    top = torch.cat([orientation, heads.unsqueeze(-1)], -1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=top.dtype).expand(top.shape[:-2] + (1, 4))
    return torch.cat([top, bottom], -2)


def pose_bodies(body: BodyModel, phenotypes: Tensor, rotations: Tensor, root: Tensor) -> Tensor:
    """Posed vertices ``(B, V, 3)`` of bodies ``phenotypes`` ``(B, 6)`` with bone rotations
    ``(B, J, 3, 3)`` (rest -> posed, world) and root bone heads ``root`` ``(B, 3)``."""
    rest = body.model(phenotype_kwargs=phenotypes)
    deltas = world_orient_deltas(rest["rest_bone_poses"], rotations, root)
    out = body.model(pose_parameters=deltas, phenotype_kwargs=phenotypes, pose_parameterization="world-orient")
    return out["vertices"]


def body_heights_m(body: BodyModel, phenotypes: Tensor) -> Tensor:
    """Standing height ``(B,)`` in metres: the rest pose's vertical extent over the rendered
    vertices (Anny's own ``Anthropometry.height`` also counts the helper vertices, some of which
    float above the head)."""
    z = rest_bodies(body, phenotypes)["vertices"][:, body.render_topology.vertex_ids, 2]
    return z.amax(1) - z.amin(1)
