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
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..core.camera import DEFAULT_HFOV_DEG, CameraModel


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
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=None, help="JSON-lines file (default: stdout)")
    parser.add_argument("--overlay", type=Path, default=None,
                        help="folder for annotated images (2D skeleton, id, distance)")
    parser.add_argument("--max-people", type=int, default=10)
    parser.add_argument("--detector-weights", type=Path, default=None)
    parser.add_argument("--lifter-weights", type=Path, default=None)
    parser.set_defaults(func=run)


def load_camera_info(path: Path) -> CameraModel:
    """``CameraModel`` from a ROS camera_info YAML (as written by camera_calibration)."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise ValueError("--camera-info needs PyYAML (pip install pyyaml)") from None

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a camera_info YAML (expected a mapping)")
    try:
        K = np.asarray(data["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3)
        dist = np.asarray((data.get("distortion_coefficients") or {}).get("data") or [], dtype=np.float64)
        width, height = int(data["image_width"]), int(data["image_height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a camera_info YAML (need camera_matrix.data, image_width, "
                         f"image_height): {exc}") from None
    model = str(data.get("distortion_model", "plumb_bob"))
    if model not in ("plumb_bob", "rational_polynomial") and dist.any():
        raise ValueError(f"{path}: distortion model {model!r} is not supported "
                         "(plumb_bob and rational_polynomial are: OpenCV's coefficient order)")
    return CameraModel(K=K, width=width, height=height, dist=dist if dist.size else np.zeros(5))


class CameraSource:
    """The camera for each image: fixed intrinsics, a camera_info file, or an assumed FOV."""

    def __init__(self, args: argparse.Namespace) -> None:
        given = [getattr(args, n) for n in ("fx", "fy", "cx", "cy")]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("give all of --fx --fy --cx --cy, or none")
        if all(v is not None for v in given) and args.camera_info is not None:
            raise ValueError("give either --fx/--fy/--cx/--cy or --camera-info, not both")
        self.intrinsics = given if all(v is not None for v in given) else None
        if self.intrinsics is not None and not (given[0] > 0 and given[1] > 0):
            raise ValueError(f"--fx and --fy must be > 0, got {given[0]} and {given[1]}")
        self.fixed = load_camera_info(args.camera_info) if args.camera_info else None
        self.fov = args.fov
        self._warned = False

    def __call__(self, width: int, height: int) -> CameraModel:
        if self.fixed is not None:
            return self.fixed
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            return CameraModel(K=np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), width=width, height=height)
        if not self._warned:
            print(f"ctxpose infer: no intrinsics given; assuming a {self.fov:g} deg horizontal field of "
                  "view (distances are not metric, root_source = scale_unknown)", file=sys.stderr)
            self._warned = True
        return CameraModel.from_fov(width, height, self.fov)


def _rounded(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def person_record(person: Any, person_id: int) -> dict[str, Any]:
    """One entry of a line's ``people`` (see docs/OUTPUT_FORMAT.md)."""
    return {
        "id": int(person_id),
        "score": round(float(person.score), 4),
        "bbox_xyxy": _rounded(person.bbox_xyxy, 2),
        "joints_2d_px": [[round(float(u), 2), round(float(v), 2), round(float(c), 4)]
                         for u, v, c in person.keypoints_2d],
        "joints_3d_cam_m": _rounded(person.joints_3d, 4),
        "root_cam_m": _rounded(person.root, 4),
        "root_source": person.root_source,
    }


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
    from ..core.tracking import Tracker

    try:
        cameras = CameraSource(args)
        pipeline = Pose3DPipeline.create(
            detector_weights=args.detector_weights, lifter_weights=args.lifter_weights,
            device=args.device, max_people=args.max_people)
    except (OSError, ValueError, RuntimeError) as exc:  # bad arguments, missing or broken weights
        print(f"ctxpose infer: {exc}", file=sys.stderr)
        return 2
    if args.overlay is not None:
        args.overlay.mkdir(parents=True, exist_ok=True)

    failures = 0
    tracker, current_video = Tracker(), None  # one tracker, reset per video: ids never repeat
    with _output(args.out) as out:
        for frame in iter_frames(args.paths):
            line: dict[str, Any] = {"file": frame.name}
            try:
                if frame.error is not None:
                    raise ValueError(frame.error)
                h, w = frame.image.shape[:2]
                line.update(width=w, height=h)
                result = pipeline(frame.image, cameras(w, h))
            except ValueError as exc:
                print(f"ctxpose infer: {frame.name}: {exc}", file=sys.stderr)
                line.update(error=str(exc), people=[])
                failures += 1
                print(json.dumps(line), file=out, flush=True)
                continue
            if frame.video is None:
                ids = np.arange(len(result.people))
            else:
                if frame.video != current_video:
                    tracker.reset()
                    current_video = frame.video
                ids = tracker.update_people(result.people)
            line["latency_ms"] = round(result.timings_ms["total"], 2)
            line["people"] = [person_record(p, i) for p, i in zip(result.people, ids)]
            print(json.dumps(line), file=out, flush=True)
            if args.overlay is not None:
                drawn = draw_people(frame.image, result.people, ids)
                cv2.imwrite(str(args.overlay / overlay_name(frame.name, frame.video, frame.index)), drawn)
    return 1 if failures else 0
