"""The pytest that the system-ROS route installs must not break pytest sessions where a ROS 2
distribution's launch_testing plugin is on the path (ros2/launch#972, #974).

launch_testing registers itself as a pytest plugin (``pytest11`` entry point). Releases before
Jazzy's launch 3.4.12 and Kilted's 3.8.9 implement ``pytest_pycollect_makemodule(path, parent)``
with the legacy ``path`` argument, which pytest 9 removed: every pytest session then stops at
start-up with a PluginValidationError, whatever it tests. launch_pytest releases before
ros2/launch#947's fix also fail (on launch tests) with pytest 8.4 and later. pytest 8.3 works with
all of them, old and fixed, which is why tools/requirements-venv.txt pins it and
scripts/bootstrap.sh's system mode installs that pin.

The second test reproduces the failure itself: a plugin with launch_testing's legacy hook,
installed as an entry point, and a pytest session run in a subprocess.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: pytest versions that break with launch_testing before 3.4.12 (Jazzy) / 3.8.9 (Kilted): the
#: removed ``path`` hook argument (>= 9), and launch_pytest before ros2/launch#947 (>= 8.4).
KNOWN_BAD_FROM = (8, 4)
#: The oldest pytest a supported ROS 2 distribution ships (Ubuntu Noble's python3-pytest).
OLDEST_SUPPORTED = (7, 4)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def system_route_pytest_pin() -> str:
    """The pytest requirement scripts/bootstrap.sh's system mode installs (its own function, run)."""
    script = (REPO / "scripts" / "bootstrap.sh").read_text()
    functions = script[: script.rindex('main "$@"')]  # everything but the call of main
    # Run from `bash -c`, the script cannot find itself: name its requirements file again.
    call = f"\nREQUIREMENTS={shlex.quote(str(REPO / 'tools' / 'requirements-venv.txt'))}\nsystem_mode_requirements\n"
    result = subprocess.run(["bash", "-c", functions + call], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    pins = [line for line in result.stdout.split() if line.lower().startswith("pytest==")]
    assert len(pins) == 1, f"system mode installs no single pytest pin: {result.stdout!r}"
    return pins[0]


def test_system_route_pins_pytest_outside_the_known_bad_range() -> None:
    pin = system_route_pytest_pin()
    version = _version(pin.split("==")[1])
    assert OLDEST_SUPPORTED <= version < KNOWN_BAD_FROM, (
        f"{pin}: pytest 9 stops every pytest session next to a ROS 2 launch_testing older than Jazzy 3.4.12 / "
        "Kilted 3.8.9 (ros2/launch#972, #974), and pytest 8.4 breaks launch_pytest before ros2/launch#947"
    )


LEGACY_PLUGIN = '''
"""Stand-in for launch_testing.pytest.hooks before ros2/launch#972: the legacy hook signature."""


def pytest_pycollect_makemodule(path, parent):
    return None
'''


@pytest.mark.parametrize("addopts", ["", "-m unit"])
def test_a_session_with_a_legacy_launch_testing_plugin_still_runs(tmp_path: Path, monkeypatch, addopts: str) -> None:
    """Also with PYTEST_ADDOPTS selecting markers in the outer session (e.g. the fast loop's
    ``-m unit``): the inner session is a fresh one and must not inherit that selection."""
    monkeypatch.setenv("PYTEST_ADDOPTS", addopts)
    pin = system_route_pytest_pin().split("==")[1]
    if pytest.__version__ != pin:
        pytest.skip(f"this environment has pytest {pytest.__version__}, not the pinned {pin}: run scripts/bootstrap.sh")
    site = tmp_path / "site"
    (site / "fake_launch_testing").mkdir(parents=True)
    (site / "fake_launch_testing" / "__init__.py").write_text("")
    (site / "fake_launch_testing" / "hooks.py").write_text(LEGACY_PLUGIN)
    dist = site / "fake_launch_testing-3.4.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-launch-testing\nVersion: 3.4.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nlegacy_launch_testing_standin = fake_launch_testing.hooks\n")
    (tmp_path / "test_sample.py").write_text("def test_sample():\n    assert True\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    for outer_setting in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS"):
        env.pop(outer_setting, None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert (
        "fake_launch_testing"
        in subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib.metadata as m; print([e.value for e in m.entry_points(group='pytest11')])",
            ],
            env=env,
            capture_output=True,
            text=True,
        ).stdout
    ), "the stand-in plugin is not visible as an entry point"
    assert result.returncode == 0 and "1 passed" in output, textwrap.shorten(output, 2000)
