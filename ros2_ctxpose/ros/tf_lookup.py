"""Transforms between frames at a time stamp, as 4x4 matrices, with the reason when there is none.

    lookup = TfLookup(node)
    matrix, reason = lookup.lookup("map", "cam0_optical_frame", stamp)   # X_map = M @ X_cam

``tf2_ros.Buffer`` and ``TransformListener`` do the work wherever tf2_ros is importable (every ROS 2
install). The PyPI ROS wheels this project also runs on have no tf2_ros, so otherwise
:class:`TransformBuffer` (plain Python and numpy) is filled by a minimal listener of ``/tf`` and
``/tf_static``: it keeps a short history per frame, composes the chain of transforms between two
frames through their common ancestor, and interpolates in time (linear in translation, spherical
in rotation). It refuses what tf2 refuses, with a reason: unknown or unconnected frames, stamps
before the kept history, and stamps after the newest transform by more than ``max_extrapolation_s``.
A stamp of 0 means "the newest", as in tf2; such a lookup is *stale* when a moving transform in
the chain is older than ``max_age_s``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from scipy.spatial.transform import Rotation, Slerp

#: A lookup's answer: the 4x4 matrix taking points from the source frame to the target frame, or
#: None and why.
Lookup = tuple[np.ndarray | None, str]

#: The listener QoS of tf2_ros (keep last 100, reliable; /tf_static also transient local).
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def matrix(translation: np.ndarray, quaternion_xyzw: np.ndarray) -> np.ndarray:
    """4x4 homogeneous matrix of a translation and a rotation quaternion (x, y, z, w)."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(quaternion_xyzw).as_matrix()
    m[:3, 3] = translation
    return m


def transform_matrix(msg: Any) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform (or TransformStamped): child frame -> parent frame."""
    t = getattr(msg, "transform", msg)
    return matrix(
        np.array([t.translation.x, t.translation.y, t.translation.z]),
        np.array([t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w]),
    )


@dataclass
class _Edge:
    """Transforms from one child frame to its parent over time (sorted by stamp)."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # quaternions x, y, z, w


class TransformBuffer:
    """The transform tree of ``/tf`` and ``/tf_static``, ROS-free: see the module docstring."""

    def __init__(
        self,
        cache_s: float = 10.0,
        max_extrapolation_s: float = 0.0,
        max_age_s: float = 1.0,
        clock_ns: Callable[[], int] | None = None,
    ) -> None:
        """``clock_ns``: now in ns, for the staleness of "newest" lookups (None: never stale)."""
        self._clock_ns = clock_ns
        self.cache_ns = int(cache_s * 1e9)
        self.max_extrapolation_ns = int(max_extrapolation_s * 1e9)
        self.max_age_ns = int(max_age_s * 1e9)
        self._edges: dict[str, _Edge] = {}
        self._lock = threading.Lock()

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation: np.ndarray,
        quaternion_xyzw: np.ndarray,
        static: bool = False,
    ) -> str | None:
        """Add one transform (child -> parent); returns why it was refused, or None."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            return f"invalid frames {parent!r} -> {child!r}"
        q = np.asarray(quaternion_xyzw, dtype=np.float64)
        t = np.asarray(translation, dtype=np.float64)
        if not (np.isfinite(q).all() and np.isfinite(t).all()) or np.linalg.norm(q) < 1e-9:
            return f"non-finite or zero transform {parent!r} -> {child!r}"
        q = q / np.linalg.norm(q)
        with self._lock:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = self._edges[child] = _Edge(parent, static)
            if static:
                edge.stamps, edge.translations, edge.rotations = [stamp_ns], [t], [q]
                return None
            k = bisect.bisect_right(edge.stamps, stamp_ns)
            if k > 0 and edge.stamps[k - 1] == stamp_ns:
                edge.translations[k - 1], edge.rotations[k - 1] = t, q
            else:
                edge.stamps.insert(k, stamp_ns)
                edge.translations.insert(k, t)
                edge.rotations.insert(k, q)
            old = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_ns)
            del edge.stamps[:old], edge.translations[:old], edge.rotations[:old]
        return None

    def frames(self) -> set[str]:
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def lookup(self, target: str, source: str, stamp_ns: int) -> Lookup:
        """The transform taking points in ``source`` to ``target`` at ``stamp_ns`` (0 = newest)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4), ""
        with self._lock:
            up_source, up_target = self._chain(source), self._chain(target)
            for frame, chain in ((source, up_source), (target, up_target)):
                if len(chain) == 1 and frame not in self._parents():
                    return None, f"no transform: frame {frame!r} is unknown"
            common = next((f for f in up_source if f in up_target), None)
            if common is None:
                return (
                    None,
                    f"no transform: {source!r} and {target!r} are not connected (roots {up_source[-1]!r}, {up_target[-1]!r})",
                )
            from_source, reason = self._up_to(up_source[: up_source.index(common)], stamp_ns)
            if from_source is None:
                return None, reason
            from_target, reason = self._up_to(up_target[: up_target.index(common)], stamp_ns)
            if from_target is None:
                return None, reason
        return np.linalg.inv(from_target) @ from_source, ""

    def _up_to(self, chain: list[str], stamp_ns: int) -> Lookup:
        """The product of the child -> parent matrices of ``chain`` (from the bottom up)."""
        product = np.eye(4)
        for frame in chain:
            step, reason = self._at(frame, stamp_ns)
            if step is None:
                return None, reason
            product = step @ product
        return product, ""

    def _parents(self) -> set[str]:
        return {e.parent for e in self._edges.values()}

    def _chain(self, frame: str) -> list[str]:
        """``frame`` and its ancestors up to the root (a loop in a broken tree ends the walk)."""
        chain = [frame]
        while chain[-1] in self._edges and len(chain) <= len(self._edges):
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def _at(self, child: str, stamp_ns: int) -> Lookup:
        """The child -> parent matrix of one edge at ``stamp_ns``, interpolated."""
        edge = self._edges[child]
        stamps = edge.stamps
        what = f"{edge.parent!r} -> {child!r}"
        if edge.static:
            return matrix(edge.translations[0], edge.rotations[0]), ""
        if stamp_ns == 0:
            age = max(self._clock_ns() - stamps[-1], 0) if self._clock_ns is not None else 0
            if age > self.max_age_ns:
                return None, f"stale: the newest transform {what} is {age * 1e-9:.2f} s old"
            return matrix(edge.translations[-1], edge.rotations[-1]), ""
        if stamp_ns > stamps[-1] + self.max_extrapolation_ns:
            return None, (
                f"extrapolation into the future: {what} is known until {stamps[-1] * 1e-9:.3f}, "
                f"asked for {stamp_ns * 1e-9:.3f} ({(stamp_ns - stamps[-1]) * 1e-9:.3f} s later)"
            )
        if stamp_ns < stamps[0]:
            return None, (
                f"extrapolation into the past: {what} is known from {stamps[0] * 1e-9:.3f}, "
                f"asked for {stamp_ns * 1e-9:.3f}"
            )
        k = bisect.bisect_left(stamps, stamp_ns)
        if k >= len(stamps) - 1 or stamps[k] == stamp_ns:
            k = min(k, len(stamps) - 1)
            return matrix(edge.translations[k], edge.rotations[k]), ""
        t0, t1 = stamps[k - 1], stamps[k]
        a = (stamp_ns - t0) / (t1 - t0)
        translation = (1 - a) * edge.translations[k - 1] + a * edge.translations[k]
        slerp = Slerp([0.0, 1.0], Rotation.from_quat([edge.rotations[k - 1], edge.rotations[k]]))
        return matrix(translation, slerp([a]).as_quat()[0]), ""


class TfLookup:
    """Transform lookups for a node: tf2_ros where importable, else :class:`TransformBuffer` fed by
    a listener of /tf and /tf_static (see the module docstring)."""

    def __init__(self, node: Node, cache_s: float = 10.0, max_extrapolation_s: float = 0.0) -> None:
        self._node = node
        try:
            from rclpy.duration import Duration
            from tf2_ros import Buffer, TransformListener
        except ImportError:
            self._tf2: Any = None
            self.buffer = TransformBuffer(
                cache_s, max_extrapolation_s, clock_ns=lambda: node.get_clock().now().nanoseconds
            )
            self._subscriptions = [
                node.create_subscription(_tf_message(), "/tf", self._on_tf, TF_QOS),
                node.create_subscription(_tf_message(), "/tf_static", self._on_tf_static, TF_STATIC_QOS),
            ]
            self.backend = "own /tf listener (tf2_ros not importable)"
            return
        self._tf2 = Buffer(cache_time=Duration(seconds=cache_s), node=node)
        self._listener = TransformListener(self._tf2, node)
        self.backend = "tf2_ros"

    def lookup(self, target: str, source: str, stamp: Time | int) -> Lookup:
        """The 4x4 matrix taking points from ``source`` to ``target`` at ``stamp`` (0 = newest)."""
        stamp_ns = stamp if isinstance(stamp, int) else stamp.nanoseconds
        if self._tf2 is None:
            return self.buffer.lookup(target, source, stamp_ns)
        from tf2_ros import TransformException

        try:
            msg = self._tf2.lookup_transform(target, source, Time(nanoseconds=stamp_ns))
        except TransformException as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return transform_matrix(msg), ""

    def close(self) -> None:
        """Stop listening (the node's subscriptions are destroyed)."""
        if self._tf2 is None:
            for subscription in self._subscriptions:
                self._node.destroy_subscription(subscription)
            self._subscriptions = []
        else:
            self._listener.unregister()

    def _on_tf(self, msg: Any) -> None:
        self._add(msg, static=False)

    def _on_tf_static(self, msg: Any) -> None:
        self._add(msg, static=True)

    def _add(self, msg: Any, static: bool) -> None:
        for t in msg.transforms:
            stamp = Time.from_msg(t.header.stamp).nanoseconds
            r, p = t.transform.rotation, t.transform.translation
            reason = self.buffer.set_transform(
                t.header.frame_id,
                t.child_frame_id,
                stamp,
                np.array([p.x, p.y, p.z]),
                np.array([r.x, r.y, r.z, r.w]),
                static,
            )
            if reason:
                self._node.get_logger().warning(f"ignoring a transform: {reason}", throttle_duration_sec=10.0)


def _tf_message() -> type:
    from tf2_msgs.msg import TFMessage

    return TFMessage
