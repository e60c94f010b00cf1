"""core.annotations: the one reader of annotations.json, on the shared files and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.core.annotations import read_annotations, write_subset

RECORD = {
    "file": "a.jpg",
    "dataset": "toy",
    "K": [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]],
    "dist_k": [0.1, 0.01, 0.001],
    "dist_p": [0.002, 0.003],
    "joint_names": "two",
    "joints_3d_cam_m": [[0.0, 0.0, 3.0], [0.1, 0.2, 3.0]],
    "joints_2d_px": [[320.0, 240.0], [336.7, 273.3]],
    "frame": 7,
}


def _write(tmp_path: Path, records: list, joint_sets: dict | None = None) -> Path:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"joint_sets": joint_sets or {"two": ["a", "b"]}, "images": records}))
    return path


def test_shared_files_read_with_their_layouts(annotations) -> None:
    images = annotations()
    assert images.joint_sets_used() == {"h36m17", "mpi3dhp17", "gta21"}
    without = [r.file for r in images if r.truth is None]
    assert without == ["coco/bus.jpg", "coco/zidane.jpg"]
    for r in images:
        if r.truth is not None:
            n = len(images.joint_sets[r.truth.joint_set])
            assert r.truth.joints_3d.shape == (n, 3) and r.truth.joints_2d.shape == (n, 2)
            assert r.path.is_file()
    s11 = annotations("data/h36m_s11_walkdog/annotations.json")
    assert len(s11) == 399 and {r.subject for r in s11} == {"S11"}
    assert [r.frame for r in s11.images[:2]] == [1, 2]
    assert s11.images[0].width == 1000 and s11.images[0].height == 1002


def test_record_fields_and_opencv_distortion_order(tmp_path: Path) -> None:
    (record,) = read_annotations(_write(tmp_path, [RECORD]))
    assert record.path == tmp_path / "a.jpg" and record.frame == 7 and record.subject is None
    np.testing.assert_array_equal(record.dist_opencv(), [0.1, 0.01, 0.002, 0.003, 0.001])
    camera = record.camera(640, 480)
    np.testing.assert_array_equal(camera.K, RECORD["K"])
    assert record.truth is not None and record.truth.joint_set == "two"
    root = tmp_path / "elsewhere"
    assert read_annotations(_write(tmp_path, [RECORD]), images_root=root).images[0].path == root / "a.jpg"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"K": [[1.0, 2.0]]}, "K has shape (1, 2), expected 3x3"),
        ({"joints_2d_px": None}, "joints_3d_cam_m without joints_2d_px"),
        ({"joints_3d_cam_m": [[0.0, 0.0, 3.0]]}, "1 3D and 2 2D joints, but 'two' has 2"),
        ({"dist_k": ["x"]}, "dist_k is not a list of numbers"),
        ({"frame": "seven"}, "frame is not an integer"),
        ({"file": None}, "images[0]: expected an object with a 'file'"),
    ],
)
def test_malformed_record_is_a_value_error_naming_it(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        read_annotations(_write(tmp_path, [{**RECORD, **change}]))
    assert message in str(info.value) and "annotations.json" in str(info.value)


def test_malformed_document(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    for text, message in (
        ("{", "not JSON"),
        ("[]", "'images' list"),
        ('{"images": [], "joint_sets": 3}', "joint_sets"),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_annotations(path)
    path.write_text('{"images": []}')
    assert len(read_annotations(path)) == 0


def test_image_without_truth_and_subset(tmp_path: Path) -> None:
    bare = {"file": "b.jpg", "dataset": "none", "joint_names": None}
    path = _write(tmp_path, [RECORD, bare, {**RECORD, "file": "c.jpg"}])
    assert [r.truth is None for r in read_annotations(path)] == [False, True, False]
    write_subset(path, tmp_path / "small.json", [2, 1])
    small = read_annotations(tmp_path / "small.json")
    assert [r.file for r in small] == ["c.jpg", "b.jpg"] and small.joint_sets == {"two": ("a", "b")}
    assert small.find(tmp_path / "c.jpg") is small.images[0] and small.find(tmp_path / "a.jpg") is None
