"""The node's parameters: the pipeline's settings plus the ROS wiring, declared with descriptors.

Two tables, one mechanism. ``core.config.PipelineConfig`` lists everything the pipeline can be
told (models, thresholds, tracking, input limits); :class:`RosSettings` lists what only the node
has (transport, depth pairing, input rate, outputs, recording, lifecycle start). Both are dataclasses whose fields carry a
description, a range or choices, and whether the value may change while the node runs; this
module turns each field into a ROS parameter with a ``ParameterDescriptor`` (read-only unless
dynamic), so the node, ``config/pose3d.yaml`` and the CLI flags (``cli/config_args.py``) all use
the same names and defaults. Values a range cannot express (choices, device strings, frame names)
are checked by :func:`validate`, registered as an on-set callback: a bad ``ros2 param set`` is
refused with a reason while the node keeps running, and a bad start-up value is logged and
replaced by the default.

QoS is not a parameter of these tables: every topic's QoS can be overridden with rclpy's standard
``qos_overrides.<topic>.<publisher|subscription>.<policy>`` parameters (``QoSOverridingOptions``),
and topic names are fixed relative names that remapping changes (docs/NODE.md).

Generated from the tables: ``config/pose3d.yaml`` (``python -m ros2_ctxpose.ros.parameters``) and
the parameter table of docs/NODE.md (``--markdown``); tests compare both with the files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..core.camera import DEFAULT_HFOV_DEG
from ..core.config import PipelineConfig, field_problem, setting


def check_frame(value: str) -> str | None:
    # tf2 rejects frame ids with a leading slash (a ROS 1 habit) and whitespace breaks lookups.
    if value.startswith("/") or any(c.isspace() for c in value):
        return f"frame ids must not start with '/' or contain whitespace, got {value!r}"
    return None


@dataclass(frozen=True)
class RosSettings:
    """The parameters only the node has (config/pose3d.yaml lists them after the pipeline's)."""

    image_transport: str = setting(
        "raw",
        "raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage (JPEG/PNG) on 'image/compressed'.",
        choices=("raw", "compressed"),
    )
    use_depth: bool = setting(
        False,
        "Place people with an aligned depth image ('depth' topic, 16UC1 mm or "
        "32FC1 m) instead of monocular reprojection.",
    )
    depth_max_offset_s: float = setting(
        0.05,
        "Largest stamp difference between an image and the depth image paired with it.",
        dynamic=True,
        range=(0.0, 1.0),
    )
    depth_wait_s: float = setting(
        0.1,
        "How long a colour frame waits for its depth image to arrive (aligned depth usually comes a little later).",
        dynamic=True,
        range=(0.0, 1.0),
    )
    max_input_rate_hz: float = setting(
        0.0,
        "Process at most this many frames per second (later frames are dropped "
        "on arrival, before any decoding); 0 = as many as the model keeps up with.",
        dynamic=True,
        range=(0.0, 1000.0),
    )
    frame_id: str = setting(
        "",
        "Camera optical frame of the outputs; empty = the image header's frame_id.",
        dynamic=True,
        check=check_frame,
    )
    publish_tf: bool = setting(True, "Publish a body_<id> TF frame per person (REP 155).", dynamic=True)
    publish_joint_frames: bool = setting(
        False, "Also publish one TF frame per joint (<joint>_<id>, REP 155).", dynamic=True
    )
    publish_markers: bool = setting(True, "Publish RViz markers (joints and bones per person).", dynamic=True)
    publish_image: bool = setting(
        True, "Publish the 2D overlay image (drawn only while someone subscribes).", dynamic=True
    )
    marker_lifetime_s: float = setting(
        0.5, "Lifetime of markers, so people who left disappear.", dynamic=True, range=(0.05, 10.0)
    )
    assumed_hfov_deg: float = setting(
        DEFAULT_HFOV_DEG,
        "Horizontal field of view assumed while no usable "
        "CameraInfo has been received (distances are then not metric).",
        dynamic=True,
        range=(10.0, 170.0),
    )
    tf_timeout_s: float = setting(
        0.05,
        "With floor_frame set: how long a frame waits for the camera's transform to the floor at its "
        "stamp to arrive in TF before it is placed from the image alone.",
        dynamic=True,
        range=(0.0, 1.0),
    )
    processing_delay_s: float = setting(
        0.0,
        "For tests and benchmarks only: hold every frame this much longer before processing it, as a "
        "slower model would, so that behaviour under overload can be checked on any machine; 0 = off.",
        dynamic=True,
        range=(0.0, 10.0),
    )
    record_mcap: str = setting(
        "",
        "Also write every published result to this MCAP file (Foxglove opens it: "
        "skeletons as a 3D scene); opened on configure, closed on cleanup; empty = off.",
    )
    autostart: bool = setting(
        False,
        "Configure and activate at start-up without a lifecycle manager (for "
        "`ros2 run`); false = wait in 'unconfigured' for the lifecycle transitions, which the "
        "launch file sends.",
    )


#: Every parameter of the node by name: the pipeline's first, then the node's own.
FIELDS: dict[str, dataclasses.Field] = {
    f.name: f for table in (PipelineConfig, RosSettings) for f in dataclasses.fields(table)
}


def descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    """The ParameterDescriptor of one field."""
    meta = f.metadata
    desc = ParameterDescriptor(name=f.name, description=meta["description"], read_only=not meta["dynamic"])
    if meta["choices"]:
        desc.additional_constraints = "one of: " + ", ".join(meta["choices"])
    low_high = meta["range"]
    if low_high is not None:
        if isinstance(f.default, int) and not isinstance(f.default, bool):
            desc.integer_range = [IntegerRange(from_value=int(low_high[0]), to_value=int(low_high[1]), step=0)]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(low_high[0]), to_value=float(low_high[1]), step=0.0)
            ]
    return desc


def problems(params: Iterable[Parameter]) -> list[str]:
    """Why each of ``params`` is unacceptable beyond what its descriptor checks (empty if all fine).

    rclpy checks types and ranges before on-set callbacks run; the same checks run here again
    (``field_problem``) together with choices and check functions, so the node and the CLI refuse
    exactly the same values.
    """
    reasons = []
    for param in params:
        f = FIELDS.get(param.name)
        if f is None:
            continue  # rclpy's own parameters (use_sim_time, ...) are not ours to judge
        if (reason := field_problem(f, param.value)) is not None:
            reasons.append(reason)
    return reasons


def validate(params: list[Parameter]) -> SetParametersResult:
    """on-set-parameters callback: refuse the whole set, with the reasons, if any value is invalid."""
    reasons = problems(params)
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))


def declare(node: Node) -> tuple[PipelineConfig, RosSettings]:
    """Declare every parameter on ``node`` and return their values.

    Installs :func:`validate` first, so that values from the parameter file pass the same checks as
    later changes; a refused start-up value is logged with its reason and replaced by the default.
    """
    node.add_on_set_parameters_callback(validate)
    for f in FIELDS.values():
        try:
            node.declare_parameter(f.name, f.default, descriptor(f))
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            node.get_logger().error(f"parameter {f.name}: {exc}; using the default {f.default!r}")
            node.declare_parameter(f.name, f.default, descriptor(f), ignore_override=True)
    return current(node)


def current(node: Node) -> tuple[PipelineConfig, RosSettings]:
    """The node's present parameter values."""
    values = {name: node.get_parameter(name).value for name in FIELDS}
    return split(values)


def split(values: dict[str, Any]) -> tuple[PipelineConfig, RosSettings]:
    """Parameter values by name -> the pipeline's config and the node's own settings."""
    ros_names = {f.name for f in dataclasses.fields(RosSettings)}
    return (PipelineConfig.from_mapping(values), RosSettings(**{k: v for k, v in values.items() if k in ros_names}))


def changes(params: Iterable[Parameter]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(accepted) ``params`` as pipeline changes and node-setting changes; others' names ignored."""
    ros_names = {f.name for f in dataclasses.fields(RosSettings)}
    pipeline = {p.name: p.value for p in params if p.name in FIELDS and p.name not in ros_names}
    ros = {p.name: p.value for p in params if p.name in ros_names}
    return pipeline, ros


def parameters_yaml() -> str:
    """config/pose3d.yaml as generated from the two tables: every parameter with its default,
    description and whether it may change at run time. The file in the repository is this text
    (a test compares them); regenerate it with ``python -m ros2_ctxpose.ros.parameters``."""
    lines = [
        "# Parameters of pose3d_node (ros2_ctxpose), every one with its default. Generated by",
        "# `python -m ros2_ctxpose.ros.parameters > config/pose3d.yaml` from core/config.py (pipeline)",
        "# and ros/parameters.py (node); ranges and choices: `ros2 param describe`. [dynamic] parameters",
        "# may change while the node runs; the others are read when it configures.",
        "/**/pose3d_node:",
        "  ros__parameters:",
    ]
    for title, table in (("pipeline (same names as the ctxpose CLI flags)", PipelineConfig), ("node", RosSettings)):
        lines.append(f"    # --- {title}")
        for f in dataclasses.fields(table):
            dynamic = " [dynamic]" if f.metadata["dynamic"] else ""
            lines.append(f"    # {f.metadata['description']}{dynamic}")
            lines.append(f"    {f.name}: {_yaml_value(f.default)}")
    return "\n".join(lines) + "\n"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def parameters_markdown() -> str:
    """The parameter table of docs/NODE.md, generated from the two tables (a test compares)."""
    rows = ["| Name | Default | Range / choices | Changes at run time | Meaning |", "|---|---|---|---|---|"]
    for table in (PipelineConfig, RosSettings):
        for f in dataclasses.fields(table):
            meta = f.metadata
            if meta["choices"]:
                valid = " / ".join(meta["choices"])
            elif meta["range"] is not None:
                valid = "[{}, {}]".format(*(_markdown_number(v) for v in meta["range"]))
            else:
                valid = ""
            dynamic = "yes" if meta["dynamic"] else ""
            description = meta["description"].replace("|", "\\|").replace("<", "\\<")
            rows.append(f"| `{f.name}` | `{_yaml_value(f.default)}` | {valid} | {dynamic} | {description} |")
    return "\n".join(rows) + "\n"


def _markdown_number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 10_000 else f"{value:g}"


if __name__ == "__main__":
    import sys

    print(parameters_markdown() if "--markdown" in sys.argv[1:] else parameters_yaml(), end="")
