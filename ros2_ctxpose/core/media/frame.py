"""What every reader hands back: a ``Frame`` (an image, or the reason it could not be read) and
``MediaError``, the reason for an image that exists but cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One image or video frame, or the reason it could not be read."""

    #: The file as given, or ``"<video>#<frame index, 6 digits>"`` for video frames.
    name: str
    #: BGR uint8 (H, W, 3), or None when ``error`` is set.
    image: np.ndarray | None
    error: str | None = None
    #: The video this frame belongs to (None for still images): consecutive frames of one video
    #: share it, which is what tells a caller when to track identities.
    video: str | None = None
    #: Index of the frame in its video.
    index: int = 0
    #: When the frame was taken in its video (seconds, from the container's timestamps); None for
    #: still images. It drives the tracker, whose ages are in seconds.
    stamp_s: float | None = None


class MediaError(ValueError):
    """An image file that exists but is empty, truncated, damaged, too large or not an image."""
