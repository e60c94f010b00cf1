"""Human3.6M mocap and cameras from ``../shared/data/h36m`` (see its README for the conventions).

The world frame is z-up with the floor near z = 0, in int16 millimetres at 50 Hz. Camera frames
follow X_cam = Rᵀ · (X_world/1000 − T) in metres. Everything here is numpy: projections are
precomputed once, the training loop only adds noise in torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.paths import shared_data_dir

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
VAL_SUBJECTS: tuple[str, ...] = ("S11",)


def h36m_dir() -> Path:
    return shared_data_dir() / "data" / "h36m"


@dataclass(frozen=True)
class H36MCamera:
    """One calibrated Human3.6M camera: extrinsics (world mm -> camera m) and intrinsics."""

    name: str
    R: np.ndarray  # (3, 3)
    T: np.ndarray  # (3,) metres, camera centre in world
    model: CameraModel

    def world_to_cam(self, joints_world_mm: np.ndarray) -> np.ndarray:
        """(..., 3) world millimetres -> (..., 3) camera metres, X_cam = Rᵀ (X_world/1000 − T)."""
        return (np.asarray(joints_world_mm, np.float64) / 1000.0 - self.T) @ self.R


def load_cameras(path: Path | None = None) -> dict[str, H36MCamera]:
    """All cameras keyed ``"S1/54138969"``; distortion is kept in OpenCV's (k1, k2, p1, p2, k3) order."""
    raw = json.loads(Path(path or h36m_dir() / "cameras.json").read_text())
    cams = {}
    for key, c in raw.items():
        f = np.ravel(c["f"])
        cc = np.ravel(c["c"])
        k = np.ravel(c["k"])
        p = np.ravel(c["p"])
        K = np.array([[f[0], 0.0, cc[0]], [0.0, f[1], cc[1]], [0.0, 0.0, 1.0]])
        model = CameraModel(K=K, width=int(c["w"]), height=int(c["h"]), dist=np.array([k[0], k[1], p[0], p[1], k[2]]))
        cams[key] = H36MCamera(
            name=key, R=np.asarray(c["R"], np.float64), T=np.ravel(c["T"]).astype(np.float64), model=model
        )
    return cams


def load_poses(subjects: tuple[str, ...], stride: int = 1, path: Path | None = None) -> dict[str, np.ndarray]:
    """World poses in metres (float32), keyed ``"S1/Directions 1"``, every ``stride``-th frame.

    50 Hz mocap is highly redundant for a single-frame lifter; a stride of 5 (10 Hz) keeps the
    pose variety and cuts the data fivefold.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    data = np.load(Path(path or h36m_dir() / "poses_world17_mm.npz"))
    wanted = set(subjects)
    out = {k: data[k][::stride].astype(np.float32) / 1000.0 for k in data.files if k.split("/")[0] in wanted}
    missing = wanted - {k.split("/")[0] for k in out}
    if missing:
        raise KeyError(f"subjects {sorted(missing)} not found in {path or h36m_dir()}")
    return out


def subject_cameras(cameras: dict[str, H36MCamera], subject: str) -> list[H36MCamera]:
    return [cam for key, cam in sorted(cameras.items()) if key.split("/")[0] == subject]


def project_real_cameras(
    poses_m: dict[str, np.ndarray], cameras: dict[str, H36MCamera]
) -> tuple[np.ndarray, np.ndarray]:
    """Every pose through each of its subject's 4 real cameras.

    Returns ``joints_cam (N, 17, 3)`` in metres (camera frame) and ``bounds (N, 4)``, the image
    rectangle in undistorted normalised coordinates (x_min, y_min, x_max, y_max) used for
    truncation. The lens distortion of these cameras moves a joint by at most a few pixels at the
    border, so the rectangle is taken from the pinhole part only.
    """
    cams_all, bounds_all = [], []
    for key, world in poses_m.items():
        for cam in subject_cameras(cameras, key.split("/")[0]):
            cams_all.append(cam.world_to_cam(world * 1000.0).astype(np.float32))
            bounds_all.append(np.broadcast_to(image_bounds(cam.model), (len(world), 4)))
    return np.concatenate(cams_all), np.concatenate(bounds_all).astype(np.float32)


def image_bounds(model: CameraModel) -> np.ndarray:
    """The image rectangle (x_min, y_min, x_max, y_max) in pinhole normalised coordinates."""
    K = model.K
    return np.array(
        [-K[0, 2] / K[0, 0], -K[1, 2] / K[1, 1], (model.width - K[0, 2]) / K[0, 0], (model.height - K[1, 2]) / K[1, 1]]
    )
