"""pose3d_fusion over real DDS: two cameras' Skeleton3DArray publishers, a static and a moving TF,
and the fusion node in its own process. Fused people must appear in the fusion frame where the
person really is, and when one camera stops the output must go on from the other with fewer views.

The cameras' messages are computed here from one known person in ``map`` (what two pose3d_node
instances would publish for a perfectly placed person), so that the fused result has an exact
answer; camera 1 drives past at 1 m/s, and its messages are stamped 0.1 s in the past (processing
latency), so only a transform interpolated at the message's stamp puts it in the right place.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("ctxpose_messages", "tf2_messages")

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "fusion_dds"
STARTUP_TIMEOUT_S = 60.0
TICK_S = 0.05
LAG_TICKS = 2  # messages are stamped this many ticks before they are sent
SPEED_MPS = 1.0

#: Optical frame looking along world -x (camera 0) and along world -y (camera 1), from 4 m away.
R_CAM0 = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]).T
R_CAM1 = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]).T
T_CAM0 = np.array([4.0, 0.0, 1.5])
T_CAM1_START = np.array([-1.0, 4.0, 1.5])


def truth() -> np.ndarray:
    rng = np.random.default_rng(0)
    joints = np.array([0.2, -0.1, 1.0]) + rng.uniform([-0.25, -0.15, -0.9], [0.25, 0.15, 0.8], size=(17, 3))
    joints[0] = [0.2, -0.1, 1.0]
    return joints


def camera_pose(camera: int, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(R, T) with X_map = R X_cam + T at time t (camera 1 moves along +x)."""
    if camera == 0:
        return R_CAM0, T_CAM0
    return R_CAM1, T_CAM1_START + [SPEED_MPS * t, 0.0, 0.0]


def transform(parent: str, child: str, stamp: Any, R: np.ndarray, T: np.ndarray) -> Any:
    from geometry_msgs.msg import Quaternion, TransformStamped, Vector3
    from scipy.spatial.transform import Rotation

    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, parent, child
    msg.transform.translation = Vector3(x=float(T[0]), y=float(T[1]), z=float(T[2]))
    x, y, z, w = Rotation.from_matrix(R).as_quat()
    msg.transform.rotation = Quaternion(x=x, y=y, z=z, w=w)
    return msg


def camera_message(camera: int, stamp: Any, t: float) -> Any:
    """camera's Skeleton3DArray of the person at time t, in its optical frame."""
    from std_msgs.msg import Header

    from ros2_ctxpose.core.results import ROOT_FROM_INTRINSICS, Person3D
    from ros2_ctxpose.ros.messages import skeleton_array

    R, T = camera_pose(camera, t)
    joints = (truth() - T) @ R  # rows: R^T (X - T)
    person = Person3D(
        track_id=7,
        score=0.9,
        bbox_xyxy=np.array([10.0, 10.0, 100.0, 300.0]),
        keypoints_2d=np.zeros((17, 3)),
        joints_3d=joints,
        joints_uv=np.zeros((17, 2)),
        joints_conf=np.ones(17),
        root=joints[0],
        root_source=ROOT_FROM_INTRINSICS,
    )
    from builtin_interfaces.msg import Duration

    return skeleton_array(Header(stamp=stamp, frame_id=f"cam{camera}_optical"), [person], Duration())


def wait_until(predicate: Callable[[], Any], spin: Callable[[], None], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        spin()


@pytest.fixture(scope="module")
def fusion_process(tmp_path_factory, ros_environment):
    log_path = tmp_path_factory.mktemp("fusion") / "fusion.log"
    command = [
        sys.executable,
        "-m",
        "ros2_ctxpose.ros.fusion_node",
        "--ros-args",
        "-r",
        f"__ns:=/{NAMESPACE}",
        "-p",
        "autostart:=true",
        "-p",
        "inputs:=[cam0/human/pose3d, cam1/human/pose3d]",
        "-p",
        "fusion_frame:=map",
        "-p",
        "max_wait_s:=0.2",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    yield process, log_path
    process.send_signal(2)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_fused_people_in_the_fusion_frame_and_fewer_views_when_a_camera_stops(context, fusion_process) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.time import Time

    from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray
    from ros2_ctxpose.ros.tf_frames import tf_sender

    process, log_path = fusion_process
    node = rclpy.create_node("fusion_dds_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        cams = [node.create_publisher(Skeleton3DArray, f"/{NAMESPACE}/cam{c}/human/pose3d", 10) for c in (0, 1)]
        send_static, send_tf = tf_sender(node, static=True), tf_sender(node)
        received: list[Skeleton3DArray] = []
        node.create_subscription(Skeleton3DArray, f"/{NAMESPACE}/human/pose3d_fused", received.append, 50)

        def spin() -> None:
            assert process.poll() is None, log_path.read_text()[-3000:]
            executor.spin_once(timeout_sec=0.02)

        wait_until(lambda: all(p.get_subscription_count() for p in cams), spin, STARTUP_TIMEOUT_S, "pose3d_fusion")
        send_static([transform("map", "cam0_optical", Time().to_msg(), R_CAM0, T_CAM0)])

        start = time.monotonic()
        stamps: list[tuple[Any, float]] = []

        def tick(cameras: tuple[int, ...]) -> None:
            """Publish the moving TF now, and the cameras' messages of LAG_TICKS ticks ago."""
            t = time.monotonic() - start
            now = node.get_clock().now().to_msg()
            send_tf([transform("map", "cam1_optical", now, *camera_pose(1, t))])
            stamps.append((now, t))
            if len(stamps) > LAG_TICKS:
                stamp, then = stamps[-1 - LAG_TICKS]
                for c in cameras:
                    cams[c].publish(camera_message(c, stamp, then))
            deadline = time.monotonic() + TICK_S
            while time.monotonic() < deadline:
                spin()

        def phase(cameras: tuple[int, ...], seconds: float) -> list[Skeleton3DArray]:
            first = len(received)
            for _ in range(int(seconds / TICK_S)):
                tick(cameras)
            return received[first:]

        phase((0, 1), 1.0)  # TF and discovery settle
        both = phase((0, 1), 2.0)
        one = phase((0,), 2.0)[5:]  # the first instants may still hold camera 1's last messages

        expected = truth()
        for name, messages, views in (("both cameras", both, 2), ("camera 0 alone", one, 1)):
            assert len(messages) >= 10, f"{name}: only {len(messages)} fused messages\n{log_path.read_text()[-2000:]}"
            for msg in messages:
                assert msg.header.frame_id == "map"
                assert len(msg.skeletons) == 1, (name, [s.placement_note for s in msg.skeletons])
                person = msg.skeletons[0]
                assert person.root_source == Skeleton3D.ROOT_FROM_VIEWS
                assert person.placement_note == f"fused from {views} view{'s' if views > 1 else ''}", name
                joints = np.array([[p.x, p.y, p.z] for p in person.joint_positions])
                np.testing.assert_allclose(joints, expected, atol=1e-3, err_msg=name)
                assert np.isfinite(np.asarray(person.root_covariance)).all()
        assert len({m.skeletons[0].id for m in both + one}) == 1, "the fused id survives camera 1 stopping"
    finally:
        executor.shutdown()
        node.destroy_node()
