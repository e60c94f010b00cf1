"""Letterbox resize (as Ultralytics does it) and the coordinate maps it implies.

The network sees the image scaled (aspect kept) and padded (value 114, centred) to a multiple
of the stride. Everything downstream needs to move points between three frames: original
image pixels, network-input pixels, and ``grid_sample`` coordinates in [-1, 1] over the
network input. Pixel coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``, the
convention of YOLO's anchors, so with ``align_corners=False`` one grid coordinate addresses
the same image point on every feature map whatever its stride.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from ..config import DETECTOR_STRIDE, PipelineConfig, imgsz_problem

if TYPE_CHECKING:  # only for the annotations: this module does not import torch at run time
    import torch

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")  # the maps are plain arithmetic on either

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterboxed image.

    Attributes:
        orig_hw: original image (height, width).
        resized_hw: the image's (height, width) inside the network input, before padding.
        input_hw: network input (height, width), multiples of the stride.
        pad_xy: left and top padding in input pixels.
    """

    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    input_hw: tuple[int, int]
    pad_xy: tuple[int, int]

    @classmethod
    def fit(
        cls,
        orig_hw: tuple[int, int],
        imgsz: int = PipelineConfig.imgsz,
        stride: int = DETECTOR_STRIDE,
        rect: bool = False,
    ) -> Letterbox:
        """Ultralytics ``LetterBox(center=True, scaleup=True)``: ``rect=False`` pads to
        ``imgsz x imgsz``; ``rect=True`` (their ``auto``) pads only to the next multiple of
        ``stride``, which is what ``YOLO.predict`` uses for a single image and is faster."""
        h, w = orig_hw
        if h <= 0 or w <= 0:
            raise ValueError(f"cannot letterbox an empty image of size {w}x{h}")
        if problem := imgsz_problem(imgsz, stride):
            raise ValueError(f"imgsz {problem}")
        scale = min(imgsz / h, imgsz / w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))  # 1 x 10000 stays 1 px
        dw, dh = imgsz - new_w, imgsz - new_h
        if rect:
            dw, dh = dw % stride, dh % stride
        left, top = round(dw / 2 - 0.1), round(dh / 2 - 0.1)
        return cls(orig_hw=(h, w), resized_hw=(new_h, new_w), input_hw=(new_h + dh, new_w + dw), pad_xy=(left, top))

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Per-axis resize factors original -> input. Rounding the resized size makes them
        differ slightly (1000x1002 -> 639x640); using the exact ones is what reproduces
        Ultralytics' output coordinates."""
        return self.resized_hw[1] / self.orig_hw[1], self.resized_hw[0] / self.orig_hw[0]

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Resize (bilinear) and pad an ``HxWxC`` uint8 image to :attr:`input_hw` (a new array)."""
        out = np.empty((*self.input_hw, *image.shape[2:]), dtype=image.dtype)
        return self.apply_into(image, out)

    def apply_into(self, image: np.ndarray, out: np.ndarray) -> np.ndarray:
        """:meth:`apply` written into ``out`` (``input_hw`` x C, e.g. one slot of a preallocated
        batch): the image is resized straight into its place and only the pad strips are filled,
        so each frame is written once and nothing is allocated."""
        if image.shape[:2] != self.orig_hw:
            raise ValueError(f"image is {image.shape[:2]}, this letterbox was fit to {self.orig_hw}")
        if out.shape[:2] != self.input_hw or out.shape[2:] != image.shape[2:]:
            raise ValueError(f"output is {out.shape}, this letterbox needs {(*self.input_hw, *image.shape[2:])}")
        rh, rw = self.resized_hw
        left, top = self.pad_xy
        inner = out[top : top + rh, left : left + rw]
        if (rh, rw) != self.orig_hw:
            resized = cv2.resize(image, (rw, rh), dst=inner, interpolation=cv2.INTER_LINEAR)
            if resized is not inner and not np.shares_memory(resized, inner):  # never seen; be safe
                inner[...] = resized
        else:
            inner[...] = image
        out[:top] = PAD_VALUE
        out[top + rh :] = PAD_VALUE
        out[top : top + rh, :left] = PAD_VALUE
        out[top : top + rh, left + rw :] = PAD_VALUE
        return out

    def to_input(self, xy: ArrayT) -> ArrayT:
        """Original pixels ``(..., 2)`` -> network-input pixels."""
        return xy * self._like(xy, self.scale_xy) + self._like(xy, self.pad_xy)

    def to_original(self, xy: ArrayT) -> ArrayT:
        """Network-input pixels ``(..., 2)`` -> original pixels (not clipped)."""
        return (xy - self._like(xy, self.pad_xy)) / self._like(xy, self.scale_xy)

    def to_grid(self, xy: ArrayT) -> ArrayT:
        """Original pixels ``(..., 2)`` -> ``grid_sample`` coordinates (``align_corners=False``)."""
        size = self._like(xy, (self.input_hw[1], self.input_hw[0]))
        return self.to_input(xy) * 2.0 / size - 1.0

    @staticmethod
    def _like(xy: ArrayT, values: tuple[float, float]) -> ArrayT:
        if isinstance(xy, np.ndarray):
            return np.asarray(values, dtype=xy.dtype if xy.dtype.kind == "f" else np.float64)
        return xy.new_tensor(values)  # torch: same device and dtype, keeps autograd intact
