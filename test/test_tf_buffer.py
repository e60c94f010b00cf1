"""ros/tf_buffer.TransformBuffer: the TF contract the nodes rely on where tf2_ros is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat

from ros2_ctxpose.ros.tf_buffer import TransformBuffer, TransformError

S = 1_000_000_000  # one second in nanoseconds


def xyzw(matrix: np.ndarray) -> np.ndarray:
    w, x, y, z = mat2quat(matrix)
    return np.array([x, y, z, w])


def pose(yaw: float, pitch: float, t: tuple[float, float, float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = euler2mat(yaw, pitch, 0.3, "szyx")
    m[:3, 3] = t
    return m


def add(buffer: TransformBuffer, parent: str, child: str, stamp: int, m: np.ndarray, static: bool = False) -> None:
    buffer.add(parent, child, stamp, m[:3, 3], xyzw(m[:3, :3]), static=static)


def test_a_chain_composes_and_inverts() -> None:
    buffer = TransformBuffer()
    map_base, base_cam, map_other = pose(0.4, 0.0, (1, 2, 0)), pose(-0.2, 0.5, (0.1, 0, 1.2)), pose(1, 0.1, (3, 0, 0))
    add(buffer, "map", "base", 0, map_base, static=True)
    add(buffer, "/base", "camera", 0, base_cam, static=True)  # a leading slash names the same frame
    add(buffer, "map", "other", 0, map_other, static=True)
    np.testing.assert_allclose(buffer.lookup("map", "camera", 5 * S), map_base @ base_cam, atol=1e-12)
    np.testing.assert_allclose(buffer.lookup("camera", "map", 5 * S), np.linalg.inv(map_base @ base_cam), atol=1e-12)
    expected = np.linalg.inv(map_other) @ map_base @ base_cam  # across branches, through the common root
    np.testing.assert_allclose(buffer.lookup("other", "camera", 0), expected, atol=1e-12)
    np.testing.assert_allclose(buffer.lookup("camera", "camera", 1), np.eye(4))


def test_dynamic_transforms_interpolate_and_never_extrapolate() -> None:
    buffer = TransformBuffer()
    a, b = pose(0.0, 0.0, (0, 0, 1)), pose(0.5, 0.0, (2, 0, 1))
    add(buffer, "odom", "camera", 10 * S, a)
    add(buffer, "odom", "camera", 12 * S, b)
    mid = buffer.lookup("odom", "camera", 11 * S)
    np.testing.assert_allclose(mid[:3, 3], [1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(mid[:3, :3], pose(0.25, 0.0, (0, 0, 0))[:3, :3], atol=1e-9)  # halfway in rotation
    np.testing.assert_allclose(buffer.lookup("odom", "camera", 12 * S), b, atol=1e-12)
    np.testing.assert_allclose(buffer.lookup("odom", "camera", 0), b, atol=1e-12)  # 0 = the newest
    with pytest.raises(TransformError, match="extrapolation into the future"):
        buffer.lookup("odom", "camera", 12 * S + 1)
    with pytest.raises(TransformError, match="extrapolation into the past"):
        buffer.lookup("odom", "camera", 10 * S - 1)


def test_old_samples_leave_the_cache() -> None:
    buffer = TransformBuffer(cache_s=2.0)
    for second in range(10):
        add(buffer, "odom", "camera", second * S, pose(0, 0, (second, 0, 0)))
    np.testing.assert_allclose(buffer.lookup("odom", "camera", 7 * S)[0, 3], 7.0)
    with pytest.raises(TransformError, match="past"):
        buffer.lookup("odom", "camera", 6 * S)


def test_unknown_and_disconnected_frames_say_so() -> None:
    buffer = TransformBuffer()
    add(buffer, "map", "camera", 0, np.eye(4), static=True)
    add(buffer, "world", "robot", 0, np.eye(4), static=True)
    with pytest.raises(TransformError, match="'floor' does not exist"):
        buffer.lookup("floor", "camera", 0)
    with pytest.raises(TransformError, match="another tree"):
        buffer.lookup("robot", "camera", 0)


def test_a_new_parent_replaces_the_old_one_and_loops_are_refused() -> None:
    buffer = TransformBuffer()
    add(buffer, "map", "camera", 0, pose(0, 0, (1, 0, 0)), static=True)
    add(buffer, "odom", "camera", 0, pose(0, 0, (2, 0, 0)), static=True)
    np.testing.assert_allclose(buffer.lookup("odom", "camera", 0)[0, 3], 2.0)
    with pytest.raises(TransformError):
        buffer.lookup("map", "camera", 0)
    with pytest.raises(ValueError, match="loop"):
        add(buffer, "camera", "odom", 0, np.eye(4), static=True)


@pytest.mark.parametrize(
    "translation,quaternion,parent,child",
    [
        ((np.nan, 0, 0), (0, 0, 0, 1), "a", "b"),
        ((0, 0, 0), (0, 0, 0, 0), "a", "b"),
        ((0, 0, 0), (0, 0, 0, 1), "a", "a"),
        ((0, 0, 0), (0, 0, 0, 1), "", "b"),
    ],
)
def test_bad_transforms_are_refused(translation, quaternion, parent, child) -> None:
    with pytest.raises(ValueError):
        TransformBuffer().add(parent, child, 0, translation, quaternion)
