"""``create_detector``: the one place that decides which backend runs the detector network.

``backend="auto"`` picks the torch backend on CUDA (the reference, fp16 there), else OpenVINO where
the ``openvino`` package is installed (the fastest CPU runtime measured, benchmarks/README.md),
else torch on the CPU. Nothing else in the package branches on the backend.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TypedDict

from ..config import PipelineConfig
from .base import PoseDetector
from .torch_backend import TorchPoseDetector, resolve_device
from .yolo_detector import YoloPoseDetector

OPENVINO_INSTALL_HINT = "pip install openvino==2026.4.1"


class _CommonArgs(TypedDict):
    """The keyword arguments both backends' detectors take from the config."""

    weights: str | None
    precision: str
    imgsz: int
    person_threshold: float
    nms_iou_threshold: float


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported (found without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def choose_backend(backend: str, device: str) -> str:
    """The backend ``create_detector`` will use for these settings (``device`` may be "auto")."""
    on_cuda = resolve_device(device).type == "cuda"
    if backend == "auto":
        if not on_cuda and not openvino_available():
            logging.getLogger(__name__).warning(
                "backend=auto on the CPU: openvino is not installed, so the slower torch backend runs (%s)",
                OPENVINO_INSTALL_HINT,
            )
        return "openvino" if not on_cuda and openvino_available() else "torch"
    if backend == "openvino":
        if on_cuda:
            raise ValueError(
                "the OpenVINO backend runs on the CPU; use backend=torch (or auto) with device "
                f"{device!r}, or device=cpu"
            )
        if not openvino_available():
            raise ValueError(
                f"backend=openvino, but the openvino package is not installed ({OPENVINO_INSTALL_HINT}); "
                "use backend=torch or auto"
            )
    return backend


def create_detector(config: PipelineConfig) -> PoseDetector:
    """The detector ``config`` describes, with its weights loaded (errors name the file)."""
    backend = choose_backend(config.backend, config.device)
    common = _CommonArgs(
        weights=config.detector_weights or None,
        precision=config.precision,
        imgsz=config.imgsz,
        person_threshold=config.person_threshold,
        nms_iou_threshold=config.nms_iou_threshold,
    )
    detector: YoloPoseDetector
    if backend == "openvino":
        from .openvino_backend import OpenVINOPoseDetector

        detector = OpenVINOPoseDetector(threads=config.cpu_threads, **common)
    else:
        detector = TorchPoseDetector(device=config.device, **common)
    detector.flip = config.detector_flip
    return detector
