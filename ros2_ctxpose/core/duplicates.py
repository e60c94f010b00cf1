"""One person, one detection: drop a second detection of someone already detected.

YOLO-pose's non-maximum suppression compares boxes only, so a box around the upper half of a
person (a partial detection, IoU about 0.5 with the full box) can survive beside the full one,
and the lifter then turns it into a phantom skeleton with guessed legs (Sports2D's demo clip
has one in 13 of its 230 frames). Its keypoints sit on the full detection's, which a second
person's never do, even when their boxes overlap: keypoint similarity (OKS, as in the OKS-NMS of
top-down pose estimators) tells the two cases apart where box IoU cannot.
"""

from __future__ import annotations

import numpy as np

from ros2_ctxpose.core.tracking import keypoint_similarity


def distinct_people(keypoints: np.ndarray, boxes_xyxy: np.ndarray, oks_threshold: float) -> np.ndarray:
    """Indices of the people to keep, for people sorted by descending score.

    ``keypoints`` (N, 17, 3) and ``boxes_xyxy`` (N, 4) in pixels. A person whose keypoint
    similarity with a kept, higher-scoring person is above ``oks_threshold`` (measured at that
    person's scale, over the joints both see) is dropped; 1 keeps everyone.
    """
    n = len(keypoints)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    similarity = keypoint_similarity(keypoints, keypoints, boxes_xyxy)
    keep: list[int] = []
    for i in range(n):
        if not any(similarity[i, j] > oks_threshold for j in keep):  # NaN (broken keypoints): kept
            keep.append(i)
    return np.array(keep, dtype=np.int64)
