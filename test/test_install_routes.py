"""The pip route and the ROS route install the same module name without shadowing each other
(README, "Two install routes, one module name"); what the ROS route installs works as installed."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

REPO = Path(__file__).resolve().parents[1]


def _pip_route_packages() -> list[str]:
    from setuptools.config.setupcfg import read_configuration

    return read_configuration(REPO / "setup.cfg")["options"]["packages"]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` from the repository root, as `python -m pytest` and users do."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_pip_route_ships_the_whole_core_and_cli_but_no_ros_layer() -> None:
    packages = _pip_route_packages()
    assert not [p for p in packages if p.startswith(("ros2_ctxpose.ros", "ros2_ctxpose.msg"))]
    # Every core and training subpackage is shipped, including ones added after setup.cfg was written
    # (the CLI's train/eval-h36m commands import the training wing).
    core = find_packages(str(REPO), include=["ros2_ctxpose.core", "ros2_ctxpose.core.*"])
    training = find_packages(str(REPO), include=["ros2_ctxpose.training", "ros2_ctxpose.training.*"])
    assert "ros2_ctxpose.core.detector" in core and "ros2_ctxpose.training" in training
    assert set(core) <= set(packages) and set(training) <= set(packages)
    assert {"ros2_ctxpose", "ros2_ctxpose.cli"} <= set(packages)


def test_ros_layer_without_built_messages_names_every_copy_and_the_fix() -> None:
    # Only the working tree on the path: what a pip install or an unsourced overlay looks like.
    result = _python("import ros2_ctxpose.ros", PYTHONPATH=str(REPO))
    assert result.returncode != 0
    assert "ros2_ctxpose.msg is not importable" in result.stderr
    assert str(REPO / "ros2_ctxpose") in result.stderr
    assert "source scripts/env.sh" in result.stderr


@pytest.mark.usefixtures("ctxpose_messages")
def test_working_tree_code_runs_with_the_overlay_messages() -> None:
    result = _python(
        "import ros2_ctxpose, ros2_ctxpose.core.skeleton, ros2_ctxpose.msg as m; "
        "print(ros2_ctxpose.core.skeleton.__file__); print(m.__file__)"
    )
    assert result.returncode == 0, result.stderr
    core_file, msg_file = map(Path, result.stdout.split())
    assert core_file == REPO / "ros2_ctxpose" / "core" / "skeleton.py"  # the working tree wins
    assert not msg_file.is_relative_to(REPO / "ros2_ctxpose")  # the messages come from a build


def generated_entry_points() -> list[tuple[str, str]]:
    """(install path, "module:function") of every executable CMakeLists.txt generates."""
    text = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"set\(_entry_points(.*?)\)\n", text, re.S)
    assert block, "CMakeLists.txt has no _entry_points list"
    entries = re.findall(r'"([^"=]+)=([\w.]+:\w+)"', block.group(1))
    assert entries, "no entry points parsed from CMakeLists.txt"
    return [(path.replace("${PROJECT_NAME}", "ros2_ctxpose"), target) for path, target in entries]


#: What a multiprocessing worker started with spawn (or forkserver) does first: re-import the
#: parent's main script as ``__mp_main__`` (multiprocessing.spawn.prepare, as the worker runs it).
SPAWNED_WORKER = """
import sys
from multiprocessing import spawn
spawn.prepare({"init_main_from_path": sys.argv[1]})
print("imported", sys.modules["__mp_main__"].__name__)
"""


@pytest.mark.usefixtures("ctxpose_messages")
@pytest.mark.parametrize("path,target", generated_entry_points(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_a_spawned_worker_imports_the_installed_entry_point_without_running_it(path: str, target: str) -> None:
    """Issue: `ctxpose synth --workers 1` never ended through the installed command. The generated
    script called main() unguarded, so every spawned worker ran the whole command again (and its
    pool respawned it forever). Here a worker's import of each installed script must return at
    once: a rerun command would fail on the worker's arguments, pose3d_node would never return."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        script = Path(get_package_prefix("ros2_ctxpose")) / path
    except PackageNotFoundError:
        pytest.skip("ros2_ctxpose is not installed in a sourced overlay: run scripts/bootstrap.sh")
    assert os.access(script, os.X_OK), f"{script} is not installed as an executable"
    assert target.split(":")[0] in script.read_text(), f"{script} does not run {target}: rebuild (bootstrap.sh)"
    result = subprocess.run(
        [sys.executable, "-c", SPAWNED_WORKER, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "imported __mp_main__" in result.stdout, (
        f"{script} ran its command when imported by a worker:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    )


def test_colcon_test_after_bootstrap_runs_the_suite() -> None:
    """Issue: bootstrap built with BUILD_TESTING=OFF (cached by CMake), so the README's `colcon test`
    ran 0 tests and passed. The build it leaves must register the pytest suite with ctest."""
    build = REPO / "build" / "ros2_ctxpose"
    if not (build / "CTestTestfile.cmake").is_file():
        pytest.skip("no colcon build of ros2_ctxpose here: run scripts/bootstrap.sh")
    listed = subprocess.run(
        ["ctest", "-N", "-V", "--test-dir", str(build)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Total Tests: 1" in listed, listed[-2000:]
    assert re.search(r'"-m" "pytest" "[^"]*/test"', listed), f"the registered test does not run pytest test/:\n{listed}"


def test_a_build_that_cannot_run_the_suite_fails_its_test_with_the_reason() -> None:
    """CMakeLists.txt registers tools/cmake/fail_test.cmake instead of the suite when BUILD_TESTING is
    off or ament_cmake_pytest is missing: `colcon test` must then fail and say why, not pass empty."""
    result = subprocess.run(
        ["cmake", "-DREASON=built with BUILD_TESTING=OFF", "-P", str(REPO / "tools" / "cmake" / "fail_test.cmake")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "built with BUILD_TESTING=OFF" in result.stderr


def test_backend_auto_on_a_cpu_without_openvino_says_it_falls_back_to_torch(monkeypatch) -> None:
    """The system-ROS route used to lack OpenVINO silently: backend=auto then ran torch, 2.3x slower."""
    from ros2_ctxpose.core.detector import factory

    # A handler of its own on the module's logger: launch (imported by other tests in the same
    # session) replaces logging's logger class, and caplog's root handler then sees nothing.
    logger = logging.getLogger(factory.__name__)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    monkeypatch.setattr(logger, "level", logging.WARNING)
    logger.addHandler(handler)
    try:
        monkeypatch.setattr(factory, "openvino_available", lambda: False)
        assert factory.choose_backend("auto", "cpu") == "torch"
        (warning,) = [r.getMessage() for r in records]
        assert "openvino is not installed" in warning and factory.OPENVINO_INSTALL_HINT in warning
        records.clear()
        monkeypatch.setattr(factory, "openvino_available", lambda: True)
        assert factory.choose_backend("auto", "cpu") == "openvino"
        assert records == []
    finally:
        logger.removeHandler(handler)


def _installed_ctxpose() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        return Path(get_package_prefix("ros2_ctxpose")) / "bin" / "ctxpose"
    except PackageNotFoundError:
        pytest.skip("ros2_ctxpose is not installed in a sourced overlay: run scripts/bootstrap.sh")


@pytest.mark.slow
@pytest.mark.usefixtures("ctxpose_messages", "weights_available")
def test_the_installed_ctxpose_command_infers_and_writes_json_lines(shared_data) -> None:
    """What a user runs after bootstrap: install/ros2_ctxpose/bin/ctxpose itself (not python -m),
    on a real image, with every stdout line a JSON result and the people in it."""
    command = _installed_ctxpose()
    bus = shared_data("data/images/coco/bus.jpg")
    args = ["infer", str(bus), "--backend", "torch", "--precision", "fp32", "--device", "cpu"]
    result = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=600, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["file"] == str(bus)
    assert len(lines[0]["people"]) >= 3, lines[0]["people"]
    help_text = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=120).stdout
    for subcommand in ("infer", "eval", "fuse", "synth"):
        assert subcommand in help_text


@pytest.mark.usefixtures("ctxpose_messages", "weights_available")
def test_the_installed_ctxpose_command_evaluates_real_frames_on_the_floor(shared_data, tmp_path) -> None:
    """The installed ``ctxpose eval`` on three real S11 frames with the studio's extrinsics: every
    person matched, placed on the floor, finite errors (the shipped context weights, the root
    placed with the geometry path's pose); and the new flags of ``synth`` and ``train`` are there."""
    command = _installed_ctxpose()
    folder = shared_data("data/h36m_s11_walkdog")
    cameras = shared_data("data/h36m/cameras.json")
    annotations = json.loads((folder / "annotations.json").read_text())
    annotations["images"] = annotations["images"][:3]
    subset = tmp_path / "annotations.json"
    subset.write_text(json.dumps(annotations))
    args = [
        "eval",
        str(subset),
        "--images-root",
        str(folder),
        "--cameras",
        str(cameras),
        "--json",
        str(tmp_path / "e.json"),
    ]
    result = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=600, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    floor = json.loads((tmp_path / "e.json").read_text())["floor_aware"]["human3.6m"]
    assert floor["matched"] == 3 and floor["on_floor"] == 3
    assert all(0 < floor[key] < 1000 for key in ("mpjpe_mm", "root_error_mm", "floor_root_error_mm"))
    for subcommand, flag in (("synth", "--ray"), ("train", "--device")):
        help_text = subprocess.run([str(command), subcommand, "--help"], capture_output=True, text=True, timeout=120)
        assert help_text.returncode == 0 and flag in help_text.stdout, help_text.stderr[-2000:]
