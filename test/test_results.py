"""The one JSON serialiser (docs/OUTPUT_FORMAT.md): field names, rounding, ``null`` for every
non-finite number, and never an invalid JSON line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ros2_ctxpose.core.results import (
    ROOT_FROM_INTRINSICS,
    FrameResult,
    Person3D,
    frame_record,
    person_record,
    to_json,
)


def _strict_loads(line: str):
    """``json.loads`` that refuses Python's ``NaN``/``Infinity`` extensions, as other parsers do."""

    def refuse(token: str):
        raise ValueError(f"invalid JSON token {token}")

    return json.loads(line, parse_constant=refuse)


def _person(track_id: int = 7, **changes) -> Person3D:
    rng = np.random.default_rng(0)
    joints = rng.uniform(-1, 1, (17, 3)) + [0, 0, 4]
    values = dict(
        track_id=np.int64(track_id),
        score=np.float32(0.912345),
        bbox_xyxy=np.array([10.123, 20.456, 110.789, 320.0]),
        keypoints_2d=np.column_stack([rng.uniform(0, 640, (17, 2)), rng.uniform(0, 1, 17)]),
        joints_3d=joints,
        joints_uv=rng.uniform(0, 640, (17, 2)),
        joints_conf=rng.uniform(0, 1, 17),
        root=joints[0].copy(),
        root_source=ROOT_FROM_INTRINSICS,
    )
    values.update(changes)
    return Person3D(**values)


def test_person_record_fields_and_rounding() -> None:
    person = _person()
    record = person_record(person)
    assert list(record) == [
        "id",
        "score",
        "bbox_xyxy",
        "joints_2d_px",
        "joints_3d_cam_m",
        "root_cam_m",
        "root_source",
        "root_cov_m2",
        "placement_note",
    ]
    assert record["id"] == 7 and type(record["id"]) is int  # from track_id, numpy ints included
    assert record["score"] == 0.9123 and record["bbox_xyxy"] == [10.12, 20.46, 110.79, 320.0]
    np.testing.assert_allclose(record["joints_2d_px"], person.keypoints_2d, atol=5e-3)
    assert all(kp[2] == round(kp[2], 4) and kp[0] == round(kp[0], 2) for kp in record["joints_2d_px"])
    np.testing.assert_allclose(record["joints_3d_cam_m"], person.joints_3d, atol=5e-5)
    assert record["root_cam_m"] == record["joints_3d_cam_m"][0]
    assert record["root_source"] == "intrinsics"
    assert _strict_loads(to_json(record)) == record


def test_non_finite_numbers_become_null_and_the_line_stays_valid() -> None:
    person = _person()
    person.keypoints_2d[3] = [np.nan, np.nan, np.nan]  # a keypoint the detector could not place
    person.keypoints_2d[4, 2] = np.inf
    person.joints_3d[5] = [np.nan, -np.inf, np.inf]
    person.score = float("nan")
    person.bbox_xyxy[0] = -np.inf
    line = to_json(frame_record(FrameResult([person], {"total": float("nan")}), file="a.jpg", width=640, height=480))
    assert "NaN" not in line and "Infinity" not in line
    record = _strict_loads(line)
    assert record["latency_ms"] is None
    (p,) = record["people"]
    assert p["score"] is None and p["bbox_xyxy"][0] is None and p["bbox_xyxy"][1] == 20.46
    assert p["joints_2d_px"][3] == [None, None, None] and p["joints_2d_px"][4][2] is None
    assert p["joints_3d_cam_m"][5] == [None, None, None]
    assert len(p["joints_2d_px"]) == 17 and all(len(k) == 3 for k in p["joints_2d_px"])


def test_frame_record_has_the_callers_fields_first_then_latency_and_people() -> None:
    result = FrameResult([_person(0), _person(1)], {"total": 12.3456, "detector": 10.0})
    record = frame_record(result, file="v.mp4#000003", width=640, height=480)
    assert list(record) == ["file", "width", "height", "latency_ms", "people"]
    assert record["latency_ms"] == 12.35 and [p["id"] for p in record["people"]] == [0, 1]
    assert frame_record(FrameResult(), file="x")["people"] == []
    assert frame_record(FrameResult(), file="x")["latency_ms"] is None  # no timing: null, not NaN


def test_to_json_refuses_nan_instead_of_writing_an_invalid_line() -> None:
    """The caller's own fields are not rounded: a NaN there is an error, never the token ``NaN``."""
    with pytest.raises(ValueError):
        to_json({"file": "a.jpg", "stamp": float("nan"), "people": []})
    assert "\n" not in to_json(frame_record(FrameResult([_person()]), file="line\nbreak.jpg"))  # one line each
