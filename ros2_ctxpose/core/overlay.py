"""Annotated images: each person's 2D skeleton, box, id and distance, for humans to check at a glance.

Shared by ``ctxpose infer --overlay`` and the ROS node's overlay topic so both look the same. The
skeleton drawn is the detector's COCO-17 (what the image shows), not the lifted joints' projection;
the label carries the 3D part: the root's distance, marked "~" when the intrinsics were assumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .results import ROOT_SCALE_UNKNOWN, Person3D
from .skeleton import COCO17_BONES

#: Distinct BGR colours, cycled by id so one person keeps a colour across frames.
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (75, 25, 230),
    (75, 180, 60),
    (25, 225, 255),
    (200, 130, 0),
    (48, 130, 245),
    (180, 30, 145),
    (240, 240, 70),
    (230, 50, 240),
    (60, 245, 210),
    (128, 128, 0),
)


def colour_for(person_id: int) -> tuple[int, int, int]:
    return _PALETTE[person_id % len(_PALETTE)]


def draw_people(image: np.ndarray, people: Sequence[Person3D], *, keypoint_threshold: float = 0.3) -> np.ndarray:
    """A copy of the BGR ``image`` with every person drawn, coloured and labelled by track id.

    Keypoints below ``keypoint_threshold`` and bones touching them are left out, so the drawing
    shows what the detector actually saw.
    """
    out: np.ndarray = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    thick = max(1, round(max(out.shape[:2]) / 400))
    for person in people:
        pid = person.track_id
        colour = colour_for(int(pid))
        kp = np.asarray(person.keypoints_2d, dtype=np.float64)
        seen = np.isfinite(kp[:, :2]).all(axis=1) & (kp[:, 2] >= keypoint_threshold)
        pts = np.rint(np.nan_to_num(kp[:, :2])).astype(np.int32)
        for a, b in COCO17_BONES:
            if seen[a] and seen[b]:
                cv2.line(out, tuple(pts[a].tolist()), tuple(pts[b].tolist()), colour, thick, cv2.LINE_AA)
        for p in pts[seen]:
            cv2.circle(out, tuple(p.tolist()), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        x0, y0, x1, y1 = np.rint(np.nan_to_num(person.bbox_xyxy)).astype(int).tolist()
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(1, thick // 2))
        approx = "~" if person.root_source == ROOT_SCALE_UNKNOWN else ""
        _label(out, f"#{pid} {approx}{float(person.root[2]):.1f} m", (x0, y0), colour, thick)
    return out


def _label(image: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int], thick: int) -> None:
    """Text on a filled box above ``corner``, shifted inside the image where it would not fit."""
    scale = 0.4 * thick
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = min(max(corner[0], 0), max(image.shape[1] - w - 2, 0))
    y = max(corner[1], h + base + 2)
    cv2.rectangle(image, (x, y - h - base - 2), (x + w + 2, y), colour, -1)
    cv2.putText(image, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
