"""What the native decoders (libjpeg, libpng, FFmpeg) print on stderr, captured while decoding and
sorted into damage reports and the rest: damage that decodes "successfully" is found here.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

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
IMAGE_DAMAGE = re.compile(
    r"Corrupt JPEG data|Premature end of JPEG file|Inconsistent progression|"
    r"Invalid SOS parameters|libpng error|Bogus",
    re.IGNORECASE,
)
#: FFmpeg's reports of damaged or missing video data ("[h264 @ 0x...] error while decoding MB ...");
#: only lines with FFmpeg's "[component @ address]" prefix count (others are passed on).
VIDEO_DAMAGE = re.compile(
    r"^\[[^\]]+ @ 0x[0-9a-fA-F]+\].*(partial file|damaged|error while decoding|Error at MB|"
    r"concealing|corrupt|Invalid data|illegal|overread|decode error|invalid len|"
    r"missing picture|Invalid NAL|truncat)",
    re.IGNORECASE,
)


def split_damage(lines: list[str], pattern: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """(the lines matching ``pattern``, tidied; the others as they were)."""
    hits = [tidy(line) for line in lines if pattern.search(line)]
    return hits, [line for line in lines if not pattern.search(line)]


def tidy(line: str) -> str:
    """A decoder message without FFmpeg's context address ("[h264 @ 0x55d1...] ..." -> "[h264] ...")."""
    return re.sub(r" @ 0x[0-9a-fA-F]+\]", "]", line.strip())
