"""Horizontal-flip test-time augmentation of the detector (``PipelineConfig.detector_flip``).

The network sees the image and its mirror image in one batch; the mirror's people are mirrored
back (x -> W - x, left and right COCO joints swapped) and matched to the direct people by box IoU
(greedily, highest first: scipy is no dependency of the core, and a few people leave nothing an
optimal assignment would decide differently). Each matched person's box, score, keypoints and
confidences are the mean of both views. A direct person the mirror did not find is kept as it is;
a person only the mirror found is dropped (one view's word is not enough to add someone). The
feature maps stay the direct image's: the lifter's context reads the image as it is.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

from ..skeleton import COCO17_FLIP
from .base import Detections
from .postprocess import box_iou

#: Least box IoU for a direct and a mirrored detection to be the same person.
MATCH_IOU: Final[float] = 0.5


def unmirror(mirrored: Detections, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` and keypoints ``(N, 17, 3)`` of detections made on the mirror image of an
    image ``width`` pixels wide, in the original image's pixels and joint order."""
    boxes = mirrored.boxes_xyxy.copy()
    boxes[:, [0, 2]] = width - mirrored.boxes_xyxy[:, [2, 0]]
    keypoints = mirrored.keypoints[:, list(COCO17_FLIP)].copy()
    keypoints[..., 0] = width - keypoints[..., 0]
    return boxes, keypoints


def merge_flipped(direct: Detections, mirrored: Detections) -> Detections:
    """The direct detections, each averaged with its match among the mirrored ones."""
    if len(direct) == 0 or len(mirrored) == 0:
        return direct
    if direct.keypoints.shape[1] != len(COCO17_FLIP):
        raise ValueError(f"flip averaging needs COCO-17 keypoints, got {direct.keypoints.shape[1]}")
    boxes, keypoints = unmirror(mirrored, direct.letterbox.orig_hw[1])
    iou = box_iou(torch.from_numpy(direct.boxes_xyxy), torch.from_numpy(boxes)).numpy()
    rows, cols = _greedy_pairs(iou, MATCH_IOU)
    out_boxes, out_scores, out_kp = direct.boxes_xyxy.copy(), direct.scores.copy(), direct.keypoints.copy()
    out_boxes[rows] = 0.5 * (direct.boxes_xyxy[rows] + boxes[cols])
    out_scores[rows] = 0.5 * (direct.scores[rows] + mirrored.scores[cols])
    out_kp[rows] = 0.5 * (direct.keypoints[rows] + keypoints[cols])
    order = np.argsort(-out_scores, kind="stable")  # scores stay descending
    return Detections(out_boxes[order], out_scores[order], out_kp[order], direct.features, direct.letterbox)


def _greedy_pairs(iou: np.ndarray, least: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of one-to-one pairs, highest IoU first, each at least ``least``."""
    rows: list[int] = []
    cols: list[int] = []
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < least:
            break
        if r not in rows and c not in cols:
            rows.append(r)
            cols.append(c)
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
