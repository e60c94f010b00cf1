"""Annotated real frames as a ``PeopleSet``: the real detector run once, its outputs cached.

``ctxpose eval`` measures the whole pipeline on annotated frames; during training the lifter alone
is measured many times on the same frames, so the detector's part (keypoints, feature crops) is
computed once per annotation file, detector weights and crop geometry, and kept under the cache
folder. Only frames annotated in the lifter's own layout (``h36m17``, e.g. the 399 real S11
frames of ``data/h36m_s11_walkdog``) can be scored joint for joint here; ``ctxpose eval`` covers
the other layouts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ros2_ctxpose.core.annotations import read_annotations
from ros2_ctxpose.core.detector import PoseDetector
from ros2_ctxpose.core.detector.checkpoint import cache_dir
from ros2_ctxpose.core.detector.features import crop_people
from ros2_ctxpose.core.evaluation import match_person
from ros2_ctxpose.core.joint_sets import JOINT_SETS
from ros2_ctxpose.core.lifter.model import LifterConfig
from ros2_ctxpose.core.media.images import read_image
from ros2_ctxpose.training.people import PeopleSet

#: Bumped when the cached layout changes.
_CACHE_VERSION = 1


def _key(annotations: Path, detector: PoseDetector, lifter: LifterConfig) -> str:
    h = hashlib.sha256(annotations.read_bytes())
    h.update(
        json.dumps(
            [
                getattr(detector, "weights", "").__str__(),
                detector.backend,
                detector.precision,
                detector.imgsz,
                list(lifter.context_crop_sizes),
                lifter.context_crop_margin,
                _CACHE_VERSION,
            ]
        ).encode()
    )
    return h.hexdigest()[:16]


def load_real_frames(
    annotations: Path, detector: PoseDetector, lifter: LifterConfig | None = None, cache: Path | None = None
) -> PeopleSet:
    """Every ``h36m17``-annotated frame of ``annotations`` whose person the detector found."""
    lifter = lifter or LifterConfig()
    path = (
        cache or cache_dir() / "real_frames"
    ) / f"{annotations.parent.name}-{_key(annotations, detector, lifter)}.npz"
    if path.is_file():
        with np.load(path) as blob:
            return _from_arrays(dict(blob))
    arrays = _detect(annotations, detector, lifter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return _from_arrays(arrays)


def _from_arrays(a: dict[str, np.ndarray]) -> PeopleSet:
    levels = sorted(k for k in a if k.startswith("crops_"))
    return PeopleSet(
        kp_norm=a["kp_norm"],
        conf=a["conf"],
        joints_grid=a["joints_grid"],
        crops=tuple(a[k] for k in levels),
        target=a["target"],
    )


def _detect(annotations: Path, detector: PoseDetector, lifter: LifterConfig) -> dict[str, np.ndarray]:
    entries = read_annotations(annotations)
    mapping = JOINT_SETS["h36m17"]
    rows: dict[str, list[np.ndarray]] = {"kp_norm": [], "conf": [], "joints_grid": [], "target": []}
    crops: list[list[np.ndarray]] = []
    for entry in entries:
        truth = entry.truth
        if truth is None or truth.joint_set != "h36m17":
            continue
        image = read_image(entry.path)
        camera = entry.camera(image.shape[1], image.shape[0])
        det = detector.detect(image)
        match = match_person(det.keypoints, truth.joints_2d, mapping)
        if match is None:
            continue
        i = match[0]
        kp = det.keypoints[i].astype(np.float64)
        people = crop_people(
            det.features,
            det.letterbox,
            torch.from_numpy(det.boxes_xyxy[i : i + 1]),
            torch.from_numpy(kp[None, :, :2]),
            lifter.context_crop_sizes,
            lifter.context_crop_margin,
        )
        joints = truth.joints_3d
        rows["kp_norm"].append(camera.normalize(kp[:, :2]).astype(np.float32))
        rows["conf"].append(kp[:, 2].astype(np.float32))
        rows["joints_grid"].append(people.joints_grid[0].float().numpy())
        rows["target"].append((joints - joints[0]).astype(np.float32))
        crops.append([c[0].to(torch.float16).numpy() for c in people.crops])
    if not crops:
        raise ValueError(f"{annotations}: no h36m17-annotated frame with a detected person")
    arrays = {k: np.stack(v) for k, v in rows.items()}
    arrays.update({f"crops_{level}": np.stack(c) for level, c in enumerate(zip(*crops))})
    return arrays
