"""The node's parameters: one dataclass field per parameter, declared with a descriptor.

:class:`NodeSettings` is the single list of parameters: each field carries its default, a
description, a range (which rclpy enforces and tools such as rqt_reconfigure show) and whether it
is read-only (anything whose change needs the model, a subscription or the QoS rebuilt). Values a
range cannot express (choices, device strings, topic and frame names) are checked by
:func:`validate`, registered as an on-set callback, so a bad ``ros2 param set`` is refused with a
reason while the node keeps running. A bad value in the parameter file at start-up is refused by
the same checks; the node then logs why and starts with the default instead of dying.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Union

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    InvalidTopicNameException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.validate_topic_name import validate_topic_name

from ..core.camera import DEFAULT_HFOV_DEG

ParamValue = Union[bool, int, float, str]


def _param(
    default: ParamValue,
    description: str,
    *,
    read_only: bool = False,
    range: Optional[tuple[float, float]] = None,  # noqa: A002 - mirrors ParameterDescriptor
    choices: Optional[tuple[str, ...]] = None,
    check: Optional[Callable[[Any], Optional[str]]] = None,
) -> Any:
    """A dataclass field that is also a ROS parameter (see NodeSettings)."""
    meta = {"description": description, "read_only": read_only, "range": range, "choices": choices,
            "check": check}
    return field(default=default, metadata=meta)


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _check_device(value: str) -> Optional[str]:
    return None if _DEVICE.match(value) else f"device must be auto, cpu, cuda or cuda:N, got {value!r}"


def _check_topic(value: str) -> Optional[str]:
    try:
        validate_topic_name(value)
    except InvalidTopicNameException as exc:
        return f"invalid topic name {value!r}: {exc}"
    return None


def _check_imgsz(value: int) -> Optional[str]:
    return None if value % 32 == 0 else f"must be a multiple of 32 (the detector's largest stride), got {value}"


def _check_frame(value: str) -> Optional[str]:
    # tf2 rejects frame ids with a leading slash (a ROS 1 habit) and whitespace breaks lookups.
    if value.startswith("/") or any(c.isspace() for c in value):
        return f"frame ids must not start with '/' or contain whitespace, got {value!r}"
    return None


@dataclass(frozen=True)
class NodeSettings:
    """Every parameter of pose3d_node (names, defaults and docs; config/pose3d.yaml mirrors it)."""

    # Inputs. Relative names, so a namespace applies to them; image_transport follows the
    # image_transport convention (compressed -> "<image_topic>/compressed").
    image_topic: str = _param("camera/image_raw", "Input sensor_msgs/Image topic.", read_only=True,
                              check=_check_topic)
    image_transport: str = _param("raw", "raw: sensor_msgs/Image on image_topic; compressed: "
                                  "sensor_msgs/CompressedImage (JPEG/PNG) on <image_topic>/compressed.",
                                  read_only=True, choices=("raw", "compressed"))
    camera_info_topic: str = _param("camera/camera_info", "sensor_msgs/CameraInfo of the image (intrinsics, "
                                    "plumb_bob distortion).", read_only=True, check=_check_topic)
    use_depth: bool = _param(False, "Place people with an aligned depth image instead of monocular "
                             "reprojection.", read_only=True)
    depth_topic: str = _param("camera/aligned_depth_to_color/image_raw", "Depth image aligned to the colour "
                              "image (16UC1 mm or 32FC1 m); used when use_depth is true.", read_only=True,
                              check=_check_topic)
    depth_max_offset_s: float = _param(0.05, "Largest stamp difference between an image and the depth image "
                                       "paired with it.", range=(0.0, 1.0))
    depth_wait_s: float = _param(0.1, "How long a colour frame waits for its depth image to arrive (aligned "
                                 "depth usually comes a little later).", range=(0.0, 1.0))
    qos_reliability: str = _param("best_effort", "Reliability of the camera subscriptions (best_effort also "
                                  "matches reliable publishers).", read_only=True,
                                  choices=("best_effort", "reliable"))
    qos_depth: int = _param(5, "History depth of the camera subscriptions (only the newest frame is "
                            "processed either way).", read_only=True, range=(1, 100))
    # Outputs: <output_topic>, <output_topic>/markers, <output_topic>/image; TF on /tf.
    output_topic: str = _param("human/pose3d", "Skeleton3DArray topic; markers and the overlay image are "
                               "published under it.", read_only=True, check=_check_topic)
    frame_id: str = _param("", "Camera optical frame of the outputs; empty = the image header's frame_id.",
                           check=_check_frame)
    publish_tf: bool = _param(True, "Publish a body_<id> TF frame per person (REP 155).")
    publish_joint_frames: bool = _param(False, "Also publish one TF frame per joint (<joint>_<id>, REP 155).")
    publish_markers: bool = _param(True, "Publish RViz markers (joints and bones per person).")
    publish_image: bool = _param(True, "Publish the 2D overlay image (drawn only while someone subscribes).")
    marker_lifetime_s: float = _param(0.5, "Lifetime of markers, so people who left disappear.",
                                      range=(0.05, 10.0))
    # Camera model when no CameraInfo arrives.
    assumed_hfov_deg: float = _param(DEFAULT_HFOV_DEG, "Horizontal field of view assumed while no CameraInfo has been "
                                     "received (distances are then not metric).", range=(10.0, 170.0))
    # Model: changing any of these needs the model reloaded, hence read-only.
    device: str = _param("auto", "auto, cpu, cuda or cuda:N.", read_only=True, check=_check_device)
    fp16: bool = _param(True, "Half precision when running on CUDA.", read_only=True)
    cpu_bf16: bool = _param(False, "bfloat16 autocast for the detector on CPU: much faster where the CPU has "
                            "native bf16 (AVX-512 BF16/AMX), keypoints move by 1-2 px.", read_only=True)
    detector_weights: str = _param("", "YOLO11-pose checkpoint; empty = the packaged yolo11n-pose.",
                                   read_only=True)
    lifter_weights: str = _param("", "Lifter weights; empty = the packaged ones.", read_only=True)
    imgsz: int = _param(640, "Detector input size in pixels (multiple of 32).", read_only=True,
                        range=(160, 1920), check=_check_imgsz)
    cpu_threads: int = _param(0, "Torch CPU threads for inference; 0 = torch's default (one per core). "
                              "1 is faster when other processes share a small CPU.", read_only=True,
                              range=(0, 256))
    track_max_age: int = _param(5, "Frames a person may go undetected and keep their id.", read_only=True,
                                range=(0, 300))
    # Thresholds: applied to the running pipeline at once.
    person_threshold: float = _param(0.25, "Minimum person detection score.",
                                     range=(0.01, 1.0))
    nms_iou_threshold: float = _param(0.7, "IoU above which overlapping detections are merged.",
                                      range=(0.05, 1.0))
    duplicate_oks_threshold: float = _param(0.5, "Keypoint similarity (OKS) above which a lower-scoring "
                                            "detection is the same person again and is dropped; 1 = keep all.",
                                            range=(0.05, 1.0))
    keypoint_threshold: float = _param(0.3, "Keypoints below this confidence count as unseen.",
                                       range=(0.0, 1.0))
    max_people: int = _param(10, "At most this many people per frame (highest scores first).",
                             range=(1, 100))


def descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    """The ParameterDescriptor of one NodeSettings field."""
    meta = f.metadata
    desc = ParameterDescriptor(name=f.name, description=meta["description"], read_only=meta["read_only"])
    if meta["choices"]:
        desc.additional_constraints = "one of: " + ", ".join(meta["choices"])
    low_high = meta["range"]
    if low_high is not None:
        if isinstance(f.default, int):
            desc.integer_range = [IntegerRange(from_value=int(low_high[0]), to_value=int(low_high[1]), step=0)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(low_high[0]),
                                                            to_value=float(low_high[1]), step=0.0)]
    return desc


_FIELDS = {f.name: f for f in dataclasses.fields(NodeSettings)}


def problems(params: Iterable[Parameter]) -> list[str]:
    """Why each of ``params`` is unacceptable beyond what its descriptor checks (empty if all fine).

    rclpy checks types and ranges before on-set callbacks run, so values here have the right type.
    """
    reasons = []
    for param in params:
        f = _FIELDS.get(param.name)
        if f is None:
            continue  # rclpy's own parameters (use_sim_time, ...) are not ours to judge
        choices, check = f.metadata["choices"], f.metadata["check"]
        if choices and param.value not in choices:
            reasons.append(f"{param.name} must be one of {', '.join(choices)}, got {param.value!r}")
        elif check is not None and (reason := check(param.value)):
            reasons.append(f"{param.name}: {reason}")
    return reasons


def validate(params: list[Parameter]) -> SetParametersResult:
    """on-set-parameters callback: refuse the whole set, with the reasons, if any value is invalid."""
    reasons = problems(params)
    return SetParametersResult(successful=not reasons, reason="; ".join(reasons))


def declare(node: Node) -> NodeSettings:
    """Declare every NodeSettings parameter on ``node`` and return their values.

    Installs :func:`validate` first, so that values from the parameter file pass the same checks as
    later changes; a refused start-up value is logged with its reason and replaced by the default.
    """
    node.add_on_set_parameters_callback(validate)
    for f in dataclasses.fields(NodeSettings):
        try:
            node.declare_parameter(f.name, f.default, descriptor(f))
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            node.get_logger().error(f"parameter {f.name}: {exc}; using the default {f.default!r}")
            node.declare_parameter(f.name, f.default, descriptor(f), ignore_override=True)
    return current(node)


def current(node: Node) -> NodeSettings:
    """The node's present parameter values as NodeSettings."""
    return NodeSettings(**{f.name: node.get_parameter(f.name).value for f in dataclasses.fields(NodeSettings)})


def updated(settings: NodeSettings, params: Iterable[Parameter]) -> NodeSettings:
    """``settings`` with the (already accepted) ``params`` applied; others' names are ignored."""
    changes = {p.name: p.value for p in params if p.name in _FIELDS}
    return dataclasses.replace(settings, **changes) if changes else settings
