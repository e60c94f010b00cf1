"""Duplicate detections of one person are dropped; people side by side are not."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.duplicates import distinct_people


def _person(x0: float, height: float = 400.0) -> tuple[np.ndarray, np.ndarray]:
    """A standing person's COCO-17 keypoints (all seen) and box, left edge at ``x0`` pixels."""
    rel_y = np.array([0.05, 0.04, 0.04, 0.05, 0.05, 0.2, 0.2, 0.35, 0.35, 0.5, 0.5, 0.52, 0.52, 0.75, 0.75, 0.97, 0.97])
    rel_x = np.array([0.5, 0.45, 0.55, 0.4, 0.6, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85, 0.35, 0.65, 0.35, 0.65, 0.35, 0.65])
    width = 0.4 * height
    kp = np.stack([x0 + rel_x * width, 50 + rel_y * height, np.full(17, 0.9)], -1)
    return kp, np.array([x0, 50, x0 + width, 50 + height])


def _upper_half_of(kp: np.ndarray, box: np.ndarray, shift_px: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """What a partial detection of the same person looks like: the same upper-body keypoints
    (a few pixels off), unsure legs, a box over the upper half."""
    partial = kp.copy()
    partial[:, :2] += shift_px
    partial[13:, 2] = 0.1
    return partial, np.array([box[0], box[1], box[2], box[1] + 0.5 * (box[3] - box[1])])


def test_partial_duplicate_is_dropped_unless_the_threshold_keeps_all() -> None:
    kp, box = _person(100)
    dup_kp, dup_box = _upper_half_of(kp, box)
    kps, boxes = np.stack([kp, dup_kp]), np.stack([box, dup_box])
    assert distinct_people(kps, boxes, 0.5).tolist() == [0]
    assert distinct_people(kps, boxes, 1.0).tolist() == [0, 1]


def test_people_with_overlapping_boxes_are_kept() -> None:
    a, b = _person(100), _person(160)  # box IoU 0.45 (NMS keeps both), keypoints 60 px apart
    kps, boxes = np.stack([a[0], b[0]]), np.stack([a[1], b[1]])
    assert distinct_people(kps, boxes, 0.5).tolist() == [0, 1]


def test_each_duplicate_is_judged_against_kept_people_only() -> None:
    a, b = _person(100), _person(600)
    dup_a = _upper_half_of(*a)
    kps = np.stack([a[0], b[0], dup_a[0]])
    boxes = np.stack([a[1], b[1], dup_a[1]])
    assert distinct_people(kps, boxes, 0.5).tolist() == [0, 1]


def test_people_with_broken_keypoints_are_kept_not_dropped() -> None:
    kp, box = _person(100)
    broken = kp.copy()
    broken[:, :2] = np.nan
    assert distinct_people(np.stack([kp, broken]), np.stack([box, box]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("n", [0, 1])
def test_no_or_one_person(n: int) -> None:
    kp, box = _person(100)
    assert distinct_people(np.zeros((n, 17, 3)) + kp, np.zeros((n, 4)) + box, 0.5).tolist() == list(range(n))
