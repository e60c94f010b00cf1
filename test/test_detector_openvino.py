"""The OpenVINO backend: parity with the torch reference, its IR cache, and how backends are chosen.

Parity bounds (golden images, keypoints the reference sees with confidence > 0.5, against torch
fp32 on the same CPU) come from benchmarks/precision_accuracy.py, measured on this machine with
headroom: fp32 is the same network to ~1e-3 px; bf16 and int8 move keypoints by about a pixel and
a few pixels on average (benchmarks/README.md, "Precision"). The converted models are built once
per session (slow the first time on a machine: conversion seconds, INT8 calibration about a
minute) and kept in the user's cache like any run would; the cache tests use a private one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ros2_ctxpose.benchmarking.accuracy import KeypointDeviation
from ros2_ctxpose.core.config import PipelineConfig
from ros2_ctxpose.core.detector import factory

SHARED = Path(os.environ.get("CTXPOSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
GOLDEN = SHARED / "data" / "golden" / "yolo11n_pose_ultralytics.npz"
IMAGES = SHARED / "data" / "images"

FP32_MAX_PX = 0.05  # measured 3.0e-4 px max: the same network, another runtime's summation order
#: Measured on the 13 golden images (benchmarks/README.md "Precision"): bf16 mean 1.3 / p95 5.8 px,
#: int8 mean 5.2 / p95 18.1 px with two extra low-score detections; bound = measured + headroom.
BOUNDS_PX = {"bf16": {"mean": 2.0, "p95": 8.0, "extra": 0}, "int8": {"mean": 7.0, "p95": 24.0, "extra": 2}}

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino is not installed (pip install openvino==2026.4.1)"
)


@pytest.fixture(scope="session")
def golden_images() -> list[tuple[str, np.ndarray]]:
    if not GOLDEN.is_file():
        pytest.skip(f"golden outputs not found at {GOLDEN} (set CTXPOSE_SHARED to ../shared)")
    with np.load(GOLDEN) as data:
        names = sorted({k.rsplit(":", 1)[0] for k in data.files if not k.startswith("raw:")})
    return [(name, cv2.imread(str(IMAGES / name))) for name in names]


@pytest.fixture(scope="session")
def torch_reference():
    from ros2_ctxpose.core.detector import TorchPoseDetector
    from ros2_ctxpose.core.detector.yolo_detector import default_weights_path

    try:
        default_weights_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return TorchPoseDetector(device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def openvino_detectors(torch_reference):
    """Converted models by precision, built on first use (cached under the user's cache dir)."""
    pytest.importorskip("openvino")
    from ros2_ctxpose.core.detector.openvino_backend import OpenVINOPoseDetector

    made: dict[str, OpenVINOPoseDetector] = {}

    def get(precision: str) -> OpenVINOPoseDetector:
        if precision not in made:
            made[precision] = OpenVINOPoseDetector(precision=precision)
        return made[precision]

    return get


def _deviation(reference, detector, images) -> dict:
    dev = KeypointDeviation()
    for _, image in images:
        ref, det = reference.detect(image), detector.detect(image)
        dev.add(ref.boxes_xyxy, ref.keypoints, det.boxes_xyxy, det.keypoints)
    return dev.summary()


# ----------------------------------------------------------------------------- parity


@pytest.mark.slow
@needs_openvino
def test_fp32_matches_torch_on_every_golden_image(torch_reference, openvino_detectors, golden_images) -> None:
    summary = _deviation(torch_reference, openvino_detectors("fp32"), golden_images)
    assert summary["missed"] == 0 and summary["extra"] == 0, summary
    assert summary["max_px"] < FP32_MAX_PX, summary
    assert summary["max_box_px"] < FP32_MAX_PX, summary


@needs_openvino
def test_features_have_the_torch_layout_and_values(torch_reference, openvino_detectors, golden_images) -> None:
    detector = openvino_detectors("fp32")
    image = dict(golden_images)["coco/bus.jpg"]
    ref, det = torch_reference.detect(image), detector.detect(image)
    assert detector.feature_channels == torch_reference.feature_channels
    assert detector.feature_strides == torch_reference.feature_strides
    assert detector.device == torch.device("cpu") and detector.backend == "openvino"
    for a, b in zip(ref.features, det.features, strict=True):
        assert a.shape == b.shape and b.dtype == torch.float32
        torch.testing.assert_close(b, a, atol=1e-3, rtol=0)
    np.testing.assert_allclose(det.scores, ref.scores, atol=1e-4)


@needs_openvino
def test_results_stay_valid_after_the_next_call(openvino_detectors, golden_images) -> None:
    """The network's outputs are written into fresh arrays: a later frame never overwrites them."""
    detector = openvino_detectors("fp32")
    images = dict(golden_images)
    first = detector.detect(images["coco/bus.jpg"])
    kept = [f.clone() for f in first.features], first.keypoints.copy()
    detector.detect(images["coco/zidane.jpg"])
    for a, b in zip(first.features, kept[0], strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(first.keypoints, kept[1])


@needs_openvino
def test_rgb_input_and_batches_agree_with_single_bgr(openvino_detectors, golden_images) -> None:
    detector = openvino_detectors("fp32")
    image = dict(golden_images)["coco/bus.jpg"]
    single = detector.detect(image)
    rgb = detector.detect(np.ascontiguousarray(image[..., ::-1]), bgr=False)
    np.testing.assert_allclose(rgb.keypoints, single.keypoints, atol=1e-4)
    batch = detector.detect_batch([image, image])
    for det in batch:
        np.testing.assert_allclose(det.keypoints, single.keypoints, atol=1e-3)
        assert det.features[0].shape[0] == 1


@needs_openvino
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_within_its_measured_bound(
    precision, torch_reference, openvino_detectors, golden_images
) -> None:
    from ros2_ctxpose.core.detector.openvino_runtime import precision_supported

    if precision == "int8":
        pytest.importorskip("nncf")
    if not precision_supported(precision):
        pytest.skip(f"this CPU has no native {precision} in OpenVINO")
    detector = openvino_detectors(precision)
    assert detector.precision == precision
    summary = _deviation(torch_reference, detector, golden_images)
    # int8's detector adds up to two low-score (0.25-0.28) duplicates, which the pipeline's duplicate filter drops
    assert summary["missed"] == 0 and summary["extra"] <= BOUNDS_PX[precision]["extra"], summary
    assert summary["mean_px"] <= BOUNDS_PX[precision]["mean"], summary
    assert summary["p95_px"] <= BOUNDS_PX[precision]["p95"], summary


# ----------------------------------------------------------------------------- the IR cache


@pytest.fixture()
def private_cache(tmp_path, monkeypatch, openvino_detectors):
    """An empty cache dir, and ``_build`` replaced by a counter that reuses the session's model
    (the cache logic is under test here, not the conversion)."""
    from ros2_ctxpose.core.detector import openvino_backend as ob

    reference = openvino_detectors("fp32")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    builds: list[dict] = []

    def fake_build(self):
        builds.append(self._key())
        return reference._model.clone(), {
            "kpt_shape": list(reference.kpt_shape),
            "num_classes": reference.num_classes,
            "stride": reference.stride,
            "feature_channels": list(reference.feature_channels),
            "feature_strides": list(reference.feature_strides),
        }

    monkeypatch.setattr(ob.OpenVINOPoseDetector, "_build", fake_build)
    return builds


@needs_openvino
def test_the_ir_is_reused_until_its_key_changes(private_cache, monkeypatch, tmp_path, golden_images) -> None:
    import openvino

    from ros2_ctxpose.core.detector import openvino_backend as ob
    from ros2_ctxpose.core.detector import openvino_ir
    from ros2_ctxpose.core.detector.yolo_detector import default_weights_path

    first = ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 1 and (first.cache_path / "model.xml").is_file()
    first_path = first.cache_path
    stored = json.loads((first.cache_path / "key.json").read_text())["key"]
    assert stored["weights_sha256"] == openvino_ir.file_sha256(default_weights_path())
    assert stored["openvino"] == openvino.__version__ and stored["precision"] == "fp32"

    again = ob.OpenVINOPoseDetector(precision="fp32")  # a new process would do the same
    assert len(private_cache) == 1 and again.cache_path == first_path
    image = dict(golden_images)["coco/zidane.jpg"]
    assert len(again.detect(image)) == len(first.detect(image))

    other_size = ob.OpenVINOPoseDetector(precision="fp32", imgsz=320)  # the IR's H and W are dynamic
    assert len(private_cache) == 1 and other_size.cache_path == first_path

    weights = tmp_path / "other.pt"  # other weights: another sha256
    weights.write_bytes(default_weights_path().read_bytes() + b"\0")
    ob.OpenVINOPoseDetector(weights=weights, precision="fp32")
    assert len(private_cache) == 2 and private_cache[-1]["weights_sha256"] != stored["weights_sha256"]

    monkeypatch.setattr(openvino, "__version__", "2099.0.0-test")  # another OpenVINO
    newer = ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 3 and newer.cache_path != first_path

    monkeypatch.setattr(openvino, "__version__", stored["openvino"])
    monkeypatch.setattr(ob, "INPUT_SIGNATURE", "f32 NCHW RGB [?,3,?,?]")  # another input shape/layout
    reshaped = ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 4 and reshaped.cache_path != first_path

    monkeypatch.setattr(ob, "INPUT_SIGNATURE", stored["input"])
    ob.OpenVINOPoseDetector(precision="fp32")  # back to the first key: its IR is still there
    assert len(private_cache) == 4


@needs_openvino
def test_a_damaged_or_foreign_cache_entry_is_rebuilt(private_cache) -> None:
    from ros2_ctxpose.core.detector import openvino_backend as ob

    first = ob.OpenVINOPoseDetector(precision="fp32")
    key_file = first.cache_path / "key.json"
    document = json.loads(key_file.read_text())
    document["key"]["weights_sha256"] = "0" * 64  # a folder that claims another key
    key_file.write_text(json.dumps(document))
    ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 2
    key_file.write_text("{not json")
    ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 3
    ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 3  # and the rebuilt entry is good again


@needs_openvino
def test_a_changed_cached_model_is_rebuilt_with_a_warning(private_cache, golden_images, caplog) -> None:
    """4 kB of model.bin inverted: the IR still loads and answers, wrongly; its sha256 must catch it."""
    from ros2_ctxpose.core.detector import openvino_backend as ob
    from ros2_ctxpose.core.detector import openvino_ir

    first = ob.OpenVINOPoseDetector(precision="fp32")
    image = dict(golden_images)["coco/zidane.jpg"]
    expected = first.detect(image).keypoints
    weights = first.cache_path / "model.bin"
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(255 - b for b in data[middle : middle + 4096])
    weights.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger=openvino_ir.__name__):
        again = ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 2, "the damaged IR was used"
    assert any("sha256" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(again.detect(image).keypoints, expected, atol=1e-3)
    ob.OpenVINOPoseDetector(precision="fp32")
    assert len(private_cache) == 2  # the rewritten entry matches its hashes again


@needs_openvino
def test_cycling_through_many_sizes_compiles_each_once_and_answers_the_same(
    openvino_detectors, golden_images, monkeypatch
) -> None:
    """More input shapes than are kept compiled, in turn: before, every frame recompiled (0.5 s
    each); now the extra shapes run on one dynamic-shape compile, with the static compile's answers."""
    from ros2_ctxpose.core.detector import openvino_backend as ob

    detector = ob.OpenVINOPoseDetector(precision="fp32")
    compiles: list[int] = []
    original = detector._compile
    monkeypatch.setattr(detector, "_compile", lambda model: compiles.append(1) or original(model))
    image = dict(golden_images)["coco/zidane.jpg"]  # 1280x720
    sizes = [(1280 - 96 * i, 720) for i in range(ob.MAX_COMPILED_SHAPES + 2)]  # one input shape each
    frames = [cv2.resize(image, size) for size in sizes]
    first = [detector.detect(frame).keypoints for frame in frames]
    assert len(compiles) == ob.MAX_COMPILED_SHAPES + 1  # the static ones and the dynamic one
    for frame, expected in zip(frames, first):
        np.testing.assert_array_equal(detector.detect(frame).keypoints, expected)
    assert len(compiles) == ob.MAX_COMPILED_SHAPES + 1, "a shape was compiled again"
    reference = openvino_detectors("fp32")  # static compiles only: the same network's answers
    for frame, got in zip(frames, first):
        np.testing.assert_allclose(got, reference.detect(frame).keypoints, atol=FP32_MAX_PX)
    for _ in range(ob.STATIC_AFTER):  # one size for a while: it earns its own static compile
        detector.detect(frames[-1])
    assert len(compiles) == ob.MAX_COMPILED_SHAPES + 2


@needs_openvino
def test_int8_key_holds_the_calibration_recipe() -> None:
    from ros2_ctxpose.core.detector import openvino_ir as ir

    try:
        recipe = ir.calibration_recipe(640, 32)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    assert recipe["source"] == "demo.mp4" and len(recipe["source_sha256"]) == 64
    base = ir.cache_key("w" * 64, "v", "int8", recipe)
    assert ir.key_digest(base) != ir.key_digest(ir.cache_key("w" * 64, "v", "int8", {**recipe, "imgsz": 320}))
    assert ir.key_digest(base) != ir.key_digest(ir.cache_key("w" * 64, "v", "int8", {**recipe, "source_sha256": "x"}))
    assert ir.key_digest(base) != ir.key_digest(ir.cache_key("w" * 64, "v", "fp32", None))


# ----------------------------------------------------------------------------- choosing a backend


def _pretend(monkeypatch, *, cuda: bool, installed: set[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: real(name, *a) if name in installed or name not in ("openvino", "nncf") else None,
    )


@pytest.mark.parametrize(
    "cuda, installed, expected",
    [
        (True, {"openvino"}, "torch"),  # CUDA: the reference backend, fp16
        (False, {"openvino"}, "openvino"),  # CPU with OpenVINO
        (False, set(), "torch"),  # CPU without it
    ],
)
def test_auto_picks_torch_on_cuda_else_openvino_where_installed(monkeypatch, cuda, installed, expected) -> None:
    _pretend(monkeypatch, cuda=cuda, installed=installed)
    assert factory.choose_backend("auto", "auto") == expected
    assert factory.choose_backend("auto", "cpu") == ("openvino" if installed else "torch")


def test_a_named_backend_that_is_not_installed_is_a_clear_error(monkeypatch) -> None:
    _pretend(monkeypatch, cuda=False, installed=set())
    with pytest.raises(ValueError, match=r"pip install openvino==2026\.4\.1"):
        factory.create_detector(PipelineConfig(backend="openvino", device="cpu"))
    _pretend(monkeypatch, cuda=True, installed={"openvino"})
    with pytest.raises(ValueError, match="OpenVINO backend runs on the CPU"):
        factory.choose_backend("openvino", "cuda")


def test_the_backend_module_itself_names_what_to_install(monkeypatch) -> None:
    from ros2_ctxpose.core.detector import openvino_backend as ob
    from ros2_ctxpose.core.detector import openvino_runtime

    _pretend(monkeypatch, cuda=False, installed=set())
    with pytest.raises(openvino_runtime.BackendUnavailable, match=r"pip install openvino==2026\.4\.1"):
        ob.OpenVINOPoseDetector(precision="fp32")
    with pytest.raises(openvino_runtime.BackendUnavailable, match=r"pip install nncf==3\.4\.0"):
        openvino_runtime.require_nncf()


@needs_openvino
def test_precision_auto_and_unsupported_precisions(monkeypatch) -> None:
    from ros2_ctxpose.core.detector import openvino_runtime as ob

    assert ob.choose_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="fp16"):
        ob.choose_precision("fp16")
    monkeypatch.setattr(ob, "cpu_capabilities", lambda: ("FP32", "INT8"))  # a CPU without bf16
    with pytest.raises(ValueError, match="no native bf16"):
        ob.choose_precision("bf16")
    assert ob.choose_precision("auto") in ("fp32", "int8")
    monkeypatch.setattr(ob, "AUTO_ORDER", ("bf16", "fp32"))
    assert ob.choose_precision("auto") == "fp32"
    monkeypatch.setattr(ob, "cpu_capabilities", lambda: ("FP32", "BF16", "INT8"))
    assert ob.choose_precision("auto") == "bf16"


@pytest.mark.slow
@needs_openvino
def test_first_int8_run_keeps_stdout_json_lines(tmp_path, shared_data) -> None:
    """The first int8 run converts and calibrates (NNCF draws progress bars while it collects
    statistics); stdout is the JSON-lines output, so all of that must go to stderr."""
    pytest.importorskip("nncf")
    image = shared_data("data/images/coco/bus.jpg")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}  # nothing converted yet
    command = [sys.executable, "-m", "ros2_ctxpose.cli.main", "infer", str(image), "--backend", "openvino"]
    result = subprocess.run(
        [*command, "--precision", "int8"], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "first use of" in result.stderr  # it did convert and calibrate in this run
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout[-2000:]
    assert len(json.loads(lines[0])["people"]) == 4
