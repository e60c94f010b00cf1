"""Furniture-sized things between the camera and the people: tables, cabinets, chairs, bins and
pillars, at the sizes of real ones.

Round 1 occluded people with plain boxes and cylinders of random size. Real occluders have
structure the detector's features respond to: a table hides the legs but not the space under its
top, a chair's back covers the hips through gaps, a cabinet cuts a person in half at its edge.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh

#: Kinds and their shares.
KINDS = {"table": 0.3, "cabinet": 0.2, "chair": 0.2, "box": 0.15, "cylinder": 0.15}


def _box(extents: tuple[float, float, float], centre: tuple[float, float, float]) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(centre)
    return mesh


def _table(rng: np.random.Generator) -> trimesh.Trimesh:
    length, width, height, leg = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.78), 0.05
    parts = [_box((length, width, 0.04), (0.0, 0.0, height - 0.02))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (length / 2 - leg), sy * (width / 2 - leg)
            parts.append(_box((leg, leg, height - 0.04), (x, y, (height - 0.04) / 2)))
    return trimesh.util.concatenate(parts)


def _chair(rng: np.random.Generator) -> trimesh.Trimesh:
    side, seat, back, leg = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48), rng.uniform(0.8, 1.0), 0.035
    parts = [
        _box((side, side, 0.04), (0.0, 0.0, seat)),
        _box((side, 0.03, back - seat), (0.0, side / 2, (seat + back) / 2)),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_box((leg, leg, seat), (sx * (side / 2 - leg), sy * (side / 2 - leg), seat / 2)))
    return trimesh.util.concatenate(parts)


def furniture_mesh(rng: np.random.Generator) -> trimesh.Trimesh:
    """One piece of furniture standing on z = 0 around the origin, turned at random."""
    kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
    if kind == "table":
        mesh = _table(rng)
    elif kind == "chair":
        mesh = _chair(rng)
    elif kind == "cabinet":
        height = rng.uniform(0.9, 2.0)
        mesh = _box((rng.uniform(0.6, 1.2), rng.uniform(0.35, 0.6), height), (0.0, 0.0, height / 2))
    elif kind == "box":
        height = rng.uniform(0.4, 1.2)
        mesh = _box((rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), height), (0.0, 0.0, height / 2))
    else:  # a bin, a planter or a pillar
        height = rng.uniform(0.5, 1.0) if rng.random() < 0.7 else 3.0
        mesh = trimesh.creation.cylinder(radius=rng.uniform(0.15, 0.35), height=height, sections=24)
        mesh.apply_translation((0.0, 0.0, height / 2))
    mesh.apply_transform(trimesh.transformations.rotation_matrix(rng.uniform(0, math.pi), (0, 0, 1)))
    return mesh
