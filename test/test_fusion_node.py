"""pose3d_fusion in-process: its parameters (descriptors, refusals, bad start-up values) and lifecycle."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("ctxpose_messages", "tf2_messages")


def make_node(context, **overrides):
    from rclpy.parameter import Parameter

    from ros2_ctxpose.ros.fusion_node import FusionNode

    return FusionNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])


def test_parameters_have_descriptors_and_bad_values_are_refused(context) -> None:
    from rclpy.parameter import Parameter

    node = make_node(context, inputs=["front/human/pose3d", "rear/human/pose3d", "side/human/pose3d"])
    try:
        assert node.settings.inputs == ("front/human/pose3d", "rear/human/pose3d", "side/human/pose3d")
        assert node.describe_parameter("inputs").read_only
        assert not node.describe_parameter("max_wait_s").read_only
        for name, value, reason in (
            ("method", "median", "one of"),
            ("max_wait_s", 9.0, "out of range"),  # the descriptor's range, checked by rclpy
        ):
            result = node.set_parameters([Parameter(name, value=value)])[0]
            assert not result.successful and reason in result.reason, (name, result.reason)
        assert node.set_parameters([Parameter("max_wait_s", value=0.3)])[0].successful
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    "overrides", [{"inputs": ["cam0/human/pose3d", "cam0/human/pose3d"]}, {"fusion_frame": "/map"}]
)
def test_a_bad_start_up_value_is_replaced_by_the_default(context, overrides: dict) -> None:
    from ros2_ctxpose.ros.fusion_node import FusionSettings

    node = make_node(context, **overrides)
    try:
        name = next(iter(overrides))
        assert getattr(node.settings, name) == getattr(FusionSettings(), name)
    finally:
        node.destroy_node()


def test_lifecycle_configure_activate_deactivate_cleanup(context) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    node = make_node(context)
    try:
        for transition in (
            node.trigger_configure,
            node.trigger_activate,
            node.trigger_deactivate,
            node.trigger_cleanup,
        ):
            assert transition() == TransitionCallbackReturn.SUCCESS
        assert node.get_subscriptions_info_by_topic("/cam0/human/pose3d") == []
    finally:
        node.destroy_node()


def test_shutdown_finishes_the_node_and_keeps_rclpys_subscriptions(context) -> None:
    """After the lifecycle shutdown transition ``finished`` is done (the executable then exits, as
    pose3d_node does); deactivation removes only the camera inputs, never rclpy's own
    subscriptions (the /clock one of use_sim_time, parameter events)."""
    from rclpy.lifecycle import TransitionCallbackReturn

    node = make_node(context, use_sim_time=True)

    def executor_sees_clock() -> bool:  # what the executor waits on, not only what exists in the graph
        return any(sub.topic_name == "/clock" for sub in node.subscriptions)

    try:
        assert executor_sees_clock()
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert executor_sees_clock(), "deactivate removed rclpy's /clock subscription"
        assert not node.finished.done()
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
        assert node.finished.done()
    finally:
        node.destroy_node()
