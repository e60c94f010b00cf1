"""The frames of a video, damaged and missing frames as error frames; and where the demo clip is."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import cv2

from .decoder_messages import VIDEO_DAMAGE, captured_native_stderr, reemit, split_damage, tidy
from .frame import Frame, MediaError
from .image_header import check_declared_size

VIDEO_EXTENSIONS: Final[frozenset[str]] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
#: Containers whose declared frame count is exact (an index), so any shortfall is lost frames;
#: for the others FFmpeg estimates it from the duration and may be a frame off.
_EXACT_FRAME_COUNT: Final[frozenset[str]] = frozenset({".mp4", ".m4v", ".mov", ".avi"})


def video_frames(path: Path, max_pixels: int | None) -> Iterator[Frame]:
    """The frames of a video; damaged frames and frames the container declares but the file does
    not hold become error frames."""
    with captured_native_stderr() as messages:
        cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            detail = f": {'; '.join(map(tidy, messages[:2]))}" if messages else ""
            yield Frame(
                str(path), None, f"cannot open video (corrupt, truncated or unsupported){detail}", video=str(path)
            )
            return
        reemit(messages)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            try:
                check_declared_size(width, height, max_pixels, "video")
            except MediaError as exc:
                yield Frame(str(path), None, str(exc), video=str(path))
                return
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        index = 0
        while True:
            with captured_native_stderr() as messages:
                ok, image = cap.read()
            damage, others = split_damage(messages, VIDEO_DAMAGE)
            reemit(others)
            if not ok or image is None:
                if damage:
                    yield Frame(
                        f"{path}#{index:06d}",
                        None,
                        f"damaged video data: {'; '.join(damage[:2])}",
                        video=str(path),
                        index=index,
                    )
                break
            stamp_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            name = f"{path}#{index:06d}"
            if damage:
                yield Frame(
                    name,
                    None,
                    f"damaged video frame (the decoder concealed errors): {'; '.join(damage[:2])}",
                    video=str(path),
                    index=index,
                    stamp_s=stamp_s,
                )
            elif max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
                yield Frame(
                    name,
                    None,
                    f"frame is {image.shape[1]}x{image.shape[0]}, more than max_image_pixels",
                    video=str(path),
                    index=index,
                    stamp_s=stamp_s,
                )
            else:
                yield Frame(name, image, video=str(path), index=index, stamp_s=stamp_s)
            index += 1
        if index == 0:
            yield Frame(str(path), None, "video has no readable frames", video=str(path))
            return
        tolerance = 0 if path.suffix.lower() in _EXACT_FRAME_COUNT else max(1, round(0.01 * declared))
        if declared > 0 and index < declared - tolerance:
            yield Frame(
                str(path),
                None,
                f"video ended after {index} of the {declared} frames its container "
                f"declares: {declared - index} frame(s) lost (truncated or damaged file)",
                video=str(path),
                index=index,
            )
    finally:
        cap.release()


#: The two-person demo clip inside the sports2d wheel.
DEMO_VIDEO = ("Sports2D", "Demo", "demo.mp4")


def demo_video_path() -> Path:
    """Path of Sports2D's demo.mp4, found without importing Sports2D (its imports need more packages)."""
    spec = importlib.util.find_spec(DEMO_VIDEO[0])
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root).joinpath(*DEMO_VIDEO[1:])
        if path.is_file():
            return path
    raise FileNotFoundError(
        "the demo video Sports2D/Demo/demo.mp4 is not installed: "
        "pip install --no-deps sports2d==0.8.34 (scripts/bootstrap.sh does this)"
    )
