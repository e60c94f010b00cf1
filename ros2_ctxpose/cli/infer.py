"""``ctxpose infer``: 3D poses of everyone in images, folders of images or videos, as JSON lines.

One line per image or video frame (format: docs/OUTPUT_FORMAT.md)::

    {"file": "img.jpg", "width": 810, "height": 1080, "latency_ms": 85.2,
     "people": [{"id": 0, "score": 0.93, "bbox_xyxy": [x0, y0, x1, y1],
                 "joints_2d_px": [[u, v, conf] x 17 COCO-17],
                 "joints_3d_cam_m": [[x, y, z] x 17 H36M-17, camera optical frame, metres],
                 "root_cam_m": [x, y, z], "root_source": "intrinsics"}]}

Video frames are named ``"video.mp4#000012"`` and their ids come from the tracker (stable across
frames); for still images the id is the person's index in that image. A file that cannot be read
(missing, a dangling link, damaged, truncated, larger than ``--max-image-pixels`` declares, a
video that ends before the frames its container declares) gets ``{"file": ..., "error": "...",
"people": []}`` and the run goes on; the exit code is 1 when any input failed, 2 for bad
arguments (including an unusable ``--out``, ``--overlay`` or ``--record-mcap`` path, weights or device,
an ``--assumed-hfov-deg`` or intrinsics no camera has, and results that cannot be written, e.g. a full disk),
141 when the reader of stdout went away (``| head``). Without intrinsics a horizontal field of
view (``--assumed-hfov-deg``, default 60 degrees, a typical webcam) is assumed and said once on stderr:
directions are then plausible, distances are not metric (``root_source`` = ``scale_unknown``).
With ``--camera-pose FILE`` (the camera's pose above the floor) people standing on the floor are
placed on it (``root_source`` = ``floor``; the others say why not in ``placement_note``).
A calibration that places people farther than 100 m, or whose distortion folds the image, is
said once on stderr (``core.camera``).

``--record-mcap FILE`` also records the results as ROS 2 messages in an MCAP file for Foxglove (3D
skeletons, TF frames, the overlay image; ``output/recording.py``, ``config/foxglove_layout.json``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..core.camera import DEFAULT_FRAME_ID, DEFAULT_HFOV_DEG, CameraModel, check_hfov, implausible_distance
from .config_args import add_config_arguments, add_deprecated_alias, config_from_args

#: Time between still images in an MCAP recording (they have no time stamps of their own).
STILL_IMAGE_PERIOD_NS = 1_000_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="3D poses from images, folders or videos, as JSON lines",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, help="images, folders of images, videos")
    intr = parser.add_argument_group("camera (default: a centred pinhole with --assumed-hfov-deg)")
    for name in ("fx", "fy", "cx", "cy"):
        intr.add_argument(f"--{name}", type=float, help="intrinsics in pixels (give all four)")
    intr.add_argument(
        "--camera-info", type=Path, help="ROS camera_info YAML (camera_matrix, distortion_coefficients, image size)"
    )
    intr.add_argument(
        "--assumed-hfov-deg",
        type=float,
        default=DEFAULT_HFOV_DEG,
        help="horizontal field of view in degrees, assumed without intrinsics",
    )
    add_deprecated_alias(intr, "--fov", "--assumed-hfov-deg", "assumed_hfov_deg", type=float)
    intr.add_argument(
        "--camera-pose",
        type=Path,
        help="the camera's pose above the floor (YAML/JSON: R and T with X_cam = R^T (X_floor - T), "
        "or a 4x4 floor_from_camera; floor z up, z = 0 the floor; docs/OUTPUT_FORMAT.md): people "
        "standing on the floor are placed on it",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON-lines file (default: stdout)")
    parser.add_argument(
        "--overlay", type=Path, default=None, help="folder for annotated images (2D skeleton, id, distance)"
    )
    add_deprecated_alias(parser, "--mcap", "--record-mcap", "record_mcap", type=Path)
    parser.add_argument(
        "--record-mcap",
        type=Path,
        default=None,
        help="also record the results as ROS 2 messages in this MCAP file, for Foxglove "
        "(config/foxglove_layout.json); needs pip install mcap mcap-ros2-support",
    )
    parser.add_argument(
        "--mcap-image",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include the overlay image of every frame in the MCAP file",
    )
    parser.add_argument(
        "--frame-id",
        default=DEFAULT_FRAME_ID,
        help="the camera's optical frame in the MCAP file (its upright parent is camera_link)",
    )
    add_config_arguments(parser)
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Calibration:
    """A camera_info YAML's contents: intrinsics at a calibration size, distortion and its model."""

    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]
    model: str

    def camera(self, width: int, height: int) -> CameraModel:
        return CameraModel.from_calibration(
            self.K, self.dist, (width, height), calibration_size=self.size, distortion_model=self.model
        )


def _yaml_mapping(path: Path, flag: str, what: str) -> dict[str, Any]:
    """The mapping in a YAML (or JSON) file; ValueError naming ``flag`` and the file otherwise."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{flag} {path}: invalid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{flag} {path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{flag} {path}: not {what} (expected a mapping)")
    return data


def load_camera_info(path: Path) -> Calibration:
    """The calibration in a ROS camera_info YAML (as written by camera_calibration).

    ValueError naming the file when it is not such a YAML, or when its calibration is unusable
    (absurd or non-finite K or D, an unsupported distortion model: ``CameraModel.from_calibration``
    says which); what would be padded or scaled is said when the first image is read.
    """
    data = _yaml_mapping(path, "--camera-info", "a camera_info YAML")
    try:
        calibration = Calibration(
            K=np.asarray(data["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3),
            dist=np.asarray((data.get("distortion_coefficients") or {}).get("data") or [], dtype=np.float64).ravel(),
            size=(int(data["image_width"]), int(data["image_height"])),
            model=str(data.get("distortion_model", "plumb_bob")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"{path}: not a camera_info YAML (need camera_matrix.data with 9 numbers, image_width, "
            f"image_height; {type(exc).__name__}: {exc})"
        ) from None
    try:
        calibration.camera(*calibration.size)  # refuse an unusable calibration before any image is read
    except ValueError as exc:
        raise ValueError(f"{path}: unusable calibration: {exc}") from None
    return calibration


def load_camera_pose(path: Path) -> np.ndarray:
    """``floor_from_camera`` (4x4) from a YAML or JSON file with either ``R`` (3x3) and ``T`` (3)
    in the convention X_cam = R^T (X_floor - T), metres (Human3.6M's cameras.json), or a 4x4
    ``floor_from_camera``; the floor frame has z up and z = 0 on the floor. ValueError naming the
    file and the problem otherwise (docs/OUTPUT_FORMAT.md)."""
    from ..core.floor import check_floor_from_camera, floor_from_extrinsics

    data = _yaml_mapping(path, "--camera-pose", "a camera pose file")
    has_rt, has_matrix = "R" in data or "T" in data, "floor_from_camera" in data
    try:
        if has_rt == has_matrix:
            raise ValueError("give either R and T, or floor_from_camera (4x4)")
        if has_matrix:
            return check_floor_from_camera(data["floor_from_camera"])
        if "R" not in data or "T" not in data:
            raise ValueError("give both R (3x3) and T (3 numbers, metres)")
        return floor_from_extrinsics(data["R"], data["T"])
    except ValueError as exc:
        raise ValueError(f"--camera-pose {path}: {exc}") from None


class CameraSource:
    """The camera for each image: fixed intrinsics, a camera_info file, or an assumed FOV. Whatever
    had to be assumed, scaled or padded is said once on stderr."""

    def __init__(self, args: argparse.Namespace) -> None:
        given = [getattr(args, n) for n in ("fx", "fy", "cx", "cy")]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("give all of --fx --fy --cx --cy, or none")
        if all(v is not None for v in given) and args.camera_info is not None:
            raise ValueError("give either --fx/--fy/--cx/--cy or --camera-info, not both")
        self.intrinsics = given if all(v is not None for v in given) else None
        if self.intrinsics is not None and not all(math.isfinite(v) for v in given):
            raise ValueError(f"--fx --fy --cx --cy must be finite numbers, got {given}")
        if self.intrinsics is not None and not (given[0] > 0 and given[1] > 0):
            raise ValueError(f"--fx and --fy must be > 0, got {given[0]} and {given[1]}")
        try:
            check_hfov(args.assumed_hfov_deg)
        except ValueError as exc:
            raise ValueError(f"--assumed-hfov-deg: {exc}") from None
        self.calibration = load_camera_info(args.camera_info) if args.camera_info else None
        self.fov = args.assumed_hfov_deg
        self._said: set[str] = set()
        self._distance_checked = False

    def check_distances(self, frame_name: str, roots_m: list[np.ndarray]) -> None:
        """Say once when people are placed implausibly far (the calibration is the likely cause)."""
        warning = (
            None if self._distance_checked or not roots_m else implausible_distance(np.linalg.norm(roots_m, axis=1))
        )
        if warning is not None:
            self._distance_checked = True
            self._say(f"{frame_name}: {warning}")

    def __call__(self, width: int, height: int) -> CameraModel:
        if self.calibration is not None:
            camera = self.calibration.camera(width, height)
            for note in camera.notes:
                self._say(f"--camera-info: {note}")
            return camera
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            try:  # the limits a camera_info calibration has too (a focal length 1000x off the width)
                return CameraModel.from_calibration([fx, 0, cx, 0, fy, cy, 0, 0, 1], (), (width, height))
            except ValueError as exc:
                raise ValueError(f"--fx --fy --cx --cy: {exc}") from None
        self._say(
            f"no intrinsics given; assuming a {self.fov:g} deg horizontal field of view (distances are "
            "not metric, root_source = scale_unknown)"
        )
        return CameraModel.from_fov(width, height, self.fov)

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            print(f"ctxpose infer: {message}", file=sys.stderr)


def _say(message: str) -> None:
    """A line on stderr; nothing when stderr itself is gone (``2>&1 | head``)."""
    with suppress(OSError, ValueError):  # BrokenPipeError is an OSError
        print(f"ctxpose infer: {message}", file=sys.stderr, flush=True)


def check_writable(path: Path, flag: str) -> None:
    """OSError naming ``flag`` when the file ``path`` could not be written (checked before the
    models load, without creating anything)."""
    if path.is_dir():
        raise OSError(f"{flag} {path}: is a folder, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise OSError(f"{flag} {path}: file is not writable")
        return
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"{flag} {path}: cannot be created ({parent} is not a writable folder)")


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """stdout, or ``path`` opened for writing (OSError, with the path, when it cannot be)."""
    if path is None:
        yield sys.stdout
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = path.open("w")
    except OSError as exc:
        raise OSError(f"--out {path}: cannot be written ({exc.strerror or exc})") from None
    try:
        yield f
    finally:
        # Every line was flushed; a close that fails re-fails a write already reported (OutputError).
        with suppress(OSError):
            f.close()


def check_overlay_dir(path: Path) -> None:
    """OSError when ``path`` cannot be (made) a writable folder; checked before the models load."""
    if path.exists():
        if not path.is_dir():
            raise OSError(f"--overlay {path}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OSError(f"--overlay {path}: folder is not writable")
        return
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"--overlay {path}: cannot be created ({parent} is not a writable folder)")


def _overlay_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"--overlay {path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


def _recorder(args: argparse.Namespace) -> Any:
    from ..output.recording import McapRecorder

    try:
        return McapRecorder(args.record_mcap)
    except OSError as exc:
        raise OSError(f"--record-mcap {args.record_mcap}: cannot be written ({exc.strerror or exc})") from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def overlay_name(frame_name: str, video: str | None, index: int) -> str:
    """Overlay file name after the input: ``bus.jpg`` -> ``bus.jpg``; video frame 12 -> ``v_000012.jpg``."""
    if video is not None:
        return f"{Path(video).stem}_{index:06d}.jpg"
    name = Path(frame_name).name
    return name if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else name + ".png"


def file_time_ns(path: str) -> int:
    """When a file was last written (its mtime, ns); 0 when it cannot be read."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class _Timeline:
    """MCAP log times in the footage's own time: a video's frames at the file's mtime plus their
    position in the video (the container's timestamps), a still image at its file's mtime.
    A file's mtime is when it was written (for a camera's file, about when it was recorded; for a
    copy, when it was copied): the only time every image and video file has, where the containers'
    creation-time tags are optional and OpenCV does not read them. Files follow each other so that
    one recording never goes back: a file whose time is earlier than what came before starts
    ``STILL_IMAGE_PERIOD_NS`` after it."""

    def __init__(self) -> None:
        self.offset_ns = 0
        self.last_ns = -STILL_IMAGE_PERIOD_NS
        self.video: str | None = None

    def _start(self, path: str) -> int:
        return max(file_time_ns(path), self.last_ns + STILL_IMAGE_PERIOD_NS)

    def __call__(self, path: str, video: str | None, stamp_s: float | None) -> int:
        if video is None or stamp_s is None:
            self.video = None
            self.last_ns = self._start(video or path)
            return self.last_ns
        if video != self.video:
            self.video = video
            self.offset_ns = self._start(video)
        self.last_ns = max(self.offset_ns + int(round(stamp_s * 1e9)), self.last_ns + 1)
        return self.last_ns


class OutputError(OSError):
    """The results could not be written (a full disk, /dev/full): one line and exit 2."""


def _emit(line: str, out: IO[str], path: Path | None) -> None:
    """One JSON line to ``out``; OutputError naming ``--out`` (or stdout) when it cannot be written."""
    try:
        print(line, file=out, flush=True)
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = f"--out {path}" if path is not None else "stdout"
        raise OutputError(f"{where}: cannot be written ({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly, as tools killed by SIGPIPE
        _quiet_stdout()
        return 141
    except OutputError as exc:
        _say(str(exc))
        if args.out is None:
            _quiet_stdout()  # what stays buffered would fail again when Python flushes at exit
        return 2


def _run(args: argparse.Namespace) -> int:
    import cv2

    from ..core.media.inputs import iter_frames
    from ..core.media.prefetch import prefetched
    from ..core.overlay import draw_people
    from ..core.pipeline import Pose3DPipeline
    from ..core.results import frame_record, to_json

    with ExitStack() as stack:
        try:
            config = config_from_args(args)
            cameras = CameraSource(args)
            floor_from_camera = load_camera_pose(args.camera_pose) if args.camera_pose else None
            # Output paths are checked first: a typo there must not cost the model loading, and
            # nothing is created before the models are there.
            for path, flag in ((args.out, "--out"), (args.record_mcap, "--record-mcap")):
                if path is not None:
                    check_writable(path, flag)
            if args.overlay is not None:
                check_overlay_dir(args.overlay)
            if args.record_mcap is not None:
                from ..output.recording import check_available

                check_available()
            pipeline = Pose3DPipeline.from_config(config)
            out = stack.enter_context(_output(args.out))
            overlay_dir = _overlay_dir(args.overlay) if args.overlay is not None else None
            recorder = stack.enter_context(_recorder(args)) if args.record_mcap is not None else None
        except (OSError, ValueError, RuntimeError) as exc:  # bad arguments, paths, weights or device
            _say(str(exc))
            return 2
        timeline = _Timeline()
        failures = 0
        current_video = None
        # Decoding the next frame in a reader thread overlaps processing this one.
        for frame in prefetched(iter_frames(args.paths, max_pixels=config.max_image_pixels)):
            fields: dict[str, Any] = {"file": frame.name}
            try:
                if frame.error is not None:
                    raise ValueError(frame.error)
                h, w = frame.image.shape[:2]
                fields.update(width=w, height=h)
                if frame.video != current_video:
                    pipeline.reset_tracking()  # ids never repeat across videos either
                    current_video = frame.video
                result = pipeline(
                    frame.image, cameras(w, h), stamp_s=frame.stamp_s, floor_from_camera=floor_from_camera
                )
            except ValueError as exc:
                _say(f"{frame.name}: {exc}")
                failures += 1
                _emit(to_json({**fields, "error": str(exc), "people": []}), out, args.out)
                continue
            _emit(to_json(frame_record(result, **fields)), out, args.out)
            cameras.check_distances(frame.name, [person.root for person in result.people])
            drawn = None
            if overlay_dir is not None or (recorder is not None and args.mcap_image):
                drawn = draw_people(frame.image, result.people, keypoint_threshold=pipeline.config.keypoint_threshold)
            if overlay_dir is not None:
                target = overlay_dir / overlay_name(frame.name, frame.video, frame.index)
                if not cv2.imwrite(str(target), drawn):
                    _say(f"{frame.name}: cannot write the overlay {target}")
                    failures += 1
            if recorder is not None:
                recorder.write(
                    timeline(frame.name, frame.video, frame.stamp_s),
                    args.frame_id,
                    result.people,
                    image=drawn if args.mcap_image else None,
                    latency_ns=int(result.timings_ms.get("total", 0.0) * 1e6),
                )
    return 1 if failures else 0
