"""ros2_ctxpose's own messages, built by colcon, cross a real DDS link between two processes intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from dds_peer import exchange, field_values, unset_fields

from ros2_ctxpose.core.skeleton import COCO17, H36M17

pytestmark = [pytest.mark.usefixtures("ctxpose_messages"), pytest.mark.dds]

TYPE = "ros2_ctxpose.msg:Skeleton3DArray"


def two_people():  # noqa: ANN201  (the message class exists only once the messages are built)
    """A Skeleton3DArray with two people and every field set to a distinct, non-default value."""
    from builtin_interfaces.msg import Duration, Time
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray

    def person(k: int) -> Skeleton3D:
        joints = [Point(x=0.1 * (j + 1) + k, y=-0.05 * (j + 1) - k, z=3.0 + 0.01 * j + k) for j in range(len(H36M17))]
        return Skeleton3D(
            id=7 + k,
            score=0.5 + 0.25 * k,
            bbox_xyxy=[10.0 + k, 20.0 + k, 110.5 + k, 300.25 + k],
            joint_positions=joints,
            joint_u=[100.0 + 2 * j + k for j in range(len(H36M17))],
            joint_v=[200.0 + 3 * j + k for j in range(len(H36M17))],
            joint_confidence=[0.5 + 0.015625 * j for j in range(len(H36M17))],
            root_position=joints[0],
            root_source=(Skeleton3D.ROOT_FROM_INTRINSICS, Skeleton3D.ROOT_FROM_FLOOR)[k],
            keypoints_2d=[1.0 + 0.5 * i + k for i in range(3 * len(COCO17))],
            root_covariance=[0.01 * (i + 1) + k for i in range(9)],
            placement_note=("floor not used: feet not visible", "from the floor")[k],
        )

    return Skeleton3DArray(
        header=Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id="camera_optical_frame"),
        joint_names=list(H36M17),
        skeletons=[person(0), person(1)],
        processing_latency=Duration(sec=1, nanosec=250_000_000),
    )


def test_test_message_fills_every_field() -> None:
    assert unset_fields(two_people()) == []


def test_joint_layout_constants_match_the_core() -> None:
    from ros2_ctxpose.msg import Skeleton3DArray

    assert Skeleton3DArray.H36M17_JOINTS.split(",") == list(H36M17)
    assert Skeleton3DArray.COCO17_KEYPOINTS.split(",") == list(COCO17)


def test_skeleton_array_crosses_dds_between_processes_intact(tmp_path: Path) -> None:
    from rclpy.serialization import deserialize_message

    from ros2_ctxpose.msg import Skeleton3D, Skeleton3DArray

    raw = exchange(TYPE, "/ctxpose_test/skeletons", f"{Path(__file__).stem}:two_people", tmp_path)
    received = deserialize_message(raw, Skeleton3DArray)

    sent = field_values(two_people())
    got = field_values(received)
    assert got.keys() == sent.keys()
    assert {path: got[path] for path in sent if got[path] != sent[path]} == {}
    # Spot checks that do not go through the builder: the people and their root sources survived.
    assert [s.root_source for s in received.skeletons] == [Skeleton3D.ROOT_FROM_INTRINSICS, Skeleton3D.ROOT_FROM_FLOOR]
    assert received.skeletons[1].keypoints_2d[-1] == pytest.approx(1.0 + 0.5 * 50 + 1)
