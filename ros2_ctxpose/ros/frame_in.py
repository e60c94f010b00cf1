"""pose3d_node's "frame in" step: a taken image message -> the pipeline's input.

Decodes the image (refusing bad messages with :class:`~ros2_ctxpose.ros.image_codec.ImageDecodeError`),
picks the camera model (the newest CameraInfo, or an assumed field of view), pairs the depth image
nearest in time, and looks up the camera's pose to ``floor_frame`` in TF at the image stamp. One
more input for the pipeline is one more field of :class:`FrameInput` and one more step here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.lifecycle import LifecycleNode
from rclpy.serialization import deserialize_message
from rclpy.time import Time as RosTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ros2_ctxpose.core.camera import DEFAULT_FRAME_ID, CameraModel
from ros2_ctxpose.core.config import PipelineConfig
from ros2_ctxpose.ros import image_codec
from ros2_ctxpose.ros.camera_info import CameraInfoConverter
from ros2_ctxpose.ros.frame_intake import DepthBuffer, cdr_stamp_ns
from ros2_ctxpose.ros.parameters import RosSettings
from ros2_ctxpose.ros.tf_lookup import TransformError, TransformLookup

#: Seconds between repeats of the same warning (bad messages, missing CameraInfo or depth).
WARN_PERIOD_S = 10.0
#: The node's relative input topics (for the warnings; the node subscribes them).
CAMERA_INFO, DEPTH = "camera_info", "depth"


def is_zero(stamp: Time) -> bool:
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


class FrameIn:
    """The camera state frames are read with (CameraInfo, depth images, TF) and the step itself."""

    def __init__(self, node: LifecycleNode) -> None:
        self._node = node
        self.depths = DepthBuffer()
        self.camera_info: CameraInfo | None = None
        self._camera_infos = CameraInfoConverter()
        #: Which camera model the last frame used (for the diagnostics).
        self.camera_note = "none yet"
        self._tf: TransformLookup | None = None

    def on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def on_depth(self, raw: bytes) -> None:
        self.depths.add(cdr_stamp_ns(raw) or 0, raw)  # deserialized and decoded only if paired

    def reset(self) -> None:
        """Forget the camera and stop listening to TF (the node's cleanup)."""
        self.depths.clear()
        self.camera_info = None
        self._camera_infos = CameraInfoConverter()
        self.camera_note = "none yet"
        tf, self._tf = self._tf, None
        if tf is not None:
            tf.destroy()

    def __call__(
        self, msg: Any, arrived: float, config: PipelineConfig, s: RosSettings, image_type: type
    ) -> FrameInput:
        """Frame in: a taken message -> the pipeline's input (image, camera, depth, floor pose).
        ImageDecodeError for a message that is not a usable image."""
        if isinstance(msg, bytes):  # the callback could not deserialize it: say why
            msg = self._deserialize(msg, image_type)
        stamp = msg.header.stamp
        if stamp.sec < 0:
            raise image_codec.ImageDecodeError(f"negative header stamp ({stamp.sec} s)")
        if isinstance(msg, CompressedImage):
            image = image_codec.decode_compressed(msg, max_pixels=config.max_image_pixels)
        else:
            image = image_codec.decode_image(msg, max_pixels=config.max_image_pixels)
        height, width = image.shape[:2]
        header = Header(stamp=stamp, frame_id=s.frame_id or msg.header.frame_id or DEFAULT_FRAME_ID)
        if not (s.frame_id or msg.header.frame_id):
            self._node.get_logger().warning(
                f"images carry no frame_id; using {DEFAULT_FRAME_ID!r} (set frame_id)", once=True
            )
        depth, depth_scale = self._paired_depth(stamp, s, config) if s.use_depth else (None, 1.0)
        floor_from_camera, floor_note = self._floor_pose(config.floor_frame, header.frame_id, stamp, s.tf_timeout_s)
        return FrameInput(
            header=header,
            image=image,
            camera=self._camera(width, height, s),
            depth=depth,
            depth_scale=depth_scale,
            stamp_s=arrived if is_zero(stamp) else RosTime.from_msg(stamp).nanoseconds * 1e-9,
            floor_from_camera=floor_from_camera,
            floor_note=floor_note,
        )

    def _floor_pose(
        self, floor: str, camera_frame: str, stamp: Time, timeout_s: float
    ) -> tuple[np.ndarray | None, str]:
        """``floor_from_camera`` from TF at the image's stamp when ``floor_frame`` is set, else
        None; when the lookup fails, None and the note every person then carries (and a throttled
        warning): people are placed from the image alone, the node keeps running."""
        if not floor:
            return None, ""
        try:
            return self.listen_to_tf().lookup(floor, camera_frame, stamp, timeout_s), ""
        except TransformError as exc:
            self._node.get_logger().warning(
                f"no transform from {camera_frame!r} to floor_frame {floor!r} at the image stamp ({exc}): "
                "placing people from the image alone",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            return None, f"floor not used: no transform from {camera_frame} to {floor} at the image stamp"

    def listen_to_tf(self) -> TransformLookup:
        """The TF listener, started when floor_frame is first set (configure or a parameter change)."""
        if self._tf is None:
            self._tf = TransformLookup(self._node)
        return self._tf

    def _camera(self, width: int, height: int, s: RosSettings) -> CameraModel:
        """The CameraInfo's camera (converted once per calibration; what was padded, scaled or
        refused is logged once), or one with the assumed FOV."""
        info = self.camera_info
        if info is not None:
            model, news = self._camera_infos.convert(info, width, height)
            for message in news:
                self._node.get_logger().warning(message)
            if model is not None:
                self.camera_note = "camera_info"
                return model
            self.camera_note = f"CameraInfo unusable: assumed {s.assumed_hfov_deg:g} deg HFOV"
        else:
            self._node.get_logger().warning(
                f"no CameraInfo received on {self._node.resolve_topic_name(CAMERA_INFO)}: assuming a "
                f"{s.assumed_hfov_deg:g} deg horizontal field of view; directions are plausible but distances are "
                "not metric",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            self.camera_note = f"assumed {s.assumed_hfov_deg:g} deg HFOV"
        return CameraModel.from_fov(width, height, s.assumed_hfov_deg)

    def _paired_depth(self, stamp: Time, s: RosSettings, config: PipelineConfig) -> tuple[np.ndarray | None, float]:
        """The depth image nearest in time to ``stamp`` (within depth_max_offset_s), decoded."""
        raw = self.depths.nearest(RosTime.from_msg(stamp).nanoseconds, s.depth_max_offset_s, s.depth_wait_s)
        if raw is None:
            self._node.get_logger().warning(
                f"no depth image within {s.depth_max_offset_s:g} s of the colour image arrived on "
                f"{self._node.resolve_topic_name(DEPTH)} within {s.depth_wait_s:g} s: placing people by "
                "reprojection",
                throttle_duration_sec=WARN_PERIOD_S,
            )
            return None, 1.0
        try:
            return image_codec.decode_depth(self._deserialize(raw, Image), max_pixels=config.max_image_pixels)
        except image_codec.ImageDecodeError as exc:
            self._node.get_logger().warning(f"skipping depth image: {exc}", throttle_duration_sec=WARN_PERIOD_S)
            return None, 1.0

    @staticmethod
    def _deserialize(raw: bytes, msg_type: type) -> Any:
        try:
            return deserialize_message(raw, msg_type)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign sample
            raise image_codec.ImageDecodeError(f"cannot deserialize a {msg_type.__name__}: {exc}") from exc
