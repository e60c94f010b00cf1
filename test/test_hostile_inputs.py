"""Bad input for ``core.media`` and ``ctxpose infer`` (issue #14, items 2, 4 and 6): refused early,
reported as an error line, never a traceback, never dropped silently.

* decompression bombs: the declared size is checked before any pixel is decoded;
* damage that decodes "successfully": a JPEG cut short with a fake end marker, truncated
  AVI and (faststart) MP4 files, corrupt video frames;
* a dangling ``.jpg`` link or a FIFO in a folder;
* bad ``--out`` / ``--overlay`` paths, a closed stdout pipe, ``--device cuda`` without CUDA.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from ros2_ctxpose.core.media import decoder_messages, images
from ros2_ctxpose.core.media.frame import MediaError
from ros2_ctxpose.core.media.image_header import probe_image_size
from ros2_ctxpose.core.media.images import read_image
from ros2_ctxpose.core.media.inputs import iter_frames

REPO = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, rows: int = 64) -> bytes:
    """A valid-looking PNG declaring ``width`` x ``height`` RGB pixels whose zlib data holds only
    ``rows`` all-zero rows (so it is tiny to build; a decoder would still allocate the full size)."""
    comp = zlib.compressobj(9)
    idat = comp.compress(b"\0" * ((1 + 3 * width) * rows)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def test_png_bomb_has_the_declared_size() -> None:
    assert probe_image_size(png_bomb(30000, 20000)) == ("PNG", 30000, 20000)


def _picture(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff", ".webp", ".ppm", ".pgm"])
def test_declared_size_of_every_supported_format(ext: str) -> None:
    image = _picture(90, 130)
    if ext == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, data = cv2.imencode(ext, image)
    assert ok
    assert probe_image_size(data.tobytes())[1:] == (130, 90)


def test_progressive_jpeg_with_big_exif_segment() -> None:
    ok, data = cv2.imencode(".jpg", _picture(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    app1 = b"\xff\xe1" + struct.pack(">H", 60002) + b"Exif\0\0" + bytes(59994)
    data = data.tobytes()
    assert probe_image_size(data[:2] + app1 + data[2:]) == ("JPEG", 160, 120)


@pytest.mark.parametrize(
    "data",
    [b"GIF89a" + bytes(20), b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"RIFF\0\0\0\0WEBPVP8 "],
    ids=["gif", "png-cut", "jpeg-no-sof", "webp-cut"],
)
def test_unknown_or_cut_headers_are_refused(data: bytes) -> None:
    with pytest.raises(MediaError):
        probe_image_size(data)


def test_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(30000, 20000))
    assert path.stat().st_size < 400_000
    monkeypatch.setattr(images.cv2, "imdecode", lambda *a: pytest.fail("the bomb was decoded"))
    with pytest.raises(MediaError, match="30000x20000.*max_image_pixels"):
        read_image(path, max_pixels=40_000_000)
    with pytest.raises(MediaError, match="max_image_pixels"):
        read_image(path)  # the config's default limit applies when none is given
    (frame,) = iter_frames([path], max_pixels=40_000_000)
    assert frame.image is None and "refused before decoding" in frame.error


def test_limit_lets_images_up_to_it_through(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), _picture(100, 200))
    assert read_image(path, max_pixels=20_000).shape == (100, 200, 3)
    with pytest.raises(MediaError, match="max_image_pixels"):
        read_image(path, max_pixels=19_999)


def _jpeg(quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", _picture(240, 320), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes()


def test_jpeg_cut_short_with_a_fake_end_marker_is_an_error(tmp_path: Path) -> None:
    data = _jpeg()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    with pytest.raises(MediaError, match="damaged JPEG"):
        read_image(path)


def test_jpeg_with_a_corrupt_byte_is_an_error(tmp_path: Path) -> None:
    data = bytearray(_jpeg())
    data[len(data) * 2 // 3] ^= 0x55
    path = tmp_path / "flipped.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="damaged JPEG|cannot decode"):
        read_image(path)


def test_intact_jpeg_and_stderr_of_others_is_kept(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.jpg"
    path.write_bytes(_jpeg())
    assert read_image(path).shape == (240, 320, 3)
    with decoder_messages.captured_native_stderr() as lines:
        os.write(2, b"someone else's message\n")
    decoder_messages.reemit(lines)
    assert "someone else's message" in capfd.readouterr().err


def test_png_cut_short_with_a_fake_end_is_an_error(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", _picture(240, 320))
    data = data.tobytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2] + data[-12:])
    with pytest.raises(MediaError):
        read_image(path)


# ------------------------------------------------------------------------------ videos
def _video(path: Path, fourcc: str, frames: int = 30) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (160, 120))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for i in range(frames):
        image = _picture()
        cv2.putText(image, str(i), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 255), 3)
        writer.write(image)
    writer.release()
    return path.read_bytes()


def _atoms(data: bytes | bytearray, start: int = 0, end: int | None = None):
    i, end = start, len(data) if end is None else end
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", bytes(data[i : i + 8]))
        yield kind, i, size
        i += size


def faststart(data: bytes) -> bytes:
    """The MP4 with its moov atom moved before mdat (chunk offsets shifted), as ``-movflags
    faststart`` writes it: a player can start before the end, and a cut file still opens."""
    top = {kind: (i, size) for kind, i, size in _atoms(data)}
    mi, ms = top[b"moov"]
    moov = bytearray(data[mi : mi + ms])

    def patch(start: int, end: int) -> None:
        for kind, i, size in _atoms(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                patch(i + 8, i + size)
            elif kind == b"stco":
                (n,) = struct.unpack(">I", moov[i + 12 : i + 16])
                for k in range(n):
                    o = i + 16 + 4 * k
                    moov[o : o + 4] = struct.pack(">I", struct.unpack(">I", moov[o : o + 4])[0] + ms)

    patch(8, ms)
    rest = data[:mi] + data[mi + ms :]
    fi, fs = top[b"ftyp"]
    return rest[: fi + fs] + bytes(moov) + rest[fi + fs :]


def _frames(path: Path) -> tuple[int, list[str]]:
    frames = list(iter_frames([path]))
    return sum(f.image is not None for f in frames), [f.error for f in frames if f.error]


@pytest.mark.parametrize("kind", ["avi", "mp4-faststart"])
def test_truncated_video_reports_the_lost_frames(tmp_path: Path, kind: str) -> None:
    data = _video(tmp_path / "v.avi", "MJPG") if kind == "avi" else faststart(_video(tmp_path / "v.mp4", "mp4v"))
    whole = tmp_path / f"whole.{kind[:3]}"
    whole.write_bytes(data)
    assert _frames(whole) == (30, [])
    cut = tmp_path / f"cut.{kind[:3]}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    good, errors = _frames(cut)
    assert good < 30 and errors
    assert any("of the 30 frames" in e for e in errors), errors


def test_video_whose_frames_declare_too_many_pixels(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    _video(path, "MJPG", frames=3)
    frames = list(iter_frames([path], max_pixels=160 * 120 - 1))
    assert len(frames) == 1 and "max_image_pixels" in frames[0].error


# ------------------------------------------------------------------------------ folders
def test_dangling_link_and_fifo_in_a_folder_get_error_frames(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _picture())
    (tmp_path / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    os.mkfifo(tmp_path / "c.png")
    (tmp_path / "d.jpg").mkdir()  # a folder named like an image: not an input (not recursive)
    frames = {Path(f.name).name: f for f in iter_frames([tmp_path])}
    assert sorted(frames) == ["a.png", "b.jpg", "c.png"]
    assert frames["a.png"].image is not None
    assert "dangling symbolic link" in frames["b.jpg"].error
    assert "not a regular file" in frames["c.png"].error  # and it was not opened (that would block)


# ------------------------------------------------------------------------------ the CLI
def _cli(*args: str, stdin=None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "ros2_ctxpose.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "flag,target",
    [("--out", "folder"), ("--out", "under-a-file"), ("--overlay", "a-file"), ("--record-mcap", "folder")],
)
def test_bad_output_paths_are_one_clear_line(
    tmp_path: Path, flag: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ros2_ctxpose.cli import main as cli_main

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    path = {"folder": tmp_path, "under-a-file": a_file / "out.jsonl", "a-file": a_file}[target]
    assert cli_main.main(["infer", str(a_file), flag, str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and str(path) in err[0]


def test_device_cuda_without_cuda_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], weights_available: None
) -> None:
    import torch

    from ros2_ctxpose.cli import main as cli_main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    annotations = tmp_path / "annotations.json"
    annotations.write_text('{"images": []}')
    for argv in (["infer", str(tmp_path), "--device", "cuda"], ["eval", str(annotations), "--device", "cuda:0"]):
        assert cli_main.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "CUDA" in err[0], err


@pytest.mark.slow
def test_closed_pipe_ends_quietly(tmp_path: Path, weights_available: None) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), _picture())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = (
        f"{sys.executable} -m ros2_ctxpose.cli.main infer {tmp_path} --device cpu 2> {tmp_path}/err.txt"
        " | head -c 10 > /dev/null; echo ${PIPESTATUS[0]}"
    )
    done = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    err = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert done.stdout.strip() in ("0", "141"), done.stdout  # 0 if all lines fit the pipe before it closed


def test_cli_reports_every_bad_input_and_keeps_going(tmp_path: Path, weights_available: None) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_good.png"), _picture())
    data = _jpeg()
    (folder / "b_cut.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    (folder / "c_bomb.png").write_bytes(png_bomb(30000, 20000))
    (folder / "d_dangling.jpg").symlink_to(folder / "gone.jpg")
    video = faststart(_video(tmp_path / "v.mp4", "mp4v", frames=10))
    (folder / "e_cut.mp4").write_bytes(video[: len(video) * 6 // 10])
    done = _cli("infer", str(folder), "--device", "cpu", "--max-image-pixels", "40000000")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    import json

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    by_file = {}
    for line in lines:
        by_file.setdefault(Path(line["file"].split("#")[0]).name, []).append(line)
    assert "error" not in by_file["a_good.png"][0]
    assert "damaged JPEG" in by_file["b_cut.jpg"][0]["error"]
    assert "refused before decoding" in by_file["c_bomb.png"][0]["error"]
    assert "dangling" in by_file["d_dangling.jpg"][0]["error"]
    assert any("of the 10 frames" in line.get("error", "") for line in by_file["e_cut.mp4"])
    errors = [line for line in lines if "error" in line]
    assert all(line["people"] == [] for line in errors)
    for name in ("b_cut.jpg", "c_bomb.png", "d_dangling.jpg", "e_cut.mp4"):
        assert name in done.stderr  # and on stderr, as the CLI reports every bad input


def test_results_that_cannot_be_written_are_one_line_and_exit_2(tmp_path: Path, weights_available: None) -> None:
    """Issue: `--out /dev/full` (a full disk) ended in a traceback; so did stdout on a full device."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    cv2.imwrite(str(tmp_path / "a.png"), _picture())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    infer = f"{sys.executable} -m ros2_ctxpose.cli.main infer {tmp_path / 'a.png'} --device cpu"
    for command, where in ((f"{infer} --out /dev/full", "--out /dev/full"), (f"{infer} > /dev/full", "stdout")):
        done = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        # The only other line is the assumed field of view, said before the first result.
        failures = [line for line in done.stderr.splitlines() if "field of view" not in line]
        assert failures == [f"ctxpose infer: {where}: cannot be written (No space left on device)"], done.stderr


class _RunsCode:
    """Pickled as a call of os.system: what a hostile .pt file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["train --resume", "train --init", "eval-h36m --weights"])
def test_hostile_weights_and_checkpoints_are_refused_in_one_line(tmp_path: Path, command: str) -> None:
    """Issue: `ctxpose train --resume`, `train --init` and `eval-h36m` met a file that would run code
    on loading (weights_only=True refuses it) with a traceback instead of a clear error."""
    import torch

    marker = tmp_path / "code_ran"
    hostile = tmp_path / "runs" / "last.pt"
    hostile.parent.mkdir()
    torch.save({"model": _RunsCode(marker), "step": 1}, hostile)
    argv = {
        "train --resume": ["train", "--out", str(hostile.parent), "--resume"],
        "train --init": ["train", "--out", str(tmp_path / "new"), "--init", str(hostile)],
        "eval-h36m --weights": ["eval-h36m", "--weights", str(hostile)],
    }[command]
    done = _cli(*argv, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and str(hostile) in err[0] and "refused" in err[0], done.stderr[-3000:]
    assert err[0].startswith(f"ctxpose {argv[0]}: ")
    assert not marker.exists(), "the file's code ran"
