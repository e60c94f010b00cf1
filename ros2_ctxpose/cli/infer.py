"""``ctxpose infer``: 3D poses of everyone in images, folders of images or videos, as JSON lines.

One line per image or video frame (format: docs/OUTPUT_FORMAT.md)::

    {"file": "img.jpg", "width": 810, "height": 1080, "latency_ms": 85.2,
     "people": [{"id": 0, "score": 0.93, "bbox_xyxy": [x0, y0, x1, y1],
                 "joints_2d_px": [[u, v, conf] x 17 COCO-17],
                 "joints_3d_cam_m": [[x, y, z] x 17 H36M-17, camera optical frame, metres],
                 "root_cam_m": [x, y, z], "root_source": "intrinsics"}]}

Video frames are named ``"video.mp4#000012"`` and their ids come from the tracker (stable across
frames); for still images the id is the person's index in that image. A file that cannot be read
gets ``{"file": ..., "error": "...", "people": []}`` and the run goes on; the exit code is 1 when
any input failed. Without intrinsics a horizontal field of view (``--fov``, default 60 degrees,
a typical webcam) is assumed and said once on stderr: directions are then plausible, distances
are not metric (``root_source`` = ``scale_unknown``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..core.camera import DEFAULT_HFOV_DEG, CameraModel
from .config_args import add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="3D poses from images, folders or videos, as JSON lines",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="images, folders of images, videos")
    intr = parser.add_argument_group("camera (default: a centred pinhole with --fov)")
    for name in ("fx", "fy", "cx", "cy"):
        intr.add_argument(f"--{name}", type=float, help="intrinsics in pixels (give all four)")
    intr.add_argument("--camera-info", type=Path,
                      help="ROS camera_info YAML (camera_matrix, distortion_coefficients, image size)")
    intr.add_argument("--fov", type=float, default=DEFAULT_HFOV_DEG,
                      help="horizontal field of view in degrees, assumed without intrinsics")
    parser.add_argument("--out", type=Path, default=None, help="JSON-lines file (default: stdout)")
    parser.add_argument("--overlay", type=Path, default=None,
                        help="folder for annotated images (2D skeleton, id, distance)")
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
        return CameraModel.from_calibration(self.K, self.dist, (width, height), calibration_size=self.size,
                                            distortion_model=self.model)


def load_camera_info(path: Path) -> Calibration:
    """The calibration in a ROS camera_info YAML (as written by camera_calibration)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a camera_info YAML (expected a mapping)")
    try:
        calibration = Calibration(
            K=np.asarray(data["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3),
            dist=np.asarray((data.get("distortion_coefficients") or {}).get("data") or [], dtype=np.float64),
            size=(int(data["image_width"]), int(data["image_height"])),
            model=str(data.get("distortion_model", "plumb_bob")))
        calibration.camera(*calibration.size)  # refuse an unusable calibration before any image is read
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a usable camera_info YAML (need camera_matrix.data, image_width, "
                         f"image_height; {exc})") from None
    return calibration


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
        if self.intrinsics is not None and not (given[0] > 0 and given[1] > 0):
            raise ValueError(f"--fx and --fy must be > 0, got {given[0]} and {given[1]}")
        self.calibration = load_camera_info(args.camera_info) if args.camera_info else None
        self.fov = args.fov
        self._said: set[str] = set()

    def __call__(self, width: int, height: int) -> CameraModel:
        if self.calibration is not None:
            camera = self.calibration.camera(width, height)
            for note in camera.notes:
                self._say(f"--camera-info: {note}")
            return camera
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            return CameraModel(K=np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), width=width, height=height)
        self._say(f"no intrinsics given; assuming a {self.fov:g} deg horizontal field of view (distances are "
                  "not metric, root_source = scale_unknown)")
        return CameraModel.from_fov(width, height, self.fov)

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            print(f"ctxpose infer: {message}", file=sys.stderr)


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        yield f


def overlay_name(frame_name: str, video: str | None, index: int) -> str:
    """Overlay file name after the input: ``bus.jpg`` -> ``bus.jpg``; video frame 12 -> ``v_000012.jpg``."""
    if video is not None:
        return f"{Path(video).stem}_{index:06d}.jpg"
    name = Path(frame_name).name
    return name if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else name + ".png"


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..core.media import iter_frames
    from ..core.overlay import draw_people
    from ..core.pipeline import Pose3DPipeline
    from ..core.results import frame_record, to_json

    try:
        cameras = CameraSource(args)
        pipeline = Pose3DPipeline.from_config(config_from_args(args))
    except (OSError, ValueError, RuntimeError) as exc:  # bad arguments, missing or broken weights
        print(f"ctxpose infer: {exc}", file=sys.stderr)
        return 2
    if args.overlay is not None:
        args.overlay.mkdir(parents=True, exist_ok=True)

    failures = 0
    current_video = None
    with _output(args.out) as out:
        for frame in iter_frames(args.paths):
            fields: dict[str, Any] = {"file": frame.name}
            try:
                if frame.error is not None:
                    raise ValueError(frame.error)
                h, w = frame.image.shape[:2]
                fields.update(width=w, height=h)
                if frame.video != current_video:
                    pipeline.reset_tracking()  # ids never repeat across videos either
                    current_video = frame.video
                result = pipeline(frame.image, cameras(w, h), stamp_s=frame.stamp_s)
            except ValueError as exc:
                print(f"ctxpose infer: {frame.name}: {exc}", file=sys.stderr)
                failures += 1
                print(to_json({**fields, "error": str(exc), "people": []}), file=out, flush=True)
                continue
            print(to_json(frame_record(result, **fields)), file=out, flush=True)
            if args.overlay is not None:
                drawn = draw_people(frame.image, result.people, keypoint_threshold=pipeline.config.keypoint_threshold)
                cv2.imwrite(str(args.overlay / overlay_name(frame.name, frame.video, frame.index)), drawn)
    return 1 if failures else 0
