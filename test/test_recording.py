"""MCAP recording for Foxglove without ROS (issue #14, item 14): the file is read back with the
``mcap`` reader and ``mcap-ros2-support``'s decoder, and what it holds is compared with what was
written and with ``ctxpose infer``'s JSON lines for the same frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mcap_ros2", reason="mcap-ros2-support is not installed (tools/requirements-venv.txt)")

from mcap.reader import make_reader  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402

from ros2_ctxpose.core.overlay import colour_for  # noqa: E402
from ros2_ctxpose.core.results import Person3D  # noqa: E402
from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES  # noqa: E402
from ros2_ctxpose.output import content, schemas  # noqa: E402
from ros2_ctxpose.output.recording import McapRecorder, RecordingTopics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def person(track_id: int, x: float, rng: np.random.Generator) -> Person3D:
    joints = rng.normal(scale=0.3, size=(17, 3)) + [x, 0.0, 3.0]
    joints[H36M17.index("thorax")] = joints[0] + [0.0, -0.5, 0.0]  # upright in the optical frame
    return Person3D(
        track_id=track_id,
        score=0.9,
        bbox_xyxy=np.array([10.0, 20.0, 110.0, 320.0]),
        keypoints_2d=np.column_stack([rng.uniform(0, 640, (17, 2)), rng.uniform(0, 1, 17)]),
        joints_3d=joints,
        joints_uv=rng.uniform(0, 640, (17, 2)),
        joints_conf=rng.uniform(0, 1, 17),
        root=joints[0].copy(),
        root_source="intrinsics",
    )


def read(path: Path) -> tuple[dict[str, int], dict[str, str], list[tuple[str, int, object]]]:
    """(message count per topic, schema name per topic, [(topic, log time, decoded message)])."""
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        counts = {c.topic: summary.statistics.channel_message_counts[i] for i, c in summary.channels.items()}
        schemas = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        messages = [(ch.topic, msg.log_time, decoded) for _, ch, msg, decoded in reader.iter_decoded_messages()]
    assert summary.statistics.message_count == sum(counts.values())
    return counts, schemas, messages


def test_recorder_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [[person(1, -0.5, rng), person(2, 0.8, rng)], [person(1, -0.4, rng)], []]
    image = np.zeros((48, 64, 3), np.uint8)
    path = tmp_path / "sub" / "out.mcap"
    with McapRecorder(path, marker_lifetime_ns=300_000_000) as recorder:
        for k, people in enumerate(frames):
            recorder.write(
                1_000_000_000 + k * 250_000_000,
                "cam_optical",
                people,
                image=image if k else None,
                latency_ns=12_000_000,
            )
    counts, schemas, messages = read(path)
    assert counts == {
        "/human/pose3d": 3,
        "/human/pose3d/markers": 3,
        "/tf": 2,
        "/tf_static": 1,
        "/human/pose3d/image/compressed": 2,
    }
    assert schemas == {
        "/human/pose3d": "ros2_ctxpose/msg/Skeleton3DArray",
        "/human/pose3d/markers": "visualization_msgs/msg/MarkerArray",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/tf_static": "tf2_msgs/msg/TFMessage",
        "/human/pose3d/image/compressed": "sensor_msgs/msg/CompressedImage",
    }

    poses = [(t, m) for topic, t, m in messages if topic == "/human/pose3d"]
    assert [t for t, _ in poses] == [1_000_000_000, 1_250_000_000, 1_500_000_000]
    for (t, msg), people in zip(poses, frames, strict=True):
        assert msg.header.frame_id == "cam_optical"
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == t
        assert list(msg.joint_names) == list(H36M17)
        assert msg.processing_latency.nanosec == 12_000_000
        assert [s.id for s in msg.skeletons] == [p.track_id for p in people]
        for s, p in zip(msg.skeletons, people, strict=True):
            got = np.array([[q.x, q.y, q.z] for q in s.joint_positions])
            np.testing.assert_array_equal(got, p.joints_3d)  # float64 on both sides
            np.testing.assert_allclose(s.keypoints_2d, p.keypoints_2d.ravel(), rtol=1e-6)
            np.testing.assert_allclose(s.bbox_xyxy, p.bbox_xyxy, rtol=1e-6)
            assert s.root_source == 1  # ROOT_FROM_INTRINSICS

    markers = [m for topic, _, m in messages if topic == "/human/pose3d/markers"]
    first = markers[0].markers
    assert {m.action for m in first} == {0}  # ADD only: lifetimes clear people who left, as live
    assert {(m.lifetime.sec, m.lifetime.nanosec) for m in first} == {(0, 300_000_000)}
    spheres = [m for m in first if m.type == 7]
    lines = [m for m in first if m.type == 5]
    assert [m.ns for m in spheres] == ["body_1", "body_2"] and len(lines) == 2
    np.testing.assert_array_equal([[q.x, q.y, q.z] for q in spheres[1].points], frames[0][1].joints_3d)
    assert len(lines[0].points) == 2 * len(H36M17_BONES)
    b, g, r = colour_for(2)
    assert (spheres[1].color.r, spheres[1].color.g, spheres[1].color.b) == pytest.approx((r / 255, g / 255, b / 255))
    assert len(markers[2].markers) == 0  # nobody: nothing to draw

    tf = [m for topic, _, m in messages if topic == "/tf"]
    assert [t.child_frame_id for t in tf[0].transforms] == ["body_1", "body_2"]
    body = tf[0].transforms[1]
    assert body.header.frame_id == "cam_optical"
    np.testing.assert_allclose(
        [body.transform.translation.x, body.transform.translation.y, body.transform.translation.z],
        frames[0][1].joints_3d[0],
    )
    q = body.transform.rotation
    assert q.x**2 + q.y**2 + q.z**2 + q.w**2 == pytest.approx(1.0)
    (static,) = [m for topic, _, m in messages if topic == "/tf_static"]
    (link,) = static.transforms
    assert (link.header.frame_id, link.child_frame_id) == ("camera_link", "cam_optical")
    rotation = (
        link.transform.rotation.x,
        link.transform.rotation.y,
        link.transform.rotation.z,
        link.transform.rotation.w,
    )
    assert rotation == content.OPTICAL_IN_CAMERA_BODY

    import cv2

    (img, *_) = [m for topic, _, m in messages if topic == "/human/pose3d/image/compressed"]
    assert img.format == "jpeg"
    assert cv2.imdecode(np.frombuffer(bytes(img.data), np.uint8), cv2.IMREAD_COLOR).shape == image.shape


def test_body_frame_quaternions_are_the_rotations_of_the_body_frame() -> None:
    """The body frames' quaternions (x, y, z, w) turn back into ``core.body_frame.rep155_rotation``."""
    from transforms3d.quaternions import quat2mat

    from ros2_ctxpose.core.body_frame import rep155_rotation

    rng = np.random.default_rng(3)
    for _ in range(5):
        rotation = rep155_rotation(rng.normal(size=(17, 3)))
        x, y, z, w = content.quaternion_xyzw(rotation)
        np.testing.assert_allclose(quat2mat((w, x, y, z)), rotation, atol=1e-12)


def test_topics_follow_the_nodes_resolved_output(tmp_path: Path) -> None:
    """A node in namespace /robot with human/pose3d remapped records under its own names."""
    path = tmp_path / "ns.mcap"
    with McapRecorder(path, pose_topic="/robot/people") as recorder:
        recorder.write(5, "cam", [person(3, 0.0, np.random.default_rng(1))], image=np.zeros((8, 8, 3), np.uint8))
    counts, _, _ = read(path)
    assert set(counts) == {
        "/robot/people",
        "/robot/people/markers",
        "/robot/people/image/compressed",
        "/tf",
        "/tf_static",
    }


def test_shipped_definitions_match_the_msg_files() -> None:
    """msg_definitions.py is what ``--regenerate`` builds from msg/ and the installed packages."""
    from ros2_ctxpose.output.msg_definitions import DEFINITIONS

    try:
        built = {name: schemas.build_definition(name) for name in schemas.RECORDED_TYPES}
    except FileNotFoundError as exc:
        pytest.skip(f"ROS message packages not found on AMENT_PREFIX_PATH: {exc}")
    assert built == DEFINITIONS, "run: python -m ros2_ctxpose.output.schemas --regenerate"


def layout_topics(node: object) -> set[str]:
    """Every topic name (a string starting with '/') anywhere in a Foxglove layout."""
    if isinstance(node, dict):
        return set().union(*(layout_topics(k) | layout_topics(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(layout_topics(v) for v in node))
    return {node} if isinstance(node, str) and node.startswith("/") else set()


def test_layout_shows_the_recorded_topics(tmp_path: Path) -> None:
    """One layout for live and recorded data: every topic and frame the layout names is in a
    recording with the defaults (as ``ctxpose infer --record-mcap`` and the node without a namespace
    write it)."""
    layout = json.loads((REPO / "config" / "foxglove_layout.json").read_text())
    panels = layout["configById"]
    assert {p.split("!")[0] for p in panels} == {"3D", "Image", "RawMessages"}
    path = tmp_path / "layout.mcap"
    with McapRecorder(path) as recorder:
        recorder.write(
            1, "camera_optical_frame", [person(1, 0.0, np.random.default_rng(2))], image=np.zeros((8, 8, 3), np.uint8)
        )
    counts, _, messages = read(path)
    named = layout_topics(layout)
    assert named >= {RecordingTopics().pose, RecordingTopics().markers, RecordingTopics().overlay}
    assert named <= set(counts), f"the layout names topics no recording has: {named - set(counts)}"
    frames = {t.header.frame_id for topic, _, m in messages if topic in ("/tf", "/tf_static") for t in m.transforms}
    three_d = next(v for k, v in panels.items() if k.startswith("3D!"))
    assert three_d["followTf"] in frames and three_d["layers"]["grid"]["frameId"] in frames
    assert three_d["topics"][RecordingTopics().markers]["visible"]

    def leaves(node) -> set[str]:
        return {node} if isinstance(node, str) else leaves(node["first"]) | leaves(node["second"])

    assert leaves(layout["layout"]) == set(panels)


def test_mcap_times_are_the_files_own(tmp_path: Path) -> None:
    """``ctxpose infer --record-mcap`` log times: a video's frames at its mtime plus their position, a
    still image at its mtime, never going back (a file older than the one before follows it)."""
    from ros2_ctxpose.cli.infer import STILL_IMAGE_PERIOD_NS, _Timeline

    video, old_image, image = tmp_path / "v.mp4", tmp_path / "old.jpg", tmp_path / "new.jpg"
    for f, t in ((video, 1_700_000_000), (old_image, 1_600_000_000), (image, 1_700_000_100)):
        f.write_bytes(b"x")
        os.utime(f, ns=(t * 10**9, t * 10**9))
    timeline = _Timeline()
    times = [timeline(f"{video}#{k:06d}", str(video), k / 30) for k in range(3)]
    assert times == [1_700_000_000 * 10**9 + round(k * 10**9 / 30) for k in range(3)]
    assert timeline(str(old_image), None, None) == times[-1] + STILL_IMAGE_PERIOD_NS
    assert timeline(str(image), None, None) == 1_700_000_100 * 10**9


@pytest.mark.slow
def test_cli_records_what_it_prints(tmp_path: Path, weights_available: None) -> None:
    """``ctxpose infer VIDEO --record-mcap``: the decoded joints equal the JSON lines' (to their 0.1 mm
    rounding), at the frames' own time stamps."""
    import cv2

    from ros2_ctxpose.cli import main as cli_main
    from ros2_ctxpose.core.media.videos import demo_video_path

    try:
        demo = demo_video_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    clip = tmp_path / "clip.avi"
    cap = cv2.VideoCapture(str(demo))
    writer = None
    for _ in range(45):
        ok, image = cap.read()
        assert ok
        image = cv2.resize(image, (640, 360))
        if writer is None:
            writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
        writer.write(image)
    writer.release()
    cap.release()
    out, mcap = tmp_path / "out.jsonl", tmp_path / "out.mcap"
    assert cli_main.main(["infer", str(clip), "--device", "cpu", "--out", str(out), "--record-mcap", str(mcap)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    counts, _, messages = read(mcap)
    assert counts["/human/pose3d"] == len(lines) == 45
    assert counts["/human/pose3d/image/compressed"] == 45
    poses = [(t, m) for topic, t, m in messages if topic == "/human/pose3d"]
    seen = 0
    for (_, msg), line in zip(poses, lines, strict=True):
        assert [s.id for s in msg.skeletons] == [p["id"] for p in line["people"]]
        for s, p in zip(msg.skeletons, line["people"], strict=True):
            got = np.array([[q.x, q.y, q.z] for q in s.joint_positions])
            np.testing.assert_allclose(got, p["joints_3d_cam_m"], atol=6e-5)
            seen += 1
    assert seen >= 45  # the demo has one or two people in every frame
    stamps = np.array([t for t, _ in poses])
    assert stamps[0] == clip.stat().st_mtime_ns  # the video's own time, not 1970
    np.testing.assert_allclose(np.diff(stamps) / 1e9, 1 / 30, atol=2e-3)


def test_cli_without_the_packages_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    from ros2_ctxpose.cli import main as cli_main

    real_import = builtins.__import__

    def no_mcap(name, *args, **kwargs):
        if name.startswith("mcap"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mcap)
    assert cli_main.main(["infer", str(tmp_path), "--record-mcap", str(tmp_path / "x.mcap")]) == 2
    err = capsys.readouterr().err
    assert "pip install mcap" in err and not os.path.exists(tmp_path / "x.mcap")
