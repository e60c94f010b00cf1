"""The one reader of ``annotations.json``: annotated images as typed records.

The format (``../shared/data/images``, ``../shared/data/h36m_s11_walkdog``): a document with
``images``, a list of records (``file`` relative to the document's folder, ``dataset``, ``K``
3x3, ``dist_k`` radial k1..k3 and ``dist_p`` tangential p1, p2, ``joint_names`` naming a layout,
``joints_3d_cam_m`` (J, 3) camera frame metres, ``joints_2d_px`` (J, 2), and optionally
``width``/``height``, ``subject``, ``camera``, ``sequence``, ``frame``, ``mocap_row``, the
extrinsics ``R``/``T``), and ``joint_sets`` (layout name -> joint names). Evaluation, training,
benchmarks and tests read it here only, so a change of format is one change; a malformed document
or record is a ``ValueError`` naming the record, not a ``KeyError`` deep in a caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .camera import CameraModel


@dataclass(frozen=True)
class GroundTruth:
    """A record's annotated person: joints in the layout ``joint_set``."""

    joint_set: str  # a ``core.joint_sets.JOINT_SETS`` name
    joints_3d: np.ndarray  # (J, 3) camera frame, metres
    joints_2d: np.ndarray  # (J, 2) pixels


@dataclass(frozen=True)
class AnnotatedImage:
    """One record of an annotations.json; ``truth`` is None for an image without 3D ground truth."""

    file: str
    dataset: str
    #: Absolute path of the image (the document's folder joined with ``file``).
    path: Path
    K: np.ndarray | None  # (3, 3)
    dist_k: tuple[float, ...]  # radial k1..k3 (may be empty)
    dist_p: tuple[float, ...]  # tangential p1, p2 (may be empty)
    truth: GroundTruth | None
    width: int | None = None
    height: int | None = None
    subject: str | None = None
    camera_name: str | None = None
    sequence: str | None = None
    frame: int | None = None
    mocap_row: int | None = None
    #: Extrinsics as written (Human3.6M convention), checked by ``core.floor.floor_from_extrinsics``.
    R: Any = None
    T: Any = None
    #: Views of one moment share an ``instant`` (any hashable key); ``person`` tells the people
    #: of an instant apart (records are one person each).
    instant: Any = None
    person: Any = None

    @property
    def has_extrinsics(self) -> bool:
        return self.R is not None or self.T is not None

    def dist_opencv(self) -> np.ndarray:
        """The distortion in OpenCV's (k1, k2, p1, p2, k3) order, missing terms zero."""
        k = list(self.dist_k) + [0.0] * 3
        p = list(self.dist_p) + [0.0] * 2
        return np.array([k[0], k[1], p[0], p[1], k[2]])

    def camera(self, width: int, height: int) -> CameraModel:
        """The camera of this record for an image of ``width`` x ``height`` pixels."""
        if self.K is None:
            raise ValueError(f"{self.file}: no intrinsics K")
        return CameraModel.from_calibration(self.K, self.dist_opencv(), (width, height))


@dataclass(frozen=True)
class Annotations:
    """An annotations.json: its records and the joint layouts it declares."""

    source: Path
    images: tuple[AnnotatedImage, ...]
    joint_sets: dict[str, tuple[str, ...]]

    def __iter__(self) -> Iterator[AnnotatedImage]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def joint_sets_used(self) -> set[str]:
        return {r.truth.joint_set for r in self.images if r.truth is not None}

    def find(self, path: Path) -> AnnotatedImage | None:
        """The record of the image at ``path``, if any."""
        target = path.resolve()
        return next((r for r in self.images if r.path.resolve() == target), None)


def _array(record: dict[str, Any], key: str, shape: Sequence[int | None], name: str) -> np.ndarray | None:
    value = record.get(key)
    if value is None or (isinstance(value, list) and not value):
        return None
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {key} is not an array of numbers") from None
    if out.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, out.shape)):
        want = "x".join("J" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: {key} has shape {out.shape}, expected {want}")
    return out


def _numbers(record: dict[str, Any], key: str, name: str) -> tuple[float, ...]:
    value = record.get(key) or []
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {key} is not a list of numbers") from None


def _optional_int(record: dict[str, Any], key: str, name: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {key} is not an integer ({value!r})") from None


def _optional_key(record: dict[str, Any], key: str) -> str | int | None:
    """A grouping key (``instant``, ``person``): a string or an integer, as JSON writes them."""
    value = record.get(key)
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{record.get('file', '?')}: {key} must be a string or an integer, got {value!r}")


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return None if value is None else str(value)


def _truth(raw: dict[str, Any], name: str, joint_sets: dict[str, tuple[str, ...]]) -> GroundTruth | None:
    """The record's person, None without a layout or 3D joints; both joint arrays must match the
    layout's length where the document declares it."""
    joint_set = raw.get("joint_names") or None
    joints_3d = _array(raw, "joints_3d_cam_m", (None, 3), name)
    if joint_set is None or joints_3d is None:
        return None
    joints_2d = _array(raw, "joints_2d_px", (None, 2), name)
    if joints_2d is None:
        raise ValueError(f"{name}: joints_3d_cam_m without joints_2d_px")
    expected = len(joint_sets.get(str(joint_set), joints_3d))
    if not len(joints_3d) == len(joints_2d) == expected:
        raise ValueError(
            f"{name}: {len(joints_3d)} 3D and {len(joints_2d)} 2D joints, but {joint_set!r} has {expected}"
        )
    return GroundTruth(str(joint_set), joints_3d, joints_2d)


def _record(raw: Any, index: int, folder: Path, joint_sets: dict[str, tuple[str, ...]]) -> AnnotatedImage:
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        raise ValueError(f"images[{index}]: expected an object with a 'file'")
    name = f"images[{index}] ({raw['file']})"
    return AnnotatedImage(
        file=raw["file"],
        dataset=str(raw.get("dataset", "")),
        path=folder / raw["file"],
        K=_array(raw, "K", (3, 3), name),
        dist_k=_numbers(raw, "dist_k", name),
        dist_p=_numbers(raw, "dist_p", name),
        truth=_truth(raw, name, joint_sets),
        width=_optional_int(raw, "width", name),
        height=_optional_int(raw, "height", name),
        subject=_optional_str(raw, "subject"),
        camera_name=_optional_str(raw, "camera"),
        sequence=_optional_str(raw, "sequence"),
        frame=_optional_int(raw, "frame", name),
        mocap_row=_optional_int(raw, "mocap_row", name),
        R=raw.get("R"),
        T=raw.get("T"),
        instant=_optional_key(raw, "instant"),
        person=_optional_key(raw, "person"),
    )


def read_annotations(path: Path, images_root: Path | None = None) -> Annotations:
    """Read and check an annotations.json; image paths are relative to ``images_root`` (default:
    the document's folder). ``OSError`` when unreadable, ``ValueError`` naming what is malformed."""
    try:
        document = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise ValueError(f"{path}: expected an object with an 'images' list")
    raw_sets = document.get("joint_sets") or {}
    if not isinstance(raw_sets, dict):
        raise ValueError(f"{path}: 'joint_sets' must map a layout name to its joint names")
    joint_sets = {str(k): tuple(str(j) for j in v) for k, v in raw_sets.items()}
    folder = Path(images_root) if images_root is not None else Path(path).parent
    try:
        images = tuple(_record(r, i, folder, joint_sets) for i, r in enumerate(document["images"]))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return Annotations(Path(path), images, joint_sets)


def write_subset(source: Path, dest: Path, keep: Iterable[int]) -> None:
    """A smaller annotations.json at ``dest``: the records of ``source`` at indices ``keep``, its
    joint layouts unchanged (quick evaluations and tests; image paths stay relative to ``source``)."""
    document = json.loads(Path(source).read_text())
    images = document["images"]
    Path(dest).write_text(json.dumps({**document, "images": [images[i] for i in keep]}))
