"""tf2_msgs/TFMessage (a system ROS 2's, or the fallback bootstrap builds) crosses DDS intact on /tf."""

from __future__ import annotations

from pathlib import Path

import pytest
from dds_peer import exchange, field_values, unset_fields

pytestmark = [pytest.mark.usefixtures("tf2_messages"), pytest.mark.dds]


def two_bodies():  # noqa: ANN201  (the message class exists only once tf2_msgs is built)
    """A TFMessage with the pelvis frames of two tracked people, as the node broadcasts them."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

    def body(track_id: int) -> TransformStamped:
        return TransformStamped(
            header=Header(stamp=Time(sec=1_700_000_000, nanosec=5_000 + track_id), frame_id="camera_optical_frame"),
            child_frame_id=f"body_{track_id}",
            transform=Transform(
                translation=Vector3(x=0.5 * track_id, y=-0.25, z=2.0 + track_id),
                rotation=Quaternion(x=0.5, y=-0.5, z=0.5, w=0.5 * track_id),
            ),
        )

    return TFMessage(transforms=[body(1), body(2)])


def test_test_message_fills_every_field() -> None:
    assert unset_fields(two_bodies()) == []


def test_tf_message_crosses_dds_between_processes_intact(tmp_path: Path) -> None:
    from rclpy.serialization import deserialize_message
    from tf2_msgs.msg import TFMessage

    raw = exchange("tf2_msgs.msg:TFMessage", "/tf", f"{Path(__file__).stem}:two_bodies", tmp_path)
    received = deserialize_message(raw, TFMessage)

    sent = field_values(two_bodies())
    got = field_values(received)
    assert got.keys() == sent.keys()
    assert {path: got[path] for path in sent if got[path] != sent[path]} == {}
    assert [t.child_frame_id for t in received.transforms] == ["body_1", "body_2"]
