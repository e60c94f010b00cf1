"""The fallback transform buffer of ros/tf_lookup.py: chains, interpolation, and the refusals tf2 makes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pytestmark = pytest.mark.usefixtures("rclpy_available")

S = 1_000_000_000  # ns per second


def quat(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_quat()


@pytest.fixture
def tree():
    """map -> odom (static, 1 m along x) -> base (moving: x = t m, yaw = 90 t deg, t = 10..12 s)
    -> camera (static, 0.5 m up, pitched)."""
    from ros2_ctxpose.ros.tf_lookup import TransformBuffer

    buffer = TransformBuffer(cache_s=10.0)
    assert buffer.set_transform("map", "odom", 0, [1.0, 0.0, 0.0], [0, 0, 0, 1], static=True) is None
    for t in (10, 11, 12):
        buffer.set_transform("odom", "base", t * S, [float(t), 0.0, 0.0], quat("z", 90.0 * t))
    buffer.set_transform("base", "camera", 0, [0.0, 0.0, 0.5], quat("y", 30.0), static=True)
    return buffer


def expected_camera_to_map(t: float) -> np.ndarray:
    from ros2_ctxpose.ros.tf_lookup import matrix

    return (
        matrix(np.array([1.0, 0.0, 0.0]), np.array([0, 0, 0, 1.0]))
        @ matrix(np.array([t, 0.0, 0.0]), quat("z", 90.0 * t))
        @ matrix(np.array([0.0, 0.0, 0.5]), quat("y", 30.0))
    )


def test_a_chain_is_composed_at_a_known_stamp(tree) -> None:
    m, reason = tree.lookup("map", "camera", 11 * S)
    assert reason == ""
    np.testing.assert_allclose(m, expected_camera_to_map(11.0), atol=1e-12)


def test_between_stamps_it_interpolates_translation_and_rotation(tree) -> None:
    m, reason = tree.lookup("map", "camera", int(10.5 * S))
    assert reason == ""
    np.testing.assert_allclose(m, expected_camera_to_map(10.5), atol=1e-9)


def test_the_other_direction_is_the_inverse(tree) -> None:
    forward, _ = tree.lookup("map", "camera", 11 * S)
    backward, reason = tree.lookup("camera", "map", 11 * S)
    assert reason == ""
    np.testing.assert_allclose(backward @ forward, np.eye(4), atol=1e-12)


def test_frames_under_a_common_parent_meet_there(tree) -> None:
    tree.set_transform("odom", "marker", 0, [0.0, 2.0, 0.0], [0, 0, 0, 1], static=True)
    m, reason = tree.lookup("marker", "camera", 11 * S)
    assert reason == ""
    np.testing.assert_allclose(m[:3, 3], (expected_camera_to_map(11.0)[:3, 3] - [1.0, 2.0, 0.0]), atol=1e-12)


@pytest.mark.parametrize(
    "target,source,stamp,reason",
    [
        ("map", "camera", 13 * S, "extrapolation into the future"),
        ("map", "camera", 9 * S, "extrapolation into the past"),
        ("map", "nowhere", 11 * S, "frame 'nowhere' is unknown"),
    ],
)
def test_refusals_say_why(tree, target: str, source: str, stamp: int, reason: str) -> None:
    m, why = tree.lookup(target, source, stamp)
    assert m is None and reason in why


def test_unconnected_trees_are_refused(tree) -> None:
    tree.set_transform("world", "other", 0, [0.0, 0.0, 0.0], [0, 0, 0, 1], static=True)
    m, why = tree.lookup("map", "other", 11 * S)
    assert m is None and "not connected" in why


def test_stamp_zero_is_the_newest_unless_stale() -> None:
    from ros2_ctxpose.ros.tf_lookup import TransformBuffer

    now = [12 * S]
    buffer = TransformBuffer(max_age_s=1.0, clock_ns=lambda: now[0])
    buffer.set_transform("map", "base", 11 * S, [1.0, 0.0, 0.0], [0, 0, 0, 1])
    buffer.set_transform("map", "base", 12 * S, [2.0, 0.0, 0.0], [0, 0, 0, 1])
    m, reason = buffer.lookup("map", "base", 0)
    assert reason == "" and m[0, 3] == 2.0
    now[0] = 15 * S
    m, reason = buffer.lookup("map", "base", 0)
    assert m is None and reason.startswith("stale")


def test_old_transforms_leave_the_cache_and_bad_ones_are_refused() -> None:
    from ros2_ctxpose.ros.tf_lookup import TransformBuffer

    buffer = TransformBuffer(cache_s=2.0)
    for t in range(10):
        buffer.set_transform("map", "base", t * S, [float(t), 0.0, 0.0], [0, 0, 0, 1])
    assert buffer.lookup("map", "base", 8 * S)[1] == ""
    assert "into the past" in buffer.lookup("map", "base", 5 * S)[1]
    assert "non-finite" in (buffer.set_transform("map", "base", 20 * S, [np.nan, 0, 0], [0, 0, 0, 1]) or "")
    assert "invalid frames" in (buffer.set_transform("map", "map", 20 * S, [0, 0, 0], [0, 0, 0, 1]) or "")
    assert buffer.lookup("/map", "map", 0) == (pytest.approx(np.eye(4)), "")
