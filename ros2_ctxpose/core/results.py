"""What the pipeline returns, and the one way results are written as JSON.

``Person3D`` and ``FrameResult`` are plain data (numpy arrays, no torch), so everything that only
draws, publishes or writes results (the overlay, the ROS messages, the CLI, the demo) depends on
this module and not on the models. ``person_record`` / ``to_json`` are the single serialiser:
docs/OUTPUT_FORMAT.md describes their output; non-finite numbers are written as ``null`` so every
line is valid JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .joint_sets import h36m_confidence

#: Values of ``Person3D.root_source``; they mirror the ROOT_* constants of Skeleton3D.msg.
ROOT_FROM_INTRINSICS = "intrinsics"
ROOT_FROM_DEPTH = "depth"
ROOT_SCALE_UNKNOWN = "scale_unknown"
ROOT_FROM_FLOOR = "floor"
ROOT_FROM_VIEWS = "views"


def unknown_covariance() -> np.ndarray:
    """A root covariance that says "not known" (all NaN), for results made without one."""
    return np.full((3, 3), np.nan)


@dataclass
class Person3D:
    """One person in one frame. Arrays are float64 numpy."""

    #: Identity across frames from the tracker (stable while the person stays in view, never
    #: reused, from 1); for a still image (no time stamp) the person's index in it, from 0.
    track_id: int
    score: float
    bbox_xyxy: np.ndarray  # (4,) source pixels
    keypoints_2d: np.ndarray  # (17, 3) COCO-17 [u, v, conf], source pixels (detector output)
    joints_3d: np.ndarray  # (17, 3) H36M-17, camera optical frame, metres, absolute
    joints_uv: np.ndarray  # (17, 2) joints_3d projected into the image (pixels)
    joints_conf: np.ndarray  # (17,) per H36M-17 joint, from the COCO confidences
    root: np.ndarray  # (3,) = joints_3d[0]
    root_source: str  # ROOT_FROM_INTRINSICS | ROOT_FROM_DEPTH | ROOT_SCALE_UNKNOWN | ROOT_FROM_FLOOR | ROOT_FROM_VIEWS
    #: (3, 3) covariance of ``root``, m^2, camera optical frame; NaN when unknown.
    root_cov: np.ndarray = field(default_factory=unknown_covariance)
    #: Why the placement differs from the one asked for (e.g. "feet not visible" with a floor);
    #: empty when it does not.
    placement_note: str = ""


@dataclass
class FrameResult:
    people: list[Person3D] = field(default_factory=list)
    #: Milliseconds per stage: "preprocess" (keypoint normalisation, lifter inputs), "detector",
    #: "lifter", "placement" and "total".
    timings_ms: dict[str, float] = field(default_factory=dict)


def _rounded(values: Any, digits: int) -> Any:
    """Nested lists of ``values`` rounded to ``digits``; NaN and infinities become None."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        v = float(array)
        return round(v, digits) if math.isfinite(v) else None
    return [_rounded(v, digits) for v in array]


def person_record(person: Person3D) -> dict[str, Any]:
    """One entry of a result line's ``people`` (docs/OUTPUT_FORMAT.md)."""
    kp = np.asarray(person.keypoints_2d, dtype=np.float64)
    return {
        "id": int(person.track_id),
        "score": _rounded(person.score, 4),
        "bbox_xyxy": _rounded(person.bbox_xyxy, 2),
        "joints_2d_px": [[*_rounded(k[:2], 2), _rounded(k[2], 4)] for k in kp],
        "joints_3d_cam_m": _rounded(person.joints_3d, 4),
        "root_cam_m": _rounded(person.root, 4),
        "root_source": person.root_source,
        "root_cov_m2": _rounded(person.root_cov, 6),
        "placement_note": person.placement_note,
    }


def frame_record(result: FrameResult, **fields: Any) -> dict[str, Any]:
    """A result line: ``fields`` (file, stamp, size...), the pipeline latency and the people."""
    return {
        **fields,
        "latency_ms": _rounded(result.timings_ms.get("total", float("nan")), 2),
        "people": [person_record(p) for p in result.people],
    }


def to_json(record: dict[str, Any]) -> str:
    """One JSON line; refuses NaN rather than writing the invalid token ``NaN``."""
    return json.dumps(record, allow_nan=False)


def _array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A record's nested list as a float array of ``shape``; ``null`` becomes NaN."""
    array = np.array(value, dtype=object)
    return np.where(array == None, np.nan, array).astype(np.float64).reshape(shape)  # noqa: E711


def person_from_record(record: dict[str, Any]) -> Person3D:
    """The inverse of :func:`person_record` (for tools that read ``ctxpose infer`` output back,
    such as ``ctxpose fuse``); raises KeyError or ValueError on a malformed record."""
    kp = _array(record["joints_2d_px"], (-1, 3))
    joints = _array(record["joints_3d_cam_m"], (-1, 3))
    cov = record.get("root_cov_m2")
    return Person3D(
        track_id=int(record["id"]),
        score=float(_array(record["score"], ())),
        bbox_xyxy=_array(record["bbox_xyxy"], (4,)),
        keypoints_2d=kp,
        joints_3d=joints,
        joints_uv=np.full((len(joints), 2), np.nan),
        joints_conf=h36m_confidence(np.nan_to_num(kp[:, 2], nan=0.0)),
        root=_array(record["root_cam_m"], (3,)),
        root_source=str(record["root_source"]),
        root_cov=unknown_covariance() if cov is None else _array(cov, (3, 3)),
        placement_note=str(record.get("placement_note", "")),
    )
