"""Context training on annotated frames: samples built from real detections, and a fine-tuning step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ros2_ctxpose.core.lifter import ContextLifter, LifterConfig

SHARED = Path(os.environ.get("CTXPOSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
IMAGES = SHARED / "data" / "images"


@pytest.fixture(scope="module")
def h36m_samples() -> list:
    if not (IMAGES / "annotations.json").is_file():
        pytest.skip(f"shared data not found at {SHARED} (set CTXPOSE_SHARED)")
    from ros2_ctxpose.core.detector import PoseDetector
    from ros2_ctxpose.training.annotated_frames import load_annotated_samples

    try:
        detector = PoseDetector(device="cpu")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return load_annotated_samples(detector, IMAGES, datasets=("human3.6m",))


def test_samples_pair_detections_with_root_relative_ground_truth(h36m_samples: list) -> None:
    assert len(h36m_samples) == 4
    for s in h36m_samples:
        assert s.kp_norm.shape == (17, 2) and s.conf.shape == (17,) and s.grid_xy.shape == (17, 2)
        assert s.target.shape == (17, 3) and torch.allclose(s.target[0], torch.zeros(3))
        assert [f.shape[1] for f in s.features] == [64, 128, 128, 256]
        assert s.grid_xy.abs().max() <= 1.0
        assert s.conf[5:].mean() > 0.5  # the matched detection is a clearly seen person


def test_finetuning_trains_only_the_context_branch(h36m_samples: list) -> None:
    from ros2_ctxpose.training.finetune_context import evaluate_samples, finetune

    torch.manual_seed(0)
    model = ContextLifter(LifterConfig(dim=32, depth=1, heads=2))
    torch.nn.init.normal_(model.head.weight, std=0.05)
    tuned = finetune(model, h36m_samples[:2], steps=3, lr=1e-2)
    assert tuned.config.context_trained and not model.config.context_trained
    for name, p in model.named_parameters():
        changed = not torch.equal(p, dict(tuned.named_parameters())[name])
        assert changed == name.startswith("context."), name
    with_ctx = evaluate_samples(tuned, h36m_samples[:2], use_context=True)
    without = evaluate_samples(tuned, h36m_samples[:2], use_context=False)
    assert with_ctx["frames"] == 2 and with_ctx["mpjpe_mm"] != without["mpjpe_mm"]
