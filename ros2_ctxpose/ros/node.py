"""pose3d_node: camera images in, 3D skeletons, markers, TF, an overlay image and diagnostics out.

Only the newest frame is ever processed. The subscription callback does nothing but put the
message into a one-frame slot (a frame still waiting there is replaced and counted as dropped), and
a single worker thread takes the slot, runs the pipeline and publishes. A camera faster than the
model therefore costs dropped frames, never a growing queue and a growing latency. Callbacks stay
cheap, so one SingleThreadedExecutor serves them, the parameter services and the diagnostics
timer while the worker computes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections import deque
from typing import Optional

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time as RosTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.overlay import draw_people
from ros2_ctxpose.core.pipeline import Pose3DPipeline
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.ros import image_codec, parameters
from ros2_ctxpose.ros.camera_info import camera_model
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array
from ros2_ctxpose.ros.markers import marker_array
from ros2_ctxpose.ros.messages import skeleton_array
from ros2_ctxpose.ros.parameters import RosSettings
from ros2_ctxpose.ros.tf_frames import frame_transforms, tf_sender

#: Seconds between repeats of the same warning (bad messages, missing CameraInfo or depth).
WARN_PERIOD_S = 10.0
#: Frame used when neither the image header nor the frame_id parameter names one.
DEFAULT_FRAME = "camera_optical_frame"


class LatestFrame:
    """A one-message slot: ``put`` replaces, ``take`` waits for a message and empties the slot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[tuple[object, float]] = None
        self._closed = False

    def put(self, msg: object) -> bool:
        """Store ``msg`` (with its arrival time); True when it replaced one nobody had taken."""
        with self._cond:
            replaced = self._item is not None
            self._item = (msg, time.monotonic())
            self._cond.notify()
            return replaced

    def take(self, timeout: float) -> Optional[tuple[object, float]]:
        """The newest message and its arrival time, or None after ``timeout`` s or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the waiting worker for good (the node is going away)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class DepthBuffer:
    """The last few depth images; ``nearest`` waits briefly for one that matches a colour stamp.

    Aligned depth is usually published a little after its colour image, so a frame taken at once
    would often find no partner yet. This is message_filters' approximate-time pairing reduced to
    what one worker needs (the newest colour frame, one depth topic) without its dependency.
    """

    def __init__(self, size: int = 8) -> None:
        self._cond = threading.Condition()
        self._msgs: deque[Image] = deque(maxlen=size)

    def add(self, msg: Image) -> None:
        with self._cond:
            self._msgs.append(msg)
            self._cond.notify_all()

    def nearest(self, stamp_ns: int, max_offset_s: float, wait_s: float) -> Optional[Image]:
        """The stored depth image closest to ``stamp_ns`` within ``max_offset_s``, waiting up to
        ``wait_s`` for it while none is close enough; None if none came."""
        def best() -> Optional[Image]:
            def offset(m: Image) -> int:
                return abs(RosTime.from_msg(m.header.stamp).nanoseconds - stamp_ns)
            closest = min(self._msgs, key=offset, default=None)
            return closest if closest is not None and offset(closest) <= max_offset_s * 1e9 else None

        with self._cond:
            return self._cond.wait_for(best, wait_s)


#: Topic names, relative so that a namespace and remappings apply (as image_pipeline's nodes do).
IMAGE, CAMERA_INFO, DEPTH = "image", "camera_info", "depth"
OUTPUT = "human/pose3d"


def _is_zero(stamp: Time) -> bool:
    return stamp.sec == 0 and stamp.nanosec == 0


class Pose3DNode(Node):
    """See the module docstring; parameters are listed in :class:`NodeSettings`."""

    def __init__(self, **kwargs) -> None:
        super().__init__("pose3d_node", **kwargs)
        # First, so that destroy_node() works even when loading the model below fails.
        self._frames = LatestFrame()
        self._worker: Optional[threading.Thread] = None
        config, self.ros = parameters.declare(self)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        started = time.perf_counter()
        self.pipeline = Pose3DPipeline.from_config(config)
        detector = self.pipeline.detector
        self.device = f"{detector.device} ({detector.backend} {detector.precision})"
        self.get_logger().info(f"pipeline ready on {self.device} in {time.perf_counter() - started:.1f} s; "
                               f"cv_bridge: {'yes' if image_codec.has_cv_bridge() else 'no (own conversion)'}")
        self.stats = FrameStats()
        self._depths = DepthBuffer()
        self._camera_info: Optional[CameraInfo] = None
        self._camera_note = "none yet"

        self._pose_pub = self.create_publisher(Skeleton3DArray, OUTPUT, 10)
        self._marker_pub = self.create_publisher(MarkerArray, f"{OUTPUT}/markers", 10)
        self._image_pub = self.create_publisher(Image, f"{OUTPUT}/image", 1)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._send_tf = tf_sender(self)

        qos = qos_profile_sensor_data
        if self.ros.image_transport == "compressed":
            self._decode = image_codec.decode_compressed
            image_sub = (CompressedImage, f"{IMAGE}/compressed")
        else:
            self._decode = image_codec.decode_image
            image_sub = (Image, IMAGE)
        self.create_subscription(*image_sub, self._on_image, qos)
        self.create_subscription(CameraInfo, CAMERA_INFO, self._on_camera_info, qos)
        if self.ros.use_depth:
            self.create_subscription(Image, DEPTH, self._on_depth, qos)
        self.create_timer(1.0, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="pose3d_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(f"listening on {self.resolve_topic_name(image_sub[1])} ({self.ros.image_transport}); "
                               f"publishing {self.resolve_topic_name(OUTPUT)}")

    # ----------------------------------------------------------------- callbacks (executor thread)
    def _on_image(self, msg) -> None:
        self.stats.received()
        if self._frames.put(msg):
            self.stats.dropped()

    def _on_depth(self, msg: Image) -> None:
        self._depths.add(msg)  # decoded only if paired with a processed frame

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        """Apply accepted changes: pipeline settings through ``update``, the node's own per frame."""
        pipeline_changes, ros_changes = parameters.changes(params)
        if pipeline_changes:
            self.pipeline.update(**pipeline_changes)
        if ros_changes:
            self.ros = dataclasses.replace(self.ros, **ros_changes)

    def _publish_diagnostics(self) -> None:
        window = self.stats.take_window()
        stamp = self.get_clock().now().to_msg()
        name = f"{self.get_fully_qualified_name()}: pose3d"
        self._diag_pub.publish(diagnostic_array(stamp, name, window, self.device, self._camera_note))

    # ----------------------------------------------------------------------- worker thread
    def _work(self) -> None:
        while not self._frames.closed and self.context.ok():
            item = self._frames.take(timeout=0.5)
            if item is None:
                continue
            msg, arrived = item
            try:
                self._process(msg, arrived)
            except image_codec.ImageDecodeError as exc:
                self.stats.rejected()
                self.get_logger().warning(f"skipping image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            except Exception as exc:  # the node must outlive any single bad frame
                if not self.context.ok():
                    break  # shut down mid-frame (Ctrl-C): publishing fails, nothing to report
                self.stats.failed()
                self.get_logger().error(f"processing failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=WARN_PERIOD_S)

    def _process(self, msg, arrived: float) -> None:
        s = self.ros
        image = self._decode(msg)
        height, width = image.shape[:2]
        header = Header(stamp=msg.header.stamp, frame_id=s.frame_id or msg.header.frame_id or DEFAULT_FRAME)
        if not (s.frame_id or msg.header.frame_id):
            self.get_logger().warning(f"images carry no frame_id; using {DEFAULT_FRAME!r} (set frame_id)",
                                      once=True)
        camera = self._camera(width, height, s)
        depth, depth_scale = self._paired_depth(msg.header.stamp, s) if s.use_depth else (None, 1.0)

        stamp_s = arrived if _is_zero(msg.header.stamp) else RosTime.from_msg(msg.header.stamp).nanoseconds * 1e-9
        result = self.pipeline(image, camera, bgr=True, depth=depth, depth_scale=depth_scale, stamp_s=stamp_s)
        people = result.people

        latency = self._latency(msg.header.stamp, arrived)
        skeletons = skeleton_array(header, people, latency.to_msg())
        self._pose_pub.publish(skeletons)
        if s.publish_markers:
            self._marker_pub.publish(marker_array(skeletons, Duration(seconds=s.marker_lifetime_s).to_msg()))
        if s.publish_tf and people:
            self._send_tf(frame_transforms(skeletons, s.publish_joint_frames))
        if s.publish_image and self._image_pub.get_subscription_count() > 0:
            overlay = draw_people(image, people, keypoint_threshold=self.pipeline.config.keypoint_threshold)
            self._image_pub.publish(image_codec.bgr8_message(overlay, header))
        self.stats.processed(latency.nanoseconds * 1e-9, result.timings_ms.get("total", float("nan")), len(people))

    def _latency(self, stamp: Time, arrived: float) -> Duration:
        """Now minus the image stamp; from the arrival time when the camera leaves stamps at zero."""
        if _is_zero(stamp):
            self.get_logger().warning("images have zero stamps: latency is measured from their arrival",
                                      once=True)
            return Duration(seconds=time.monotonic() - arrived)
        return self.get_clock().now() - RosTime.from_msg(stamp, clock_type=self.get_clock().clock_type)

    def _camera(self, width: int, height: int, s: RosSettings) -> CameraModel:
        """The CameraInfo's camera, or one with the assumed FOV (and a throttled warning)."""
        info = self._camera_info
        if info is not None:
            try:
                model = camera_model(info, width, height)
                for note in model.notes:
                    self.get_logger().warning(f"CameraInfo: {note}", throttle_duration_sec=WARN_PERIOD_S)
                self._camera_note = "camera_info"
                return model
            except ValueError as exc:
                reason = f"CameraInfo unusable ({exc})"
        else:
            reason = f"no CameraInfo received on {self.resolve_topic_name(CAMERA_INFO)}"
        self.get_logger().warning(
            f"{reason}: assuming a {s.assumed_hfov_deg:g} deg horizontal field of view; directions are "
            "plausible but distances are not metric", throttle_duration_sec=WARN_PERIOD_S)
        self._camera_note = f"assumed {s.assumed_hfov_deg:g} deg HFOV"
        return CameraModel.from_fov(width, height, s.assumed_hfov_deg)

    def _paired_depth(self, stamp: Time, s: RosSettings) -> tuple[Optional[np.ndarray], float]:
        """The depth image nearest in time to ``stamp`` (within depth_max_offset_s), decoded."""
        depth = self._depths.nearest(RosTime.from_msg(stamp).nanoseconds, s.depth_max_offset_s, s.depth_wait_s)
        if depth is None:
            self.get_logger().warning(
                f"no depth image within {s.depth_max_offset_s:g} s of the colour image arrived on "
                f"{self.resolve_topic_name(DEPTH)} within {s.depth_wait_s:g} s: placing people by "
                "reprojection", throttle_duration_sec=WARN_PERIOD_S)
            return None, 1.0
        try:
            return image_codec.decode_depth(depth)
        except image_codec.ImageDecodeError as exc:
            self.get_logger().warning(f"skipping depth image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            return None, 1.0

    def destroy_node(self) -> None:
        self._frames.close()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: Optional[list[str]] = None) -> int:
    """Entry point of ``ros2 run ros2_ctxpose pose3d_node`` (and ``python -m ros2_ctxpose.ros.node``)."""
    rclpy.init(args=args)
    node = None
    try:
        node = Pose3DNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a missing weight file or device: say so and exit non-zero, no traceback wall
        get_logger("pose3d_node").fatal(f"cannot start: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
