"""One image, from bytes or from a file: its declared size checked before decoding, truncation
and decoder damage reported as ``MediaError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from ..config import PipelineConfig
from .decoder_messages import IMAGE_DAMAGE, captured_native_stderr, reemit, split_damage
from .frame import MediaError
from .image_header import check_declared_size, probe_image_size

#: ``PipelineConfig.max_image_pixels``' default: the limit where a caller gives none (None = no limit).
DEFAULT_MAX_PIXELS: Final[int] = PipelineConfig.max_image_pixels  # a dataclass default: the class attribute

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
#: The most bytes per declared pixel any supported encoding needs (16-bit RGBA, float TIFF), plus
#: headroom: a larger file cannot be an image of at most ``max_pixels``.
_MAX_BYTES_PER_PIXEL: Final[int] = 16
_HEADER_SLACK_BYTES: Final[int] = 1 << 20


def decode_image_bytes(
    data: bytes | bytearray | memoryview | np.ndarray,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    flags: int = cv2.IMREAD_COLOR,
) -> np.ndarray:
    """Decode an encoded image after checking its declared size against ``max_pixels``.

    Raises ``MediaError`` for an unsupported or cut-short header, a size above ``max_pixels``, data
    the decoder refuses, and data it decodes with damage warnings (a JPEG cut short, even with a
    fake end marker; corrupt entropy-coded data). ``flags``: ``cv2.imdecode``'s.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size == 0:
        raise MediaError("empty file")
    fmt, width, height = probe_image_size(_header_bytes(buffer))
    check_declared_size(width, height, max_pixels, f"{fmt} image")
    with captured_native_stderr() as messages:
        image = cv2.imdecode(buffer, flags)
    damage, others = split_damage(messages, IMAGE_DAMAGE)
    reemit(others)
    if image is None or image.size == 0:
        detail = f" ({'; '.join(damage[:2])})" if damage else ""
        raise MediaError(f"cannot decode {fmt} image (corrupt, truncated or unsupported variant){detail}")
    if damage:
        raise MediaError(f"damaged {fmt} data, the decoder filled in what was missing: {'; '.join(damage[:2])}")
    if (image.shape[1], image.shape[0]) not in ((width, height), (height, width)):  # EXIF may rotate
        raise MediaError(f"{fmt} image decoded to {image.shape[1]}x{image.shape[0]} but declared {width}x{height}")
    return image


def _header_bytes(buffer: np.ndarray) -> bytes:
    """What ``probe_image_size`` needs of an encoded image: the first 64 KiB, or all of a JPEG (its
    frame header may follow large EXIF/ICC segments) or a TIFF (its first directory may be anywhere)."""
    head = buffer[:4].tobytes()
    if head.startswith(b"\xff\xd8") or head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return buffer.tobytes()
    return buffer[:65536].tobytes()


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from ``path``; raises ``OSError`` or ``MediaError`` with the reason.

    Decoded from bytes rather than with ``cv2.imread`` so that unusual paths (non-ASCII) work,
    the declared size is checked before decoding (``max_pixels``, see ``decode_image_bytes``) and
    an empty file is told apart from a corrupt one.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(not_a_file(path))
    size = path.stat().st_size
    if size == 0:
        raise MediaError("empty file")
    if max_pixels is not None and size > max_pixels * _MAX_BYTES_PER_PIXEL + _HEADER_SLACK_BYTES:
        raise MediaError(
            f"{size / 1e6:.0f} MB file: larger than any image of at most max_image_pixels = "
            f"{max_pixels / 1e6:g} Mpx can be"
        )
    data = np.fromfile(str(path), dtype=np.uint8)
    _check_complete(data[-4096:].tobytes(), data[:8].tobytes())
    return decode_image_bytes(data, max_pixels)


def _check_complete(tail: bytes, head: bytes) -> None:
    """Refuse JPEG and PNG files that stop before their end marker.

    OpenCV 4 (e.g. Debian's python3-opencv) decodes a truncated JPEG with a grey fill and no
    error; a pose found on half an image would be silently wrong, so truncation is checked here
    (a cut-short JPEG given a fake end marker is caught by the decoder's warnings instead).
    """
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
        raise MediaError("truncated JPEG (no end-of-image marker)")
    if head.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" not in tail[-64:]:
        raise MediaError("truncated PNG (no IEND chunk)")


def not_a_file(path: Path) -> str:
    """Why ``path`` (which is not a regular file, following links) cannot be read."""
    if path.is_symlink() and not path.exists():
        return f"dangling symbolic link (to {os.readlink(path)})"
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder"
    return "not a regular file (a FIFO, socket or device)"
