"""Frame-to-frame identity of people: ids that stay with a person while they stay in view.

Only identities are tracked; poses are not smoothed (the lifter is single-frame on purpose, and a
filter would add latency the consumer did not ask for). Each frame's people are associated with
the tracks of the previous frames, whatever the time between them: every track keeps a velocity
(pixels per second of its body centre) and is first moved to where it should be at the new
frame's time stamp (constant velocity). A person may then continue a track when

* their box overlaps the predicted box (IoU), or
* their keypoints are similar to the predicted keypoints (OKS-like, separates people whose boxes
  overlap, such as two people walking past each other), or
* their body centre lies within a distance of the predicted one that is relative to the person's
  size and grows with the time since the track was last seen (a walker covers about half a body
  height per second: at 4 frames per second the boxes of one person no longer overlap reliably,
  the centre distance still says who is who), at a similar size.

Among the allowed pairs the most similar are matched first. Ages are in seconds of the frames'
own clock, so the same settings hold at 30 and at 2 frames per second. New ids come from a counter
and are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .skeleton import COCO17, COCO17_OKS_SIGMAS

_SIGMAS: Final[np.ndarray] = np.array(COCO17_OKS_SIGMAS)
#: Shoulders and hips: their mean is the body centre when at least two of them are seen (a box
#: centre moves with every arm swing; the torso does not).
_TORSO: Final[list[int]] = [COCO17.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


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


def keypoint_similarity(kp_a: np.ndarray, kp_b: np.ndarray, boxes_b: np.ndarray, min_conf: float = 0.3) -> np.ndarray:
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
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
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
    centre: np.ndarray
    #: Body centre velocity in pixels per second; None until the track was seen twice.
    velocity: np.ndarray | None = None

    def shift(self, stamp_s: float) -> np.ndarray:
        """Where the track should have moved by ``stamp_s`` (pixels, constant velocity)."""
        if self.velocity is None:
            return np.zeros(2)
        return self.velocity * max(stamp_s - self.last_seen_s, 0.0)


def body_centres(boxes: np.ndarray, keypoints: np.ndarray | None, min_conf: float = 0.3) -> np.ndarray:
    """(N, 2) body centres: the mean of the seen shoulders and hips (two or more), else the box centre."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    if keypoints is not None and len(boxes):
        torso = np.asarray(keypoints, dtype=np.float64)[:, _TORSO]
        seen = (torso[..., 2] >= min_conf) & np.isfinite(torso[..., :2]).all(axis=-1)
        count = seen.sum(axis=1)
        ok = count >= 2
        sums = np.where(seen[..., None], np.nan_to_num(torso[..., :2]), 0.0).sum(axis=1)
        centres[ok] = sums[ok] / count[ok, None]
    return centres


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """(N,) a person's size in pixels: the longer side of the box (the height when upright; unlike
    the width it hardly changes as arms swing)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), 1.0)


class Tracker:
    """Assigns stable ids to people across frames of one camera, at any frame rate.

    Args:
        iou_threshold: a person may continue a track if their box overlaps the track's predicted
            box at least this much...
        oks_threshold: ...or their keypoints are at least this similar to its predicted keypoints...
        centre_gate: ...or their body centre is within ``centre_gate + gate_growth_per_s * dt``
            track sizes (the box's longer side) of the predicted centre, ``dt`` being the seconds
            since the track was last seen (the prediction gets less certain with time); tracks
            seen once have no velocity yet and allow ``max_speed`` sizes per second on top...
        size_ratio: ...and their size is within this factor of the track's.
        max_speed: the fastest a person is assumed to move, in sizes per second (about 3 m/s for
            a 1.7 m person): velocity estimates are capped to it.
        max_age_s: a track unmatched for longer than this (seconds of the frames' own clock) is
            forgotten, so a person the detector misses for a moment keeps their id whatever the
            frame rate.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        oks_threshold: float = 0.5,
        max_age_s: float = 1.0,
        *,
        centre_gate: float = 0.3,
        gate_growth_per_s: float = 1.0,
        size_ratio: float = 1.6,
        max_speed: float = 2.0,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.oks_threshold = oks_threshold
        self.max_age_s = max_age_s
        self.centre_gate = centre_gate
        self.gate_growth_per_s = gate_growth_per_s
        self.size_ratio = size_ratio
        self.max_speed = max_speed
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (ids keep counting up, so none is ever reused)."""
        self._tracks = []

    def update(self, boxes_xyxy: np.ndarray, keypoints: np.ndarray | None, stamp_s: float) -> np.ndarray:
        """Ids (N,) int64 for the people of the frame taken at ``stamp_s`` (seconds): boxes (N, 4)
        and optional keypoints (N, 17, 3)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        kps = None if keypoints is None else np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3)
        if kps is not None and len(kps) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(kps)} keypoint sets")
        stamp_s = float(stamp_s)
        if self._tracks and stamp_s < max(t.last_seen_s for t in self._tracks):
            self.reset()  # time went backwards (a replayed bag, a looping video): start afresh
        self._tracks = [t for t in self._tracks if stamp_s - t.last_seen_s <= self.max_age_s]
        centres = body_centres(boxes, kps)
        ids = np.zeros(len(boxes), dtype=np.int64)
        matched = self._associate(boxes, kps, centres, stamp_s)
        for det, trk in matched:
            track = self._tracks[trk]
            dt = stamp_s - track.last_seen_s
            if dt > 1e-6:
                observed = (centres[det] - track.centre) / dt
                velocity = observed if track.velocity is None else 0.5 * (track.velocity + observed)
                limit = self.max_speed * box_sizes(boxes[det])[0]
                speed = float(np.hypot(*velocity))
                track.velocity = velocity * (limit / speed) if speed > limit else velocity
            track.box, track.centre, track.last_seen_s = boxes[det], centres[det], stamp_s
            track.keypoints = None if kps is None else kps[det]
            ids[det] = track.id
        for det in sorted(set(range(len(boxes))) - {d for d, _ in matched}):
            self._tracks.append(
                _Track(self._next_id, boxes[det], None if kps is None else kps[det], stamp_s, centres[det])
            )
            ids[det] = self._next_id
            self._next_id += 1
        return ids

    def _associate(
        self, boxes: np.ndarray, kps: np.ndarray | None, centres: np.ndarray, stamp_s: float
    ) -> list[tuple[int, int]]:
        if not len(boxes) or not self._tracks:
            return []
        shifts = np.stack([t.shift(stamp_s) for t in self._tracks])  # (M, 2)
        predicted = np.stack([t.box for t in self._tracks]) + np.tile(shifts, 2)
        iou = box_iou(boxes, predicted)
        oks = np.zeros_like(iou)
        if kps is not None:
            with_kp = [i for i, t in enumerate(self._tracks) if t.keypoints is not None]
            if with_kp:
                prev_kp = np.stack([kp for t in self._tracks if (kp := t.keypoints) is not None]).copy()
                prev_kp[..., :2] += shifts[with_kp, None, :]
                oks[:, with_kp] = keypoint_similarity(kps, prev_kp, predicted[with_kp])
        # Centre distance in track sizes, against a gate that widens with the time since last seen.
        sizes = box_sizes(predicted)
        det_sizes = box_sizes(boxes)
        track_centres = np.stack([t.centre for t in self._tracks]) + shifts
        distance = np.linalg.norm(centres[:, None, :] - track_centres[None, :, :], axis=-1) / sizes[None, :]
        dt = np.array([max(stamp_s - t.last_seen_s, 0.0) for t in self._tracks])
        unknown_velocity = np.array([t.velocity is None for t in self._tracks])
        gate = self.centre_gate + (self.gate_growth_per_s + self.max_speed * unknown_velocity) * dt
        ratio = det_sizes[:, None] / sizes[None, :]
        similar_size = (ratio <= self.size_ratio) & (ratio >= 1.0 / self.size_ratio)
        near = (distance <= gate[None, :]) & similar_size
        closeness = np.where(near, 1.0 - distance / gate[None, :], 0.0)
        allowed = (iou >= self.iou_threshold) | (oks >= self.oks_threshold) | near
        return greedy_assignment(iou + oks + closeness, allowed)
