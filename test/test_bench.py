"""Benchmark bookkeeping: statistics, JSON documents, joint matching for the MediaPipe peer.

Nothing here times anything: the figures themselves come from the benchmark scripts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.benchmarking import SCHEMA_VERSION, PeakHostMemory, format_table, summarize, write_json
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.joint_sets import JOINT_SETS
from ros2_ctxpose.core.skeleton import COCO17, H36M17

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    """A script from benchmarks/ (not a package) as a module; dataclasses need it in sys.modules."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_summary_order_statistics_and_fps() -> None:
    s = summarize([10.0, 20.0, 30.0, 40.0, 100.0])
    assert (s.n, s.median_ms, s.max_ms, s.mean_ms) == (5, 30.0, 100.0, 40.0)
    assert s.p90_ms == pytest.approx(76.0)  # linear interpolation between 40 and 100
    assert s.fps == pytest.approx(25.0)     # 1000 / mean: every slow frame costs throughput
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
    peer = _load("peer_mediapipe")
    for mapping in JOINT_SETS.values():
        narrowed = peer.peer_mapping(mapping)
        assert sorted(h for _, h in narrowed.compared) == sorted(peer.PEER_JOINTS)
        assert all(d == h for d, h in narrowed.compared)  # limbs carry the same names everywhere
        assert [h for _, h in narrowed.root] == ["left_hip", "right_hip"]
    assert set(peer.PEER_JOINTS) <= set(COCO17)


def test_blazepose_landmarks_land_on_the_same_h36m_joints() -> None:
    peer = _load("peer_mediapipe")
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
    peer = _load("peer_mediapipe")
    rng = np.random.default_rng(3)
    gt_h36m = rng.normal(size=(17, 3))
    mapping = peer.peer_mapping(JOINT_SETS["h36m17"])
    camera = CameraModel.from_fov(640, 480, 60.0)
    annotated = [peer.Annotated(tmp_path / "h36m" / "a.jpg", "h36m", camera, mapping, gt_h36m,
                                rng.uniform(0, 400, size=(17, 2)))]
    names = [f"landmark_{i}" for i in range(33)]
    world = np.zeros((33, 3))
    for i, joint in enumerate(peer.PEER_JOINTS):
        names[11 + i] = joint
        world[11 + i] = gt_h36m[H36M17.index(joint)] * [1.0, -1.0, 1.0]
    ours = [{"source": str(annotated[0].path),
             "people": [{"keypoints_2d": np.zeros((17, 3)), "joints_3d": gt_h36m + [0.0, 0.0, 5.0]}]}]
    blaze = [{"source": str(annotated[0].path), "found": True, "world": world.tolist()}]
    row = peer.score(annotated, ours, blaze, names)[0]
    assert row["ros2_ctxpose"]["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert row["blazepose"]["mpjpe_mm"] > 100.0
    nobody = peer.score(annotated, [{**ours[0], "people": []}], [{**blaze[0], "found": False}], names)[0]
    assert nobody["ros2_ctxpose"] is None and nobody["blazepose"] is None


def test_node_counters_are_differenced_inside_the_window_only() -> None:
    node_bench = _load("node_bench")
    report = (lambda r, p, d: {"frames_received": str(r), "frames_processed": str(p), "frames_dropped": str(d)})
    diagnostics = [(0.5, report(10, 5, 5)), (1.0, report(40, 10, 30)), (2.0, report(70, 15, 55)),
                   (3.0, report(100, 20, 80)), (9.0, report(500, 99, 401)), (1.5, {"other": "x"})]
    deltas = node_bench.counter_deltas(diagnostics, start=0.8, end=3.5)
    assert deltas == {"frames_received": 60.0, "frames_processed": 10.0, "frames_dropped": 50.0, "span_s": 2.0}
    assert node_bench.counter_deltas(diagnostics, start=2.5, end=3.5) is None
