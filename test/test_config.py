"""``PipelineConfig``: every setting checked before anything loads, with a message naming it;
``replace`` / ``from_mapping``; which settings may change while running (``DYNAMIC``)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from ros2_ctxpose.core.config import DYNAMIC, FIELDS, ConfigError, PipelineConfig

#: The settings that need the models loaded again, hence never change on a running pipeline.
MODEL_SETTINGS = {
    "backend",
    "device",
    "precision",
    "detector_weights",
    "lifter_weights",
    "imgsz",
    "cpu_threads",
    "detector_flip",
}


def test_defaults_are_valid_and_documented() -> None:
    config = PipelineConfig()
    assert {f.name: getattr(config, f.name) for f in dataclasses.fields(config)} == {
        name: f.default for name, f in FIELDS.items()
    }
    for name, f in FIELDS.items():
        assert f.metadata["description"].strip(), name
        # Every number has a range, every free text setting a rule or is a path.
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            assert f.metadata["range"] is not None, name


def test_every_problem_is_reported_at_once_as_a_value_error() -> None:
    """The CLI and the node catch ``ValueError``; one error names every bad setting, not the first."""
    with pytest.raises(ValueError) as info:
        PipelineConfig(imgsz=500, max_people=0, device="gpu")
    assert isinstance(info.value, ConfigError)
    assert str(info.value).split("; ") == [
        "device must be auto, cpu, cuda or cuda:N, got 'gpu'",
        "imgsz must be a multiple of 32, got 500",
        "max_people must be in [1, 100], got 0",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "tensorrt"}, "backend must be one of auto, torch, openvino, got 'tensorrt'"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        ({"device": "cuda:"}, "device must be auto, cpu, cuda or cuda:N, got 'cuda:'"),
        ({"precision": "fp8"}, "precision must be one of auto, fp32, fp16, bf16, int8, got 'fp8'"),
        ({"imgsz": 500}, "imgsz must be a multiple of 32, got 500"),
        ({"imgsz": 64}, r"imgsz must be in \[160, 1920\], got 64"),
        ({"imgsz": 640.0}, "imgsz must be int, got float 640.0"),
        ({"cpu_threads": -1}, r"cpu_threads must be in \[0, 256\], got -1"),
        ({"person_threshold": 0.0}, r"person_threshold must be in \[0.01, 1\], got 0.0"),
        ({"person_threshold": 1.5}, r"person_threshold must be in \[0.01, 1\], got 1.5"),
        ({"person_threshold": "0.5"}, "person_threshold must be float, got str '0.5'"),
        ({"nms_iou_threshold": 0.0}, r"nms_iou_threshold must be in \[0.05, 1\]"),
        ({"duplicate_oks_threshold": 0.0}, r"duplicate_oks_threshold must be in \[0.05, 1\], got 0.0"),
        ({"keypoint_threshold": -0.1}, r"keypoint_threshold must be in \[0, 1\]"),
        ({"max_people": 0}, r"max_people must be in \[1, 100\], got 0"),
        ({"max_people": True}, "max_people must be int, got bool True"),
        ({"max_people": 2.0}, "max_people must be int, got float 2.0"),
        ({"track_max_age_s": -1.0}, r"track_max_age_s must be in \[0, 60\]"),
        ({"max_image_pixels": 0}, r"max_image_pixels must be in \[1, 1e\+09\], got 0"),
        ({"detector_weights": None}, "detector_weights must be str, got NoneType None"),
    ],
)
def test_invalid_values_are_refused_by_name(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**changes)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        PipelineConfig(imgsz=500, max_people=0, device="gpu")
    problems = str(error.value).split("; ")
    assert [p.split()[0] for p in problems] == ["device", "imgsz", "max_people"]  # in field order


@pytest.mark.parametrize(
    ("changes"),
    [
        {"device": "cuda"},
        {"device": "cuda:1"},
        {"device": "auto"},
        {"imgsz": 160},
        {"imgsz": 1920},
        {"person_threshold": 1},
        {"keypoint_threshold": 0.0},
        {"track_max_age_s": 0},
        {"max_people": 100},
    ],
)
def test_edge_values_are_accepted(changes: dict) -> None:
    config = PipelineConfig(**changes)
    for name, value in changes.items():
        assert getattr(config, name) == value


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PipelineConfig().max_people = 3  # type: ignore[misc]


def test_replace_is_a_validated_copy() -> None:
    base = PipelineConfig()
    changed = base.replace(max_people=3, person_threshold=0.5)
    assert (changed.max_people, changed.person_threshold) == (3, 0.5)
    assert base == PipelineConfig()  # the original is untouched
    with pytest.raises(ConfigError, match=r"unknown settings \['max_persons', 'nonsense'\]"):
        base.replace(max_persons=3, nonsense=1)
    with pytest.raises(ConfigError, match="max_people must be in"):
        base.replace(max_people=0)


def test_from_mapping_takes_the_fields_and_ignores_other_layers_names() -> None:
    values = {"max_people": 4, "imgsz": 320, "camera_frame": "head_camera", "publish_markers": True}
    assert PipelineConfig.from_mapping(values) == PipelineConfig(max_people=4, imgsz=320)
    with pytest.raises(ConfigError, match="imgsz must be a multiple of 32"):
        PipelineConfig.from_mapping({"imgsz": 333, "camera_frame": "x"})


def test_dynamic_settings_are_the_per_frame_ones() -> None:
    assert set(FIELDS) - MODEL_SETTINGS == DYNAMIC
    assert {
        "person_threshold",
        "nms_iou_threshold",
        "duplicate_oks_threshold",
        "keypoint_threshold",
        "max_people",
        "track_max_age_s",
        "floor_frame",
        "max_image_pixels",
    } == DYNAMIC
    assert all(FIELDS[name].metadata["dynamic"] == (name in DYNAMIC) for name in FIELDS)


def test_reading_the_config_does_not_import_torch() -> None:
    """The CLI's flags and the ROS layer's parameters come from this module: it must stay cheap."""
    code = (
        "import sys, ros2_ctxpose.core.config, ros2_ctxpose.cli.config_args; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
