"""The yaml-driven builder reproduces every YOLO11 and YOLOv8 pose size.

Parameter counts are checked against the figures Ultralytics publishes for its pose models
(docs.ultralytics.com/tasks/pose, millions rounded to 0.1 M). The tolerance is the 0.05 M
rounding or 0.5 %, whichever is larger (the YOLOv8 m/l/x entries are 0.1-0.25 % below our
counts); a wrong channel or depth rule moves the count by more, e.g. not forcing C3k blocks
in YOLO11 m/l/x changes it by -1.6 % to -2.7 %. Models are built on the meta device, so the
large sizes cost no memory or time.
"""

from __future__ import annotations

import copy

import pytest
import torch

from ros2_ctxpose.core.detector.yolo_pose import PoseConfig, YoloPose

# Ultralytics' yolo11-pose.yaml and yolov8-pose.yaml (the yaml stored in their checkpoints).
YOLO11_POSE = {
    "nc": 1,
    "kpt_shape": [17, 3],
    "scales": {
        "n": [0.50, 0.25, 1024],
        "s": [0.50, 0.50, 1024],
        "m": [0.50, 1.00, 512],
        "l": [1.00, 1.00, 512],
        "x": [1.00, 1.50, 512],
    },
    "backbone": [
        [-1, 1, "Conv", [64, 3, 2]],
        [-1, 1, "Conv", [128, 3, 2]],
        [-1, 2, "C3k2", [256, False, 0.25]],
        [-1, 1, "Conv", [256, 3, 2]],
        [-1, 2, "C3k2", [512, False, 0.25]],
        [-1, 1, "Conv", [512, 3, 2]],
        [-1, 2, "C3k2", [512, True]],
        [-1, 1, "Conv", [1024, 3, 2]],
        [-1, 2, "C3k2", [1024, True]],
        [-1, 1, "SPPF", [1024, 5]],
        [-1, 2, "C2PSA", [1024]],
    ],
    "head": [
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 2, "C3k2", [512, False]],
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 2, "C3k2", [256, False]],
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 13], 1, "Concat", [1]],
        [-1, 2, "C3k2", [512, False]],
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 10], 1, "Concat", [1]],
        [-1, 2, "C3k2", [1024, True]],
        [[16, 19, 22], 1, "Pose", ["nc", "kpt_shape"]],
    ],
}
YOLOV8_POSE = {
    "nc": 1,
    "kpt_shape": [17, 3],
    "scales": {
        "n": [0.33, 0.25, 1024],
        "s": [0.33, 0.50, 1024],
        "m": [0.67, 0.75, 768],
        "l": [1.00, 1.00, 512],
        "x": [1.00, 1.25, 512],
    },
    "backbone": [
        [-1, 1, "Conv", [64, 3, 2]],
        [-1, 1, "Conv", [128, 3, 2]],
        [-1, 3, "C2f", [128, True]],
        [-1, 1, "Conv", [256, 3, 2]],
        [-1, 6, "C2f", [256, True]],
        [-1, 1, "Conv", [512, 3, 2]],
        [-1, 6, "C2f", [512, True]],
        [-1, 1, "Conv", [1024, 3, 2]],
        [-1, 3, "C2f", [1024, True]],
        [-1, 1, "SPPF", [1024, 5]],
    ],
    "head": [
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 3, "C2f", [512]],
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 3, "C2f", [256]],
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 12], 1, "Concat", [1]],
        [-1, 3, "C2f", [512]],
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 9], 1, "Concat", [1]],
        [-1, 3, "C2f", [1024]],
        [[15, 18, 21], 1, "Pose", ["nc", "kpt_shape"]],
    ],
}
PUBLISHED_MPARAMS = {
    ("yolo11", "n"): 2.9,
    ("yolo11", "s"): 9.9,
    ("yolo11", "m"): 20.9,
    ("yolo11", "l"): 26.2,
    ("yolo11", "x"): 58.8,
    ("yolov8", "n"): 3.3,
    ("yolov8", "s"): 11.6,
    ("yolov8", "m"): 26.4,
    ("yolov8", "l"): 44.4,
    ("yolov8", "x"): 69.4,
}


def _build(family: str, scale: str, device: str = "meta") -> YoloPose:
    yaml = copy.deepcopy(YOLO11_POSE if family == "yolo11" else YOLOV8_POSE)
    yaml["scale"] = scale
    with torch.device(device):
        return YoloPose(PoseConfig.from_yaml(yaml), legacy_head=family == "yolov8")


@pytest.mark.parametrize(("family", "scale"), sorted(PUBLISHED_MPARAMS))
def test_parameter_count_matches_published(family: str, scale: str) -> None:
    model = _build(family, scale)
    mparams = sum(p.numel() for p in model.parameters()) / 1e6
    assert mparams == pytest.approx(PUBLISHED_MPARAMS[family, scale], rel=0.005, abs=0.05)


@pytest.mark.parametrize("family", ["yolo11", "yolov8"])
def test_feature_layers_and_shapes(family: str) -> None:
    model = _build(family, "n", device="cpu").eval()
    assert model.feature_strides == (4, 8, 16, 32)
    if family == "yolo11":
        assert model.feature_layers == (2, 4, 6, 10)  # as the golden file documents
        assert model.feature_channels == (64, 128, 128, 256)
    with torch.inference_mode():
        pred, feats = model(torch.rand(2, 3, 64, 96))
    anchors = sum((64 // s) * (96 // s) for s in (8, 16, 32))
    assert pred.shape == (2, 4 + 1 + 17 * 3, anchors)
    for f, c, s in zip(feats, model.feature_channels, model.feature_strides):
        assert f.shape == (2, c, 64 // s, 96 // s)


def test_fuse_preserves_output() -> None:
    torch.manual_seed(0)
    model = _build("yolo11", "n", device="cpu").eval()
    for m in model.modules():  # non-trivial BN statistics, or fusing would be a no-op
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        before, feats_before = model(x)
        after, feats_after = model.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)
    for a, b in zip(feats_after, feats_before):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_unsupported_layer_is_refused() -> None:
    yaml = copy.deepcopy(YOLO11_POSE)
    yaml["scale"] = "n"
    yaml["backbone"][0][2] = "GhostConv"
    with pytest.raises(ValueError, match="unsupported layer type 'GhostConv'"):
        YoloPose(PoseConfig.from_yaml(yaml))


@pytest.mark.slow
def test_usable_with_autograd_after_inference_mode() -> None:
    """The anchor cache must not leak inference tensors into a later differentiable call."""
    model = _build("yolo11", "n", device="cpu").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        model(x)
    pred, _ = model(x)
    pred.sum().backward()
    assert model.model[0].conv.weight.grad is not None
