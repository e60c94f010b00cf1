"""pose3d_fusion: the Skeleton3DArray outputs of N cameras in, one fused Skeleton3DArray in a common frame out.

A lifecycle node like pose3d_node (configure creates the outputs and the TF listener, activate
subscribes, deactivate unsubscribes; ``autostart`` for ``ros2 run``). Per camera topic (parameter
``inputs``, relative names, e.g. ``cam0/human/pose3d``) every message is queued by its stamp;
:class:`~ros2_ctxpose.core.view_sync.InstantGrouper` releases an instant when every camera has
delivered (or moved past it), or after ``max_wait_s`` with whatever arrived, so a late or dead
camera degrades the output to fewer views and never stalls it. Each message's people are moved
from its header frame into ``fusion_frame`` with the transform at the message's stamp
(:mod:`ros2_ctxpose.ros.tf_lookup`; an instant waits up to ``tf_wait_s`` for transforms that come
after the skeletons, then leaves out the cameras still without one, with a throttled warning), associated and fused (:mod:`ros2_ctxpose.core.fusion`), and
published on ``human/pose3d_fused`` (root_source ROOT_FROM_VIEWS, header frame
``fusion_frame``, the instant's stamp), with markers and REP 155 body frames in that frame.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.task import Future
from rclpy.time import Time as RosTime
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ros2_ctxpose.core.config import field_problem, setting
from ros2_ctxpose.core.fusion import (
    DEFAULT_GATE,
    METHODS,
    FusedIdentities,
    View,
    fuse_views,
    fused_person3d,
    view_from_camera,
)
from ros2_ctxpose.core.view_sync import Instant, InstantGrouper
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.ros.lifecycle_main import run_lifecycle_node
from ros2_ctxpose.ros.markers import marker_array
from ros2_ctxpose.ros.messages import people_from_message, skeleton_array
from ros2_ctxpose.ros.parameters import check_frame, descriptor
from ros2_ctxpose.ros.tf_frames import frame_transforms, tf_sender
from ros2_ctxpose.ros.tf_lookup import TransformError, TransformLookup

OUTPUT = "human/pose3d_fused"
#: Camera inputs: best effort (matches reliable and best-effort publishers; a message lost on the
#: way costs one view of one instant, which the fusion tolerates, while a retransmission would
#: arrive after its instant was fused). Overridable with the standard qos_overrides parameters.
INPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
#: Seconds between repeats of the same warning.
WARN_PERIOD_S = 10.0


def _check_inputs(value: tuple[str, ...]) -> str | None:
    if not value or any(not topic.strip() for topic in value):
        return f"must list at least one topic and no empty names, got {list(value)!r}"
    if len(set(value)) != len(value):
        return f"must not list a topic twice, got {list(value)!r}"
    return None


@dataclass(frozen=True)
class FusionSettings:
    """The parameters of pose3d_fusion."""

    inputs: tuple[str, ...] = setting(
        ("cam0/human/pose3d", "cam1/human/pose3d"),
        "Skeleton3DArray topics of the cameras (relative names resolve in the node's namespace).",
        check=_check_inputs,
    )
    fusion_frame: str = setting(
        "map", "Common frame of the fused output (every camera's frame must reach it in TF).", check=check_frame
    )
    stamp_tolerance_s: float = setting(
        0.02, "Messages whose stamps differ by at most this belong to one instant.", dynamic=True, range=(0.0, 1.0)
    )
    max_wait_s: float = setting(
        0.1,
        "Longest an instant waits for the other cameras after its first message arrived; then it is fused "
        "with whatever arrived.",
        dynamic=True,
        range=(0.0, 5.0),
    )
    method: str = setting(
        "ray",
        "ray: per-joint information-form fusion with per-view covariances long along each camera's ray; "
        "average: the plain mean (baseline).",
        dynamic=True,
        choices=METHODS,
    )
    gate: float = setting(
        DEFAULT_GATE,
        "Association gate: the largest mean squared Mahalanobis distance per joint between two views of one person.",
        dynamic=True,
        range=(1.0, 1e6),
    )
    tf_wait_s: float = setting(
        0.1,
        "Longest a released instant waits for its cameras' transforms at their stamps (TF may arrive "
        "after the skeletons); then it is fused without the cameras still missing one.",
        dynamic=True,
        range=(0.0, 5.0),
    )
    publish_tf: bool = setting(True, "Publish a body_<id> TF frame per fused person (REP 155).", dynamic=True)
    publish_markers: bool = setting(True, "Publish RViz markers of the fused people.", dynamic=True)
    marker_lifetime_s: float = setting(0.5, "Lifetime of markers.", dynamic=True, range=(0.05, 10.0))
    autostart: bool = setting(False, "Configure and activate at start-up without a lifecycle manager.")


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(FusionSettings)}


def _as_field_value(name: str, value: Any) -> Any:
    """ROS gives string arrays as lists; the table holds tuples."""
    return tuple(value) if isinstance(FIELDS[name].default, tuple) and isinstance(value, list) else value


def validate(params: list[Parameter]) -> SetParametersResult:
    """on-set-parameters callback: refuse the whole set, with the reasons, if any value is invalid."""
    reasons = [
        reason
        for p in params
        if p.name in FIELDS and (reason := field_problem(FIELDS[p.name], _as_field_value(p.name, p.value)))
    ]
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))


class FusionNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pose3d_fusion", **kwargs)
        # Not rclpy's own ``_subscriptions`` (which also holds /clock for use_sim_time).
        self._input_subscriptions: list[Any] = []
        #: Done after the lifecycle shutdown transition: the executable then exits.
        self.finished = Future()
        self._publishers_made: list[Any] = []
        self._timer: Any = None
        self._tf: TransformLookup | None = None
        self._grouper: InstantGrouper[Skeleton3DArray] | None = None
        self._identities = FusedIdentities()
        self._pending: deque[tuple[Instant[Skeleton3DArray], float]] = deque()
        self.add_on_set_parameters_callback(validate)
        for f in FIELDS.values():
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            try:
                self.declare_parameter(f.name, default, descriptor(f))
            except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
                self.get_logger().error(f"parameter {f.name}: {exc}; using the default {default!r}")
                self.declare_parameter(f.name, default, descriptor(f), ignore_override=True)
        self.settings = self._current()
        self._send_tf = tf_sender(self)

    def _current(self) -> FusionSettings:
        return FusionSettings(**{n: _as_field_value(n, self.get_parameter(n).value) for n in FIELDS})

    # ------------------------------------------------------------------ lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.settings = s = self._current()
        try:
            self._tf = TransformLookup(self)
            output = self.resolve_topic_name(OUTPUT)
            self._pose_pub = self.create_lifecycle_publisher(Skeleton3DArray, output, 10)
            self._marker_pub = self.create_lifecycle_publisher(MarkerArray, f"{output}/markers", 10)
            self._publishers_made = [self._pose_pub, self._marker_pub]
        except Exception as exc:  # noqa: BLE001 - any failure is a FAILURE with its reason
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"configured: fusing {len(s.inputs)} cameras into {s.fusion_frame!r} "
            f"(TF: {'tf2_ros' if self._tf.uses_tf2 else 'own /tf listener: tf2_ros is not importable'})"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings = self._current()
        self._grouper = InstantGrouper(len(s.inputs), s.stamp_tolerance_s, s.max_wait_s)
        self._identities = FusedIdentities()
        for index, topic in enumerate(s.inputs):
            self._input_subscriptions.append(
                self.create_subscription(
                    Skeleton3DArray,
                    topic,
                    lambda msg, i=index: self._on_skeletons(i, msg),
                    INPUT_QOS,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        self._timer = self.create_timer(max(s.max_wait_s / 4, 0.005), self._release_instants)
        names = ", ".join(self.resolve_topic_name(t) for t in s.inputs)
        self.get_logger().info(f"active: fusing {names} -> {self.resolve_topic_name(OUTPUT)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.finished.set_result(True)  # main() stops spinning once the transition has answered
        return TransitionCallbackReturn.SUCCESS

    def _unsubscribe(self) -> None:
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        self._input_subscriptions = []
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._grouper = None
        self._pending.clear()

    def _release(self) -> None:
        self._unsubscribe()
        for publisher in self._publishers_made:
            self.destroy_lifecycle_publisher(publisher)
        self._publishers_made = []
        if self._tf is not None:
            self._tf.destroy()
            self._tf = None

    # ------------------------------------------------------------------ data path
    def _on_skeletons(self, index: int, msg: Skeleton3DArray) -> None:
        grouper = self._grouper
        if grouper is None:
            return
        if not grouper.add(index, RosTime.from_msg(msg.header.stamp).nanoseconds, time.monotonic(), msg):
            self.get_logger().warning(
                f"{self.settings.inputs[index]}: a message arrived after its instant was fused; dropped "
                f"({grouper.dropped_late} so far)",
                throttle_duration_sec=WARN_PERIOD_S,
            )
        self._release_instants()

    def _release_instants(self) -> None:
        """Fuse the instants the grouper releases, in stamp order, each once the transforms of its
        cameras are there (or ``tf_wait_s`` after its release, without the cameras still missing one)."""
        grouper = self._grouper
        if grouper is None:
            return
        s = self._current()
        grouper.tolerance_ns, grouper.max_wait_s = int(s.stamp_tolerance_s * 1e9), s.max_wait_s
        now = time.monotonic()
        self._pending.extend((instant, now + s.tf_wait_s) for instant in grouper.release(now))
        while self._pending:
            instant, deadline = self._pending[0]
            views = self._views(instant, s, final=now >= deadline)
            if views is None:
                return  # a transform may still come; later instants wait behind this one
            self._pending.popleft()
            self._fuse(instant, views, s)

    def _views(self, instant: Instant[Skeleton3DArray], s: FusionSettings, final: bool) -> list[View] | None:
        """Every camera's message of ``instant`` in ``fusion_frame``; None while a transform is
        missing and not ``final``; when final, cameras without one are left out (with a warning).
        A camera absent from the instant keeps its place, with nobody (ids are per place)."""
        assert self._tf is not None
        matrices: dict[int, np.ndarray] = {}
        for index, msg in instant.items.items():
            frame = msg.header.frame_id
            try:
                matrices[index] = self._tf.lookup(s.fusion_frame, frame, msg.header.stamp)
            except TransformError as reason:
                if not final:
                    return None
                self.get_logger().warning(
                    f"{s.inputs[index]}: no transform {frame!r} -> {s.fusion_frame!r} at the message's stamp "
                    f"within tf_wait_s ({reason}); fusing without this camera",
                    throttle_duration_sec=WARN_PERIOD_S,
                )
        views = [View(origin=np.zeros(3), people=[]) for _ in s.inputs]
        for index, matrix in matrices.items():
            try:
                people = people_from_message(instant.items[index])
            except (ValueError, KeyError) as exc:
                self.get_logger().warning(
                    f"{s.inputs[index]}: malformed Skeleton3DArray ({exc}); skipped",
                    throttle_duration_sec=WARN_PERIOD_S,
                )
                continue
            views[index] = view_from_camera(people, matrix[:3, :3], matrix[:3, 3], name=s.inputs[index])
        return views

    def _fuse(self, instant: Instant[Skeleton3DArray], views: list[View], s: FusionSettings) -> None:
        fused = fuse_views(views, method=s.method, gate=s.gate)
        self._identities.assign(views, fused)
        stamp_ns = instant.stamp_ns
        header = Header(
            stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=s.fusion_frame
        )
        latency = self.get_clock().now() - RosTime(nanoseconds=stamp_ns, clock_type=self.get_clock().clock_type)
        skeletons = skeleton_array(header, [fused_person3d(p) for p in fused], latency.to_msg())
        self._pose_pub.publish(skeletons)
        if s.publish_markers:
            self._marker_pub.publish(marker_array(skeletons, Duration(seconds=s.marker_lifetime_s).to_msg()))
        if s.publish_tf and fused:
            self._send_tf(frame_transforms(skeletons))

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros2_ctxpose pose3d_fusion``."""
    return run_lifecycle_node(
        FusionNode, "pose3d_fusion", lambda node: node.settings.autostart, args, finished=lambda node: node.finished
    )


if __name__ == "__main__":
    sys.exit(main())
