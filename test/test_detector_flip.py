"""Flip test-time augmentation: mirrored detections mapped back, matched and averaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros2_ctxpose.core.detector import Letterbox
from ros2_ctxpose.core.detector.base import Detections
from ros2_ctxpose.core.detector.flip import merge_flipped, unmirror
from ros2_ctxpose.core.detector.postprocess import box_iou
from ros2_ctxpose.core.skeleton import COCO17_FLIP

WIDTH = 200


def _detections(boxes, scores, keypoints) -> Detections:
    lb = Letterbox.fit((100, WIDTH), imgsz=64, stride=32)
    return Detections(
        np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(keypoints, np.float32), (), lb
    )


def _mirror(boxes: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the detector would report on the mirror image for these people."""
    boxes = boxes.copy()
    boxes[:, [0, 2]] = WIDTH - boxes[:, [2, 0]]
    kp = keypoints[:, list(COCO17_FLIP)].copy()
    kp[..., 0] = WIDTH - kp[..., 0]
    return boxes, kp


def test_unmirror_undoes_the_mirror_and_swaps_left_and_right() -> None:
    g = np.random.default_rng(0)
    boxes = np.array([[10.0, 5.0, 60.0, 90.0]])
    kp = np.concatenate([g.uniform(10, 60, (1, 17, 2)), g.uniform(0, 1, (1, 17, 1))], -1)
    m_boxes, m_kp = _mirror(boxes, kp)
    assert m_kp[0, 1, 0] == pytest.approx(WIDTH - kp[0, 2, 0])  # the left eye seen where the right one was
    back_boxes, back_kp = unmirror(_detections(m_boxes, [0.9], m_kp), WIDTH)
    np.testing.assert_allclose(back_boxes, boxes, atol=1e-4)
    np.testing.assert_allclose(back_kp, kp, atol=1e-4)


def test_matched_people_are_averaged_unmatched_direct_kept_mirror_only_dropped() -> None:
    g = np.random.default_rng(1)
    boxes = np.array([[10.0, 5.0, 60.0, 90.0], [120.0, 10.0, 170.0, 95.0]])
    kp = np.concatenate([g.uniform(10, 170, (2, 17, 2)), g.uniform(0.2, 1, (2, 17, 1))], -1)
    direct = _detections(boxes, [0.9, 0.6], kp)
    shift = np.zeros_like(kp[:1])
    shift[..., 0], shift[..., 2] = 4.0, -0.2  # the mirror view sees person 0 4 px further right, less sure
    m_boxes, m_kp = _mirror(boxes[:1], kp[:1] + shift)
    lone = np.array([[80.0, 20.0, 100.0, 60.0]])  # someone only the mirror view found
    mirrored = _detections(
        np.concatenate([lone, m_boxes]), [0.95, 0.7], np.concatenate([np.full((1, 17, 3), 50.0), m_kp])
    )
    merged = merge_flipped(direct, mirrored)
    assert len(merged) == 2
    np.testing.assert_allclose(merged.scores, [0.8, 0.6], atol=1e-6)
    np.testing.assert_allclose(merged.keypoints[0], kp[0] + shift[0] / 2, atol=1e-4)
    np.testing.assert_allclose(merged.keypoints[1], kp[1], atol=1e-6)  # not found in the mirror: as it was
    assert merged.letterbox is direct.letterbox


def test_no_people_in_either_view_is_the_direct_answer() -> None:
    direct = _detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))
    other = _detections([[0.0, 0.0, 10.0, 10.0]], [0.9], np.ones((1, 17, 3)))
    assert merge_flipped(direct, other) is direct
    assert merge_flipped(other, direct) is other


@pytest.mark.slow
def test_flip_finds_the_same_people_on_a_real_image(bus, weights_available) -> None:
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.detector import create_detector

    config = PipelineConfig(backend="torch", device="cpu", precision="fp32")
    plain = create_detector(config)
    flipped = create_detector(config.replace(detector_flip=True))
    assert not plain.flip and flipped.flip
    a, b = plain.detect(bus), flipped.detect(bus)
    assert len(a) == len(b) == 4
    same = box_iou(torch.from_numpy(a.boxes_xyxy), torch.from_numpy(b.boxes_xyxy)).argmax(1).numpy()
    assert sorted(same) == [0, 1, 2, 3]  # (averaged scores may reorder people)
    kb = b.keypoints[same]
    confident = (a.keypoints[..., 2] > 0.5) & (kb[..., 2] > 0.5)
    moved = np.linalg.norm(a.keypoints[..., :2] - kb[..., :2], axis=-1)[confident]
    assert 0 < np.median(moved) < 5.0  # both views agree to a few pixels; the mean is not the direct answer
    assert torch.equal(b.features[0], a.features[0])
