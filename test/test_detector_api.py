"""The PoseDetector contract of docs/ARCHITECTURE.md: inputs, outputs, features, batching."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ros2_ctxpose.core.detector import Detections, PoseDetector, sample_features

SHARED = Path(os.environ.get("CTXPOSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
BUS = SHARED / "data" / "images" / "coco" / "bus.jpg"
ZIDANE = SHARED / "data" / "images" / "coco" / "zidane.jpg"


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    if not BUS.is_file():
        pytest.skip(f"test image not found at {BUS} (set CTXPOSE_SHARED to ../shared)")
    return cv2.imread(str(BUS))


def test_properties(detector: PoseDetector) -> None:
    assert detector.feature_channels == (64, 128, 128, 256)
    assert detector.strides == (4, 8, 16, 32)
    assert detector.device.type == "cpu" and not detector.half
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in detector.model.modules())


def test_detect_outputs(detector: PoseDetector, bus: np.ndarray) -> None:
    det = detector.detect(bus)
    assert isinstance(det, Detections) and len(det) == 4
    assert det.boxes_xyxy.dtype == det.scores.dtype == det.keypoints.dtype == np.float32
    assert det.boxes_xyxy.shape == (4, 4) and det.keypoints.shape == (4, 17, 3)
    assert np.all(np.diff(det.scores) <= 0) and np.all(det.scores > detector.conf)
    h, w = bus.shape[:2]
    assert det.keypoints[..., 0].max() <= w and det.keypoints[..., 1].max() <= h
    assert det.letterbox.orig_hw == (h, w) and det.letterbox.input_hw == (640, 480)
    ih, iw = det.letterbox.input_hw
    for f, c, s in zip(det.features, detector.feature_channels, detector.strides):
        assert f.shape == (1, c, ih // s, iw // s)
        assert f.device == detector.device


def test_bgr_flag(detector: PoseDetector, bus: np.ndarray) -> None:
    det_bgr = detector.detect(bus)
    det_rgb = detector.detect(np.ascontiguousarray(bus[..., ::-1]), bgr=False)
    np.testing.assert_allclose(det_rgb.keypoints, det_bgr.keypoints, atol=1e-4)
    swapped = detector.detect(np.ascontiguousarray(bus[..., ::-1]), bgr=True)  # wrong order
    assert not np.allclose(swapped.scores[:1], det_bgr.scores[:1], atol=1e-4)


def test_batch_equals_single(detector: PoseDetector, bus: np.ndarray) -> None:
    if not ZIDANE.is_file():
        pytest.skip(f"test image not found at {ZIDANE}")
    zidane = cv2.imread(str(ZIDANE))
    same = detector.detect_batch([bus, bus])
    single = detector.detect(bus)
    for d in same:
        np.testing.assert_allclose(d.keypoints, single.keypoints, atol=1e-3)
    # Mixed sizes share one square input; the people found stay the same.
    mixed = detector.detect_batch([bus, zidane])
    assert [d.letterbox.input_hw for d in mixed] == [(640, 640), (640, 640)]
    assert [len(d) for d in mixed] == [4, 2]
    assert detector.detect_batch([]) == []


def test_features_at_keypoints_feed_the_lifter(detector: PoseDetector, bus: np.ndarray) -> None:
    det = detector.detect(bus)
    grid = torch.from_numpy(det.letterbox.to_grid(det.keypoints[..., :2])).float()
    assert grid.abs().max() <= 1
    offsets = torch.zeros_like(grid, requires_grad=True)  # the lifter's learned offsets
    sampled = sample_features(det.features, (grid + offsets).view(1, -1, 2))
    assert [s.shape for s in sampled] == [(1, 4 * 17, c) for c in detector.feature_channels]
    assert all(torch.isfinite(s).all() for s in sampled)
    sum(s.sum() for s in sampled).backward()
    assert offsets.grad is not None and offsets.grad.abs().sum() > 0


@pytest.mark.parametrize(("image", "error", "message"), [
    ("not an image", TypeError, "numpy array"),
    (np.zeros((32, 32, 3), np.float32), ValueError, "uint8"),
    (np.zeros((32, 32), np.uint8), ValueError, r"\(H, W, 3\)"),
    (np.zeros((32, 32, 4), np.uint8), ValueError, r"\(H, W, 3\)"),
    (np.zeros((0, 32, 3), np.uint8), ValueError, "empty"),
])
def test_bad_input_is_refused(detector: PoseDetector, image: object, error: type,
                              message: str) -> None:
    with pytest.raises(error, match=message):
        detector.detect(image)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"image 1.*{message}"):
        detector.detect_batch([np.zeros((32, 32, 3), np.uint8), image])  # type: ignore[list-item]


def test_blank_image_has_nobody(detector: PoseDetector) -> None:
    det = detector.detect(np.full((240, 320, 3), 127, np.uint8))
    assert len(det) == 0 and det.keypoints.shape == (0, 17, 3) and det.boxes_xyxy.shape == (0, 4)


def test_half_on_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match="CUDA"):
        PoseDetector(device="cpu", half=True)


def test_bad_imgsz_is_refused(detector: PoseDetector) -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        PoseDetector(detector.weights, device="cpu", imgsz=500)
