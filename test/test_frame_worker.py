"""The node's frame flow without a node: FrameWorker (callback -> slot -> worker -> processing),
the counters it reports, and the overlay's JPEG form. Real rclpy serialization, no DDS."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

import cv2  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_ctxpose.ros import image_codec  # noqa: E402
from ros2_ctxpose.ros.diagnostics import FrameStats, diagnostic_array  # noqa: E402
from ros2_ctxpose.ros.frame_worker import FrameWorker  # noqa: E402
from ros2_ctxpose.ros.parameters import RosSettings  # noqa: E402
from ros2_ctxpose.ros.result_out import jpeg_message  # noqa: E402


def _serialized_frame(width: int = 8, height: int = 6) -> bytes:
    pixels = np.arange(width * height * 3, dtype=np.uint8).reshape(height, width, 3)
    return serialize_message(image_codec.bgr8_message(pixels, Header(stamp=Time(sec=5), frame_id="cam")))


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _worker(settings: RosSettings, processed: list, stats: FrameStats) -> FrameWorker:
    def process(msg, arrived: float) -> bool:
        processed.append(msg)
        return True

    return FrameWorker(Image, stats, lambda: settings, process, wake=lambda: None, running=lambda: True)


def test_a_taken_frame_reaches_processing_read_in_place() -> None:
    processed: list = []
    stats = FrameStats()
    worker = _worker(RosSettings(), processed, stats)
    worker.start()
    try:
        assert _wait(lambda: worker.gate.is_open), "the worker never opened the gate"
        worker.on_image(_serialized_frame(), {})
        assert _wait(lambda: processed), "the frame was not processed"
    finally:
        assert worker.stop(timeout=5.0)
    msg = processed[0]
    assert isinstance(msg, image_codec.ImageView) and (msg.width, msg.height, msg.header.stamp.sec) == (8, 6, 5)
    assert image_codec.decode_image(msg).shape == (6, 8, 3)
    assert stats.take_window().received_total == 1


def test_sequence_gaps_count_as_dropped_and_a_replaced_frame_too() -> None:
    stats = FrameStats()
    worker = _worker(RosSettings(), [], stats)  # never started: frames stay in the slot
    gid = {"data": b"\x01" * 16}
    for seq in (1, 4, 5):  # 2 and 3 were never taken; 1 and 4 are replaced in the slot (by 4, 5)
        worker.on_image(_serialized_frame(), {"publication_sequence_number": seq, "publisher_gid": gid})
    window = stats.take_window()
    assert (window.received_total, window.dropped_total) == (5, 4)


def test_messages_lost_in_transport_are_not_also_counted_dropped() -> None:
    stats = FrameStats()
    stats.lost_supported()
    stats.dropped(5)  # sequence gaps: 2 of them the middleware reports lost
    stats.lost(2)
    window = stats.take_window()
    assert (window.dropped_total, window.lost_total) == (3, 2)


def test_rate_limited_input_is_reported_with_the_last_image() -> None:
    now = [100.0]
    stats = FrameStats(clock=lambda: now[0])
    stats.received()
    now[0] = 103.0
    stats.take_window()
    stats.rate_limited(True)
    now[0] = 104.0
    status = diagnostic_array(Time(), "n", stats.take_window(), "cpu", "camera_info").status[0]
    assert status.level == DiagnosticStatus.OK and "rate-limited" in status.message
    assert {kv.key: kv.value for kv in status.values}["last_image_age_s"] == "4.0"
    stats.rate_limited(False)
    status = diagnostic_array(Time(), "n", stats.take_window(), "cpu", "camera_info").status[0]
    assert status.level == DiagnosticStatus.WARN and status.message == "no images received"


def test_deactivation_during_the_processing_delay_ends_the_worker() -> None:
    processed: list = []
    worker = _worker(RosSettings(processing_delay_s=10.0), processed, FrameStats())
    worker.start()
    assert _wait(lambda: worker.gate.is_open)
    worker.on_image(_serialized_frame(), {})
    assert _wait(lambda: not worker.gate.is_open), "the frame was not taken"
    stopped = threading.Event()
    threading.Thread(target=lambda: worker.stop(5.0) and stopped.set()).start()
    assert stopped.wait(5.0), "stop waited for the whole processing delay"
    assert not processed


def test_overlay_jpeg_decodes_to_the_same_image() -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:40] = (0, 0, 255)
    msg = jpeg_message(image, Header(frame_id="cam"))
    decoded = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
    assert msg.format.endswith("jpeg compressed bgr8") and msg.header.frame_id == "cam"
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 4.0
