"""A darkened contact patch on the ground under each person's feet.

The renderer casts no shadows, so rendered people float over the floor or the photograph; in real
images the ground around the feet is darker (contact and ambient occlusion), and that is where
the detector's ankle features come from. Drawn in image space after compositing: a soft ellipse
on the floor plane (z = 0) around the feet, projected into the image, darkening only pixels that
show no person. (Shadow mapping in pyrender needs an on-screen GL context, not OSMesa.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .scene import Scene

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


def contact_shadows(image: np.ndarray, scene: Scene, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (BGR) with a soft dark patch under the feet of everyone standing on the floor."""
    shade = np.zeros(labels.shape, np.float32)
    for person in scene.people:
        if person.joints_world[list(_ANKLES), 2].min() > MAX_ANKLE_HEIGHT_M:
            continue
        outline = _footprint(scene, person.joints_world)
        if outline is None:
            continue
        mask = np.zeros(labels.shape, np.float32)
        cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1.0)
        size = float(np.ptp(outline[:, 1])) + 1.0  # the patch's height in the image: blur to match
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.25 * size))
        shade = np.maximum(shade, mask * rng.uniform(0.35, 0.6))
    if not shade.any():
        return image
    shade[labels != NO_PERSON] = 0.0
    return np.clip(image.astype(np.float32) * (1.0 - shade[..., None]), 0, 255).astype(np.uint8)
