"""N camera pipelines (pose3d_node in namespaces cam0..camN-1) and pose3d_fusion, on one machine or several.

    ros2 launch ros2_ctxpose multi_camera.launch.py cameras:=4 fusion_frame:=map
    ros2 launch ros2_ctxpose multi_camera.launch.py cameras:=2 \
        images:=/front/color/image_raw,/rear/color/image_raw \
        camera_infos:=/front/color/camera_info,/rear/color/camera_info device:=cuda
    # the fusion only (the cameras' pose3d_node run on their own machines, see docs/FUSION.md):
    ros2 launch ros2_ctxpose multi_camera.launch.py cameras:=3 camera_pipelines:=false

Arguments (``-s`` lists them):

- ``cameras`` (2): N. Camera ``k`` is pose3d.launch.py included with ``namespace:=<namespace>/camk``,
  so its node listens on ``camk/camera/image_raw`` and ``camk/camera/camera_info`` unless ``images``
  / ``camera_infos`` (comma-separated, N entries, relative names resolve in ``<namespace>/camk``)
  say otherwise, and publishes ``camk/human/pose3d``.
- ``camera_pipelines`` (true): start the N pose3d_node here; false starts only the fusion (the
  cameras run elsewhere on the same ROS domain).
- ``fusion`` (true): start pose3d_fusion (inputs ``camk/human/pose3d``, output
  ``human/pose3d_fused`` under ``namespace``).
- ``fusion_frame`` (map), ``stamp_tolerance_s``, ``max_wait_s``: pose3d_fusion's parameters.
- ``namespace``, ``params_file``, ``device``, ``use_sim_time``: as pose3d.launch.py, for every camera
  pipeline (use_sim_time for the fusion too).

Each camera's optical frame (its images' frame_id, or pose3d_node's ``frame_id`` parameter) must
reach ``fusion_frame`` in TF: calibrated extrinsics as a static transform, or through the robot's
moving frames.
"""

from __future__ import annotations

import importlib.util
import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

HERE = os.path.dirname(os.path.abspath(__file__))
POSE3D_LAUNCH = os.path.join(HERE, "pose3d.launch.py")


def _pose3d_launch():
    """pose3d.launch.py as a module: its lifecycle and exit handling serve the fusion node too."""
    spec = importlib.util.spec_from_file_location("pose3d_launch", POSE3D_LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


POSE3D = _pose3d_launch()
BOOLEAN = ("true", "false")

ARGUMENTS = [
    DeclareLaunchArgument("cameras", default_value="2", description="number of cameras N (namespaces cam0..camN-1)"),
    DeclareLaunchArgument(
        "images", default_value="", description="comma-separated image topic per camera; empty = camk/camera/image_raw"
    ),
    DeclareLaunchArgument(
        "camera_infos",
        default_value="",
        description="comma-separated camera_info topic per camera; empty = camk/camera/camera_info",
    ),
    DeclareLaunchArgument(
        "camera_pipelines", default_value="true", choices=list(BOOLEAN), description="start the N pose3d_node here"
    ),
    DeclareLaunchArgument("fusion", default_value="true", choices=list(BOOLEAN), description="start pose3d_fusion"),
    DeclareLaunchArgument("fusion_frame", default_value="map", description="common frame of the fused output"),
    DeclareLaunchArgument("stamp_tolerance_s", default_value="0.02", description="pose3d_fusion stamp_tolerance_s"),
    DeclareLaunchArgument("max_wait_s", default_value="0.1", description="pose3d_fusion max_wait_s"),
    DeclareLaunchArgument("namespace", default_value="", description="namespace above cam0..camN-1 and the fusion"),
    DeclareLaunchArgument("params_file", default_value="", description="pose3d_node parameters of every camera"),
    DeclareLaunchArgument("device", default_value="", description="device of every pose3d_node; empty = params_file"),
    DeclareLaunchArgument(
        "use_sim_time", default_value="", choices=["", *BOOLEAN], description="use /clock in every node"
    ),
]


class LaunchSetupError(RuntimeError):
    """Inconsistent arguments; raised before any process starts."""


def _topics(value: str, count: int, what: str) -> list[str]:
    """``count`` comma-separated topics, or ``count`` empty strings (the camera's defaults)."""
    if not value:
        return [""] * count
    topics = [t.strip() for t in value.split(",")]
    if len(topics) != count or not all(topics):
        raise LaunchSetupError(f"{what} must list {count} topics (one per camera), got {value!r}. Nothing was started.")
    return topics


def bringup(context: LaunchContext) -> list:
    """The camera pipelines and the fusion node, from the arguments."""
    value = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    try:
        count = int(value("cameras"))
    except ValueError:
        count = 0
    if count < 1:
        raise LaunchSetupError(f"cameras must be a number >= 1, got {value('cameras')!r}. Nothing was started.")
    images = _topics(value("images"), count, "images")
    infos = _topics(value("camera_infos"), count, "camera_infos")
    namespace = value("namespace")
    actions: list = []
    if value("camera_pipelines").lower() == "true":
        for k in range(count):
            arguments = {
                "namespace": "/".join(p for p in (namespace.strip("/"), f"cam{k}") if p),
                "image": images[k],
                "camera_info": infos[k],
                "params_file": value("params_file"),
                "device": value("device"),
                "use_sim_time": value("use_sim_time"),
            }
            include = IncludeLaunchDescription(
                PythonLaunchDescriptionSource(POSE3D_LAUNCH), launch_arguments=arguments.items()
            )
            actions.append(GroupAction([include], scoped=True))
    if value("fusion").lower() == "true":
        sim_time = value("use_sim_time").lower()
        params: dict = {
            "inputs": [f"cam{k}/human/pose3d" for k in range(count)],
            "fusion_frame": value("fusion_frame"),
            "stamp_tolerance_s": float(value("stamp_tolerance_s")),
            "max_wait_s": float(value("max_wait_s")),
        }
        if sim_time:
            params["use_sim_time"] = sim_time == "true"
        fusion = LifecycleNode(
            package=POSE3D.PACKAGE,
            executable="pose3d_fusion",
            name="pose3d_fusion",
            namespace=namespace,
            parameters=[params],
            output="screen",
            emulate_tty=True,
        )
        actions += [fusion, *POSE3D._lifecycle(fusion, True, "pose3d_fusion"), POSE3D._shutdown_on_exit(fusion)]
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=bringup)])
