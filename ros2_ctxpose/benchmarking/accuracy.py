"""How far a detector configuration's people are from the reference's (fp32 torch), frame by frame.

Used by benchmarks/precision_accuracy.py (the numbers behind the OpenVINO default precision) and
by the backend parity tests: people are paired by box IoU (greedy, highest first), and the 2D
distance of every keypoint the reference sees with confidence above ``conf_min`` is collected.
People only one side found are counted, not scored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``(N, 4)`` x ``(M, 4)``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(1), (b[:, 2:] - b[:, :2]).prod(1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_people(ref_boxes: np.ndarray, boxes: np.ndarray, iou_min: float = 0.5) -> list[tuple[int, int]]:
    """Pairs ``(ref index, other index)`` by IoU, greedily from the best overlap, each person once."""
    iou = box_iou_np(ref_boxes, boxes)
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < iou_min:
            break
        if all(i != p and j != q for p, q in pairs):
            pairs.append((int(i), int(j)))
    return pairs


@dataclass
class KeypointDeviation:
    """Keypoint distances of matched people, and the people only one side found."""

    distances_px: list[float] = field(default_factory=list)
    frames: int = 0
    reference_people: int = 0
    matched: int = 0
    missed: int = 0  # found by the reference only
    extra: int = 0  # found by the other only
    max_box_px: float = 0.0

    def add(
        self, ref_boxes: np.ndarray, ref_kpts: np.ndarray, boxes: np.ndarray, kpts: np.ndarray, conf_min: float = 0.5
    ) -> None:
        """Add one frame: boxes ``(N, 4)``, keypoints ``(N, K, 3)`` of both sides."""
        pairs = match_people(ref_boxes, boxes)
        self.frames += 1
        self.reference_people += len(ref_boxes)
        self.matched += len(pairs)
        self.missed += len(ref_boxes) - len(pairs)
        self.extra += len(boxes) - len(pairs)
        for i, j in pairs:
            seen = ref_kpts[i, :, 2] > conf_min
            d = np.linalg.norm(np.asarray(kpts[j, :, :2], np.float64) - ref_kpts[i, :, :2], axis=-1)
            self.distances_px.extend(d[seen].tolist())
            self.max_box_px = max(self.max_box_px, float(np.abs(np.asarray(boxes[j]) - ref_boxes[i]).max()))

    def summary(self) -> dict[str, Any]:
        d = np.asarray(self.distances_px)
        stats = (
            {
                "mean_px": float(d.mean()),
                "median_px": float(np.median(d)),
                "p95_px": float(np.percentile(d, 95)),
                "max_px": float(d.max()),
            }
            if d.size
            else {"mean_px": None, "median_px": None, "p95_px": None, "max_px": None}
        )
        return {
            **stats,
            "keypoints": int(d.size),
            "frames": self.frames,
            "reference_people": self.reference_people,
            "matched": self.matched,
            "missed": self.missed,
            "extra": self.extra,
            "max_box_px": self.max_box_px,
        }


def mean_or_none(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None
