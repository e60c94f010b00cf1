"""The lifter's console subcommands, and a tiny real training run: checkpoint, log, resume, export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ros2_ctxpose.cli.train import register
from ros2_ctxpose.core.lifter import load_lifter
from ros2_ctxpose.training.evaluate_h36m import noise_ablation
from ros2_ctxpose.training.synthetic_2d import DetectorNoise

#: A model and data small enough for a training run of a few seconds.
TINY = [
    "--train-stride",
    "400",
    "--val-stride",
    "1000",
    "--dim",
    "16",
    "--depth",
    "1",
    "--heads",
    "2",
    "--threads",
    "1",
]


@pytest.fixture
def h36m(shared_data) -> None:
    """Skip unless the shared Human3.6M mocap is there."""
    shared_data("data/h36m")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctxpose")
    register(p.add_subparsers(dest="command", required=True))
    return p


def test_subcommands_are_registered_with_their_functions() -> None:
    args = parser().parse_args(["train", "--steps", "7", "--out", "x"])
    assert callable(args.func) and args.steps == 7 and args.out == "x"
    args = parser().parse_args(["eval-h36m", "--stride", "20"])
    assert callable(args.func) and args.stride == 20
    args = parser().parse_args(["train", "--context", "--renders", "a,b"])
    assert args.context is True and args.renders == "a,b"
    assert parser().parse_args(["train"]).context is False


def test_tiny_training_run_logs_checkpoints_resumes_and_exports(h36m: None, tmp_path: Path) -> None:
    common = ["--steps", "4", "--batch-size", "32", "--eval-every", "2", *TINY]
    p = parser()
    for argv in (["--stop-at", "2"], ["--resume"]):
        args = p.parse_args(["train", "--out", str(tmp_path / "split"), *common, *argv])
        assert args.func(args) == 0
    straight = p.parse_args(["train", "--out", str(tmp_path / "straight"), *common])
    assert straight.func(straight) == 0

    records = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert all(r["exact_mpjpe_mm"] > 0 and r["detlike_pa_mpjpe_mm"] > 0 for r in records)
    # Resuming restores optimizer, schedule and RNG: the split run equals the straight one.
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    whole = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    for name, value in whole.items():
        torch.testing.assert_close(split[name], value, msg=name)
    model = load_lifter(tmp_path / "split" / "final.pt")
    assert model.config.dim == 16 and not model.config.context_trained


def test_eval_h36m_prints_both_inputs_with_and_without_flip_averaging(h36m: None, tmp_path: Path, capsys) -> None:
    p = parser()
    train = p.parse_args(["train", "--out", str(tmp_path), "--steps", "2", "--batch-size", "16", *TINY])
    assert train.func(train) == 0
    printed = {}
    for flag in ([], ["--no-flip-test"]):
        args = p.parse_args(["eval-h36m", "--weights", str(tmp_path / "final.pt"), "--stride", "500", *flag])
        capsys.readouterr()
        assert args.func(args) == 0
        printed[bool(flag)] = capsys.readouterr().out
    assert "flip averaging on" in printed[False] and "flip averaging off" in printed[True]
    for out in printed.values():
        assert "exact 2D:" in out and "detector-like 2D:" in out
    # The two views differ for an untrained model, so the figures must too.
    assert printed[False].split("exact 2D:")[1] != printed[True].split("exact 2D:")[1]


def test_noise_ablation_switches_on_one_corruption_at_a_time() -> None:
    full = DetectorNoise()
    variants = noise_ablation(full)
    assert list(variants) == ["jitter only", "outlier only", "missing only", "swap only", "occluded legs only"]
    kinds = ("outlier_prob", "missing_prob", "swap_prob", "occluded_legs_prob")
    assert variants["jitter only"].level == full.level and not any(getattr(variants["jitter only"], k) for k in kinds)
    for kind, (name, noise) in zip(kinds, list(variants.items())[1:]):
        assert noise.level == (0.0, 0.0), name
        assert {k: getattr(noise, k) for k in kinds} == {k: getattr(full, k) if k == kind else 0.0 for k in kinds}, name


def test_eval_h36m_noise_ablation_prints_a_row_per_corruption(h36m: None, tmp_path: Path, capsys) -> None:
    p = parser()
    train = p.parse_args(["train", "--out", str(tmp_path), "--steps", "2", "--batch-size", "16", *TINY])
    assert train.func(train) == 0
    args = p.parse_args(["eval-h36m", "--weights", str(tmp_path / "final.pt"), "--stride", "500", "--noise-ablation"])
    capsys.readouterr()
    assert args.func(args) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        if line[:20].strip() in {"exact 2D", "detector-like 2D", *noise_ablation()}:
            rows[line[:20].strip()] = [float(x) for x in line[20:].split()]
    assert len(rows) == 7 and all(len(r) == 4 and min(r) > 0 for r in rows.values())
    # Each corruption changes the input, so no ablation row may equal the exact-2D row.
    assert all(rows[name] != rows["exact 2D"] for name in noise_ablation())


def test_resume_with_a_new_length_replans_the_schedule(h36m: None, tmp_path: Path) -> None:
    common = ["--out", str(tmp_path), "--batch-size", "16", "--eval-every", "2", *TINY]
    p = parser()
    for argv in (["--steps", "10", "--stop-at", "2"], ["--steps", "4", "--resume"]):
        args = p.parse_args(["train", *common, *argv])
        assert args.func(args) == 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert records[-1]["lr"] < 1e-3 * records[0]["lr"]  # the one-cycle curve ended at step 4
    with pytest.raises(ValueError, match="must exceed"):
        args = p.parse_args(["train", *common, "--steps", "3", "--resume"])
        args.func(args)


def fake_renders(root: Path, people: int = 40, seed: int = 0) -> Path:
    """Shards in ``ctxpose synth``'s format holding random people: enough to drive the training
    loop (what is in the crops does not matter here, only that they reach the context branch)."""
    from ros2_ctxpose.core.lifter.model import LifterConfig
    from ros2_ctxpose.training.synthetic.shards import FIELDS, write_shard

    cfg = LifterConfig()
    g = np.random.default_rng(seed)
    crop_shapes = {
        f"crop_l{i}": (c, s, s) for i, (c, s) in enumerate(zip(cfg.context_channels, cfg.context_crop_sizes))
    }
    rows = []
    for _ in range(people):
        row = {name: np.zeros(crop_shapes.get(name, f.shape), f.dtype) for name, f in FIELDS.items()}
        row.update({name: g.standard_normal(shape).astype(np.float16) for name, shape in crop_shapes.items()})
        row["keypoints_norm"] = (g.standard_normal((17, 2)) * 0.1).astype(np.float32)
        row["keypoints"] = np.concatenate([g.standard_normal((17, 2)), g.uniform(0.5, 1, (17, 1))], 1)
        row["joints_grid"] = g.uniform(-0.7, 0.7, (17, 2))
        row["target_cam"] = g.standard_normal((17, 3)) * 0.3 + [0, 0, 4]
        rows.append(row)
    for shard in range(2):
        write_shard(
            root,
            shard,
            rows[shard::2],
            {"settings": {"crop_sizes": list(cfg.context_crop_sizes), "crop_margin": cfg.context_crop_margin}},
        )
    return root


def test_render_runs_with_and_without_context_differ_only_in_the_context_branch(h36m: None, tmp_path: Path) -> None:
    """Same seed, same batches: the geometry-only run leaves the context branch untouched and marks
    the weights context-free; the context run trains it and marks them; both read the renders."""
    renders = fake_renders(tmp_path / "renders")
    p = parser()
    start = tmp_path / "start.pt"
    init = p.parse_args(["train", "--out", str(tmp_path / "init"), "--steps", "1", "--batch-size", "8", *TINY])
    assert init.func(init) == 0
    (tmp_path / "init" / "final.pt").rename(start)
    finals = {}
    for flag in ("--no-context", "--context"):
        args = p.parse_args(
            [
                "train",
                "--out",
                str(tmp_path / flag),
                "--init",
                str(start),
                "--renders",
                str(renders),
                "--steps",
                "3",
                "--batch-size",
                "16",
                "--eval-every",
                "3",
                "--val-renders",
                str(renders),
                flag,
                *TINY,
            ]
        )
        assert args.func(args) == 0
        finals[flag] = load_lifter(tmp_path / flag / "final.pt")
    before = load_lifter(start)
    assert not finals["--no-context"].config.context_trained and finals["--context"].config.context_trained
    for name, value in before.context.state_dict().items():
        torch.testing.assert_close(finals["--no-context"].context.state_dict()[name], value, msg=name)
    assert not torch.equal(finals["--context"].context.out.weight, before.context.out.weight)
    record = json.loads((tmp_path / "--context" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["val_renders_context_mpjpe_mm"] > 0 and record["val_renders_geometry_mpjpe_mm"] > 0
    # The merged memory map was built once and is reused.
    assert (renders / "merged" / "shards.txt").read_text() == "shard_000000\nshard_000001"


def test_eval_h36m_measures_rendered_people_on_each_path_the_weights_have(h36m: None, tmp_path: Path, capsys) -> None:
    renders = fake_renders(tmp_path / "renders")
    p = parser()
    common = ["--renders", str(renders), "--render-fraction", "1.0", "--steps", "2", "--batch-size", "8", *TINY]
    for flag in ("--no-context", "--context"):
        args = p.parse_args(["train", "--out", str(tmp_path / flag), flag, *common])
        assert args.func(args) == 0
    printed = {}
    for flag in ("--no-context", "--context"):
        weights = str(tmp_path / flag / "final.pt")
        args = p.parse_args(["eval-h36m", "--weights", weights, "--renders", str(renders), "--skip-mocap"])
        capsys.readouterr()
        assert args.func(args) == 0
        printed[flag] = capsys.readouterr().out
    assert "exact 2D" not in printed["--context"]  # --skip-mocap
    lines = {flag: [line for line in out.splitlines() if line.startswith("renders")] for flag, out in printed.items()}
    assert [line.split(",")[1].split(":")[0].strip() for line in lines["--context"]] == ["geometry", "context"]
    assert [line.split(",")[1].split(":")[0].strip() for line in lines["--no-context"]] == ["geometry"]
    assert all("(40 people)" in line for line in lines["--context"] + lines["--no-context"])
    mpjpe = [float(line.split("MPJPE")[1].split()[0]) for line in lines["--context"]]
    assert mpjpe[0] != mpjpe[1] and min(mpjpe) > 0


def test_frozen_geometry_trains_only_the_depth_context(h36m: None, tmp_path: Path) -> None:
    """--no-train-geometry --context-depth-only: the geometry weights stay the starting model's
    bit for bit, the context branch learns, and the exported config says the context decides depth."""
    renders = fake_renders(tmp_path / "renders")
    p = parser()
    init = p.parse_args(["train", "--out", str(tmp_path / "init"), "--steps", "1", "--batch-size", "8", *TINY])
    assert init.func(init) == 0
    args = p.parse_args(
        [
            "train",
            "--out",
            str(tmp_path / "frozen"),
            "--init",
            str(tmp_path / "init" / "final.pt"),
            "--renders",
            str(renders),
            "--render-fraction",
            "1.0",
            "--context",
            "--context-depth-only",
            "--no-train-geometry",
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--eval-every",
            "3",
            *TINY,
        ]
    )
    assert args.func(args) == 0
    before, after = load_lifter(tmp_path / "init" / "final.pt"), load_lifter(tmp_path / "frozen" / "final.pt")
    assert after.config.context_trained and after.config.context_depth_only
    geometry = {id(q) for q in after.geometry_parameters()}
    for (name, old), new in zip(before.named_parameters(), after.parameters()):
        if id(new) in geometry:
            torch.testing.assert_close(new, old, msg=name)
    assert not torch.equal(after.context.out.weight, before.context.out.weight)
