"""Reading images, folders of images and videos as one stream of frames, without ever raising.

Batch tools run over whatever a user points them at; one corrupt file in a folder of thousands
must cost one error line, not the run. Every failure therefore becomes a ``Frame`` with an
``error`` and no image, and the caller decides how to report it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


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
    """An image file that exists but is empty, truncated or not an image."""


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 image from ``path``; raises ``OSError`` or ``MediaError`` with the reason.

    Decoded from bytes rather than with ``cv2.imread`` so that unusual paths (non-ASCII) work and
    an empty file is told apart from a corrupt one.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise MediaError("empty file")
    _check_complete(data.tobytes())
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise MediaError("cannot decode image (corrupt, truncated or not an image format)")
    return image


def _check_complete(data: bytes) -> None:
    """Refuse JPEG and PNG files that stop before their end marker.

    OpenCV 4 (e.g. Debian's python3-opencv) decodes a truncated JPEG with a grey fill and no
    error; a pose found on half an image would be silently wrong, so truncation is checked here.
    """
    if data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-4096:]:
        raise MediaError("truncated JPEG (no end-of-image marker)")
    if data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" not in data[-64:]:
        raise MediaError("truncated PNG (no IEND chunk)")


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files from paths: folders contribute their images and videos (sorted, not recursive)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file()
                                and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        else:
            files.append(p)
    return files


def _video_frames(path: Path) -> Iterator[Frame]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            yield Frame(str(path), None, "cannot open video", video=str(path))
            return
        index = 0
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                break
            stamp_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(f"{path}#{index:06d}", image, video=str(path), index=index, stamp_s=stamp_s)
            index += 1
        if index == 0:
            yield Frame(str(path), None, "video has no readable frames", video=str(path))
    finally:
        cap.release()


def iter_frames(paths: Iterable[str | Path]) -> Iterator[Frame]:
    """Every image and video frame under ``paths``, in order; unreadable inputs as error frames."""
    for path in expand_inputs(paths):
        if not path.exists():
            yield Frame(str(path), None, "no such file")
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            yield from _video_frames(path)
        else:
            try:
                yield Frame(str(path), read_image(path))
            except (OSError, MediaError) as exc:
                yield Frame(str(path), None, str(exc))


#: The two-person demo clip inside the sports2d wheel.
DEMO_VIDEO = ("Sports2D", "Demo", "demo.mp4")


def demo_video_path() -> Path:
    """Path of Sports2D's demo.mp4, found without importing Sports2D (its imports need more packages)."""
    spec = importlib.util.find_spec(DEMO_VIDEO[0])
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root).joinpath(*DEMO_VIDEO[1:])
        if path.is_file():
            return path
    raise FileNotFoundError("the demo video Sports2D/Demo/demo.mp4 is not installed: "
                            "pip install --no-deps sports2d==0.8.34 (scripts/bootstrap.sh does this)")
