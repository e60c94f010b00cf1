"""A small TF buffer: transforms between frames at a time stamp, from /tf and /tf_static samples.

tf2's ``Buffer`` does this wherever ROS 2 is installed, and ``ros/tf_lookup.py`` uses it there. The
PyPI wheels this package also runs on have no tf2 (no ``tf2_ros``, no ``tf2_py``), so this is the
same contract, kept to what the nodes need: a tree of frames (each child has one parent), static
transforms valid at any time, dynamic ones interpolated between the two samples around the stamp
(linear in translation, spherical in rotation), and no extrapolation: a stamp newer than the newest
sample, or older than the oldest kept, is a failure with its reason, as tf2's
``ExtrapolationException`` is. Samples older than ``cache_s`` behind the newest are dropped.

No rclpy here: samples come in as plain numbers, so it is tested without ROS.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import numpy as np
from transforms3d.quaternions import quat2mat


class TransformError(LookupError):
    """No transform between two frames at a stamp; the message says why (tf2's wording where it has one)."""


@dataclass
class _Edge:
    """The transforms of one child frame into its parent: static, or samples sorted by stamp."""

    parent: str
    static: np.ndarray | None = None  # (4, 4) parent_from_child
    stamps: list[int] = field(default_factory=list)  # nanoseconds, ascending
    samples: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # translation, quaternion wxyz


def _slerp(q0: np.ndarray, q1: np.ndarray, f: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions (wxyz), along the shorter arc."""
    if np.dot(q0, q1) < 0.0:
        q1 = -q1
    dot = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if dot > 0.9995:  # nearly equal: linear is exact enough and avoids dividing by sin(0)
        q = q0 + f * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1.0 - f) * theta) * q0 + np.sin(f * theta) * q1) / np.sin(theta)


def transform_matrix(translation: object, quaternion_wxyz: object) -> np.ndarray:
    """A 4x4 rigid transform from a translation and a unit quaternion (w, x, y, z)."""
    m = np.eye(4)
    m[:3, :3] = quat2mat(quaternion_wxyz)
    m[:3, 3] = translation
    return m


class TransformBuffer:
    """Transforms between frames, thread-safe (the executor adds samples while a worker looks up)."""

    def __init__(self, cache_s: float = 10.0) -> None:
        self.cache_ns = int(cache_s * 1e9)
        self._edges: dict[str, _Edge] = {}
        self._lock = threading.Lock()

    def add(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation: object,
        quaternion_xyzw: object,
        *,
        static: bool = False,
    ) -> None:
        """One transform ``parent_from_child`` (as in a ``geometry_msgs/TransformStamped``: the
        child frame's origin and axes expressed in the parent). ValueError for non-finite numbers,
        a zero quaternion or a frame that would be its own ancestor."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        x, y, z, w = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
        q = np.array([w, x, y, z])
        norm = np.linalg.norm(q)
        if not (np.isfinite(t).all() and np.isfinite(q).all() and norm > 1e-9):
            raise ValueError(f"transform {parent} -> {child}: non-finite values or a zero quaternion")
        if not parent or not child or parent == child:
            raise ValueError(f"transform {parent!r} -> {child!r}: frames must be named and differ")
        q = q / norm
        with self._lock:
            if self._is_ancestor(child, parent):
                raise ValueError(f"transform {parent} -> {child} would make a loop in the frame tree")
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent:  # a new parent replaces the old chain, as in tf2
                edge = self._edges[child] = _Edge(parent)
            if static:
                edge.static = transform_matrix(t, q)
                return
            i = bisect.bisect_left(edge.stamps, stamp_ns)
            if i < len(edge.stamps) and edge.stamps[i] == stamp_ns:
                edge.samples[i] = (t, q)
            else:
                edge.stamps.insert(i, stamp_ns)
                edge.samples.insert(i, (t, q))
            oldest = edge.stamps[-1] - self.cache_ns
            drop = bisect.bisect_left(edge.stamps, oldest)
            if drop:
                del edge.stamps[:drop], edge.samples[:drop]

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """``target_from_source`` (4x4) at ``stamp_ns`` (0 = the newest common time, as tf2's
        ``Time()``); TransformError with the reason when there is none."""
        target, source = target.lstrip("/"), source.lstrip("/")
        with self._lock:
            if target == source:
                return np.eye(4)
            up_source, up_target = self._chain(source), self._chain(target)
            common = next((f for f in up_source if f in up_target), None)
            if common is None:
                known = source in self._edges or any(e.parent == source for e in self._edges.values())
                missing = source if not known else target
                raise TransformError(
                    f"{target} and {source} are not connected (no transform chain; "
                    f"frame {missing!r} {'does not exist' if not self._known(missing) else 'is in another tree'})"
                )
            path_s = up_source[: up_source.index(common)]
            path_t = up_target[: up_target.index(common)]
            if stamp_ns == 0:
                stamp_ns = self._latest_common(path_s + path_t)
            common_from_source = self._compose(path_s, stamp_ns, target, source)
            common_from_target = self._compose(path_t, stamp_ns, target, source)
        return np.linalg.inv(common_from_target) @ common_from_source

    def _known(self, frame: str) -> bool:
        return frame in self._edges or any(e.parent == frame for e in self._edges.values())

    def _chain(self, frame: str) -> list[str]:
        """The frame and its ancestors up to the root."""
        chain = [frame]
        while (edge := self._edges.get(chain[-1])) is not None:
            chain.append(edge.parent)
        return chain

    def _is_ancestor(self, frame: str, of: str) -> bool:
        return frame in self._chain(of)

    def _latest_common(self, children: list[str]) -> int:
        """The newest stamp every dynamic edge on the path has a sample for (0 if all are static)."""
        newest = [
            self._edges[c].stamps[-1] for c in children if self._edges[c].static is None and self._edges[c].stamps
        ]
        return min(newest) if newest else 0

    def _compose(self, children: list[str], stamp_ns: int, target: str, source: str) -> np.ndarray:
        """``ancestor_from_child`` along a path of child frames (child first)."""
        m = np.eye(4)
        for child in children:
            m = self._at(child, stamp_ns, target, source) @ m
        return m

    def _at(self, child: str, stamp_ns: int, target: str, source: str) -> np.ndarray:
        edge = self._edges[child]
        if edge.static is not None:
            return edge.static
        stamps = edge.stamps
        what = f"looking up {target} <- {source} at {stamp_ns * 1e-9:.3f} s: {edge.parent} -> {child}"
        if not stamps:
            raise TransformError(f"{what} has no samples")
        if stamp_ns > stamps[-1]:
            raise TransformError(
                f"{what}: extrapolation into the future (newest sample {stamps[-1] * 1e-9:.3f} s, "
                f"{(stamp_ns - stamps[-1]) * 1e-9:.3f} s older than the stamp)"
            )
        if stamp_ns < stamps[0]:
            raise TransformError(f"{what}: extrapolation into the past (oldest kept sample {stamps[0] * 1e-9:.3f} s)")
        i = bisect.bisect_left(stamps, stamp_ns)
        if stamps[i] == stamp_ns:
            return transform_matrix(*edge.samples[i])
        (t0, q0), (t1, q1) = edge.samples[i - 1], edge.samples[i]
        f = (stamp_ns - stamps[i - 1]) / (stamps[i] - stamps[i - 1])
        return transform_matrix(t0 + f * (t1 - t0), _slerp(q0, q1, f))
