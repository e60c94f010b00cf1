"""Recording results to MCAP, for Foxglove (or any MCAP reader) without ROS or RViz.

``McapRecorder(path)`` writes, per frame (``write(stamp_ns, frame_id, people, image=None)``), what
the ROS node publishes, as ROS 2 messages (``ros2msg`` schemas, CDR data, the ``ros2`` profile) so
that Foxglove's 3D, Image and Raw Messages panels show them as they would a ``ros2 bag``:

====================================  ========================================  ==================
topic                                 type                                      content
====================================  ========================================  ==================
``/human/pose3d``                     ``ros2_ctxpose/msg/Skeleton3DArray``      the results
``/human/pose3d/markers``             ``visualization_msgs/msg/MarkerArray``    joints (spheres) and
                                                                                bones (lines) per
                                                                                person, coloured by
                                                                                id as the overlay
``/tf``                               ``tf2_msgs/msg/TFMessage``                ``body_<id>`` under
                                                                                the camera frame
``/tf_static``                        ``tf2_msgs/msg/TFMessage``                ``upright_frame`` ->
                                                                                camera frame
                                                                                (optional)
``/human/pose3d/image/compressed``    ``sensor_msgs/msg/CompressedImage``       an image per frame,
                                                                                e.g. the overlay
                                                                                (optional)
====================================  ========================================  ==================

``config/foxglove_layout.json`` arranges those panels. Writing needs ``mcap`` and
``mcap-ros2-support`` (pure Python, pinned in tools/requirements-venv.txt) and no ROS: the message
definitions, with their dependencies, are shipped as text in ``ros_msg_definitions.py``, which
``python -m ros2_ctxpose.core.recording --regenerate`` rebuilds from the ``.msg`` files of this
repository and of the ROS packages found on ``AMENT_PREFIX_PATH`` (a test checks that they agree).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from .body_frame import rep155_rotation
from .overlay import colour_for
from .results import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_FLOOR,
    ROOT_FROM_INTRINSICS,
    ROOT_FROM_VIEWS,
    ROOT_SCALE_UNKNOWN,
    Person3D,
)
from .skeleton import H36M17, H36M17_BONES

POSE_TOPIC: Final[str] = "/human/pose3d"
MARKER_TOPIC: Final[str] = "/human/pose3d/markers"
IMAGE_TOPIC: Final[str] = "/human/pose3d/image/compressed"
TF_TOPIC: Final[str] = "/tf"
TF_STATIC_TOPIC: Final[str] = "/tf_static"

SKELETONS_TYPE: Final[str] = "ros2_ctxpose/msg/Skeleton3DArray"
MARKERS_TYPE: Final[str] = "visualization_msgs/msg/MarkerArray"
TF_TYPE: Final[str] = "tf2_msgs/msg/TFMessage"
IMAGE_TYPE: Final[str] = "sensor_msgs/msg/CompressedImage"
#: The types whose full definitions ``ros_msg_definitions.py`` holds.
RECORDED_TYPES: Final[tuple[str, ...]] = (SKELETONS_TYPE, MARKERS_TYPE, TF_TYPE, IMAGE_TYPE)

#: Skeleton3D's ROOT_* constants (msg/Skeleton3D.msg).
_ROOT_SOURCE: Final[dict[str, int]] = {
    ROOT_FROM_INTRINSICS: 1,
    ROOT_FROM_DEPTH: 2,
    ROOT_SCALE_UNKNOWN: 3,
    ROOT_FROM_FLOOR: 4,
    ROOT_FROM_VIEWS: 5,
}
#: visualization_msgs/Marker constants.
_SPHERE_LIST, _LINE_LIST, _ADD, _DELETEALL = 7, 5, 0, 3
JOINT_DIAMETER_M: Final[float] = 0.05
BONE_WIDTH_M: Final[float] = 0.02
#: Rotation from a camera's upright body frame (x forward, y left, z up: REP 103) to its optical
#: frame (x right, y down, z forward), as a quaternion (x, y, z, w).
OPTICAL_IN_UPRIGHT: Final[tuple[float, float, float, float]] = (-0.5, 0.5, -0.5, 0.5)

_PELVIS = H36M17.index("pelvis")


class RecordingUnavailable(ValueError):
    """The MCAP packages are not installed."""


def check_available() -> None:
    """``RecordingUnavailable`` saying what to install when ``mcap``/``mcap-ros2-support`` are missing."""
    try:
        import mcap_ros2.writer  # noqa: F401
    except ImportError as exc:
        raise RecordingUnavailable(
            f"recording MCAP needs the packages mcap and mcap-ros2-support ({exc}); install them with "
            "pip install mcap==1.6.0 mcap-ros2-support==0.6.0"
        ) from None


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    norm = math.sqrt(sum(v * v for v in q))
    x, y, z, w = (float(v / norm) for v in q)
    return x, y, z, w


# ------------------------------------------------------------------------------ messages as dicts
def _time(stamp_ns: int) -> dict[str, int]:
    return {"sec": int(stamp_ns // 1_000_000_000), "nanosec": int(stamp_ns % 1_000_000_000)}


def _point(xyz: Iterable[float]) -> dict[str, float]:
    x, y, z = (float(v) for v in xyz)
    return {"x": x, "y": y, "z": z}


def skeleton_array(header: dict[str, Any], people: Sequence[Person3D], latency_ns: int = 0) -> dict[str, Any]:
    """A Skeleton3DArray (as ``ros/messages.py`` builds it) as a dict for the CDR encoder."""
    skeletons = []
    for p in people:
        uv = np.asarray(p.joints_uv, dtype=np.float64)
        skeletons.append(
            {
                "id": int(p.track_id),
                "score": float(p.score),
                "bbox_xyxy": [float(v) for v in np.asarray(p.bbox_xyxy, dtype=np.float64)],
                "joint_positions": [_point(j) for j in np.asarray(p.joints_3d, dtype=np.float64)],
                "joint_u": [float(v) for v in uv[:, 0]],
                "joint_v": [float(v) for v in uv[:, 1]],
                "joint_confidence": [float(v) for v in np.asarray(p.joints_conf, dtype=np.float64)],
                "root_position": _point(np.asarray(p.root, dtype=np.float64)),
                "root_source": _ROOT_SOURCE[p.root_source],
                "keypoints_2d": [float(v) for v in np.asarray(p.keypoints_2d, dtype=np.float64).ravel()],
                "root_covariance": [float(v) for v in np.asarray(p.root_cov, dtype=np.float64).ravel()],
                "placement_note": p.placement_note,
            }
        )
    return {
        "header": header,
        "joint_names": list(H36M17),
        "skeletons": skeletons,
        "processing_latency": {"sec": int(latency_ns // 1_000_000_000), "nanosec": int(latency_ns % 1_000_000_000)},
    }


def _colour(track_id: int) -> dict[str, float]:
    b, g, r = colour_for(track_id)
    return {"r": r / 255.0, "g": g / 255.0, "b": b / 255.0, "a": 1.0}


def marker_array(header: dict[str, Any], people: Sequence[Person3D]) -> dict[str, Any]:
    """A DELETEALL (so people who left disappear, also when seeking), then per person the joints
    (SPHERE_LIST, id 0) and bones (LINE_LIST, id 1) in namespace ``body_<id>``, as the node's."""
    identity = {"position": _point((0, 0, 0)), "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}
    markers: list[dict[str, Any]] = [{"header": header, "action": _DELETEALL, "pose": identity}]
    for p in people:
        joints = np.asarray(p.joints_3d, dtype=np.float64)
        if not np.isfinite(joints).all():
            continue
        common = {
            "header": header,
            "ns": f"body_{int(p.track_id)}",
            "action": _ADD,
            "pose": identity,
            "color": _colour(int(p.track_id)),
        }
        markers.append(
            {
                **common,
                "id": 0,
                "type": _SPHERE_LIST,
                "points": [_point(j) for j in joints],
                "scale": _point((JOINT_DIAMETER_M,) * 3),
            }
        )
        markers.append(
            {
                **common,
                "id": 1,
                "type": _LINE_LIST,
                "scale": _point((BONE_WIDTH_M, 0, 0)),
                "points": [_point(joints[i]) for bone in H36M17_BONES for i in bone],
            }
        )
    return {"markers": markers}


def _transform(header: dict[str, Any], child: str, xyz: Iterable[float], quat_xyzw: Iterable[float]) -> dict[str, Any]:
    x, y, z, w = (float(v) for v in quat_xyzw)
    return {
        "header": header,
        "child_frame_id": child,
        "transform": {"translation": _point(xyz), "rotation": {"x": x, "y": y, "z": z, "w": w}},
    }


def body_transforms(header: dict[str, Any], people: Sequence[Person3D]) -> dict[str, Any]:
    """``body_<id>`` of every person (pelvis, REP 155 orientation) under the header's frame."""
    transforms = []
    for p in people:
        joints = np.asarray(p.joints_3d, dtype=np.float64)
        if np.isfinite(joints[_PELVIS]).all():
            transforms.append(
                _transform(header, f"body_{int(p.track_id)}", joints[_PELVIS], quaternion_xyzw(rep155_rotation(joints)))
            )
    return {"transforms": transforms}


# ------------------------------------------------------------------------------ the recorder
class McapRecorder:
    """Writes results to an MCAP file that Foxglove opens with a 3D scene of the skeletons.

    Args:
        path: the ``.mcap`` file (its folder is created; an existing file is replaced).
        upright_frame: when given (e.g. ``"camera_link"``), a static transform from this frame to
            each camera frame written (the optical frame's rotation, REP 103) is recorded on
            ``/tf_static``, so a 3D view following ``upright_frame`` shows people upright. Leave
            it out where the recording sits beside a real TF tree.
        jpeg_quality: of the images passed to ``write``.

    Not thread-safe: call ``write`` from one thread (the node's worker), ``close`` once at the end
    (also a context manager).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, upright_frame: str | None = None, jpeg_quality: int = 85
    ) -> None:
        check_available()
        from mcap_ros2.writer import Writer

        from .ros_msg_definitions import DEFINITIONS

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        try:
            self._writer = Writer(self._file)
            self._schemas = {name: self._writer.register_msgdef(name, DEFINITIONS[name]) for name in RECORDED_TYPES}
        except Exception:
            self._file.close()
            raise
        self.upright_frame = upright_frame
        self.jpeg_quality = int(jpeg_quality)
        self._static_frames: set[str] = set()
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
        ``image`` (e.g. ``core.overlay.draw_people``'s), stored as JPEG."""
        if self._closed:
            raise ValueError(f"{self.path}: recorder already closed")
        stamp_ns = int(stamp_ns)
        header = {"stamp": _time(stamp_ns), "frame_id": frame_id}
        if self.upright_frame and frame_id not in self._static_frames:
            self._static_frames.add(frame_id)
            self._static.append(
                _transform(
                    {"stamp": _time(stamp_ns), "frame_id": self.upright_frame},
                    frame_id,
                    (0.0, 0.0, 0.0),
                    OPTICAL_IN_UPRIGHT,
                )
            )
            self._put(TF_STATIC_TOPIC, TF_TYPE, {"transforms": list(self._static)}, stamp_ns)
        self._put(POSE_TOPIC, SKELETONS_TYPE, skeleton_array(header, people, latency_ns), stamp_ns)
        self._put(MARKER_TOPIC, MARKERS_TYPE, marker_array(header, people), stamp_ns)
        tf = body_transforms(header, people)
        if tf["transforms"]:
            self._put(TF_TOPIC, TF_TYPE, tf, stamp_ns)
        if image is not None:
            ok, jpeg = cv2.imencode(
                ".jpg", np.ascontiguousarray(image, dtype=np.uint8), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
            )
            if not ok:
                raise ValueError(f"cannot encode a {image.shape} image as JPEG")
            self._put(IMAGE_TOPIC, IMAGE_TYPE, {"header": header, "format": "jpeg", "data": jpeg.tobytes()}, stamp_ns)
        self.frames += 1

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


# ------------------------------------------------------------------------------ definitions
_PRIMITIVES: Final[frozenset[str]] = frozenset(
    [
        "bool",
        "byte",
        "char",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "string",
        "wstring",
    ]
)
_SEPARATOR: Final[str] = "=" * 80


def _field_types(text: str, package: str) -> list[str]:
    """The non-primitive types (``pkg/msg/Name``) a .msg text uses, in order of appearance."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind = re.sub(r"\[.*?\]$", "", line.split()[0])
        kind = re.sub(r"<=\d+$", "", kind)
        if kind in _PRIMITIVES:
            continue
        pkg, _, name = kind.rpartition("/")
        pkg = pkg.split("/")[0] if pkg else package
        found.append(f"{pkg}/msg/{name}")
    return found


def _strip_comments(text: str) -> str:
    """The .msg text without comment-only and blank lines (what decoders need; 10x smaller)."""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def msg_search_roots() -> list[tuple[str | None, Path]]:
    """Where ``build_definition`` looks for .msg files, in order: (package, folder of its .msg
    files) for this repository's msg/, then (None, a share/ folder holding ``<pkg>/msg/``) for
    each AMENT_PREFIX_PATH entry, then the tf2_msgs fallback folder."""
    repo = Path(__file__).resolve().parents[2]
    roots: list[tuple[str | None, Path]] = [("ros2_ctxpose", repo / "msg")]
    roots += [(None, Path(p) / "share") for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    roots.append(("tf2_msgs", repo / "tools" / "tf2_msgs_fallback" / "msg"))
    return roots


def _find_msg(type_name: str, roots: Sequence[tuple[str | None, Path]]) -> Path:
    pkg, _, name = type_name.split("/")
    for owner, root in roots:
        candidate = root / pkg / "msg" / f"{name}.msg" if owner is None else root / f"{name}.msg"
        if owner in (None, pkg) and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {name}.msg of package {pkg} under {[str(r) for _, r in roots]}")


def build_definition(type_name: str, roots: Sequence[tuple[str | None, Path]] | None = None) -> str:
    """The full ``ros2msg`` definition of ``type_name``: its .msg text, then every dependency's,
    each after a line of 80 ``=`` and ``MSG: pkg/Name`` (the format rosbag2 writes)."""
    roots = list(roots) if roots is not None else msg_search_roots()
    main = _strip_comments(_find_msg(type_name, roots).read_text())
    parts, seen = [main], {type_name}
    queue = _field_types(main, type_name.split("/")[0])
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = _strip_comments(_find_msg(dep, roots).read_text())
        pkg, _, name = dep.split("/")
        parts.append(f"{_SEPARATOR}\nMSG: {pkg}/{name}\n{text}")
        queue = _field_types(text, pkg) + queue
    return "\n".join(parts) + "\n"


def _quoted(text: str) -> str:
    """A Python literal of ``text`` as ``ruff format`` leaves it (double quotes unless it holds some)."""
    return repr(text) if '"' in text and "'" not in text else json.dumps(text)


def definitions_module_text(roots: Sequence[tuple[str | None, Path]] | None = None) -> str:
    """The source of ``ros_msg_definitions.py``."""
    lines = [
        '"""Full ros2msg definitions of the recorded message types, for MCAP schemas without ROS.',
        "",
        "Generated by ``python -m ros2_ctxpose.core.recording --regenerate`` from msg/ and the ROS",
        "packages' share folders (comments left out); do not edit. test/test_recording.py checks it",
        "against the installed .msg files where they are available.",
        '"""',
        "# flake8: noqa: E501",
        "",
        "DEFINITIONS: dict[str, str] = {",
    ]
    for name in RECORDED_TYPES:
        lines.append(f"    {json.dumps(name)}: (")
        lines.extend(f"        {_quoted(line)}" for line in build_definition(name, roots).splitlines(keepends=True))
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:  # pragma: no cover - a maintenance command
    parser = argparse.ArgumentParser(description="Regenerate ros_msg_definitions.py from the .msg files.")
    parser.add_argument("--regenerate", action="store_true", help="write the module (default: print it)")
    args = parser.parse_args()
    text = definitions_module_text()
    if args.regenerate:
        target = Path(__file__).with_name("ros_msg_definitions.py")
        target.write_text(text)
        print(f"wrote {target}")
    else:
        print(text, end="")


if __name__ == "__main__":  # pragma: no cover
    main()
