"""What the node publishes, as message content: the one place the outputs are built.

Every function returns plain nested dicts in the exact field layout of the ROS message it stands
for (``Skeleton3DArray``, ``visualization_msgs/MarkerArray``, ``tf2_msgs/TFMessage``, their
``std_msgs/Header`` as ``{"stamp": {"sec", "nanosec"}, "frame_id"}``). The node's converters
(``ros/messages.py``, ``ros/markers.py``, ``ros/tf_frames.py``) turn them into rclpy messages and
the MCAP recorder (``output/recording.py``) into CDR, so the two cannot drift apart: same
constants, colours, lifetimes and quaternions. No ROS import here (the CLI records without ROS).

Markers and TF are made per body, a ``(track_id, joints (17, 3))`` pair (``bodies(people)``, or
the node's received ``Skeleton3DArray``): a body whose joints are not all finite has no place to
be drawn and is left out of both (TF would refuse its NaN transforms anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np

from ..core.body_frame import rep155_rotation
from ..core.overlay import colour_for
from ..core.results import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_FLOOR,
    ROOT_FROM_INTRINSICS,
    ROOT_FROM_VIEWS,
    ROOT_SCALE_UNKNOWN,
    Person3D,
)
from ..core.skeleton import H36M17, H36M17_BONES, index_of

Content = dict[str, Any]
#: One person for markers and TF: (track id, (17, 3) H36M-17 joints in the header's frame).
Body = tuple[int, np.ndarray]

#: Skeleton3D's ROOT_* constants (msg/Skeleton3D.msg).
ROOT_SOURCE_CODES: Final[dict[str, int]] = {
    ROOT_FROM_INTRINSICS: 1,
    ROOT_FROM_DEPTH: 2,
    ROOT_SCALE_UNKNOWN: 3,
    ROOT_FROM_FLOOR: 4,
    ROOT_FROM_VIEWS: 5,
}
#: visualization_msgs/Marker constants.
LINE_LIST, SPHERE_LIST, ADD = 5, 7, 0
JOINT_DIAMETER_M: Final[float] = 0.05
BONE_WIDTH_M: Final[float] = 0.02
#: REP 103: a camera's optical frame (x right, y down, z forward) under its body frame
#: (``camera_link``: x forward, y left, z up), as a quaternion (x, y, z, w).
OPTICAL_IN_CAMERA_BODY: Final[tuple[float, float, float, float]] = (-0.5, 0.5, -0.5, 0.5)

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
_IDENTITY_XYZW: Final[tuple[float, float, float, float]] = (0.0, 0.0, 0.0, 1.0)


def body_frame(track_id: int) -> str:
    """REP 155's root frame of a person: ``body_<id>`` (also the markers' namespace)."""
    return f"body_{track_id}"


def joint_frame(joint: str, track_id: int) -> str:
    """REP 155's frame of one H36M-17 joint (not the pelvis): ``<link>_<id>``."""
    return f"{REP155_LINKS[joint]}_{track_id}"


# ------------------------------------------------------------------------------ small types
def ros_time(stamp_ns: int) -> Content:
    """builtin_interfaces/Time (or Duration) of nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return {"sec": sec, "nanosec": nanosec}


def header(stamp_ns: int, frame_id: str) -> Content:
    return {"stamp": ros_time(stamp_ns), "frame_id": frame_id}


def _xyz(values: Iterable[float]) -> Content:
    x, y, z = (float(v) for v in values)
    return {"x": x, "y": y, "z": z}


def _floats(values: Any) -> list[float]:
    return np.asarray(values, dtype=np.float64).ravel().tolist()


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix (transforms3d's, reordered)."""
    # Imported here: transforms3d comes with ROS and the [record] extra, not with the plain core,
    # and ``recording.check_available`` must be importable to say what is missing.
    from transforms3d.quaternions import mat2quat

    w, x, y, z = (float(v) for v in mat2quat(np.asarray(rotation, dtype=np.float64)))
    return x, y, z, w


def _pose(xyz: Iterable[float], quat_xyzw: Iterable[float]) -> Content:
    x, y, z, w = (float(v) for v in quat_xyzw)
    return {"position": _xyz(xyz), "orientation": {"x": x, "y": y, "z": z, "w": w}}


# ------------------------------------------------------------------------------ Skeleton3DArray
def skeleton(person: Person3D) -> Content:
    """One ``Person3D`` as a ``Skeleton3D``."""
    uv = np.asarray(person.joints_uv, dtype=np.float64)
    return {
        "id": int(person.track_id),
        "score": float(person.score),
        "bbox_xyxy": _floats(person.bbox_xyxy),
        "joint_positions": [_xyz(j) for j in np.asarray(person.joints_3d, dtype=np.float64)],
        "joint_u": _floats(uv[:, 0]),
        "joint_v": _floats(uv[:, 1]),
        "joint_confidence": _floats(person.joints_conf),
        "root_position": _xyz(np.asarray(person.root, dtype=np.float64)),
        "root_source": ROOT_SOURCE_CODES[person.root_source],
        "root_covariance": _floats(person.root_cov),
        "placement_note": person.placement_note,
        "keypoints_2d": _floats(person.keypoints_2d),
    }


def skeleton_array(head: Content, people: Sequence[Person3D], latency_ns: int) -> Content:
    """All people of one frame; ``head`` is the source image's stamp with the output frame."""
    return {
        "header": head,
        "joint_names": list(H36M17),
        "skeletons": [skeleton(p) for p in people],
        "processing_latency": ros_time(latency_ns),
    }


def bodies(people: Sequence[Person3D]) -> list[Body]:
    """The (track id, joints) of each person, for ``marker_array`` and ``frame_transforms``."""
    return [(int(p.track_id), np.asarray(p.joints_3d, dtype=np.float64)) for p in people]


def _drawable(people: Iterable[Body]) -> list[Body]:
    return [(track_id, joints) for track_id, joints in people if np.isfinite(joints).all()]


# ------------------------------------------------------------------------------ MarkerArray
def _colour(track_id: int) -> Content:
    b, g, r = colour_for(track_id)
    return {"r": r / 255.0, "g": g / 255.0, "b": b / 255.0, "a": 1.0}


def person_markers(head: Content, track_id: int, joints: np.ndarray, lifetime_ns: int) -> list[Content]:
    """Namespace ``body_<id>``: marker 0 the joints (SPHERE_LIST), marker 1 the bones (LINE_LIST),
    coloured by id as the 2D overlay; the lifetime clears people who left without a DELETE."""
    common = {
        "header": head,
        "ns": body_frame(track_id),
        "action": ADD,
        "pose": _pose((0.0, 0.0, 0.0), _IDENTITY_XYZW),
        "color": _colour(track_id),
        "lifetime": ros_time(lifetime_ns),
    }
    points = [_xyz(j) for j in joints]
    return [
        {**common, "id": 0, "type": SPHERE_LIST, "scale": _xyz((JOINT_DIAMETER_M,) * 3), "points": points},
        {
            **common,
            "id": 1,
            "type": LINE_LIST,
            "scale": _xyz((BONE_WIDTH_M, 0.0, 0.0)),
            "points": [points[i] for bone in H36M17_BONES for i in bone],
        },
    ]


def marker_array(head: Content, people: Iterable[Body], lifetime_ns: int) -> Content:
    """Markers of every drawable body of one frame (none when nobody is seen: lifetimes clear)."""
    return {"markers": [m for i, j in _drawable(people) for m in person_markers(head, i, j, lifetime_ns)]}


# ------------------------------------------------------------------------------ TFMessage
def transform(head: Content, child: str, xyz: Iterable[float], quat_xyzw: Iterable[float]) -> Content:
    """A geometry_msgs/TransformStamped: ``child`` in ``head``'s frame."""
    pose = _pose(xyz, quat_xyzw)
    return {
        "header": head,
        "child_frame_id": child,
        "transform": {"translation": pose["position"], "rotation": pose["orientation"]},
    }


def person_transforms(head: Content, track_id: int, joints: np.ndarray, joint_frames: bool) -> list[Content]:
    """``body_<id>`` (pelvis, REP 155 orientation) under the header's frame and, with
    ``joint_frames``, every other joint under it (positions only: the body frame's orientation)."""
    rotation = rep155_rotation(joints)
    root = joints[_PELVIS]
    body = body_frame(track_id)
    transforms = [transform(head, body, root, quaternion_xyzw(rotation))]
    if joint_frames:
        local = (joints - root) @ rotation  # rows: R^T (joint - root), the joints in the body frame
        in_body = {"stamp": head["stamp"], "frame_id": body}
        transforms += [
            transform(in_body, joint_frame(name, track_id), local[i], _IDENTITY_XYZW)
            for i, name in enumerate(H36M17)
            if i != _PELVIS
        ]
    return transforms


def frame_transforms(head: Content, people: Iterable[Body], joint_frames: bool = False) -> Content:
    """The TFMessage of one frame: every drawable body's frames, stamped with the image's stamp."""
    return {"transforms": [t for i, j in _drawable(people) for t in person_transforms(head, i, j, joint_frames)]}


def camera_body_transform(stamp_ns: int, camera_frame: str, optical_frame: str) -> Content:
    """The static transform of an optical frame under its camera body frame (REP 103), as
    ``demo_publisher`` publishes it on ``/tf_static``."""
    return transform(header(stamp_ns, camera_frame), optical_frame, (0.0, 0.0, 0.0), OPTICAL_IN_CAMERA_BODY)
