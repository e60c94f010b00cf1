"""Shadows on the ground: a darkened contact patch under each person's feet, and the shadow each
person casts from the scene's key light onto a rendered floor.

The renderer casts no shadows (shadow mapping in pyrender needs an on-screen GL context, not
OSMesa), so rendered people would float over the floor; in real images the ground around the feet
is darker (contact and ambient occlusion) and, under a sun or a lamp, a person's shadow lies on
the floor beside them: that is where the detector's ankle features come from. Both are drawn in
image space after compositing, on the floor plane z = 0, darkening only pixels that show no
person: the contact patch is a soft ellipse around the feet; the cast shadow is the body's mesh
projected along the key light's rays onto the floor (planar projected shadows), as dark as the
share of the light that the key light brings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .render import Light
    from .scene import Scene

from .lighting import floor_irradiance, key_light
from .render import NO_PERSON

#: Ankles of H36M-17 (right, left).
_ANKLES = (3, 6)
#: A person whose lower ankle is this high stands on something else (a box, a step): no patch.
MAX_ANKLE_HEIGHT_M = 0.2


def _footprint(scene: Scene, joints_world: np.ndarray, points: int = 24) -> np.ndarray | None:
    """The patch's outline in the image (points, 2), or None when it is behind the camera."""
    ankles = joints_world[list(_ANKLES), :2].astype(np.float64)
    centre, span = ankles.mean(0), ankles[1] - ankles[0]
    length = float(np.linalg.norm(span))
    axis = span / length if length > 1e-6 else np.array([1.0, 0.0])
    a, b = 0.5 * length + 0.22, 0.18  # metres: past the feet, about a foot's length either side
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xy = centre + np.outer(a * np.cos(t), axis) + np.outer(b * np.sin(t), [-axis[1], axis[0]])
    cam = scene.to_camera(np.column_stack([xy, np.zeros(points)]))
    if (cam[:, 2] < 0.1).any():
        return None
    return scene.camera.project(cam)


def _add_soft_shape(shade: np.ndarray, polygons: list[np.ndarray], sigma: float, strength: float) -> None:
    """Fill the convex ``polygons`` (pixel coordinates x4, i.e. 2 fractional bits), blur by ``sigma`` and
    keep the darker of that and ``shade``; only the polygons' padded bounding box is touched
    (a full-image blur of a large sigma cost more than the render)."""
    points = np.concatenate(polygons) / 4.0
    pad = int(3 * sigma) + 2
    H, W = shade.shape
    x0, y0 = (np.floor(points.min(0)).astype(int) - pad).clip(0, [W, H])
    x1, y1 = (np.ceil(points.max(0)).astype(int) + pad + 1).clip(0, [W, H])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    offset = np.array([x0, y0], np.int64) * 4
    # One polygon at a time: fillPoly given many fills by parity, so overlapping triangles (the
    # front and back of a body) would cancel out into holes.
    for polygon in polygons:
        cv2.fillConvexPoly(mask, (polygon - offset).astype(np.int32), 1, lineType=cv2.LINE_8, shift=2)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) * strength
    np.maximum(shade[y0:y1, x0:x1], soft, out=shade[y0:y1, x0:x1])


def _darken(image: np.ndarray, shade: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``image`` darkened by ``shade`` (0-1) wherever no person is seen."""
    if not shade.any():
        return image
    shade[labels != NO_PERSON] = 0.0
    return np.clip(image.astype(np.float32) * (1.0 - shade[..., None]), 0, 255).astype(np.uint8)


def _fixed_point(px: np.ndarray) -> np.ndarray:
    """Pixel coordinates as the 2-fractional-bit integers of ``cv2.fillPoly(..., shift=2)``."""
    return np.round(np.clip(px, -1e5, 1e5) * 4).astype(np.int64)


def contact_shadows(image: np.ndarray, scene: Scene, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (BGR) with a soft dark patch under the feet of everyone standing on the floor."""
    shade = np.zeros(labels.shape, np.float32)
    for person in scene.people:
        if person.joints_world[list(_ANKLES), 2].min() > MAX_ANKLE_HEIGHT_M:
            continue
        outline = _footprint(scene, person.joints_world)
        if outline is None:
            continue
        size = float(np.ptp(outline[:, 1])) + 1.0  # the patch's height in the image: blur to match
        _add_soft_shape(shade, [_fixed_point(outline)], max(1.0, 0.25 * size), rng.uniform(0.35, 0.6))
    return _darken(image, shade, labels)


def _onto_floor(points: np.ndarray, light: Light) -> np.ndarray | None:
    """``points`` (N, 3) moved along the light's rays onto z = 0, or None when the light cannot
    throw them there (a sun below the horizon, a lamp lower than the points)."""
    if light.kind == "directional":
        d = np.asarray(light.direction, np.float64)
        if d[2] > -0.05:
            return None
        return points - (points[:, 2:3] / d[2]) * d
    L = np.asarray(light.position, np.float64)
    if points[:, 2].max() > L[2] - 0.05:
        return None
    return L + (points - L) * (L[2] / (L[2] - points[:, 2:3]))


def _key_share(scene: Scene, key: Light, at: np.ndarray) -> float:
    """The share of the light falling on the floor at ``at`` (x, y) that comes from ``key``: the
    darkness of its shadow there (ambient as pyrender adds it)."""
    total = scene.ambient + sum(floor_irradiance(light, at) for light in scene.lights)
    return floor_irradiance(key, at) / total if total > 0 else 0.0


def cast_shadows(
    image: np.ndarray, scene: Scene, labels: np.ndarray, faces: np.ndarray, vertex_ids: np.ndarray
) -> np.ndarray:
    """``image`` (BGR) with each person's shadow from the key light on the floor, when the scene
    has a rendered floor; ``faces`` index ``vertices[vertex_ids]`` (the rendered mesh)."""
    key = key_light(scene.lights)
    if not scene.floor or key is None:
        return image
    shade = np.zeros(labels.shape, np.float32)
    # A penumbra: lamps are close and large, the sun small and far.
    sigma = 1.0 if key.kind == "directional" else 3.0
    for person in scene.people:
        ground = _onto_floor(person.vertices[vertex_ids].astype(np.float64), key)
        if ground is None:
            continue
        cam = scene.to_camera(ground)
        # A closed body's faces turned to the light throw the whole shadow: half the triangles.
        tri = person.vertices[vertex_ids][faces].astype(np.float64)
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        if key.kind == "directional":
            lit = normals @ -np.asarray(key.direction, np.float64) > 0
        else:
            lit = np.einsum("fd,fd->f", normals, np.asarray(key.position, np.float64) - tri.mean(1)) > 0
        front = (cam[faces, 2] > 0.1).all(1) & lit
        if front.any():
            triangles = _fixed_point(scene.camera.project(cam))[faces[front]]
            strength = 0.85 * _key_share(scene, key, person.joints_world[0, :2].astype(np.float64))
            _add_soft_shape(shade, list(triangles), sigma, strength)
    return _darken(image, shade, labels)
