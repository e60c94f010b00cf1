"""Transforms from TF for the nodes: ``TransformLookup(node).lookup(target, source, stamp, timeout_s)``.

tf2_ros (``Buffer`` + ``TransformListener``) where it is importable, as on every ROS 2 install; the
PyPI wheels have no tf2_ros, so there the same subscriptions (``/tf``, ``/tf_static`` with the
listener's QoS) feed ``ros/tf_buffer.TransformBuffer``. Either way a failed lookup raises
``TransformError`` with tf2's reason (no chain, extrapolation into the future or past), and the
result is a 4x4 numpy matrix ``target_from_source``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time as RosTime

from ros2_ctxpose.ros.tf_buffer import TransformBuffer, TransformError, transform_matrix

__all__ = ["TransformError", "TransformLookup"]

#: tf2_ros' listener QoS (DynamicListenerQoS / StaticListenerQoS).
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
#: How often a lookup without tf2_ros looks again while it waits for a transform.
_POLL_S = 0.005


def _stamp_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class TransformLookup:
    """Listens to TF on ``node`` from construction until ``destroy``."""

    def __init__(self, node: Node, cache_s: float = 10.0) -> None:
        self._node = node
        self._subscriptions: list[Any] = []
        try:
            import tf2_ros
        except ImportError:
            self._tf2: Any = None
            self._buffer = TransformBuffer(cache_s)
            from tf2_msgs.msg import TFMessage

            self._subscriptions = [
                node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS),
                node.create_subscription(TFMessage, "/tf_static", self._on_tf_static, TF_STATIC_QOS),
            ]
        else:
            self._tf2 = tf2_ros.Buffer(cache_time=Duration(seconds=cache_s), node=node)
            self._listener = tf2_ros.TransformListener(self._tf2, node)

    @property
    def uses_tf2(self) -> bool:
        return self._tf2 is not None

    def lookup(self, target: str, source: str, stamp: Time, timeout_s: float = 0.0) -> np.ndarray:
        """``target_from_source`` (4x4) at ``stamp`` (zero = the newest available), waiting up to
        ``timeout_s`` for it to arrive; ``TransformError`` saying why there is none."""
        if self._tf2 is not None:
            import tf2_ros

            try:
                found = self._tf2.lookup_transform(
                    target, source, RosTime.from_msg(stamp), timeout=Duration(seconds=timeout_s)
                )
            except tf2_ros.TransformException as exc:
                raise TransformError(str(exc)) from None
            t, q = found.transform.translation, found.transform.rotation
            return transform_matrix((t.x, t.y, t.z), (q.w, q.x, q.y, q.z))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._buffer.lookup(target, source, _stamp_ns(stamp))
            except TransformError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(_POLL_S)

    def destroy(self) -> None:
        """Stop listening."""
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []
        if self._tf2 is not None:
            self._listener.unregister()

    def _add(self, msg: Any, static: bool) -> None:
        for tf in msg.transforms:
            t, q = tf.transform.translation, tf.transform.rotation
            try:
                self._buffer.add(
                    tf.header.frame_id,
                    tf.child_frame_id,
                    _stamp_ns(tf.header.stamp),
                    (t.x, t.y, t.z),
                    (q.x, q.y, q.z, q.w),
                    static=static,
                )
            except ValueError as exc:
                self._node.get_logger().warning(f"ignoring a TF transform: {exc}", throttle_duration_sec=10.0)

    def _on_tf(self, msg: Any) -> None:
        self._add(msg, static=False)

    def _on_tf_static(self, msg: Any) -> None:
        self._add(msg, static=True)
