"""Skeleton3DArray -> visualization_msgs/MarkerArray for RViz (content from ``output.content``).

Per person, in namespace ``body_<id>``: marker 0 is a SPHERE_LIST of the joints, marker 1 a
LINE_LIST of the bones. The colour follows the track id (the same palette as the 2D overlay), and
every marker has a short lifetime, so a person who leaves the view disappears from RViz without
the node having to remember and delete them.
"""

from __future__ import annotations

from builtin_interfaces.msg import Duration
from visualization_msgs.msg import MarkerArray

from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.output import content
from ros2_ctxpose.ros.content_messages import header_content, nanoseconds, to_message
from ros2_ctxpose.ros.messages import bodies


def marker_array(skeletons: Skeleton3DArray, lifetime: Duration) -> MarkerArray:
    """Markers for every person of one frame (empty when nobody is seen: lifetimes clear the rest)."""
    markers = content.marker_array(header_content(skeletons.header), bodies(skeletons), nanoseconds(lifetime))
    return to_message(MarkerArray, markers)
