"""Pipeline results -> ros2_ctxpose/Skeleton3DArray (content from ``output.content``).

The message keeps the source image's stamp and frame (so TF lookups and message_filters line the
skeletons up with the image they came from) and states how each root was placed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from std_msgs.msg import Header

from ros2_ctxpose.core.results import Person3D
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.output import content
from ros2_ctxpose.output.content import Body
from ros2_ctxpose.ros.content_messages import header_content, nanoseconds, to_message


def skeleton_array(header: Header, people: Sequence[Person3D], latency: Duration) -> Skeleton3DArray:
    """All people of one frame; ``header`` is the source image's (stamp) with the output frame id."""
    return to_message(Skeleton3DArray, content.skeleton_array(header_content(header), people, nanoseconds(latency)))


def bodies(msg: Skeleton3DArray) -> list[Body]:
    """The (id, joints) of each skeleton of a message, for its markers and TF frames."""
    return [
        (int(s.id), np.array([[p.x, p.y, p.z] for p in s.joint_positions], dtype=np.float64).reshape(-1, 3))
        for s in msg.skeletons
    ]


_ROOT_SOURCE_NAME = {v: k for k, v in content.ROOT_SOURCE_CODES.items()}


def people_from_message(msg: Skeleton3DArray) -> list[Person3D]:
    """The people of a received Skeleton3DArray, as the pipeline's ``Person3D`` (for writing them
    with ``core.results``' serialiser, as the demo does)."""
    people = []
    for (track_id, joints), s in zip(bodies(msg), msg.skeletons, strict=True):
        people.append(
            Person3D(
                track_id=track_id,
                score=float(s.score),
                bbox_xyxy=np.asarray(s.bbox_xyxy, dtype=np.float64),
                keypoints_2d=np.asarray(s.keypoints_2d, dtype=np.float64).reshape(-1, 3),
                joints_3d=joints,
                joints_uv=np.stack([np.asarray(s.joint_u), np.asarray(s.joint_v)], -1).astype(np.float64),
                joints_conf=np.asarray(s.joint_confidence, dtype=np.float64),
                root=np.array([s.root_position.x, s.root_position.y, s.root_position.z]),
                root_source=_ROOT_SOURCE_NAME[s.root_source],
                root_cov=np.asarray(s.root_covariance, dtype=np.float64).reshape(3, 3),
                placement_note=s.placement_note,
            )
        )
    return people
