"""Pipeline results -> ros2_ctxpose/Skeleton3DArray.

The message keeps the source image's stamp and frame (so TF lookups and message_filters line the
skeletons up with the image they came from) and states how each root was placed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import Header

from ros2_ctxpose.core.results import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_FLOOR,
    ROOT_FROM_INTRINSICS,
    ROOT_FROM_VIEWS,
    ROOT_SCALE_UNKNOWN,
    Person3D,
)
from ros2_ctxpose.core.skeleton import H36M17
from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray

_ROOT_SOURCE = {
    ROOT_FROM_INTRINSICS: Skeleton3D.ROOT_FROM_INTRINSICS,
    ROOT_FROM_DEPTH: Skeleton3D.ROOT_FROM_DEPTH,
    ROOT_SCALE_UNKNOWN: Skeleton3D.ROOT_SCALE_UNKNOWN,
    ROOT_FROM_FLOOR: Skeleton3D.ROOT_FROM_FLOOR,
    ROOT_FROM_VIEWS: Skeleton3D.ROOT_FROM_VIEWS,
}


def _point(xyz: np.ndarray) -> Point:
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def skeleton_message(person: Person3D) -> Skeleton3D:
    """One ``Person3D`` of the pipeline as a Skeleton3D."""
    joints = np.asarray(person.joints_3d, dtype=np.float64)
    uv = np.asarray(person.joints_uv, dtype=np.float32)
    return Skeleton3D(
        id=int(person.track_id),
        score=float(person.score),
        bbox_xyxy=np.asarray(person.bbox_xyxy, dtype=np.float32),
        joint_positions=[_point(j) for j in joints],
        joint_u=uv[:, 0].copy(),
        joint_v=uv[:, 1].copy(),
        joint_confidence=np.asarray(person.joints_conf, dtype=np.float32),
        root_position=_point(np.asarray(person.root, dtype=np.float64)),
        root_source=_ROOT_SOURCE[person.root_source],
        keypoints_2d=np.asarray(person.keypoints_2d, dtype=np.float32).ravel(),
        root_covariance=np.asarray(person.root_cov, dtype=np.float64).ravel(),
        placement_note=person.placement_note,
    )


def skeleton_array(header: Header, people: Sequence[Person3D], latency: Duration) -> Skeleton3DArray:
    """All people of one frame; ``header`` is the source image's (stamp) with the output frame id."""
    return Skeleton3DArray(
        header=header,
        joint_names=list(H36M17),
        skeletons=[skeleton_message(p) for p in people],
        processing_latency=latency,
    )


_ROOT_SOURCE_NAME = {v: k for k, v in _ROOT_SOURCE.items()}


def people_from_message(msg: Skeleton3DArray) -> list[Person3D]:
    """The people of a received Skeleton3DArray, as the pipeline's ``Person3D`` (for writing them
    with ``core.results``' serialiser, as the demo does)."""
    people = []
    for s in msg.skeletons:
        joints = np.array([[p.x, p.y, p.z] for p in s.joint_positions], dtype=np.float64).reshape(-1, 3)
        people.append(
            Person3D(
                track_id=int(s.id),
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
