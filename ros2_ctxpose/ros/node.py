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
(``QoSOverridingOptions``); CameraInfo and depth default to sensor-data QoS, the image to reliable
keep-last 1 with a fall-back to best effort for best-effort cameras (``ros/image_input.py`` says
why), and it keeps only the newest sample whatever the overrides (only its reliability can be
overridden). Messages the middleware reports lost (``message_lost``
events) are counted in the diagnostics.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    qos_profile_sensor_data,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.task import Future
from rclpy.time import Time as RosTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ros2_ctxpose.core.config import PipelineConfig
from ros2_ctxpose.core.results import Person3D
from ros2_ctxpose.ros import image_codec, parameters
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array
from ros2_ctxpose.ros.frame_in import CAMERA_INFO, DEPTH, WARN_PERIOD_S, FrameIn, FrameInput, is_zero
from ros2_ctxpose.ros.frame_worker import FrameWorker
from ros2_ctxpose.ros.image_input import ImageInput
from ros2_ctxpose.ros.lifecycle_main import run_lifecycle_node
from ros2_ctxpose.ros.result_out import ResultOutputs
from ros2_ctxpose.ros.tf_frames import tf_sender

#: How long deactivation waits for the frame in progress to finish.
WORKER_JOIN_S = 10.0

#: Topic names, relative so that a namespace and remappings apply (as image_pipeline's nodes do).
#: As image_transport does, the compressed image is "<image>/compressed" after ``image`` is
#: remapped, and the markers and overlay follow ``human/pose3d`` wherever it is remapped to.
IMAGE = "image"
OUTPUT = "human/pose3d"

#: CameraInfo and depth: sensor-data QoS (best effort, keep last 5).
SENSOR_QOS = qos_profile_sensor_data


def _qos_options() -> QoSOverridingOptions:
    return QoSOverridingOptions.with_default_policies()


class Pose3DNode(LifecycleNode):
    """See the module docstring; parameters: ``PipelineConfig`` and :class:`RosSettings`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pose3d_node", **kwargs)
        # State first, so that every transition and shutdown works whatever failed before.
        self.pipeline = None
        self._worker: FrameWorker | None = None
        self._image_input: ImageInput | None = None
        # Not rclpy's own ``_subscriptions`` (which also holds /clock for use_sim_time and TF).
        self._camera_subscriptions: list[Any] = []
        self._outputs: ResultOutputs | None = None
        self._recorder = None
        self._image_type: type = Image
        self._frame_in = FrameIn(self)
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
            self._frame_in.listen_to_tf()
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
        options = dict(qos_overriding_options=_qos_options())
        image_type = self._image_type = CompressedImage if self.ros.image_transport == "compressed" else Image
        worker = self._worker = FrameWorker(
            image_type, self.stats, lambda: self.ros, self._process_safely, self._wake_for_frames, self.context.ok
        )
        self._image_input = ImageInput(self, image_type, self._image_topic(), worker, self.stats)
        self._camera_subscriptions.append(
            self.create_subscription(CameraInfo, CAMERA_INFO, self._frame_in.on_camera_info, SENSOR_QOS, **options)
        )
        if self.ros.use_depth:
            self._camera_subscriptions.append(
                self.create_subscription(Image, DEPTH, self._frame_in.on_depth, SENSOR_QOS, raw=True, **options)
            )

    def _stop_processing(self) -> None:
        image_input, self._image_input = self._image_input, None
        if image_input is not None:
            image_input.destroy()
        for sub in self._camera_subscriptions:
            self.destroy_subscription(sub)
        self._camera_subscriptions = []
        worker, self._worker = self._worker, None
        if worker is not None and not worker.stop(timeout=WORKER_JOIN_S):
            self.get_logger().warning(f"the frame in progress did not finish within {WORKER_JOIN_S:g} s")
        self._frame_in.depths.clear()

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
        if self.pipeline is not None:
            device = str(self.pipeline.device)
            self.pipeline = None
            from ros2_ctxpose.core.pipeline import release_device_memory

            release_device_memory(device)
        self.device = "not loaded"
        self._frame_in.reset()

    # ----------------------------------------------------------------- callbacks (executor thread)
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        """Apply accepted changes: pipeline settings through ``update``, the node's own per frame."""
        pipeline_changes, ros_changes = parameters.changes(params)
        pipeline = self.pipeline
        if pipeline_changes and pipeline is not None:  # unconfigured: configure reads the parameters
            pipeline.update(**pipeline_changes)
        if ros_changes:
            self.ros = dataclasses.replace(self.ros, **ros_changes)
        if pipeline is not None and pipeline.config.floor_frame:
            self._frame_in.listen_to_tf()  # before the next frame needs it, so that it has arrived by then

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
        self._diag_pub.publish(
            diagnostic_array(stamp, name, window, self.device, self._frame_in.camera_note, self._state)
        )

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

    def _process(self, msg: Any, arrived: float) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        frame = self._frame_in(msg, arrived, pipeline.config, self.ros, self._image_type)
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

    def _result_out(self, frame: FrameInput, people: list[Person3D], latency: Duration, config: PipelineConfig) -> None:
        """Result out: publish one frame's people (and record them, with the overlay, with ``record_mcap``)."""
        s, outputs, recorder, header = self.ros, self._outputs, self._recorder, frame.header
        overlay = None
        if outputs is not None:
            overlay = outputs.publish(
                header,
                people,
                latency,
                frame.image,
                s,
                config.keypoint_threshold,
                self._send_tf,
                draw_overlay=recorder is not None,
            )
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

    def _latency(self, stamp: Time, arrived: float) -> Duration:
        """Now minus the image stamp; from the arrival time when the camera leaves stamps at zero."""
        if is_zero(stamp):
            self.get_logger().warning("images have zero stamps: latency is measured from their arrival", once=True)
            return Duration(seconds=time.monotonic() - arrived)
        return self.get_clock().now() - RosTime.from_msg(stamp, clock_type=self.get_clock().clock_type)

    def destroy_node(self) -> None:
        self.release()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros2_ctxpose pose3d_node`` (and ``python -m ros2_ctxpose.ros.node``)."""
    return run_lifecycle_node(
        Pose3DNode, "pose3d_node", lambda node: node.ros.autostart, args, finished=lambda node: node.finished
    )


if __name__ == "__main__":
    sys.exit(main())
