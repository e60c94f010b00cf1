"""sensor_msgs images <-> numpy arrays, for every encoding cameras publish.

The pipeline wants one thing: an 8-bit BGR image (plus, optionally, a depth map). Cameras publish
many layouts: RGB/BGR with or without alpha, 8 or 16 bits, mono, packed YUV 4:2:2, raw Bayer
mosaics, JPEG/PNG, with rows padded to an alignment (``step > width * pixel size``) and, now and
then, big-endian 16-bit data. cv_bridge is used where it is installed; where it is not (the PyPI
ROS wheels have no cv_bridge) this module's own conversion covers the same encodings, with the same
OpenCV colour codes and the same 16 -> 8 bit scaling (x * 255 / 65535), so both paths agree.

Every message is checked against its own geometry (encoding known, non-zero size, step large
enough, data exactly ``step * height`` bytes) before any buffer is touched: a malformed message
raises :class:`ImageDecodeError` with the reason, which the node logs (throttled) and skips.
Size limits come first: ``max_pixels`` (the ``max_image_pixels`` parameter) is checked against
the size a raw image declares, and against the size a CompressedImage's JPEG/PNG header declares
before a single pixel is decoded (a 390 kB PNG can declare gigabytes: a decompression bomb).
CompressedImages the decoder only half understood (a JPEG cut short, even with a fake end
marker, or with corrupt data: libjpeg fills in grey and merely warns) are refused as well
(``core.media.decode_image_bytes``).

The node takes camera frames as serialized bytes. For a raw Image, :func:`image_from_cdr` reads the
header fields from the CDR and leaves the pixels where they are (a view of the bytes): rclpy's
``deserialize_message`` copies every pixel into a Python array first, which took 11 % of the node's
sampled time in ``benchmarks/node_bench.py`` (1768x994 bgr8 at 30 Hz; 1.1 ms a frame on an idle
core, several under load) against microseconds for the view.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ros2_ctxpose.core.media.frame import MediaError
from ros2_ctxpose.core.media.image_header import check_declared_size
from ros2_ctxpose.core.media.images import DEFAULT_MAX_PIXELS, decode_image_bytes

try:  # cv_bridge ships with ROS distributions, not with the PyPI wheels.
    from cv_bridge import CvBridge, CvBridgeError
except ImportError:  # pragma: no cover - depends on the installation
    CvBridge = None
    CvBridgeError = Exception


class ImageDecodeError(ValueError):
    """A message that cannot be turned into an image (the text says why)."""


@dataclass(frozen=True)
class PixelLayout:
    """How one encoding stores a pixel, and the OpenCV code that turns it into BGR."""

    dtype: type
    channels: int
    #: cv2.cvtColor code to BGR; None when the data already is BGR.
    to_bgr: int | None
    #: True for single-channel depth encodings (metres or millimetres, not intensities).
    depth: bool = False
    #: True for packed YUV 4:2:2, where two pixels share their chroma: the width must be even.
    pixel_pairs: bool = False


# Bayer names say which colours the first row starts with; OpenCV names the pattern by the 2x2 block
# starting at the second row and column, hence the shifted codes (the same table as cv_bridge).
_BAYER = {
    "rggb": cv2.COLOR_BayerBG2BGR,
    "bggr": cv2.COLOR_BayerRG2BGR,
    "gbrg": cv2.COLOR_BayerGR2BGR,
    "grbg": cv2.COLOR_BayerGB2BGR,
}

ENCODINGS: dict[str, PixelLayout] = {
    "bgr8": PixelLayout(np.uint8, 3, None),
    "rgb8": PixelLayout(np.uint8, 3, cv2.COLOR_RGB2BGR),
    "bgra8": PixelLayout(np.uint8, 4, cv2.COLOR_BGRA2BGR),
    "rgba8": PixelLayout(np.uint8, 4, cv2.COLOR_RGBA2BGR),
    "bgr16": PixelLayout(np.uint16, 3, None),
    "rgb16": PixelLayout(np.uint16, 3, cv2.COLOR_RGB2BGR),
    "bgra16": PixelLayout(np.uint16, 4, cv2.COLOR_BGRA2BGR),
    "rgba16": PixelLayout(np.uint16, 4, cv2.COLOR_RGBA2BGR),
    "mono8": PixelLayout(np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "mono16": PixelLayout(np.uint16, 1, cv2.COLOR_GRAY2BGR),
    "8UC1": PixelLayout(np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "8UC3": PixelLayout(np.uint8, 3, None),
    "8UC4": PixelLayout(np.uint8, 4, cv2.COLOR_BGRA2BGR),
    # Packed YUV 4:2:2; "yuv422" and "yuv422_yuy2" are the older names of "uyvy" and "yuyv".
    "uyvy": PixelLayout(np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY, pixel_pairs=True),
    "yuv422": PixelLayout(np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY, pixel_pairs=True),
    "yuyv": PixelLayout(np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2, pixel_pairs=True),
    "yuv422_yuy2": PixelLayout(np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2, pixel_pairs=True),
    **{f"bayer_{p}8": PixelLayout(np.uint8, 1, code) for p, code in _BAYER.items()},
    **{f"bayer_{p}16": PixelLayout(np.uint16, 1, code) for p, code in _BAYER.items()},
    # Depth (REP 118): 16UC1 in millimetres, 32FC1 in metres.
    "16UC1": PixelLayout(np.uint16, 1, None, depth=True),
    "32FC1": PixelLayout(np.float32, 1, None, depth=True),
}

#: Metres per unit of each depth encoding (REP 118).
DEPTH_SCALE: dict[str, float] = {"16UC1": 0.001, "32FC1": 1.0}

_BRIDGE = CvBridge() if CvBridge is not None else None


def has_cv_bridge() -> bool:
    """Whether conversions go through cv_bridge (True) or this module's own code (False)."""
    return _BRIDGE is not None


def layout_of(encoding: str) -> PixelLayout:
    """The layout of ``encoding``, or ImageDecodeError naming the supported ones."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(sorted(ENCODINGS))}"
        ) from None


def image_array(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data) -> np.ndarray:
    """The pixels of an Image message as an (H, W[, C]) array in native byte order.

    Padding at the end of each row is cut off; the array shares memory with ``data`` when no byte
    swap is needed. Raises ImageDecodeError when the geometry is inconsistent.
    """
    layout = layout_of(encoding)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({width}x{height})")
    if layout.pixel_pairs and width % 2:
        raise ImageDecodeError(f"{encoding} packs pixels in pairs: the width must be even, got {width}")
    dtype = np.dtype(layout.dtype).newbyteorder(">" if is_bigendian else "<")
    row_bytes = width * layout.channels * dtype.itemsize
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} is smaller than a row of {width} {encoding} pixels ({row_bytes} bytes)")
    if step % dtype.itemsize:
        raise ImageDecodeError(f"step {step} is not a multiple of the {dtype.itemsize}-byte sample size")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageDecodeError(f"data holds {buffer.size} bytes, step * height = {step} * {height} = {step * height}")
    rows = buffer.reshape(height, step)[:, :row_bytes]
    pixels = rows.view(dtype).reshape((height, width, layout.channels) if layout.channels > 1 else (height, width))
    if not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder("="))
    return pixels


def to_bgr8(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """An array in ``encoding`` (as returned by :func:`image_array`) as contiguous 8-bit BGR."""
    layout = layout_of(encoding)
    if layout.depth:
        raise ImageDecodeError(f"{encoding} is a depth encoding, not a colour or intensity image")
    if layout.to_bgr is not None:
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), layout.to_bgr)
    if pixels.dtype == np.uint16:
        pixels = cv2.convertScaleAbs(pixels, alpha=255.0 / 65535.0)
    return np.ascontiguousarray(pixels)


def _check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    try:
        check_declared_size(width, height, max_pixels, what)
    except MediaError as exc:
        raise ImageDecodeError(str(exc)) from None


@dataclass(frozen=True)
class ImageView:
    """A sensor_msgs/Image read from its serialized bytes: the fields the node uses, with ``data``
    a view of the pixels inside those bytes (nothing copied)."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def image_from_cdr(raw: bytes) -> ImageView | None:
    """A serialized sensor_msgs/Image as an :class:`ImageView`, or None where the bytes are not a
    complete Image in plain little- or big-endian CDR (XCDR1 or XCDR2; the caller then deserializes
    them the ordinary way, which reports what is wrong).

    Layout after the 4-byte encapsulation header (alignment counted from its end; every field of
    Image aligns to at most 4 bytes, so XCDR1 and XCDR2 agree): header.stamp (int32 sec, uint32
    nanosec), header.frame_id (uint32 length with the NUL, bytes), height, width (uint32),
    encoding (string), is_bigendian (uint8), step (uint32), data (uint32 length, bytes).
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] not in (0x00, 0x01, 0x06, 0x07):
        return None
    order = "<" if raw[1] in (0x01, 0x07) else ">"
    body = memoryview(raw)[4:]
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        size = struct.calcsize(fmt)
        pos += -pos % size
        (value,) = struct.unpack_from(order + fmt, body, pos)
        pos += size
        return value

    def string() -> str:
        nonlocal pos
        length = take("I")
        if length == 0 or pos + length > len(body):
            raise ValueError("string runs past the end")
        text = bytes(body[pos : pos + length - 1]).decode("utf-8")
        pos += length
        return text

    try:
        sec, nanosec = take("i"), take("I")
        frame_id = string()
        height, width = take("I"), take("I")
        encoding = string()
        is_bigendian = take("B")
        step, size = take("I"), take("I")
    except (struct.error, ValueError, UnicodeDecodeError):
        return None
    if pos + size > len(body):
        return None
    header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
    return ImageView(header, height, width, encoding, is_bigendian, step, body[pos : pos + size])


def decode_image(msg: Image | ImageView, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image as 8-bit BGR (H, W, 3); ImageDecodeError when it cannot be, or when it
    declares more than ``max_pixels`` pixels (None: no limit)."""
    _check_pixels(msg.width, msg.height, max_pixels, "Image")
    pixels = image_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
    if _BRIDGE is not None and isinstance(msg, Image) and not layout_of(msg.encoding).depth:
        try:
            return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="bgr8")
        except CvBridgeError:
            pass  # older cv_bridge releases lack e.g. the uyvy/yuyv names; the own conversion has them
    return to_bgr8(pixels, msg.encoding)


def decode_depth(msg: Image, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float]:
    """An aligned depth image as (array, metres per unit); ImageDecodeError for non-depth encodings
    and for more than ``max_pixels`` pixels."""
    if msg.encoding not in DEPTH_SCALE:
        raise ImageDecodeError(f"depth images must be 16UC1 (mm) or 32FC1 (m), got {msg.encoding!r}")
    _check_pixels(msg.width, msg.height, max_pixels, "depth Image")
    pixels = image_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
    return pixels, DEPTH_SCALE[msg.encoding]


def decode_compressed(msg: CompressedImage, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A JPEG or PNG CompressedImage as 8-bit BGR (grey, alpha and 16-bit PNGs included).

    ImageDecodeError, before decoding, when the image header declares more than ``max_pixels``
    pixels (None: no limit) or is in no supported format; after decoding when the decoder reports
    damaged data (see the module docstring).
    """
    if len(msg.data) == 0:
        raise ImageDecodeError("empty CompressedImage")
    try:
        image = decode_image_bytes(np.frombuffer(msg.data, dtype=np.uint8), max_pixels, cv2.IMREAD_UNCHANGED)
    except MediaError as exc:
        raise ImageDecodeError(f"CompressedImage (format {msg.format!r}, {len(msg.data)} bytes): {exc}") from None
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return image


def bgr8_message(image: np.ndarray, header: Header) -> Image:
    """An 8-bit BGR array as a sensor_msgs/Image (for the overlay topic)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=False, step=width * 3)
    msg.data = image.tobytes()
    return msg
