"""The ROS layer's pure conversions: pipeline results -> Skeleton3DArray, markers, REP 155 TF frames;
CameraInfo -> CameraModel; the newest-frame slot; diagnostics."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from transforms3d.quaternions import quat2mat  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from ros2_ctxpose.core.pipeline import Person3D  # noqa: E402
from ros2_ctxpose.core.results import ROOT_FROM_DEPTH, ROOT_SCALE_UNKNOWN  # noqa: E402
from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES, index_of  # noqa: E402
from ros2_ctxpose.msg import Skeleton3D  # noqa: E402
from ros2_ctxpose.ros.camera_info import camera_model  # noqa: E402
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array  # noqa: E402
from ros2_ctxpose.ros.markers import marker_array  # noqa: E402
from ros2_ctxpose.ros.messages import skeleton_array  # noqa: E402
from ros2_ctxpose.ros.node import DepthBuffer, LatestFrame  # noqa: E402
from ros2_ctxpose.ros.tf_frames import REP155_LINKS, body_rotation, frame_transforms  # noqa: E402

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123), frame_id="cam_optical")

# An upright person facing the camera, 4 m away, in the optical frame (x right, y down, z forward):
# their left is the camera's +x, their head is -y.
STANDING = {
    "pelvis": (0.0, 0.0, 4.0), "right_hip": (-0.12, 0.0, 4.0), "right_knee": (-0.12, 0.45, 4.0),
    "right_ankle": (-0.12, 0.88, 4.0), "left_hip": (0.12, 0.0, 4.0), "left_knee": (0.12, 0.45, 4.0),
    "left_ankle": (0.12, 0.88, 4.0), "spine": (0.0, -0.23, 4.0), "thorax": (0.0, -0.48, 4.0),
    "neck_nose": (0.0, -0.6, 3.92), "head_top": (0.0, -0.75, 4.0), "left_shoulder": (0.16, -0.46, 4.0),
    "left_elbow": (0.2, -0.2, 4.0), "left_wrist": (0.22, 0.04, 4.0), "right_shoulder": (-0.16, -0.46, 4.0),
    "right_elbow": (-0.2, -0.2, 4.0), "right_wrist": (-0.22, 0.04, 4.0),
}
JOINTS = np.array([STANDING[name] for name in H36M17])


def person(joints: np.ndarray = JOINTS, source: str = ROOT_FROM_DEPTH) -> Person3D:
    return Person3D(score=0.9, bbox_xyxy=np.array([10.0, 20.0, 110.0, 320.0]),
                    keypoints_2d=np.arange(51, dtype=float).reshape(17, 3), joints_3d=joints,
                    joints_uv=np.arange(34, dtype=float).reshape(17, 2), joints_conf=np.linspace(0, 1, 17),
                    root=joints[0].copy(), root_source=source)


def test_skeleton_array_carries_everything() -> None:
    msg = skeleton_array(HEADER, [person(), person(JOINTS + [1, 0, 0], ROOT_SCALE_UNKNOWN)], [4, 9],
                         Duration(sec=0, nanosec=250_000_000))
    assert msg.header == HEADER and list(msg.joint_names) == list(H36M17)
    assert list(msg.joint_names) == msg.H36M17_JOINTS.split(",")
    first, second = msg.skeletons
    assert (first.id, second.id) == (4, 9)
    assert (first.root_source, second.root_source) == (Skeleton3D.ROOT_FROM_DEPTH, Skeleton3D.ROOT_SCALE_UNKNOWN)
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in second.joint_positions], JOINTS + [1, 0, 0])
    np.testing.assert_allclose([second.root_position.x, second.root_position.z], [1.0, 4.0])
    np.testing.assert_allclose(first.keypoints_2d, np.arange(51))
    np.testing.assert_allclose(first.joint_u, np.arange(0, 34, 2))
    np.testing.assert_allclose(first.joint_v, np.arange(1, 34, 2))
    np.testing.assert_allclose(first.bbox_xyxy, [10, 20, 110, 320])
    assert msg.processing_latency.nanosec == 250_000_000


def test_markers_per_person() -> None:
    msg = skeleton_array(HEADER, [person(), person(JOINTS + [1, 0, 0])], [1, 2], Duration())
    markers = marker_array(msg, Duration(sec=0, nanosec=500_000_000)).markers
    assert [(m.ns, m.id, m.type) for m in markers] == [
        ("body_1", 0, Marker.SPHERE_LIST), ("body_1", 1, Marker.LINE_LIST),
        ("body_2", 0, Marker.SPHERE_LIST), ("body_2", 1, Marker.LINE_LIST)]
    joints, bones = markers[0], markers[1]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in joints.points], JOINTS)
    assert len(bones.points) == 2 * len(H36M17_BONES)
    assert all(m.lifetime.nanosec == 500_000_000 and m.header == HEADER for m in markers)
    assert joints.color == bones.color and markers[0].color != markers[2].color
    again = marker_array(skeleton_array(HEADER, [person()], [2], Duration()), Duration()).markers
    assert again[0].color == markers[2].color, "a track keeps its colour across frames"


def test_body_frame_of_a_person_facing_the_camera() -> None:
    rotation = body_rotation(JOINTS)
    # REP 155: x forward (towards the camera: -z), y to the person's left (+x), z up (-y).
    np.testing.assert_allclose(rotation, np.column_stack([[0, 0, -1], [1, 0, 0], [0, -1, 0]]), atol=1e-9)


def test_body_frame_follows_the_person_turning() -> None:
    turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90 deg about the vertical
    turned = (JOINTS - JOINTS[0]) @ turn.T + JOINTS[0]
    rotation = body_rotation(turned)
    np.testing.assert_allclose(rotation, turn @ body_rotation(JOINTS), atol=1e-9)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_degenerate_skeleton_falls_back_to_facing_the_camera() -> None:
    collapsed = np.repeat(JOINTS[:1], 17, axis=0)
    np.testing.assert_allclose(body_rotation(collapsed), body_rotation(JOINTS))
    with_nan = JOINTS.copy()
    with_nan[index_of(H36M17, "thorax")] = np.nan
    np.testing.assert_allclose(body_rotation(with_nan), body_rotation(JOINTS))


@pytest.mark.parametrize("joint_frames", [False, True])
def test_tf_frames_follow_rep155(joint_frames: bool) -> None:
    turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    joints = (JOINTS - JOINTS[0]) @ turn.T + JOINTS[0] + [0.5, 0.1, 0.0]
    msg = skeleton_array(HEADER, [person(joints)], [7], Duration())
    transforms = {t.child_frame_id: t for t in frame_transforms(msg, joint_frames)}
    joint_names = {f"{link}_7" for link in REP155_LINKS.values()} if joint_frames else set()
    assert set(transforms) == {"body_7"} | joint_names
    body = transforms["body_7"]
    assert body.header.frame_id == "cam_optical" and body.header.stamp == HEADER.stamp
    q = body.transform.rotation
    rotation = quat2mat([q.w, q.x, q.y, q.z])
    np.testing.assert_allclose(rotation, body_rotation(joints), atol=1e-9)
    t = body.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], joints[0])
    for name, link in REP155_LINKS.items() if joint_frames else ():
        frame = transforms[f"{link}_7"]
        assert frame.header.frame_id == "body_7"
        local = frame.transform.translation
        np.testing.assert_allclose(rotation @ [local.x, local.y, local.z] + joints[0], joints[index_of(H36M17, name)],
                                   atol=1e-9)


def test_rep155_link_names() -> None:
    assert REP155_LINKS["left_wrist"] == "l_wrist" and REP155_LINKS["right_ankle"] == "r_ankle"
    assert set(REP155_LINKS) == set(H36M17) - {"pelvis"}


def camera_info(**fields) -> CameraInfo:
    base = dict(width=640, height=480, distortion_model="plumb_bob", d=[0.1, -0.05, 0.001, 0.002, 0.01],
                k=[500.0, 0, 319.5, 0, 505.0, 239.5, 0, 0, 1])
    base.update(fields)
    return CameraInfo(**base)


def test_camera_info_plumb_bob() -> None:
    model = camera_model(camera_info(), 640, 480)
    np.testing.assert_allclose(model.dist, [0.1, -0.05, 0.001, 0.002, 0.01])
    assert model.K[0, 0] == 500.0 and model.K[1, 1] == 505.0 and not model.assumed


def test_camera_info_rational_polynomial_and_no_distortion() -> None:
    rational = camera_model(camera_info(distortion_model="rational_polynomial", d=[0.1] * 8), 640, 480)
    assert rational.dist.size == 8
    plain = camera_model(camera_info(distortion_model="", d=[]), 640, 480)
    assert not plain.has_distortion


def test_camera_info_scaled_to_the_image() -> None:
    model = camera_model(camera_info(), 320, 240)
    np.testing.assert_allclose(model.K[:2], [[250.0, 0, 159.75], [0, 252.5, 119.75]])


@pytest.mark.parametrize("fields,match", [
    ({"distortion_model": "equidistant", "d": [0.1, 0.0, 0.0, 0.0]}, "not supported"),
    ({"k": [0.0] * 9}, "camera matrix"),
])
def test_unusable_camera_info_is_refused(fields: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        camera_model(camera_info(**fields), 640, 480)


def test_latest_frame_keeps_only_the_newest() -> None:
    slot = LatestFrame()
    assert slot.put("a") is False
    assert slot.put("b") is True  # "a" was never taken: dropped
    assert slot.take(timeout=0.1)[0] == "b"
    assert slot.take(timeout=0.05) is None
    assert slot.put("c") is False


def test_latest_frame_wakes_a_waiting_worker() -> None:
    slot = LatestFrame()
    got = []
    worker = threading.Thread(target=lambda: got.append(slot.take(timeout=5.0)))
    worker.start()
    time.sleep(0.05)
    slot.put("frame")
    worker.join(timeout=2.0)
    assert got and got[0][0] == "frame"
    closer = threading.Thread(target=lambda: got.append(slot.take(timeout=5.0)))
    closer.start()
    slot.close()
    closer.join(timeout=2.0)
    assert not closer.is_alive() and got[-1] is None


def _depth_at(sec: int, nanosec: int) -> Image:
    return Image(header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="depth"), encoding="16UC1")


def test_depth_buffer_pairs_the_nearest_stamp_within_the_offset() -> None:
    buffer = DepthBuffer()
    for nanosec in (0, 40_000_000, 100_000_000):
        buffer.add(_depth_at(10, nanosec))
    stamp = 10 * 10**9 + 45_000_000
    assert buffer.nearest(stamp, max_offset_s=0.05, wait_s=0.0).header.stamp.nanosec == 40_000_000
    assert buffer.nearest(stamp + 10**9, max_offset_s=0.05, wait_s=0.05) is None  # too far from all


def test_depth_buffer_waits_for_a_depth_image_that_comes_after_the_colour_image() -> None:
    buffer = DepthBuffer()
    stamp = 20 * 10**9
    late = threading.Timer(0.1, lambda: buffer.add(_depth_at(20, 0)))
    late.start()
    started = time.monotonic()
    found = buffer.nearest(stamp, max_offset_s=0.01, wait_s=5.0)
    late.join()
    assert found is not None and found.header.stamp.sec == 20
    assert time.monotonic() - started < 2.0  # woken by the arrival, not by the timeout


def test_frame_stats_windows_and_diagnostics() -> None:
    now = [100.0]
    stats = FrameStats(clock=lambda: now[0])
    for _ in range(10):
        stats.received()
    for _ in range(7):
        stats.dropped()
    stats.rejected()
    stats.processed(0.2, 150.0, 2)
    stats.processed(0.4, 170.0, 1)
    now[0] += 2.0
    window = stats.take_window()
    assert (window.input_rate_hz, window.output_rate_hz) == (5.0, 1.0)
    assert np.isclose(window.latency_mean_ms, 300.0) and np.isclose(window.latency_max_ms, 400.0)
    assert (window.dropped_total, window.rejected_total, window.people_last) == (7, 1, 1)
    status = diagnostic_array(Time(sec=5), "pose3d", window, "cpu", "camera_info").status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and values["frames_dropped"] == "7" and values["device"] == "cpu"
    now[0] += 1.0
    idle = stats.take_window()
    assert idle.input_rate_hz == 0.0 and idle.processed_total == 2
    assert diagnostic_array(Time(), "pose3d", idle, "cpu", "x").status[0].level == DiagnosticStatus.WARN
