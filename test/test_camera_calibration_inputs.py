"""Calibrations as drivers publish them, and absurd ones (issue #14, item 3): ``--camera-info`` and
CameraInfo with 3 or 6 distortion coefficients work and say once what was padded; absurd K or D
are refused with the reason (the CLI before any image is read, the node once, then it falls back).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.cli import main as cli_main
from ros2_ctxpose.cli.infer import CameraSource, load_camera_info

K = [500.0, 0.0, 320.0, 0.0, 501.0, 240.0, 0.0, 0.0, 1.0]


def camera_info_yaml(
    path: Path, K: list[float] = K, D: list[float] = (), model: str = "plumb_bob", size: tuple[int, int] = (640, 480)
) -> Path:
    path.write_text(
        f"image_width: {size[0]}\nimage_height: {size[1]}\ncamera_name: test\n"
        f"camera_matrix: {{rows: 3, cols: 3, data: {list(K)}}}\n"
        f"distortion_model: {model}\n"
        f"distortion_coefficients: {{rows: 1, cols: {len(D)}, data: {list(D)}}}\n"
    )
    return path


def _args(camera_info: Path) -> argparse.Namespace:
    return argparse.Namespace(fx=None, fy=None, cx=None, cy=None, camera_info=camera_info, assumed_hfov_deg=60.0)


@pytest.mark.parametrize(
    "D,padded_to",
    [([0.1, -0.05, 0.001], 4), ([0.1, -0.05, 0.001, 0.002, 0.01, 0.001], 8), ([0.1, -0.05, 0.001, 0.002, 0.01], 5)],
)
def test_driver_coefficient_counts_are_padded_and_said_once(
    tmp_path: Path, D: list[float], padded_to: int, capsys: pytest.CaptureFixture[str]
) -> None:
    cameras = CameraSource(_args(camera_info_yaml(tmp_path / "cam.yaml", D=D)))
    for _ in range(3):
        camera = cameras(640, 480)
    assert camera.dist.size == padded_to
    np.testing.assert_allclose(camera.dist[: len(D)], D)
    err = capsys.readouterr().err.strip().splitlines()
    if padded_to == len(D):
        assert err == []
    else:
        assert len(err) == 1 and f"{len(D)} distortion coefficients zero-padded to {padded_to}" in err[0]
    # The padded camera really undistorts: a point maps to a finite normalised coordinate.
    assert np.isfinite(camera.normalize(np.array([[100.0, 50.0]]))).all()


@pytest.mark.parametrize(
    "K_,D,reason",
    [
        ([1e300, 0, 320, 0, 1e300, 240, 0, 0, 1], [], "focal lengths"),
        ([float("nan"), 0, 320, 0, 500, 240, 0, 0, 1], [], "fx and fy must be finite"),
        ([0.0] * 9, [], "focal lengths"),
        (K, [1e6, 0, 0, 0, 0], "not a real lens"),
        (K, [0.1] * 20, "at most 14"),
        (K, [0.1, 0.1, 0, 0], "equidistant"),
    ],
    ids=["fx=1e300", "fx=nan", "uncalibrated", "huge D", "too many D", "fisheye"],
)
def test_absurd_calibrations_are_refused_with_the_reason(
    tmp_path: Path, K_: list[float], D: list[float], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = "equidistant" if reason == "equidistant" else "plumb_bob"
    path = camera_info_yaml(tmp_path / "cam.yaml", K=K_, D=D, model=model)
    with pytest.raises(ValueError) as exc:
        load_camera_info(path)
    message = str(exc.value)
    assert str(path) in message and reason in message and "unusable calibration" in message
    assert "need camera_matrix" not in message  # it is a camera_info YAML, just not a usable one
    # Through the CLI: one line, exit 2, before any model is loaded or image read.
    assert cli_main.main(["infer", str(tmp_path), "--camera-info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0]


def test_not_a_camera_info_yaml_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("camera_matrix: {data: [1, 2]}\n")
    with pytest.raises(ValueError, match="need camera_matrix"):
        load_camera_info(path)
    with pytest.raises(ValueError, match="cannot be read"):
        load_camera_info(tmp_path / "missing.yaml")


def test_node_side_converter_reports_once_and_falls_back() -> None:
    pytest.importorskip("sensor_msgs.msg", reason="the ROS messages are not importable")
    from sensor_msgs.msg import CameraInfo

    from ros2_ctxpose.ros.camera_info import CameraInfoConverter

    converter = CameraInfoConverter()
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob", k=K, d=[0.1, -0.05, 0.001])
    model, news = converter.convert(info, 640, 480)
    assert model is not None and model.dist.size == 4
    assert len(news) == 1 and "zero-padded to 4" in news[0]
    for _ in range(3):
        again, news = converter.convert(info, 640, 480)
        assert again is model and news == []
    # Another output size: the scaling is news, the padding is not.
    _, news = converter.convert(info, 1280, 960)
    assert len(news) == 1 and "scaled" in news[0]

    absurd = CameraInfo(width=640, height=480, distortion_model="plumb_bob", k=[1e300, 0, 320, 0, 1e300, 240, 0, 0, 1])
    model, news = converter.convert(absurd, 640, 480)
    assert model is None and len(news) == 1 and "unusable" in news[0] and "focal" in news[0]
    model, news = converter.convert(absurd, 640, 480)
    assert model is None and news == []
