"""Skeleton3DArray -> visualization_msgs/MarkerArray for RViz.

Per person, in namespace ``body_<id>``: marker 0 is a SPHERE_LIST of the joints, marker 1 a
LINE_LIST of the bones. The colour follows the track id (the same palette as the 2D overlay), and
every marker has a short lifetime, so a person who leaves the view disappears from RViz without
the node having to remember and delete them.
"""

from __future__ import annotations

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ros2_ctxpose.core.overlay import colour_for
from ros2_ctxpose.core.skeleton import H36M17_BONES
from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray

JOINT_DIAMETER_M = 0.05
BONE_WIDTH_M = 0.02


def marker_namespace(track_id: int) -> str:
    return f"body_{track_id}"


def _colour(track_id: int) -> ColorRGBA:
    b, g, r = colour_for(track_id)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)


def person_markers(skeleton: Skeleton3D, header, lifetime: Duration) -> list[Marker]:
    """The joints (SPHERE_LIST) and bones (LINE_LIST) of one person."""
    common = dict(
        header=header,
        ns=marker_namespace(skeleton.id),
        action=Marker.ADD,
        lifetime=lifetime,
        color=_colour(skeleton.id),
    )
    joints = Marker(
        id=0,
        type=Marker.SPHERE_LIST,
        points=list(skeleton.joint_positions),
        scale=Vector3(x=JOINT_DIAMETER_M, y=JOINT_DIAMETER_M, z=JOINT_DIAMETER_M),
        **common,
    )
    joints.pose.orientation.w = 1.0
    bones = Marker(
        id=1,
        type=Marker.LINE_LIST,
        scale=Vector3(x=BONE_WIDTH_M),
        **common,
        points=[skeleton.joint_positions[i] for bone in H36M17_BONES for i in bone],
    )
    bones.pose.orientation.w = 1.0
    return [joints, bones]


def marker_array(skeletons: Skeleton3DArray, lifetime: Duration) -> MarkerArray:
    """Markers for every person of one frame (empty when nobody is seen: lifetimes clear the rest)."""
    return MarkerArray(markers=[m for s in skeletons.skeletons for m in person_markers(s, skeletons.header, lifetime)])
