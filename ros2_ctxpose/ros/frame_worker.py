"""One activation's frame flow: the image callback fills the one-frame slot, the worker thread
takes the newest frame, opens and closes the gate around its computation and hands the frame to
the node's processing (see pose3d_node's docstring for why it works this way).

A new :class:`FrameWorker` is made on each activation (so the rate schedule and the publishers'
sequence numbers start afresh) and stopped on deactivation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from ros2_ctxpose.ros import image_codec
from ros2_ctxpose.ros.diagnostics import FrameStats
from ros2_ctxpose.ros.frame_intake import FrameGate, FrameSequence, LatestFrame, RateLimiter
from ros2_ctxpose.ros.parameters import RosSettings

#: The node's processing of one taken frame (message, arrival time); False: stop the worker (the
#: node is shutting down or being deactivated).
Process = Callable[[Any, float], bool]


class FrameWorker:
    """The gate, the slot, the rate limit, the sequence count and the worker thread of one activation."""

    def __init__(
        self,
        image_type: type,
        stats: FrameStats,
        settings: Callable[[], RosSettings],
        process: Process,
        wake: Callable[[], None],
        running: Callable[[], bool],
    ) -> None:
        self.image_type = image_type
        self.gate = FrameGate(wake=wake)
        self.frames = LatestFrame()
        self._stats, self._settings, self._process, self._running = stats, settings, process, running
        self._rate = RateLimiter()
        self._sequence = FrameSequence()
        self._rate_waited = False
        self._thread = threading.Thread(target=self._work, name="pose3d_worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Close the gate and the slot and wait up to ``timeout`` s for the frame in progress;
        False when it did not finish in time."""
        self.gate.stop()
        self.frames.close()
        if self._thread is threading.current_thread() or not self._thread.is_alive():
            return True
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self.frames.closed

    # ------------------------------------------------------------------ executor thread
    def on_image(self, raw: bytes, info: Any) -> None:
        """A frame the gate let through: read here, beside the worker's computation (only the few
        frames of each window come this far), and put into the slot; never decoded here. A raw
        Image's pixels stay in the received bytes (``image_codec.image_from_cdr``)."""
        skipped = self._sequence.count(info)
        self._stats.received(1 + skipped)
        if skipped:
            # Skipped while the worker waited for the rate limit, or while it computed.
            (self._stats.throttled if self._rate_waited else self._stats.dropped)(skipped)
        msg: Any = image_codec.image_from_cdr(raw) if self.image_type is Image else None
        if msg is None:
            try:
                msg = deserialize_message(raw, self.image_type)
            except Exception:  # noqa: BLE001 - a truncated or foreign sample: the worker reports it
                msg = raw
        if self.frames.put(msg):
            self._stats.dropped()

    # -------------------------------------------------------------------- worker thread
    def _work(self) -> None:
        gate, frames = self.gate, self.frames
        cycle_s: float | None = None  # how long a frame takes, averaged
        while not frames.closed and self._running():
            s = self._settings()
            wait = self._rate.wait_s(time.monotonic(), s.max_input_rate_hz)
            self._stats.rate_limited(wait > 0.0)
            if wait > 0.0:
                # Too early for max_input_rate_hz: frames pass by untaken. The wait is cut into
                # pieces so that a new limit (or deactivation) applies soon.
                self._rate_waited = True
                if frames.wait_closed(min(wait, 0.5)):
                    break
                continue
            gate.open()  # already open when the window started before the frame was done
            item = frames.take(timeout=0.5, since=gate.opened_at)
            if frames.stale:
                self._stats.dropped(frames.stale)
                frames.stale = 0
            if item is None:
                continue
            gate.close()
            started = time.monotonic()
            self._rate_waited = False  # the frame's callback has counted what was skipped before it
            msg, arrived = item
            self._rate.taken(arrived, s.max_input_rate_hz)
            if cycle_s is not None:
                # Let the next frames in a little before this one is expected to be done.
                due = started + self._rate.wait_s(started, s.max_input_rate_hz)
                gate.open_at(max(started + cycle_s - self._window_s(cycle_s), due))
            if s.processing_delay_s > 0.0 and frames.wait_closed(s.processing_delay_s):
                break  # deactivated while holding the frame
            del item
            if not self._process(msg, arrived):
                break
            del msg  # the frame's buffer is not kept while the worker waits for the next one
            elapsed = time.monotonic() - started
            cycle_s = elapsed if cycle_s is None else 0.8 * cycle_s + 0.2 * elapsed

    def _window_s(self, cycle_s: float) -> float:
        """How long before the frame in progress is expected to be done the gate opens again: two
        camera periods, so that a frame arrives in the window, and a fifth of the frame time for
        its variation; at most 60 % of it (frames taken in the window are what a faster camera
        costs)."""
        period = self._sequence.period_s or 0.0
        return min(max(2.0 * period, 0.2 * cycle_s, 0.01), 0.6 * cycle_s)
