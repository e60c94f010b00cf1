"""Skeletons as TF frames, named and oriented as REP 155 (ROS4HRI) asks.

REP 155, "Body frames": the root frame of a skeleton is ``body_<bodyID>``, its parent the sensor
frame, its origin the mid-point of the hips (H36M's pelvis), ``x`` pointing forward out of the
body and ``z`` toward the head. Other skeleton points are parented to ``body_<bodyID>`` and named
``<link>_<bodyID>``, with the link names of REP 155's kinematic model (``l_wrist``, ``r_knee``,
``torso``, ``head``, ...). H36M joints that model has no link for keep their H36M name in the same
pattern (``thorax_<id>``, ``head_top_<id>``). Joint frames carry positions only: their orientation
is the body frame's (the lifter estimates joint positions, not limb rotations). The frames are
built by ``output.content`` (names: ``content.REP155_LINKS``), as the MCAP recording's.
"""

from __future__ import annotations

from collections.abc import Callable

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.output import content
from ros2_ctxpose.ros.content_messages import header_content, to_message
from ros2_ctxpose.ros.messages import bodies


def frame_transforms(skeletons: Skeleton3DArray, joint_frames: bool = False) -> list[TransformStamped]:
    """TF frames of every person of one frame (stamped with the source image's stamp)."""
    tf = content.frame_transforms(header_content(skeletons.header), bodies(skeletons), joint_frames)
    return [to_message(TransformStamped, t) for t in tf["transforms"]]


def tf_sender(node: Node, static: bool = False) -> Callable[[list[TransformStamped]], None]:
    """A function that broadcasts transforms on /tf (or latched on /tf_static with ``static``).

    tf2_ros's broadcasters where tf2_ros is importable; the PyPI ROS wheels have no tf2_ros, so
    otherwise the same thing by hand: TFMessage with the broadcasters' topics and QoS.
    """
    try:
        from tf2_ros import StaticTransformBroadcaster, TransformBroadcaster
    except ImportError:
        from tf2_msgs.msg import TFMessage

        if static:
            qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            publisher = node.create_publisher(TFMessage, "/tf_static", qos)
        else:
            publisher = node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
        return lambda transforms: publisher.publish(TFMessage(transforms=transforms))
    broadcaster = StaticTransformBroadcaster(node) if static else TransformBroadcaster(node)
    return broadcaster.sendTransform
