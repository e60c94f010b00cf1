"""The PoseDetector contract of docs/ARCHITECTURE.md (inputs, outputs, features, batching), the
torch backend's settings, and ``create_detector``'s choice of backend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ros2_ctxpose.core.config import PipelineConfig
from ros2_ctxpose.core.detector import (
    CheckpointError,
    Detections,
    PoseDetector,
    TorchPoseDetector,
    choose_backend,
    create_detector,
    factory,
)
from ros2_ctxpose.core.feature_sampling import sample_features


@pytest.fixture(scope="module")
def bus_det(detector: TorchPoseDetector, bus: np.ndarray) -> Detections:
    """The detector's answer for bus.jpg at its default settings, computed once for this module."""
    return detector.detect(bus)


def test_properties(detector: TorchPoseDetector) -> None:
    assert isinstance(detector, PoseDetector)  # every attribute the protocol names is there
    assert detector.backend == "torch" and detector.device.type == "cpu"
    assert detector.precision == "fp32"  # "auto" on the CPU: exact, the reference
    assert detector.feature_channels == (64, 128, 128, 256)
    assert detector.feature_strides == (4, 8, 16, 32)
    assert detector.stride == 32 and detector.imgsz == 640
    assert (detector.person_threshold, detector.nms_iou_threshold) == (0.25, 0.7)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in detector.model.modules())
    assert next(detector.model.parameters()).dtype == torch.float32


def test_detect_outputs(detector: TorchPoseDetector, bus: np.ndarray, bus_det: Detections) -> None:
    det = bus_det
    assert isinstance(det, Detections) and len(det) == 4
    assert det.boxes_xyxy.dtype == det.scores.dtype == det.keypoints.dtype == np.float32
    assert det.boxes_xyxy.shape == (4, 4) and det.keypoints.shape == (4, 17, 3)
    assert np.all(np.diff(det.scores) <= 0) and np.all(det.scores > detector.person_threshold)
    h, w = bus.shape[:2]
    assert det.keypoints[..., 0].max() <= w and det.keypoints[..., 1].max() <= h
    assert det.letterbox.orig_hw == (h, w) and det.letterbox.input_hw == (640, 480)
    ih, iw = det.letterbox.input_hw
    for f, c, s in zip(det.features, detector.feature_channels, detector.feature_strides):
        assert f.shape == (1, c, ih // s, iw // s)
        assert f.device == detector.device and f.dtype == torch.float32


@pytest.mark.slow
def test_thresholds_apply_from_the_next_call(
    detector: TorchPoseDetector, bus: np.ndarray, bus_det: Detections, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``person_threshold`` / ``nms_iou_threshold`` are plain attributes read on every call (what
    ``Pose3DPipeline.update`` changes); the same detector, no reload."""
    scores = bus_det.scores
    cut = float(scores[1:3].mean())  # between the second and the third person
    monkeypatch.setattr(detector, "person_threshold", cut)
    np.testing.assert_array_equal(detector.detect(bus).scores, scores[:2])
    monkeypatch.setattr(detector, "person_threshold", 0.01)
    many = detector.detect(bus)
    assert len(many) > len(scores)  # low-score boxes appear...
    monkeypatch.setattr(detector, "nms_iou_threshold", 0.05)
    assert len(detector.detect(bus)) < len(many)  # ...and a strict NMS merges overlapping ones


def test_bgr_flag(detector: TorchPoseDetector, bus: np.ndarray, bus_det: Detections) -> None:
    det_bgr = bus_det
    det_rgb = detector.detect(np.ascontiguousarray(bus[..., ::-1]), bgr=False)
    np.testing.assert_allclose(det_rgb.keypoints, det_bgr.keypoints, atol=1e-4)
    swapped = detector.detect(np.ascontiguousarray(bus[..., ::-1]), bgr=True)  # wrong order
    assert not np.allclose(swapped.scores[:1], det_bgr.scores[:1], atol=1e-4)


@pytest.mark.slow
def test_batch_equals_single(detector: TorchPoseDetector, bus: np.ndarray, bus_det: Detections, shared_data) -> None:
    zidane = cv2.imread(str(shared_data("data/images/coco/zidane.jpg")))
    same = detector.detect_batch([bus, bus])
    single = bus_det
    for d in same:
        np.testing.assert_allclose(d.keypoints, single.keypoints, atol=1e-3)
    # Mixed sizes share one square input; the people found stay the same.
    mixed = detector.detect_batch([bus, zidane])
    assert [d.letterbox.input_hw for d in mixed] == [(640, 640), (640, 640)]
    assert [len(d) for d in mixed] == [4, 2]
    assert detector.detect_batch([]) == []


@pytest.mark.slow
def test_results_do_not_share_the_reused_input_buffer(detector: TorchPoseDetector, bus: np.ndarray) -> None:
    """The letterboxed input batch is reused between calls of one shape: a result kept from an
    earlier call must not change when the next image goes through."""
    first = detector.detect(bus)
    kept = [f.clone() for f in first.features], first.keypoints.copy()
    detector.detect(np.zeros_like(bus))
    for f, k in zip(first.features, kept[0]):
        assert torch.equal(f, k)
    np.testing.assert_array_equal(first.keypoints, kept[1])


def test_features_at_keypoints_feed_the_lifter(detector: TorchPoseDetector, bus_det: Detections) -> None:
    det = bus_det
    grid = torch.from_numpy(det.letterbox.to_grid(det.keypoints[..., :2])).float()
    assert grid.abs().max() <= 1
    offsets = torch.zeros_like(grid, requires_grad=True)  # the lifter's learned offsets
    sampled = sample_features(det.features, (grid + offsets).view(1, -1, 2))
    assert [s.shape for s in sampled] == [(1, 4 * 17, c) for c in detector.feature_channels]
    assert all(torch.isfinite(s).all() for s in sampled)
    sum(s.sum() for s in sampled).backward()
    assert offsets.grad is not None and offsets.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        ("not an image", TypeError, "numpy array"),
        (np.zeros((32, 32, 3), np.float32), ValueError, "uint8"),
        (np.zeros((32, 32), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((32, 32, 4), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((0, 32, 3), np.uint8), ValueError, "empty"),
    ],
)
def test_bad_input_is_refused(detector: TorchPoseDetector, image: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        detector.detect(image)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"image 1.*{message}"):
        detector.detect_batch([np.zeros((32, 32, 3), np.uint8), image])  # type: ignore[list-item]


def test_blank_image_has_nobody(detector: TorchPoseDetector) -> None:
    det = detector.detect(np.full((240, 320, 3), 127, np.uint8))
    assert len(det) == 0 and det.keypoints.shape == (0, 17, 3) and det.boxes_xyxy.shape == (0, 4)


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        ("fp16", r"runs fp32, bf16 on cpu, not 'fp16'"),  # half precision is a CUDA thing
        ("int8", r"runs fp32, bf16 on cpu, not 'int8'"),  # OpenVINO's, not torch's
        ("fp8", r"not 'fp8'"),
    ],
)
def test_precision_the_cpu_cannot_run_is_refused(precision: str, message: str) -> None:
    """Refused before any weights load (so it says so even where the weights are missing)."""
    with pytest.raises(ValueError, match=message):
        TorchPoseDetector(weights="/nonexistent/never-read.pt", device="cpu", precision=precision)


def test_bad_imgsz_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 32, got 500"):
        TorchPoseDetector(weights="/nonexistent/never-read.pt", device="cpu", imgsz=500)


def test_cuda_without_cuda_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device.*device=cpu or auto"):
        TorchPoseDetector(device="cuda:0")


def test_create_detector_applies_the_config(detector: TorchPoseDetector) -> None:
    config = PipelineConfig(
        backend="torch",
        device="cpu",
        precision="fp32",
        imgsz=320,
        person_threshold=0.4,
        nms_iou_threshold=0.6,
        detector_weights=str(detector.weights),
    )
    made = create_detector(config)
    assert isinstance(made, TorchPoseDetector) and made.backend == "torch"
    assert (made.device.type, made.precision, made.imgsz) == ("cpu", "fp32", 320)
    assert (made.person_threshold, made.nms_iou_threshold) == (0.4, 0.6)
    assert made.weights == detector.weights


def test_create_detector_names_a_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found.*nope.pt"):
        create_detector(PipelineConfig(backend="torch", device="cpu", detector_weights=str(tmp_path / "nope.pt")))


def test_auto_backend_is_openvino_on_the_cpu_only_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "openvino_available", lambda: True)
    assert choose_backend("auto", "cpu") == "openvino"
    assert choose_backend("torch", "cpu") == "torch"
    monkeypatch.setattr(factory, "openvino_available", lambda: False)
    assert choose_backend("auto", "cpu") == "torch"
    with pytest.raises(ValueError, match=r"openvino package is not installed \(pip install openvino"):
        choose_backend("openvino", "cpu")


def test_auto_backend_is_torch_on_cuda_and_openvino_is_refused_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "openvino_available", lambda: True)
    monkeypatch.setattr(factory, "resolve_device", lambda device: torch.device("cuda", 0))
    assert choose_backend("auto", "auto") == "torch"
    with pytest.raises(ValueError, match="OpenVINO backend runs on the CPU"):
        choose_backend("openvino", "cuda:0")
