"""Grouping the messages of N cameras into instants, without ever waiting on a camera that is late or gone.

Each camera's results arrive in stamp order on their own topic, at their own rate and delay. An
*instant* is anchored on the oldest message waiting; from every other input the waiting message
nearest in stamp within ``tolerance_s`` joins it. The instant is complete, and released at once,
when every input has either joined or already delivered something newer than the anchor's window
(in-order delivery: that camera will send nothing for this instant). Otherwise it is released
when its anchor has waited ``max_wait_s`` since arrival, with whatever joined: a camera that is
late or has stopped costs at most ``max_wait_s`` of latency, never a stall. A message that could
have joined an instant already released without it (stamp not after that instant's window)
arrives too late and is dropped (counted), as is anything older.
Plain Python, no ROS: the fusion node feeds it with stamps in nanoseconds and monotonic seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Instant(Generic[T]):
    """Released messages of one instant: input index -> payload; ``stamp_ns`` is the anchor's."""

    stamp_ns: int
    items: dict[int, T] = field(default_factory=dict)


class InstantGrouper(Generic[T]):
    """See the module docstring."""

    def __init__(self, inputs: int, tolerance_s: float, max_wait_s: float, max_queue: int = 30) -> None:
        if inputs < 1:
            raise ValueError(f"need at least one input, got {inputs}")
        self.tolerance_ns = int(tolerance_s * 1e9)
        self.max_wait_s = max_wait_s
        self._queues: list[deque[tuple[int, float, T]]] = [deque(maxlen=max_queue) for _ in range(inputs)]
        #: End of the last released instant's window, and the inputs that were in it.
        self._released_end_ns: int | None = None
        self._released_inputs: set[int] = set()
        self.dropped_late = 0

    def add(self, index: int, stamp_ns: int, arrived_s: float, payload: T) -> bool:
        """Queue one message of input ``index``; False (and counted) when it is too late to join any instant."""
        end = self._released_end_ns
        if end is not None and (
            stamp_ns <= end - 2 * self.tolerance_ns or (stamp_ns <= end and index not in self._released_inputs)
        ):
            self.dropped_late += 1
            return False
        self._queues[index].append((stamp_ns, arrived_s, payload))
        return True

    def release(self, now_s: float) -> list[Instant[T]]:
        """Every instant that is complete, or whose anchor has waited ``max_wait_s`` by ``now_s``."""
        released = []
        while (instant := self._next(now_s)) is not None:
            released.append(instant)
        return released

    def _next(self, now_s: float) -> Instant[T] | None:
        waiting = [(q[0][0], q[0][1], i) for i, q in enumerate(self._queues) if q]
        if not waiting:
            return None
        anchor_ns, anchor_arrived, _ = min(waiting)
        window_end = anchor_ns + self.tolerance_ns
        chosen: dict[int, int] = {}
        complete = True
        for i, queue in enumerate(self._queues):
            near = [
                (abs(s - anchor_ns), k) for k, (s, _, _) in enumerate(queue) if abs(s - anchor_ns) <= self.tolerance_ns
            ]
            if near:
                chosen[i] = min(near)[1]
            elif not (queue and queue[-1][0] > window_end):
                complete = False
        if not complete and now_s - anchor_arrived < self.max_wait_s:
            return None
        instant: Instant[T] = Instant(anchor_ns)
        for i, k in chosen.items():
            queue = self._queues[i]
            instant.items[i] = queue[k][2]
            for _ in range(k + 1):  # the chosen message and anything older than it
                queue.popleft()
        self._released_end_ns, self._released_inputs = window_end, set(chosen)
        return instant
