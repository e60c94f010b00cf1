"""TransformLookup (ros/tf_lookup.py) as pose3d_fusion uses it, over real DDS: another process broadcasts a static transform (latched on /tf_static) and a
moving one (on /tf, 20 Hz); lookups here compose them at a stamp between two broadcasts and say why
when they cannot (extrapolation, unknown frame)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("tf2_messages")

#: The broadcaster: map -> base moves along x at 1 m/s (x = t, stamps on the ROS clock); base ->
#: camera is static (0.5 m up). It sends the static transform once, before any lookup runs.
BROADCASTER = textwrap.dedent("""
    import time, rclpy
    from geometry_msgs.msg import TransformStamped
    from ros2_ctxpose.ros.tf_frames import tf_sender
    rclpy.init()
    node = rclpy.create_node("tf_lookup_broadcaster")
    send_static, send = tf_sender(node, static=True), tf_sender(node)
    def t(parent, child, stamp, x, z):
        msg = TransformStamped()
        msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, parent, child
        msg.transform.translation.x, msg.transform.translation.z = x, z
        msg.transform.rotation.w = 1.0
        return msg
    send_static([t("base", "camera", node.get_clock().now().to_msg(), 0.0, 0.5)])
    while rclpy.ok():
        now = node.get_clock().now()
        send([t("map", "base", now.to_msg(), now.nanoseconds * 1e-9 % 100000.0, 0.0)])
        rclpy.spin_once(node, timeout_sec=0.05)
""")


def test_static_and_moving_transforms_over_dds(context, tmp_path) -> None:
    import rclpy
    from builtin_interfaces.msg import Time
    from rclpy.executors import SingleThreadedExecutor

    from ros2_ctxpose.ros.tf_lookup import TransformError, TransformLookup

    def at(ns: int) -> Time:
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def lookup_or_reason(target: str, source: str, stamp_ns: int):  # noqa: ANN202
        try:
            return lookup.lookup(target, source, at(stamp_ns)), ""
        except TransformError as exc:
            return None, str(exc)

    log = (tmp_path / "broadcaster.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", BROADCASTER], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    node = rclpy.create_node("tf_lookup_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        lookup = TransformLookup(node)
        deadline = time.monotonic() + 60.0
        answer = (None, "")
        while answer[0] is None:
            assert process.poll() is None, (tmp_path / "broadcaster.log").read_text()
            assert time.monotonic() < deadline, f"no transform map <- camera: {answer[1]}"
            executor.spin_once(timeout_sec=0.05)
            answer = lookup_or_reason("map", "camera", 0)
        for _ in range(20):  # a second of moving transforms
            executor.spin_once(timeout_sec=0.05)

        now = node.get_clock().now().nanoseconds
        stamp = now - 300_000_000  # between two broadcasts, inside the kept history
        matrix, reason = lookup_or_reason("map", "camera", stamp)
        assert reason == "" and matrix is not None
        expected_x = stamp * 1e-9 % 100000.0
        np.testing.assert_allclose(matrix[:3, 3], [expected_x, 0.0, 0.5], atol=1e-6)  # interpolated at the stamp

        matrix, reason = lookup_or_reason("map", "camera", now + 5_000_000_000)
        assert matrix is None and "extrapolation into the future" in reason.lower(), reason
        matrix, reason = lookup_or_reason("map", "nowhere", stamp)
        assert matrix is None and "nowhere" in reason, reason
        lookup.destroy()
    finally:
        executor.shutdown()
        node.destroy_node()
        process.terminate()
        process.wait(timeout=10)
        log.close()
