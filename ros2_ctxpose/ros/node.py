"""pose3d_node: camera images in, 3D skeletons, markers, TF, an overlay image and diagnostics out.

A lifecycle node (``rclpy.lifecycle``, REP 2000's managed nodes, as yolo_ros' nodes are):

- construction declares the parameters and starts /diagnostics (so an unconfigured node still
  reports its state); nothing is loaded;
- ``configure`` loads the models (``Pose3DPipeline.from_config``; a failure, e.g. ``device: cuda``
  without CUDA, returns FAILURE with the reason in the log and the node stays unconfigured) and
  creates the output publishers (and the MCAP recorder with ``record_mcap``);
- ``activate`` subscribes to the camera and starts the worker; ``deactivate`` unsubscribes and
  stops it (outputs go quiet, the models stay loaded);
- ``cleanup`` frees the models and the publishers; ``shutdown`` does whatever of this is left.

``launch/pose3d.launch.py`` drives it to active; ``autostart: true`` makes it configure and
activate itself (``ros2 run ros2_ctxpose pose3d_node --ros-args -p autostart:=true``).

Only the newest frame is ever processed, and most frames that will not be cost next to nothing:
they are never taken from the middleware. The image subscription keeps only the newest sample
(keep-last 1) and sits in a :class:`FrameGate` callback group. The worker thread closes the gate
when it takes a frame, and the gate opens again shortly before the worker is expected to be done
(about two camera periods, at most 60 % of a frame's time; at once when the worker is ready
first). While it is closed the executor does not wait on the subscription at all: newer frames
replace each other inside DDS, undeserialized and uncopied (taking a 1920x1080 frame into Python
costs about ten times the CPU of leaving it there). While it is open the executor takes the
newest frames, deserializes them beside the worker's computation and puts them into a one-frame
slot, so that a fresh frame is ready when the worker finishes; the worker decodes it, runs the
pipeline and publishes. ``max_input_rate_hz`` keeps the gate shut until the next frame is due.
Frames that were skipped are counted from the publishers' sequence numbers. A camera faster than
the model therefore costs neither CPU nor a queue, and latency stays at one inference plus about
one camera period. Callbacks never decode, so one SingleThreadedExecutor serves them, the
lifecycle and parameter services and the diagnostics timer while the worker computes; the worker
never waits on the executor.

Topics are fixed relative names (``image`` or ``<image>/compressed``, ``camera_info``, ``depth``
in; ``human/pose3d`` and under it out), remapped at start-up as image_pipeline's nodes are. QoS:
every publisher and subscription accepts the standard ``qos_overrides`` parameters
(``QoSOverridingOptions``); the camera inputs default to sensor-data QoS (best effort, which also
matches reliable cameras), and the image keeps only the newest sample whatever the overrides
(only its reliability can be overridden). Messages the middleware reports lost (``message_lost``
events) are counted in the diagnostics.
"""

from __future__ import annotations

import dataclasses
import signal
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import CallbackGroup
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import get_logger
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSPolicyKind,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import deserialize_message
from rclpy.time import Time as RosTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.overlay import draw_people
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.ros import image_codec, parameters
from ros2_ctxpose.ros.camera_info import CameraInfoConverter
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array
from ros2_ctxpose.ros.markers import marker_array
from ros2_ctxpose.ros.messages import skeleton_array
from ros2_ctxpose.ros.parameters import RosSettings
from ros2_ctxpose.ros.tf_frames import frame_transforms, tf_sender
from ros2_ctxpose.ros.tf_lookup import TransformError, TransformLookup

#: Seconds between repeats of the same warning (bad messages, missing CameraInfo or depth).
WARN_PERIOD_S = 10.0
#: Frame used when neither the image header nor the frame_id parameter names one.
DEFAULT_FRAME = "camera_optical_frame"
#: How long deactivation waits for the frame in progress to finish.
WORKER_JOIN_S = 10.0

#: Topic names, relative so that a namespace and remappings apply (as image_pipeline's nodes do).
#: As image_transport does, the compressed image is "<image>/compressed" after ``image`` is
#: remapped, and the markers and overlay follow ``human/pose3d`` wherever it is remapped to.
IMAGE, CAMERA_INFO, DEPTH = "image", "camera_info", "depth"
OUTPUT = "human/pose3d"

#: The camera image: sensor-data QoS, but only the newest sample is kept by the middleware, since
#: only the newest is ever processed (see FrameGate); its reliability may be overridden.
IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
IMAGE_QOS_OVERRIDES = QoSOverridingOptions([QoSPolicyKind.RELIABILITY])
#: CameraInfo and depth: sensor-data QoS (best effort, keep last 5).
SENSOR_QOS = qos_profile_sensor_data


def _qos_options() -> QoSOverridingOptions:
    return QoSOverridingOptions.with_default_policies()


def cdr_stamp_ns(raw: bytes) -> int | None:
    """The header stamp (ns) of a serialized message that starts with a std_msgs/Header, read from
    the CDR bytes without deserializing them; None when the encapsulation is not plain CDR/XCDR2
    or the stamp is zero. (Header is the first field of Image, CompressedImage and CameraInfo;
    its Time's int32 sec and uint32 nanosec are the first 8 bytes after the 4-byte
    encapsulation header.)"""
    if len(raw) < 12 or raw[0] != 0:
        return None
    if raw[1] in (0x01, 0x07):  # CDR_LE, PLAIN_CDR2_LE
        sec, nanosec = struct.unpack_from("<iI", raw, 4)
    elif raw[1] in (0x00, 0x06):  # CDR_BE, PLAIN_CDR2_BE
        sec, nanosec = struct.unpack_from(">iI", raw, 4)
    else:
        return None
    stamp = sec * 1_000_000_000 + nanosec
    return stamp or None


class RateLimiter:
    """When the next frame may be taken, for at most ``rate_hz`` frames per second.

    Frames are taken on a schedule (one every ``1 / rate_hz`` s after the previous one's due
    time), so a 30 Hz camera limited to 15 Hz gives 15 frames per second, not 10. A frame taken
    later than a whole period after its due time starts the schedule afresh, as does time going
    backwards; ``rate_hz`` 0 means no limit.
    """

    def __init__(self) -> None:
        self._next: float | None = None

    def wait_s(self, now: float, rate_hz: float) -> float:
        """Seconds to wait from ``now`` before the next frame may be taken."""
        if rate_hz <= 0.0 or self._next is None:
            return 0.0
        return max(0.0, self._next - now)

    def taken(self, t: float, rate_hz: float) -> None:
        """A frame was taken at ``t``: schedule the next one."""
        if rate_hz <= 0.0:
            self._next = None
            return
        period = 1.0 / rate_hz
        on_schedule = self._next is not None and 0.0 <= t - self._next < period
        self._next = self._next + period if on_schedule else t + period


class FrameGate(CallbackGroup):
    """A callback group that lets the executor take frames only while it is open.

    While closed, the executor leaves the frame subscription out of its wait set: arriving frames
    replace each other in the middleware's keep-last-1 history and are never taken, deserialized or
    copied. The worker closes the gate when it takes a frame to compute, and it opens again shortly
    before the worker is expected to be done (``open_at``, from a keeper thread), or at once when
    the worker is ready (``open``). In that window the executor takes the newest frames into the
    slot, so a fresh frame is waiting when the worker finishes and it never waits for the executor
    (a hand-over between two threads costs a scheduling delay on a busy CPU), while the frames that
    arrive during most of the computation are never taken.

    The subscription's QoS event handlers (lost messages) belong to the group too and are waited on
    only while it is open: with Fast DDS an event of a reader holding unread data wakes the wait
    set at once, so waiting on them while frames stay untaken would spin the executor (measured:
    64 % of a core at 15 Hz). Their counts accumulate meanwhile and arrive with the next window.
    """

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._open = False
        self._open_at: float | None = None
        self._stopped = False
        self._wake = wake
        #: When the gate last opened (monotonic): frames put into the slot before it are stale.
        self.opened_at = 0.0
        self.frames: Any | None = None  # the frame subscription, once created
        self._keeper = threading.Thread(target=self._keep, name="pose3d_gate", daemon=True)
        self._keeper.start()

    def can_execute(self, entity: Any) -> bool:
        return self._open

    def beginning_execution(self, entity: Any) -> bool:
        return self._open

    def ending_execution(self, entity: Any) -> None:
        pass

    def open(self) -> None:
        """Open now (the worker is ready for a frame)."""
        with self._cond:
            self._open_at = None
            opened = self._set_open()
        if opened:
            self._wake()

    def open_at(self, when: float) -> None:
        """Open at monotonic time ``when`` (the worker expects to be done a little after it)."""
        with self._cond:
            self._open_at = when
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open, self._open_at = False, None

    def stop(self) -> None:
        """Close for good and end the keeper thread."""
        with self._cond:
            self._open, self._open_at, self._stopped = False, None, True
            self._cond.notify_all()
        if self._keeper is not threading.current_thread():
            self._keeper.join(timeout=1.0)

    @property
    def is_open(self) -> bool:
        return self._open

    def _set_open(self) -> bool:
        if self._open or self._stopped:
            return False
        self._open, self.opened_at = True, time.monotonic()
        return True

    def _keep(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._open_at is None:
                    self._cond.wait()
                    continue
                delay = self._open_at - time.monotonic()
                if delay > 0.0:
                    self._cond.wait(delay)
                    continue
                self._open_at = None
                if self._set_open():
                    self._wake()


class FrameSequence:
    """What the publishers' sequence numbers tell: frames sent but never taken (per publisher), and
    the camera's frame period (from the source time stamps)."""

    MAX_PUBLISHERS = 16

    def __init__(self) -> None:
        self._last: dict[bytes, tuple[int, int]] = {}
        #: Seconds between two frames of the camera (exponential average); None until known.
        self.period_s: float | None = None

    def count(self, info: Any) -> int:
        """Frames skipped before the one described by ``info`` (rclpy's MessageInfo); 0 when unknown."""
        seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        if not seq or gid is None:
            return 0
        key = bytes(gid.get("data", b"")) if isinstance(gid, dict) else bytes(gid)
        source_ns = int(info.get("source_timestamp") or 0)
        last = self._last.get(key)
        if len(self._last) >= self.MAX_PUBLISHERS and last is None:
            self._last.clear()
        self._last[key] = (seq, source_ns)
        if last is None or seq <= last[0]:
            return 0
        if source_ns > last[1]:
            period = (source_ns - last[1]) * 1e-9 / (seq - last[0])
            self.period_s = period if self.period_s is None else 0.8 * self.period_s + 0.2 * period
        return seq - last[0] - 1

    def reset(self) -> None:
        self._last.clear()
        self.period_s = None


class LatestFrame:
    """A one-message slot: ``put`` replaces, ``take`` waits for a message and empties the slot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[object, float] | None = None
        self._closed = False
        #: Messages discarded by ``take`` as older than asked for.
        self.stale = 0

    def put(self, msg: object) -> bool:
        """Store ``msg`` (with its arrival time); True when it replaced one nobody had taken."""
        with self._cond:
            replaced = self._item is not None
            self._item = (msg, time.monotonic())
            self._cond.notify()
            return replaced

    def take(self, timeout: float, since: float = 0.0) -> tuple[object, float] | None:
        """The newest message and its arrival time, or None after ``timeout`` s or once closed.
        A message that arrived before ``since`` (monotonic) is stale: it is discarded (counted in
        ``stale``) and a newer one awaited."""

        def ready() -> bool:
            if self._item is not None and self._item[1] < since:
                self._item = None
                self.stale += 1
            return self._item is not None or self._closed

        with self._cond:
            self._cond.wait_for(ready, timeout)
            item, self._item = self._item, None
            return item

    def wait_closed(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s unless closed meanwhile; True when closed."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout)

    def close(self) -> None:
        """Wake the waiting worker for good (the node stops processing)."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class DepthBuffer:
    """The last few depth images (by stamp); ``nearest`` waits briefly for one that matches a
    colour stamp.

    Aligned depth is usually published a little after its colour image, so a frame taken at once
    would often find no partner yet. This is message_filters' approximate-time pairing reduced to
    what one worker needs (the newest colour frame, one depth topic) without its dependency. Items
    are kept as they came (serialized bytes): only the one paired with a processed frame is ever
    deserialized.
    """

    def __init__(self, size: int = 8) -> None:
        self._cond = threading.Condition()
        self._items: deque[tuple[int, Any]] = deque(maxlen=size)

    def add(self, stamp_ns: int, item: Any) -> None:
        with self._cond:
            self._items.append((stamp_ns, item))
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def nearest(self, stamp_ns: int, max_offset_s: float, wait_s: float) -> Any | None:
        """The stored item closest to ``stamp_ns`` within ``max_offset_s``, waiting up to ``wait_s``
        for it while none is close enough; None if none came."""

        def best() -> Any | None:
            closest = min(self._items, key=lambda it: abs(it[0] - stamp_ns), default=None)
            return closest[1] if closest is not None and abs(closest[0] - stamp_ns) <= max_offset_s * 1e9 else None

        with self._cond:
            return self._cond.wait_for(best, wait_s)


def _is_zero(stamp: Time) -> bool:
    return stamp.sec == 0 and stamp.nanosec == 0


class Pose3DNode(LifecycleNode):
    """See the module docstring; parameters: ``PipelineConfig`` and :class:`RosSettings`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pose3d_node", **kwargs)
        # State first, so that every transition and shutdown works whatever failed before.
        self.pipeline = None
        self._frames = LatestFrame()
        self._frames.close()
        self._worker: threading.Thread | None = None
        # Not rclpy's own ``_subscriptions`` (which also holds /clock for use_sim_time and TF).
        self._camera_subscriptions: list[Any] = []
        self._tf: TransformLookup | None = None
        self._publishers_made: list[Any] = []
        self._recorder = None
        self._rate = RateLimiter()
        self._gate: FrameGate | None = None
        self._image_type: type = Image
        self._sequence = FrameSequence()
        self._rate_waited = False
        self._depths = DepthBuffer()
        self._camera_info: CameraInfo | None = None
        self._camera_infos = CameraInfoConverter()
        self._camera_note = "none yet"
        self._state = "unconfigured"
        self.device = "not loaded"
        self.stats = FrameStats()
        self.config, self.ros = parameters.declare(self)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        # Diagnostics and TF live as long as the node: an unconfigured node still says so.
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._send_tf = tf_sender(self)
        self.create_timer(1.0, self._publish_diagnostics)

    # ------------------------------------------------------------------ lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.config, self.ros = parameters.current(self)
        started = time.perf_counter()
        try:
            from ros2_ctxpose.core.pipeline import Pose3DPipeline

            self.pipeline = Pose3DPipeline.from_config(self.config)
        except Exception as exc:  # noqa: BLE001 - any loading failure is a FAILURE with its reason
            self.pipeline = None
            self.get_logger().error(f"configure failed: cannot load the pipeline: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        if self.config.floor_frame:
            self._listen_to_tf()
        detector = self.pipeline.detector
        self.device = f"{detector.device} ({detector.backend} {detector.precision})"
        if self.ros.record_mcap:
            try:
                from ros2_ctxpose.output.recording import McapRecorder

                self._recorder = McapRecorder(
                    self.ros.record_mcap,
                    pose_topic=self.resolve_topic_name(OUTPUT),
                    marker_lifetime_ns=int(self.ros.marker_lifetime_s * 1e9),
                    joint_frames=self.ros.publish_joint_frames,
                )
            except Exception as exc:  # noqa: BLE001
                self.get_logger().error(
                    f"configure failed: cannot record to {self.ros.record_mcap!r}: {type(exc).__name__}: {exc}"
                )
                self._release_models()
                return TransitionCallbackReturn.FAILURE
        try:
            options = dict(qos_overriding_options=_qos_options())
            output = self.resolve_topic_name(OUTPUT)
            for attribute, msg_type, topic, depth in (
                ("_pose_pub", Skeleton3DArray, output, 10),
                ("_marker_pub", MarkerArray, f"{output}/markers", 10),
                ("_image_pub", Image, f"{output}/image", 1),
            ):
                publisher = self.create_lifecycle_publisher(msg_type, topic, depth, **options)
                self._publishers_made.append(publisher)
                setattr(self, attribute, publisher)
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid qos_overrides value
            self.get_logger().error(f"configure failed: cannot create the outputs: {type(exc).__name__}: {exc}")
            self._release_models()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"configured: pipeline on {self.device} in {time.perf_counter() - started:.1f} s; cv_bridge: "
            f"{'yes' if image_codec.has_cv_bridge() else 'no (own conversion)'}"
            + (f"; recording to {self.ros.record_mcap}" if self._recorder is not None else "")
        )
        self._state = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._rate = RateLimiter()
        self._sequence.reset()
        try:
            self._subscribe()
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid qos_overrides value
            self.get_logger().error(f"activate failed: cannot subscribe: {type(exc).__name__}: {exc}")
            self._stop_processing()
            return TransitionCallbackReturn.FAILURE
        self.pipeline.reset_tracking()
        self._frames = LatestFrame()
        self._worker = threading.Thread(target=self._work, args=(self._frames,), name="pose3d_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"active: listening on {self._image_topic()} ({self.ros.image_transport}), "
            f"publishing {self.resolve_topic_name(OUTPUT)}"
        )
        self._state = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._state = "inactive"
        self.get_logger().info("inactive: not processing (models stay loaded)")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_models()
        self._state = "unconfigured"
        self.get_logger().info("unconfigured: models freed")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while {state.label}: releasing everything")
        self.release()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop processing and free everything the transitions made (any state; idempotent)."""
        self._stop_processing()
        self._release_models()

    def _image_topic(self) -> str:
        """The image input: ``image`` as remapped, plus "/compressed" for that transport."""
        image = self.resolve_topic_name(IMAGE)
        return f"{image}/compressed" if self.ros.image_transport == "compressed" else image

    def _subscribe(self) -> None:
        lost = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        options = dict(qos_overriding_options=_qos_options())
        image_topic = self._image_topic()
        image_type = self._image_type = CompressedImage if self.ros.image_transport == "compressed" else Image
        self._gate = FrameGate(wake=self._wake_for_frames)
        image = dict(raw=True, callback_group=self._gate, qos_overriding_options=IMAGE_QOS_OVERRIDES)
        try:
            frames = self.create_subscription(
                image_type, image_topic, self._on_image, IMAGE_QOS, event_callbacks=lost, **image
            )
            self.stats.lost_supported()
        except UnsupportedEventTypeError:
            self.get_logger().info("this RMW does not report lost messages: messages_lost stays n/a", once=True)
            frames = self.create_subscription(image_type, image_topic, self._on_image, IMAGE_QOS, **image)
        self._gate.frames = frames
        self._camera_subscriptions.append(frames)
        self._camera_subscriptions.append(
            self.create_subscription(CameraInfo, CAMERA_INFO, self._on_camera_info, SENSOR_QOS, **options)
        )
        if self.ros.use_depth:
            self._camera_subscriptions.append(
                self.create_subscription(Image, DEPTH, self._on_depth, SENSOR_QOS, raw=True, **options)
            )

    def _stop_processing(self) -> None:
        for sub in self._camera_subscriptions:
            self.destroy_subscription(sub)
        self._camera_subscriptions = []
        if self._gate is not None:
            self._gate.stop()
        self._frames.close()
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=WORKER_JOIN_S)
            if worker.is_alive():
                self.get_logger().warning(f"the frame in progress did not finish within {WORKER_JOIN_S:g} s")
        self._depths.clear()

    def _release_models(self) -> None:
        for pub in self._publishers_made:
            self.destroy_lifecycle_publisher(pub)
        self._publishers_made = []
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            try:
                recorder.close()
            except Exception as exc:  # noqa: BLE001 - a failing close must not stop the cleanup
                self.get_logger().error(f"closing {self.ros.record_mcap!r} failed: {type(exc).__name__}: {exc}")
        tf, self._tf = self._tf, None
        if tf is not None:
            tf.destroy()
        if self.pipeline is not None:
            device = str(self.pipeline.device)
            self.pipeline = None
            from ros2_ctxpose.core.pipeline import release_device_memory

            release_device_memory(device)
        self.device = "not loaded"
        self._camera_info = None
        self._camera_infos = CameraInfoConverter()
        self._camera_note = "none yet"

    # ----------------------------------------------------------------- callbacks (executor thread)
    def _on_image(self, raw: bytes, info: Any) -> None:
        """A frame the gate let through: read here, beside the worker's computation (only the few
        frames of each window come this far), and put into the slot; never decoded here. A raw
        Image's pixels stay in the received bytes (``image_codec.image_from_cdr``)."""
        skipped = self._sequence.count(info)
        self.stats.received(1 + skipped)
        if skipped:
            # Skipped while the worker waited for the rate limit, or while it computed.
            (self.stats.throttled if self._rate_waited else self.stats.dropped)(skipped)
        msg: Any = image_codec.image_from_cdr(raw) if self._image_type is Image else None
        if msg is None:
            try:
                msg = deserialize_message(raw, self._image_type)
            except Exception:  # noqa: BLE001 - a truncated or foreign sample: the worker reports it
                msg = raw
        if self._frames.put(msg):
            self.stats.dropped()

    def _on_depth(self, raw: bytes) -> None:
        self._depths.add(cdr_stamp_ns(raw) or 0, raw)  # deserialized and decoded only if paired

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_message_lost(self, info: Any) -> None:
        self.stats.lost(int(info.total_count_change))

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        """Apply accepted changes: pipeline settings through ``update``, the node's own per frame."""
        pipeline_changes, ros_changes = parameters.changes(params)
        if pipeline_changes:
            pipeline = self.pipeline
            if pipeline is not None:
                pipeline.update(**pipeline_changes)
                self.config = pipeline.config
            else:
                self.config = self.config.replace(**pipeline_changes)
        if ros_changes:
            self.ros = dataclasses.replace(self.ros, **ros_changes)
        if self.config.floor_frame and self.pipeline is not None:
            self._listen_to_tf()  # before the next frame needs it, so that it has arrived by then

    def _publish_diagnostics(self) -> None:
        window = self.stats.take_window()
        stamp = self.get_clock().now().to_msg()
        name = f"{self.get_fully_qualified_name()}: pose3d"
        self._diag_pub.publish(diagnostic_array(stamp, name, window, self.device, self._camera_note, self._state))

    # ----------------------------------------------------------------------- worker thread
    def _wake_for_frames(self) -> None:
        """The gate opened: make the executor wait on the frame subscription again."""
        executor = self.executor
        if executor is not None:
            executor.wake()

    def _work(self, frames: LatestFrame) -> None:
        gate = self._gate
        cycle_s: float | None = None  # how long a frame takes, averaged
        while not frames.closed and self.context.ok():
            wait = self._rate.wait_s(time.monotonic(), self.ros.max_input_rate_hz)
            if wait > 0.0:
                # Too early for max_input_rate_hz: frames pass by untaken. The wait is cut into
                # pieces so that a new limit (or deactivation) applies soon.
                self._rate_waited = True
                if frames.wait_closed(min(wait, 0.5)):
                    break
                continue
            gate.open()  # already open when the window started before the frame was done
            item = frames.take(timeout=0.5, since=gate.opened_at)
            if frames.stale:
                self.stats.dropped(frames.stale)
                frames.stale = 0
            if item is None:
                continue
            gate.close()
            started = time.monotonic()
            self._rate_waited = False  # the frame's callback has counted what was skipped before it
            msg, arrived = item
            self._rate.taken(arrived, self.ros.max_input_rate_hz)
            if cycle_s is not None:
                # Let the next frames in a little before this one is expected to be done.
                due = started + self._rate.wait_s(started, self.ros.max_input_rate_hz)
                gate.open_at(max(started + cycle_s - self._window_s(cycle_s), due))
            if self.ros.processing_delay_s > 0.0 and frames.wait_closed(self.ros.processing_delay_s):
                break  # deactivated while holding the frame
            try:
                self._process(msg, arrived)
            except image_codec.ImageDecodeError as exc:
                self.stats.rejected()
                self.get_logger().warning(f"skipping image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            except Exception as exc:  # noqa: BLE001 - the node must outlive any single bad frame
                if not self.context.ok() or frames.closed:
                    break  # shut down or deactivated mid-frame: publishing fails, nothing to report
                self.stats.failed()
                self.get_logger().error(
                    f"processing failed: {type(exc).__name__}: {exc}", throttle_duration_sec=WARN_PERIOD_S
                )
            elapsed = time.monotonic() - started
            cycle_s = elapsed if cycle_s is None else 0.8 * cycle_s + 0.2 * elapsed

    def _window_s(self, cycle_s: float) -> float:
        """How long before the frame in progress is expected to be done the gate opens again: two
        camera periods, so that a frame arrives in the window, and a fifth of the frame time for
        its variation; at most 60 % of it (frames taken in the window are what a faster camera
        costs)."""
        period = self._sequence.period_s or 0.0
        return min(max(2.0 * period, 0.2 * cycle_s, 0.01), 0.6 * cycle_s)

    def _deserialize(self, raw: bytes, msg_type: type) -> Any:
        try:
            return deserialize_message(raw, msg_type)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign sample
            raise image_codec.ImageDecodeError(f"cannot deserialize a {msg_type.__name__}: {exc}") from exc

    def _process(self, msg: Any, arrived: float) -> None:
        s, pipeline = self.ros, self.pipeline
        if pipeline is None:
            return
        if isinstance(msg, bytes):  # the callback could not deserialize it: say why
            msg = self._deserialize(msg, self._image_type)
        max_pixels = pipeline.config.max_image_pixels
        if isinstance(msg, CompressedImage):
            image = image_codec.decode_compressed(msg, max_pixels=max_pixels)
        else:
            image = image_codec.decode_image(msg, max_pixels=max_pixels)
        height, width = image.shape[:2]
        header = Header(stamp=msg.header.stamp, frame_id=s.frame_id or msg.header.frame_id or DEFAULT_FRAME)
        if not (s.frame_id or msg.header.frame_id):
            self.get_logger().warning(f"images carry no frame_id; using {DEFAULT_FRAME!r} (set frame_id)", once=True)
        camera = self._camera(width, height, s)
        depth, depth_scale = self._paired_depth(msg.header.stamp, s) if s.use_depth else (None, 1.0)

        floor_from_camera, floor_note = self._floor_pose(header.frame_id, msg.header.stamp)

        stamp_s = arrived if _is_zero(msg.header.stamp) else RosTime.from_msg(msg.header.stamp).nanoseconds * 1e-9
        result = pipeline(
            image,
            camera,
            bgr=True,
            depth=depth,
            depth_scale=depth_scale,
            stamp_s=stamp_s,
            floor_from_camera=floor_from_camera,
        )
        people = result.people
        for person in people:
            person.placement_note = person.placement_note or floor_note

        latency = self._latency(msg.header.stamp, arrived)
        skeletons = skeleton_array(header, people, latency.to_msg())
        self._pose_pub.publish(skeletons)
        if s.publish_markers:
            self._marker_pub.publish(marker_array(skeletons, Duration(seconds=s.marker_lifetime_s).to_msg()))
        if s.publish_tf and people:
            self._send_tf(frame_transforms(skeletons, s.publish_joint_frames))
        recorder = self._recorder
        publish_image = s.publish_image and self._image_pub.get_subscription_count() > 0
        overlay = None
        if publish_image or recorder is not None:
            overlay = draw_people(image, people, keypoint_threshold=pipeline.config.keypoint_threshold)
        if publish_image:
            self._image_pub.publish(image_codec.bgr8_message(overlay, header))
        if recorder is not None:
            try:
                recorder.write(
                    RosTime.from_msg(header.stamp).nanoseconds,
                    header.frame_id,
                    people,
                    image=overlay,
                    latency_ns=latency.nanoseconds,
                )
            except Exception as exc:  # noqa: BLE001 - recording must not stop the outputs
                self.get_logger().error(
                    f"recording to {s.record_mcap!r} failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=WARN_PERIOD_S,
                )
        self.stats.processed(latency.nanoseconds * 1e-9, result.timings_ms.get("total", float("nan")), len(people))

    def _floor_pose(self, camera_frame: str, stamp: Time) -> tuple[np.ndarray | None, str]:
        """``floor_from_camera`` from TF at the image's stamp when ``floor_frame`` is set, else
        None; when the lookup fails, None and the note every person then carries (and a throttled
        warning): people are placed from the image alone, the node keeps running."""
        floor = self.pipeline.config.floor_frame if self.pipeline is not None else ""
        if not floor:
            return None, ""
        try:
            return self._listen_to_tf().lookup(floor, camera_frame, stamp, self.ros.tf_timeout_s), ""
        except TransformError as exc:
            self.get_logger().warning(
                f"no transform from {camera_frame!r} to floor_frame {floor!r} at the image stamp ({exc}): "
                "placing people from the image alone",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            return None, f"floor not used: no transform from {camera_frame} to {floor} at the image stamp"

    def _listen_to_tf(self) -> TransformLookup:
        """The TF listener, started when floor_frame is first set (configure or a parameter change)."""
        if self._tf is None:
            self._tf = TransformLookup(self)
        return self._tf

    def _latency(self, stamp: Time, arrived: float) -> Duration:
        """Now minus the image stamp; from the arrival time when the camera leaves stamps at zero."""
        if _is_zero(stamp):
            self.get_logger().warning("images have zero stamps: latency is measured from their arrival", once=True)
            return Duration(seconds=time.monotonic() - arrived)
        return self.get_clock().now() - RosTime.from_msg(stamp, clock_type=self.get_clock().clock_type)

    def _camera(self, width: int, height: int, s: RosSettings) -> CameraModel:
        """The CameraInfo's camera (converted once per calibration; what was padded, scaled or
        refused is logged once), or one with the assumed FOV."""
        info = self._camera_info
        if info is not None:
            model, news = self._camera_infos.convert(info, width, height)
            for message in news:
                self.get_logger().warning(message)
            if model is not None:
                self._camera_note = "camera_info"
                return model
            self._camera_note = f"CameraInfo unusable: assumed {s.assumed_hfov_deg:g} deg HFOV"
        else:
            self.get_logger().warning(
                f"no CameraInfo received on {self.resolve_topic_name(CAMERA_INFO)}: assuming a "
                f"{s.assumed_hfov_deg:g} deg horizontal field of view; directions are plausible but distances are "
                "not metric",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            self._camera_note = f"assumed {s.assumed_hfov_deg:g} deg HFOV"
        return CameraModel.from_fov(width, height, s.assumed_hfov_deg)

    def _paired_depth(self, stamp: Time, s: RosSettings) -> tuple[np.ndarray | None, float]:
        """The depth image nearest in time to ``stamp`` (within depth_max_offset_s), decoded."""
        raw = self._depths.nearest(RosTime.from_msg(stamp).nanoseconds, s.depth_max_offset_s, s.depth_wait_s)
        if raw is None:
            self.get_logger().warning(
                f"no depth image within {s.depth_max_offset_s:g} s of the colour image arrived on "
                f"{self.resolve_topic_name(DEPTH)} within {s.depth_wait_s:g} s: placing people by "
                "reprojection",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            return None, 1.0
        try:
            return image_codec.decode_depth(self._deserialize(raw, Image), max_pixels=self.config.max_image_pixels)
        except image_codec.ImageDecodeError as exc:
            self.get_logger().warning(f"skipping depth image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            return None, 1.0

    def destroy_node(self) -> None:
        self.release()
        super().destroy_node()


def quiet_repeated_signals() -> None:
    """SIGINT and SIGTERM do nothing more at Python level than rclpy's own handlers already do.

    rclpy's handlers shut the context down (which ends the spin) and then call the previous
    Python handler, which for SIGINT raises KeyboardInterrupt. In a terminal under ``ros2 launch``
    Ctrl-C arrives twice (from the terminal and forwarded by launch), and the second
    KeyboardInterrupt lands in the middle of the cleanup with a traceback. Installed before
    ``rclpy.init``, these no-op handlers are what rclpy chains to, so any number of signals end
    in one clean shutdown and exit status 0.
    """

    def ignore(signum: int, frame: Any) -> None:
        pass

    signal.signal(signal.SIGINT, ignore)
    signal.signal(signal.SIGTERM, ignore)


def ignore_signals_while_exiting() -> None:
    """After the cleanup: ignore SIGINT and SIGTERM for good. While the interpreter finalizes,
    Python puts its own handlers back to the default (terminate), so a late Ctrl-C (launch
    forwarding the terminal's) would end the process with -SIGINT instead of its exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros2_ctxpose pose3d_node`` (and ``python -m ros2_ctxpose.ros.node``)."""
    quiet_repeated_signals()
    rclpy.init(args=args)
    node = None
    status = 0
    stage = "cannot start"
    try:
        node = Pose3DNode()
        if node.ros.autostart:
            for name, transition in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    if rclpy.ok():
                        get_logger("pose3d_node").fatal(f"cannot start: {name} failed (see above)")
                        status = 1
                    return status
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        stage = "stopped"
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - bad parameters or a broken install: say so, no traceback wall
        # A signal shuts the context down under the executor at any point (even while it builds
        # its wait set, which raises RCLError): that is a shutdown, not a failure.
        if rclpy.ok():
            get_logger("pose3d_node").fatal(f"{stage}: {type(exc).__name__}: {exc}")
            status = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_signals_while_exiting()
    return status


if __name__ == "__main__":
    sys.exit(main())
