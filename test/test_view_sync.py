"""Grouping camera messages into instants (core/view_sync.py): complete, late, gone, too late."""

from __future__ import annotations

import pytest

from ros2_ctxpose.core.view_sync import InstantGrouper

MS = 1_000_000


def grouper(inputs: int = 3) -> InstantGrouper[str]:
    return InstantGrouper(inputs, tolerance_s=0.01, max_wait_s=0.1)


def test_a_complete_instant_is_released_at_once() -> None:
    g = grouper()
    g.add(0, 1000 * MS, 0.0, "a0")
    g.add(1, 1004 * MS, 0.0, "b0")
    assert g.release(0.0) == [], "camera 2 may still come"
    g.add(2, 997 * MS, 0.01, "c0")
    (instant,) = g.release(0.01)
    assert instant.stamp_ns == 997 * MS and instant.items == {0: "a0", 1: "b0", 2: "c0"}
    assert g.release(10.0) == []


def test_a_late_camera_costs_max_wait_then_the_instant_goes_without_it() -> None:
    g = grouper()
    g.add(0, 1000 * MS, 0.0, "a0")
    g.add(1, 1000 * MS, 0.0, "b0")
    assert g.release(0.05) == []
    (instant,) = g.release(0.1)
    assert instant.items == {0: "a0", 1: "b0"}
    assert not g.add(2, 1000 * MS, 0.2, "c0 too late"), "an instant already released"
    assert g.dropped_late == 1


def test_a_camera_that_is_already_past_the_instant_is_not_waited_for() -> None:
    g = grouper()
    g.add(2, 1100 * MS, 0.0, "c1")  # camera 2 skipped the instant at 1000 ms
    g.add(0, 1000 * MS, 0.0, "a0")
    g.add(1, 1001 * MS, 0.0, "b0")
    first = g.release(0.0)
    assert [i.items for i in first] == [{0: "a0", 1: "b0"}]
    g.add(0, 1100 * MS, 0.05, "a1")
    g.add(1, 1100 * MS, 0.05, "b1")
    assert [i.items for i in g.release(0.05)] == [{0: "a1", 1: "b1", 2: "c1"}]


def test_a_camera_that_stopped_never_stalls_the_others() -> None:
    g = grouper(2)
    released = []
    for k in range(10):
        now = k * 0.033
        g.add(0, int(now * 1e9), now, f"a{k}")
        released += g.release(now)
    released += g.release(10.0)
    assert [i.items for i in released] == [{0: f"a{k}"} for k in range(10)]


def test_the_nearest_stamp_joins_and_the_rest_waits_for_the_next_instant() -> None:
    g = grouper(2)
    g.add(0, 1000 * MS, 0.0, "a0")
    g.add(1, 1003 * MS, 0.0, "b0")
    g.add(1, 1009 * MS, 0.0, "b0 again")
    assert [i.items for i in g.release(0.0)] == [{0: "a0", 1: "b0"}]
    g.add(0, 1033 * MS, 0.03, "a1")
    # b's 1009 ms frame is an instant of its own, complete at once: camera a has moved past it.
    assert [i.items for i in g.release(0.03)] == [{1: "b0 again"}]
    assert [i.items for i in g.release(0.03)] == [], "a1 waits for b"
    assert [i.items for i in g.release(0.13)] == [{0: "a1"}]


def test_no_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one input"):
        InstantGrouper(0, 0.01, 0.1)
