"""One set of people as the detector saw them, the common form of rendered and real people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: ``render``: the engine's people; ``real``: photographs and video of real people; ``game``:
#: frames of another renderer (GTA-IM), reported but in neither class of the crop classifier.
Kind = Literal["render", "real", "game"]


@dataclass(frozen=True)
class PeopleSample:
    """N people of one set. ``errors`` is (N, shared joints) keypoint error / sqrt(box area)
    (``summary.keypoint_error``), NaN where a joint has no truth in the image, or None for a set
    without ground truth; ``groups`` keys the cross-validation so that correlated people (one
    clip's neighbouring frames, one rendered instant's views) never sit on both sides."""

    name: str
    kind: Kind
    confidences: np.ndarray  # (N, 17) COCO-17 keypoint confidences
    errors: np.ndarray | None
    features: np.ndarray  # (N, F) pooled feature crops (``pool_crops``)
    groups: np.ndarray  # (N,) str
    #: Frames with truth where the detector found nobody (or no one near the annotated person).
    missed: int = 0

    def __len__(self) -> int:
        return len(self.confidences)

    def subset(self, keep: np.ndarray, name: str) -> PeopleSample:
        """The people where ``keep`` is true, as the set ``name``."""
        return PeopleSample(
            name,
            self.kind,
            self.confidences[keep],
            None if self.errors is None else self.errors[keep],
            self.features[keep],
            self.groups[keep],
        )


def pool_crops(levels: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 2 * sum of channels) per level and channel, the mean and the std of a person's crop
    over its cells: a small summary of the feature statistics, enough for a linear classifier
    to see a shift in what the backbone responds to."""
    parts = []
    for crops in levels:
        c = np.asarray(crops, np.float32).reshape(len(crops), crops.shape[1], -1)
        parts += [c.mean(-1), c.std(-1)]
    return np.concatenate(parts, axis=1)
