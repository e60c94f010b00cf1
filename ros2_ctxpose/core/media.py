"""Reading images, folders of images and videos as one stream of frames, without ever raising.

Batch tools run over whatever a user points them at; one corrupt file in a folder of thousands
must cost one error line, not the run. Every failure therefore becomes a ``Frame`` with an
``error`` and no image, and the caller decides how to report it.

Hostile and damaged input is refused before it costs anything, and never passes silently:

* Decompression bombs: the size an image declares in its header (PNG IHDR, JPEG SOF, BMP, TIFF,
  WebP, PNM) is read by ``probe_image_size`` before any pixel is decoded and checked against
  ``max_pixels`` (``PipelineConfig.max_image_pixels``); formats whose header is not understood
  are refused rather than handed to a decoder unchecked. Videos are checked on their declared
  frame size.
* Damage that decodes "successfully": libjpeg fills a JPEG cut short (even one given a fake end
  marker) with grey and only prints a warning, FFmpeg conceals broken video frames and a
  truncated video just ends early. The decoders' messages on the process's stderr are captured
  while decoding (``captured_native_stderr``) and damage reports become errors; a video that
  ends before the frame count its container declares gets an error frame for the shortfall.
* Dangling symbolic links, FIFOs and other non-files in a folder get an error frame too.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import cv2
import numpy as np

from .config import PipelineConfig

#: ``PipelineConfig.max_image_pixels``' default: the limit where a caller gives none (None = no limit).
DEFAULT_MAX_PIXELS: Final[int] = PipelineConfig.max_image_pixels  # a dataclass default: the class attribute

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
VIDEO_EXTENSIONS: Final[frozenset[str]] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
#: Containers whose declared frame count is exact (an index), so any shortfall is lost frames;
#: for the others FFmpeg estimates it from the duration and may be a frame off.
_EXACT_FRAME_COUNT: Final[frozenset[str]] = frozenset({".mp4", ".m4v", ".mov", ".avi"})
#: The most bytes per declared pixel any supported encoding needs (16-bit RGBA, float TIFF), plus
#: headroom: a larger file cannot be an image of at most ``max_pixels``.
_MAX_BYTES_PER_PIXEL: Final[int] = 16
_HEADER_SLACK_BYTES: Final[int] = 1 << 20


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


# --------------------------------------------------------------------------- declared image size
def _pnm_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PBM/PGM/PPM (P1-P6), PAM (P7) or PFM (PF/Pf) header."""
    head = data[:4096]
    if head[:2] == b"P7":
        fields = dict(re.findall(rb"^(WIDTH|HEIGHT)\s+(\d+)", head, flags=re.MULTILINE))
        if b"WIDTH" not in fields or b"HEIGHT" not in fields:
            raise MediaError("PAM header without WIDTH and HEIGHT")
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    text = re.sub(rb"#[^\n]*", b" ", head[2:])
    numbers = re.findall(rb"\d+", text[:1024])
    if len(numbers) < 2:
        raise MediaError("PNM header without a width and height")
    return int(numbers[0]), int(numbers[1])


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOF segment, walking the segments from SOI."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise MediaError(f"JPEG: no marker at byte {i} before the frame header (corrupt file)")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            break
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            raise MediaError(f"JPEG: segment 0x{marker:02X} with length {length} (corrupt file)")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 7 > n:
                break
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            if height == 0:
                raise MediaError("JPEG: the frame header declares no height (DNL), which is not supported")
            return width, height
        i += length
    raise MediaError("JPEG without a frame header (SOF) before its image data (truncated or corrupt)")


def _tiff_size(data: bytes) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) of the first IFD (classic TIFF and BigTIFF)."""
    endian = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack(endian + "H", data[2:4])
    big = version == 43
    try:
        if big:
            (offset,) = struct.unpack(endian + "Q", data[8:16])
            (count,) = struct.unpack(endian + "Q", data[offset : offset + 8])
            entries, entry_size, first = offset + 8, 20, 12
        else:
            (offset,) = struct.unpack(endian + "I", data[4:8])
            (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
            entries, entry_size, first = offset + 2, 12, 8
        size: dict[int, int] = {}
        for k in range(min(count, 4096)):
            e = entries + k * entry_size
            tag, kind = struct.unpack(endian + "HH", data[e : e + 4])
            if tag in (256, 257):
                code = {3: "H", 4: "I", 16: "Q"}.get(kind)
                if code is None:
                    raise MediaError(f"TIFF: image size tag {tag} of unexpected type {kind}")
                (size[tag],) = struct.unpack(endian + code, data[e + first : e + first + struct.calcsize(code)])
        if 256 in size and 257 in size:
            return size[256], size[257]
    except struct.error:
        pass
    raise MediaError("TIFF without a readable image width and height in its first directory (truncated or corrupt)")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    try:
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            (bits,) = struct.unpack("<I", data[21:25])
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
    except (IndexError, struct.error):
        pass
    raise MediaError("WebP without a readable frame header (truncated or corrupt)")


def probe_image_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[str, int, int]:
    """(format, width, height) that an encoded image declares in its header, without decoding it.

    Raises ``MediaError`` for data in no supported format (JPEG, PNG, BMP, TIFF, WebP, PNM) or
    whose header is cut short; only the first few kilobytes are read (a JPEG's segments are
    walked up to its frame header).
    """
    if isinstance(data, np.ndarray):  # its own memoryview: numpy's stubs type ndarray as a buffer only on 3.12+
        data = data.data
    data = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            if data[12:16] != b"IHDR":
                raise MediaError("PNG without an IHDR header (corrupt file)")
            w, h = struct.unpack(">II", data[16:24])
            return "PNG", w, h
        if data.startswith(b"\xff\xd8"):
            return ("JPEG", *_jpeg_size(data))
        if data.startswith(b"BM"):
            (header,) = struct.unpack("<I", data[14:18])
            if header == 12:
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return "BMP", abs(w), abs(h)
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return ("TIFF", *_tiff_size(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return ("WebP", *_webp_size(data))
        if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"1234567Ff" and data[2:3].isspace():
            return ("PNM", *_pnm_size(data))
    except struct.error:
        raise MediaError("image header cut short (truncated file)") from None
    raise MediaError("not an image in a supported format (JPEG, PNG, BMP, TIFF, WebP, PBM/PGM/PPM)")


def check_declared_size(width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    """``MediaError`` when a declared size is empty or above ``max_pixels`` (None: no limit)."""
    if width <= 0 or height <= 0:
        raise MediaError(f"{what} declares an empty size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError(
            f"{what} declares {width}x{height} = {width * height / 1e6:.1f} Mpx, more than "
            f"max_image_pixels = {max_pixels / 1e6:g} Mpx: refused before decoding "
            "(a decompression bomb, or raise --max-image-pixels)"
        )


# --------------------------------------------------------------------------- decoder messages
_STDERR_LOCK = threading.Lock()


@contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Collect what native code (libjpeg, libpng, FFmpeg) writes to file descriptor 2 meanwhile.

    Yields a list that holds the captured lines once the block has ended. Writes by other threads
    in the meantime are captured too: the caller passes on (``reemit``) what it does not consume.
    Where fd 2 cannot be redirected, nothing is captured.
    """
    lines: list[str] = []
    with _STDERR_LOCK:
        with suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield lines
            return
        if hasattr(os, "memfd_create"):
            sink = os.memfd_create("ctxpose-stderr")
        else:  # pragma: no cover - not Linux
            sink, name = tempfile.mkstemp(prefix="ctxpose-stderr")
            os.unlink(name)
        try:
            os.dup2(sink, 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                size = os.lseek(sink, 0, os.SEEK_END)
                if size:
                    os.lseek(sink, 0, os.SEEK_SET)
                    text = os.read(sink, min(size, 1 << 20)).decode("utf-8", "replace")
                    lines.extend(line for line in text.splitlines() if line.strip())
        finally:
            os.close(sink)
            os.close(saved)


def reemit(lines: Iterable[str]) -> None:
    """Write captured lines that were not consumed back to the real stderr."""
    text = "".join(line + "\n" for line in lines)
    if text:
        with suppress(OSError):
            os.write(2, text.encode("utf-8", "replace"))


#: libjpeg's corrupt-data warnings (jerror.h: JWRN_HIT_MARKER, JWRN_JPEG_EOF, JWRN_EXTRANEOUS_DATA,
#: JWRN_HUFF_BAD_CODE, JWRN_MUST_RESYNC, JWRN_BOGUS_PROGRESSION, ...) and libpng's errors. Extraneous
#: bytes are damage too: one flipped byte in a scan shows up as exactly that.
_IMAGE_DAMAGE = re.compile(
    r"Corrupt JPEG data|Premature end of JPEG file|Inconsistent progression|"
    r"Invalid SOS parameters|libpng error|Bogus",
    re.IGNORECASE,
)
#: FFmpeg's reports of damaged or missing video data ("[h264 @ 0x...] error while decoding MB ...");
#: only lines with FFmpeg's "[component @ address]" prefix count (others are passed on).
_VIDEO_DAMAGE = re.compile(
    r"^\[[^\]]+ @ 0x[0-9a-fA-F]+\].*(partial file|damaged|error while decoding|Error at MB|"
    r"concealing|corrupt|Invalid data|illegal|overread|decode error|invalid len|"
    r"missing picture|Invalid NAL|truncat)",
    re.IGNORECASE,
)


def _split(lines: list[str], pattern: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """(the lines matching ``pattern``, tidied; the others as they were)."""
    hits = [_tidy(line) for line in lines if pattern.search(line)]
    return hits, [line for line in lines if not pattern.search(line)]


def _tidy(line: str) -> str:
    """A decoder message without FFmpeg's context address ("[h264 @ 0x55d1...] ..." -> "[h264] ...")."""
    return re.sub(r" @ 0x[0-9a-fA-F]+\]", "]", line.strip())


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
    damage, others = _split(messages, _IMAGE_DAMAGE)
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
        raise MediaError(_not_a_file(path))
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


def _not_a_file(path: Path) -> str:
    """Why ``path`` (which is not a regular file, following links) cannot be read."""
    if path.is_symlink() and not path.exists():
        return f"dangling symbolic link (to {os.readlink(path)})"
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder"
    return "not a regular file (a FIFO, socket or device)"


# --------------------------------------------------------------------------- folders and videos
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


def _video_frames(path: Path, max_pixels: int | None) -> Iterator[Frame]:
    """The frames of a video; damaged frames and frames the container declares but the file does
    not hold become error frames."""
    with captured_native_stderr() as messages:
        cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            detail = f": {'; '.join(map(_tidy, messages[:2]))}" if messages else ""
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
            damage, others = _split(messages, _VIDEO_DAMAGE)
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


def iter_frames(paths: Iterable[str | Path], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Frame]:
    """Every image and video frame under ``paths``, in order; unreadable inputs as error frames.

    ``max_pixels``: images and videos declaring more pixels are refused before decoding.
    """
    for path in expand_inputs(paths):
        if not path.is_file():
            yield Frame(str(path), None, _not_a_file(path))
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            yield from _video_frames(path, max_pixels)
        else:
            try:
                yield Frame(str(path), read_image(path, max_pixels))
            except (OSError, MediaError) as exc:
                yield Frame(str(path), None, str(exc))


T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, produced by a reader thread up to ``depth`` ahead of the consumer.

    Reading and decoding the next frame (cv2 releases the GIL) then overlaps the processing of
    this one. An exception in the reader is raised here, at the item it failed on; a consumer that
    stops early (``close()``, a broken pipe) stops the reader too.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    break
            else:
                put((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((False, error))
        finally:
            close = getattr(items, "close", None)  # a generator's own clean-up (e.g. a video capture)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="ctxpose-reader", daemon=True)
    reader.start()
    try:
        while True:
            is_item, value = slots.get()
            if is_item:
                yield value  # type: ignore[misc]
            elif value is None:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()


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
