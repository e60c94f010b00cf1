"""Root placement on synthetic poses: exact without noise, robust to an outlier, depth with holes."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.placement import depth_to_metres, root_from_depth, root_from_reprojection
from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

#: A standing H36M-17 pose, root-relative, metres (x right, y down, z forward), slightly turned.
POSE = np.array(
    [
        [0.00, 0.00, 0.00],
        [-0.13, 0.00, 0.02],
        [-0.14, 0.44, 0.05],
        [-0.15, 0.88, 0.10],
        [0.13, 0.00, -0.02],
        [0.15, 0.44, 0.00],
        [0.16, 0.87, 0.06],
        [0.00, -0.23, -0.02],
        [0.00, -0.48, -0.03],
        [0.00, -0.58, -0.08],
        [0.00, -0.72, -0.03],
        [0.17, -0.45, -0.04],
        [0.30, -0.20, 0.02],
        [0.33, 0.03, -0.12],
        [-0.17, -0.45, 0.03],
        [-0.28, -0.20, 0.08],
        [-0.30, 0.04, -0.05],
    ]
)


def _observe(pose_rel: np.ndarray, root: np.ndarray) -> np.ndarray:
    """COCO-17 normalised keypoints of a pose placed at ``root`` (face keypoints at the head)."""
    cam = pose_rel + root
    kp = np.repeat((cam[10, :2] / cam[10, 2])[None], 17, axis=0)
    for coco, h36m in COCO_H36M_SHARED:
        kp[coco] = cam[h36m, :2] / cam[h36m, 2]
    return kp


def _batch(roots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    poses = np.stack([POSE @ _rot_y(a).T for a in rng.uniform(-1.5, 1.5, len(roots))])
    poses -= poses[:, :1]
    kp = np.stack([_observe(p, r) for p, r in zip(poses, roots)])
    return poses, kp, np.full(kp.shape[:2], 0.9)


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


ROOTS = np.array([[0.3, -0.1, 4.0], [-1.2, 0.4, 2.5], [2.0, 0.9, 9.0], [0.0, 0.0, 1.2]])


def test_exact_recovery_without_noise() -> None:
    poses, kp, conf = _batch(ROOTS)
    np.testing.assert_allclose(root_from_reprojection(poses, kp, conf), ROOTS, atol=1e-6)


def test_empty_batch() -> None:
    assert root_from_reprojection(np.zeros((0, 17, 3)), np.zeros((0, 17, 2)), np.zeros((0, 17))).shape == (0, 3)


def test_robust_to_one_outlier_joint() -> None:
    poses, kp, conf = _batch(ROOTS)
    kp[:, 9] += np.array([0.15, -0.1])  # left wrist far off, with full confidence
    conf[:, 9] = 1.0
    est = root_from_reprojection(poses, kp, conf)
    plain = root_from_reprojection(poses, kp, conf, iterations=0)
    err, err_plain = np.linalg.norm(est - ROOTS, axis=1), np.linalg.norm(plain - ROOTS, axis=1)
    assert (err < 0.02 * ROOTS[:, 2]).all(), err
    assert (err < err_plain).all()


def test_low_confidence_joints_are_ignored() -> None:
    poses, kp, conf = _batch(ROOTS)
    kp[:, 15] += 0.3
    conf[:, 15] = 0.05  # left ankle: wrong, but the detector says so
    np.testing.assert_allclose(root_from_reprojection(poses, kp, conf), ROOTS, atol=1e-6)


def test_too_few_visible_joints_falls_back_to_all_shared() -> None:
    poses, kp, conf = _batch(ROOTS)
    conf[:] = 0.0
    conf[:, 5] = 0.9  # only one confident shoulder
    est = root_from_reprojection(poses, kp, conf)
    np.testing.assert_allclose(est, ROOTS, atol=1e-6)


def test_non_finite_keypoints_are_ignored() -> None:
    poses, kp, conf = _batch(ROOTS)
    kp[:, 9] = np.nan
    kp[:, 10, 0] = np.inf
    np.testing.assert_allclose(root_from_reprojection(poses, kp, conf), ROOTS, atol=1e-6)
    conf[:] = 0.0  # the equal-weight fallback must skip them too
    np.testing.assert_allclose(root_from_reprojection(poses, kp, conf), ROOTS, atol=1e-6)


def test_never_behind_the_camera() -> None:
    poses, kp, conf = _batch(ROOTS[:1])
    kp[:] = 0.0  # all keypoints on the optical axis: depth is undetermined
    est = root_from_reprojection(poses, kp, conf)
    assert np.isfinite(est).all()
    assert (poses[0, :, 2] + est[0, 2] > 0).all()


def _depth_image(
    poses: np.ndarray, kp_norm: np.ndarray, fx: float, c: tuple[float, float], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A 16UC1 (mm) depth image with each shared joint's depth painted in a 9x9 patch."""
    w, h = size
    depth = np.zeros((h, w), dtype=np.uint16)
    kp_px = kp_norm * fx + np.array(c)
    for pose, root, uv in zip(poses, ROOTS, kp_px):
        for coco, h36m in COCO_H36M_SHARED:
            u, v = np.rint(uv[coco]).astype(int)
            depth[max(v - 4, 0) : v + 5, max(u - 4, 0) : u + 5] = round(1000 * (pose[h36m, 2] + root[2]))
    return depth, kp_px


def test_depth_with_holes_and_a_background_pixel() -> None:
    poses, kp, conf = _batch(ROOTS)
    fx, c, size = 600.0, (640.0, 480.0), (1280, 960)
    depth, kp_px = _depth_image(poses, kp, fx, c, size)
    kp_px[:, 9] = [5.0, 5.0]  # left wrist lands on the (empty -> hole) corner
    kp_px[:, 10] += 30.0  # right wrist off its patch, onto a hole
    depth[:, :3] = 30000  # a far wall where nothing projects
    m = depth_to_metres(depth, 0.001)
    roots, ok = root_from_depth(poses, kp_px, kp, conf, m)
    inside = (kp_px[..., 0] > 0) & (kp_px[..., 0] < size[0]) & (kp_px[..., 1] > 0) & (kp_px[..., 1] < size[1])
    assert ok[inside.all(axis=1)].all()
    np.testing.assert_allclose(roots[ok], ROOTS[ok], atol=0.002)  # 1 mm depth quantisation


def test_depth_rejects_far_background_joint() -> None:
    poses, kp, conf = _batch(ROOTS[:1])
    fx, c, size = 600.0, (640.0, 480.0), (1280, 960)
    depth, kp_px = _depth_image(poses, kp, fx, c, size)
    m = depth_to_metres(depth, 0.001)
    u, v = np.rint(kp_px[0, 9]).astype(int)
    m[v - 4 : v + 5, u - 4 : u + 5] = 8.0  # the wall behind the wrist
    roots, ok = root_from_depth(poses, kp_px, kp, conf, m)
    assert ok.all()
    np.testing.assert_allclose(roots, ROOTS[:1], atol=0.002)


def test_depth_too_few_valid_reports_not_ok() -> None:
    poses, kp, conf = _batch(ROOTS[:2])
    m = np.full((960, 1280), np.nan, dtype=np.float32)
    m[:2, :2] = 0.0
    roots, ok = root_from_depth(poses, kp * 600.0 + 400.0, kp, conf, depth_to_metres(m, 1.0))
    assert not ok.any()
    assert np.isnan(roots).all()


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3)), np.zeros(4)])
def test_depth_shape_is_checked(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="single-channel"):
        depth_to_metres(bad, 1.0)
