"""2D multi-person pose detection: YOLO11/YOLOv8-pose behind one protocol, several runtimes.

Where things are: ``base`` (the ``PoseDetector`` protocol and ``Detections``), ``yolo_detector``
(letterbox, decoding and NMS shared by every runtime), one module per runtime (``torch_backend``:
the plain-torch reference; ``openvino_backend``), ``factory`` (``create_detector`` picks one),
``yolo_pose`` (the network in torch), ``checkpoint`` (the safe .pt reader), ``features`` (the
per-person feature crops the lifter reads). To add a runtime: one module implementing
``YoloPoseDetector._network``, one branch in ``factory``, and its parity test.

Public names load on first use (PEP 562), so importing a light submodule does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "Detections": "base",
    "PoseDetector": "base",
    "Letterbox": "letterbox",
    "TorchPoseDetector": "torch_backend",
    "create_detector": "factory",
    "choose_backend": "factory",
    "default_weights_path": "yolo_detector",
    "crop_people": "features",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
