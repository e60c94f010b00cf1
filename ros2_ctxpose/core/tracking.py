"""Frame-to-frame identity of people: ids that stay with a person while they stay in view.

Only identities are tracked; poses are not smoothed (the lifter is single-frame on purpose, and a
filter would add latency the consumer did not ask for). Each frame's people are associated with
the tracks of the previous frames by a similarity that combines box IoU (robust when keypoints are
unsure) and an OKS-like keypoint similarity (separates people whose boxes overlap, such as two
people walking past each other). New ids come from a counter and are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .skeleton import COCO17_OKS_SIGMAS

_SIGMAS: Final[np.ndarray] = np.array(COCO17_OKS_SIGMAS)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes (N, 4) and (M, 4) in xyxy -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def keypoint_similarity(kp_a: np.ndarray, kp_b: np.ndarray, boxes_b: np.ndarray,
                        min_conf: float = 0.3) -> np.ndarray:
    """Pairwise OKS-like similarity of keypoints (N, 17, 3) and (M, 17, 3) -> (N, M) in [0, 1].

    As COCO's OKS, with the box area of ``b`` as the object scale, over the keypoints both sides
    see with at least ``min_conf``; 0 where they share none.
    """
    a = np.asarray(kp_a, dtype=np.float64)
    b = np.asarray(kp_b, dtype=np.float64)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=-1)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area = np.clip(boxes_b[:, 2:] - boxes_b[:, :2], 1.0, None).prod(axis=-1)
    var = (2 * _SIGMAS) ** 2
    e = d2 / (2 * area[None, :, None] * var)
    both = (a[:, None, :, 2] >= min_conf) & (b[None, :, :, 2] >= min_conf)
    count = both.sum(axis=-1)
    return np.where(count > 0, (np.exp(-e) * both).sum(axis=-1) / np.maximum(count, 1), 0.0)


def greedy_assignment(score: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col), each used once, taken in order of decreasing score among allowed pairs.

    scipy's Hungarian solver is not a dependency of this package; with the few people a camera
    sees (<= 20) and a score gated by a minimum overlap, greedy matching by best score gives the
    same answer except in contrived ties, and is a dozen lines.
    """
    rows, cols = np.nonzero(allowed)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


@dataclass
class _Track:
    id: int
    box: np.ndarray
    keypoints: np.ndarray | None
    last_seen_s: float


class Tracker:
    """Assigns stable ids to people across consecutive frames of one camera.

    Args:
        iou_threshold: a person may continue a track if their boxes overlap at least this much...
        oks_threshold: ...or their keypoints are at least this similar.
        max_age_s: a track unmatched for longer than this (seconds of the frames' own clock) is
            forgotten, so a person the detector misses for a moment keeps their id whatever the
            frame rate.
    """

    def __init__(self, iou_threshold: float = 0.3, oks_threshold: float = 0.5, max_age_s: float = 1.0) -> None:
        self.iou_threshold = iou_threshold
        self.oks_threshold = oks_threshold
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (ids keep counting up, so none is ever reused)."""
        self._tracks = []

    def update(self, boxes_xyxy: np.ndarray, keypoints: np.ndarray | None, stamp_s: float) -> np.ndarray:
        """Ids (N,) int64 for the people of the frame taken at ``stamp_s`` (seconds): boxes (N, 4)
        and optional keypoints (N, 17, 3)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        kps = None if keypoints is None else np.asarray(keypoints, dtype=np.float64)
        if self._tracks and stamp_s < max(t.last_seen_s for t in self._tracks):
            self.reset()  # time went backwards (a replayed bag, a looping video): start afresh
        self._tracks = [t for t in self._tracks if stamp_s - t.last_seen_s <= self.max_age_s]
        ids = np.zeros(len(boxes), dtype=np.int64)
        matched = self._associate(boxes, kps)
        for det, trk in matched:
            track = self._tracks[trk]
            track.box, track.keypoints, track.last_seen_s = boxes[det], None if kps is None else kps[det], stamp_s
            ids[det] = track.id
        for det in sorted(set(range(len(boxes))) - {d for d, _ in matched}):
            self._tracks.append(_Track(self._next_id, boxes[det], None if kps is None else kps[det], stamp_s))
            ids[det] = self._next_id
            self._next_id += 1
        return ids

    def _associate(self, boxes: np.ndarray, kps: np.ndarray | None) -> list[tuple[int, int]]:
        if not len(boxes) or not self._tracks:
            return []
        prev_boxes = np.stack([t.box for t in self._tracks])
        iou = box_iou(boxes, prev_boxes)
        oks = np.zeros_like(iou)
        if kps is not None:
            with_kp = [i for i, t in enumerate(self._tracks) if t.keypoints is not None]
            if with_kp:
                prev_kp = np.stack([self._tracks[i].keypoints for i in with_kp])
                oks[:, with_kp] = keypoint_similarity(kps, prev_kp, prev_boxes[with_kp])
        allowed = (iou >= self.iou_threshold) | (oks >= self.oks_threshold)
        return greedy_assignment(iou + oks, allowed)
