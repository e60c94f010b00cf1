"""Pinhole camera with optional radial/tangential distortion.

The lifter never sees pixels: it sees undistorted normalised image coordinates (x/z, y/z), so one
model serves every camera. This module is the single place where pixels and normalised coordinates
are converted, with OpenCV's distortion convention (k1, k2, p1, p2, k3[, k4, k5, k6[, s1..s4[, tx,
ty]]]), which is also what ``sensor_msgs/CameraInfo`` carries for the ``plumb_bob`` and
``rational_polynomial`` models, and the single place where a calibration (CameraInfo, a
camera_info YAML, an annotated dataset entry) becomes a ``CameraModel``: ``from_calibration``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np

#: Distortion models whose coefficients OpenCV takes as they are (CameraInfo's names).
SUPPORTED_DISTORTION: Final[tuple[str, ...]] = ("plumb_bob", "rational_polynomial")
#: Coefficient counts OpenCV accepts; other counts are zero-padded up to the next of these.
_OPENCV_DIST_LENGTHS: Final[tuple[int, ...]] = (4, 5, 8, 12, 14)
#: A calibrated focal length further than this factor from the image width (either way), or
#: a coefficient larger than this in magnitude, is not a real camera: refused.
_MAX_FOCAL_FACTOR: Final[float] = 1000.0
_MAX_DIST_COEFF: Final[float] = 1000.0

#: Horizontal field of view assumed when a camera's intrinsics are unknown (no CameraInfo, no
#: --fx/--camera-info): a typical webcam/robot head camera. Distances are then not metric.
DEFAULT_HFOV_DEG = 60.0
#: The camera's optical frame when nothing names it (an image header without frame_id; the CLI's
#: MCAP recording): the node's and the CLI's default.
DEFAULT_FRAME_ID = "camera_optical_frame"


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of one camera, in the optical frame (x right, y down, z forward)."""

    K: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    #: True when the intrinsics were assumed from a field of view rather than calibrated.
    assumed: bool = False
    #: What ``from_calibration`` changed to make the calibration usable (scaled, padded), for the
    #: caller to report once.
    notes: tuple[str, ...] = ()

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
    def from_calibration(
        cls,
        K: Sequence[float] | np.ndarray,
        dist: Sequence[float] | np.ndarray = (),
        image_size: tuple[int, int] | None = None,
        *,
        calibration_size: tuple[int, int] | None = None,
        distortion_model: str = "plumb_bob",
    ) -> CameraModel:
        """The camera of an image of ``image_size`` (width, height) from a calibration.

        ``K`` (3x3, or its 9 values) and ``dist`` in OpenCV/CameraInfo order were measured at
        ``calibration_size`` (default: the image size); a driver that scales its output keeps
        its calibration, so K is scaled to the image. Coefficient counts OpenCV does not take
        (3, 6, ...) are zero-padded to the next one it does (the missing higher-order terms are
        then zero), trailing beyond 14 refused. Raises ``ValueError`` naming the problem for an
        unsupported model, a K that is no camera (zero, non-finite, a focal length 1000x off the
        image width) or absurd coefficients; ``notes`` says what was scaled or padded.
        """
        k_mat = np.asarray(K, dtype=np.float64).reshape(3, 3)
        dist = np.asarray(dist, dtype=np.float64).ravel()
        notes: list[str] = []
        if dist.size and np.any(dist != 0.0) and distortion_model not in SUPPORTED_DISTORTION:
            raise ValueError(
                f"distortion model {distortion_model!r} is not supported (supported: {', '.join(SUPPORTED_DISTORTION)})"
            )
        if dist.size > _OPENCV_DIST_LENGTHS[-1]:
            raise ValueError(
                f"{dist.size} distortion coefficients; OpenCV's models have at most {_OPENCV_DIST_LENGTHS[-1]}"
            )
        if dist.size > 0 and dist.size not in _OPENCV_DIST_LENGTHS:
            padded = next(n for n in _OPENCV_DIST_LENGTHS if n > dist.size)
            notes.append(f"{dist.size} distortion coefficients zero-padded to {padded} (OpenCV order)")
            dist = np.concatenate([dist, np.zeros(padded - dist.size)])
        if not np.isfinite(dist).all() or np.abs(dist).max(initial=0.0) > _MAX_DIST_COEFF:
            raise ValueError(
                f"distortion coefficients {dist.tolist()} are not a real lens "
                f"(non-finite or larger than {_MAX_DIST_COEFF:g})"
            )
        if image_size is None:
            if calibration_size is None:
                raise ValueError("give the image size or the calibration size")
            image_size = calibration_size
        width, height = int(image_size[0]), int(image_size[1])
        if calibration_size and all(calibration_size) and tuple(calibration_size) != (width, height):
            k_mat = k_mat * np.array([[width / calibration_size[0]], [height / calibration_size[1]], [1.0]])
            notes.append(
                f"intrinsics calibrated for {calibration_size[0]}x{calibration_size[1]} scaled to "
                f"the {width}x{height} image"
            )
        focal = k_mat[[0, 1], [0, 1]]
        if (
            np.isfinite(k_mat).all()
            and width > 0
            and ((focal > width * _MAX_FOCAL_FACTOR).any() or (focal < width / _MAX_FOCAL_FACTOR).any())
        ):
            raise ValueError(f"focal lengths {focal.tolist()} px are not a real camera for a {width} px wide image")
        centre = k_mat[[0, 1], [2, 2]]
        if np.isfinite(centre).all() and not (-width <= centre[0] <= 2 * width and -height <= centre[1] <= 2 * height):
            raise ValueError(f"principal point {centre.tolist()} px lies far outside the {width}x{height} image")
        return cls(K=k_mat, width=width, height=height, dist=dist if dist.size else np.zeros(5), notes=tuple(notes))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> CameraModel:
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
