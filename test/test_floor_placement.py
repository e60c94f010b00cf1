"""Floor-aware placement on people from the mocap seen through the shared Human3.6M cameras:
exact floor -> exact root; noisy lifter, keypoints and sizes -> the fusion beats either source;
people not standing on the floor and unusable rays fall back with the right note; bad camera
poses are refused; covariances lie along the viewing ray."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ros2_ctxpose.core import floor as fl
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.floor import Floor, FootPrior, floor_from_extrinsics, place_on_floor
from ros2_ctxpose.core.placement import (
    across_ray_sd,
    keypoint_scale_sd,
    person_height_px,
    root_covariance,
    root_from_reprojection,
    size_prior_sd,
)
from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

CAMERA_KEY = "S1/54138969"
ANKLES = list(fl.H36M_ANKLES)


class Scene:
    """Mocap people (world, metres, z up, floor at 0) and one calibrated camera looking at them."""

    def __init__(self, world: np.ndarray, camera: dict) -> None:
        self.world = world
        self.R = np.asarray(camera["R"], dtype=np.float64)
        self.T = np.ravel(camera["T"]).astype(np.float64)
        f, c = np.ravel(camera["f"]), np.ravel(camera["c"])
        k, p = np.ravel(camera["k"]), np.ravel(camera["p"])
        self.camera = CameraModel(
            K=np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]]),
            width=int(camera["w"]),
            height=int(camera["h"]),
            dist=np.array([k[0], k[1], p[0], p[1], k[2]]),
        )
        self.matrix = floor_from_extrinsics(self.R, self.T)
        self.floor = Floor.from_matrix(self.matrix)

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        return (world - self.T) @ self.R  # X_cam = R^T (X_world - T)

    def observe(self, cam: np.ndarray, conf: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """COCO-17 keypoints (B, 17, 3) in pixels and normalised (B, 17, 2) of camera-frame joints
        (face keypoints at the head top, as nothing here scores them)."""
        coco = np.repeat(cam[:, 10:11], 17, axis=1)
        for c, h in COCO_H36M_SHARED:
            coco[:, c] = cam[:, h]
        px = self.camera.project(coco)
        kp = np.concatenate([px, np.full(px.shape[:2] + (1,), conf)], axis=-1)
        return kp, coco[..., :2] / coco[..., 2:3]


@pytest.fixture(scope="module")
def scene(shared_data) -> Scene:
    poses = np.load(shared_data("data/h36m/poses_world17_mm.npz"))
    # Walking and standing people of every training subject, so that their feet spread as the
    # learned foot prior's do (one subject's shoes alone would bias the floor).
    keys = [f"{s}/{a} 1" for s in ("S1", "S5", "S6", "S7", "S8") for a in ("Walking", "Directions")]
    world = np.concatenate([poses[k][::100] for k in keys])
    cameras = json.loads(shared_data("data/h36m/cameras.json").read_text())
    return Scene(world.astype(np.float64) / 1000.0, cameras[CAMERA_KEY])


def _place(scene: Scene, cam: np.ndarray, pose_rel: np.ndarray, kp: np.ndarray, kp_norm: np.ndarray, **kwargs):
    root = root_from_reprojection(pose_rel, kp_norm, kp[..., 2])
    return root, place_on_floor(pose_rel, root, kp, scene.camera, scene.floor, min_conf=0.3, **kwargs)


def test_exact_floor_recovers_root_and_size(scene: Scene) -> None:
    """A lifter 7 % too small is placed 7 % too close by the size prior; the floor alone (prior
    made uninformative, foot offset = the true support height) puts it back exactly."""
    cam = scene.to_camera(scene.world)
    kp, kp_norm = scene.observe(cam)
    pose_rel = 0.93 * (cam - cam[:, :1])
    root = root_from_reprojection(pose_rel, kp_norm, kp[..., 2])
    heights_prior = (pose_rel + root[:, None]) @ scene.floor.up + scene.floor.height
    true_support = (fl.support_weights(heights_prior[:, ANKLES]) * scene.world[:, ANKLES, 2]).sum(axis=1)
    for i in range(len(cam)):
        placed = place_on_floor(
            pose_rel[i : i + 1],
            root[i : i + 1],
            kp[i : i + 1],
            scene.camera,
            scene.floor,
            min_conf=0.3,
            prior=FootPrior(float(true_support[i]), 1e-6),
            body_size_sd=1e3,
        )
        assert placed.used[0], placed.notes
        assert np.linalg.norm(placed.scale[0] * root[i] - cam[i, 0]) < 1e-3
        np.testing.assert_allclose(placed.scale[0] * pose_rel[i], cam[i] - cam[i, :1], atol=1e-3)


def test_noisy_people_fused_beat_floor_and_prior_alone(scene: Scene) -> None:
    """People from 2.5 to 12 m whose errors are those the noise model states: body sizes spread
    6 % (the lifter's skeleton is one size), the keypoint noise moves the reprojected root along
    its ray, the lifter misses the ankles by 8 cm in depth and 4 cm across (both feet alike: its
    errors are those of the whole leg), and the feet are the five training subjects' own. The
    fused root is then closer on average than either source's."""
    rng = np.random.default_rng(0)
    world = np.concatenate([scene.world] * 6)
    forward = scene.R[:2, 2] / np.linalg.norm(scene.R[:2, 2])  # the camera's heading on the floor
    along = (world[:, 0, :2] - scene.T[:2]) @ forward
    world[..., :2] += ((rng.uniform(2.5, 12.0, len(world)) - along)[:, None] * forward)[:, None, :]
    cam = scene.to_camera(world)
    kp, kp_norm = scene.observe(cam)
    rel = cam - cam[:, :1]
    pose_rel = rng.normal(1.0, 0.06, (len(cam), 1, 1)) * rel
    root = root_from_reprojection(pose_rel, kp_norm, kp[..., 2])
    root *= (
        1.0 + rng.normal(0.0, 1.0, (len(cam), 1)) * keypoint_scale_sd(person_height_px(kp, kp[..., 2], 0.3))[:, None]
    )
    ankle_error = rng.normal(0.0, 1.0, (len(cam), 1, 3)) * np.array([0.04, 0.04, fl.ANKLE_DEPTH_SD_M])
    pose_rel[:, ANKLES] += ankle_error

    fused = place_on_floor(pose_rel, root, kp, scene.camera, scene.floor, min_conf=0.3)
    floor_only = place_on_floor(pose_rel, root, kp, scene.camera, scene.floor, min_conf=0.3, body_size_sd=1e3)
    used = fused.used & floor_only.used
    assert used.mean() > 0.9, set(fused.notes)

    def error(scale: np.ndarray) -> float:
        return float(np.linalg.norm(scale[used, None] * root[used] - cam[used, 0], axis=1).mean())

    prior_err, floor_err, fused_err = error(np.ones(len(cam))), error(floor_only.scale), error(fused.scale)
    assert fused_err < floor_err < prior_err, (prior_err, floor_err, fused_err)
    assert (fused.scale_sd[used] < size_prior_sd(person_height_px(kp, kp[..., 2], 0.3))[used]).all()


def _standing(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One standing person as the lifter would see them exactly: world, camera, kp, kp_norm."""
    world = scene.world[1:2].copy()  # S1 walking
    cam = scene.to_camera(world)
    kp, kp_norm = scene.observe(cam)
    return world, cam, kp, kp_norm


def test_a_standing_person_uses_the_floor(scene: Scene) -> None:
    _, cam, kp, kp_norm = _standing(scene)
    _, placed = _place(scene, cam, cam - cam[:, :1], kp, kp_norm)
    assert placed.used[0] and placed.notes == [""]


@pytest.mark.parametrize("where", ["low confidence", "bottom border", "outside"])
def test_hidden_feet_fall_back(scene: Scene, where: str) -> None:
    _, cam, kp, kp_norm = _standing(scene)
    coco_ankles = list(fl.COCO_ANKLES)
    if where == "low confidence":
        kp[:, coco_ankles, 2] = 0.1
    elif where == "bottom border":
        kp[:, coco_ankles, 1] = scene.camera.height - 2
    else:
        kp[:, coco_ankles, 1] = scene.camera.height + 40
    _, placed = _place(scene, cam, cam - cam[:, :1], kp, kp_norm)
    assert not placed.used[0] and placed.scale[0] == 1.0
    assert placed.notes == [fl.NOTE_FEET_HIDDEN]


def test_a_jump_disagrees_with_the_size_prior(scene: Scene) -> None:
    world, *_ = _standing(scene)
    cam = scene.to_camera(world + np.array([0.0, 0.0, 0.5]))  # half a metre above the floor
    kp, kp_norm = scene.observe(cam)
    _, placed = _place(scene, cam, cam - cam[:, :1], kp, kp_norm)
    assert placed.notes == [fl.NOTE_DISAGREE] and placed.scale[0] == 1.0


def test_kneeling_and_lying_fall_back(scene: Scene) -> None:
    world, *_ = _standing(scene)
    kneeling = world.copy()
    kneeling[0, :, 2] -= 0.45  # the body lowered onto the knees ...
    kneeling[0, [2, 5], 2] = 0.05  # knees on the floor
    kneeling[0, ANKLES, 2] = 0.2  # feet behind, resting on the toes
    upright = scene.world[np.argmin(np.ptp(scene.world[..., 1], axis=1))]  # the slimmest along y
    centre = upright[0]
    lying = (upright - centre) @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]) + centre  # tipped over (z <- y)
    lying[:, 2] += 0.12 - lying[:, 2].min()
    flat = lying.copy()  # lying flat on the back, heels lowest
    flat[:, 2] = 0.1 + 0.15 * (lying[:, 2] - lying[:, 2].min()) / np.ptp(lying[:, 2])
    flat[ANKLES, 2] = 0.1
    cam = scene.to_camera(np.stack([kneeling[0], lying, flat]))
    kp, kp_norm = scene.observe(cam)
    _, placed = _place(scene, cam, cam - cam[:, :1], kp, kp_norm)
    assert placed.notes == [fl.NOTE_NOT_ON_FEET, fl.NOTE_NOT_ON_FEET, fl.NOTE_NOT_UPRIGHT]
    assert not placed.used.any() and (placed.scale == 1.0).all()


def test_posture_codes_on_the_training_mocap(scene: Scene) -> None:
    """Standing and walking mocap frames pass the posture checks."""
    assert (fl.posture_codes(scene.world[..., 2]) == 0).mean() > 0.95


def _horizontal_camera(height: float) -> tuple[CameraModel, Floor]:
    """A robot camera looking straight ahead ``height`` above the floor."""
    to_floor = np.array([[0.0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, height], [0, 0, 0, 1]])
    return CameraModel(K=np.array([[1000.0, 0, 960], [0, 1000, 540], [0, 0, 1]]), width=1920, height=1080), (
        Floor.from_matrix(to_floor)
    )


@pytest.mark.parametrize(("camera_height", "distance"), [(0.12, 4.0), (1.5, 60.0)])
def test_rays_that_miss_the_floor_fall_back(scene: Scene, camera_height: float, distance: float) -> None:
    """A camera no higher than the feet, and a person so far that the ankle's ray is within 2
    degrees of the horizon."""
    camera, floor = _horizontal_camera(camera_height)
    world = scene.world[1] - np.array([*scene.world[1, 0, :2], 0.0])
    # Floor frame -> optical frame of that camera: x_cam = -y, y_cam = height - z, z_cam = x.
    cam = np.stack([-world[:, 1], camera_height - world[:, 2], world[:, 0] + distance], axis=-1)[None]
    norm = cam[..., :2] / cam[..., 2:]
    kp = np.concatenate([camera.project(cam), np.full((1, 17, 1), 0.9)], axis=-1)
    coco = np.zeros((1, 17, 3))
    coco_norm = np.zeros((1, 17, 2))
    for c, h in COCO_H36M_SHARED:
        coco[:, c], coco_norm[:, c] = kp[:, h], norm[:, h]
    coco[:, :5], coco_norm[:, :5] = kp[:, 10:11], norm[:, 10:11]
    pose_rel = cam - cam[:, :1]
    root = root_from_reprojection(pose_rel, coco_norm, coco[..., 2])
    placed = place_on_floor(pose_rel, root, coco, camera, floor, min_conf=0.3)
    assert placed.notes == [fl.NOTE_NO_FLOOR_RAY] and placed.scale[0] == 1.0


def test_batches_answer_as_single_people(scene: Scene) -> None:
    cam = scene.to_camera(scene.world[:6])
    kp, kp_norm = scene.observe(cam)
    kp[2, list(fl.COCO_ANKLES), 2] = 0.0  # one of them with hidden feet
    pose_rel = cam - cam[:, :1]
    root, batch = _place(scene, cam, pose_rel, kp, kp_norm)
    for i in range(len(cam)):
        _, one = _place(scene, cam[i : i + 1], pose_rel[i : i + 1], kp[i : i + 1], kp_norm[i : i + 1])
        assert one.notes[0] == batch.notes[i]
        np.testing.assert_allclose(one.scale[0], batch.scale[i], rtol=1e-9)
    empty = place_on_floor(
        np.zeros((0, 17, 3)), np.zeros((0, 3)), np.zeros((0, 17, 3)), scene.camera, scene.floor, min_conf=0.3
    )
    assert empty.scale.shape == (0,) and empty.notes == []


def _rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = R, t
    return m


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(3), "4x4"),
        (np.full((4, 4), np.nan), "non-finite"),
        (_rigid(2.0 * np.eye(3), np.zeros(3)), "orthonormal"),
        (_rigid(np.diag([1.0, 1.0, -1.0]), np.zeros(3)), "reflection"),
        (np.vstack([np.eye(4)[:3], [0.0, 0.0, 1.0, 1.0]]), "last row"),
        ([["a"] * 4] * 4, "numeric"),
    ],
)
def test_bad_camera_poses_are_refused(matrix: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Floor.from_matrix(matrix)  # type: ignore[arg-type]


def test_extrinsics_follow_the_cameras_json_convention(scene: Scene) -> None:
    """X_cam = R^T (X_world - T): the floor's heights of camera-frame joints are the mocap's z."""
    cam = scene.to_camera(scene.world[:3])
    np.testing.assert_allclose(cam @ scene.floor.up + scene.floor.height, scene.world[:3, :, 2], atol=1e-9)
    with pytest.raises(ValueError, match="3x3"):
        floor_from_extrinsics(np.eye(2), [0, 0, 1])


def test_root_covariance_is_long_along_the_ray() -> None:
    roots = np.array([[0.5, -0.2, 4.0], [-2.0, 0.3, 8.0]])
    along = 0.06 * np.linalg.norm(roots, axis=1)
    covs = root_covariance(roots, along, across_ray_sd(roots, 1000.0))
    for root, cov, sd in zip(roots, covs, along):
        np.testing.assert_allclose(cov, cov.T)
        values, vectors = np.linalg.eigh(cov)
        assert values[0] > 0
        assert abs(abs(vectors[:, -1] @ root) / np.linalg.norm(root) - 1.0) < 1e-9
        np.testing.assert_allclose(np.sqrt(values[-1]), sd)
        assert values[-1] > 4 * values[1]


def test_shipped_foot_prior_is_plausible() -> None:
    prior = FootPrior.load()
    assert 0.03 < prior.offset_m < 0.15 and 0.005 < prior.sd_m < 0.08
    data = json.loads(fl.FOOT_PRIOR_FILE.read_text())
    assert "S11" not in data["subjects"] and data["command"].startswith("python -m ros2_ctxpose.training.foot_offsets")


def test_non_finite_keypoints_fall_back_without_crashing(scene: Scene) -> None:
    _, cam, kp, kp_norm = _standing(scene)
    kp[:, list(fl.COCO_ANKLES)] = np.nan
    root = root_from_reprojection(cam - cam[:, :1], kp_norm, np.nan_to_num(kp[..., 2]))
    placed = place_on_floor(cam - cam[:, :1], root, kp, scene.camera, scene.floor, min_conf=0.3)
    assert placed.notes == [fl.NOTE_FEET_HIDDEN] and placed.scale[0] == 1.0
    assert np.isfinite(placed.scale_sd).all()


def test_every_note_is_documented() -> None:
    doc = (fl.FOOT_PRIOR_FILE.parents[2] / "docs" / "OUTPUT_FORMAT.md").read_text()
    notes = [getattr(fl, name) for name in dir(fl) if name.startswith("NOTE_")]
    assert len(notes) == 7 and all(note in doc for note in notes)


def test_the_shipped_foot_prior_is_what_the_training_mocap_gives(shared_data) -> None:
    """``python -m ros2_ctxpose.training.foot_offsets`` reproduces the shipped numbers."""
    from ros2_ctxpose.training.foot_offsets import learn

    shared_data("data/h36m/poses_world17_mm.npz")
    shipped = json.loads(fl.FOOT_PRIOR_FILE.read_text())
    learned = learn(stride=shipped["stride"])
    assert {k: learned[k] for k in ("foot_offset_m", "foot_offset_sd_m", "frames")} == {
        k: shipped[k] for k in ("foot_offset_m", "foot_offset_sd_m", "frames")
    }
    with pytest.raises(ValueError, match="S11"):
        learn(subjects=("S1", "S11"))
