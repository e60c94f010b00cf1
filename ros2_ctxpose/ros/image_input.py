"""pose3d_node's camera image subscription: its QoS, lost-message counts, and the fall-back to
best effort for best-effort cameras.

The image is subscribed RELIABLE (keep-last 1) by default, and best effort only when a camera
needs it. Why: with Fast DDS's shared-memory transport, a best-effort reader of large fragmented
samples from two writers at once grows without limit (native memory, in the middleware's receive
path: 1920x1080 bgr8 from two 60 Hz publishers took pose3d_node from 0.9 to 3.3 GB in 60 s). A
bare best-effort subscriber in a plain script grows the same way, with or without the node's
frame gate; a reliable reader under the same load, or a best-effort one on UDP only, stays flat
(measured with benchmarks/node_stress.py --publishers 2 and the experiment described in
docs/NODE.md). A reliable keep-last-1 reader costs the camera nothing more: its history still
holds only the newest frame, so frames the node does not take are replaced, never queued, and
a reliable keep-last writer never blocks on it.

A reliable reader does not match a best-effort publisher (most camera drivers publish with the
sensor-data QoS). When one appears, the middleware reports the incompatible reliability; the
subscription is then made again best effort (logged once), which matches every camera.
``qos_overrides.<image>.subscription.reliability`` still sets the starting reliability.
"""

from __future__ import annotations

from typing import Any

from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

from ros2_ctxpose.ros.diagnostics import FrameStats
from ros2_ctxpose.ros.frame_worker import FrameWorker


def image_qos(reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE) -> QoSProfile:
    """The image's QoS: only the newest sample is kept by the middleware, since only the newest is
    ever processed (see FrameGate); reliable unless a best-effort camera needs otherwise. A new
    profile each time (rclpy applies qos_overrides to the profile it is given)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability, durability=DurabilityPolicy.VOLATILE
    )


IMAGE_QOS_OVERRIDES = QoSOverridingOptions([QoSPolicyKind.RELIABILITY])


class ImageInput:
    """The image subscription of one activation (see the module docstring)."""

    def __init__(self, node: LifecycleNode, msg_type: type, topic: str, worker: FrameWorker, stats: FrameStats):
        self._node, self._msg_type, self._topic, self._worker, self._stats = node, msg_type, topic, worker, stats
        self._fallback_timer: Any = None
        self.subscription = self._subscribe(image_qos(), IMAGE_QOS_OVERRIDES)

    @property
    def reliability(self) -> ReliabilityPolicy:
        return self.subscription.qos_profile.reliability

    def destroy(self) -> None:
        if self._fallback_timer is not None:
            self._node.destroy_timer(self._fallback_timer)
            self._fallback_timer = None
        self._node.destroy_subscription(self.subscription)

    def _subscribe(self, qos: QoSProfile, overrides: QoSOverridingOptions | None) -> Any:
        node, worker = self._node, self._worker
        options: dict[str, Any] = dict(raw=True, callback_group=worker.gate, qos_overriding_options=overrides)
        events = SubscriptionEventCallbacks(
            message_lost=lambda info: self._stats.lost(int(info.total_count_change)),
            incompatible_qos=self._on_incompatible_qos,
        )
        try:
            subscription = node.create_subscription(
                self._msg_type, self._topic, worker.on_image, qos, event_callbacks=events, **options
            )
            self._stats.lost_supported()
        except UnsupportedEventTypeError:
            node.get_logger().info(
                "this RMW does not report lost messages or incompatible QoS: messages_lost stays n/a", once=True
            )
            subscription = node.create_subscription(self._msg_type, self._topic, worker.on_image, qos, **options)
        return subscription

    def _on_incompatible_qos(self, info: QoSRequestedIncompatibleQoSInfo) -> None:
        """A publisher the subscription cannot match: for reliability, switch to best effort (from
        a timer, not inside the subscription's own event callback)."""
        if info.last_policy_kind != QoSPolicyKind.RELIABILITY or self.reliability != ReliabilityPolicy.RELIABLE:
            return
        if self._fallback_timer is None:
            self._fallback_timer = self._node.create_timer(0.0, self._fall_back)

    def _fall_back(self) -> None:
        self._node.destroy_timer(self._fallback_timer)
        self._fallback_timer = None
        if self.reliability != ReliabilityPolicy.RELIABLE:
            return
        self._node.get_logger().info(
            f"a best-effort publisher on {self._topic}: subscribing best effort (reliable is the default, "
            "see docs/NODE.md 'Image QoS')",
            once=True,
        )
        old = self.subscription
        self.subscription = self._subscribe(image_qos(ReliabilityPolicy.BEST_EFFORT), None)
        self._node.destroy_subscription(old)
