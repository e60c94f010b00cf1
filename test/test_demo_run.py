"""The demo's outputs (ros2_ctxpose/ros/demo_run.py) without running the demo: the overlay video
plays back at the rate the results came in."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("ctxpose_messages")


def frames(count: int) -> list[np.ndarray]:
    """Distinct frames (a moving bar), so an encoder cannot merge them."""
    out = []
    for i in range(count):
        frame = np.zeros((96, 160, 3), np.uint8)
        frame[:, (i * 7) % 150 : (i * 7) % 150 + 10] = 255
        out.append(frame)
    return out


def written(path: Path) -> tuple[float, int]:
    video = cv2.VideoCapture(str(path))
    assert video.isOpened(), f"{path} cannot be read back"
    fps = video.get(cv2.CAP_PROP_FPS)
    count = 0
    while video.read()[0]:
        count += 1
    video.release()
    return fps, count


@pytest.mark.parametrize("rate_hz", [30.0, 12.5])
def test_overlay_video_plays_at_the_rate_results_came_in(tmp_path: Path, rate_hz: float) -> None:
    """Issue: demo_overlay.mp4 was written at 5 fps whatever the rate, so 60 s of ~30 Hz results
    played for 6 minutes. Its duration must now match the stamps' span (within a frame)."""
    from ros2_ctxpose.ros.demo_run import RateMatchedVideo

    path = tmp_path / "demo_overlay.mp4"
    video = RateMatchedVideo(path)
    count = 40
    start = 1_700_000_000.0  # stamps are epoch seconds, as the camera's header stamps
    for i, frame in enumerate(frames(count)):
        video.write(frame, start + i / rate_hz)
    assert video.close() == pytest.approx(rate_hz)
    fps, read = written(path)
    assert read == count, "every frame written once"
    assert fps == pytest.approx(rate_hz, rel=0.01)
    assert read / fps == pytest.approx(count / rate_hz, abs=1.0 / rate_hz)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_overlay.mp4"], "the provisional file is left over"


def test_overlay_video_without_a_measurable_rate_keeps_the_provisional_one(tmp_path: Path) -> None:
    from ros2_ctxpose.ros.demo_run import RateMatchedVideo

    empty = RateMatchedVideo(tmp_path / "none.mp4")
    assert empty.close() is None and not (tmp_path / "none.mp4").exists()
    single = RateMatchedVideo(tmp_path / "one.mp4")
    single.write(frames(1)[0], 5.0)
    assert single.close() is None
    assert written(tmp_path / "one.mp4") == (pytest.approx(RateMatchedVideo.PROVISIONAL_FPS), 1)
