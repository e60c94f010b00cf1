"""The package's own image conversion: every encoding, row padding, byte order, malformed messages.

Each encoding is built here from a reference BGR image by an independent route (numpy channel
shuffles, the BT.601 YUV formulas, a hand-made Bayer mosaic) and decoded with image_codec; a wrong
channel order, Bayer phase or YUV byte order shows up as a large colour error.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_ctxpose.ros import image_codec  # noqa: E402
from ros2_ctxpose.ros.image_codec import ImageDecodeError, decode_compressed, decode_depth, decode_image  # noqa: E402

H, W, BLOCK = 48, 64, 16


def reference_bgr() -> np.ndarray:
    """Blocks of saturated, distinct colours (R != B everywhere, so swaps are visible)."""
    rng = np.random.default_rng(0)
    colours = rng.integers(20, 236, size=(H // BLOCK, W // BLOCK, 3), dtype=np.uint8)
    colours[..., 0] = np.where(np.arange(colours.shape[1]) % 2, 30, 220)[None, :]  # B
    colours[..., 2] = 250 - colours[..., 0]  # R
    return np.kron(colours, np.ones((BLOCK, BLOCK, 1), dtype=np.uint8))


def message(pixels: np.ndarray, encoding: str, *, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image message holding ``pixels`` with ``pad`` bytes of junk after every row."""
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(pixels.astype(dtype)).view(np.uint8).reshape(height, -1)
    junk = np.full((height, pad), 0xAB, dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=bigendian, step=data.shape[1])
    msg.data = data.tobytes()
    return msg


def bgr_to_yuv(bgr: np.ndarray) -> np.ndarray:
    """BT.601 video-range YUV (Y in 16..235), as camera YUV 4:2:2 and OpenCV use it (float, H x W x 3)."""
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b
    return np.stack([y, u, v], axis=-1)


def pack_yuv422(bgr: np.ndarray, order: str) -> np.ndarray:
    """Packed 4:2:2 (H, W, 2) with byte order 'UYVY' or 'YUYV', chroma averaged over pixel pairs."""
    yuv = bgr_to_yuv(bgr)
    u = yuv[:, 0::2, 1] / 2 + yuv[:, 1::2, 1] / 2
    v = yuv[:, 0::2, 2] / 2 + yuv[:, 1::2, 2] / 2
    y0, y1 = yuv[:, 0::2, 0], yuv[:, 1::2, 0]
    quads = {"UYVY": (u, y0, v, y1), "YUYV": (y0, u, y1, v)}[order]
    packed = np.stack(quads, axis=-1).reshape(bgr.shape[0], bgr.shape[1], 2)
    return np.clip(np.round(packed), 0, 255).astype(np.uint8)


def bayer_mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """The raw sensor values a colour filter array ``pattern`` (e.g. 'rggb') would record."""
    channel = {"b": 0, "g": 1, "r": 2}
    mosaic = np.empty(bgr.shape[:2], dtype=bgr.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = bgr[dy::2, dx::2, channel[colour]]
    return mosaic


def interior(image: np.ndarray) -> np.ndarray:
    """Pixels at least 3 px away from every block edge (demosaicing and chroma blur the edges)."""
    mask = np.zeros((H, W), dtype=bool)
    for y in range(0, H, BLOCK):
        for x in range(0, W, BLOCK):
            mask[y + 3 : y + BLOCK - 3, x + 3 : x + BLOCK - 3] = True
    return image[mask].astype(np.int32)


REF = reference_bgr()
GREY = cv2.cvtColor(REF, cv2.COLOR_BGR2GRAY)
RGB = REF[..., ::-1]
ALPHA = np.full((H, W, 1), 77, dtype=np.uint8)

EXACT_CASES = {
    "bgr8": (REF, REF),
    "rgb8": (RGB, REF),
    "bgra8": (np.concatenate([REF, ALPHA], axis=2), REF),
    "rgba8": (np.concatenate([RGB, ALPHA], axis=2), REF),
    "bgr16": (REF.astype(np.uint16) * 257, REF),
    "rgb16": (RGB.astype(np.uint16) * 257, REF),
    "bgra16": (np.concatenate([REF, ALPHA], axis=2).astype(np.uint16) * 257, REF),
    "rgba16": (np.concatenate([RGB, ALPHA], axis=2).astype(np.uint16) * 257, REF),
    "mono8": (GREY, np.repeat(GREY[..., None], 3, axis=2)),
    "mono16": (GREY.astype(np.uint16) * 257, np.repeat(GREY[..., None], 3, axis=2)),
    "8UC1": (GREY, np.repeat(GREY[..., None], 3, axis=2)),
    "8UC3": (REF, REF),
    "8UC4": (np.concatenate([REF, ALPHA], axis=2), REF),
}


@pytest.mark.parametrize("encoding", sorted(EXACT_CASES))
@pytest.mark.parametrize("pad", [0, 12])
@pytest.mark.parametrize("bigendian", [False, True])
def test_exact_encodings(encoding: str, pad: int, bigendian: bool) -> None:
    pixels, expected = EXACT_CASES[encoding]
    out = decode_image(message(pixels, encoding, pad=pad, bigendian=bigendian))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "encoding,order",
    [
        ("uyvy", "UYVY"),
        ("yuv422", "UYVY"),
        ("yuyv", "YUYV"),
        ("yuv422_yuy2", "YUYV"),
    ],
)
@pytest.mark.parametrize("pad", [0, 8])
def test_yuv422(encoding: str, order: str, pad: int) -> None:
    out = decode_image(message(pack_yuv422(REF, order), encoding, pad=pad))
    assert out.shape == (H, W, 3)
    assert np.abs(interior(out) - interior(REF)).max() <= 4


def test_yuv422_byte_orders_differ() -> None:
    """Decoding UYVY data as YUYV must be visibly wrong, or the test above proves nothing."""
    out = decode_image(message(pack_yuv422(REF, "UYVY"), "yuyv"))
    assert np.abs(interior(out) - interior(REF)).max() > 40


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer(pattern: str, bits: int) -> None:
    mosaic = bayer_mosaic(REF, pattern)
    if bits == 16:
        mosaic = mosaic.astype(np.uint16) * 257
    out = decode_image(message(mosaic, f"bayer_{pattern}{bits}", pad=4))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert np.abs(interior(out) - interior(REF)).max() <= 3
    swapped = decode_image(message(mosaic, f"bayer_{pattern[::-1]}{bits}"))
    assert np.abs(interior(swapped) - interior(REF)).max() > 100


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16uc1_millimetres(bigendian: bool) -> None:
    mm = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 7) % 9000
    depth, scale = decode_depth(message(mm, "16UC1", pad=6, bigendian=bigendian))
    np.testing.assert_array_equal(depth, mm)
    assert scale == 0.001 and depth.dtype.isnative


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_32fc1_metres(bigendian: bool) -> None:
    metres = np.linspace(0.3, 8.0, H * W, dtype=np.float32).reshape(H, W)
    metres[0, 0] = np.nan  # invalid depth stays NaN, for the pipeline to ignore
    depth, scale = decode_depth(message(metres, "32FC1", pad=8, bigendian=bigendian))
    np.testing.assert_array_equal(depth, metres)
    assert scale == 1.0


def test_depth_topic_refuses_colour() -> None:
    with pytest.raises(ImageDecodeError, match="16UC1"):
        decode_depth(message(REF, "bgr8"))


def malformed_messages() -> dict[str, Image]:
    good = message(REF, "bgr8")
    cases = {
        "unknown encoding": Image(height=2, width=2, encoding="rgb9", step=6, data=bytes(12)),
        "empty encoding": Image(height=2, width=2, encoding="", step=6, data=bytes(12)),
        "zero size": Image(height=0, width=0, encoding="bgr8", step=0, data=b""),
        "zero width": Image(height=4, width=0, encoding="mono8", step=0, data=b""),
        "step too small": Image(height=H, width=W, encoding="bgr8", step=W * 3 - 1, data=good.data),
        "data too short": Image(height=H, width=W, encoding="bgr8", step=W * 3, data=bytes(good.data)[:-1]),
        "data too long": Image(height=H, width=W, encoding="bgr8", step=W * 3, data=bytes(good.data) + b"x"),
        "odd step for 16 bit": Image(height=2, width=2, encoding="mono16", step=5, data=bytes(10)),
        "depth on colour topic": message(np.zeros((4, 4), np.float32), "32FC1"),
        "unsupported planar yuv": Image(height=4, width=4, encoding="nv21", step=4, data=bytes(24)),
    }
    return cases


@pytest.mark.parametrize("case", sorted(malformed_messages()))
def test_malformed_messages_raise_a_reason(case: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(malformed_messages()[case])
    assert str(info.value)


def compressed(image: np.ndarray, ext: str, fmt: str) -> CompressedImage:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return CompressedImage(format=fmt, data=buf.tobytes())


def test_compressed_png_is_lossless() -> None:
    np.testing.assert_array_equal(decode_compressed(compressed(REF, ".png", "bgr8; png compressed bgr8")), REF)


def test_compressed_jpeg() -> None:
    out = decode_compressed(compressed(REF, ".jpg", "rgb8; jpeg compressed bgr8"))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert np.abs(interior(out) - interior(REF)).mean() < 4


@pytest.mark.parametrize(
    "image",
    [GREY, GREY.astype(np.uint16) * 257, np.concatenate([REF, ALPHA], axis=2)],
    ids=["mono8", "mono16", "bgra8"],
)
def test_compressed_png_variants_become_bgr8(image: np.ndarray) -> None:
    out = decode_compressed(compressed(image, ".png", "png"))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    expected = REF if image.ndim == 3 else np.repeat(GREY[..., None], 3, axis=2)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0truncated"])
def test_compressed_garbage_raises(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_compressed(CompressedImage(format="jpeg", data=data))


def test_bgr8_message_round_trip() -> None:
    header = Header(frame_id="cam")
    msg = image_codec.bgr8_message(REF, header)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("bgr8", W * 3, "cam")
    np.testing.assert_array_equal(decode_image(msg), REF)


@pytest.mark.skipif(not image_codec.has_cv_bridge(), reason="cv_bridge is not installed (PyPI ROS wheels)")
@pytest.mark.parametrize("encoding", sorted(set(image_codec.ENCODINGS) - set(image_codec.DEPTH_SCALE)))
def test_agrees_with_cv_bridge(encoding: str) -> None:
    """Where cv_bridge exists, the own conversion must give what cv_bridge gives."""
    layout = image_codec.ENCODINGS[encoding]
    rng = np.random.default_rng(1)
    shape = (H, W) if layout.channels == 1 else (H, W, layout.channels)
    pixels = rng.integers(0, np.iinfo(layout.dtype).max, size=shape, endpoint=True).astype(layout.dtype)
    msg = message(pixels, encoding, pad=4)
    ours = image_codec.to_bgr8(
        image_codec.image_array(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data), encoding
    )
    theirs = decode_image(msg)
    assert np.abs(ours.astype(np.int32) - theirs).max() <= 1


# ------------------------------------------------------------------ hostile input (issue #14, items 2 and 4)
def _png_bomb(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` RGB pixels whose data is a few zero rows (tiny)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = zlib.compress(b"\0" * ((1 + 3 * width) * 16), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def test_compressed_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from ros2_ctxpose.core.media import images

    msg = CompressedImage(format="png", data=_png_bomb(30000, 20000))
    assert len(msg.data) < 400_000
    monkeypatch.setattr(images.cv2, "imdecode", lambda *a: pytest.fail("the bomb was decoded"))
    monkeypatch.setattr(image_codec.cv2, "imdecode", lambda *a: pytest.fail("the bomb was decoded"))
    with pytest.raises(ImageDecodeError, match="30000x20000.*max_image_pixels"):
        decode_compressed(msg, max_pixels=40_000_000)
    with pytest.raises(ImageDecodeError, match="max_image_pixels"):
        decode_compressed(msg)  # the default limit is PipelineConfig's


def test_compressed_limit_lets_images_up_to_it_through() -> None:
    msg = compressed(REF, ".png", "png")
    assert decode_compressed(msg, max_pixels=H * W).shape == (H, W, 3)
    with pytest.raises(ImageDecodeError, match="max_image_pixels"):
        decode_compressed(msg, max_pixels=H * W - 1)
    assert decode_compressed(msg, max_pixels=None).shape == (H, W, 3)


def test_raw_image_declaring_too_many_pixels_is_refused() -> None:
    msg = message(REF, "bgr8")
    assert decode_image(msg, max_pixels=H * W).shape == (H, W, 3)
    with pytest.raises(ImageDecodeError, match="max_image_pixels"):
        decode_image(msg, max_pixels=H * W - 1)
    with pytest.raises(ImageDecodeError, match="max_image_pixels"):
        decode_depth(message(np.zeros((H, W), np.uint16), "16UC1"), max_pixels=100)


def test_compressed_jpeg_cut_short_with_a_fake_end_marker_is_refused() -> None:
    big = cv2.resize(REF, (W * 5, H * 5), interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".jpg", big)
    data = buf.tobytes()
    assert decode_compressed(CompressedImage(format="jpeg", data=data)).shape == big.shape
    cut = data[: len(data) // 2] + b"\xff\xd9"
    with pytest.raises(ImageDecodeError, match="damaged JPEG"):
        decode_compressed(CompressedImage(format="jpeg", data=cut))


def test_compressed_in_an_unsupported_format_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="supported format"):
        decode_compressed(CompressedImage(format="gif", data=b"GIF89a" + bytes(64)))


@pytest.mark.parametrize("encoding", sorted(EXACT_CASES))
@pytest.mark.parametrize("frame_id", ["", "cam", "camera_optical_frame_x"])  # string lengths 1, 4, 23: every padding
@pytest.mark.parametrize("pad", [0, 4])
def test_view_of_the_serialized_bytes_reads_what_deserialization_reads(encoding: str, frame_id: str, pad: int) -> None:
    from rclpy.serialization import serialize_message

    pixels, _ = EXACT_CASES[encoding]
    msg = message(pixels, encoding, pad=pad)
    msg.header = Header(frame_id=frame_id)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789
    raw = serialize_message(msg)
    view = image_codec.image_from_cdr(raw)
    assert view is not None
    fields = ("height", "width", "encoding", "step", "is_bigendian")
    assert [getattr(view, f) for f in fields] == [getattr(msg, f) for f in fields]
    assert view.header == msg.header
    assert np.shares_memory(np.frombuffer(view.data, np.uint8), np.frombuffer(raw, np.uint8))  # not copied
    np.testing.assert_array_equal(decode_image(view), decode_image(msg))


def test_bytes_that_are_no_complete_image_give_no_view() -> None:
    from rclpy.serialization import serialize_message

    raw = serialize_message(message(REF, "bgr8"))
    assert image_codec.image_from_cdr(raw[:-1]) is None  # pixels cut short
    assert image_codec.image_from_cdr(raw[:30]) is None  # header cut short
    assert image_codec.image_from_cdr(b"\x00\x0b" + raw[2:]) is None  # an encapsulation it does not read
    assert image_codec.image_from_cdr(b"") is None
    big_endian = bytearray(raw)
    big_endian[1] = 0x00  # the same bytes declared big-endian: lengths become absurd, nothing read past the end
    assert image_codec.image_from_cdr(bytes(big_endian)) is None


def test_prefetched_keeps_order_raises_where_the_reader_failed_and_stops_with_the_consumer() -> None:
    from ros2_ctxpose.core.media.prefetch import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = prefetched(endless(), depth=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()  # the consumer stops early: the reader and its generator end too
    assert closed.wait(5.0)
    with pytest.raises(ValueError, match="depth"):
        list(prefetched([1], depth=0))


@pytest.mark.parametrize("encoding", ["uyvy", "yuv422", "yuyv", "yuv422_yuy2"])
def test_odd_width_packed_yuv_is_a_decode_error(encoding: str) -> None:
    """Two pixels share their chroma: an odd width is a malformed message, not a crash in OpenCV."""
    msg = Image(height=4, width=5, encoding=encoding, step=10, data=bytes(40))
    with pytest.raises(ImageDecodeError, match="even"):
        decode_image(msg)
