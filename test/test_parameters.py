"""pose3d_node's parameters: derived from the pipeline's config, with descriptors, ranges and
validation; and the one-name-per-setting rule across the node, config/pose3d.yaml and the CLI.

Declared on a real rclpy node (no model needed: the parameters module works on any node), so the
checks below are rclpy's own range and read-only enforcement plus the package's on-set callback.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

import yaml  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ros2_ctxpose.core.config import PipelineConfig  # noqa: E402
from ros2_ctxpose.ros import parameters  # noqa: E402
from ros2_ctxpose.ros.parameters import FIELDS, RosSettings  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "pose3d.yaml"


def make_node(context: Context, overrides: list[Parameter] | None = None) -> Node:
    return Node("pose3d_node", context=context, parameter_overrides=overrides or [])


@pytest.fixture
def node(context):
    node = make_node(context)
    parameters.declare(node)
    yield node
    node.destroy_node()


def test_defaults_are_declared_with_descriptors(node: Node) -> None:
    assert parameters.current(node) == (PipelineConfig(), RosSettings())
    for name, f in FIELDS.items():
        desc = node.describe_parameter(name)
        assert desc.description, name
        assert desc.read_only == (not f.metadata["dynamic"]), name
        if f.metadata["range"] is not None:
            assert desc.floating_point_range or desc.integer_range, name


def test_every_pipeline_setting_is_a_node_parameter_with_the_same_default() -> None:
    for f in dataclasses.fields(PipelineConfig):
        assert f.name in FIELDS and FIELDS[f.name].default == f.default, f.name


def test_dynamic_values_are_accepted(node: Node) -> None:
    result = node.set_parameters(
        [
            Parameter("assumed_hfov_deg", value=75.0),
            Parameter("publish_tf", value=False),
            Parameter("frame_id", value="front_camera_optical_frame"),
            Parameter("max_people", value=3),
            Parameter("track_max_age_s", value=2.5),
        ]
    )
    assert all(r.successful for r in result), [r.reason for r in result]
    config, ros = parameters.current(node)
    assert ros.assumed_hfov_deg == 75.0 and config.max_people == 3 and config.track_max_age_s == 2.5


@pytest.mark.parametrize(
    "name,value,reason",
    [
        ("assumed_hfov_deg", 500.0, "range"),
        ("person_threshold", -0.1, "range"),
        ("max_people", 0, "range"),
        ("marker_lifetime_s", "long", "type"),
        ("publish_tf", 1, "type"),
        ("frame_id", "/camera", "frame ids"),
        ("frame_id", "my camera", "frame ids"),
        ("device", "cuda:0", "read-only"),
        ("backend", "openvino", "read-only"),
        ("imgsz", 320, "read-only"),
        ("autostart", True, "read-only"),
        ("record_mcap", "/tmp/poses.mcap", "read-only"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(node: Node, name: str, value, reason: str) -> None:
    before = node.get_parameter(name).value
    (result,) = node.set_parameters([Parameter(name, value=value)])
    assert not result.successful
    assert reason in result.reason.lower().replace("read only", "read-only")
    assert node.get_parameter(name).value == before


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("device", "gpu", "device must be"),
        ("device", "cuda:x", "device must be"),
        ("backend", "tensorrt", "must be one of"),
        ("precision", "fp8", "must be one of"),
        ("image_transport", "theora", "must be one of"),
        ("frame_id", "/optical", "frame ids"),
        ("imgsz", 650, "multiple of 32"),
    ],
)
def test_validation_rules(name: str, value, fragment: str) -> None:
    result = parameters.validate([Parameter(name, value=value)])
    assert not result.successful and fragment in result.reason


def test_invalid_start_up_values_fall_back_to_defaults(context: Context) -> None:
    """A bad parameter file must not kill the node: the value is refused and the default used."""
    node = make_node(
        context,
        [
            Parameter("assumed_hfov_deg", value=500.0),
            Parameter("device", value="tpu"),
            Parameter("image_transport", value=7),
            Parameter("max_people", value=4),
        ],
    )
    try:
        config, ros = parameters.declare(node)
        assert ros.assumed_hfov_deg == RosSettings.assumed_hfov_deg
        assert config.device == "auto" and ros.image_transport == "raw"
        assert config.max_people == 4  # valid overrides still apply
    finally:
        node.destroy_node()


def test_changes_split_accepted_values_between_pipeline_and_node() -> None:
    pipeline, ros = parameters.changes(
        [
            Parameter("publish_image", value=False),
            Parameter("person_threshold", value=0.4),
            Parameter("use_sim_time", value=True),
        ]
    )
    assert pipeline == {"person_threshold": 0.4} and ros == {"publish_image": False}


def test_config_file_is_the_generated_table() -> None:
    """config/pose3d.yaml is generated from the two tables; a setting added, renamed or given a new
    default without regenerating it fails here."""
    assert CONFIG.read_text() == parameters.parameters_yaml(), (
        "regenerate: python -m ros2_ctxpose.ros.parameters > config/pose3d.yaml"
    )
    values = yaml.safe_load(CONFIG.read_text())["/**/pose3d_node"]["ros__parameters"]
    assert values == {name: f.default for name, f in FIELDS.items()}
    assert all(type(values[name]) is type(f.default) for name, f in FIELDS.items())


def test_cli_flags_are_the_pipeline_settings() -> None:
    from ros2_ctxpose.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("infer", "eval", "bench"):
        dests = {a.dest: a for a in sub.choices[command]._actions}
        for f in dataclasses.fields(PipelineConfig):
            assert f.name in dests, f"ctxpose {command} lacks --{f.name.replace('_', '-')}"
            default = dests[f.name].default
            assert default == f.default or default == [f.default], (command, f.name)


def test_infer_flags_shared_with_the_node_have_its_names_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """``ctxpose infer``'s camera and recording flags are the node's parameters of the same name
    (``--assumed-hfov-deg``, ``--record-mcap``, ``--frame-id``); the old spellings still work and
    say which name to use."""
    from ros2_ctxpose.cli.main import build_parser
    from ros2_ctxpose.core.camera import DEFAULT_FRAME_ID

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest: a.default for a in sub.choices["infer"]._actions if a.default is not argparse.SUPPRESS}
    assert dests["assumed_hfov_deg"] == RosSettings.assumed_hfov_deg
    assert dests["frame_id"] == DEFAULT_FRAME_ID and dests["record_mcap"] is None
    assert "record_mcap" in FIELDS and "frame_id" in FIELDS
    args = parser.parse_args(["infer", "x.jpg", "--record-mcap", "a.mcap", "--assumed-hfov-deg", "70"])
    assert (str(args.record_mcap), args.assumed_hfov_deg) == ("a.mcap", 70.0)
    assert capsys.readouterr().err == ""
    old = parser.parse_args(["infer", "x.jpg", "--mcap", "b.mcap", "--fov", "80"])
    assert (str(old.record_mcap), old.assumed_hfov_deg) == ("b.mcap", 80.0)
    err = capsys.readouterr().err
    assert "--mcap is deprecated, use --record-mcap" in err and "--fov is deprecated, use --assumed-hfov-deg" in err
    assert "--fov" not in sub.choices["infer"].format_help()


@pytest.mark.parametrize("namespace", ["", "/robot1"])
def test_config_file_applies_through_rcl(context: Context, tmp_path: Path, namespace: str) -> None:
    """rcl's own --params-file parsing matches the file's wildcard node key, in any namespace."""
    config = yaml.safe_load(CONFIG.read_text())
    changed = {"assumed_hfov_deg": 72.5, "frame_id": "head_camera_optical_frame", "max_people": 3}
    config["/**/pose3d_node"]["ros__parameters"].update(changed)
    path = tmp_path / "pose3d.yaml"
    path.write_text(yaml.safe_dump(config))
    node = Node(
        "pose3d_node", namespace=namespace, context=context, cli_args=["--ros-args", "--params-file", str(path)]
    )
    try:
        assert parameters.declare(node) == (
            PipelineConfig(max_people=3),
            RosSettings(assumed_hfov_deg=72.5, frame_id="head_camera_optical_frame"),
        )
    finally:
        node.destroy_node()


def test_every_parameter_is_documented() -> None:
    doc = (CONFIG.parents[1] / "docs" / "NODE.md").read_text()
    assert [name for name in FIELDS if f"| `{name}` |" not in doc] == []


def test_documented_table_is_the_generated_one() -> None:
    """docs/NODE.md's parameter table is generated from the two tables, like config/pose3d.yaml."""
    doc = (CONFIG.parents[1] / "docs" / "NODE.md").read_text()
    begin, end = "<!-- parameters:begin -->\n", "<!-- parameters:end -->"
    assert begin in doc and end in doc
    table = doc[doc.index(begin) + len(begin) : doc.index(end)]
    assert table == parameters.parameters_markdown(), (
        "regenerate the table: python -m ros2_ctxpose.ros.parameters --markdown (between the markers in docs/NODE.md)"
    )
