"""Confidence filtering and non-maximum suppression of decoded YOLO-pose predictions.

torchvision is not allowed in this package, so NMS is written here. It is the exact greedy
NMS (same result as ``torchvision.ops.nms``) computed without a Python loop over boxes: with
boxes sorted by score, box j survives iff no *surviving* higher-scored box overlaps it more
than the threshold. Iterating that rule from "everyone survives" fixes the decision of at
least one more box per round, and in practice converges in two or three matrix-vector rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Candidate cap before NMS, as in Ultralytics (keeps the IoU matrix bounded).
MAX_NMS_CANDIDATES = 30000


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes ``(N, 4)`` x ``(M, 4)`` -> ``(N, M)``."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS; returns kept indices sorted by decreasing score."""
    order = scores.argsort(descending=True)
    n = order.numel()
    if n == 0:
        return order
    # overlaps[i, j]: higher-scored i would suppress lower-scored j.
    overlaps = (box_iou(boxes[order], boxes[order]) > iou_threshold).triu_(diagonal=1)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for _ in range(n):  # bound only; converges after a few rounds
        new_keep = ~(overlaps & keep[:, None]).any(0)
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


@dataclass(frozen=True)
class RawDetections:
    """Detections of one image in network-input pixels (before un-letterboxing)."""

    boxes_xyxy: torch.Tensor  # (N, 4)
    scores: torch.Tensor  # (N,)
    keypoints: torch.Tensor  # (N, K, ndim)


def postprocess(
    pred: torch.Tensor, kpt_shape: tuple[int, int], nc: int, conf: float, iou: float, max_det: int
) -> list[RawDetections]:
    """Filter and suppress ``(B, 4 + nc + K*ndim, A)`` decoded predictions, per image.

    Class-agnostic (a pose model has one class, "person"); the best class score is the
    detection score. The score row is thresholded first, so only the few candidate anchors'
    columns are gathered and cast to float32 (whatever the network precision); the thousands of
    background anchors' other rows are never transposed or converted.
    """
    results = []
    for p in pred:  # per image (C, A), never per anchor
        class_scores = p[4 : 4 + nc]
        scores = (class_scores[0] if nc == 1 else class_scores.amax(0)).float()  # (A,), compared in fp32
        candidates = (scores > conf).nonzero().squeeze(1)
        if candidates.numel() > MAX_NMS_CANDIDATES:
            candidates = candidates[scores[candidates].topk(MAX_NMS_CANDIDATES).indices]
        cand = p[:, candidates].t().float()  # (N, C)
        cand_scores = scores[candidates]
        xy, wh = cand[:, :2], cand[:, 2:4]
        boxes = torch.cat((xy - wh / 2, xy + wh / 2), 1)
        keep = nms(boxes, cand_scores, iou)[:max_det]
        results.append(RawDetections(boxes[keep], cand_scores[keep], cand[keep, 4 + nc :].reshape(-1, *kpt_shape)))
    return results
