"""Skin, hair and clothing painted on Anny's UV layout, one texture per person.

Anny is a bare body; a detector trained on COCO meets dressed people. Clothes are painted, not
modelled: shirts, trousers, shorts, skirts and shoes as colours and patterns on body regions
whose edges (sleeve, hem, trouser leg, neckline) are set per outfit along body coordinates: the
position along the arm (shoulder 0 -> wrist 1), along the leg (hip 0 -> ankle 1) and up the
trunk (hips 0 -> neck 1). Those coordinates and the body part of every texel are rasterised once
from the rest pose of the average body (:func:`texel_coordinates`); the UV layout is shared by all
phenotypes, so each outfit is a few vectorised threshold operations on a 512x512 texture.
Patterns are stripes and checks in body coordinates (so stripes run round the body) or
low-frequency fabric noise; skin tones span very light to very dark, hair is painted on the scalp
(or not: bald). A vertex's body part is that of its dominant skinning bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .body import BodyModel, rest_bodies

TEXTURE_SIZE = 512

#: Body parts, by dominant skinning bone (prefix match, first wins).
PARTS = ("hips", "torso", "upperarm", "forearm", "hand", "thigh", "shin", "foot", "neck", "head", "eye")
_BONE_PARTS = (
    ("root", "hips"),
    ("pelvis", "hips"),
    ("spine05", "hips"),
    ("spine04", "hips"),
    ("spine03", "torso"),
    ("spine", "torso"),
    ("clavicle", "torso"),
    ("shoulder", "torso"),
    ("breast", "torso"),
    ("upperarm", "upperarm"),
    ("lowerarm", "forearm"),
    ("wrist", "hand"),
    ("finger", "hand"),
    ("metacarpal", "hand"),
    ("upperleg", "thigh"),
    ("lowerleg", "shin"),
    ("foot", "foot"),
    ("toe", "foot"),
    ("neck", "neck"),
    ("eye", "eye"),
    ("", "head"),
)

#: Skin tones (RGB 0-255), light to dark, roughly the Fitzpatrick/Monk scale.
SKIN_TONES = np.array(
    [
        (246, 218, 200),
        (236, 196, 170),
        (224, 178, 148),
        (208, 156, 120),
        (190, 134, 100),
        (165, 110, 78),
        (140, 88, 60),
        (112, 70, 48),
        (88, 56, 40),
        (64, 42, 32),
    ],
    np.float32,
)
HAIR_COLOURS = np.array(
    [
        (20, 16, 14),
        (45, 32, 24),
        (80, 55, 35),
        (120, 85, 50),
        (170, 130, 80),
        (215, 185, 130),
        (140, 60, 30),
        (150, 150, 150),
        (210, 210, 205),
    ],
    np.float32,
)


@dataclass(frozen=True)
class TexelCoordinates:
    """Per texel of the ``TEXTURE_SIZE``² UV texture (row 0 = top, i.e. v = 1):

    part: index into :data:`PARTS` (-1 where no triangle lies); arm, leg, trunk: body
    coordinates (see the module docstring; NaN off their parts); scalp: 1 where hair grows;
    fill: for every texel, the flat index of the nearest covered texel, to pad the islands so
    bilinear sampling at their edges never reads background.
    """

    part: np.ndarray
    arm: np.ndarray
    leg: np.ndarray
    trunk: np.ndarray
    scalp: np.ndarray
    fill: np.ndarray


def _vertex_attributes(body: BodyModel) -> dict[str, np.ndarray]:
    labels = body.bone_labels
    rest = rest_bodies(body, torch.full((1, len(body.phenotype_labels)), 0.5))
    v = rest["vertices"][0].numpy()
    heads = {name: rest["bone_heads"][0, i].numpy() for i, name in enumerate(labels)}
    weights = body.model.vertex_bone_weights.numpy()
    bones = body.model.vertex_bone_indices.numpy()
    dominant = bones[np.arange(len(v)), weights.argmax(1)]
    bone_part = np.array(
        [PARTS.index(next(p for prefix, p in _BONE_PARTS if name.startswith(prefix))) for name in labels]
    )
    part = bone_part[dominant]
    side = np.where(v[:, 0] >= 0, "L", "R")

    def along(start: str, end: str) -> np.ndarray:
        a = np.where((side == "L")[:, None], heads[f"{start}.L"], heads[f"{start}.R"])
        b = np.where((side == "L")[:, None], heads[f"{end}.L"], heads[f"{end}.R"])
        d = b - a
        return ((v - a) * d).sum(1) / (d * d).sum(1)

    hip_z = heads["upperleg01.L"][2]
    neck_z = heads["neck01"][2]
    head = heads["head"]
    eye_z = heads["eye.L"][2]
    scalp = (part == PARTS.index("head")) & (
        (v[:, 2] > eye_z + 0.035) | ((v[:, 1] > head[1] + 0.01) & (v[:, 2] > head[2] - 0.01))
    )
    return {
        "part": part.astype(np.float32),
        "arm": along("upperarm01", "wrist"),
        "leg": (hip_z - v[:, 2]) / (hip_z - heads["foot.L"][2]),
        "trunk": (v[:, 2] - hip_z) / (neck_z - hip_z),
        "scalp": scalp.astype(np.float32),
    }


def texel_coordinates(body: BodyModel, size: int = TEXTURE_SIZE) -> TexelCoordinates:
    """Rasterise the per-vertex body coordinates into UV space (barycentric interpolation; the
    part and scalp labels take the triangle's first corner, so they never blend)."""
    from scipy import ndimage

    topo = body.render_topology
    attrs = _vertex_attributes(body)
    values = np.stack([attrs[k][topo.vertex_ids] for k in ("part", "arm", "leg", "trunk", "scalp")], 1)
    uv = topo.uv * size - 0.5
    uv[:, 1] = size - 1 - uv[:, 1]  # row 0 is v = 1
    tri = uv[topo.faces]  # (F, 3, 2)
    lo = np.clip(np.floor(tri.min(1)).astype(int), 0, size - 1)
    hi = np.clip(np.ceil(tri.max(1)).astype(int), 0, size - 1)
    span = hi - lo + 1
    counts = span[:, 0] * span[:, 1]
    face = np.repeat(np.arange(len(tri)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = lo[face, 0] + local % span[face, 0]
    py = lo[face, 1] + local // span[face, 0]
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    det = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    w0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / det
    w1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / det
    w2 = 1.0 - w0 - w1
    inside = (w0 >= -1e-3) & (w1 >= -1e-3) & (w2 >= -1e-3)
    face, px, py = face[inside], px[inside], py[inside]
    bary = np.stack([w0[inside], w1[inside], w2[inside]], 1)
    corner_values = values[topo.faces[face]]  # (P, 3, 5)
    smooth = (corner_values * bary[:, :, None]).sum(1)
    maps = np.full((5, size, size), np.nan, np.float32)
    maps[1:4, py, px] = smooth[:, 1:4].T
    maps[0, py, px] = corner_values[:, 0, 0]
    maps[4, py, px] = corner_values[:, 0, 4]
    covered = ~np.isnan(maps[0])
    _, (iy, ix) = ndimage.distance_transform_edt(~covered, return_indices=True)
    part = np.where(covered, maps[0], -1).astype(np.int8)
    return TexelCoordinates(
        part=part,
        arm=maps[1],
        leg=maps[2],
        trunk=maps[3],
        scalp=np.nan_to_num(maps[4]) > 0.5,
        fill=(iy * size + ix).ravel(),
    )


# ---------------------------------------------------------------------------------------------
# Outfits


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A garment colour: mostly muted and dark (as clothes are), sometimes saturated."""
    if rng.random() < 0.45:  # neutrals: black, greys, white, navy, beige, denim
        palette = np.array(
            [
                (25, 25, 28),
                (60, 60, 65),
                (110, 110, 115),
                (170, 170, 170),
                (235, 235, 232),
                (30, 40, 75),
                (190, 175, 145),
                (70, 95, 140),
                (95, 80, 60),
            ],
            np.float32,
        )
        base = palette[rng.integers(len(palette))]
        return np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0, 6, 3), 0, 255)
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(60, 230), rng.uniform(50, 230)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


#: Fabrics and their shares: each shades the garment's colour its own way (``_fabric``).
FABRICS = {"cotton": 0.45, "denim": 0.2, "knit": 0.15, "sheen": 0.2}


@dataclass(frozen=True)
class Garment:
    colour: np.ndarray
    second: np.ndarray
    pattern: str  # "solid", "stripes", "checks"
    period: float  # in body-coordinate units
    fabric: str = "cotton"  # a key of FABRICS
    folds: float = 0.1  # depth of the creases across the limbs (share of the colour)


def _garment(rng: np.random.Generator) -> Garment:
    pattern = rng.choice(["solid", "stripes", "checks"], p=[0.65, 0.2, 0.15])
    fabric = str(rng.choice(list(FABRICS), p=list(FABRICS.values())))
    return Garment(
        _colour(rng), _colour(rng), str(pattern), float(rng.uniform(0.03, 0.12)), fabric, float(rng.uniform(0.05, 0.25))
    )


def _fabric(g: Garment, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shading of a garment's texels (multiplies the colour): creases across the body where
    cloth bunches (elbows, knees, waist), and the weave: denim's diagonal twill, a knit's speckle,
    a synthetic's sheen (broad bright and dark bands)."""
    size = u.shape[0]
    wobble = cv2.resize(rng.normal(0, 1, (8, 8)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    creases = np.maximum(0.0, np.sin(2 * np.pi * (v / rng.uniform(0.06, 0.14) + 0.3 * wobble))) ** 4
    shade = 1.0 - g.folds * creases
    if g.fabric == "denim":
        shade *= 1.0 + 0.08 * np.sign(np.sin(2 * np.pi * (u + v) * 60.0))
    elif g.fabric == "knit":
        shade *= 1.0 + rng.normal(0, 0.06, u.shape)
    elif g.fabric == "sheen":
        shade *= 1.0 + 0.25 * np.sin(2 * np.pi * (u * 2.0 + 0.5 * wobble))
    return shade.astype(np.float32)


@dataclass(frozen=True)
class Outfit:
    """Everything sampled for one person's look (kept for the record in the shard metadata)."""

    skin: np.ndarray
    hair: np.ndarray | None
    top: Garment
    bottom: Garment
    shoes: np.ndarray | None
    sleeve: float  # arm coordinate where the sleeve ends (0: sleeveless)
    hem: float  # leg coordinate where the top ends (it covers the hips above it)
    leg: float  # leg coordinate where trousers/shorts/skirt end
    neckline: float  # trunk coordinate where the top ends at the neck


def sample_outfit(rng: np.random.Generator) -> Outfit:
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.08) + rng.normal(0, 4, 3)
    hair = None if rng.random() < 0.12 else HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15)
    top, bottom = _garment(rng), _garment(rng)
    if rng.random() < 0.1:  # a dress: one garment, a skirt-length bottom
        bottom = top
        leg = rng.uniform(0.3, 0.75)
    else:
        leg = float(rng.choice([1.02, 0.75, 0.45, 0.3], p=[0.6, 0.08, 0.2, 0.12]))
    return Outfit(
        skin=np.clip(skin, 0, 255),
        hair=None if hair is None else np.clip(hair, 0, 255),
        top=top,
        bottom=bottom,
        shoes=None if rng.random() < 0.05 else _colour(rng) * rng.uniform(0.3, 0.9),
        sleeve=float(rng.choice([0.0, 0.35, 0.75, 1.05], p=[0.1, 0.4, 0.1, 0.4])),
        hem=float(rng.uniform(-0.05, 0.2)),
        leg=leg,
        neckline=float(rng.uniform(0.85, 1.05)),
    )


def _paint(
    tex: np.ndarray, mask: np.ndarray, g: Garment, u: np.ndarray, v: np.ndarray, rng: np.random.Generator
) -> None:
    colour = np.broadcast_to(g.colour, tex.shape).copy()
    if g.pattern == "stripes":
        on = np.floor(v / g.period) % 2 == 1
        colour[on] = g.second
    elif g.pattern == "checks":
        on = (np.floor(u / g.period) + np.floor(v / g.period)) % 2 == 1
        colour[on] = 0.6 * g.colour + 0.4 * g.second
    colour *= _fabric(g, u, v, rng)[..., None]
    tex[mask] = colour[mask]


def paint_texture(coords: TexelCoordinates, outfit: Outfit, rng: np.random.Generator) -> np.ndarray:
    """The ``(S, S, 3)`` uint8 RGB texture of one person."""
    size = coords.part.shape[0]
    P = {name: coords.part == i for i, name in enumerate(PARTS)}
    tex = np.empty((size, size, 3), np.float32)
    tex[:] = outfit.skin
    arm, leg, trunk = (np.nan_to_num(a, nan=-1.0) for a in (coords.arm, coords.leg, coords.trunk))
    # Body coordinates for patterns: around-the-body u from the texel column, along-the-body v.
    u = np.broadcast_to(np.arange(size, dtype=np.float32) / size * 4.0, (size, size))
    arms = P["upperarm"] | P["forearm"]
    legs = P["thigh"] | P["shin"]
    bottom = (legs & (leg <= outfit.leg)) | P["hips"]
    _paint(tex, bottom, outfit.bottom, u, np.where(legs, leg * 3.0, trunk * 0.8), rng)
    top = ((P["torso"] | ((P["hips"] | legs) & (leg <= outfit.hem))) & (trunk <= outfit.neckline)) | (
        arms & (arm <= outfit.sleeve)
    )
    _paint(tex, top, outfit.top, u, np.where(arms, arm * 2.0, trunk * 0.8), rng)
    if outfit.shoes is not None:
        tex[P["foot"] | (legs & (leg > 0.97))] = outfit.shoes
    if outfit.hair is not None:
        tex[coords.scalp] = outfit.hair
    tex[P["eye"]] = (40, 35, 30)
    # Fabric and skin are not flat: low-frequency shading noise, a little more on clothes.
    noise = cv2.resize(rng.normal(0.0, 1.0, (16, 16)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    tex *= (1.0 + 0.06 * noise)[..., None]
    tex = np.clip(tex, 0, 255).astype(np.uint8).reshape(-1, 3)[coords.fill].reshape(size, size, 3)
    return tex
