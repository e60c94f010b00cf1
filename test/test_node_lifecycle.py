"""pose3d_node as a managed (lifecycle) node, each test with a node process of its own over real DDS:
the transitions through its real services and what each one starts and stops; a configure that
cannot load the models (refused with the reason, the node stays usable); the plain entry point's
``autostart``; repeated Ctrl-C; the compressed transport following the ``image`` remap; QoS
overrides and lost-message counts.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")
pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is missing: run `bash scripts/test.sh`")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from rcl_interfaces.srv import ListParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from test_node_dds import (  # noqa: E402
    FRAME_ID,
    HFOV_DEG,
    STARTUP_TIMEOUT_S,
    call,
    change_state,
    lifecycle_state,
    start_node,
    stop_node,
    wait_until,
)

from ros2_ctxpose.core.media.videos import demo_video_path  # noqa: E402
from ros2_ctxpose.msg import Skeleton3DArray  # noqa: E402
from ros2_ctxpose.ros.demo_publisher import camera_info_for  # noqa: E402
from ros2_ctxpose.ros.image_codec import bgr8_message  # noqa: E402

pytestmark = pytest.mark.dds

#: A device no machine has: configure must fail (with or without CUDA) and say why.
ABSENT_DEVICE = "cuda:97"


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """One frame of the demo clip with both people, at half size."""
    try:
        cap = cv2.VideoCapture(str(demo_video_path()))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    for _ in range(80):
        ok, image = cap.read()
        assert ok
    cap.release()
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


class Probe:
    """A camera and a listener in ``namespace``, spinning in a thread."""

    def __init__(self, context: Context, namespace: str, image_type: type = Image) -> None:
        self.node = Node("lifecycle_probe", namespace=namespace, context=context)
        self.namespace = namespace
        topic = "camera/image_raw/compressed" if image_type is CompressedImage else "camera/image_raw"
        self.image_pub = self.node.create_publisher(image_type, topic, QoSProfile(depth=2))
        self.info_pub = self.node.create_publisher(CameraInfo, "camera/camera_info", QoSProfile(depth=2))
        self.results: list[Skeleton3DArray] = []
        self.diagnostics: list = []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Skeleton3DArray, "human/pose3d", self.results.append, reliable)
        from diagnostic_msgs.msg import DiagnosticArray

        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, reliable)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()

    def wait_for_services(self, process, log: Path) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        name = f"{self.namespace}/pose3d_node/get_state"
        while not any(n == name for n, _ in self.node.get_service_names_and_types()):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no {name}:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)

    def send(self, msg, stamp=None) -> Header:
        header = Header(stamp=stamp or self.node.get_clock().now().to_msg(), frame_id=FRAME_ID)
        msg.header = header
        if isinstance(msg, Image):
            self.info_pub.publish(camera_info_for(msg.width, msg.height, HFOV_DEG, header))
        self.image_pub.publish(msg)
        return header

    def result_for(self, msg, timeout: float = 120.0) -> Skeleton3DArray | None:
        """Send ``msg`` every 2 s until a result with its stamp comes back, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp = self.send(msg).stamp
            resend = time.monotonic() + 2.0
            while time.monotonic() < min(resend, deadline):
                found = [r for r in list(self.results) if r.header.stamp == stamp]
                if found:
                    return found[0]
                time.sleep(0.05)
        return None

    def diagnostics_value(self, key: str) -> str:
        name = f"{self.namespace}/pose3d_node: pose3d"
        count = len(self.diagnostics)
        wait_until(lambda: len(self.diagnostics) > count, 5.0, "no /diagnostics")
        status = [s for m in list(self.diagnostics) for s in m.status if s.name == name]
        assert status, f"no diagnostics from {name}"
        return {kv.key: kv.value for kv in status[-1].values}[key]


def _start(tmp_path: Path, namespace: str, *params: str):
    log = tmp_path / "node.log"
    return start_node(log, namespace, *params), log


def recorded_topics(path: Path) -> dict[str, int]:
    """Messages per topic in an MCAP file the node recorded (read back with the mcap reader)."""
    from collections import Counter

    from mcap.reader import make_reader

    with path.open("rb") as f:
        return dict(Counter(channel.topic for _, channel, _ in make_reader(f).iter_messages()))


def test_transitions_over_the_lifecycle_services(context, tmp_path: Path, frame: np.ndarray) -> None:
    """unconfigured: nothing loaded, no subscription; configure: models loaded, still silent;
    activate: results; deactivate: silent again, unsubscribed; cleanup: models freed and the
    recording closed (readable); and back."""
    namespace = "/lifecycle_test"
    recording = tmp_path / "poses.mcap"
    process, log = _start(tmp_path, namespace, f"record_mcap:={recording}")
    probe = Probe(context, namespace)
    image_topic = f"{namespace}/camera/image_raw"
    try:
        probe.wait_for_services(process, log)
        assert lifecycle_state(probe.node, namespace) == "unconfigured"
        assert probe.diagnostics_value("lifecycle_state") == "unconfigured"
        assert probe.diagnostics_value("device") == "not loaded"
        assert probe.node.count_subscribers(image_topic) == 0

        assert change_state(probe.node, namespace, Transition.TRANSITION_CONFIGURE), log.read_text()
        assert lifecycle_state(probe.node, namespace) == "inactive"
        assert probe.diagnostics_value("device").startswith("cpu")
        assert probe.node.count_subscribers(image_topic) == 0, "an inactive node must not take camera frames"
        assert probe.node.count_publishers(f"{namespace}/human/pose3d") == 1

        assert change_state(probe.node, namespace, Transition.TRANSITION_ACTIVATE)
        wait_until(lambda: probe.node.count_subscribers(image_topic) == 1, 10.0, "not subscribed when active")
        first = probe.result_for(bgr8_message(frame, Header()))
        assert first is not None and first.skeletons, log.read_text()[-3000:]

        assert change_state(probe.node, namespace, Transition.TRANSITION_DEACTIVATE)
        wait_until(lambda: probe.node.count_subscribers(image_topic) == 0, 10.0, "still subscribed when inactive")
        assert probe.result_for(bgr8_message(frame, Header()), timeout=4.0) is None, "results while inactive"
        assert probe.diagnostics_value("lifecycle_state") == "inactive"

        assert change_state(probe.node, namespace, Transition.TRANSITION_CLEANUP)
        assert lifecycle_state(probe.node, namespace) == "unconfigured"
        recorded = recorded_topics(recording)
        output = f"{namespace}/human/pose3d"  # the node's resolved topics, as the layout's panels need
        assert recorded.get(output, 0) >= 1, "cleanup must leave a complete MCAP with what was published"
        assert recorded.get(f"{output}/image/compressed") == recorded[output], "the overlay of every result"
        assert recorded.get(f"{output}/markers") == recorded[output] and recorded.get("/tf_static") == 1
        assert probe.diagnostics_value("device") == "not loaded"
        wait_until(
            lambda: probe.node.count_publishers(f"{namespace}/human/pose3d") == 0,
            10.0,
            "outputs not destroyed on cleanup",
        )

        # And once more from the start: the node is reusable after a cleanup.
        assert change_state(probe.node, namespace, Transition.TRANSITION_CONFIGURE)
        assert change_state(probe.node, namespace, Transition.TRANSITION_ACTIVATE)
        again = probe.result_for(bgr8_message(frame, Header()))
        assert again is not None and again.skeletons

        assert change_state(probe.node, namespace, Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert process.wait(timeout=30) == 0, "the process must exit after the shutdown transition"
    finally:
        probe.close()
        stop_node(process)
    assert process.returncode == 0, log.read_text()[-3000:]


def test_configure_failure_is_refused_with_the_reason(context, tmp_path: Path, frame: np.ndarray) -> None:
    """A device that cannot be used: configure returns failure (no exception, no crash), the log says
    why, the node stays unconfigured and keeps answering (a launch file can then shut down)."""
    namespace = "/lifecycle_fail"
    process, log = _start(tmp_path, namespace, f"device:={ABSENT_DEVICE}", "backend:=torch")
    probe = Probe(context, namespace)
    try:
        probe.wait_for_services(process, log)
        assert not change_state(probe.node, namespace, Transition.TRANSITION_CONFIGURE)
        assert lifecycle_state(probe.node, namespace) == "unconfigured"
        assert process.poll() is None
        text = log.read_text()
        assert "configure failed: cannot load the pipeline" in text and ABSENT_DEVICE.split(":")[0] in text
        assert "Traceback" not in text
        assert probe.diagnostics_value("lifecycle_state") == "unconfigured"
    finally:
        probe.close()
        stop_node(process)
    assert process.returncode == 0


def test_autostart_failure_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    """The plain entry point (autostart) cannot start: exit status 1 and a fatal line, no traceback."""
    process, log = _start(tmp_path, "/autostart_fail", "autostart:=true", f"device:={ABSENT_DEVICE}", "backend:=torch")
    try:
        assert process.wait(timeout=STARTUP_TIMEOUT_S) == 1
    finally:
        stop_node(process)
    text = log.read_text()
    assert "cannot start: configure failed" in text and "Traceback" not in text, text[-3000:]


def test_repeated_sigint_shuts_down_cleanly(context, tmp_path: Path, frame: np.ndarray) -> None:
    """Ctrl-C in a terminal under ros2 launch: SIGINT from the terminal and again from launch, while
    a frame is being processed. One clean shutdown: exit status 0, no traceback."""
    namespace = "/sigint_test"
    process, log = _start(tmp_path, namespace, "autostart:=true")
    probe = Probe(context, namespace)
    try:
        probe.wait_for_services(process, log)
        wait_until(lambda: lifecycle_state(probe.node, namespace) == "active", STARTUP_TIMEOUT_S, "never active")
        assert probe.result_for(bgr8_message(frame, Header())) is not None
        for _ in range(3):  # frames in flight: the signals land while the worker computes
            probe.send(bgr8_message(frame, Header()))
        time.sleep(0.05)
        for _ in range(3):
            process.send_signal(signal.SIGINT)
            time.sleep(0.1)
        status = process.wait(timeout=30)
    finally:
        probe.close()
        stop_node(process)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]


def test_compressed_input_follows_the_image_remap_with_qos_overrides(
    context, tmp_path: Path, frame: np.ndarray
) -> None:
    """image_transport: compressed subscribes to <remapped image>/compressed (image_transport's
    rule); the standard qos_overrides parameters apply; lost messages are counted."""
    namespace = "/compressed_test"
    compressed_topic = f"{namespace}/camera/image_raw/compressed"
    process, log = _start(
        tmp_path,
        namespace,
        "image_transport:=compressed",
        f"qos_overrides.{compressed_topic}.subscription.reliability:=reliable",
        "autostart:=true",
    )
    probe = Probe(context, namespace, CompressedImage)
    try:
        probe.wait_for_services(process, log)
        wait_until(
            lambda: probe.node.count_subscribers(compressed_topic) == 1,
            STARTUP_TIMEOUT_S,
            f"no subscription on {compressed_topic}:\n{log.read_text()[-3000:]}",
        )
        (info,) = probe.node.get_subscriptions_info_by_topic(compressed_topic)
        assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, "qos_overrides not applied"
        # Depth is not visible in the graph; the overridable policies are: only reliability, since
        # the node keeps one image by design (FrameGate), and all three for the other topics.
        request = ListParameters.Request(prefixes=["qos_overrides"], depth=0)
        names = set(call(probe.node, ListParameters, f"{namespace}/pose3d_node/list_parameters", request).result.names)
        assert f"qos_overrides.{compressed_topic}.subscription.reliability" in names
        assert f"qos_overrides.{compressed_topic}.subscription.depth" not in names
        assert f"qos_overrides.{namespace}/camera/camera_info.subscription.depth" in names
        assert f"qos_overrides.{namespace}/human/pose3d.publisher.depth" in names
        ok, jpeg = cv2.imencode(".jpg", frame)
        msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
        result = probe.result_for(msg)
        assert result is not None and result.skeletons, log.read_text()[-3000:]
        assert probe.diagnostics_value("messages_lost").isdigit(), "Fast DDS reports message_lost events"
    finally:
        probe.close()
        stop_node(process)


def test_shutdown_transition_ends_the_process(context, tmp_path: Path) -> None:
    """``ros2 lifecycle set /pose3d_node shutdown``: the node answers the transition, then its
    process exits by itself with status 0."""
    namespace = "/lifecycle_shutdown"
    process, log = _start(tmp_path, namespace)
    probe = Probe(context, namespace)
    try:
        probe.wait_for_services(process, log)
        assert change_state(probe.node, namespace, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN), log.read_text()
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        probe.close()
        stop_node(process)


def test_sim_time_from_clock_then_shutdown_from_active(context, tmp_path: Path, frame: np.ndarray) -> None:
    """``use_sim_time``: the node follows /clock (latency in sim time, /diagnostics stamped and
    timed by it); then shutdown from active ends the process."""
    namespace = "/lifecycle_sim_time"
    process, log = _start(tmp_path, namespace, "use_sim_time:=true", "autostart:=true")
    probe = Probe(context, namespace)
    clock_pub = probe.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
    sim_start_ns, sim_ns = 1_000_000_000_000, [1_000_000_000_000]  # 1000 s: far from the wall clock

    def tick() -> None:
        sim_ns[0] += 100_000_000
        clock_pub.publish(Clock(clock=Time(sec=sim_ns[0] // 10**9, nanosec=sim_ns[0] % 10**9)))

    timer = probe.node.create_timer(0.1, tick)
    try:
        probe.wait_for_services(process, log)
        msg = bgr8_message(frame, Header())
        result = None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while result is None and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            stamp = Time(sec=sim_ns[0] // 10**9, nanosec=sim_ns[0] % 10**9)
            probe.send(msg, stamp)
            result = wait_for(lambda s=stamp: [r for r in list(probe.results) if r.header.stamp == s], 3.0)
        assert result, f"no result in sim time:\n{log.read_text()[-3000:]}"
        latency = result[0].processing_latency.sec + result[0].processing_latency.nanosec * 1e-9
        assert 0.0 <= latency < 60.0, f"latency {latency:.1f} s: not measured against /clock"
        count = len(probe.diagnostics)
        wait_until(lambda: len(probe.diagnostics) > count, 10.0, "/diagnostics silent under sim time")
        stamp_ns = probe.diagnostics[-1].header.stamp.sec * 10**9 + probe.diagnostics[-1].header.stamp.nanosec
        assert sim_start_ns <= stamp_ns <= sim_ns[0], "diagnostics not stamped with the sim time"
        assert change_state(probe.node, namespace, Transition.TRANSITION_ACTIVE_SHUTDOWN), log.read_text()
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        probe.node.destroy_timer(timer)
        probe.close()
        stop_node(process)


def wait_for(predicate, timeout: float):
    """``predicate()``'s first truthy value within ``timeout`` s, else None (no failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return None
