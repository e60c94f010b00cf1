"""Recording results to MCAP, for Foxglove (or any MCAP reader) without ROS or RViz.

``McapRecorder(path, pose_topic=...)`` writes, per frame (``write(stamp_ns, frame_id, people,
image=None)``), what the ROS node publishes, built by the same functions
(``output.content``), as ROS 2 messages (``ros2msg`` schemas, CDR data, the ``ros2`` profile), so
that Foxglove's 3D, Image and Raw Messages panels show a recording as they show the live node:

=====================================  ========================================  ================
topic (``pose_topic`` = ``P``)         type                                      content
=====================================  ========================================  ================
``P`` (default ``/human/pose3d``)      ``ros2_ctxpose/msg/Skeleton3DArray``      the results
``P/markers``                          ``visualization_msgs/msg/MarkerArray``    joints and bones
                                                                                 per person, with
                                                                                 lifetimes
``/tf``                                ``tf2_msgs/msg/TFMessage``                ``body_<id>`` (and
                                                                                 joint frames)
``/tf_static``                         ``tf2_msgs/msg/TFMessage``                ``camera_frame``
                                                                                 -> optical frame
``P/image/compressed``                 ``sensor_msgs/msg/CompressedImage``       the overlay (JPEG)
=====================================  ========================================  ================

The node passes its resolved output topic (namespace and remaps applied); the CLI the default.
``config/foxglove_layout.json`` arranges the panels for the default names. Writing needs ``mcap``,
``mcap-ros2-support`` and ``transforms3d`` (pure Python, pinned in tools/requirements-venv.txt) and no ROS: the
message definitions are shipped as text (``output.schemas``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from ..core.results import Person3D
from . import content
from .schemas import IMAGE_TYPE, MARKERS_TYPE, RECORDED_TYPES, SKELETONS_TYPE, TF_TYPE

#: The node's output topic with no namespace or remap (``ros/node.py``'s ``human/pose3d``).
POSE_TOPIC: Final[str] = "/human/pose3d"
#: The node's default ``marker_lifetime_s`` (``ros/parameters.py``), in nanoseconds.
DEFAULT_MARKER_LIFETIME_NS: Final[int] = 500_000_000
#: The camera body frame ``demo_publisher`` (and camera drivers) put above the optical frame.
CAMERA_FRAME: Final[str] = "camera_link"


@dataclass(frozen=True)
class RecordingTopics:
    """Topic names of a recording, derived from the pose topic as the node derives its own."""

    pose: str = POSE_TOPIC
    tf: str = "/tf"
    tf_static: str = "/tf_static"

    @property
    def markers(self) -> str:
        return f"{self.pose}/markers"

    @property
    def overlay(self) -> str:
        """The overlay as image_transport's compressed topic of ``<pose>/image``."""
        return f"{self.pose}/image/compressed"

    def all(self) -> tuple[str, ...]:
        return (self.pose, self.markers, self.tf, self.tf_static, self.overlay)


class RecordingUnavailable(ValueError):
    """The MCAP packages are not installed."""


def check_available() -> None:
    """``RecordingUnavailable`` saying what to install when a package the recording needs is missing."""
    try:
        import mcap_ros2.writer  # noqa: F401
        import transforms3d  # noqa: F401
    except ImportError as exc:
        raise RecordingUnavailable(
            f"recording MCAP needs the packages mcap, mcap-ros2-support and transforms3d ({exc}); install "
            "them with pip install mcap==1.6.0 mcap-ros2-support==0.6.0 transforms3d==0.4.2"
        ) from None


class McapRecorder:
    """Writes results to an MCAP file that Foxglove opens with a 3D scene of the skeletons.

    Args:
        path: the ``.mcap`` file (its folder is created; an existing file is replaced).
        pose_topic: the resolved ``human/pose3d`` of the node (the other topics follow it).
        camera_frame: the camera body frame written on ``/tf_static`` as the parent of each optical
            frame recorded (REP 103, as ``demo_publisher`` publishes it), so that a 3D view
            following it (the layout's) shows people upright; empty = none.
        marker_lifetime_ns: the markers' lifetime (the node's ``marker_lifetime_s``).
        joint_frames: also record a TF frame per joint (the node's ``publish_joint_frames``).
        jpeg_quality: of the images passed to ``write``.

    Not thread-safe: call ``write`` from one thread (the node's worker), ``close`` once at the end
    (also a context manager).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pose_topic: str = POSE_TOPIC,
        camera_frame: str = CAMERA_FRAME,
        marker_lifetime_ns: int = DEFAULT_MARKER_LIFETIME_NS,
        joint_frames: bool = False,
        jpeg_quality: int = 85,
    ) -> None:
        check_available()
        from mcap_ros2.writer import Writer

        from .msg_definitions import DEFINITIONS

        self.path = Path(path)
        self.topics = RecordingTopics(pose=pose_topic)
        self.camera_frame = camera_frame
        self.marker_lifetime_ns = int(marker_lifetime_ns)
        self.joint_frames = joint_frames
        self.jpeg_quality = int(jpeg_quality)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        try:
            self._writer = Writer(self._file)
            self._schemas = {name: self._writer.register_msgdef(name, DEFINITIONS[name]) for name in RECORDED_TYPES}
        except Exception:
            self._file.close()
            raise
        self._static: list[dict[str, Any]] = []
        self.frames = 0
        self._closed = False

    def write(
        self,
        stamp_ns: int,
        frame_id: str,
        people: Sequence[Person3D],
        *,
        image: np.ndarray | None = None,
        latency_ns: int = 0,
    ) -> None:
        """Record one frame: its people (``Person3D``, camera optical frame ``frame_id``) taken at
        ``stamp_ns`` (nanoseconds, the message stamps and the MCAP log time), and optionally a BGR
        ``image`` (the overlay, ``core.overlay.draw_people``'s), stored as JPEG."""
        if self._closed:
            raise ValueError(f"{self.path}: recorder already closed")
        stamp_ns = int(stamp_ns)
        self._write_camera_frame(stamp_ns, frame_id)
        head = content.header(stamp_ns, frame_id)
        drawn = content.bodies(people)
        self._put(self.topics.pose, SKELETONS_TYPE, content.skeleton_array(head, people, latency_ns), stamp_ns)
        self._put(
            self.topics.markers, MARKERS_TYPE, content.marker_array(head, drawn, self.marker_lifetime_ns), stamp_ns
        )
        tf = content.frame_transforms(head, drawn, self.joint_frames)
        if tf["transforms"]:
            self._put(self.topics.tf, TF_TYPE, tf, stamp_ns)
        if image is not None:
            ok, jpeg = cv2.imencode(
                ".jpg", np.ascontiguousarray(image, dtype=np.uint8), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
            )
            if not ok:
                raise ValueError(f"cannot encode a {image.shape} image as JPEG")
            message = {"header": head, "format": "jpeg", "data": jpeg.tobytes()}
            self._put(self.topics.overlay, IMAGE_TYPE, message, stamp_ns)
        self.frames += 1

    def _write_camera_frame(self, stamp_ns: int, frame_id: str) -> None:
        """``camera_frame`` -> ``frame_id`` on /tf_static the first time ``frame_id`` is seen (the
        whole latched list again, as a static broadcaster sends it)."""
        known = {t["child_frame_id"] for t in self._static}
        if not self.camera_frame or frame_id in known or frame_id == self.camera_frame:
            return
        self._static.append(content.camera_body_transform(stamp_ns, self.camera_frame, frame_id))
        self._put(self.topics.tf_static, TF_TYPE, {"transforms": list(self._static)}, stamp_ns)

    def _put(self, topic: str, type_name: str, message: dict[str, Any], stamp_ns: int) -> None:
        self._writer.write_message(topic, self._schemas[type_name], message, log_time=stamp_ns, publish_time=stamp_ns)

    def close(self) -> None:
        """Write the MCAP summary (index) and close the file; the file is unreadable without it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.finish()
        finally:
            self._file.close()

    def __enter__(self) -> McapRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
