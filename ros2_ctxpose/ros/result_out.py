"""pose3d_node's "result out" step: one frame's people -> skeletons, markers, TF and the overlay.

The outputs are lifecycle publishers, made on configure and destroyed on cleanup, so they live in
one object the node holds only while configured. The overlay is drawn only while someone
subscribes to it, raw (``<output>/image``) or JPEG-compressed (``<output>/image/compressed``, the
name image_transport's compressed plugin gives it, which Foxglove and RViz read); each form is
encoded only while it has a subscriber.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ros2_ctxpose.core.overlay import draw_people
from ros2_ctxpose.core.results import Person3D
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.ros import image_codec
from ros2_ctxpose.ros.markers import marker_array
from ros2_ctxpose.ros.messages import skeleton_array
from ros2_ctxpose.ros.parameters import RosSettings
from ros2_ctxpose.ros.tf_frames import frame_transforms

#: JPEG quality of the compressed overlay (image_transport's compressed plugin default is 95; an
#: overlay for a viewer needs less).
OVERLAY_JPEG_QUALITY = 80


def jpeg_message(image: np.ndarray, header: Header, quality: int = OVERLAY_JPEG_QUALITY) -> CompressedImage:
    """An 8-bit BGR array as a JPEG sensor_msgs/CompressedImage, with the format string
    image_transport's compressed plugin writes."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot JPEG-encode an image of shape {image.shape}")
    return CompressedImage(header=header, format="bgr8; jpeg compressed bgr8", data=encoded.tobytes())


@dataclass
class ResultOutputs:
    """The output publishers of a configured node (see the module docstring)."""

    skeletons: LifecyclePublisher
    markers: LifecyclePublisher
    overlay: LifecyclePublisher
    overlay_compressed: LifecyclePublisher

    @classmethod
    def create(cls, node: LifecycleNode, output_topic: str, **options: Any) -> ResultOutputs:
        """The publishers under ``output_topic`` (already resolved); ``options`` go to each
        (QoS overriding options). On failure, what was made is destroyed before raising."""
        made: list[LifecyclePublisher] = []
        try:
            for msg_type, topic, depth in (
                (Skeleton3DArray, output_topic, 10),
                (MarkerArray, f"{output_topic}/markers", 10),
                (Image, f"{output_topic}/image", 1),
                (CompressedImage, f"{output_topic}/image/compressed", 1),
            ):
                made.append(node.create_lifecycle_publisher(msg_type, topic, depth, **options))
        except Exception:
            for publisher in made:
                node.destroy_lifecycle_publisher(publisher)
            raise
        return cls(*made)

    def destroy(self, node: LifecycleNode) -> None:
        for publisher in (self.skeletons, self.markers, self.overlay, self.overlay_compressed):
            node.destroy_lifecycle_publisher(publisher)

    def publish(
        self,
        header: Header,
        people: Sequence[Person3D],
        latency: Duration,
        image: np.ndarray,
        settings: RosSettings,
        keypoint_threshold: float,
        send_tf: Callable[[list[Any]], None],
        *,
        draw_overlay: bool = False,
    ) -> np.ndarray | None:
        """Publish one frame's results on every output the settings enable. The overlay is drawn
        once, when a subscriber wants it or ``draw_overlay`` (the recording does), and returned
        (None when not drawn)."""
        skeletons = skeleton_array(header, people, latency.to_msg())
        self.skeletons.publish(skeletons)
        if settings.publish_markers:
            self.markers.publish(marker_array(skeletons, Duration(seconds=settings.marker_lifetime_s).to_msg()))
        if settings.publish_tf and people:
            send_tf(frame_transforms(skeletons, settings.publish_joint_frames))
        raw_wanted = settings.publish_image and self.overlay.get_subscription_count() > 0
        compressed_wanted = settings.publish_image and self.overlay_compressed.get_subscription_count() > 0
        if not (raw_wanted or compressed_wanted or draw_overlay):
            return None
        overlay = draw_people(image, people, keypoint_threshold=keypoint_threshold)
        if raw_wanted:
            self.overlay.publish(image_codec.bgr8_message(overlay, header))
        if compressed_wanted:
            self.overlay_compressed.publish(jpeg_message(overlay, header))
        return overlay
