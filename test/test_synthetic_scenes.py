"""Scenes of the synthetic engine without rendering: multi-view (the views of one instant, their
camera poses in the Human3.6M convention X_cam = R^T (X_world - T), world z up, floor z = 0),
floors at metric scale, contact shadows; and the one shard schema. The scene checks need the
``[synth]`` extra (the scene module imports the renderer) and ../shared's cameras for the studio
views; skipped with the reason otherwise."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.paths import shared_data_dir
from ros2_ctxpose.training.synthetic import schema


def test_schema_refuses_a_record_that_drifted() -> None:
    record = dict.fromkeys(schema.FIELDS, 0)
    schema.check_record(record)
    with pytest.raises(ValueError, match="missing \\['oks'\\]"):
        schema.check_record({k: v for k, v in record.items() if k != "oks"})
    with pytest.raises(ValueError, match="extra \\['crop_l4'\\]"):
        schema.check_record({**record, "crop_l4": 0})
    assert set(schema.LIFTER_FIELDS) <= set(schema.FIELDS)
    assert [schema.crop_field(level) for level in range(schema.CROP_LEVELS)] == list(schema.CROP_FIELDS)


@pytest.fixture(scope="module")
def scene_mod(synth_extras):
    from ros2_ctxpose.training.synthetic import scene

    return scene


def _standing_joints(x: float, y: float) -> np.ndarray:
    """H36M-17 of a 1.7 m person standing at (x, y): pelvis at 0.95 m, feet on the floor."""
    z = np.array([0.95, 0.95, 0.5, 0.08, 0.95, 0.5, 0.08, 1.2, 1.45, 1.55, 1.7, 1.45, 1.2, 1.0, 1.45, 1.2, 1.0])
    dx = np.array([0, -0.1, -0.1, -0.1, 0.1, 0.1, 0.1, 0, 0, 0, 0, 0.2, 0.25, 0.25, -0.2, -0.25, -0.25])
    return np.stack([x + dx, np.full(17, y), z], -1)


def _scene(scene_mod, camera: CameraModel, R: np.ndarray, C: np.ndarray, name: str):
    joints = _standing_joints(0.5, -0.3)
    person = scene_mod.ScenePerson(0, np.zeros(6), joints, joints, joints, np.zeros((4, 4, 3), np.uint8))
    return scene_mod.Scene(
        camera, R, C, name, [person], [], [], 0.3, np.zeros((camera.height, camera.width, 3), np.uint8)
    )


def _assets(cameras: dict) -> SimpleNamespace:
    """What ``sample_views`` reads of the assets: the photographs and the studio cameras."""
    photo = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    return SimpleNamespace(backgrounds=[photo], h36m_cameras=cameras)


def _azimuth(C: np.ndarray, centre: np.ndarray) -> float:
    return math.degrees(math.atan2(C[1] - centre[1], C[0] - centre[0]))


def test_virtual_views_spread_around_the_person_and_keep_the_convention(scene_mod) -> None:
    rng = np.random.default_rng(5)
    joints = _standing_joints(0.5, -0.3)
    camera, R, C = scene_mod._virtual_camera(joints, rng)
    first = _scene(scene_mod, camera, R, C, "virtual")
    state = rng.bit_generator.state
    assert scene_mod.sample_views(_assets({}), first, rng, 1) == [first]
    assert rng.bit_generator.state == state  # one view draws nothing: single-view output is unchanged

    views = scene_mod.sample_views(_assets({}), first, rng, 3)
    assert len(views) == 3 and views[0] is first
    pelvis = joints[0]
    azimuths = [_azimuth(v.C, pelvis) for v in views]
    for a in range(3):
        for b in range(a + 1, 3):
            gap = abs((azimuths[a] - azimuths[b] + 180) % 360 - 180)
            assert gap > 60, azimuths  # ~120 degrees apart, +-30 jitter each
    for view in views:
        assert view.people is first.people and view.background.shape == (view.camera.height, view.camera.width, 3)
        np.testing.assert_allclose(view.R @ view.R.T, np.eye(3), atol=1e-6)  # float32 draws
        # The stored pose (R = scene.R^T, T = C) reproduces the scene's own projection.
        R_store, T_store = view.R.T, view.C
        np.testing.assert_allclose((joints - T_store) @ R_store, view.to_camera(joints), atol=1e-9)
        cam = view.to_camera(joints)
        assert (cam[:, 2] > 0.3).all()  # in front of every camera
        u, v = view.camera.project(cam[:1])[0]
        assert 0 <= u < view.camera.width and 0 <= v < view.camera.height  # each view sees the pelvis
        assert 0.25 - 1e-6 <= view.C[2] <= 2.8 + 1e-6  # robot camera heights (ROBOT_MOUNTS), floor at z = 0


def test_h36m_views_are_the_other_studio_cameras(scene_mod) -> None:
    if not (shared_data_dir() / "data" / "h36m" / "cameras.json").is_file():
        pytest.skip(f"Human3.6M cameras not found under {shared_data_dir()}")
    from ros2_ctxpose.training.h36m import load_cameras

    cameras = load_cameras()
    h = cameras["S1/54138969"]
    first = _scene(scene_mod, h.model, h.R.T, h.T, h.name)
    views = scene_mod.sample_views(_assets(cameras), first, np.random.default_rng(1), 4)
    assert sorted(v.camera_name for v in views) == sorted(k for k in cameras if k.startswith("S1/"))
    raw = json.loads((shared_data_dir() / "data" / "h36m" / "cameras.json").read_text())
    for view in views:
        np.testing.assert_allclose(view.R.T, raw[view.camera_name]["R"], atol=1e-12)
        np.testing.assert_allclose(view.C, np.ravel(raw[view.camera_name]["T"]), atol=1e-12)
    with pytest.raises(ValueError, match="4 cameras"):
        scene_mod.sample_views(_assets(cameras), first, np.random.default_rng(1), 5)


def test_tiles_and_planks_have_real_sizes() -> None:
    from ros2_ctxpose.training.synthetic import floors

    rng = np.random.default_rng(2)
    for _ in range(5):
        texture, metres = floors.tiles(rng, floors.SIZE // 2)
        grey = texture.mean(-1)[:, 5]  # a column across the tiles, off the vertical grout lines
        dark = np.flatnonzero(grey < 0.8 * np.median(grey))
        starts = dark[np.diff(dark, prepend=-10) > 1]  # first row of each grout line
        side_m = np.diff(starts).mean() * metres / (2 * len(grey))
        assert 0.3 <= side_m <= 0.6, side_m
    texture, metres = floors.floor_material(np.random.default_rng(0))
    assert texture.shape == (floors.SIZE, floors.SIZE, 3) and texture.dtype == np.uint8
    np.testing.assert_array_equal(texture[:, 0], texture[:, -1])  # mirrored: repeats without a seam
    np.testing.assert_array_equal(texture[0], texture[-1])


def test_contact_shadow_darkens_the_ground_at_the_feet_only(scene_mod) -> None:
    from ros2_ctxpose.training.synthetic.render import NO_PERSON
    from ros2_ctxpose.training.synthetic.shadows import contact_shadows

    camera = CameraModel.from_fov(640, 480, 60.0)
    C = np.array([0.5, -4.0, 1.2])  # 3.7 m in front of the person, looking along +y
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    scene = _scene(scene_mod, camera, R, C, "virtual")
    image = np.full((480, 640, 3), 200, np.uint8)
    labels = np.full((480, 640), NO_PERSON, np.uint8)
    feet = camera.project(scene.to_camera(scene.people[0].joints_world[[3, 6]])).mean(0).round().astype(int)
    labels[feet[1] - 3 : feet[1] + 1, feet[0] - 2 : feet[0] + 3] = 0  # the person's own pixels there
    shaded = contact_shadows(image, scene, labels, np.random.default_rng(0))
    below = shaded[feet[1] + 2, feet[0]]
    assert (below < 180).all(), below  # the ground right under the feet is darker
    assert (shaded[labels == 0] == 200).all()  # the person is not
    assert (shaded[:100] == 200).all()  # nor the far background
    raised = _scene(scene_mod, camera, R, C, "virtual")
    raised.people[0].joints_world[:, 2] += 0.5  # on a step: no patch on the floor under it
    assert (contact_shadows(image, raised, labels, np.random.default_rng(0)) == 200).all()


def test_keypoint_error_is_in_box_units_on_the_shared_joints() -> None:
    from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED
    from ros2_ctxpose.training.synthetic.summary import keypoint_error

    coco, h36m = (list(x) for x in zip(*COCO_H36M_SHARED, strict=True))
    target = np.random.default_rng(0).uniform(0, 100, (2, 17, 2))
    keypoints = np.zeros((2, 17, 3))
    keypoints[:, coco, :2] = target[:, h36m]
    keypoints[1, coco, 0] += 10.0  # 10 px off on a 100 x 100 box: 0.1
    boxes = np.array([[0, 0, 100, 100], [0, 0, 100, 100]], float)
    error = keypoint_error(keypoints, target, boxes)
    assert error.shape == (2, len(coco))
    np.testing.assert_allclose(error[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(error[1], 0.1)


def test_shards_of_the_first_format_still_read(tmp_path) -> None:
    """Sets made before the multi-view fields (format 1) must still train."""
    from ros2_ctxpose.training.synthetic import shards

    person = {
        name: np.zeros(field.shape if field.shape is not None else (2, 4, 4), field.dtype)
        for name, field in schema.FIELDS.items()
    }
    path = shards.write_shard(tmp_path, 0, [person, person], {"counts": {}})
    for name in ("instant", "view", "camera_R", "camera_T"):
        (path / f"{name}.npy").unlink()
    meta, arrays = shards.read_shard(path)
    assert meta["people"] == 2 and set(schema.LIFTER_FIELDS) <= set(arrays) and "instant" not in arrays
