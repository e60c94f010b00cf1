"""Floor materials at metric scale: tiles, planks and plain surfaces whose texture knows how many
metres it spans, so a tile is 30-60 cm and a plank 9-20 cm wide at any distance from the camera.

A photograph stretched over the floor (what the engine did before) gives grain of random size:
near the feet it is metres wide, which no real floor is, and the detector's features of the
ground around the feet are then unlike any real image. Here each texture is drawn procedurally
(numpy + OpenCV: no free floor photographs with a known scale are reachable from the package
registries) as one half-period and mirrored into a 2x2 repeat, so it tiles without seams.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Texture side of one repeat, pixels (the half-period drawn is half of it).
SIZE = 512
#: Plain materials (RGB): concrete, light concrete, carpet grey, carpet blue, grass, asphalt.
PLAIN_COLOURS = np.array(
    [(150, 150, 145), (190, 186, 178), (110, 105, 100), (70, 80, 110), (80, 115, 55), (70, 70, 72)], np.float32
)
#: Tile and plank colours (RGB): light tiles, grey tiles, terracotta; oak, walnut, pale wood.
TILE_COLOURS = np.array([(205, 200, 190), (150, 150, 150), (170, 95, 65)], np.float32)
WOOD_COLOURS = np.array([(160, 115, 75), (95, 65, 45), (200, 170, 125)], np.float32)


def smooth_noise(rng: np.random.Generator, size: int, octaves: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Smooth multi-scale noise (size, size): ``(cells across, amplitude)`` per octave."""
    return sum(
        cv2.resize(rng.normal(0, 1, (n, n)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC) * w
        for n, w in octaves
    )


def tiles(rng: np.random.Generator, half: int) -> tuple[np.ndarray, float]:
    side_m = rng.uniform(0.3, 0.6)
    per_half = 2  # tiles across the half-period
    px = half // per_half
    base = TILE_COLOURS[rng.integers(len(TILE_COLOURS))] * rng.uniform(0.85, 1.15)
    shade = np.kron(rng.uniform(0.95, 1.05, (per_half, per_half)), np.ones((px, px)))[..., None]
    tex = base * shade * (1.0 + smooth_noise(rng, half, ((8, 0.02), (64, 0.02)))[..., None])
    grout = max(1, round(rng.uniform(0.003, 0.008) / side_m * px))
    colour = base * rng.uniform(0.45, 0.7)
    for k in range(per_half + 1):  # lines on the edges are half lines: mirrored, they become whole
        lo, hi = max(0, k * px - grout), min(half, k * px + grout)
        tex[lo:hi] = colour
        tex[:, lo:hi] = colour
    return tex, 2 * per_half * side_m


def _planks(rng: np.random.Generator, half: int) -> tuple[np.ndarray, float]:
    width_m, span_m = rng.uniform(0.09, 0.2), 1.2  # a half-period is 1.2 m of plank length
    rows = max(1, round(span_m / width_m))
    edges = np.linspace(0, half, rows + 1).astype(int)
    base = WOOD_COLOURS[rng.integers(len(WOOD_COLOURS))] * rng.uniform(0.85, 1.15)
    grain = cv2.resize(rng.normal(0, 1, (rows * 6, 8)).astype(np.float32), (half, half), interpolation=cv2.INTER_CUBIC)
    tex = base * (1.0 + 0.06 * grain[..., None])
    for top, bottom in zip(edges[:-1], edges[1:], strict=True):
        tex[top:bottom] *= rng.uniform(0.85, 1.15)  # each plank its own shade
        joint = int(rng.integers(half))  # staggered butt joints
        tex[top:bottom, max(0, joint - 1) : joint + 1] *= 0.6
        tex[top : top + 1] *= 0.6
    return tex, 2 * span_m


def _plain(rng: np.random.Generator, half: int) -> tuple[np.ndarray, float]:
    base = PLAIN_COLOURS[rng.integers(len(PLAIN_COLOURS))] * rng.uniform(0.8, 1.2)
    # Over 1 m: blotches of ~25 cm, ~6 cm and ~1.5 cm, plus pixel speckle (aggregate, fibres).
    noise = smooth_noise(rng, half, ((4, 0.08), (16, 0.05), (64, 0.03))) + rng.normal(0, 0.03, (half, half))
    return base * (1.0 + noise[..., None]), 2.0


def floor_material(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A floor texture (RGB uint8, ``SIZE`` x ``SIZE``) and the metres one repeat of it spans."""
    make = (tiles, _planks, _plain)[int(rng.choice(3, p=[0.3, 0.3, 0.4]))]
    tex, metres = make(rng, SIZE // 2)
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    return np.vstack([np.hstack([tex, tex[:, ::-1]]), np.hstack([tex[::-1], tex[::-1, ::-1]])]), metres
