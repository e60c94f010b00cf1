"""The realism command end to end on real material: a few renders from the engine (the
``synth`` fixture of test_synthetic_engine: skipped without the ``[synth]`` extra or the mocap)
against every 40th real S11 frame, the annotated frames and every 46th demo-clip frame (skipped
without ../shared)."""

from __future__ import annotations

import json

import pytest
from test_synthetic_engine import synth  # noqa: F401  (the engine fixture, shared)

from ros2_ctxpose.training.synthetic.realism.__main__ import main
from ros2_ctxpose.training.synthetic.realism.real import S11


@pytest.mark.slow
def test_report_on_renders_and_real_frames(synth, shared_data, tmp_path, capsys) -> None:  # noqa: F811
    shared_data("data/h36m_s11_walkdog/annotations.json")
    shared_data("data/images/annotations.json")
    worker, _ = synth
    renders = tmp_path / "renders"
    for index in range(3):
        worker.shard(renders, index)
    out = tmp_path / "report.json"
    argv = ["--renders", str(renders), "--s11-step", "40", "--demo-step", "46", "--bootstrap", "200"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())[str(renders)]
    s11 = report["sets"][S11]
    # Every 40th of the 399 frames; the detector finds the person in each, within a few percent
    # of sqrt(box area) (3.2 % median over every 10th frame) and confidently.
    assert s11["people"] == 10 and s11["missed"] == 0
    assert 0.01 < s11["error"]["median"] < 0.06 and s11["confidence"]["median"] > 0.9
    demo = report["sets"]["demo clip (no truth)"]
    assert demo["people"] >= 5 and demo["error"] is None
    assert report["sets"]["GTA-IM (game)"]["kind"] == "game"
    ratio = report["ratio_vs"][S11]
    assert ratio["low"] <= ratio["ratio"] <= ratio["high"]
    classifier = report["classifier"]
    assert "GTA-IM (game)" not in classifier["real_sets"] and 0.0 <= classifier["auc"] <= 1.0
    assert report["sampled_people"] == report["stored_people"] > 0
    table = capsys.readouterr().out
    assert f"== renders {renders}" in table and "crop classifier" in table and S11 in table
