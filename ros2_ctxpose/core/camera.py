"""Pinhole camera with optional radial/tangential distortion.

The lifter never sees pixels: it sees undistorted normalised image coordinates (x/z, y/z), so one
model serves every camera. This module is the single place where pixels and normalised coordinates
are converted, with OpenCV's distortion convention (k1, k2, p1, p2, k3), which is also what
``sensor_msgs/CameraInfo`` carries for the ``plumb_bob`` model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Horizontal field of view assumed when a camera's intrinsics are unknown (no CameraInfo, no
#: --fx/--camera-info): a typical webcam/robot head camera. Distances are then not metric.
DEFAULT_HFOV_DEG = 60.0


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of one camera, in the optical frame (x right, y down, z forward)."""

    K: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    #: True when the intrinsics were assumed from a field of view rather than calibrated.
    assumed: bool = False

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        dist = np.asarray(self.dist, dtype=np.float64).ravel()
        if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError(f"invalid camera matrix: fx and fy must be finite and > 0, got {K.tolist()}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"invalid image size {self.width}x{self.height}")
        if not np.isfinite(dist).all():
            raise ValueError(f"invalid distortion coefficients {dist.tolist()}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "dist", dist)

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> "CameraModel":
        """A distortion-free camera with square pixels, centred, of the given horizontal FOV."""
        if not 1.0 < hfov_deg < 179.0:
            raise ValueError(f"horizontal field of view must be in (1, 179) degrees, got {hfov_deg}")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        K = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
        return cls(K=K, width=width, height=height, assumed=True)

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.dist != 0.0))

    def normalize(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) -> undistorted normalised coordinates (..., 2)."""
        uv = np.asarray(uv, dtype=np.float64)
        flat = uv.reshape(-1, 1, 2)
        if self.has_distortion:
            xy = cv2.undistortPoints(flat, self.K, self.dist)
        else:
            xy = (flat - self.K[[0, 1], [2, 2]]) / self.K[[0, 1], [0, 1]]
        return xy.reshape(uv.shape)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) in metres -> pixels (..., 2), distortion applied."""
        pts = np.asarray(points_cam, dtype=np.float64)
        flat = pts.reshape(-1, 3)
        uv, _ = cv2.projectPoints(flat, np.zeros(3), np.zeros(3), self.K, self.dist)
        return uv.reshape(pts.shape[:-1] + (2,))
