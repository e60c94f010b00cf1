"""The fitted poses, computed once and cached: every scene draws its people from here.

Fitting is the expensive part of the engine (calibrating the mapping, then the batched fit of
every mocap frame), and it does not depend on the scene, so it runs once per (subjects, stride,
engine version) and is kept in ``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose/synthetic/``. The
mapping is always calibrated on the training subjects (S1 S5 S6 S7 S8), also when the library is
built from the validation subject S11 for a validation split: S11 then only gets its own
phenotype fitted to its bone lengths, which the residual needs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS, load_poses

from . import retarget
from .body import BodyModel
from .joint_mapping import JointRegressor
from .pose_fit import fit_poses, prepare_body

#: Bump when the fit, the mapping or the library format change: it keys the cache.
LIBRARY_VERSION = 1


@dataclass
class PoseLibrary:
    """Fitted mocap frames.

    Attributes:
        rotations: ``(N, S, 3, 3)`` segment rotations (rest -> posed, H36M world frame).
        pelvis: ``(N, 3)`` the mocap pelvis, world metres (where the subject stood).
        residual_mm: ``(N, 17)`` per-joint distance of the fitted body's mapped joints to the mocap.
        sequence: ``(N,)`` index into ``sequences`` ("S1/Directions 1").
        frame: ``(N,)`` mocap row in that sequence (50 Hz rows of poses_world17_mm.npz).
        regressor: the mapping Anny -> H36M-17.
        calibration_residual_mm: ``(17,)`` the mapping's held-out residual per joint.
    """

    rotations: np.ndarray
    pelvis: np.ndarray
    residual_mm: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray
    sequences: list[str]
    regressor: JointRegressor
    calibration_residual_mm: np.ndarray
    key: str

    @property
    def subjects(self) -> list[str]:
        return sorted({s.split("/")[0] for s in self.sequences})

    @property
    def keep(self) -> np.ndarray:
        """``(N,)`` the frames whose fit passes ``retarget``'s residual thresholds."""
        r = self.residual_mm
        return (r.mean(1) <= retarget.MAX_MEAN_RESIDUAL_MM) & (r.max(1) <= retarget.MAX_JOINT_RESIDUAL_MM)

    def drop_fraction(self) -> float:
        return float(1.0 - self.keep.mean())


def library_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ros2_ctxpose" / "synthetic"


def library_key(subjects: tuple[str, ...], stride: int, calibration_frames: int) -> str:
    import anny

    spec = {
        "version": LIBRARY_VERSION,
        "anny": anny.__version__,
        "subjects": sorted(subjects),
        "stride": stride,
        "calibration_frames": calibration_frames,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def load_or_build(
    body: BodyModel,
    subjects: tuple[str, ...],
    stride: int = 10,
    calibration_frames: int = 300,
    cache_dir: Path | None = None,
    log=print,
) -> PoseLibrary:
    """The library of ``subjects``' frames (every ``stride``-th), from the cache or built now
    (a few minutes: the calibration on ``calibration_frames`` frames per training subject, then
    the fit of every frame, ~15k a minute on one core)."""
    key = library_key(subjects, stride, calibration_frames)
    path = Path(cache_dir or library_dir()) / f"pose_library_{key}.npz"
    if path.is_file():
        return _load(path, key)
    library = build(body, subjects, stride, calibration_frames, key, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(
        tmp,
        rotations=library.rotations,
        pelvis=library.pelvis,
        residual_mm=library.residual_mm,
        sequence=library.sequence,
        frame=library.frame,
        sequences=np.array(library.sequences),
        regressor_ids=library.regressor.vertex_ids,
        regressor_weights=library.regressor.weights,
        calibration_residual_mm=library.calibration_residual_mm,
    )
    os.replace(tmp, path)
    return library


def _load(path: Path, key: str) -> PoseLibrary:
    with np.load(path) as z:
        return PoseLibrary(
            rotations=z["rotations"],
            pelvis=z["pelvis"],
            residual_mm=z["residual_mm"],
            sequence=z["sequence"],
            frame=z["frame"],
            sequences=[str(s) for s in z["sequences"]],
            regressor=JointRegressor(z["regressor_ids"], z["regressor_weights"]),
            calibration_residual_mm=z["calibration_residual_mm"],
            key=key,
        )


def build(
    body: BodyModel, subjects: tuple[str, ...], stride: int, calibration_frames: int, key: str, log=print
) -> PoseLibrary:
    train = load_poses(TRAIN_SUBJECTS, stride=5)
    by_subject = {
        s: torch.from_numpy(np.concatenate([v for k, v in train.items() if k.split("/")[0] == s]))
        for s in TRAIN_SUBJECTS
    }
    log(f"pose library: calibrating the Anny -> H36M mapping on {', '.join(TRAIN_SUBJECTS)}")
    calibration = retarget.calibrate(body, by_subject, frames_per_subject=calibration_frames)
    regressor = calibration.regressor
    poses = load_poses(subjects, stride=stride)
    sequences = sorted(poses)
    out = {k: [] for k in ("rotations", "pelvis", "residual_mm", "sequence", "frame")}
    for subject in subjects:
        names = [s for s in sequences if s.split("/")[0] == subject]
        frames = torch.from_numpy(np.concatenate([poses[s] for s in names]))
        phenotype = calibration.phenotypes.get(subject)
        if phenotype is None:
            phenotype = retarget.fit_phenotype(body, regressor, retarget.bone_lengths(frames).median(0).values)
        log(f"pose library: fitting {len(frames)} frames of {subject}")
        fit = fit_poses(body, prepare_body(body, phenotype, regressor.vertex_ids), regressor, frames)
        out["rotations"].append(fit.rotations.numpy().astype(np.float32))
        out["pelvis"].append(frames[:, 0].numpy().astype(np.float32))
        out["residual_mm"].append(fit.residual_mm.numpy().astype(np.float32))
        out["sequence"].append(np.concatenate([np.full(len(poses[s]), sequences.index(s), np.int32) for s in names]))
        out["frame"].append(np.concatenate([np.arange(len(poses[s]), dtype=np.int32) * stride for s in names]))
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    return PoseLibrary(
        **arrays,
        sequences=sequences,
        regressor=regressor,
        calibration_residual_mm=calibration.residual_mm,
        key=key,
    )
