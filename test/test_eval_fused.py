"""``ctxpose eval``'s fused-views rows: the scoring arithmetic on synthetic people seen by two
cameras with known errors along their rays (no images), and the rows on real S11 frames given as
two identical views of each instant (the fused answer must then be the single view's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.cli import main as cli_main
from ros2_ctxpose.cli.fused_rows import FusedViews
from ros2_ctxpose.core.fused_evaluation import Sighting, match_by_root, score_fused, to_world, world_truth
from ros2_ctxpose.core.joint_sets import JOINT_SETS
from ros2_ctxpose.core.results import Person3D

H36M = JOINT_SETS["h36m17"]
TORCH_CPU = ["--backend", "torch", "--device", "cpu"]


def _camera(centre: list[float], forward: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(R, T) of a level camera at ``centre`` looking along ``forward`` (X_world = R X_cam + T;
    camera x right, y down, z forward)."""
    z = np.asarray(forward, dtype=np.float64) / np.linalg.norm(forward)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1), np.asarray(centre, dtype=np.float64)


CAM_A = _camera([0.0, -4.0, 1.5], [0.0, 1.0, -0.2])
CAM_B = _camera([4.0, 0.0, 1.5], [-1.0, 0.0, -0.2])


def _truth(seed: int = 0, centre: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    return np.asarray(centre) + np.random.default_rng(seed).uniform(-0.4, 0.4, (17, 3))


def _in_camera(world: np.ndarray, camera: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    R, T = camera
    return (world - T) @ R


def _person(joints_cam: np.ndarray) -> Person3D:
    """A person as the pipeline gives it (camera frame; the 2D fields play no part here)."""
    return Person3D(
        track_id=0,
        score=0.9,
        bbox_xyxy=np.full(4, np.nan),
        keypoints_2d=np.full((17, 3), np.nan),
        joints_3d=joints_cam,
        joints_uv=np.full((17, 2), np.nan),
        joints_conf=np.ones(17),
        root=joints_cam[0].copy(),
        root_source="intrinsics",
    )


def _two_views(truth: np.ndarray, scale_a: float, scale_b: float) -> list:
    """Both cameras see ``truth`` with a depth error: every joint moved along its ray by ``scale - 1``
    of its distance (what a wrong body size does to a monocular placement)."""
    return [([_person(scale * _in_camera(truth, cam))], *cam) for cam, scale in ((CAM_A, scale_a), (CAM_B, scale_b))]


def test_world_frame_round_trip_and_disagreeing_truth_refused() -> None:
    truth = _truth()
    views = _two_views(truth, 1.0, 1.0)
    np.testing.assert_allclose(to_world(_in_camera(truth, CAM_B), *CAM_B), truth, atol=1e-12)
    agree = [Sighting(0, _in_camera(truth, CAM_A), 0), Sighting(1, _in_camera(truth, CAM_B), 0)]
    np.testing.assert_allclose(world_truth(agree, views), truth, atol=1e-12)
    shifted = [agree[0], Sighting(1, _in_camera(truth + [0.05, 0.0, 0.0], CAM_B), 0)]
    with pytest.raises(ValueError, match="disagrees by 50 mm"):
        world_truth(shifted, views)


def test_two_views_with_errors_along_their_rays_fuse_to_a_better_answer() -> None:
    """View A places the person 6 % too far, view B 5 % too near: each alone is some 200-250 mm off
    at the root; their rays are nearly perpendicular, so the ray-weighted fusion takes each view's
    precise lateral position and lands far closer than either view, and than their plain mean."""
    truth = _truth()
    views = _two_views(truth, 1.06, 0.95)
    sightings = [[Sighting(0, _in_camera(truth, CAM_A), 0), Sighting(1, _in_camera(truth, CAM_B), 0)]]
    (ray,) = score_fused(views, sightings, H36M, "ray")
    (average,) = score_fused(views, sightings, H36M, "average")
    assert ray.fused is not None and average.fused is not None
    single_roots = [e.root_error_mm for e in ray.single]
    assert len(single_roots) == 2 and min(single_roots) > 150.0
    assert ray.single == average.single  # the single views do not depend on the method
    assert ray.fused.root_error_mm < 0.3 * min(single_roots)
    assert ray.fused.root_error_mm < 0.5 * average.fused.root_error_mm
    assert ray.fused.mpjpe_mm < min(e.mpjpe_mm for e in ray.single)


def test_match_by_root_is_one_to_one_within_the_radius() -> None:
    pred = np.array([[0.0, 0.0, 1.0], [3.0, 0.0, 1.0]])
    true = np.array([[0.1, 0.0, 1.0], [0.2, 0.0, 1.0], [3.0, 2.0, 1.0]])
    # The nearer truth gets the first prediction, the second truth finds nothing else within 0.5 m,
    # the third none at all.
    assert match_by_root(pred, true) == [0, None, None]
    assert match_by_root(pred[:0], true) == [None, None, None]


def _entry(file: str, instant: int, person: int, camera: tuple[np.ndarray, np.ndarray], joints_cam: np.ndarray) -> dict:
    R, T = camera
    return {
        "file": file,
        "dataset": "two cameras",
        "joint_names": "h36m17",
        "instant": instant,
        "person": person,
        "R": R.tolist(),
        "T": T.tolist(),
        "joints_3d_cam_m": joints_cam.tolist(),
        "joints_2d_px": np.zeros((len(joints_cam), 2)).tolist(),
    }


def _read(tmp_path: Path, records: list[dict]) -> list:
    """The records as ``ctxpose eval`` sees them: through the one annotations reader."""
    from ros2_ctxpose.core.annotations import read_annotations

    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"images": records}))
    return list(read_annotations(path).images)


def test_fused_rows_count_instants_views_misses_and_rejected_instants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Instant 0: one person seen by both views (found) and a second annotated person nobody
    detected (missed). Instant 1: the views' truth disagrees (rejected, said on stderr)."""
    first, second = _truth(0), _truth(1, centre=(2.0, 2.0, 1.0))
    added: list[tuple[dict, list, int | None]] = []
    for view, (cam, scale) in enumerate(((CAM_A, 1.06), (CAM_B, 0.95))):
        people = [_person(scale * _in_camera(first, cam))]
        added.append((_entry(f"i0_v{view}.jpg", 0, 0, cam, _in_camera(first, cam)), people, 0))
        added.append((_entry(f"i0_v{view}.jpg", 0, 1, cam, _in_camera(second, cam)), people, None))
        moved = first + [0.0, 0.1 * view, 0.0]
        added.append(
            (_entry(f"i1_v{view}.jpg", 1, 0, cam, _in_camera(moved, cam)), [_person(_in_camera(moved, cam))], 0)
        )
    no_pose = {"file": "no_pose.jpg", "dataset": "two cameras", "joint_names": "h36m17"}
    no_pose["joints_3d_cam_m"], no_pose["joints_2d_px"] = first.tolist(), np.zeros((17, 2)).tolist()
    added.append((no_pose, [], None))
    rows = FusedViews()
    for entry, (_, people, matched) in zip(_read(tmp_path, [a[0] for a in added]), added):
        rows.add(entry, H36M, people, matched)
    summaries = rows.summaries()["two cameras"]
    assert "instant 1" in capsys.readouterr().err
    ray, average = summaries["ray"], summaries["average"]
    for s in (ray, average):
        assert (s["instants"], s["views_per_instant"], s["rejected_instants"]) == (1, 2.0, 1)
        assert (s["people"], s["matched"], s["missed"]) == (2, 1, 1)
        assert s["single_root_error_mm"] > 150.0
    assert ray["root_error_mm"] < 0.3 * ray["single_root_error_mm"]
    assert ray["root_error_mm"] < average["root_error_mm"]


def test_instant_and_person_must_be_keys(tmp_path: Path) -> None:
    """The reader refuses grouping keys that are not strings or integers, naming the record."""
    record = _entry("a.jpg", 0, 0, CAM_A, _in_camera(_truth(0), CAM_A))
    with pytest.raises(ValueError, match="instant must be a string or an integer"):
        _read(tmp_path, [{**record, "instant": [1, 2]}])


@pytest.mark.slow
def test_eval_fused_rows_on_two_identical_views_of_real_s11_frames(
    tmp_path: Path, weights_available: None, shared_data, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four real S11 frames, each given twice as two views of one instant with the frame's real
    camera pose: fusing a view with itself must give back the single view's figures."""
    clip = shared_data("data/h36m_s11_walkdog")
    data = json.loads((clip / "annotations.json").read_text())
    cameras = json.loads(shared_data("data/h36m/cameras.json").read_text())
    records = []
    for k, entry in enumerate(data["images"][50:250:50]):
        pose = cameras[f"{entry['subject']}/{entry['camera']}"]
        view = {**entry, "R": pose["R"], "T": np.ravel(pose["T"]).tolist(), "instant": k}
        # A second view of the same instant: the same picture under another name.
        copy = tmp_path / f"copy_{k}.jpg"
        copy.symlink_to(clip / entry["file"])
        records += [view, {**view, "file": str(copy)}]
    subset = tmp_path / "annotations.json"
    subset.write_text(json.dumps({"joint_sets": data["joint_sets"], "images": records}))
    report = tmp_path / "eval.json"
    argv = ["eval", str(subset), "--images-root", str(clip), *TORCH_CPU, "--json", str(report)]
    assert cli_main.main(argv) == 0
    out = capsys.readouterr().out
    assert "fused views" in out and "average" in out
    figures = json.loads(report.read_text())
    assert figures["datasets"]["human3.6m"]["matched"] == 8  # the existing rows, every record
    for method, s in figures["fused_views"]["human3.6m"].items():
        assert (s["instants"], s["views_per_instant"], s["people"], s["matched"], s["missed"]) == (4, 2.0, 4, 4, 0)
        for key in ("mpjpe_mm", "pa_mpjpe_mm", "root_error_mm"):
            assert s[key] == pytest.approx(s[f"single_{key}"], abs=0.5), (method, key)
        # Rotation into the world does not change any error: the single views match the plain rows.
        assert s["single_mpjpe_mm"] == pytest.approx(figures["datasets"]["human3.6m"]["mpjpe_mm"], abs=0.01)
