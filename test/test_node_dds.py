"""pose3d_node as a separate process, fed real footage over real DDS (loopback, private domain).

The node is started once for the module, as launch/pose3d.launch.py starts it: its fixed inputs
remapped onto a camera's topics, and driven to active through its real lifecycle services
(configure loads the models). The test process plays frames of Sports2D's two-person clip as a
camera would, and checks what comes back on /human/pose3d, /tf, the markers, the overlay and
/diagnostics; then it sends malformed messages, a camera far faster than inference and a rate
limit, and checks that the node neither dies nor queues. The depth node starts itself
(``autostart: true``, the plain ``ros2 run`` route).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")
pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is missing: run `bash scripts/test.sh`")

import cv2  # noqa: E402
import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from transforms3d.quaternions import quat2mat  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from ros2_ctxpose.core.config import PipelineConfig  # noqa: E402
from ros2_ctxpose.core.media.videos import demo_video_path  # noqa: E402
from ros2_ctxpose.core.skeleton import COCO17, H36M17, H36M17_BONES, index_of  # noqa: E402
from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray  # noqa: E402
from ros2_ctxpose.ros.demo_publisher import camera_info_for  # noqa: E402
from ros2_ctxpose.ros.image_codec import bgr8_message  # noqa: E402
from ros2_ctxpose.ros.node import WARN_PERIOD_S  # noqa: E402

pytestmark = pytest.mark.dds

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "/ctxpose_test"
FRAME_ID = "test_camera_optical_frame"
HFOV_DEG = 65.0
#: Model loading on a busy CPU can take a while; results of one frame, too (seconds per frame).
STARTUP_TIMEOUT_S = 240.0
RESULT_TIMEOUT_S = 120.0
#: Frames of the clip where both people are in view (the second enters at ~frame 40).
TWO_PEOPLE_FRAMES = range(40, 137, 16)
SCALE = 0.5  # 884x497: the detector sees 640 px anyway, and transport stays light


def _stamp_key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


@dataclass
class Client:
    """The test side: camera publishers, output subscribers, and helpers to wait for results."""

    node: Node
    image_pub: Any
    info_pub: Any
    depth_pub: Any = None
    received: dict[str, list] = field(
        default_factory=lambda: {"pose": [], "tf": [], "markers": [], "overlay": [], "diag": []}
    )

    def collect(self, key: str) -> Callable[[Any], None]:
        return self.received[key].append

    def now(self):
        return self.node.get_clock().now().to_msg()

    def publish(
        self, msg: Image, stamp, *, with_info: bool = True, depth: Image | None = None, info_fields: dict | None = None
    ) -> None:
        msg.header = Header(stamp=stamp, frame_id=FRAME_ID)
        if with_info:
            info = camera_info_for(msg.width, msg.height, HFOV_DEG, msg.header)
            for name, value in (info_fields or {}).items():
                setattr(info, name, value)
            self.info_pub.publish(info)
        self.image_pub.publish(msg)
        if depth is not None:  # after the colour image, as aligned depth usually comes: the node waits
            depth.header = msg.header
            self.depth_pub.publish(depth)

    def find(self, key: str, stamp) -> list:
        """Messages on ``key`` whose header (or first transform's header) has ``stamp``."""

        def header(m):
            if isinstance(m, TFMessage):
                return m.transforms[0].header if m.transforms else None
            if isinstance(m, MarkerArray):
                return m.markers[0].header if m.markers else None
            return m.header

        return [
            m
            for m in list(self.received[key])
            if (h := header(m)) is not None and _stamp_key(h.stamp) == _stamp_key(stamp)
        ]

    def result(
        self,
        msg: Image,
        *,
        with_info: bool = True,
        depth: Image | None = None,
        timeout: float = RESULT_TIMEOUT_S,
        info_fields: dict | None = None,
    ) -> Skeleton3DArray:
        """Publish ``msg`` (re-sent every 5 s, in case a best-effort sample is lost) and wait for its result."""
        stamp = self.now()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.publish(msg, stamp, with_info=with_info, depth=depth, info_fields=info_fields)
            resend = time.monotonic() + 5.0
            while time.monotonic() < min(resend, deadline):
                found = self.find("pose", stamp)
                if found:
                    return found[0]
                time.sleep(0.05)
        raise AssertionError(f"no /human/pose3d result within {timeout:.0f} s")

    def latest_diagnostics(self) -> dict[str, str]:
        """Key/values of the node's newest DiagnosticStatus (waits for a fresh one)."""
        name = f"{self.node.get_namespace()}/pose3d_node: pose3d"

        def statuses() -> list:
            return [st for m in list(self.received["diag"]) for st in m.status if st.name == name]

        count = len(statuses())
        wait_until(lambda: len(statuses()) > count, 5.0, f"no /diagnostics from {name} within 5 s")
        return {kv.key: kv.value for kv in statuses()[-1].values}


def wait_until(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


def image_message(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """An Image of ``pixels`` (already in ``encoding``'s layout) with ``pad`` junk bytes per row."""
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(pixels.shape[0], -1)
    data = np.concatenate([rows, np.full((rows.shape[0], pad), 7, np.uint8)], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=data.shape[1])
    msg.data = data.tobytes()
    return msg


@pytest.fixture(scope="module")
def footage() -> list[np.ndarray]:
    try:
        path = demo_video_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    cap = cv2.VideoCapture(str(path))
    frames = []
    for index in range(max(TWO_PEOPLE_FRAMES) + 1):
        ok, frame = cap.read()
        assert ok, f"cannot read frame {index} of {path}"
        if index in TWO_PEOPLE_FRAMES:
            frames.append(cv2.resize(frame, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


#: The node's fixed input names remapped onto a camera driver's (as the launch file does).
CAMERA_REMAPS = (
    "image:=camera/image_raw",
    "camera_info:=camera/camera_info",
    "depth:=camera/aligned_depth_to_color/image_raw",
)


def start_node(log_path: Path, namespace: str, *params: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "ros2_ctxpose.ros.node",
        "--ros-args",
        "--params-file",
        str(REPO / "config" / "pose3d.yaml"),
        "-r",
        f"__ns:={namespace}",
    ]
    for remap in CAMERA_REMAPS:
        command += ["-r", remap]
    for param in params:
        command += ["-p", param]
    with open(log_path, "w") as log:
        return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def stop_node(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def node_process(tmp_path_factory, ros_environment, footage):
    log_path = tmp_path_factory.mktemp("pose3d_node") / "node.log"
    process = start_node(log_path, NAMESPACE, "publish_joint_frames:=true")
    yield process, log_path
    stop_node(process)


def node_log(node_process) -> str:
    return node_process[1].read_text()[-4000:]


def call(node: Node, srv_type: Any, name: str, request: Any, timeout: float = STARTUP_TIMEOUT_S) -> Any:
    """Call a service of the node under test from ``node`` (spinning elsewhere) and wait for the answer."""
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=30.0), f"no service {name}"
        future = client.call_async(request)
        wait_until(future.done, timeout, f"{name} did not answer within {timeout:.0f} s")
        return future.result()
    finally:
        node.destroy_client(client)


def change_state(node: Node, namespace: str, transition: int) -> bool:
    """Drive pose3d_node's lifecycle through its real change_state service; True on success."""
    request = ChangeState.Request()
    request.transition.id = transition
    return call(node, ChangeState, f"{namespace}/pose3d_node/change_state", request).success


def lifecycle_state(node: Node, namespace: str) -> str:
    return call(node, GetState, f"{namespace}/pose3d_node/get_state", GetState.Request()).current_state.label


def connect(
    context: Context, namespace: str, node_process, activate: bool = True
) -> tuple[Client, SingleThreadedExecutor]:
    """A client in ``namespace``, spinning in a thread, once the node there is up (and, with
    ``activate``, configured and activated through its lifecycle services, as the launch file does)."""
    node = Node("pose3d_test_client", namespace=namespace, context=context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    client = Client(
        node,
        node.create_publisher(Image, "camera/image_raw", QoSProfile(depth=2)),
        node.create_publisher(CameraInfo, "camera/camera_info", QoSProfile(depth=2)),
    )
    node.create_subscription(Skeleton3DArray, "human/pose3d", client.collect("pose"), reliable)
    node.create_subscription(MarkerArray, "human/pose3d/markers", client.collect("markers"), reliable)
    node.create_subscription(Image, "human/pose3d/image", client.collect("overlay"), QoSProfile(depth=2))
    node.create_subscription(TFMessage, "/tf", client.collect("tf"), QoSProfile(depth=100))
    node.create_subscription(DiagnosticArray, "/diagnostics", client.collect("diag"), reliable)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    process = node_process[0]
    if activate:
        assert lifecycle_state(node, namespace) == "unconfigured"
        assert change_state(node, namespace, Transition.TRANSITION_CONFIGURE), node_log(node_process)
        assert change_state(node, namespace, Transition.TRANSITION_ACTIVATE), node_log(node_process)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while client.image_pub.get_subscription_count() == 0 or node.count_publishers(f"{namespace}/human/pose3d") == 0:
        if process.poll() is not None:
            pytest.fail(f"pose3d_node exited with {process.returncode}:\n{node_log(node_process)}")
        if time.monotonic() > deadline:
            pytest.fail(f"pose3d_node not up after {STARTUP_TIMEOUT_S:.0f} s:\n{node_log(node_process)}")
        time.sleep(0.2)
    return client, executor


@pytest.fixture(scope="module")
def client(context, node_process):
    client, executor = connect(context, NAMESPACE, node_process)
    yield client
    executor.shutdown()
    client.node.destroy_node()


@dataclass
class Played:
    """Results of the footage, played one frame at a time (each sent after the previous result)."""

    without_info: Skeleton3DArray
    sent: list[tuple[Image, Skeleton3DArray]]


@pytest.fixture(scope="module")
def played(client: Client, footage: list[np.ndarray], node_process) -> Played:
    # Before any CameraInfo exists: the node must fall back to the assumed field of view.
    without_info = client.result(bgr8_message(footage[0], Header()), with_info=False)
    sent = []
    for frame in footage:
        msg = bgr8_message(frame, Header())
        sent.append((msg, client.result(msg)))
    assert node_process[0].poll() is None, node_log(node_process)
    return Played(without_info, sent)


def joints_of(skeleton: Skeleton3D) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in skeleton.joint_positions])


def test_real_footage_gives_both_people_in_3d(played: Played) -> None:
    counts = [len(result.skeletons) for _, result in played.sent]
    assert min(counts) >= 1, counts
    assert max(counts) >= 2, f"the clip's two people were never seen together: {counts}"
    for msg, result in played.sent:
        assert list(result.joint_names) == list(H36M17)
        for s in result.skeletons:
            joints = joints_of(s)
            assert joints.shape == (17, 3) and np.isfinite(joints).all()
            assert s.root_source == Skeleton3D.ROOT_FROM_INTRINSICS
            assert np.allclose(joints[0], [s.root_position.x, s.root_position.y, s.root_position.z])
            assert len(s.keypoints_2d) == 51 and len(s.joint_u) == len(s.joint_v) == len(s.joint_confidence) == 17
            assert 0.0 < s.score <= 1.0
            x0, y0, x1, y1 = s.bbox_xyxy
            assert -1 <= x0 < x1 <= msg.width + 1 and -1 <= y0 < y1 <= msg.height + 1


def test_poses_have_plausible_bones_heights_and_distances(played: Played) -> None:
    head_top, ankles = index_of(H36M17, "head_top"), [index_of(H36M17, "left_ankle"), index_of(H36M17, "right_ankle")]
    ankle_conf = [3 * index_of(COCO17, name) + 2 for name in ("left_ankle", "right_ankle")]  # in keypoints_2d
    for _, result in played.sent:
        for s in result.skeletons:
            joints = joints_of(s)
            bones = np.array([np.linalg.norm(joints[c] - joints[p]) for p, c in H36M17_BONES])
            assert ((bones > 0.03) & (bones < 0.7)).all(), np.round(bones, 3)
            # Height only where the detector saw the ankles: a box on one person's upper half (frame
            # 136 has one, ankle confidence 0.13) leaves the legs to the lifter's guess.
            if min(s.keypoints_2d[i] for i in ankle_conf) >= 0.3:
                height = np.linalg.norm(joints[head_top] - joints[ankles].mean(axis=0))
                assert 1.2 < height < 2.2, height
            assert 1.0 < joints[0, 2] < 60.0, f"root depth {joints[0, 2]:.1f} m"
            # Standing people: the head is above the ankles in the image (y down in the optical frame).
            assert joints[head_top, 1] < joints[ankles, 1].min()


def test_stamp_frame_and_latency_are_carried_over(played: Played) -> None:
    for msg, result in played.sent:
        assert _stamp_key(result.header.stamp) == _stamp_key(msg.header.stamp)
        assert result.header.frame_id == FRAME_ID
        latency = result.processing_latency.sec + result.processing_latency.nanosec * 1e-9
        assert 0.0 < latency < RESULT_TIMEOUT_S


def test_without_camera_info_the_scale_is_flagged_unknown(played: Played) -> None:
    people = played.without_info.skeletons
    assert people, "no people found in the frame sent before any CameraInfo"
    assert all(s.root_source == Skeleton3D.ROOT_SCALE_UNKNOWN for s in people)


@pytest.mark.parametrize(
    "fields,logged,root_source",
    [
        ({"d": [0.01, -0.01, 0.0]}, "zero-padded", Skeleton3D.ROOT_FROM_INTRINSICS),  # 3 coefficients
        ({"k": [1e300, 0.0, 442.0, 0.0, 1e300, 248.0, 0.0, 0.0, 1.0]}, "unusable", Skeleton3D.ROOT_SCALE_UNKNOWN),
    ],
)
def test_odd_camera_info_is_padded_or_refused_and_said_once(
    client: Client, footage: list[np.ndarray], node_process, fields: dict, logged: str, root_source: int
) -> None:
    """CameraInfo with 3 distortion coefficients is padded, with an absurd K refused for the assumed
    field of view: the node says so once (not with every frame, nor every WARN_PERIOD_S) and goes on."""
    log = node_process[1]
    before = log.read_text().count(logged)
    for index, frame in enumerate(footage[:3]):
        if index:
            time.sleep(WARN_PERIOD_S / 2 + 0.5)  # past a throttled warning's period
        result = client.result(bgr8_message(frame, Header()), info_fields=fields)
        assert result.skeletons and all(s.root_source == root_source for s in result.skeletons)
    assert log.read_text().count(logged) - before == 1, log.read_text()[-3000:]
    assert node_process[0].poll() is None


def test_ids_are_unique_within_a_frame(played: Played) -> None:
    for _, result in played.sent:
        ids = [s.id for s in result.skeletons]
        assert len(ids) == len(set(ids))


def test_tf_has_a_body_frame_per_person_and_rep155_joint_frames(client: Client, played: Played) -> None:
    for msg, result in played.sent[-3:]:
        tfs = wait_until(lambda msg=msg: client.find("tf", msg.header.stamp), 10.0, "no /tf for a processed frame")
        transforms = {t.child_frame_id: t for m in tfs for t in m.transforms}
        for s in result.skeletons:
            body = transforms[f"body_{s.id}"]
            assert body.header.frame_id == FRAME_ID
            tr, q = body.transform.translation, body.transform.rotation
            assert np.allclose([tr.x, tr.y, tr.z], [s.root_position.x, s.root_position.y, s.root_position.z])
            rotation = quat2mat([q.w, q.x, q.y, q.z])
            assert np.isclose(np.linalg.norm([q.w, q.x, q.y, q.z]), 1.0)
            joints = joints_of(s)
            # REP 155: z of body_<id> points to the head, i.e. up in the image (-y of the optical frame).
            assert rotation[1, 2] < 0
            for name, link in (("left_wrist", "l_wrist"), ("right_knee", "r_knee"), ("head_top", "head_top")):
                joint = transforms[f"{link}_{s.id}"]
                assert joint.header.frame_id == f"body_{s.id}"
                local = joint.transform.translation
                in_camera = rotation @ [local.x, local.y, local.z] + joints[0]
                assert np.allclose(in_camera, joints[index_of(H36M17, name)], atol=1e-5)


def test_markers_per_person_with_lifetime_and_stable_colour(client: Client, played: Played) -> None:
    for _, result in played.sent[-3:]:
        arrays = wait_until(
            lambda result=result: client.find("markers", result.header.stamp), 10.0, "no markers for a frame"
        )
        markers = {(m.ns, m.type): m for m in arrays[0].markers}
        assert len(markers) == 2 * len(result.skeletons)
        for s in result.skeletons:
            joints = markers[(f"body_{s.id}", Marker.SPHERE_LIST)]
            bones = markers[(f"body_{s.id}", Marker.LINE_LIST)]
            assert len(joints.points) == 17 and len(bones.points) == 2 * len(H36M17_BONES)
            assert np.allclose([[p.x, p.y, p.z] for p in joints.points], joints_of(s))
            assert joints.lifetime.sec + joints.lifetime.nanosec > 0 and joints.header.frame_id == FRAME_ID
            assert joints.color == bones.color


def test_overlay_is_published_while_subscribed(client: Client, played: Played) -> None:
    msg, _ = played.sent[-1]
    overlays = wait_until(lambda: client.find("overlay", msg.header.stamp), 10.0, "no overlay image")
    overlay = overlays[0]
    assert (overlay.width, overlay.height, overlay.encoding) == (msg.width, msg.height, "bgr8")
    assert bytes(overlay.data) != bytes(msg.data), "nothing was drawn on the overlay"


@pytest.mark.parametrize("encoding", ["rgb8", "bayer_rggb8", "yuv422_yuy2", "mono8"])
def test_other_encodings_over_dds(client: Client, footage: list[np.ndarray], encoding: str) -> None:
    frame = footage[len(footage) // 2]
    if encoding == "rgb8":
        msg = image_message(frame[..., ::-1], encoding, pad=16)
    elif encoding == "bayer_rggb8":
        mosaic = np.empty(frame.shape[:2], np.uint8)
        for k, channel in enumerate((2, 1, 1, 0)):  # r g / g b
            dy, dx = divmod(k, 2)
            mosaic[dy::2, dx::2] = frame[dy::2, dx::2, channel]
        msg = image_message(mosaic, encoding)
    elif encoding == "yuv422_yuy2":
        even = frame[:, : frame.shape[1] // 2 * 2]
        yuv = cv2.cvtColor(even, cv2.COLOR_BGR2YUV)  # full 4:4:4; keep every pixel's Y, subsample U and V
        packed = np.empty(even.shape[:2] + (2,), np.uint8)
        packed[..., 0] = yuv[..., 0]
        packed[:, 0::2, 1], packed[:, 1::2, 1] = yuv[:, 0::2, 1], yuv[:, 0::2, 2]
        msg = image_message(packed, encoding)
    else:
        msg = image_message(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), encoding)
    result = client.result(msg)
    assert len(result.skeletons) >= 1, f"nobody found in a {encoding} frame"


def test_malformed_messages_do_not_stop_the_node(client: Client, footage: list[np.ndarray], node_process) -> None:
    rejected_before = int(client.latest_diagnostics()["messages_rejected"])
    frame = footage[0]
    good = bgr8_message(frame, Header())
    bad = [
        Image(height=4, width=4, encoding="rgb9", step=12, data=bytes(48)),
        Image(height=good.height, width=good.width, encoding="bgr8", step=good.step, data=bytes(good.data)[:-100]),
        Image(height=0, width=0, encoding="bgr8", step=0, data=b""),
        Image(height=good.height, width=good.width, encoding="bgr8", step=good.width, data=bytes(good.data)),
        image_message(np.zeros((8, 8), np.float32), "32FC1"),
    ]
    stamps = []
    for msg in bad:
        stamps.append(client.now())
        client.publish(msg, stamps[-1], with_info=False)
        time.sleep(0.5)  # the worker is idle: each is taken (and refused) before the next arrives
    assert client.result(good).skeletons, "the node did not process a good frame after malformed ones"
    assert node_process[0].poll() is None, node_log(node_process)
    assert not any(client.find("pose", s) for s in stamps), "a malformed message produced a result"
    rejected = int(client.latest_diagnostics()["messages_rejected"]) - rejected_before
    assert rejected >= 3, f"only {rejected} of {len(bad)} malformed messages were counted as rejected"


def set_parameter(client: Client, name: str, value) -> Any:
    service = client.node.create_client(SetParameters, f"{NAMESPACE}/pose3d_node/set_parameters")
    try:
        assert service.wait_for_service(timeout_sec=10.0)
        future = service.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
        wait_until(future.done, 10.0, "set_parameters did not answer")
        return future.result().results[0]
    finally:
        client.node.destroy_client(service)


def test_invalid_parameters_are_refused_over_the_service(client: Client, node_process) -> None:
    out_of_range = set_parameter(client, "assumed_hfov_deg", 500.0)
    assert not out_of_range.successful and out_of_range.reason
    read_only = set_parameter(client, "device", "cuda:0")
    assert not read_only.successful and "read-only" in read_only.reason.lower().replace("read only", "read-only")
    bad_frame = set_parameter(client, "frame_id", "/leading_slash")
    assert not bad_frame.successful and "frame ids" in bad_frame.reason
    assert set_parameter(client, "marker_lifetime_s", 1.0).successful
    assert node_process[0].poll() is None, node_log(node_process)


def test_fast_camera_drops_frames_and_keeps_latency_bounded(
    client: Client, played: Played, footage: list[np.ndarray]
) -> None:
    """A camera faster than the model: newest-only processing drops frames and keeps latency flat.

    The node is slowed on purpose (``processing_delay_s``: each frame is held 0.25 s longer, as a
    slower model would), so 60 Hz input outpaces processing on any machine, fast and idle or slow
    and loaded. What must hold then: frames are reported dropped, the node never processes more
    frames than it could in the time (no queue), and latency stays bounded: a frame waits at most
    for the one in progress, so every latency is within about two processing times. A queue would
    make latency grow with every frame instead.
    """
    delay_s = 0.25
    single = [r.processing_latency.sec + r.processing_latency.nanosec * 1e-9 for _, r in played.sent[1:]]
    bound = 3.0 * (max(single) + delay_s) + 1.0
    dropped_before = int(client.latest_diagnostics()["frames_dropped"])
    messages = [bgr8_message(f, Header()) for f in footage]
    rate_hz, duration_s = 60.0, 4.0
    assert set_parameter(client, "processing_delay_s", delay_s).successful
    try:
        stamps = []
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration_s:
            stamps.append(client.now())
            client.publish(messages[len(stamps) % len(messages)], stamps[-1])
            time.sleep(max(0.0, len(stamps) / rate_hz - (time.monotonic() - start)))
        sent_rate = len(stamps) / elapsed
        # Wait until the node has caught up: the burst's newest frame may be the last one processed.
        time.sleep(bound)
    finally:
        assert set_parameter(client, "processing_delay_s", 0.0).successful
    burst = {_stamp_key(s) for s in stamps}
    results = [m for m in list(client.received["pose"]) if _stamp_key(m.header.stamp) in burst]
    latencies = [m.processing_latency.sec + m.processing_latency.nanosec * 1e-9 for m in results]
    dropped = int(client.latest_diagnostics()["frames_dropped"]) - dropped_before
    # Input must outpace processing (at most 1 / delay_s frames a second), not reach a set speed.
    assert sent_rate > 2.0 / delay_s, f"the test could only publish at {sent_rate:.0f} Hz"
    assert results, "no results during the burst"
    # Each result took at least delay_s of the node's time: more results than fit in the burst and
    # the wait after it would mean frames were processed from a queue faster than possible.
    most = (elapsed + bound) / delay_s + 1
    assert len(results) <= most, f"{len(results)} results for {len(stamps)} frames in {elapsed + bound:.1f} s"
    assert dropped > 0, "no dropped frames reported in /diagnostics"
    assert max(latencies) < bound, (
        f"latency {max(latencies):.2f} s over the bound {bound:.2f} s "
        f"(one-at-a-time latencies {statistics.median(single):.2f} s median)"
    )
    # Latency does not grow through the burst (a queue would make the last results the latest).
    half = len(latencies) // 2
    if half >= 2:
        assert statistics.median(latencies[half:]) < 2.0 * statistics.median(latencies[:half]) + delay_s, latencies


def test_max_input_rate_drops_frames_on_arrival_before_decoding(client: Client, played: Played) -> None:
    """max_input_rate_hz: frames sooner than the limit (by their stamps) are dropped in the
    subscription callback, undecoded. Malformed frames show it: only the few let through are
    decoded (and rejected); the others are counted as throttled, never as rejected."""
    assert set_parameter(client, "max_input_rate_hz", 1.0).successful
    try:
        before = client.latest_diagnostics()
        bad = Image(height=4, width=4, encoding="rgb9", step=12, data=bytes(48))
        rate_hz, duration_s, sent = 20.0, 3.0, 0
        start = time.monotonic()
        while time.monotonic() - start < duration_s:
            client.publish(bad, client.now(), with_info=False)
            sent += 1
            time.sleep(max(0.0, sent / rate_hz - (time.monotonic() - start)))
        time.sleep(1.0)
        after = client.latest_diagnostics()
        throttled = int(after["frames_throttled"]) - int(before["frames_throttled"])
        rejected = int(after["messages_rejected"]) - int(before["messages_rejected"])
        received = int(after["frames_received"]) - int(before["frames_received"])
        assert 1 <= rejected <= duration_s * 1.0 + 2, f"{rejected} frames decoded at a 1 Hz limit ({sent} sent)"
        assert throttled >= received - rejected - 2 and throttled >= sent / 2, (throttled, received, sent)
    finally:
        assert set_parameter(client, "max_input_rate_hz", 0.0).successful
    assert client.result(played.sent[-1][0]).skeletons, "no result after the limit was lifted"


@pytest.fixture(scope="module")
def depth_client(context, tmp_path_factory, ros_environment, footage):
    namespace = f"{NAMESPACE}_depth"
    log_path = tmp_path_factory.mktemp("pose3d_node_depth") / "node.log"
    # A generous wait: on a loaded CI machine the depth callback can run well after the image's.
    # autostart: the plain entry point configures and activates itself, no lifecycle calls.
    process = start_node(log_path, namespace, "use_depth:=true", "depth_wait_s:=1.0", "autostart:=true")
    try:
        client, executor = connect(context, namespace, (process, log_path), activate=False)
        client.depth_pub = client.node.create_publisher(
            Image, "camera/aligned_depth_to_color/image_raw", QoSProfile(depth=2)
        )
        wait_until(lambda: client.depth_pub.get_subscription_count(), 30.0, "the node did not subscribe to depth")
        yield client
        executor.shutdown()
        client.node.destroy_node()
    finally:
        stop_node(process)


def test_aligned_depth_places_people(depth_client: Client, footage: list[np.ndarray]) -> None:
    """A 16UC1 depth image (mm) with the colour image's stamp: roots come from depth, at its distance.
    On a loaded machine the first frame's camera_info or depth can reach the node after its waits
    (the frame is then placed without them, as it should be): a few frames are sent until one was
    paired, and that one is checked."""
    frame = footage[len(footage) // 2]
    depth_mm = np.full((frame.shape[0] // 2, frame.shape[1] // 2), 5000, np.uint16)  # another resolution
    for _ in range(5):
        result = depth_client.result(bgr8_message(frame, Header()), depth=image_message(depth_mm, "16UC1"))
        assert result.skeletons, "nobody found with use_depth"
        if all(s.root_source == Skeleton3D.ROOT_FROM_DEPTH for s in result.skeletons):
            break
    for s in result.skeletons:
        assert s.root_source == Skeleton3D.ROOT_FROM_DEPTH
        # The joints' surfaces are at 5 m; the pelvis lies a few centimetres behind them.
        assert 4.8 < s.root_position.z < 5.6, s.root_position


# ---------------------------------------------------------------- floor_frame: the camera's pose from TF
#: A real frame with exact 3D truth (S11 walking, camera 60457274) and that camera's calibration.
S11_FRAME = 200


@dataclass
class FloorScene:
    """One real S11 frame, its calibration, its camera's pose above the floor and the true root."""

    image: Image
    info_fields: dict
    floor_from_camera: np.ndarray
    root: np.ndarray


@pytest.fixture(scope="module")
def floor_scene(shared_data, annotations) -> FloorScene:
    import json

    record = next(r for r in annotations("data/h36m_s11_walkdog/annotations.json") if r.frame == S11_FRAME)
    cameras = json.loads(shared_data("data/h36m/cameras.json").read_text())
    camera = cameras[f"{record.subject}/{record.camera_name}"]
    floor_from_camera = np.eye(4)
    floor_from_camera[:3, :3] = camera["R"]
    floor_from_camera[:3, 3] = np.ravel(camera["T"])
    K = record.K
    k1, k2, k3 = record.dist_k
    p1, p2 = record.dist_p
    info_fields = {
        "k": K.ravel().tolist(),
        "d": [k1, k2, p1, p2, k3],
        "p": np.hstack([K, np.zeros((3, 1))]).ravel().tolist(),
    }
    pixels = cv2.imread(str(record.path))
    root = record.truth.joints_3d[0]
    return FloorScene(bgr8_message(pixels, Header()), info_fields, floor_from_camera, root)


def _tf_message(parent: str, child: str, parent_from_child: np.ndarray, stamp) -> TFMessage:
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from transforms3d.quaternions import mat2quat

    w, x, y, z = mat2quat(parent_from_child[:3, :3])
    tx, ty, tz = parent_from_child[:3, 3]
    return TFMessage(
        transforms=[
            TransformStamped(
                header=Header(stamp=stamp, frame_id=parent),
                child_frame_id=child,
                transform=Transform(
                    translation=Vector3(x=float(tx), y=float(ty), z=float(tz)),
                    rotation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
                ),
            )
        ]
    )


def _offset_stamp(stamp, seconds: float):
    from rclpy.time import Time as RosTime

    return (RosTime.from_msg(stamp) + rclpy.duration.Duration(seconds=seconds)).to_msg()


def _floor_result(client: Client, scene: FloorScene, floor_frame: str, send_tf: Callable[[Any], None]) -> Skeleton3D:
    """The S11 frame's person with ``floor_frame`` set; ``send_tf(stamp)`` publishes the transforms
    for the image stamp first (each resend gets a new stamp, and its transforms)."""
    assert set_parameter(client, "floor_frame", floor_frame).successful
    try:
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while time.monotonic() < deadline:
            stamp = client.now()
            send_tf(stamp)
            time.sleep(0.3)  # the transforms arrive before the frame that needs them
            client.publish(scene.image, stamp, info_fields=scene.info_fields)
            found = wait_for(lambda stamp=stamp: client.find("pose", stamp), 10.0)
            if found and found[0].skeletons:
                return max(found[0].skeletons, key=lambda s: s.score)
        raise AssertionError(f"no result with a person for the S11 frame within {RESULT_TIMEOUT_S:.0f} s")
    finally:
        assert set_parameter(client, "floor_frame", "").successful


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    """``predicate()`` once it is truthy, or its last value after ``timeout`` (no failure)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def _root_error(skeleton: Skeleton3D, scene: FloorScene) -> float:
    p = skeleton.root_position
    return float(np.linalg.norm(np.array([p.x, p.y, p.z]) - scene.root))


@pytest.fixture(scope="module")
def tf_pub(client: Client) -> tuple[Any, Any]:
    from rclpy.qos import DurabilityPolicy

    static = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return (
        client.node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100)),
        client.node.create_publisher(TFMessage, "/tf_static", static),
    )


def test_floor_from_static_tf_places_the_person_on_the_floor(client: Client, floor_scene: FloorScene, tf_pub) -> None:
    """A static camera pose (the camera is the parent here, as a robot's camera above its
    base_footprint may not be): the person is placed with their feet on the floor, with a finite
    covariance, and the placement is at least as close to the truth as without the floor."""
    dynamic, static = tf_pub
    camera_from_floor = np.linalg.inv(floor_scene.floor_from_camera)
    static.publish(_tf_message(FRAME_ID, "floor_static", camera_from_floor, client.now()))
    without = client.result(floor_scene.image, info_fields=floor_scene.info_fields).skeletons
    assert without and all(s.root_source == Skeleton3D.ROOT_FROM_INTRINSICS for s in without)
    person = _floor_result(client, floor_scene, "floor_static", lambda stamp: None)
    assert person.root_source == Skeleton3D.ROOT_FROM_FLOOR, person.placement_note
    assert person.placement_note == ""
    cov = np.asarray(person.root_covariance).reshape(3, 3)
    assert np.isfinite(cov).all() and np.all(np.linalg.eigvalsh(cov) > 0)
    # Feet on the floor: the lower ankle stands about a foot's height above z = 0 of the floor frame.
    joints = joints_of(person)
    ankles = joints[[index_of(H36M17, "left_ankle"), index_of(H36M17, "right_ankle")]]
    heights = (floor_scene.floor_from_camera[:3, :3] @ ankles.T).T[:, 2] + floor_scene.floor_from_camera[2, 3]
    assert 0.0 < heights.min() < 0.25, heights
    best_without = min(_root_error(s, floor_scene) for s in without)
    assert _root_error(person, floor_scene) < max(best_without, 0.15) + 0.05


def test_floor_from_moving_tf_is_interpolated_at_the_image_stamp(
    client: Client, floor_scene: FloorScene, tf_pub
) -> None:
    """A moving camera (samples 50 ms before and after the image, the camera shifted between
    them): the pose at the image's stamp is found by interpolation and used."""
    dynamic, _ = tf_pub
    camera_from_floor = np.linalg.inv(floor_scene.floor_from_camera)

    def send(stamp) -> None:
        for dt, shift in ((-0.05, -0.02), (0.05, 0.02)):
            moved = camera_from_floor.copy()
            moved[0, 3] += shift
            dynamic.publish(_tf_message(FRAME_ID, "floor_moving", moved, _offset_stamp(stamp, dt)))

    person = _floor_result(client, floor_scene, "floor_moving", send)
    assert person.root_source == Skeleton3D.ROOT_FROM_FLOOR, person.placement_note


@pytest.mark.parametrize("case", ["missing", "stale"])
def test_missing_or_stale_tf_falls_back_to_the_image_and_says_why(
    client: Client, floor_scene: FloorScene, tf_pub, node_process, case: str
) -> None:
    """No transform to the floor frame, or only samples 2 s older than the image (a TF publisher
    that stopped): the person is placed from the image alone, the note says why, the node runs on."""
    dynamic, _ = tf_pub
    camera_from_floor = np.linalg.inv(floor_scene.floor_from_camera)

    def send(stamp) -> None:
        if case == "stale":
            dynamic.publish(_tf_message(FRAME_ID, "floor_stale", camera_from_floor, _offset_stamp(stamp, -2.0)))

    person = _floor_result(client, floor_scene, f"floor_{case}", send)
    assert person.root_source == Skeleton3D.ROOT_FROM_INTRINSICS
    assert "no transform" in person.placement_note and f"floor_{case}" in person.placement_note
    assert node_process[0].poll() is None, node_log(node_process)
    assert "floor_frame" in node_log(node_process)  # the throttled warning


def test_overlay_is_also_published_as_jpeg_on_compressed(client: Client, footage: list[np.ndarray]) -> None:
    """The overlay as image_transport's compressed plugin names it (Foxglove's layout shows it)."""
    overlays: list[CompressedImage] = []
    sub = client.node.create_subscription(
        CompressedImage, "human/pose3d/image/compressed", overlays.append, QoSProfile(depth=2)
    )
    try:
        wait_until(lambda: client.node.count_publishers(f"{NAMESPACE}/human/pose3d/image/compressed"), 10.0, "none")
        msg = bgr8_message(footage[-1], Header())
        found: list = []
        for _ in range(3):  # a frame processed before the node saw the new subscriber has no overlay
            stamp = client.result(msg).header.stamp
            deadline = time.monotonic() + 5.0
            while not found and time.monotonic() < deadline:
                found = [m for m in list(overlays) if _stamp_key(m.header.stamp) == _stamp_key(stamp)]
                time.sleep(0.05)
            if found:
                break
    finally:
        client.node.destroy_subscription(sub)
    assert found, "no compressed overlay with the frame's stamp"
    assert "jpeg" in found[0].format
    image = cv2.imdecode(np.frombuffer(bytes(found[0].data), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (msg.height, msg.width)


def test_odd_width_yuv_and_negative_stamps_are_rejected_not_failures(
    client: Client, footage: list[np.ndarray], node_process
) -> None:
    before = client.latest_diagnostics()
    odd = image_message(np.zeros((6, 5, 2), np.uint8), "uyvy")
    client.publish(odd, client.now(), with_info=False)
    time.sleep(1.0)  # the worker is idle: taken (and refused) before the next arrives
    negative = bgr8_message(footage[0], Header())
    client.publish(negative, Time(sec=-5, nanosec=0))
    time.sleep(1.0)
    assert client.result(bgr8_message(footage[0], Header())).skeletons, "no result after the bad frames"
    after = client.latest_diagnostics()
    assert int(after["messages_rejected"]) - int(before["messages_rejected"]) == 2, (before, after)
    assert after["processing_failures"] == before["processing_failures"], (before, after)
    assert node_process[0].poll() is None, node_log(node_process)


def test_max_image_pixels_is_capped_at_its_start_value(client: Client, footage: list[np.ndarray]) -> None:
    """A remote set_parameters may lower max_image_pixels and raise it back, never above the
    value the node was started with (a decompression bomb's door stays shut)."""
    start = PipelineConfig().max_image_pixels  # config/pose3d.yaml's value
    raised = set_parameter(client, "max_image_pixels", start + 1)
    assert not raised.successful and "start-up value" in raised.reason
    assert set_parameter(client, "max_image_pixels", 1000).successful
    try:
        rejected_before = int(client.latest_diagnostics()["messages_rejected"])
        client.publish(bgr8_message(footage[0], Header()), client.now())
        wait_until(
            lambda: int(client.latest_diagnostics()["messages_rejected"]) > rejected_before,
            RESULT_TIMEOUT_S,
            "a frame over the lowered limit was not refused",
        )
    finally:
        assert set_parameter(client, "max_image_pixels", start).successful, "raising back to the start value"


def test_rate_limited_input_is_reported_not_silent(client: Client, played: Played) -> None:
    """With a very low max_input_rate_hz, frames keep coming but are not taken: /diagnostics say
    the input is rate-limited (with the last image's age), not "no images received"."""
    msg = played.sent[-1][0]
    assert set_parameter(client, "max_input_rate_hz", 0.01).successful
    try:
        client.result(msg)  # the first frame is taken at once; the next is due in 100 s
        start = time.monotonic()
        while time.monotonic() - start < 3.0:
            client.publish(msg, client.now())
            time.sleep(0.1)
        client.latest_diagnostics()
        status = [st for m in list(client.received["diag"]) for st in m.status if st.name.endswith("pose3d")][-1]
    finally:
        assert set_parameter(client, "max_input_rate_hz", 0.0).successful
    assert "rate-limited" in status.message and status.level == DiagnosticStatus.OK, status.message
    assert float({kv.key: kv.value for kv in status.values}["last_image_age_s"]) < 5.0


def test_image_is_subscribed_reliable_and_falls_back_for_a_best_effort_camera(
    client: Client, footage: list[np.ndarray], node_process
) -> None:
    """Reliable by default (a best-effort reader of large samples from two publishers grows without
    limit under Fast DDS's shared memory: docs/NODE.md "Image QoS"); a best-effort camera still
    gets results, the subscription switching to best effort for it."""
    topic = f"{NAMESPACE}/camera/image_raw"

    def reliabilities() -> set:
        return {i.qos_profile.reliability for i in client.node.get_subscriptions_info_by_topic(topic)}

    assert reliabilities() == {ReliabilityPolicy.RELIABLE}, reliabilities()
    best_effort = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
    camera = client.node.create_publisher(Image, "camera/image_raw", best_effort)
    reliable_camera = client.image_pub
    try:
        wait_until(lambda: reliabilities() == {ReliabilityPolicy.BEST_EFFORT}, 30.0, "no fall-back to best effort")
        client.image_pub = camera
        assert client.result(bgr8_message(footage[0], Header())).skeletons, "no result for a best-effort camera"
    finally:
        client.image_pub = reliable_camera
        client.node.destroy_publisher(camera)
    assert node_process[0].poll() is None, node_log(node_process)
