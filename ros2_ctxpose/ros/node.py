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
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
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
from rclpy.task import Future
from rclpy.time import Time as RosTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.config import PipelineConfig
from ros2_ctxpose.core.results import Person3D
from ros2_ctxpose.ros import image_codec, parameters
from ros2_ctxpose.ros.camera_info import CameraInfoConverter
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array
from ros2_ctxpose.ros.frame_intake import DepthBuffer, cdr_stamp_ns
from ros2_ctxpose.ros.frame_worker import FrameWorker
from ros2_ctxpose.ros.parameters import RosSettings
from ros2_ctxpose.ros.result_out import ResultOutputs
from ros2_ctxpose.ros.signals import ignore_signals_while_exiting, quiet_repeated_signals
from ros2_ctxpose.ros.tf_frames import tf_sender
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


def _is_zero(stamp: Time) -> bool:
    return stamp.sec == 0 and stamp.nanosec == 0


@dataclass(frozen=True)
class FrameInput:
    """What "frame in" makes of one image message: the pipeline's input and the output header.
    (A camera pose from TF for the floor is one more field here, looked up at the image stamp.)"""

    header: Header
    image: np.ndarray
    camera: CameraModel
    depth: np.ndarray | None
    depth_scale: float
    stamp_s: float
    floor_from_camera: np.ndarray | None
    floor_note: str


class Pose3DNode(LifecycleNode):
    """See the module docstring; parameters: ``PipelineConfig`` and :class:`RosSettings`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pose3d_node", **kwargs)
        # State first, so that every transition and shutdown works whatever failed before.
        self.pipeline = None
        self._worker: FrameWorker | None = None
        # Not rclpy's own ``_subscriptions`` (which also holds /clock for use_sim_time and TF).
        self._camera_subscriptions: list[Any] = []
        self._tf: TransformLookup | None = None
        self._outputs: ResultOutputs | None = None
        self._recorder = None
        self._image_type: type = Image
        self._depths = DepthBuffer()
        self._camera_info: CameraInfo | None = None
        self._camera_infos = CameraInfoConverter()
        self._camera_note = "none yet"
        self._state = "unconfigured"
        self.device = "not loaded"
        self.stats = FrameStats()
        config, self.ros = parameters.declare(self)
        # A running node accepts no larger images than it was started for (a remote
        # set_parameters must not open the door to decompression bombs); lowering is fine.
        self._max_pixels_ceiling = config.max_image_pixels
        self.add_on_set_parameters_callback(self._refuse_raised_limits)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        #: Done after the lifecycle shutdown transition: ``main`` then exits.
        self.finished = Future()
        # Diagnostics and TF live as long as the node: an unconfigured node still says so.
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._send_tf = tf_sender(self)
        self.create_timer(1.0, self._publish_diagnostics)

    # ------------------------------------------------------------------ lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        config, self.ros = parameters.current(self)
        started = time.perf_counter()
        try:
            from ros2_ctxpose.core.pipeline import Pose3DPipeline

            self.pipeline = Pose3DPipeline.from_config(config)
        except Exception as exc:  # noqa: BLE001 - any loading failure is a FAILURE with its reason
            self.pipeline = None
            self.get_logger().error(f"configure failed: cannot load the pipeline: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        if config.floor_frame:
            self._listen_to_tf()
        detector = self.pipeline.detector
        self.device = f"{detector.device} ({detector.backend} {detector.precision})"
        if self.ros.record_mcap:
            try:
                from ros2_ctxpose.core.recording import McapRecorder

                self._recorder = McapRecorder(self.ros.record_mcap)
            except Exception as exc:  # noqa: BLE001
                self.get_logger().error(
                    f"configure failed: cannot record to {self.ros.record_mcap!r}: {type(exc).__name__}: {exc}"
                )
                self._release_models()
                return TransitionCallbackReturn.FAILURE
        try:
            self._outputs = ResultOutputs.create(
                self, self.resolve_topic_name(OUTPUT), qos_overriding_options=_qos_options()
            )
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
        try:
            self._subscribe()
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid qos_overrides value
            self.get_logger().error(f"activate failed: cannot subscribe: {type(exc).__name__}: {exc}")
            self._stop_processing()
            return TransitionCallbackReturn.FAILURE
        self.pipeline.reset_tracking()
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
        self.finished.set_result(True)  # main() stops spinning once the transition has answered
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
        worker = self._worker = FrameWorker(
            image_type, self.stats, lambda: self.ros, self._process_safely, self._wake_for_frames, self.context.ok
        )
        image = dict(raw=True, callback_group=worker.gate, qos_overriding_options=IMAGE_QOS_OVERRIDES)
        try:
            frames = self.create_subscription(
                image_type, image_topic, worker.on_image, IMAGE_QOS, event_callbacks=lost, **image
            )
            self.stats.lost_supported()
        except UnsupportedEventTypeError:
            self.get_logger().info("this RMW does not report lost messages: messages_lost stays n/a", once=True)
            frames = self.create_subscription(image_type, image_topic, worker.on_image, IMAGE_QOS, **image)
        worker.gate.frames = frames
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
        worker, self._worker = self._worker, None
        if worker is not None and not worker.stop(timeout=WORKER_JOIN_S):
            self.get_logger().warning(f"the frame in progress did not finish within {WORKER_JOIN_S:g} s")
        self._depths.clear()

    def _release_models(self) -> None:
        outputs, self._outputs = self._outputs, None
        if outputs is not None:
            outputs.destroy(self)
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
    def _on_depth(self, raw: bytes) -> None:
        self._depths.add(cdr_stamp_ns(raw) or 0, raw)  # deserialized and decoded only if paired

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_message_lost(self, info: Any) -> None:
        self.stats.lost(int(info.total_count_change))

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        """Apply accepted changes: pipeline settings through ``update``, the node's own per frame."""
        pipeline_changes, ros_changes = parameters.changes(params)
        pipeline = self.pipeline
        if pipeline_changes and pipeline is not None:  # unconfigured: configure reads the parameters
            pipeline.update(**pipeline_changes)
        if ros_changes:
            self.ros = dataclasses.replace(self.ros, **ros_changes)
        if pipeline is not None and pipeline.config.floor_frame:
            self._listen_to_tf()  # before the next frame needs it, so that it has arrived by then

    def _refuse_raised_limits(self, params: list[Parameter]) -> SetParametersResult:
        """on-set callback: ``max_image_pixels`` may be lowered at run time, and raised again up to
        the value the node was started with, never beyond (that needs a restart with the parameter
        set at launch): a remote ``set_parameters`` must not let bombs through."""
        for param in params:
            if param.name == "max_image_pixels" and param.value > self._max_pixels_ceiling:
                return SetParametersResult(
                    successful=False,
                    reason=f"max_image_pixels can be raised at run time up to its start-up value "
                    f"{self._max_pixels_ceiling} only; set a larger one at launch",
                )
        return SetParametersResult(successful=True)

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

    def _process_safely(self, msg: Any, arrived: float) -> bool:
        """Process one frame; a bad message or a failure is counted and logged, never raised.
        False when the node is stopping (the worker then ends)."""
        try:
            self._process(msg, arrived)
        except image_codec.ImageDecodeError as exc:
            self.stats.rejected()
            self.get_logger().warning(f"skipping image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
        except Exception as exc:  # noqa: BLE001 - the node must outlive any single bad frame
            worker = self._worker
            if not self.context.ok() or worker is None or worker.closed:
                return False  # shut down or deactivated mid-frame: publishing fails, nothing to report
            self.stats.failed()
            self.get_logger().error(
                f"processing failed: {type(exc).__name__}: {exc}", throttle_duration_sec=WARN_PERIOD_S
            )
        return True

    def _deserialize(self, raw: bytes, msg_type: type) -> Any:
        try:
            return deserialize_message(raw, msg_type)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign sample
            raise image_codec.ImageDecodeError(f"cannot deserialize a {msg_type.__name__}: {exc}") from exc

    def _process(self, msg: Any, arrived: float) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        frame = self._frame_in(msg, arrived, pipeline.config)
        result = pipeline(
            frame.image,
            frame.camera,
            bgr=True,
            depth=frame.depth,
            depth_scale=frame.depth_scale,
            stamp_s=frame.stamp_s,
            floor_from_camera=frame.floor_from_camera,
        )
        for person in result.people:
            person.placement_note = person.placement_note or frame.floor_note
        latency = self._latency(frame.header.stamp, arrived)
        self._result_out(frame, result.people, latency, pipeline.config)
        self.stats.processed(
            latency.nanoseconds * 1e-9, result.timings_ms.get("total", float("nan")), len(result.people)
        )

    def _frame_in(self, msg: Any, arrived: float, config: PipelineConfig) -> FrameInput:
        """ "Frame in": a taken message -> the pipeline's input (image, camera, depth, floor pose).
        ImageDecodeError for a message that is not a usable image."""
        s = self.ros
        if isinstance(msg, bytes):  # the callback could not deserialize it: say why
            msg = self._deserialize(msg, self._image_type)
        stamp = msg.header.stamp
        if stamp.sec < 0:
            raise image_codec.ImageDecodeError(f"negative header stamp ({stamp.sec} s)")
        if isinstance(msg, CompressedImage):
            image = image_codec.decode_compressed(msg, max_pixels=config.max_image_pixels)
        else:
            image = image_codec.decode_image(msg, max_pixels=config.max_image_pixels)
        height, width = image.shape[:2]
        header = Header(stamp=stamp, frame_id=s.frame_id or msg.header.frame_id or DEFAULT_FRAME)
        if not (s.frame_id or msg.header.frame_id):
            self.get_logger().warning(f"images carry no frame_id; using {DEFAULT_FRAME!r} (set frame_id)", once=True)
        depth, depth_scale = self._paired_depth(stamp, s, config) if s.use_depth else (None, 1.0)
        floor_from_camera, floor_note = self._floor_pose(config.floor_frame, header.frame_id, stamp)
        return FrameInput(
            header=header,
            image=image,
            camera=self._camera(width, height, s),
            depth=depth,
            depth_scale=depth_scale,
            stamp_s=arrived if _is_zero(stamp) else RosTime.from_msg(stamp).nanoseconds * 1e-9,
            floor_from_camera=floor_from_camera,
            floor_note=floor_note,
        )

    def _result_out(self, frame: FrameInput, people: list[Person3D], latency: Duration, config: PipelineConfig) -> None:
        """ "Result out": publish one frame's people (and record them with ``record_mcap``)."""
        s, outputs, header = self.ros, self._outputs, frame.header
        if outputs is not None:
            outputs.publish(header, people, latency, frame.image, s, config.keypoint_threshold, self._send_tf)
        recorder = self._recorder
        if recorder is not None:
            try:
                recorder.write(
                    RosTime.from_msg(header.stamp).nanoseconds, header.frame_id, people, latency_ns=latency.nanoseconds
                )
            except Exception as exc:  # noqa: BLE001 - recording must not stop the outputs
                self.get_logger().error(
                    f"recording to {s.record_mcap!r} failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=WARN_PERIOD_S,
                )

    def _floor_pose(self, floor: str, camera_frame: str, stamp: Time) -> tuple[np.ndarray | None, str]:
        """``floor_from_camera`` from TF at the image's stamp when ``floor_frame`` is set, else
        None; when the lookup fails, None and the note every person then carries (and a throttled
        warning): people are placed from the image alone, the node keeps running."""
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

    def _paired_depth(self, stamp: Time, s: RosSettings, config: PipelineConfig) -> tuple[np.ndarray | None, float]:
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
            return image_codec.decode_depth(self._deserialize(raw, Image), max_pixels=config.max_image_pixels)
        except image_codec.ImageDecodeError as exc:
            self.get_logger().warning(f"skipping depth image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            return None, 1.0

    def destroy_node(self) -> None:
        self.release()
        super().destroy_node()


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
        executor.spin_until_future_complete(node.finished)  # until the shutdown transition, or a signal
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
