"""The paths a user gives (files and folders) as one stream of frames, in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .frame import Frame, MediaError
from .images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, not_a_file, read_image
from .videos import VIDEO_EXTENSIONS, video_frames


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files from paths: folders contribute their images and videos (sorted, not recursive),
    including entries with such a name that cannot be read (dangling links, FIFOs), so that they
    are reported rather than skipped; sub-folders are not searched."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(
                sorted(
                    f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and not f.is_dir()
                )
            )
        else:
            files.append(p)
    return files


def iter_frames(paths: Iterable[str | Path], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Frame]:
    """Every image and video frame under ``paths``, in order; unreadable inputs as error frames.

    ``max_pixels``: images and videos declaring more pixels are refused before decoding.
    """
    for path in expand_inputs(paths):
        if not path.is_file():
            yield Frame(str(path), None, not_a_file(path))
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            yield from video_frames(path, max_pixels)
        else:
            try:
                yield Frame(str(path), read_image(path, max_pixels))
            except (OSError, MediaError) as exc:
                yield Frame(str(path), None, str(exc))
