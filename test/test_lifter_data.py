"""Training data: real-camera projection, virtual cameras, detector-like 2D, mirroring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ros2_ctxpose.core.skeleton import COCO17, H36M17, index_of
from ros2_ctxpose.training.synthetic_2d import DetectorNoise, coco_points_3d, detector_like, lifter_sample, mirror
from ros2_ctxpose.training.virtual_camera import VirtualCameraRanges, in_view, sample_virtual_cameras

#: A standing person in the H36M world frame (z up, metres), pelvis 0.95 m above the floor.
STANDING = torch.tensor(
    [
        [0.0, 0.0, 0.95],
        [-0.13, 0.0, 0.95],
        [-0.13, 0.0, 0.5],
        [-0.13, 0.0, 0.07],
        [0.13, 0.0, 0.95],
        [0.13, 0.0, 0.5],
        [0.13, 0.0, 0.07],
        [0.0, 0.0, 1.2],
        [0.0, 0.0, 1.45],
        [0.0, -0.05, 1.6],
        [0.0, 0.0, 1.75],
        [0.18, 0.0, 1.42],
        [0.2, 0.0, 1.15],
        [0.2, 0.0, 0.9],
        [-0.18, 0.0, 1.42],
        [-0.2, 0.0, 1.15],
        [-0.2, 0.0, 0.9],
    ]
)


def test_real_camera_projection_reproduces_annotated_h36m_frames(shared_data, annotations) -> None:
    """The world->camera convention and the distortion, against the annotated frames (to 1 px)."""
    from ros2_ctxpose.training.h36m import load_cameras

    cams = load_cameras(shared_data("data/h36m/cameras.json"))
    poses = np.load(shared_data("data/h36m/poses_world17_mm.npz"))
    checked = 0
    for im in annotations():
        if im.dataset != "human3.6m" or im.truth is None:
            continue
        # e.g. h36m/S8_WalkDog_1.55011271_000026.jpg: frame numbers in the file names are 1-based.
        stem = Path(im.file).name
        subject, rest = stem.split("_", 1)
        seq, tail = rest.split(".", 1)
        frame = int(tail.split("_")[1].split(".")[0]) - 1
        cam = cams[f"{subject}/{im.camera_name}"]
        joints_cam = cam.world_to_cam(poses[f"{subject}/{seq.replace('_', ' ')}"][frame].astype(np.float32))
        np.testing.assert_allclose(joints_cam, im.truth.joints_3d, atol=2e-3)
        err_px = np.linalg.norm(cam.model.project(joints_cam) - im.truth.joints_2d, axis=-1)
        assert err_px.max() < 1.0, f"{stem}: {err_px.max():.2f} px"
        checked += 1
    assert checked == 4


def test_virtual_cameras_respect_their_ranges() -> None:
    r = VirtualCameraRanges()
    world = STANDING.expand(2000, 17, 3) + torch.tensor([1.0, -2.0, 0.0])
    joints, cams = sample_virtual_cameras(world, r, torch.Generator().manual_seed(0))
    assert r.height_m[0] <= cams.height.min() and cams.height.max() <= r.height_m[1]
    assert r.distance_m[0] <= cams.distance.min() and cams.distance.max() <= r.distance_m[1]
    assert cams.pitch_deg.abs().max() <= r.max_pitch_deg + 1e-4
    assert r.hfov_deg[0] <= cams.hfov_deg.min() and cams.hfov_deg.max() <= r.hfov_deg[1]
    torch.testing.assert_close(cams.C[:, 2], cams.height)
    horizontal = (cams.C[:, :2] - world[:, 0, :2]).norm(dim=-1)
    torch.testing.assert_close(horizontal, cams.distance)
    # Bounds match the field of view (width = 2 tan(hfov/2)) with an off-centre principal point.
    width = cams.bounds[:, 2] - cams.bounds[:, 0]
    torch.testing.assert_close(width, 2 * torch.tan(torch.deg2rad(cams.hfov_deg) / 2))
    assert (cams.bounds[:, 0] + cams.bounds[:, 2]).abs().max() > 0.01
    # Mostly in view, in front of the camera, and upright (head above feet in the image, y down).
    assert (in_view(joints, cams.bounds).sum(-1) >= r.min_joints_in_view).float().mean() > 0.99
    assert (joints[..., 2] > 0).all()
    assert (joints[:, 10, 1] < joints[:, 3, 1]).float().mean() > 0.99
    # Rotations are proper.
    torch.testing.assert_close(torch.linalg.det(cams.R), torch.ones(2000))
    # Limb lengths are preserved.
    torch.testing.assert_close((joints[:, 2] - joints[:, 3]).norm(dim=-1), (world[:, 2] - world[:, 3]).norm(dim=-1))


def test_exact_2d_is_the_pinhole_projection_with_full_confidence() -> None:
    joints = STANDING.unsqueeze(0) - torch.tensor([0.0, -4.0, 0.9])  # 4 m in front (camera y = world y here)
    cam = joints[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0])  # x right, y down, z forward
    bounds = torch.tensor([[-1.0, -1.0, 1.0, 1.0]])
    kp, conf, target = lifter_sample(cam, bounds, noise=None)
    coco = coco_points_3d(cam)
    torch.testing.assert_close(kp, coco[..., :2] / coco[..., 2:])
    assert torch.all(conf == 1.0)
    torch.testing.assert_close(target, cam - cam[:, :1])
    knee = index_of(COCO17, "left_knee")
    torch.testing.assert_close(coco[0, knee], cam[0, index_of(H36M17, "left_knee")])
    # COCO hips sit below H36M's hip centres (measured offset), in the body's own frame.
    assert coco[0, index_of(COCO17, "left_hip"), 1] > cam[0, index_of(H36M17, "left_hip"), 1]


def test_coco_offsets_rotate_with_the_body() -> None:
    cam = STANDING.unsqueeze(0)[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0]) + torch.tensor([0.0, 0.0, 4.0])
    angle = 0.8
    R = torch.tensor(
        [[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]]
    )
    torch.testing.assert_close(coco_points_3d(cam @ R.T), coco_points_3d(cam) @ R.T)


def test_detector_like_noise_truncation_and_reproducibility() -> None:
    cam = (
        STANDING.unsqueeze(0)[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0]) + torch.tensor([0.0, 1.0, 4.0])
    ).expand(500, 17, 3)
    bounds = torch.tensor([-0.5, -0.5, 0.5, 0.15]).expand(500, 4)  # the image ends above the knees
    coco = coco_points_3d(cam)
    exact, _ = detector_like(coco, bounds, None)
    a = detector_like(coco, bounds, DetectorNoise(), torch.Generator().manual_seed(3))
    b = detector_like(coco, bounds, DetectorNoise(), torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    kp, conf = a
    assert ((kp >= bounds[:, None, :2]) & (kp <= bounds[:, None, 2:])).all()
    ankles = [index_of(COCO17, "left_ankle"), index_of(COCO17, "right_ankle")]
    assert conf[:, ankles].max() <= DetectorNoise().truncated_conf_max
    shoulder = index_of(COCO17, "left_shoulder")
    assert conf[:, shoulder].median() > 0.7
    assert (kp[:, shoulder] - exact[:, shoulder]).norm(dim=-1).mean() > 1e-3


def test_mirror_is_an_involution_and_swaps_sides() -> None:
    cam = STANDING.unsqueeze(0)[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0]) + torch.tensor([0.3, 0.0, 4.0])
    bounds = torch.tensor([[-0.6, -0.4, 0.5, 0.4]])
    flip = torch.tensor([True])
    m, mb = mirror(cam, bounds, flip)
    torch.testing.assert_close(mb, torch.tensor([[-0.5, -0.4, 0.6, 0.4]]))
    torch.testing.assert_close(m[0, 1, 0], -cam[0, 4, 0])  # right hip <- mirrored left hip
    torch.testing.assert_close(mirror(m, mb, flip), (cam, bounds))
    torch.testing.assert_close(mirror(cam, bounds, torch.tensor([False])), (cam, bounds))
