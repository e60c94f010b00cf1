"""launch/multi_camera.launch.py, evaluated as test_launch_file.py evaluates pose3d.launch.py (skips
where launch / launch_ros are not installed: they come with a ROS 2 distribution, not the wheels)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip(
    "launch", reason="launch is not installed (it ships with a ROS 2 distribution, not the PyPI wheels)"
)
pytest.importorskip("launch_ros", reason="launch_ros is not installed (it ships with a ROS 2 distribution)")

from launch import LaunchContext  # noqa: E402
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription  # noqa: E402
from launch_ros.actions import LifecycleNode  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "multi_camera.launch.py"


@pytest.fixture(scope="module")
def launch_module():
    spec = importlib.util.spec_from_file_location("multi_camera_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(module, **arguments: str) -> list:
    context = LaunchContext()
    declared = {
        a.name: a for a in module.generate_launch_description().entities if isinstance(a, DeclareLaunchArgument)
    }
    assert not set(arguments) - set(declared)
    for name, argument in declared.items():
        default = "".join(s.perform(context) for s in argument.default_value)
        context.launch_configurations[name] = arguments.get(name, default)
    return module.bringup(context)


def include_arguments(group: GroupAction) -> dict[str, str]:
    (include,) = [a for a in group.get_sub_entities() if isinstance(a, IncludeLaunchDescription)]
    context = LaunchContext()
    return {
        "".join(s.perform(context) for s in k): "".join(s.perform(context) for s in v)
        for k, v in include.launch_arguments
    }


def test_n_camera_pipelines_in_their_namespaces_and_the_fusion_of_their_outputs(launch_module) -> None:
    actions = evaluate(launch_module, cameras="3", images="/a/image,/b/image,c/image", namespace="robot")
    groups = [a for a in actions if isinstance(a, GroupAction)]
    assert [include_arguments(g)["namespace"] for g in groups] == ["robot/cam0", "robot/cam1", "robot/cam2"]
    assert [include_arguments(g)["image"] for g in groups] == ["/a/image", "/b/image", "c/image"]
    (fusion,) = [a for a in actions if isinstance(a, LifecycleNode)]
    assert fusion.node_executable == "pose3d_fusion"


def test_fusion_only_for_cameras_on_other_machines(launch_module) -> None:
    actions = evaluate(launch_module, cameras="2", camera_pipelines="false")
    assert not [a for a in actions if isinstance(a, GroupAction)]
    assert [a.node_executable for a in actions if isinstance(a, LifecycleNode)] == ["pose3d_fusion"]


@pytest.mark.parametrize("arguments", [{"cameras": "0"}, {"cameras": "two"}, {"cameras": "2", "images": "/a/image"}])
def test_inconsistent_arguments_start_nothing(launch_module, arguments: dict) -> None:
    with pytest.raises(launch_module.LaunchSetupError, match="Nothing was started"):
        evaluate(launch_module, **arguments)
