"""Run MediaPipe BlazePose on images or a video and write its landmarks and latencies as JSON.

This script runs inside ``.venv-mediapipe`` (scripts/setup_mediapipe.sh), never in the project's
environment: mediapipe 0.10.21 pins numpy<2 and protobuf<5. It therefore imports nothing from
ros2_ctxpose; ``peer_mediapipe.py`` starts it as a subprocess and does all the scoring, so both
methods are scored by the same code.

Input (``--jobs``, JSON): ``{"images": [path, ...], "video": path | null, "max_frames": int,
"warmup": int, "model_complexity": int}``. Images run with ``static_image_mode=True`` (a fresh
detection per image, as the peer would be used on unrelated frames); the video runs in MediaPipe's
tracking mode (``static_image_mode=False``), which is how it is meant to be used on footage.

Output (``--out``, JSON): ``{"mediapipe_version", "landmark_names" (33, lower case),
"images": [item], "video": [item]}`` with ``item = {"source", "found", "world" (33x3 m) | null,
"image_px" (33x2) | null, "visibility" (33) | null, "latency_ms"}``. ``latency_ms`` is the wall
time of BGR->RGB conversion plus ``Pose.process``; decoding is done before the clock starts, as
for ros2_ctxpose.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

POSE = mp.solutions.pose
LANDMARK_NAMES = [landmark.name.lower() for landmark in POSE.PoseLandmark]


def _timed_process(pose: POSE.Pose, image_bgr: np.ndarray) -> tuple[object, float]:
    start = time.perf_counter()
    result = pose.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    return result, (time.perf_counter() - start) * 1000.0


def _item(source: str, result: object, latency_ms: float, width: int, height: int) -> dict:
    world = getattr(result, "pose_world_landmarks", None)
    image = getattr(result, "pose_landmarks", None)
    if world is None or image is None:
        return {
            "source": source,
            "found": False,
            "world": None,
            "image_px": None,
            "visibility": None,
            "latency_ms": latency_ms,
        }
    return {
        "source": source,
        "found": True,
        "world": [[lm.x, lm.y, lm.z] for lm in world.landmark],
        "image_px": [[lm.x * width, lm.y * height] for lm in image.landmark],
        "visibility": [lm.visibility for lm in image.landmark],
        "latency_ms": latency_ms,
    }


def run_images(paths: list[str], model_complexity: int, warmup: int) -> list[dict]:
    """One detection per image; the first image is run ``warmup`` extra times, untimed."""
    frames = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            print(f"mediapipe_runner: cannot read image {path}", file=sys.stderr)
            continue
        frames.append((path, image))
    items = []
    with POSE.Pose(static_image_mode=True, model_complexity=model_complexity) as pose:
        for _ in range(warmup if frames else 0):
            _timed_process(pose, frames[0][1])
        for path, image in frames:
            result, latency = _timed_process(pose, image)
            items.append(_item(path, result, latency, image.shape[1], image.shape[0]))
    return items


def run_video(path: str, model_complexity: int, warmup: int, max_frames: int) -> list[dict]:
    """Tracking mode over consecutive frames; the first ``warmup`` frames are processed untimed."""
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        print(f"mediapipe_runner: cannot open video {path}", file=sys.stderr)
        return []
    items = []
    index = 0
    with POSE.Pose(static_image_mode=False, model_complexity=model_complexity) as pose:
        while max_frames <= 0 or len(items) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            result, latency = _timed_process(pose, frame)
            if index >= warmup:
                items.append(_item(f"{path}#{index}", result, latency, frame.shape[1], frame.shape[0]))
            index += 1
    capture.release()
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=Path, required=True, help="JSON job description (see module doc)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results JSON")
    args = parser.parse_args(argv)

    jobs = json.loads(args.jobs.read_text())
    complexity = int(jobs.get("model_complexity", 1))
    warmup = int(jobs.get("warmup", 3))
    result = {
        "mediapipe_version": mp.__version__,
        "model_complexity": complexity,
        "landmark_names": LANDMARK_NAMES,
        "images": run_images(list(jobs.get("images", [])), complexity, warmup),
        "video": [],
    }
    if jobs.get("video"):
        result["video"] = run_video(jobs["video"], complexity, warmup, int(jobs.get("max_frames", 0)))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
