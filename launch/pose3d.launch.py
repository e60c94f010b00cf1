"""pose3d_node (a lifecycle node, driven to active), optionally a camera and RViz.

    ros2 launch ros2_ctxpose pose3d.launch.py camera:=demo rviz:=true     # packaged footage as camera
    ros2 launch ros2_ctxpose pose3d.launch.py camera:=v4l2 video_device:=/dev/video0
    ros2 launch ros2_ctxpose pose3d.launch.py image:=/front/color/image_raw \
        camera_info:=/front/color/camera_info device:=cuda params_file:=my_pose3d.yaml

Arguments (``ros2 launch ros2_ctxpose pose3d.launch.py -s`` lists them):

- ``camera``: ``none`` (default: an external camera already publishes), ``demo`` (demo_publisher
  plays Sports2D's two-person clip), ``v4l2`` (v4l2_camera's v4l2_camera_node), ``usb_cam``
  (usb_cam_node_exe), ``realsense`` (realsense2_camera_node, colour + depth aligned to it).
  The driver runs in ``<namespace>/<camera_namespace>`` and publishes ``image_raw`` and
  ``camera_info`` there, as these drivers do. ``demo:=true`` is ``camera:=demo``.
- ``image``, ``camera_info``, ``depth``: what the node's fixed inputs are remapped to (relative
  names resolve in ``namespace``); empty = the chosen camera's topics
  (``<camera_namespace>/image_raw``, ...). ``image_transport: compressed`` subscribes to
  ``<image>/compressed``, as image_transport does.
- ``namespace`` of every node; ``camera_namespace`` (``camera``); ``video_device`` for v4l2/usb_cam.
- ``params_file``: pose3d_node's parameters (default: the package's config/pose3d.yaml). The file
  wins: ``device`` and ``use_sim_time`` are passed only when given (their default "" means "not
  given").
- ``use_sim_time``: passed to every node when given.
- ``rviz``: also RViz with config/pose3d.rviz. rviz2 is an optional dependency: when it is not
  installed the launch stops before starting anything and says so.
- ``autostart`` (true): configure and activate pose3d_node; false leaves it unconfigured for a
  lifecycle manager.

When pose3d_node cannot start (configure or activate fails, e.g. ``device:=cuda`` without CUDA)
or any process exits, the whole launch shuts down instead of leaving a camera running alone.
"""

from __future__ import annotations

import os
import signal

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

PACKAGE = "ros2_ctxpose"
CAMERAS = ("none", "demo", "v4l2", "usb_cam", "realsense")
#: Camera driver per ``camera`` choice: (package, executable, node name, how to install it).
DRIVERS = {
    "demo": (PACKAGE, "demo_publisher", "demo_publisher", None),
    "v4l2": ("v4l2_camera", "v4l2_camera_node", "v4l2_camera", "apt install ros-$ROS_DISTRO-v4l2-camera"),
    "usb_cam": ("usb_cam", "usb_cam_node_exe", "usb_cam", "apt install ros-$ROS_DISTRO-usb-cam"),
    "realsense": (
        "realsense2_camera",
        "realsense2_camera_node",
        "camera",
        "apt install ros-$ROS_DISTRO-realsense2-camera",
    ),
}
#: Topics of each driver relative to its namespace: (image, camera_info, aligned depth).
DRIVER_TOPICS = {
    "realsense": ("camera/color/image_raw", "camera/color/camera_info", "camera/aligned_depth_to_color/image_raw"),
}
DEFAULT_TOPICS = ("image_raw", "camera_info", "aligned_depth_to_color/image_raw")
BOOLEAN = ("true", "false")

ARGUMENTS = [
    DeclareLaunchArgument(
        "camera",
        default_value="none",
        choices=list(CAMERAS),
        description="camera to start with the node: none (an external one publishes), demo "
        "(packaged footage), v4l2, usb_cam or realsense",
    ),
    DeclareLaunchArgument("demo", default_value="false", choices=list(BOOLEAN), description="same as camera:=demo"),
    DeclareLaunchArgument("namespace", default_value="", description="namespace of every node"),
    DeclareLaunchArgument(
        "camera_namespace", default_value="camera", description="namespace of the camera driver, under namespace"
    ),
    DeclareLaunchArgument(
        "image",
        default_value="",
        description="topic the node's 'image' input is remapped to; empty = the camera's image_raw",
    ),
    DeclareLaunchArgument(
        "camera_info",
        default_value="",
        description="topic the node's 'camera_info' input is remapped to; empty = the camera's",
    ),
    DeclareLaunchArgument(
        "depth",
        default_value="",
        description="topic the node's 'depth' input (use_depth: true) is remapped to; empty = the "
        "camera's aligned depth",
    ),
    DeclareLaunchArgument("video_device", default_value="/dev/video0", description="device of camera:=v4l2/usb_cam"),
    DeclareLaunchArgument(
        "params_file", default_value="", description="pose3d_node parameters; empty = the package's config/pose3d.yaml"
    ),
    DeclareLaunchArgument(
        "device", default_value="", description="auto, cpu, cuda or cuda:N; empty = as params_file says"
    ),
    DeclareLaunchArgument(
        "use_sim_time",
        default_value="",
        choices=["", *BOOLEAN],
        description="use /clock in every node; empty = as each node's parameters say",
    ),
    DeclareLaunchArgument(
        "rviz",
        default_value="false",
        choices=list(BOOLEAN),
        description="also open RViz with config/pose3d.rviz (rviz2 must be installed)",
    ),
    DeclareLaunchArgument(
        "autostart",
        default_value="true",
        choices=list(BOOLEAN),
        description="configure and activate pose3d_node (false: leave it to a lifecycle manager)",
    ),
]


class LaunchSetupError(RuntimeError):
    """Something the launch needs is missing; raised before any process starts."""


class LaunchFailure(RuntimeError):
    """pose3d_node or a process it needs could not run: launch stops everything and exits 1."""


def _fail(reason: str) -> OpaqueFunction:
    """An action that ends the launch with ``reason``: launch reports the exception as an error,
    shuts every process down and exits with status 1 (a Shutdown event would exit 0)."""

    def raise_failure(context: LaunchContext) -> None:
        raise LaunchFailure(reason)

    return OpaqueFunction(function=raise_failure)


def package_prefix(package: str) -> str | None:
    """Install prefix of ``package`` from the ament index, or None when it is not installed."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        return get_package_prefix(package)
    except PackageNotFoundError:
        return None


def executable_found(package: str, executable: str) -> bool:
    """Whether ``package`` is installed with ``lib/<package>/<executable>`` (where ros2 run and
    launch_ros look)."""
    prefix = package_prefix(package)
    return prefix is not None and os.access(os.path.join(prefix, "lib", package, executable), os.X_OK)


def _join(*parts: str) -> str:
    """Namespaces and names joined with single slashes ('' parts left out)."""
    joined = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return "/" + joined if parts and parts[0].startswith("/") else joined


def _flag(context: LaunchContext, name: str) -> str:
    return LaunchConfiguration(name).perform(context).strip().lower()


def bringup(context: LaunchContext) -> list:
    """Every process and handler of the launch, from the arguments; checks first that everything
    asked for is installed, so that nothing starts when something is missing."""
    value = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    camera = "demo" if _flag(context, "demo") == "true" and value("camera") == "none" else value("camera")
    namespace, camera_ns = value("namespace"), value("camera_namespace")
    rviz, autostart = _flag(context, "rviz") == "true", _flag(context, "autostart") == "true"

    missing = []
    if rviz and not executable_found("rviz2", "rviz2"):
        missing.append(
            "rviz:=true, but rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2); install it or "
            "leave rviz out (pose3d_node's outputs are also viewable in Foxglove, docs/NODE.md)"
        )
    if camera in DRIVERS:
        package, executable, _, install = DRIVERS[camera]
        if not executable_found(package, executable):
            missing.append(
                f"camera:={camera} needs {package}'s {executable}, which is not installed"
                + (f" ({install})" if install else "")
            )
    if value("params_file") and not os.path.isfile(value("params_file")):
        missing.append(f"params_file:={value('params_file')} is not a file")
    if missing:
        raise LaunchSetupError("; ".join(missing) + ". Nothing was started.")

    sim_time = value("use_sim_time").lower()
    common = [{"use_sim_time": sim_time == "true"}] if sim_time else []
    share = os.path.join(package_prefix(PACKAGE) or "", "share", PACKAGE)
    params_file = value("params_file") or os.path.join(share, "config", "pose3d.yaml")
    params: list = [params_file, *common]
    if value("device"):
        params.append({"device": value("device")})

    image, info, depth = DRIVER_TOPICS.get(camera, DEFAULT_TOPICS)
    remappings = [
        ("image", value("image") or _join(camera_ns, image)),
        ("camera_info", value("camera_info") or _join(camera_ns, info)),
        ("depth", value("depth") or _join(camera_ns, depth)),
    ]
    pose3d = LifecycleNode(
        package=PACKAGE,
        executable="pose3d_node",
        name="pose3d_node",
        namespace=namespace,
        parameters=params,
        remappings=remappings,
        output="screen",
        emulate_tty=True,
    )
    actions: list = [pose3d, *_lifecycle(pose3d, autostart), _shutdown_on_exit(pose3d)]

    if camera in DRIVERS:
        package, executable, name, _ = DRIVERS[camera]
        driver_params: list = list(common)
        if camera in ("v4l2", "usb_cam"):
            driver_params.append({"video_device": value("video_device")})
        elif camera == "realsense":
            driver_params.append({"align_depth.enable": True})
        driver_ns = camera_ns if camera_ns.startswith("/") else _join(namespace, camera_ns)
        driver = Node(
            package=package,
            executable=executable,
            name=name,
            namespace=driver_ns,
            parameters=driver_params,
            output="screen",
            emulate_tty=True,
        )
        actions += [driver, _shutdown_on_exit(driver)]
    if rviz:
        config = os.path.join(share, "config", "pose3d.rviz")
        viewer = Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=namespace,
            arguments=["-d", config],
            parameters=list(common),
        )
        actions += [viewer, _shutdown_on_exit(viewer)]
    return actions


def _lifecycle(pose3d: LifecycleNode, autostart: bool, name: str = "pose3d_node") -> list:
    """configure, then activate once inactive; a failed transition shuts the launch down.
    (multi_camera.launch.py drives pose3d_fusion with it too, ``name`` naming it in the failure.)"""

    def change(transition_id: int) -> EmitEvent:
        return EmitEvent(
            event=ChangeState(lifecycle_node_matcher=lambda action: action is pose3d, transition_id=transition_id)
        )

    def fail(what: str) -> list:
        return [_fail(f"{name}: {what} failed (its log above says why); shutting everything down")]

    handlers = [
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=pose3d,
                start_state="configuring",
                goal_state="unconfigured",
                entities=fail("configure"),
            )
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=pose3d, start_state="activating", goal_state="inactive", entities=fail("activate")
            )
        ),
        RegisterEventHandler(
            OnStateTransition(target_lifecycle_node=pose3d, goal_state="errorprocessing", entities=fail("a transition"))
        ),
    ]
    if autostart:
        handlers.append(
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=pose3d,
                    start_state="configuring",
                    goal_state="inactive",
                    entities=[change(Transition.TRANSITION_ACTIVATE)],
                )
            )
        )
        handlers.append(change(Transition.TRANSITION_CONFIGURE))
    return handlers


def _shutdown_on_exit(action) -> RegisterEventHandler:
    """When ``action``'s process exits while the launch runs, shut the whole launch down: with an
    error (exit status 1) when it failed, quietly when it finished (a demo with max_frames) or was
    stopped by a signal."""

    def on_exit(event: ProcessExited, context: LaunchContext) -> list | None:
        if context.is_shutdown:
            return None
        # Stopped by a signal (Ctrl-C reaches every process of the terminal's group, possibly before
        # launch handles its own): a requested stop, not a failure.
        if event.returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
            return [_fail(f"{event.action.name} exited with status {event.returncode}; shutting everything down")]
        return [
            LogInfo(msg=f"{event.action.name} finished: shutting the launch down"),
            EmitEvent(event=Shutdown(reason=f"{event.action.name} finished")),
        ]

    return RegisterEventHandler(OnProcessExit(target_action=action, on_exit=on_exit))


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=bringup)])
