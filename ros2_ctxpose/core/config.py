"""``PipelineConfig``: every setting of the pipeline, one name each, checked before anything loads.

The same field names are the ROS node's parameters (``ros/parameters.py`` derives their
descriptors from the metadata here), the keys of ``config/pose3d.yaml`` and the CLI's flags
(``--person-threshold`` for ``person_threshold``; ``cli/config_args.py``), so a setting never
changes its name between layers. Fields marked ``dynamic`` may change while the pipeline runs
(``Pose3DPipeline.update``); the others need the models loaded again.

Nothing here imports torch: the CLI's ``--help`` and the ROS layer read this module cheaply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: Largest stride of every YOLOv8/YOLO11 pose network, hence the multiple the input size must be;
#: the detector re-checks against its own network's value when it loads.
DETECTOR_STRIDE: Final[int] = 32

BACKENDS: Final[tuple[str, ...]] = ("auto", "torch", "openvino")
PRECISIONS: Final[tuple[str, ...]] = ("auto", "fp32", "fp16", "bf16", "int8")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ConfigError(ValueError):
    """A setting is out of range or inconsistent; the message names it."""


def setting(
    default: Any,
    description: str,
    *,
    dynamic: bool = False,
    range: tuple[float, float] | None = None,  # noqa: A002 - mirrors ParameterDescriptor
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field with what every layer needs to expose it: a description, whether it may
    change at run time, and its valid values (a numeric range, choices or a check function)."""
    meta = {"description": description, "dynamic": dynamic, "range": range, "choices": choices, "check": check}
    return field(default=default, metadata=meta)


def _check_device(value: str) -> str | None:
    return None if _DEVICE.match(value) else f"must be auto, cpu, cuda or cuda:N, got {value!r}"


def imgsz_problem(value: int, stride: int = DETECTOR_STRIDE) -> str | None:
    """Why ``value`` cannot be the detector's input size for a network of ``stride`` (None when it
    can): the one check of ``imgsz``, made by the config, by each detector once its network's
    stride is known, and by the letterbox."""
    return None if value > 0 and value % stride == 0 else f"must be a multiple of {stride}, got {value}"


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of ``Pose3DPipeline`` (see the module docstring for where each name appears)."""

    # --- models: fixed once loaded
    backend: str = setting(
        "auto",
        "Detector runtime: torch, openvino, or auto (torch on CUDA, else OpenVINO "
        "where installed, else torch on the CPU).",
        choices=BACKENDS,
    )
    device: str = setting("auto", "auto, cpu, cuda or cuda:N.", check=_check_device)
    precision: str = setting(
        "auto",
        "Detector precision: fp32, fp16 (CUDA), bf16, int8 (OpenVINO), or auto (the backend's default).",
        choices=PRECISIONS,
    )
    detector_weights: str = setting("", "YOLO11/YOLOv8-pose checkpoint (.pt); empty = the packaged yolo11n-pose.")
    lifter_weights: str = setting("", "Lifter weights (.pt); empty = the packaged ones.")
    imgsz: int = setting(
        640, "Detector input size in pixels (longest side, a multiple of 32).", range=(160, 1920), check=imgsz_problem
    )
    cpu_threads: int = setting(
        0, "CPU threads for inference; 0 = the runtime's default (one per core).", range=(0, 256)
    )
    detector_flip: bool = setting(
        False,
        "Accuracy preset: run the detector on the image and its mirror image and average each "
        "person's keypoints over both (about twice the detector's time).",
    )
    # --- per frame: may change while running
    person_threshold: float = setting(0.25, "Minimum person detection score.", dynamic=True, range=(0.01, 1.0))
    nms_iou_threshold: float = setting(
        0.7, "IoU above which overlapping detections are merged.", dynamic=True, range=(0.05, 1.0)
    )
    duplicate_oks_threshold: float = setting(
        0.5,
        "Keypoint similarity (OKS) above which a lower-scoring detection "
        "is the same person again and is dropped; 1 = keep all.",
        dynamic=True,
        range=(0.05, 1.0),
    )
    keypoint_threshold: float = setting(
        0.3, "Keypoints below this confidence count as unseen.", dynamic=True, range=(0.0, 1.0)
    )
    max_people: int = setting(
        10, "At most this many people per frame (highest scores first).", dynamic=True, range=(1, 100)
    )
    track_max_age_s: float = setting(
        1.0, "Seconds a person may go undetected and keep their id.", dynamic=True, range=(0.0, 60.0)
    )
    # --- placement
    floor_frame: str = setting(
        "",
        "Frame whose z axis points up and whose z = 0 is the floor (e.g. base_footprint); when set, "
        "people are placed with their feet on that floor (the camera's pose comes from TF in the "
        "node, from --camera-pose in the CLI). Empty = place from the image alone.",
        dynamic=True,
    )
    # --- input
    max_image_pixels: int = setting(
        40_000_000,
        "Images declaring more pixels than this are refused before decoding (decompression bombs).",
        dynamic=True,
        range=(1, 1_000_000_000),
    )

    def __post_init__(self) -> None:
        problems = [p for f in dataclasses.fields(self) if (p := field_problem(f, getattr(self, f.name)))]
        if problems:
            raise ConfigError("; ".join(problems))
        for f in dataclasses.fields(self):  # 1 for a float setting is 1.0 (ROS parameters are typed)
            if f.type in ("float", float) and isinstance(getattr(self, f.name), int):
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PipelineConfig:
        """A config from the values whose names are fields (others, e.g. ROS-only ones, ignored)."""
        return cls(**{k: v for k, v in values.items() if k in FIELDS})

    def replace(self, **changes: Any) -> PipelineConfig:
        """A validated copy with ``changes``; unknown names are an error."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise ConfigError(f"unknown settings {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


def field_problem(f: dataclasses.Field, value: Any) -> str | None:
    """Why ``value`` is not acceptable for field ``f`` (None when it is)."""
    meta = f.metadata
    expected = type(f.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        return f"{f.name} must be {expected.__name__}, got {type(value).__name__} {value!r}"
    if meta["choices"] and value not in meta["choices"]:
        return f"{f.name} must be one of {', '.join(meta['choices'])}, got {value!r}"
    low_high = meta["range"]
    if low_high is not None and not (low_high[0] <= value <= low_high[1]):
        return f"{f.name} must be in [{low_high[0]:g}, {low_high[1]:g}], got {value!r}"
    if meta["check"] is not None and (reason := meta["check"](value)):
        return f"{f.name} {reason}"
    return None


#: Every field by name, and the names of those that may change at run time.
FIELDS: Final[dict[str, dataclasses.Field]] = {f.name: f for f in dataclasses.fields(PipelineConfig)}
DYNAMIC: Final[frozenset[str]] = frozenset(n for n, f in FIELDS.items() if f.metadata["dynamic"])
