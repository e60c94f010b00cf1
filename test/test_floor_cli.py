"""The floor on the command line: ``ctxpose infer --camera-pose FILE`` (good files in both forms,
bad ones refused before any model loads) and ``ctxpose eval --cameras`` (floor-aware rows on real
S11 frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.cli import main as cli_main
from ros2_ctxpose.cli.infer import load_camera_pose
from ros2_ctxpose.core.annotations import read_annotations, write_subset

TORCH_CPU = ["--backend", "torch", "--device", "cpu"]
#: A camera 1.6 m above the floor looking straight ahead (X_floor = R X_cam + T).
R_AHEAD = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if path.suffix == ".json" else _yaml(data))
    return path


def _yaml(data: object) -> str:
    import yaml

    return yaml.safe_dump(data)


def test_camera_pose_as_r_and_t_or_as_a_matrix(tmp_path: Path) -> None:
    from_rt = load_camera_pose(_write(tmp_path / "pose.yaml", {"R": R_AHEAD, "T": [0.5, 0.0, 1.6]}))
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = R_AHEAD, [0.5, 0.0, 1.6]
    np.testing.assert_allclose(from_rt, matrix)
    from_matrix = load_camera_pose(_write(tmp_path / "pose.json", {"floor_from_camera": matrix.tolist()}))
    np.testing.assert_allclose(from_matrix, matrix)
    # The optical axis (camera z) is horizontal and the camera 1.6 m up.
    assert from_rt[2, 2] == 0.0 and from_rt[2, 3] == 1.6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"R": R_AHEAD}, "both R"),
        ({"R": R_AHEAD, "T": [0, 0, 1], "floor_from_camera": np.eye(4).tolist()}, "either R and T"),
        ({"R": [[1, 0], [0, 1]], "T": [0, 0, 1]}, "3x3"),
        ({"R": (2 * np.eye(3)).tolist(), "T": [0, 0, 1]}, "orthonormal"),
        ({"floor_from_camera": np.diag([1.0, 1.0, -1.0, 1.0]).tolist()}, "reflection"),
        ({"R": R_AHEAD, "T": [0, "x", 1]}, "numbers"),
        ([1, 2, 3], "expected a mapping"),
    ],
)
def test_bad_camera_pose_files_are_refused(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        load_camera_pose(_write(tmp_path / "pose.yaml", content))
    assert "--camera-pose" in str(err.value)


def test_unreadable_camera_pose_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        load_camera_pose(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("R: [[1, 0, 0]\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_camera_pose(tmp_path / "broken.yaml")


def test_infer_refuses_a_bad_camera_pose_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 and the reason, before any model loads or any output is created."""
    bad = _write(tmp_path / "pose.yaml", {"R": R_AHEAD, "T": [0, 0, float("nan")]})
    out = tmp_path / "out.jsonl"
    assert cli_main.main(["infer", str(tmp_path), "--camera-pose", str(bad), "--out", str(out)]) == 2
    assert "--camera-pose" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_infer_places_a_walker_on_the_floor(tmp_path: Path, weights_available: None, shared_data) -> None:
    images = shared_data("data/images")
    entry = next(e for e in read_annotations(images / "annotations.json") if "S8_" in e.file and e.truth)
    camera = json.loads(shared_data("data/h36m/cameras.json").read_text())[f"{entry.subject}/{entry.camera_name}"]
    pose = _write(tmp_path / "pose.yaml", {"R": camera["R"], "T": np.ravel(camera["T"]).tolist()})
    K = entry.K
    intrinsics = ["--fx", K[0, 0], "--fy", K[1, 1], "--cx", K[0, 2], "--cy", K[1, 2]]
    out = tmp_path / "out.jsonl"
    argv = ["infer", str(entry.path), *TORCH_CPU, *map(str, intrinsics), "--out", str(out)]
    assert cli_main.main([*argv, "--camera-pose", str(pose)]) == 0
    (person,) = json.loads(out.read_text())["people"]
    assert person["root_source"] == "floor" and person["placement_note"] == ""
    cov = np.array(person["root_cov_m2"])
    assert cov.shape == (3, 3) and np.isfinite(cov).all()
    gt_root = entry.truth.joints_3d[0]
    on_floor = np.linalg.norm(np.array(person["root_cam_m"]) - gt_root)
    assert cli_main.main(argv) == 0
    (plain,) = json.loads(out.read_text())["people"]
    assert plain["root_source"] == "intrinsics"
    assert on_floor < np.linalg.norm(np.array(plain["root_cam_m"]) - gt_root)


@pytest.mark.slow
def test_eval_floor_rows_on_real_s11_frames(
    tmp_path: Path, weights_available: None, shared_data, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every 20th frame of the S11 clip (its records carry subject and camera, no R and T): the
    floor-aware rows appear, and the floor's absolute root error is the lower one."""
    clip = shared_data("data/h36m_s11_walkdog")
    subset = tmp_path / "annotations.json"
    write_subset(clip / "annotations.json", subset, range(0, len(read_annotations(clip / "annotations.json")), 20))
    report = tmp_path / "eval.json"
    cameras = shared_data("data/h36m/cameras.json")
    argv = ["eval", str(subset), "--images-root", str(clip), "--cameras", str(cameras), *TORCH_CPU]
    assert cli_main.main([*argv, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "floor-aware" in out and "+floor" in out
    floor = json.loads(report.read_text())["floor_aware"]["human3.6m"]
    assert floor["matched"] == 20 and floor["on_floor"] >= 15
    assert floor["floor_root_error_mm"] < floor["root_error_mm"]
    assert floor["floor_mpjpe_mm"] <= floor["mpjpe_mm"] + 1.0  # rescaling the skeleton costs no accuracy
