"""Benchmark bookkeeping: statistics, JSON documents, joint matching for the MediaPipe peer.

Nothing here times anything: the figures themselves come from the benchmark scripts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.benchmarking import SCHEMA_VERSION, PeakHostMemory, format_table, peer, summarize, write_json
from ros2_ctxpose.benchmarking.accuracy import KeypointDeviation, match_people
from ros2_ctxpose.benchmarking.node import counter_deltas
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.joint_sets import JOINT_SETS
from ros2_ctxpose.core.skeleton import COCO17, H36M17


def test_summary_order_statistics_and_fps() -> None:
    s = summarize([10.0, 20.0, 30.0, 40.0, 100.0])
    assert (s.n, s.median_ms, s.max_ms, s.mean_ms) == (5, 30.0, 100.0, 40.0)
    assert s.p90_ms == pytest.approx(76.0)  # linear interpolation between 40 and 100
    assert s.fps == pytest.approx(25.0)  # 1000 / mean: every slow frame costs throughput
    assert set(s.as_dict()) >= {"median_ms", "p90_ms", "p95_ms", "fps"}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summary_rejects_empty_or_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_json_document_has_schema_kind_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bench.json"
    write_json(path, "ctxpose-bench", {"results": [{"p90_ms": np.float32(1.5), "people": np.int64(2)}]})
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA_VERSION and doc["kind"] == "ctxpose-bench"
    assert {"python", "cpu_count"} <= set(doc["environment"])
    assert doc["results"] == [{"p90_ms": 1.5, "people": 2}]


def test_json_refuses_nan_rather_than_writing_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", "k", {"value": float("nan")})


def test_peak_memory_sees_a_large_allocation() -> None:
    with PeakHostMemory() as before:
        pass
    with PeakHostMemory() as during:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block.sum()
    del block
    assert during.peak_mib > 0
    if during.scoped:
        assert during.peak_mib - before.peak_mib > 48


def test_table_aligns_columns_and_marks_missing_values() -> None:
    lines = format_table(("a", "long header"), [(1, 2.345), ("xyz", None)]).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].split() == ["1", "2.3"] and lines[3].split() == ["xyz", "-"]


def test_peer_mapping_narrows_every_layout_to_the_shared_limbs() -> None:
    for mapping in JOINT_SETS.values():
        narrowed = peer.peer_mapping(mapping)
        assert sorted(h for _, h in narrowed.compared) == sorted(peer.PEER_JOINTS)
        assert all(d == h for d, h in narrowed.compared)  # limbs carry the same names everywhere
        assert [h for _, h in narrowed.root] == ["left_hip", "right_hip"]
    assert set(peer.PEER_JOINTS) <= set(COCO17)


def test_blazepose_landmarks_land_on_the_same_h36m_joints() -> None:
    names = [f"landmark_{i}" for i in range(33)]
    for i, joint in enumerate(peer.PEER_JOINTS):
        names[11 + i] = joint
    world = np.arange(33 * 3, dtype=np.float64).reshape(33, 3)
    h36m = peer.blazepose_as_h36m(world, names)
    for joint in peer.PEER_JOINTS:
        np.testing.assert_array_equal(h36m[H36M17.index(joint)], world[names.index(joint)])
    assert np.isnan(h36m[H36M17.index("pelvis")]).all()


def test_scores_are_mid_hip_aligned_and_shared_by_both_methods(tmp_path: Path) -> None:
    """The same pose offset by a translation scores 0 for both methods; a flipped y axis does not."""
    rng = np.random.default_rng(3)
    gt_h36m = rng.normal(size=(17, 3))
    mapping = peer.peer_mapping(JOINT_SETS["h36m17"])
    camera = CameraModel.from_fov(640, 480, 60.0)
    annotated = [
        peer.Annotated(tmp_path / "h36m" / "a.jpg", "h36m", camera, mapping, gt_h36m, rng.uniform(0, 400, size=(17, 2)))
    ]
    names = [f"landmark_{i}" for i in range(33)]
    world = np.zeros((33, 3))
    for i, joint in enumerate(peer.PEER_JOINTS):
        names[11 + i] = joint
        world[11 + i] = gt_h36m[H36M17.index(joint)] * [1.0, -1.0, 1.0]
    ours = [
        {
            "source": str(annotated[0].path),
            "people": [{"keypoints_2d": np.zeros((17, 3)), "joints_3d": gt_h36m + [0.0, 0.0, 5.0]}],
        }
    ]
    blaze = [{"source": str(annotated[0].path), "found": True, "world": world.tolist()}]
    row = peer.score(annotated, ours, blaze, names)[0]
    assert row["ros2_ctxpose"]["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert row["blazepose"]["mpjpe_mm"] > 100.0
    nobody = peer.score(annotated, [{**ours[0], "people": []}], [{**blaze[0], "found": False}], names)[0]
    assert nobody["ros2_ctxpose"] is None and nobody["blazepose"] is None


def test_node_counters_are_differenced_inside_the_window_only() -> None:
    def report(r, p, d):
        return {"frames_received": str(r), "frames_processed": str(p), "frames_dropped": str(d)}

    diagnostics = [
        (0.5, report(10, 5, 5)),
        (1.0, report(40, 10, 30)),
        (2.0, report(70, 15, 55)),
        (3.0, report(100, 20, 80)),
        (9.0, report(500, 99, 401)),
        (1.5, {"other": "x"}),
    ]
    deltas = counter_deltas(diagnostics, start=0.8, end=3.5)
    assert deltas == {"frames_received": 60.0, "frames_processed": 10.0, "frames_dropped": 50.0, "span_s": 2.0}
    assert counter_deltas(diagnostics, start=2.5, end=3.5) is None


def test_fps_ratio_is_ours_over_blazepose() -> None:
    latency = {
        "images": {"ros2_ctxpose": {"fps": 30.0}, "blazepose": {"fps": 20.0}},
        "video": {"ros2_ctxpose": {"fps": 40.0}, "blazepose": {"fps": 50.0}},
    }
    assert peer.fps_ratios(latency) == {"images": pytest.approx(1.5), "video": pytest.approx(0.8)}


def test_people_are_paired_by_overlap_each_once() -> None:
    ref = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float64)
    other = np.array([[21, 0, 31, 10], [0, 0, 10, 11], [100, 100, 110, 110]], np.float64)
    assert sorted(match_people(ref, other)) == [(0, 1), (1, 0)]
    assert match_people(ref, np.zeros((0, 4))) == []


def test_keypoint_deviation_scores_seen_keypoints_of_matched_people() -> None:
    ref_boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float64)
    ref_kpts = np.zeros((2, 17, 3))
    ref_kpts[..., 2] = 0.9
    ref_kpts[0, 0, 2] = 0.1  # unseen by the reference: not scored
    kpts = ref_kpts[:1].copy()
    kpts[0, :, 0] += 3.0
    kpts[0, :, 1] += 4.0  # 5 px everywhere
    dev = KeypointDeviation()
    dev.add(ref_boxes, ref_kpts, ref_boxes[:1], kpts)
    summary = dev.summary()
    assert (summary["matched"], summary["missed"], summary["extra"], summary["keypoints"]) == (1, 1, 0, 16)
    assert summary["mean_px"] == pytest.approx(5.0) and summary["max_px"] == pytest.approx(5.0)


def test_lifter_costs_measure_the_context_path_only_where_it_is_trained() -> None:
    from ros2_ctxpose.benchmarking.lifter import lifter_call, lifter_costs
    from ros2_ctxpose.core.lifter import ContextLifter, LifterConfig

    geometry_only = ContextLifter(LifterConfig(dim=16, depth=1, heads=2))
    with_context = ContextLifter(LifterConfig(dim=16, depth=1, heads=2, context_trained=True))
    assert [c.path for c in lifter_costs(geometry_only, people=2, repeats=1)] == ["geometry-only"]
    costs = lifter_costs(with_context, people=2, repeats=1)
    assert [c.path for c in costs] == ["geometry-only", "context"]
    assert 0 < costs[0].macs_per_person < costs[1].macs_per_person and all(c.median_ms > 0 for c in costs)
    # The context call goes through crop_people and the context branch: its answer is one pose per person.
    assert lifter_call(with_context.eval(), 3, True)().shape == (3, 17, 3)


def test_process_cost_separates_startup_from_per_frame_cost() -> None:
    from ros2_ctxpose.benchmarking.process import process_cost

    # 2 s start-up, 25 ms a frame; the 20-frame runs include one disturbed run (the median ignores it).
    cost = process_cost("x", (10, 20), ([2.25, 2.25, 9.0], [2.5, 2.5, 2.5]))
    assert cost.per_frame_ms == pytest.approx(25.0) and cost.startup_ms == pytest.approx(2000.0)
    assert cost.fps == pytest.approx(40.0)
    with pytest.raises(ValueError, match="0 < n < m"):
        process_cost("x", (20, 20), ([1.0], [1.0]))
    with pytest.raises(ValueError, match="no runs"):
        process_cost("x", (1, 2), ([], [1.0]))


def test_time_process_raises_on_a_failed_run() -> None:
    from ros2_ctxpose.benchmarking.process import time_process

    assert time_process([sys.executable, "-c", "pass"]) > 0
    with pytest.raises(RuntimeError, match="boom"):
        time_process([sys.executable, "-c", "import sys; sys.exit('boom')"])
