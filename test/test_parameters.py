"""pose3d_node's parameters: descriptors, ranges, validation, and the shipped config/pose3d.yaml.

Declared on a real rclpy node (no model needed: the parameters module works on any node), so the
checks below are rclpy's own range and read-only enforcement plus the package's on-set callback.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

import rclpy  # noqa: E402
import yaml  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ros2_ctxpose.ros import parameters  # noqa: E402
from ros2_ctxpose.ros.parameters import NodeSettings  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "pose3d.yaml"
FIELDS = {f.name: f for f in dataclasses.fields(NodeSettings)}


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(context=ctx, args=[])
    yield ctx
    rclpy.shutdown(context=ctx)


def make_node(context: Context, overrides: list[Parameter] | None = None) -> Node:
    return Node("pose3d_node", context=context, parameter_overrides=overrides or [])


@pytest.fixture
def node(context):
    node = make_node(context)
    parameters.declare(node)
    yield node
    node.destroy_node()


def test_defaults_are_declared_with_descriptors(node: Node) -> None:
    assert parameters.current(node) == NodeSettings()
    for name, f in FIELDS.items():
        desc = node.describe_parameter(name)
        assert desc.description, name
        assert desc.read_only == f.metadata["read_only"], name
        if f.metadata["range"] is not None:
            assert desc.floating_point_range or desc.integer_range, name


def test_dynamic_values_are_accepted(node: Node) -> None:
    result = node.set_parameters([Parameter("assumed_hfov_deg", value=75.0),
                                  Parameter("publish_tf", value=False),
                                  Parameter("frame_id", value="front_camera_optical_frame"),
                                  Parameter("max_people", value=3)])
    assert all(r.successful for r in result), [r.reason for r in result]
    assert parameters.current(node).assumed_hfov_deg == 75.0


@pytest.mark.parametrize("name,value,reason", [
    ("assumed_hfov_deg", 500.0, "range"),
    ("person_threshold", -0.1, "range"),
    ("max_people", 0, "range"),
    ("marker_lifetime_s", "long", "type"),
    ("publish_tf", 1, "type"),
    ("frame_id", "/camera", "frame ids"),
    ("frame_id", "my camera", "frame ids"),
    ("device", "cuda:0", "read-only"),
    ("image_topic", "other/topic", "read-only"),
    ("imgsz", 320, "read-only"),
])
def test_invalid_values_are_refused_with_a_reason(node: Node, name: str, value, reason: str) -> None:
    before = node.get_parameter(name).value
    (result,) = node.set_parameters([Parameter(name, value=value)])
    assert not result.successful
    assert reason in result.reason.lower().replace("read only", "read-only")
    assert node.get_parameter(name).value == before


@pytest.mark.parametrize("name,value,fragment", [
    ("device", "gpu", "device must be"),
    ("device", "cuda:x", "device must be"),
    ("qos_reliability", "sometimes", "must be one of"),
    ("image_transport", "theora", "must be one of"),
    ("image_topic", "bad topic name", "invalid topic name"),
    ("imgsz", 650, "multiple of 32"),
])
def test_validation_rules(name: str, value, fragment: str) -> None:
    result = parameters.validate([Parameter(name, value=value)])
    assert not result.successful and fragment in result.reason


def test_invalid_start_up_values_fall_back_to_defaults(context: Context) -> None:
    """A bad parameter file must not kill the node: the value is refused and the default used."""
    node = make_node(context, [Parameter("assumed_hfov_deg", value=500.0),
                               Parameter("device", value="tpu"),
                               Parameter("qos_depth", value="deep"),
                               Parameter("max_people", value=4)])
    try:
        settings = parameters.declare(node)
        assert settings.assumed_hfov_deg == NodeSettings.assumed_hfov_deg
        assert settings.device == "auto" and settings.qos_depth == NodeSettings.qos_depth
        assert settings.max_people == 4  # valid overrides still apply
    finally:
        node.destroy_node()


def test_updated_applies_accepted_changes_only_to_known_names() -> None:
    settings = parameters.updated(NodeSettings(), [Parameter("publish_image", value=False),
                                                   Parameter("use_sim_time", value=True)])
    assert settings.publish_image is False and settings == dataclasses.replace(NodeSettings(), publish_image=False)


def config_values() -> dict[str, object]:
    return yaml.safe_load(CONFIG.read_text())["/**/pose3d_node"]["ros__parameters"]


def test_config_lists_every_parameter_with_its_default() -> None:
    values = config_values()
    assert set(values) == set(FIELDS)
    for name, value in values.items():
        assert value == FIELDS[name].default, name
        assert type(value) is type(FIELDS[name].default), name


@pytest.mark.parametrize("namespace", ["", "/robot1"])
def test_config_file_applies_through_rcl(context: Context, tmp_path: Path, namespace: str) -> None:
    """rcl's own --params-file parsing matches the file's wildcard node key, in any namespace."""
    config = yaml.safe_load(CONFIG.read_text())
    changed = {"assumed_hfov_deg": 72.5, "frame_id": "head_camera_optical_frame", "max_people": 3}
    config["/**/pose3d_node"]["ros__parameters"].update(changed)
    path = tmp_path / "pose3d.yaml"
    path.write_text(yaml.safe_dump(config))
    node = Node("pose3d_node", namespace=namespace, context=context,
                cli_args=["--ros-args", "--params-file", str(path)])
    try:
        assert parameters.declare(node) == dataclasses.replace(NodeSettings(), **changed)
    finally:
        node.destroy_node()


def test_every_parameter_is_documented() -> None:
    doc = (CONFIG.parents[1] / "docs" / "NODE.md").read_text()
    assert [name for name in FIELDS if f"| `{name}` |" not in doc] == []
