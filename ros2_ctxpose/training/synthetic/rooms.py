"""Rooms: four walls and a ceiling around the people and the camera, at metric scale.

Indoors, what surrounds a person in a robot's image is a floor, walls and a ceiling, not a
photograph of a landscape. A room here is the floor of ``floors`` inside four walls (plaster,
brick or panelling, each textured at its real size) beyond the people and behind the camera, and
a ceiling, so that cameras looking up (a quadruped's) see one. No photograph shows indoors.
"""

from __future__ import annotations

import numpy as np

from .floors import smooth_noise, tiles
from .render import MeshItem

#: Paint colours (RGB): white, off-white, cream, light grey, pale blue, pale green, beige.
PAINT_COLOURS = np.array(
    [
        (238, 236, 230),
        (225, 220, 208),
        (232, 220, 190),
        (190, 190, 188),
        (185, 200, 215),
        (195, 210, 185),
        (210, 190, 160),
    ],
    np.float32,
)
BRICK_COLOURS = np.array([(150, 70, 50), (170, 110, 80), (120, 60, 45), (190, 180, 160)], np.float32)
#: How far walls reach past the room's corners, below the floor and above the ceiling (metres).
OVERLAP_M = 0.05
#: Half-period of the wall textures, pixels (as in ``floors``: drawn once, mirrored to tile).
_HALF = 256


def _plaster(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    base = PAINT_COLOURS[rng.integers(len(PAINT_COLOURS))] * rng.uniform(0.9, 1.05)
    noise = smooth_noise(rng, _HALF, ((4, 0.03), (32, 0.015))) + rng.normal(0, 0.01, (_HALF, _HALF))
    return base * (1.0 + noise[..., None]), 2.0


def _bricks(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Running bond: 21.5 x 6.5 cm bricks, 1 cm mortar; a half-period is 1.2 m square."""
    span_m = 1.2
    rows = round(span_m / 0.075)
    edges = np.linspace(0, _HALF, rows + 1).astype(int)
    base = BRICK_COLOURS[rng.integers(len(BRICK_COLOURS))]
    mortar = np.array([200.0, 195.0, 185.0]) * rng.uniform(0.6, 1.0)
    tex = np.empty((_HALF, _HALF, 3), np.float32)
    tex[:] = mortar
    brick_px = _HALF * 0.225 / span_m
    gap = max(1, round(_HALF * 0.01 / span_m))
    for r, (top, bottom) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        start = -(r % 2) * brick_px / 2
        x = start
        while x < _HALF:
            lo, hi = max(0, int(x)), min(_HALF, int(x + brick_px) - gap)
            if hi > lo:
                tex[top : bottom - gap, lo:hi] = base * rng.uniform(0.85, 1.15)
            x += brick_px
    return tex * (1.0 + smooth_noise(rng, _HALF, ((32, 0.04),))[..., None]), 2 * span_m


def _panels(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Vertical wood or painted panels 20-60 cm wide with dark joints."""
    tex, metres = tiles(rng, _HALF)
    return np.ascontiguousarray(tex.transpose(1, 0, 2)), metres


def wall_material(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A wall texture (RGB uint8, tiling) and the metres one repeat spans."""
    make = (_plaster, _bricks, _panels)[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
    tex, metres = make(rng)
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    return np.vstack([np.hstack([tex, tex[:, ::-1]]), np.hstack([tex[::-1], tex[::-1, ::-1]])]), metres


def _quad(corners: np.ndarray, towards: np.ndarray, uv: np.ndarray, texture: np.ndarray, roughness: float) -> MeshItem:
    """Two triangles over four corners, wound so that their front faces ``towards`` (the camera:
    pyrender culls back faces)."""
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
    if normal @ (towards - corners[0]) < 0:
        faces = faces[:, ::-1]
    return MeshItem(corners, faces, uv=uv, texture=texture, roughness=roughness)


def room(rng: np.random.Generator, R: np.ndarray, C: np.ndarray, people_xy: np.ndarray) -> tuple[list[MeshItem], float]:
    """Four walls and a ceiling around people standing at ``people_xy`` (N, 2) and the camera at
    ``C`` looking along ``R``'s third row; returns them and the ceiling height. Faces point
    inwards, so a camera of another view outside the room sees in through the near wall (culled),
    as a cutaway."""
    forward = R[2, :2] / max(float(np.linalg.norm(R[2, :2])), 1e-6)
    side = np.array([-forward[1], forward[0]])
    inside = np.vstack([people_xy, C[:2]])
    f, s = (inside - C[:2]) @ forward, (inside - C[:2]) @ side
    f0, f1 = f.min() - rng.uniform(0.5, 2.0), f.max() + rng.uniform(0.8, 4.0)
    s0, s1 = s.min() - rng.uniform(1.0, 5.0), s.max() + rng.uniform(1.0, 5.0)
    ceiling = max(float(rng.uniform(2.5, 3.6)), float(C[2]) + 0.3)

    def at(a: float, b: float, z: float) -> np.ndarray:
        return np.array([*(C[:2] + a * forward + b * side), z])

    floor_plan = [at(f0, s0, 0), at(f1, s0, 0), at(f1, s1, 0), at(f0, s1, 0)]
    centre = np.mean(floor_plan, 0) + np.array([0.0, 0.0, ceiling / 2])
    texture, metres = wall_material(rng)
    items = []
    for a, b in zip(floor_plan, floor_plan[1:] + floor_plan[:1], strict=True):
        # Each wall reaches OVERLAP_M past its corners, under the floor and over the ceiling, so
        # no two surfaces share an edge (the draw order that once made shared edges flicker from
        # run to run is fixed in ``render._Node``; the overlap stays: the round-3 training set of
        # the model card was rendered with it).
        along = (b - a) / np.linalg.norm(b - a) * OVERLAP_M
        lo, hi = a - along - [0, 0, OVERLAP_M], b + along - [0, 0, OVERLAP_M]
        top = ceiling + 2 * OVERLAP_M
        corners = np.array([lo, hi, hi + [0, 0, top], lo + [0, 0, top]])
        length = float(np.linalg.norm(hi - lo))
        uv = np.array([[0.0, 0.0], [length, 0.0], [length, top], [0.0, top]]) / metres
        items.append(_quad(corners, centre, uv, texture, 0.9))
    paint = np.full((4, 4, 3), PAINT_COLOURS[0] * rng.uniform(0.75, 1.0), np.float32).astype(np.uint8)
    top = np.array(floor_plan) + [0, 0, ceiling]
    items.append(_quad(top, centre, np.zeros((4, 2)), paint, 1.0))
    return items, ceiling
