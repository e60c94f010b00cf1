"""Counters of the node's frame flow, reported on /diagnostics about once a second.

Subscription callbacks, QoS event callbacks and the worker thread count events here; the
diagnostics timer takes a :class:`StatsWindow` (rates and latencies since the previous report,
totals since start) and turns it into a DiagnosticStatus that ``rqt_runtime_monitor`` or
``ros2 topic echo /diagnostics`` show, with the node's lifecycle state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass(frozen=True)
class StatsWindow:
    """What happened between two reports (rates, latencies) plus running totals."""

    duration_s: float
    input_rate_hz: float
    output_rate_hz: float
    latency_mean_ms: float
    latency_max_ms: float
    inference_mean_ms: float
    people_last: int
    received_total: int
    processed_total: int
    dropped_total: int
    rejected_total: int
    failed_total: int
    #: Frames refused on arrival by ``max_input_rate_hz`` (before any decoding).
    throttled_total: int = 0
    #: Messages the middleware reported lost (``message_lost`` QoS events); None where the RMW
    #: does not report them. Each missing frame is counted once: a message lost in transport also
    #: leaves a gap in the publisher's sequence numbers, and is then not counted as dropped too.
    lost_total: int | None = None
    #: The worker was waiting for ``max_input_rate_hz`` at the end of the window.
    rate_limited: bool = False
    #: Seconds since the last image arrived (None: none yet).
    last_image_age_s: float | None = None


class FrameStats:
    """Thread-safe counters; one instance per node."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._received = self._processed = self._dropped = self._rejected = self._failed = 0
        self._throttled = 0
        self._lost: int | None = None
        self._rate_limited = False
        self._last_received: float | None = None
        self._win_received = self._win_processed = 0
        self._latencies: list[float] = []
        self._inference: list[float] = []
        self._people_last = 0

    def received(self, count: int = 1) -> None:
        """``count`` frames arrived (whether or not they will be processed)."""
        with self._lock:
            self._received += count
            self._win_received += count
            self._last_received = self._clock()

    def dropped(self, count: int = 1) -> None:
        """``count`` frames were skipped for a newer one while the worker computed (never taken
        from the middleware, or replaced in the slot). Gaps in the sequence numbers count here too;
        the ones the middleware reports lost are taken off again (``StatsWindow.lost_total``)."""
        with self._lock:
            self._dropped += count

    def throttled(self, count: int = 1) -> None:
        """``count`` frames were skipped, undecoded, because ``max_input_rate_hz`` was reached."""
        with self._lock:
            self._throttled += count

    def rate_limited(self, waiting: bool) -> None:
        """Whether the worker is now waiting for ``max_input_rate_hz`` (frames pass untaken)."""
        self._rate_limited = waiting

    def lost_supported(self) -> None:
        """The middleware reports lost messages: count them from 0 (else they stay "n/a")."""
        with self._lock:
            if self._lost is None:
                self._lost = 0

    def lost(self, count: int) -> None:
        """The middleware reported ``count`` more messages lost (never delivered to the node)."""
        with self._lock:
            self._lost = (self._lost or 0) + count

    def rejected(self) -> None:
        """A malformed message (bad encoding or geometry) was skipped."""
        with self._lock:
            self._rejected += 1

    def failed(self) -> None:
        """The pipeline raised on a frame."""
        with self._lock:
            self._failed += 1

    def processed(self, latency_s: float, inference_ms: float, people: int) -> None:
        """A frame went through the pipeline and its results were published."""
        with self._lock:
            self._processed += 1
            self._win_processed += 1
            self._latencies.append(latency_s * 1000.0)
            self._inference.append(inference_ms)
            self._people_last = people

    def take_window(self) -> StatsWindow:
        """The statistics since the previous call (which starts a new window)."""
        with self._lock:
            now = self._clock()
            duration = max(now - self._window_start, 1e-9)
            lat, inf = self._latencies, self._inference
            window = StatsWindow(
                duration_s=duration,
                input_rate_hz=self._win_received / duration,
                output_rate_hz=self._win_processed / duration,
                latency_mean_ms=sum(lat) / len(lat) if lat else float("nan"),
                latency_max_ms=max(lat) if lat else float("nan"),
                inference_mean_ms=sum(inf) / len(inf) if inf else float("nan"),
                people_last=self._people_last,
                received_total=self._received,
                processed_total=self._processed,
                dropped_total=max(0, self._dropped - (self._lost or 0)),
                rejected_total=self._rejected,
                failed_total=self._failed,
                throttled_total=self._throttled,
                lost_total=self._lost,
                rate_limited=self._rate_limited,
                last_image_age_s=None if self._last_received is None else now - self._last_received,
            )
            self._window_start = now
            self._win_received = self._win_processed = 0
            self._latencies, self._inference = [], []
            return window


def diagnostic_array(
    stamp, name: str, window: StatsWindow, device: str, camera: str, state: str = "active"
) -> DiagnosticArray:
    """One DiagnosticStatus for the node; WARN while active and no images arrive or nothing gets
    processed. ``state`` is the node's lifecycle state: while it is not active nothing is
    expected to arrive, which is OK, and the message says so."""
    if state != "active":
        level, message = DiagnosticStatus.OK, f"{state} (lifecycle): not processing"
    elif window.input_rate_hz == 0.0 and window.rate_limited and window.last_image_age_s is not None:
        level = DiagnosticStatus.OK
        message = f"input rate-limited by max_input_rate_hz; last image {window.last_image_age_s:.1f} s ago"
    elif window.input_rate_hz == 0.0:
        level, message = DiagnosticStatus.WARN, "no images received"
    elif window.output_rate_hz == 0.0:
        level, message = DiagnosticStatus.WARN, "images received but none processed"
    else:
        level, message = DiagnosticStatus.OK, f"{window.output_rate_hz:.1f} Hz, {window.latency_mean_ms:.0f} ms"
    values = {
        "input_rate_hz": f"{window.input_rate_hz:.2f}",
        "output_rate_hz": f"{window.output_rate_hz:.2f}",
        "latency_mean_ms": f"{window.latency_mean_ms:.1f}",
        "latency_max_ms": f"{window.latency_max_ms:.1f}",
        "inference_mean_ms": f"{window.inference_mean_ms:.1f}",
        "people": str(window.people_last),
        "frames_received": str(window.received_total),
        "frames_processed": str(window.processed_total),
        "frames_dropped": str(window.dropped_total),
        "frames_throttled": str(window.throttled_total),
        "messages_lost": "n/a" if window.lost_total is None else str(window.lost_total),
        "last_image_age_s": "n/a" if window.last_image_age_s is None else f"{window.last_image_age_s:.1f}",
        "messages_rejected": str(window.rejected_total),
        "processing_failures": str(window.failed_total),
        "lifecycle_state": state,
        "device": device,
        "camera_model": camera,
    }
    status = DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=device,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
