"""The ROS layer's pure conversions: pipeline results -> Skeleton3DArray, markers, REP 155 TF frames;
CameraInfo -> CameraModel; the newest-frame slot, the input rate limiter, stamps read from CDR bytes;
diagnostics."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from transforms3d.quaternions import quat2mat  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from ros2_ctxpose.core.body_frame import rep155_rotation as body_rotation  # noqa: E402
from ros2_ctxpose.core.pipeline import Person3D  # noqa: E402
from ros2_ctxpose.core.results import ROOT_FROM_DEPTH, ROOT_SCALE_UNKNOWN  # noqa: E402
from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES, index_of  # noqa: E402
from ros2_ctxpose.msg import Skeleton3D  # noqa: E402
from ros2_ctxpose.output.content import REP155_LINKS  # noqa: E402
from ros2_ctxpose.ros.camera_info import camera_model  # noqa: E402
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array  # noqa: E402
from ros2_ctxpose.ros.frame_intake import (  # noqa: E402
    DepthBuffer,
    FrameGate,
    FrameSequence,
    LatestFrame,
    RateLimiter,
    cdr_stamp_ns,
)
from ros2_ctxpose.ros.markers import marker_array  # noqa: E402
from ros2_ctxpose.ros.messages import skeleton_array  # noqa: E402
from ros2_ctxpose.ros.tf_frames import frame_transforms  # noqa: E402

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123), frame_id="cam_optical")

# An upright person facing the camera, 4 m away, in the optical frame (x right, y down, z forward):
# their left is the camera's +x, their head is -y.
STANDING = {
    "pelvis": (0.0, 0.0, 4.0),
    "right_hip": (-0.12, 0.0, 4.0),
    "right_knee": (-0.12, 0.45, 4.0),
    "right_ankle": (-0.12, 0.88, 4.0),
    "left_hip": (0.12, 0.0, 4.0),
    "left_knee": (0.12, 0.45, 4.0),
    "left_ankle": (0.12, 0.88, 4.0),
    "spine": (0.0, -0.23, 4.0),
    "thorax": (0.0, -0.48, 4.0),
    "neck_nose": (0.0, -0.6, 3.92),
    "head_top": (0.0, -0.75, 4.0),
    "left_shoulder": (0.16, -0.46, 4.0),
    "left_elbow": (0.2, -0.2, 4.0),
    "left_wrist": (0.22, 0.04, 4.0),
    "right_shoulder": (-0.16, -0.46, 4.0),
    "right_elbow": (-0.2, -0.2, 4.0),
    "right_wrist": (-0.22, 0.04, 4.0),
}
JOINTS = np.array([STANDING[name] for name in H36M17])


def person(joints: np.ndarray = JOINTS, source: str = ROOT_FROM_DEPTH, track_id: int = 1) -> Person3D:
    return Person3D(
        track_id=track_id,
        score=0.9,
        bbox_xyxy=np.array([10.0, 20.0, 110.0, 320.0]),
        keypoints_2d=np.arange(51, dtype=float).reshape(17, 3),
        joints_3d=joints,
        joints_uv=np.arange(34, dtype=float).reshape(17, 2),
        joints_conf=np.linspace(0, 1, 17),
        root=joints[0].copy(),
        root_source=source,
    )


def test_skeleton_array_carries_everything() -> None:
    msg = skeleton_array(
        HEADER,
        [person(track_id=4), person(JOINTS + [1, 0, 0], ROOT_SCALE_UNKNOWN, 9)],
        Duration(sec=0, nanosec=250_000_000),
    )
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


def test_root_source_codes_are_the_message_constants() -> None:
    """The ROS-free content's codes (output.content) are Skeleton3D.msg's ROOT_* constants."""
    from ros2_ctxpose.output.content import ROOT_SOURCE_CODES

    assert ROOT_SOURCE_CODES == {
        "intrinsics": Skeleton3D.ROOT_FROM_INTRINSICS,
        "depth": Skeleton3D.ROOT_FROM_DEPTH,
        "scale_unknown": Skeleton3D.ROOT_SCALE_UNKNOWN,
        "floor": Skeleton3D.ROOT_FROM_FLOOR,
        "views": Skeleton3D.ROOT_FROM_VIEWS,
    }


def test_markers_per_person() -> None:
    msg = skeleton_array(HEADER, [person(track_id=1), person(JOINTS + [1, 0, 0], track_id=2)], Duration())
    markers = marker_array(msg, Duration(sec=0, nanosec=500_000_000)).markers
    assert [(m.ns, m.id, m.type) for m in markers] == [
        ("body_1", 0, Marker.SPHERE_LIST),
        ("body_1", 1, Marker.LINE_LIST),
        ("body_2", 0, Marker.SPHERE_LIST),
        ("body_2", 1, Marker.LINE_LIST),
    ]
    joints, bones = markers[0], markers[1]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in joints.points], JOINTS)
    assert len(bones.points) == 2 * len(H36M17_BONES)
    assert all(m.lifetime.nanosec == 500_000_000 and m.header == HEADER for m in markers)
    assert joints.color == bones.color and markers[0].color != markers[2].color
    again = marker_array(skeleton_array(HEADER, [person(track_id=2)], Duration()), Duration()).markers
    assert again[0].color == markers[2].color, "a track keeps its colour across frames"


def plain(msg: object) -> object:
    """A message as nested dicts and lists (for ``np.testing.assert_equal``: NaN equals NaN)."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, list | tuple):
        return [plain(v) for v in msg]
    return np.asarray(msg).tolist() if not isinstance(msg, str) else msg


@pytest.mark.parametrize("joint_frames", [False, True])
def test_the_node_and_the_recording_write_the_same_messages(tmp_path, joint_frames: bool) -> None:
    """One output layer: for the same people, the recording's CDR on every topic decodes (with
    rclpy) to exactly what a subscriber gets from the node's messages (ros converters, serialized by
    rclpy), in a namespace as without. (Not the bytes themselves: rclpy leaves the CDR alignment
    padding uninitialised.)"""
    pytest.importorskip("mcap_ros2", reason="mcap-ros2-support is not installed")
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray

    from ros2_ctxpose.msg import Skeleton3DArray
    from ros2_ctxpose.output.recording import McapRecorder

    rng = np.random.default_rng(5)
    noisy = JOINTS + rng.normal(scale=0.01, size=JOINTS.shape)
    hidden = JOINTS.copy()
    hidden[3] = np.nan  # an ankle not placed: no markers, no TF, but in the Skeleton3DArray
    people = [person(track_id=3), person(noisy, ROOT_SCALE_UNKNOWN, 8), person(hidden, track_id=11)]
    people[1].placement_note = "feet not visible"
    people[1].root_cov = np.diag([0.01, 0.02, 0.3])
    latency, lifetime = Duration(sec=0, nanosec=40_000_000), Duration(sec=1, nanosec=250_000_000)
    skeletons = skeleton_array(HEADER, people, latency)
    node = {
        "/robot/people": skeletons,
        "/robot/people/markers": marker_array(skeletons, lifetime),
        "/tf": TFMessage(transforms=frame_transforms(skeletons, joint_frames)),
    }
    path = tmp_path / "agree.mcap"
    stamp_ns = HEADER.stamp.sec * 10**9 + HEADER.stamp.nanosec
    with McapRecorder(
        path, pose_topic="/robot/people", marker_lifetime_ns=1_250_000_000, joint_frames=joint_frames
    ) as recorder:
        recorder.write(stamp_ns, HEADER.frame_id, people, latency_ns=40_000_000)
    with path.open("rb") as f:
        recorded = {channel.topic: bytes(message.data) for _, channel, message in make_reader(f).iter_messages()}
    types = {"/robot/people": Skeleton3DArray, "/robot/people/markers": MarkerArray, "/tf": TFMessage}
    assert len(node["/robot/people/markers"].markers) == 4 and len(node["/tf"].transforms) == (
        34 if joint_frames else 2
    )
    for topic, msg in node.items():
        sent = deserialize_message(serialize_message(msg), types[topic])  # as a subscriber gets it
        np.testing.assert_equal(plain(deserialize_message(recorded[topic], types[topic])), plain(sent), err_msg=topic)


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
    msg = skeleton_array(HEADER, [person(joints, track_id=7)], Duration())
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
        np.testing.assert_allclose(
            rotation @ [local.x, local.y, local.z] + joints[0], joints[index_of(H36M17, name)], atol=1e-9
        )


def test_rep155_link_names() -> None:
    assert REP155_LINKS["left_wrist"] == "l_wrist" and REP155_LINKS["right_ankle"] == "r_ankle"
    assert set(REP155_LINKS) == set(H36M17) - {"pelvis"}


def camera_info(**fields) -> CameraInfo:
    base = dict(
        width=640,
        height=480,
        distortion_model="plumb_bob",
        d=[0.1, -0.05, 0.001, 0.002, 0.01],
        k=[500.0, 0, 319.5, 0, 505.0, 239.5, 0, 0, 1],
    )
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


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"distortion_model": "equidistant", "d": [0.1, 0.0, 0.0, 0.0]}, "not supported"),
        ({"k": [0.0] * 9}, "camera matrix|focal length"),
    ],
)
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


def test_depth_buffer_pairs_the_nearest_stamp_within_the_offset() -> None:
    buffer = DepthBuffer()
    for nanosec in (0, 40_000_000, 100_000_000):
        buffer.add(10 * 10**9 + nanosec, f"depth {nanosec}")
    stamp = 10 * 10**9 + 45_000_000
    assert buffer.nearest(stamp, max_offset_s=0.05, wait_s=0.0) == "depth 40000000"
    assert buffer.nearest(stamp + 10**9, max_offset_s=0.05, wait_s=0.05) is None  # too far from all
    buffer.clear()
    assert buffer.nearest(stamp, max_offset_s=0.05, wait_s=0.0) is None


def test_depth_buffer_waits_for_a_depth_image_that_comes_after_the_colour_image() -> None:
    buffer = DepthBuffer()
    stamp = 20 * 10**9
    late = threading.Timer(0.1, lambda: buffer.add(stamp, "late depth"))
    late.start()
    started = time.monotonic()
    found = buffer.nearest(stamp, max_offset_s=0.01, wait_s=5.0)
    late.join()
    assert found == "late depth"
    assert time.monotonic() - started < 2.0  # woken by the arrival, not by the timeout


@pytest.mark.parametrize("msg_type", [Image, CompressedImage, CameraInfo])
def test_stamps_are_read_from_the_serialized_bytes(msg_type) -> None:
    """The image callback decides on a frame from its CDR bytes: the stamp must be the header's."""
    msg = msg_type(header=Header(stamp=Time(sec=1_700_000_123, nanosec=456_789_000), frame_id="cam"))
    raw = serialize_message(msg)
    assert cdr_stamp_ns(raw) == 1_700_000_123 * 10**9 + 456_789_000
    assert cdr_stamp_ns(serialize_message(msg_type())) is None  # zero stamp: use the arrival time
    assert cdr_stamp_ns(b"\x00\x01\x00") is None and cdr_stamp_ns(b"\x00\x0a" + bytes(20)) is None


@pytest.mark.parametrize(
    "camera_hz,limit_hz,expected_hz",
    [
        (30.0, 15.0, 15.0),
        (30.0, 10.0, 10.0),
        (30.0, 7.0, 7.0),
        (30.0, 40.0, 30.0),
        (120.0, 5.0, 5.0),
        (30.0, 0.0, 30.0),
    ],
)
def test_rate_limiter_keeps_the_asked_rate(camera_hz: float, limit_hz: float, expected_hz: float) -> None:
    """As the node uses it: when the limiter allows, the gate opens and the newest frame not yet
    taken is taken (the one waiting in the middleware, else the next to arrive); frames jitter."""
    limiter = RateLimiter()
    rng = np.random.default_rng(0)
    n = int(camera_hz * 20)
    arrivals = 100.0 + np.arange(n) / camera_hz + rng.uniform(-0.002, 0.002, n)
    taken: list[float] = []
    now, last = float(arrivals[0]), -1
    while True:
        now += limiter.wait_s(now, limit_hz)  # the gate opens
        waiting = np.flatnonzero(arrivals[last + 1 :] <= now)
        index = last + 1 + (waiting[-1] if waiting.size else 0)  # newest waiting, else the next
        if index >= n:
            break
        now = max(now, float(arrivals[index]))
        taken.append(float(arrivals[index]))
        limiter.taken(now, limit_hz)  # processing takes no time here
        last = index
    assert len(taken) / 20.0 == pytest.approx(expected_hz, rel=0.05)
    if limit_hz:  # never a burst: at most one camera period closer than the limit
        assert min(np.diff(taken)) > 1.0 / min(limit_hz, camera_hz) - 1.0 / camera_hz - 0.005


def test_rate_limiter_restarts_after_a_pause_or_when_time_goes_back() -> None:
    limiter = RateLimiter()
    assert limiter.wait_s(50.0, 1.0) == 0.0
    limiter.taken(50.0, 1.0)
    assert limiter.wait_s(50.25, 1.0) == pytest.approx(0.75)
    limiter.taken(60.0, 1.0)  # long after it was due: a new schedule from there, no catching up
    assert limiter.wait_s(60.0, 1.0) == pytest.approx(1.0)
    limiter.taken(10.0, 1.0)  # time went back (a bag played again): no stall
    assert limiter.wait_s(10.0, 1.0) == pytest.approx(1.0)
    assert limiter.wait_s(10.0, 0.0) == 0.0, "0 = no limit"


class _Entity:
    pass


def test_frame_gate_opens_now_or_at_a_time_and_wakes_the_executor() -> None:
    wakes = []
    gate, frames, events = FrameGate(wake=lambda: wakes.append(time.monotonic())), _Entity(), _Entity()
    gate.frames = frames
    try:
        # Closed: neither the frames nor the subscription's QoS events are waited on (with Fast DDS
        # the events of a reader holding untaken data would wake the executor at once, forever).
        assert not gate.can_execute(frames) and not gate.can_execute(events)
        assert not gate.beginning_execution(frames)
        before = time.monotonic()
        gate.open()
        assert gate.can_execute(frames) and gate.beginning_execution(frames) and gate.can_execute(events)
        assert len(wakes) == 1 and gate.opened_at >= before
        gate.open()
        assert len(wakes) == 1, "already open: no need to wake the executor again"
        assert gate.beginning_execution(frames), "open until the worker closes it"
        gate.close()
        assert not gate.can_execute(frames)
        when = time.monotonic() + 0.1
        gate.open_at(when)
        assert not gate.is_open
        wait_for(lambda: gate.is_open, 5.0)
        assert wakes[-1] >= when and gate.opened_at >= when
        gate.close()
        gate.open_at(time.monotonic() + 0.2)
        gate.close()  # the worker was ready before the window: the schedule is void
        time.sleep(0.4)
        assert not gate.is_open
    finally:
        gate.stop()
    gate.open()
    assert not gate.is_open, "stopped for good"


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_latest_frame_discards_stale_frames() -> None:
    slot = LatestFrame()
    slot.put("taken before the window opened")
    since = time.monotonic()
    threading.Timer(0.05, lambda: slot.put("fresh")).start()
    assert slot.take(timeout=5.0, since=since)[0] == "fresh"
    assert slot.stale == 1


def test_skipped_frames_and_the_camera_period_come_from_sequence_numbers() -> None:
    sequence = FrameSequence()
    gid_a, gid_b = {"data": b"a" * 16}, {"data": b"b" * 16}

    def info(seq: int, gid: dict) -> dict:  # a 30 Hz camera: source stamps follow the sequence
        return {"publication_sequence_number": seq, "publisher_gid": gid, "source_timestamp": 10**12 + seq * 33_333_333}

    assert sequence.count(info(1, gid_a)) == 0 and sequence.period_s is None
    assert sequence.count(info(2, gid_a)) == 0
    assert sequence.count(info(9, gid_a)) == 6
    assert sequence.period_s == pytest.approx(1 / 30, rel=1e-3)
    assert sequence.count(info(5, gid_b)) == 0, "each publisher counts on its own"
    assert sequence.count(info(7, gid_b)) == 1
    assert sequence.count(info(1, gid_a)) == 0, "a restarted publisher counts afresh"
    assert sequence.count({"publication_sequence_number": None, "publisher_gid": None}) == 0


def test_frame_stats_windows_and_diagnostics() -> None:
    now = [100.0]
    stats = FrameStats(clock=lambda: now[0])
    for _ in range(10):
        stats.received()
    for _ in range(7):
        stats.dropped()
    stats.rejected()
    stats.throttled(2)
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
    assert values["frames_throttled"] == "2" and values["lifecycle_state"] == "active"
    assert values["messages_lost"] == "n/a", "lost messages are unknown until the RMW is known to report them"
    stats.lost_supported()
    stats.lost(3)
    now[0] += 1.0
    idle = stats.take_window()
    assert idle.input_rate_hz == 0.0 and idle.processed_total == 2 and idle.lost_total == 3
    assert diagnostic_array(Time(), "pose3d", idle, "cpu", "x").status[0].level == DiagnosticStatus.WARN
    # Not active: nothing is expected to arrive, which is no warning.
    inactive = diagnostic_array(Time(), "pose3d", idle, "not loaded", "x", state="unconfigured").status[0]
    assert inactive.level == DiagnosticStatus.OK and "unconfigured" in inactive.message
