"""Tracking at any output rate (issue #14, item 10): ids survive a node that only keeps up with a
few frames per second.

People are simulated as a walker's detections: a box of fixed height that the swinging arms
stretch to one side, then the other (so box IoU between frames is a poor cue, as on the demo
clip, where one person's box is 110 to 380 px wide), moving at walking speed, seen at 30, 15, 4
and 2 frames per second with their real time stamps. Before the tracker's matching scaled with
the frame interval, one walker at 4 Hz got a new id every frame or two (9 ids in 6 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.tracking import Tracker, body_centres

HEIGHT = 400.0  # px: a person's box height
SPEED = 0.7 * HEIGHT  # px/s: walking, about 1.2 m/s for a 1.7 m person


def walker(
    x0: float, t: float, speed: float = SPEED, y: float = 300.0, phase: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Box and 17 keypoints of a walker at time ``t``: torso at x0 + speed * t, arms swinging."""
    cx = x0 + speed * t
    swing = np.sin(2 * np.pi * 0.9 * t + phase)  # about one stride per second
    # 120..240 px wide: the arm in front stretches the box on its side.
    box = np.array([cx - 60.0 - 120.0 * max(swing, 0.0), y, cx + 60.0 + 120.0 * max(-swing, 0.0), y + HEIGHT])
    kp = np.zeros((17, 3))
    kp[:, 0] = cx + np.linspace(-40, 40, 17)
    kp[:, 1] = y + np.linspace(20, HEIGHT - 20, 17)
    kp[9, 0] = kp[10, 0] = cx + swing * 140  # wrists
    kp[:, 2] = 0.9
    return box, kp


def run(tracker: Tracker, people, rate_hz: float, duration_s: float = 6.0) -> list[list[int]]:
    """Ids per frame for ``people`` (functions t -> (box, kp)) sampled at ``rate_hz``."""
    out = []
    for t in np.arange(0.0, duration_s, 1.0 / rate_hz):
        dets = [p(t) for p in people]
        boxes = np.array([d[0] for d in dets]).reshape(-1, 4)
        kps = np.array([d[1] for d in dets]).reshape(-1, 17, 3)
        out.append(tracker.update(boxes, kps, float(t)).tolist())
    return out


@pytest.mark.parametrize("rate_hz", [30.0, 15.0, 4.0, 2.0])
def test_one_walker_keeps_one_id_at_any_rate(rate_hz: float) -> None:
    ids = run(Tracker(), [lambda t: walker(0.0, t)], rate_hz)
    assert {i for frame in ids for i in frame} == {1}, ids


@pytest.mark.parametrize("rate_hz", [15.0, 4.0])
def test_two_walkers_crossing_keep_their_ids(rate_hz: float) -> None:
    """Walking towards each other, they pass at t = 3 s (boxes overlapping for a moment)."""
    a = lambda t: walker(200.0, t, SPEED, y=300.0)  # noqa: E731
    b = lambda t: walker(200.0 + 6 * SPEED, t, -SPEED, y=330.0, phase=1.0)  # noqa: E731
    ids = run(Tracker(), [a, b], rate_hz)
    assert all(frame == [1, 2] for frame in ids), ids


def test_a_far_detection_is_someone_else() -> None:
    """The gate is relative to the person's size and the time elapsed: 1.5 body heights in a
    tenth of a second is not the same person."""
    tracker = Tracker()
    box, kp = walker(0.0, 0.0)
    assert tracker.update(box[None], kp[None], 0.0).tolist() == [1]
    far_box, far_kp = box + [1.5 * HEIGHT, 0, 1.5 * HEIGHT, 0], kp + [1.5 * HEIGHT, 0, 0]
    assert tracker.update(far_box[None], far_kp[None], 0.1).tolist() == [2]


def test_a_much_smaller_person_nearby_is_someone_else() -> None:
    tracker = Tracker()
    box, kp = walker(0.0, 0.0)
    tracker.update(box[None], kp[None], 0.0)
    centre = body_centres(box[None], kp[None])[0]
    small = np.array([centre[0] - 30, centre[1] - 60, centre[0] + 30, centre[1] + 60])  # a child, or a poster
    small_kp = kp.copy()
    small_kp[:, 0] = centre[0] + (kp[:, 0] - centre[0]) * 0.3
    small_kp[:, 1] = centre[1] + (kp[:, 1] - centre[1]) * 0.3
    assert tracker.update(small[None], small_kp[None], 0.25).tolist() == [2]


def test_age_is_in_seconds_whatever_the_rate() -> None:
    """At 2 Hz a single missed frame (0.5 s) keeps the id; a gap longer than max_age_s does not."""
    tracker = Tracker(max_age_s=1.0)
    box, kp = walker(0.0, 0.0, speed=0.0)
    assert tracker.update(box[None], kp[None], 0.0).tolist() == [1]
    tracker.update(np.zeros((0, 4)), None, 0.5)
    assert tracker.update(box[None], kp[None], 1.0).tolist() == [1]
    assert tracker.update(box[None], kp[None], 2.5).tolist() == [2]


def test_time_going_backwards_starts_afresh() -> None:
    tracker = Tracker()
    box, kp = walker(0.0, 0.0, speed=0.0)
    tracker.update(box[None], kp[None], 10.0)
    assert tracker.update(box[None], kp[None], 1.0).tolist() == [2]


def test_velocity_is_capped() -> None:
    """A jump between two detections (a wrong match) must not send the prediction flying."""
    tracker = Tracker(max_speed=2.0)
    box, kp = walker(0.0, 0.0, speed=0.0)
    tracker.update(box[None], kp[None], 0.0)
    tracker.update((box + [100, 0, 100, 0])[None], (kp + [100, 0, 0])[None], 0.01)  # 10000 px/s
    speed = float(np.hypot(*tracker._tracks[0].velocity))
    assert speed <= 2.0 * HEIGHT + 1e-6


@pytest.mark.slow
def test_demo_walkers_at_4_hz() -> None:
    """The two walkers of the demo clip, every 7th frame (about 4 Hz) with their real stamps."""
    from ros2_ctxpose.core.camera import CameraModel
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.detector import default_weights_path
    from ros2_ctxpose.core.media.inputs import iter_frames
    from ros2_ctxpose.core.media.videos import demo_video_path
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    try:
        video = demo_video_path()
        default_weights_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    pipeline = Pose3DPipeline.from_config(PipelineConfig(device="cpu"))
    ids: set[int] = set()
    for frame in iter_frames([video]):
        if frame.index % 7:
            continue
        h, w = frame.image.shape[:2]
        result = pipeline(frame.image, CameraModel.from_fov(w, h, 60.0), stamp_s=frame.stamp_s)
        ids.update(p.track_id for p in result.people)
    # 2 walkers; one is hidden behind the other for ~1.5 s (longer than track_max_age_s) and
    # partly visible at the edge: 3-4 ids are right, 8 was the count before.
    assert len(ids) <= 4, sorted(ids)
