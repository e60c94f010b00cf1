"""launch/pose3d.launch.py without starting a robot: what it starts for each argument, and how it
stops.

The description is loaded with the real launch and launch_ros packages and its OpaqueFunction is
evaluated for each set of arguments (no process starts): which nodes, in which namespaces, with
which remappings and parameters, which lifecycle transitions; that camera drivers and rviz2 that
are not installed stop the launch before anything starts. Then the launch is run for real (a
LaunchService in a subprocess, with the demo camera): a node that cannot configure ends the whole
launch, and repeated Ctrl-C ends it cleanly.

launch and launch_ros come with a ROS 2 distribution (not with the PyPI wheels); where they are
missing this module is skipped with the reason. To run it on the wheels, put launch, launch_ros and
their dependencies (osrf_pycommon, composition_interfaces) on PYTHONPATH/AMENT_PREFIX_PATH.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "launch", reason="launch is not installed (it ships with a ROS 2 distribution, not the PyPI wheels)"
)
pytest.importorskip("launch_ros", reason="launch_ros is not installed (it ships with a ROS 2 distribution)")
pytest.importorskip("ros2_ctxpose.msg", reason="the colcon-built messages are missing: run `bash scripts/test.sh`")

import yaml  # noqa: E402
from launch import LaunchContext  # noqa: E402
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler  # noqa: E402
from launch_ros.actions import LifecycleNode, Node  # noqa: E402
from launch_ros.events.lifecycle import ChangeState, StateTransition  # noqa: E402
from lifecycle_msgs.msg import State, Transition, TransitionEvent  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "pose3d.launch.py"


@pytest.fixture(scope="module")
def launch_module():
    spec = importlib.util.spec_from_file_location("pose3d_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(module, monkeypatch, installed: tuple[str, ...] = (), **arguments: str) -> list:
    """The actions the launch file's OpaqueFunction returns for ``arguments`` (defaults otherwise),
    as if the packages in ``installed`` were installed too."""
    real = module.executable_found
    monkeypatch.setattr(
        module, "executable_found", lambda package, executable: package in installed or real(package, executable)
    )
    context = LaunchContext()
    declared = {
        a.name: a for a in module.generate_launch_description().entities if isinstance(a, DeclareLaunchArgument)
    }
    unknown = set(arguments) - set(declared)
    assert not unknown, f"not launch arguments: {unknown}"
    for name, argument in declared.items():
        default = "".join(s.perform(context) for s in argument.default_value)
        context.launch_configurations[name] = arguments.get(name, default)
    return module.bringup(context)


def nodes(actions: list) -> dict[str, Node]:
    return {a.node_executable: a for a in actions if isinstance(a, Node)}


def expanded(node: Node) -> dict[str, Any]:
    """Namespace, remappings and parameters of ``node`` after substitution (as launch_ros runs it)."""
    context = LaunchContext()
    node._perform_substitutions(context)
    params: dict[str, Any] = {}
    files = []
    # launch_ros keeps the expanded arguments private; dicts become launch_params_* temporary files.
    for argument, is_file in node._Node__expanded_parameter_arguments or []:
        if not is_file:
            name, _, value = argument.partition(":=")
            params[name] = yaml.safe_load(value)
            continue
        if not Path(argument).name.startswith("launch_params_"):
            files.append(argument)
        for values in yaml.safe_load(Path(argument).read_text()).values():  # {node key: {ros__parameters: ...}}
            params.update(values.get("ros__parameters", {}))
    return {
        "namespace": node.expanded_node_namespace,
        "remaps": dict(node.expanded_remapping_rules or []),
        "params": params,
        "files": files,
    }


def transitions_emitted(actions: list) -> list[int]:
    return [a.event.transition_id for a in actions if isinstance(a, EmitEvent) and isinstance(a.event, ChangeState)]


def on_transition(actions: list, start: str, goal: str) -> list:
    """What the launch does when pose3d_node reports the transition ``start`` -> ``goal``."""
    pose3d = nodes(actions)["pose3d_node"]
    msg = TransitionEvent(start_state=State(label=start), goal_state=State(label=goal))
    event = StateTransition(action=pose3d, msg=msg)
    context = LaunchContext()
    return [
        entity
        for a in actions
        if isinstance(a, RegisterEventHandler) and a.event_handler.matches(event)
        for entity in a.event_handler.handle(event, context) or []
    ]


def test_default_brings_up_the_lifecycle_node_remapped_onto_camera_topics(launch_module, monkeypatch) -> None:
    actions = evaluate(launch_module, monkeypatch)
    started = nodes(actions)
    assert set(started) == {"pose3d_node"}, "camera:=none starts no driver"
    pose3d = started["pose3d_node"]
    assert isinstance(pose3d, LifecycleNode)
    node = expanded(pose3d)
    assert node["namespace"] == "/"
    assert node["remaps"] == {
        "image": "camera/image_raw",
        "camera_info": "camera/camera_info",
        "depth": "camera/aligned_depth_to_color/image_raw",
    }
    # The launch drives it to active: configure now, activate once configuring reached inactive.
    assert transitions_emitted(actions) == [Transition.TRANSITION_CONFIGURE]
    assert transitions_emitted(on_transition(actions, "configuring", "inactive")) == [Transition.TRANSITION_ACTIVATE]
    assert on_transition(actions, "activating", "active") == []


@pytest.mark.parametrize(
    "start,goal", [("configuring", "unconfigured"), ("activating", "inactive"), ("configuring", "errorprocessing")]
)
def test_a_failed_transition_ends_the_launch(launch_module, monkeypatch, start: str, goal: str) -> None:
    """configure failing (e.g. device:=cuda without CUDA) must not leave the camera running alone."""
    reaction = on_transition(evaluate(launch_module, monkeypatch, camera="demo"), start, goal)
    assert len(reaction) == 1
    with pytest.raises(launch_module.LaunchFailure, match="pose3d_node: .* failed"):
        reaction[0].execute(LaunchContext())


def test_params_file_wins_unless_an_argument_is_given(launch_module, monkeypatch, tmp_path: Path) -> None:
    """The issue's defect: launch defaults (device, topics) silently overrode the user's file."""
    mine = tmp_path / "my_params.yaml"
    mine.write_text(yaml.safe_dump({"/**/pose3d_node": {"ros__parameters": {"device": "cpu", "max_people": 3}}}))
    plain = expanded(nodes(evaluate(launch_module, monkeypatch, params_file=str(mine)))["pose3d_node"])
    assert plain["params"] == {"device": "cpu", "max_people": 3}, "a launch default overrode the params file"
    assert plain["files"] == [str(mine)], "only the user's file, not the package's as well"
    given = expanded(nodes(evaluate(launch_module, monkeypatch, params_file=str(mine), device="cuda"))["pose3d_node"])
    assert given["params"]["device"] == "cuda" and given["params"]["max_people"] == 3
    default = expanded(nodes(evaluate(launch_module, monkeypatch))["pose3d_node"])
    assert default["files"] and default["files"][0].endswith(os.path.join("config", "pose3d.yaml"))
    assert "use_sim_time" not in default["params"]


def test_use_sim_time_goes_to_every_node_when_given(launch_module, monkeypatch) -> None:
    started = nodes(
        evaluate(launch_module, monkeypatch, installed=("rviz2",), camera="demo", rviz="true", use_sim_time="true")
    )
    assert set(started) == {"pose3d_node", "demo_publisher", "rviz2"}
    for name, node in started.items():
        assert expanded(node)["params"].get("use_sim_time") is True, name


@pytest.mark.parametrize(
    "camera,driver,image,depth",
    [
        ("demo", "demo_publisher", "camera/image_raw", "camera/aligned_depth_to_color/image_raw"),
        ("v4l2", "v4l2_camera_node", "camera/image_raw", "camera/aligned_depth_to_color/image_raw"),
        ("usb_cam", "usb_cam_node_exe", "camera/image_raw", "camera/aligned_depth_to_color/image_raw"),
        (
            "realsense",
            "realsense2_camera_node",
            "camera/camera/color/image_raw",
            "camera/camera/aligned_depth_to_color/image_raw",
        ),
    ],
)
def test_camera_bringup_remaps_the_node_onto_the_driver(
    launch_module, monkeypatch, camera: str, driver: str, image: str, depth: str
) -> None:
    package = launch_module.DRIVERS[camera][0]
    started = nodes(
        evaluate(
            launch_module,
            monkeypatch,
            installed=(package, "tf2_ros"),
            camera=camera,
            namespace="robot1",
            video_device="/dev/video4",
        )
    )
    assert set(started) - {"static_transform_publisher"} == {"pose3d_node", driver}
    node, camera_node = expanded(started["pose3d_node"]), expanded(started[driver])
    assert node["namespace"] == "/robot1" and camera_node["namespace"] == "/robot1/camera"
    assert node["remaps"]["image"] == image and node["remaps"]["depth"] == depth
    # Relative remaps resolve in /robot1: /robot1/camera/... is where the driver publishes.
    assert started[driver].node_package == package
    if camera in ("v4l2", "usb_cam"):
        assert camera_node["params"]["video_device"] == "/dev/video4"
    if camera == "realsense":
        assert camera_node["params"]["align_depth.enable"] is True


def test_realsense_places_people_with_its_aligned_depth(launch_module, monkeypatch) -> None:
    """Issue: camera:=realsense started colour + aligned depth but never set use_depth."""
    realsense = nodes(evaluate(launch_module, monkeypatch, installed=("realsense2_camera",), camera="realsense"))
    assert expanded(realsense["pose3d_node"])["params"]["use_depth"] is True
    for camera, package in (("demo", "ros2_ctxpose"), ("v4l2", "v4l2_camera"), ("none", "")):
        others = nodes(evaluate(launch_module, monkeypatch, installed=(package, "tf2_ros"), camera=camera))
        assert expanded(others["pose3d_node"])["params"]["use_depth"] is False, f"camera:={camera} has no depth"


@pytest.mark.parametrize("camera,frame_parameter", [("v4l2", "camera_frame_id"), ("usb_cam", "frame_id")])
def test_v4l2_and_usb_cam_stamp_an_optical_frame_under_camera_link(
    launch_module, monkeypatch, camera: str, frame_parameter: str
) -> None:
    """Issue: these drivers got no frame id and no TF, so RViz/Foxglove had no camera_link. Now the
    driver stamps camera_optical_frame and a static transform puts it under camera_link with the
    same rotation as demo_publisher's (REP 103)."""
    from transforms3d.euler import euler2quat

    from ros2_ctxpose.ros.demo_publisher import optical_frame_transform

    package, executable = launch_module.DRIVERS[camera][:2]
    started = nodes(
        evaluate(launch_module, monkeypatch, installed=(package, "tf2_ros"), camera=camera, namespace="robot1")
    )
    assert expanded(started[executable])["params"][frame_parameter] == "camera_optical_frame"
    publisher = started["static_transform_publisher"]
    assert publisher.node_package == "tf2_ros"
    assert expanded(publisher)["namespace"] == "/robot1/camera"
    arguments = publisher._Node__arguments  # what the launch file passed (launch_ros keeps it private)
    named = dict(zip(arguments[::2], arguments[1::2]))
    assert named["--frame-id"] == "camera_link" and named["--child-frame-id"] == "camera_optical_frame"
    w, x, y, z = euler2quat(*(float(named.get(f"--{angle}", 0.0)) for angle in ("roll", "pitch", "yaw")), "sxyz")
    demo = optical_frame_transform("camera_link", "camera_optical_frame", None).transform.rotation
    assert [x, y, z, w] == pytest.approx([demo.x, demo.y, demo.z, demo.w], abs=1e-9)
    assert not {"--x", "--y", "--z"} & set(named), "the optical frame sits at camera_link's origin"


def test_v4l2_without_tf2_ros_starts_nothing(launch_module, monkeypatch) -> None:
    if launch_module.package_prefix("tf2_ros") is not None:
        pytest.skip("tf2_ros is installed here")
    with pytest.raises(launch_module.LaunchSetupError, match="tf2_ros.*Nothing was started"):
        evaluate(launch_module, monkeypatch, installed=("v4l2_camera",), camera="v4l2")


@pytest.mark.parametrize("old,new", [("image_topic", "image"), ("camera_info_topic", "camera_info")])
def test_the_former_topic_arguments_are_refused_by_their_new_name(
    launch_module, monkeypatch, old: str, new: str
) -> None:
    """Issue: `image_topic:=/front/image` was silently ignored (ros2 launch accepts any name:=value),
    so the node listened on the default topic and nothing said why."""
    real = launch_module.bringup
    # An undeclared argument reaches the launch configurations as it does from the command line.
    monkeypatch.setattr(
        launch_module,
        "bringup",
        lambda context: (context.launch_configurations.__setitem__(old, "/front/x"), real(context))[1],
    )
    with pytest.raises(launch_module.LaunchSetupError, match=f"{old}:= is no longer an argument, use {new}:="):
        evaluate(launch_module, monkeypatch)


def test_demo_true_is_camera_demo(launch_module, monkeypatch) -> None:
    assert set(nodes(evaluate(launch_module, monkeypatch, demo="true"))) == {"pose3d_node", "demo_publisher"}


def test_explicit_topics_replace_the_camera_ones(launch_module, monkeypatch) -> None:
    node = expanded(
        nodes(
            evaluate(launch_module, monkeypatch, image="/front/color/image_raw", camera_info="/front/color/camera_info")
        )["pose3d_node"]
    )
    assert node["remaps"]["image"] == "/front/color/image_raw"
    assert node["remaps"]["camera_info"] == "/front/color/camera_info"


@pytest.mark.parametrize(
    "arguments,missing",
    [
        ({"camera": "v4l2"}, "v4l2_camera"),
        ({"camera": "usb_cam"}, "usb_cam"),
        ({"camera": "realsense"}, "realsense2_camera"),
        ({"camera": "demo", "rviz": "true"}, "rviz2"),
    ],
)
def test_missing_packages_stop_the_launch_before_anything_starts(
    launch_module, monkeypatch, arguments: dict, missing: str
) -> None:
    """rviz2 is optional; a driver may not be installed. Before: rviz:=true without rviz2 started the
    node and the camera, then failed, and left them running."""
    if launch_module.package_prefix(missing) is not None:
        pytest.skip(f"{missing} is installed here")
    with pytest.raises(launch_module.LaunchSetupError, match=f"{missing}.*Nothing was started"):
        evaluate(launch_module, monkeypatch, **arguments)


def test_a_params_file_that_is_not_there_stops_the_launch(launch_module, monkeypatch, tmp_path: Path) -> None:
    """launch_ros only warns about a missing parameter file and starts the node with defaults."""
    with pytest.raises(launch_module.LaunchSetupError, match="my_params.yaml is not a file"):
        evaluate(launch_module, monkeypatch, params_file=str(tmp_path / "my_params.yaml"))


def test_autostart_false_leaves_the_transitions_to_a_manager(launch_module, monkeypatch) -> None:
    actions = evaluate(launch_module, monkeypatch, autostart="false")
    assert transitions_emitted(actions) == []
    assert transitions_emitted(on_transition(actions, "configuring", "inactive")) == []


# --------------------------------------------------------------------------- the launch, run for real
RUNNER = textwrap.dedent("""
    import sys
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    arguments = dict(a.split(":=", 1) for a in sys.argv[2:])
    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments.items())]))
    sys.exit(service.run())
""")


def run_launch(tmp_path: Path, *arguments: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "launch.log"
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(LAUNCH_FILE), *arguments],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0"),
    )
    return process, log


def leftover(namespace: str) -> list[str]:
    """Command lines of processes still running in ``namespace`` (orphans of a launch)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if f"__ns:=/{namespace}" in cmdline:
                found.append(cmdline)
    return found


def finish(process: subprocess.Popen, timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


@pytest.mark.dds
def test_node_that_cannot_configure_ends_the_whole_launch(tmp_path: Path) -> None:
    """Before: with device:=cuda on a machine without it, the camera kept running alone."""
    namespace = "launch_cfg_fail"
    process, log = run_launch(tmp_path, "camera:=demo", f"namespace:={namespace}", "device:=cuda:97")
    status = finish(process, 240)
    text = log.read_text()
    assert status == 1, text[-3000:]
    assert "configure failed" in text and "pose3d_node: configure failed" in text, text[-3000:]
    time.sleep(1.0)
    assert leftover(namespace) == [], "processes left running after the launch ended"


@pytest.mark.dds
def test_missing_rviz_starts_nothing(tmp_path: Path, launch_module) -> None:
    if launch_module.package_prefix("rviz2") is not None:
        pytest.skip("rviz2 is installed here")
    namespace = "launch_no_rviz"
    process, log = run_launch(tmp_path, "camera:=demo", "rviz:=true", f"namespace:={namespace}")
    status = finish(process, 60)
    text = log.read_text()
    assert status == 1 and "rviz2 is not installed" in text, text[-3000:]
    assert "process started" not in text, "something was started before the check"
    assert leftover(namespace) == []


@pytest.mark.dds
def test_repeated_ctrl_c_ends_the_launch_cleanly(tmp_path: Path) -> None:
    """Ctrl-C in a terminal: SIGINT to every process of the group (launch forwards it once more)."""
    namespace = "launch_sigint"
    process, log = run_launch(tmp_path, "camera:=demo", f"namespace:={namespace}", "device:=cpu")
    deadline = time.monotonic() + 240
    while "active: listening on" not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"pose3d_node never became active:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    time.sleep(2.0)  # frames in flight
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    status = finish(process, 60)
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "exited with status" not in text, text[-3000:]
    time.sleep(1.0)
    assert leftover(namespace) == []
