"""The size an encoded image declares in its header (JPEG, PNG, BMP, TIFF, WebP, PNM), read
without decoding, and the check of a declared size against ``max_pixels`` (decompression bombs).
"""

from __future__ import annotations

import re
import struct

import numpy as np

from .frame import MediaError


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
