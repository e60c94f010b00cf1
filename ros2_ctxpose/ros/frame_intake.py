"""Taking camera frames off the middleware: only the newest, only when the worker can use it.

The pieces of pose3d_node's frame intake (see the node's docstring for how they work together):
:class:`FrameGate` keeps the executor from taking frames while the worker computes,
:class:`LatestFrame` is the one-frame slot between them, :class:`RateLimiter` spaces frames for
``max_input_rate_hz``, :class:`FrameSequence` counts frames never taken from the publishers'
sequence numbers, :class:`DepthBuffer` pairs depth images with colour frames, and
:func:`cdr_stamp_ns` reads a stamp from serialized bytes. None of them knows the node.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import CallbackGroup


def cdr_stamp_ns(raw: bytes) -> int | None:
    """The header stamp (ns) of a serialized message that starts with a std_msgs/Header, read from
    the CDR bytes without deserializing them; None when the encapsulation is not plain CDR/XCDR2
    or the stamp is zero. (Header is the first field of Image, CompressedImage and CameraInfo;
    its Time's int32 sec and uint32 nanosec are the first 8 bytes after the 4-byte
    encapsulation header.)"""
    if len(raw) < 12 or raw[0] != 0:
        return None
    if raw[1] in (0x01, 0x07):  # CDR_LE, PLAIN_CDR2_LE
        sec, nanosec = struct.unpack_from("<iI", raw, 4)
    elif raw[1] in (0x00, 0x06):  # CDR_BE, PLAIN_CDR2_BE
        sec, nanosec = struct.unpack_from(">iI", raw, 4)
    else:
        return None
    stamp = sec * 1_000_000_000 + nanosec
    return stamp or None


class RateLimiter:
    """When the next frame may be taken, for at most ``rate_hz`` frames per second.

    Frames are taken on a schedule (one every ``1 / rate_hz`` s after the previous one's due
    time), so a 30 Hz camera limited to 15 Hz gives 15 frames per second, not 10. A frame taken
    later than a whole period after its due time starts the schedule afresh, as does time going
    backwards; ``rate_hz`` 0 means no limit.
    """

    def __init__(self) -> None:
        self._next: float | None = None

    def wait_s(self, now: float, rate_hz: float) -> float:
        """Seconds to wait from ``now`` before the next frame may be taken."""
        if rate_hz <= 0.0 or self._next is None:
            return 0.0
        return max(0.0, self._next - now)

    def taken(self, t: float, rate_hz: float) -> None:
        """A frame was taken at ``t``: schedule the next one."""
        if rate_hz <= 0.0:
            self._next = None
            return
        period = 1.0 / rate_hz
        on_schedule = self._next is not None and 0.0 <= t - self._next < period
        self._next = self._next + period if on_schedule else t + period


class FrameGate(CallbackGroup):
    """A callback group that lets the executor take frames only while it is open.

    While closed, the executor leaves the frame subscription out of its wait set: arriving frames
    replace each other in the middleware's keep-last-1 history and are never taken, deserialized or
    copied. The worker closes the gate when it takes a frame to compute, and it opens again shortly
    before the worker is expected to be done (``open_at``, from a keeper thread), or at once when
    the worker is ready (``open``). In that window the executor takes the newest frames into the
    slot, so a fresh frame is waiting when the worker finishes and it never waits for the executor
    (a hand-over between two threads costs a scheduling delay on a busy CPU), while the frames that
    arrive during most of the computation are never taken.

    The subscription's QoS event handlers (lost messages) belong to the group too and are waited on
    only while it is open: with Fast DDS an event of a reader holding unread data wakes the wait
    set at once, so waiting on them while frames stay untaken would spin the executor (measured:
    64 % of a core at 15 Hz). Their counts accumulate meanwhile and arrive with the next window.
    """

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._open = False
        self._open_at: float | None = None
        self._stopped = False
        self._wake = wake
        #: When the gate last opened (monotonic): frames put into the slot before it are stale.
        self.opened_at = 0.0
        self._keeper = threading.Thread(target=self._keep, name="pose3d_gate", daemon=True)
        self._keeper.start()

    def can_execute(self, entity: Any) -> bool:
        return self._open

    def beginning_execution(self, entity: Any) -> bool:
        return self._open

    def ending_execution(self, entity: Any) -> None:
        pass

    def open(self) -> None:
        """Open now (the worker is ready for a frame)."""
        with self._cond:
            self._open_at = None
            opened = self._set_open()
        if opened:
            self._wake()

    def open_at(self, when: float) -> None:
        """Open at monotonic time ``when`` (the worker expects to be done a little after it)."""
        with self._cond:
            self._open_at = when
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open, self._open_at = False, None

    def stop(self) -> None:
        """Close for good and end the keeper thread."""
        with self._cond:
            self._open, self._open_at, self._stopped = False, None, True
            self._cond.notify_all()
        if self._keeper is not threading.current_thread():
            self._keeper.join(timeout=1.0)

    @property
    def is_open(self) -> bool:
        return self._open

    def _set_open(self) -> bool:
        if self._open or self._stopped:
            return False
        self._open, self.opened_at = True, time.monotonic()
        return True

    def _keep(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._open_at is None:
                    self._cond.wait()
                    continue
                delay = self._open_at - time.monotonic()
                if delay > 0.0:
                    self._cond.wait(delay)
                    continue
                self._open_at = None
                if self._set_open():
                    self._wake()


class FrameSequence:
    """What the publishers' sequence numbers tell: frames sent but never taken (per publisher), and
    the camera's frame period (from the source time stamps)."""

    MAX_PUBLISHERS = 16

    def __init__(self) -> None:
        self._last: dict[bytes, tuple[int, int]] = {}
        #: Seconds between two frames of the camera (exponential average); None until known.
        self.period_s: float | None = None

    def count(self, info: Any) -> int:
        """Frames skipped before the one described by ``info`` (rclpy's MessageInfo); 0 when unknown."""
        seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        if not seq or gid is None:
            return 0
        key = bytes(gid.get("data", b"")) if isinstance(gid, dict) else bytes(gid)
        source_ns = int(info.get("source_timestamp") or 0)
        last = self._last.get(key)
        if len(self._last) >= self.MAX_PUBLISHERS and last is None:
            self._last.clear()
        self._last[key] = (seq, source_ns)
        if last is None or seq <= last[0]:
            return 0
        if source_ns > last[1]:
            period = (source_ns - last[1]) * 1e-9 / (seq - last[0])
            self.period_s = period if self.period_s is None else 0.8 * self.period_s + 0.2 * period
        return seq - last[0] - 1

    def reset(self) -> None:
        self._last.clear()
        self.period_s = None


class LatestFrame:
    """A one-message slot: ``put`` replaces, ``take`` waits for a message and empties the slot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[object, float] | None = None
        self._closed = False
        #: Messages discarded by ``take`` as older than asked for.
        self.stale = 0

    def put(self, msg: object) -> bool:
        """Store ``msg`` (with its arrival time); True when it replaced one nobody had taken."""
        with self._cond:
            replaced = self._item is not None
            self._item = (msg, time.monotonic())
            self._cond.notify()
            return replaced

    def take(self, timeout: float, since: float = 0.0) -> tuple[object, float] | None:
        """The newest message and its arrival time, or None after ``timeout`` s or once closed.
        A message that arrived before ``since`` (monotonic) is stale: it is discarded (counted in
        ``stale``) and a newer one awaited."""

        def ready() -> bool:
            if self._item is not None and self._item[1] < since:
                self._item = None
                self.stale += 1
            return self._item is not None or self._closed

        with self._cond:
            self._cond.wait_for(ready, timeout)
            item, self._item = self._item, None
            return item

    def wait_closed(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s unless closed meanwhile; True when closed."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout)

    def close(self) -> None:
        """Wake the waiting worker for good (the node stops processing)."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class DepthBuffer:
    """The last few depth images (by stamp); ``nearest`` waits briefly for one that matches a
    colour stamp.

    Aligned depth is usually published a little after its colour image, so a frame taken at once
    would often find no partner yet. This is message_filters' approximate-time pairing reduced to
    what one worker needs (the newest colour frame, one depth topic) without its dependency. Items
    are kept as they came (serialized bytes): only the one paired with a processed frame is ever
    deserialized.
    """

    def __init__(self, size: int = 8) -> None:
        self._cond = threading.Condition()
        self._items: deque[tuple[int, Any]] = deque(maxlen=size)

    def add(self, stamp_ns: int, item: Any) -> None:
        with self._cond:
            self._items.append((stamp_ns, item))
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def nearest(self, stamp_ns: int, max_offset_s: float, wait_s: float) -> Any | None:
        """The stored item closest to ``stamp_ns`` within ``max_offset_s``, waiting up to ``wait_s``
        for it while none is close enough; None if none came."""

        def best() -> Any | None:
            closest = min(self._items, key=lambda it: abs(it[0] - stamp_ns), default=None)
            return closest[1] if closest is not None and abs(closest[0] - stamp_ns) <= max_offset_s * 1e9 else None

        with self._cond:
            return self._cond.wait_for(best, wait_s)
