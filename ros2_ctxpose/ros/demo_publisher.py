"""demo_publisher: real footage as a camera, for trying the node without one.

Plays a video (by default Sports2D's ``Demo/demo.mp4``: two people walking outdoors, 1768x994,
30 fps, BSD-3-Clause, installed by ``pip install --no-deps sports2d==0.8.34``) in a loop as
``sensor_msgs/Image`` (bgr8) at the video's frame rate, each frame stamped with the time it is
published and the configured frame_id, plus a matching ``CameraInfo``. The footage comes without
a calibration, so the CameraInfo describes a distortion-free camera with a 65 degree horizontal
field of view (a typical phone or action camera setting); distances are only as right as that.

It publishes as camera drivers do (v4l2_camera, usb_cam): the relative topics ``image_raw`` and
``camera_info``, so it is started in a camera namespace (``-r __ns:=/camera``, or the launch
file's ``camera`` namespace) and the topics are ``/camera/image_raw`` and ``/camera/camera_info``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import rclpy
from geometry_msgs.msg import Quaternion, TransformStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ros2_ctxpose.core.camera import DEFAULT_FRAME_ID, CameraModel
from ros2_ctxpose.core.media.videos import demo_video_path
from ros2_ctxpose.ros.image_codec import bgr8_message
from ros2_ctxpose.ros.tf_frames import tf_sender

#: Horizontal field of view stated for the demo footage (it has no calibration).
DEMO_HFOV_DEG = 65.0
#: Relative topic names, as camera drivers publish them (remap or namespace them).
IMAGE_TOPIC, CAMERA_INFO_TOPIC = "image_raw", "camera_info"


def camera_info_for(width: int, height: int, hfov_deg: float, header: Header) -> CameraInfo:
    """CameraInfo of a centred, distortion-free camera with the given horizontal field of view."""
    K = CameraModel.from_fov(width, height, hfov_deg).K
    P = np.hstack([K, np.zeros((3, 1))])
    return CameraInfo(
        header=header,
        width=width,
        height=height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=K.ravel().tolist(),
        r=np.eye(3).ravel().tolist(),
        p=P.ravel().tolist(),
    )


def optical_frame_transform(body_frame: str, optical_frame: str, stamp) -> TransformStamped:
    """REP 103: the optical frame (z forward, x right, y down) under the camera body (x forward, z up)."""
    t = TransformStamped()
    t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, body_frame, optical_frame
    t.transform.rotation = Quaternion(x=-0.5, y=0.5, z=-0.5, w=0.5)
    return t


class VideoCamera:
    """Frames of a video, forever if ``loop`` (reopening it at the end), resized by ``scale``."""

    def __init__(self, path: Path, *, loop: bool = True, scale: float = 1.0) -> None:
        self.path, self.loop, self.scale = path, loop, scale
        self._cap = self._open()
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise OSError(f"cannot open video {self.path}")
        return cap

    def read(self) -> np.ndarray | None:
        """The next frame (BGR), or None when the video ended and does not loop."""
        ok, frame = self._cap.read()
        if not ok and self.loop:
            self._cap.release()
            self._cap = self._open()
            ok, frame = self._cap.read()
        if not ok:
            return None
        if self.scale != 1.0:
            frame = cv2.resize(frame, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        return frame

    def close(self) -> None:
        self._cap.release()


class DemoPublisher(Node):
    """Publishes a video as a camera (see the module docstring for parameters and QoS)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("demo_publisher", **kwargs)

        def declare(name, default, description, **ranges):
            return self.declare_parameter(
                name, default, ParameterDescriptor(description=description, read_only=True, **ranges)
            ).value

        video = declare("video", "", "Video file to play; empty = Sports2D's demo.mp4.")
        loop = declare("loop", True, "Start again at the end of the video.")
        scale = declare(
            "scale",
            1.0,
            "Resize factor of the published frames.",
            floating_point_range=[FloatingPointRange(from_value=0.1, to_value=1.0)],
        )
        rate = declare(
            "rate_hz",
            0.0,
            "Publishing rate; 0 = the video's frame rate.",
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=240.0)],
        )
        self.max_frames = declare(
            "max_frames",
            0,
            "Stop after this many frames; 0 = never.",
            integer_range=[IntegerRange(from_value=0, to_value=10**9)],
        )
        self.frame_id = declare("frame_id", DEFAULT_FRAME_ID, "frame_id of the images.")
        body_frame = declare(
            "camera_frame",
            "camera_link",
            "Camera body frame (x forward, z up) published as the optical frame's parent on /tf_static; empty = none.",
        )
        self.hfov_deg = declare(
            "hfov_deg",
            DEMO_HFOV_DEG,
            "Horizontal FOV stated in the CameraInfo.",
            floating_point_range=[FloatingPointRange(from_value=10.0, to_value=170.0)],
        )

        self.camera = VideoCamera(Path(video) if video else demo_video_path(), loop=loop, scale=scale)
        # Reliable: a large frame sent best effort is lost whole when one fragment is; the node's
        # best-effort subscription still matches, and KEEP_LAST never blocks this publisher.
        qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.create_publisher(Image, IMAGE_TOPIC, qos)
        self.info_pub = self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, qos)
        if body_frame:
            tf_sender(self, static=True)(
                [optical_frame_transform(body_frame, self.frame_id, self.get_clock().now().to_msg())]
            )
        self.published = 0
        #: Completed when the video ended (without loop) or max_frames were published.
        self.done = Future()
        period = 1.0 / (rate or self.camera.fps)
        self.timer = self.create_timer(period, self._tick)
        self.get_logger().info(
            f"playing {self.camera.path} at {1.0 / period:.1f} Hz on "
            f"{self.resolve_topic_name(IMAGE_TOPIC)} (HFOV {self.hfov_deg:g} deg)"
        )

    def _tick(self) -> None:
        frame = self.camera.read()
        if frame is None or (self.max_frames and self.published >= self.max_frames):
            self.get_logger().info(f"done after {self.published} frames")
            self.timer.cancel()
            self.done.set_result(self.published)
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        try:
            # CameraInfo first: a node that gets an image is then never without its intrinsics.
            self.info_pub.publish(camera_info_for(frame.shape[1], frame.shape[0], self.hfov_deg, header))
            self.image_pub.publish(bgr8_message(frame, header))
        except Exception:  # rclpy's RCLError is not public API
            if self.context.ok():
                raise
            return  # Ctrl-C shut the context down while this frame was on its way: nothing to do
        self.published += 1

    def destroy_node(self) -> None:
        self.camera.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros2_ctxpose demo_publisher``."""
    from ros2_ctxpose.ros.signals import ignore_signals_while_exiting, quiet_repeated_signals

    quiet_repeated_signals()  # Ctrl-C under ros2 launch arrives twice: one clean exit, no traceback
    rclpy.init(args=args)
    node = None
    try:
        node = DemoPublisher()
        rclpy.spin_until_future_complete(node, node.done)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except OSError as exc:  # no video (FileNotFoundError is an OSError)
        get_logger("demo_publisher").fatal(str(exc))
        return 1
    except Exception:  # rclpy's RCLError is not public API
        if rclpy.ok():
            raise  # a real failure: its traceback says where
        # else: a signal shut the context down under the executor (e.g. while it built its wait set)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_signals_while_exiting()
    return 0


if __name__ == "__main__":
    sys.exit(main())
