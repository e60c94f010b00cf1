"""Skeletons as TF frames, named and oriented as REP 155 (ROS4HRI) asks.

REP 155, "Body frames": the root frame of a skeleton is ``body_<bodyID>``, its parent the sensor
frame, its origin the mid-point of the hips (H36M's pelvis), ``x`` pointing forward out of the
body and ``z`` toward the head. Other skeleton points are parented to ``body_<bodyID>`` and named
``<link>_<bodyID>``, with the link names of REP 155's kinematic model (``l_wrist``, ``r_knee``,
``torso``, ``head``, ...). H36M joints that model has no link for keep their H36M name in the same
pattern (``thorax_<id>``, ``head_top_<id>``). Joint frames carry positions only: their orientation
is the body frame's (the lifter estimates joint positions, not limb rotations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from geometry_msgs.msg import Quaternion, TransformStamped, Vector3
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from transforms3d.quaternions import mat2quat

from ros2_ctxpose.core.body_frame import rep155_rotation
from ros2_ctxpose.core.skeleton import H36M17, index_of
from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray

#: REP 155 link name of each H36M-17 joint (the pelvis is body_<id> itself).
REP155_LINKS: Final[dict[str, str]] = {
    "right_hip": "r_hip",
    "right_knee": "r_knee",
    "right_ankle": "r_ankle",
    "left_hip": "l_hip",
    "left_knee": "l_knee",
    "left_ankle": "l_ankle",
    "spine": "torso",
    "thorax": "thorax",
    "neck_nose": "head",
    "head_top": "head_top",
    "left_shoulder": "l_shoulder",
    "left_elbow": "l_elbow",
    "left_wrist": "l_wrist",
    "right_shoulder": "r_shoulder",
    "right_elbow": "r_elbow",
    "right_wrist": "r_wrist",
}

_PELVIS = index_of(H36M17, "pelvis")


def body_frame(track_id: int) -> str:
    return f"body_{track_id}"


def joint_frame(joint: str, track_id: int) -> str:
    return f"{REP155_LINKS[joint]}_{track_id}"


def _transform(header, parent: str, child: str, xyz: np.ndarray, quat_wxyz: np.ndarray) -> TransformStamped:
    t = TransformStamped()
    t.header.stamp = header.stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation = Vector3(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
    w, x, y, z = (float(v) for v in quat_wxyz)
    t.transform.rotation = Quaternion(x=x, y=y, z=z, w=w)
    return t


def person_transforms(skeleton: Skeleton3D, header, joint_frames: bool) -> list[TransformStamped]:
    """body_<id> under the camera frame, and optionally every joint under body_<id>."""
    joints = np.array([[p.x, p.y, p.z] for p in skeleton.joint_positions], dtype=np.float64)
    rotation = rep155_rotation(joints)
    root = joints[_PELVIS]
    body = body_frame(skeleton.id)
    transforms = [_transform(header, header.frame_id, body, root, mat2quat(rotation))]
    if joint_frames:
        local = (joints - root) @ rotation  # rows: R^T (joint - root), the joints in the body frame
        identity = np.array([1.0, 0.0, 0.0, 0.0])
        transforms += [
            _transform(header, body, joint_frame(name, skeleton.id), local[i], identity)
            for i, name in enumerate(H36M17)
            if i != _PELVIS
        ]
    return transforms


def frame_transforms(skeletons: Skeleton3DArray, joint_frames: bool = False) -> list[TransformStamped]:
    """TF frames of every person of one frame (stamped with the source image's stamp)."""
    return [t for s in skeletons.skeletons for t in person_transforms(s, skeletons.header, joint_frames)]


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
