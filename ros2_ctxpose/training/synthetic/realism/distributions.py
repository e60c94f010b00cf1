"""Keypoint error and confidence distributions of a sample, and the renders/real error ratio.

Errors are pooled over (person, joint) pairs, as ``summary`` pools them; the bootstrap of the
ratio resamples people (a person's joints are not independent), each set on its own.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ros2_ctxpose.core.skeleton import COCO17, COCO_H36M_SHARED

#: Joint groups over COCO-17; the error groups keep the joints both skeletons share.
GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "face": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
    "shoulders": ("left_shoulder", "right_shoulder"),
    "elbows": ("left_elbow", "right_elbow"),
    "wrists": ("left_wrist", "right_wrist"),
    "hips": ("left_hip", "right_hip"),
    "knees": ("left_knee", "right_knee"),
    "ankles": ("left_ankle", "right_ankle"),
}
_SHARED_COCO: Final = [c for c, _ in COCO_H36M_SHARED]


def _columns(group: str, layout: list[int] | None) -> list[int]:
    """Columns of ``group`` in an array whose columns are COCO joints ``layout`` (None: all 17)."""
    idx = [COCO17.index(name) for name in GROUPS[group]]
    return idx if layout is None else [layout.index(i) for i in idx if i in layout]


def error_stats(errors: np.ndarray) -> dict:
    """Median, quartiles and p90 of the (N, shared joints) errors (NaN: no truth), and the
    median per joint group."""
    finite = errors[np.isfinite(errors)]
    if not finite.size:
        return {"people": len(errors), "values": 0}
    p25, median, p75, p90 = np.percentile(finite, [25, 50, 75, 90])
    by_group = {}
    for group in GROUPS:
        cols = _columns(group, _SHARED_COCO)
        values = errors[:, cols]
        values = values[np.isfinite(values)]
        if cols and values.size:
            by_group[group] = float(np.median(values))
    return {
        "people": len(errors),
        "values": int(finite.size),
        "median": float(median),
        "p25": float(p25),
        "p75": float(p75),
        "p90": float(p90),
        "median_by_group": by_group,
    }


def confidence_stats(confidences: np.ndarray) -> dict:
    """Median and share below 0.5 of the (N, 17) keypoint confidences, and the median per group."""
    c = np.asarray(confidences, np.float64)
    return {
        "people": len(c),
        "median": float(np.median(c)),
        "share_below_half": float(np.mean(c < 0.5)),
        "median_by_group": {g: float(np.median(c[:, _columns(g, None)])) for g in GROUPS},
    }


def _pooled_median(errors: np.ndarray) -> float:
    return float(np.nanmedian(errors))


def median_ratio(numerator: np.ndarray, denominator: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Pooled median error of ``numerator`` / that of ``denominator`` ((N, J) errors, NaN
    ignored) with a percentile bootstrap 95 % interval, people resampled in each set."""
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    for b in range(n_boot):
        num = numerator[rng.integers(0, len(numerator), len(numerator))]
        den = denominator[rng.integers(0, len(denominator), len(denominator))]
        ratios[b] = _pooled_median(num) / _pooled_median(den)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {
        "ratio": _pooled_median(numerator) / _pooled_median(denominator),
        "low": float(low),
        "high": float(high),
    }
