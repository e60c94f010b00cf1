"""Track ids per person on the two-walker demo clip at several output rates.

    python benchmarks/tracking_churn.py [--video demo.mp4] [--strides 1 2 7] [--cache dets.npz]

The pipeline runs once over every frame (people as the tracker sees them: after duplicate removal
and ``max_people``); its boxes and keypoints are cached (``--cache``), then the tracker is replayed
on every ``stride``-th frame with the frames' real time stamps, as a node that only keeps up with
30/stride frames per second would see them. Stride 2 of the 30 fps clip is 15 Hz, stride 7 about
4 Hz. Reported per rate: distinct ids, ids seen in at least 3 frames, and people per frame; with
two walkers in view the ideal is 2 ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def detections(video: Path, cache: Path | None) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Stamps (F,), boxes per frame [(N, 4)], keypoints per frame [(N, 17, 3)]."""
    if cache is not None and cache.is_file():
        blob = np.load(cache)
        stamps = blob["stamps"]
        return stamps, [blob[f"boxes_{i}"] for i in range(len(stamps))], [blob[f"kps_{i}"] for i in range(len(stamps))]
    from ros2_ctxpose.core.camera import CameraModel
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.media.inputs import iter_frames
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    pipeline = Pose3DPipeline.from_config(PipelineConfig(device="cpu"))
    stamps, boxes, kps = [], [], []
    for frame in iter_frames([video]):
        if frame.error is not None:
            raise SystemExit(f"{frame.name}: {frame.error}")
        h, w = frame.image.shape[:2]
        people = pipeline(frame.image, CameraModel.from_fov(w, h, 60.0)).people  # no stamp: no tracking
        stamps.append(frame.stamp_s)
        boxes.append(np.array([p.bbox_xyxy for p in people]).reshape(-1, 4))
        kps.append(np.array([p.keypoints_2d for p in people]).reshape(-1, 17, 3))
    stamps = np.asarray(stamps)
    if cache is not None:
        np.savez_compressed(
            cache,
            stamps=stamps,
            **{f"boxes_{i}": b for i, b in enumerate(boxes)},
            **{f"kps_{i}": k for i, k in enumerate(kps)},
        )
    return stamps, boxes, kps


def replay(stamps: np.ndarray, boxes: list[np.ndarray], kps: list[np.ndarray], stride: int) -> dict[str, float]:
    from ros2_ctxpose.core.tracking import Tracker

    tracker = Tracker()
    seen: dict[int, int] = {}
    people = []
    for i in range(0, len(stamps), stride):
        ids = tracker.update(boxes[i], kps[i] if len(kps[i]) else None, float(stamps[i]))
        people.append(len(ids))
        for t in ids.tolist():
            seen[t] = seen.get(t, 0) + 1
    return {
        "frames": len(people),
        "ids": len(seen),
        "ids_3plus": sum(n >= 3 for n in seen.values()),
        "people_per_frame": float(np.mean(people)) if people else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None, help="default: the Sports2D demo clip")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2, 7])
    parser.add_argument("--cache", type=Path, default=None, help="npz of the detections (written, then reused)")
    args = parser.parse_args()
    if args.video is None:
        from ros2_ctxpose.core.media.videos import demo_video_path

        args.video = demo_video_path()
    stamps, boxes, kps = detections(args.video, args.cache)
    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    print(f"{args.video.name}: {len(stamps)} frames, {fps:.1f} fps, {stamps[-1] - stamps[0]:.1f} s")
    print(f"{'rate Hz':>8} {'frames':>7} {'ids':>4} {'ids>=3 frames':>14} {'people/frame':>13}")
    for stride in args.strides:
        r = replay(stamps, boxes, kps, stride)
        print(
            f"{fps / stride:>8.1f} {r['frames']:>7} {r['ids']:>4} {r['ids_3plus']:>14} {r['people_per_frame']:>13.2f}"
        )


if __name__ == "__main__":
    main()
