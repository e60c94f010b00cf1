"""The pip route and the ROS route install the same module name without shadowing each other
(README, "Two install routes, one module name")."""

from __future__ import annotations

import os
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
