"""What every 2D pose detector backend gives the pipeline: the ``PoseDetector`` protocol.

A backend takes images and returns, per image, people (box, score, COCO-17 keypoints in original
pixels) and the feature maps the context lifter crops. The pipeline, the CLI and the node only
ever talk to this protocol; which runtime computes the network (plain torch, OpenVINO, ...) is
decided once, by ``core.detector.create_detector``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .letterbox import Letterbox


@dataclass(frozen=True)
class Detections:
    """People found in one image.

    Attributes:
        boxes_xyxy: ``(N, 4)`` float32, original image pixels.
        scores: ``(N,)`` float32 person confidence, descending.
        keypoints: ``(N, K, 3)`` float32 ``[u, v, conf]`` (COCO-17 for the default weights),
            original image pixels, clipped to the image like Ultralytics does.
        features: backbone maps at strides 4, 8, 16, 32, each ``(1, C, h, w)``, on the
            detector's device (possibly fp16; channels-last strides on CPU, so use ``reshape``).
        letterbox: maps original pixels to network-input pixels and ``grid_sample`` coords.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    features: tuple[torch.Tensor, ...]
    letterbox: Letterbox

    def __len__(self) -> int:
        return len(self.scores)


@runtime_checkable
class PoseDetector(Protocol):
    """A multi-person 2D pose detector backend (see the module docstring)."""

    #: Runtime name: "torch", "openvino", ...
    backend: str
    #: Device the feature maps live on (what the lifter runs on).
    device: torch.device
    #: Numeric precision of the network: "fp32", "fp16", "bf16" or "int8".
    precision: str
    #: Longest network-input side, a multiple of ``stride``.
    imgsz: int
    #: Padding multiple of the network input (the largest head stride).
    stride: int
    #: Minimum person score and NMS IoU threshold; may be changed between calls.
    person_threshold: float
    nms_iou_threshold: float

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of the feature maps, one per level."""
        ...

    @property
    def feature_strides(self) -> tuple[int, ...]:
        """Strides of the feature maps relative to the network input."""
        ...

    def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
        """People in one ``(H, W, 3)`` uint8 image (BGR unless ``bgr=False``)."""
        ...

    def detect_batch(self, images: Sequence[np.ndarray], bgr: bool = True) -> list[Detections]:
        """People in several images, run as one network batch."""
        ...
