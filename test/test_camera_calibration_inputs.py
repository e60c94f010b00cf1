"""Calibrations as drivers publish them, and absurd ones (issue #14, item 3): ``--camera-info`` and
CameraInfo with 3 or 6 distortion coefficients work and say once what was padded; absurd K or D
are refused with the reason (the CLI before any image is read, the node once, then it falls back).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.cli import main as cli_main
from ros2_ctxpose.cli.infer import CameraSource, load_camera_info
from ros2_ctxpose.core.camera import CameraModel, implausible_distance

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


@pytest.fixture(scope="module")
def bus_image(shared_data) -> Path:
    """A real photograph with people (810x1080), and the models to run on it."""
    from ros2_ctxpose.core.detector import default_weights_path

    try:
        default_weights_path()
    except FileNotFoundError as exc:
        pytest.skip(f"model weights missing: {exc}")
    return shared_data("data/images/coco/bus.jpg")


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


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--fov", "-10"], "--assumed-hfov-deg"),  # the deprecated spelling is checked alike
        (["--assumed-hfov-deg", "180"], "--assumed-hfov-deg"),
        (["--assumed-hfov-deg", "nan"], "--assumed-hfov-deg"),
        (["--fx", "inf", "--fy", "500", "--cx", "320", "--cy", "240"], "finite"),
        (["--fx", "500", "--fy", "500", "--cx", "nan", "--cy", "240"], "finite"),
    ],
    ids=["fov=-10", "fov=180", "fov=nan", "fx=inf", "cx=nan"],
)
def test_impossible_camera_flags_are_refused_up_front(
    tmp_path: Path, flags: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Issue: `--fov -10` and `--fx inf` failed frame by frame (every image an error line) instead of
    being refused once, before the models load."""
    from ros2_ctxpose.core import pipeline

    def no_models(*args, **kwargs):
        raise AssertionError("the models were loaded for impossible camera flags")

    monkeypatch.setattr(pipeline.Pose3DPipeline, "from_config", no_models)
    assert cli_main.main(["infer", str(tmp_path), *flags]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "is deprecated" not in line]
    assert len(err) == 1 and named in err[0], err


def test_a_lens_model_that_folds_the_image_is_said_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """k1 = -1 is within the coefficient limits, but the radial factor turns back at 0.38 of the
    corner radius (0.80): points near the border undistort to nonsense."""
    cameras = CameraSource(_args(camera_info_yaml(tmp_path / "cam.yaml", D=[-1.0, 0, 0, 0, 0])))
    for _ in range(3):
        cameras(640, 480)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not monotonic over the 640x480 image" in err[0]
    # Real lenses pass: mild barrel, strong wide-angle barrel, pincushion, a rational model.
    for D in (
        [-0.3, 0.1, 0, 0, 0],
        [-0.4, 0.2, 0.001, 0.001, -0.05],
        [0.2, 0.05, 0, 0, 0],
        [2.0, 0.5, 0, 0, 0.1, 2.3, 0.8, 0.2],
    ):
        camera = CameraModel.from_calibration(K, D, (640, 480), distortion_model="rational_polynomial")
        assert camera.distortion_folds() is None, D


def test_implausible_distances_are_named() -> None:
    assert implausible_distance([2.5, 7.0, 99.0]) is None
    assert "327 m" in implausible_distance([35.0, 327.0])
    assert "non-finite" in implausible_distance([3.0, float("inf")])
    assert "1e+30 m" in implausible_distance([1e30])


@pytest.mark.parametrize(
    "camera",
    [("--camera-info", "k1=500"), ("--fx", "1e5", "--fy", "1e5", "--cx", "405", "--cy", "540")],
    ids=["k1=500", "fx=1e5"],
)
def test_calibrations_that_place_people_absurdly_far_are_said_once(
    tmp_path: Path, bus_image: Path, camera: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue: calibrations just inside the limits went through silently: k1 = 500 put the bus's people
    at 35-327 m; a focal length of 1e5 px (123x the width, within the 1000x limit) at ~300 m."""
    if camera[0] == "--camera-info":
        path = camera_info_yaml(
            tmp_path / "cam.yaml", K=[900, 0, 405, 0, 900, 540, 0, 0, 1], D=[500, 0, 0, 0, 0], size=(810, 1080)
        )
        camera = ("--camera-info", str(path))
    out = tmp_path / "out.jsonl"
    argv = ["infer", str(bus_image), str(bus_image), "--out", str(out), "--backend", "torch", "--device", "cpu"]
    assert cli_main.main([*argv, *camera]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    roots = [np.linalg.norm(p["root_cam_m"]) for line in lines for p in line["people"]]
    assert len(lines) == 2 and roots and max(roots) > 100.0, roots
    warnings = [line for line in capsys.readouterr().err.splitlines() if "placed at" in line]
    assert len(warnings) == 1 and "check the calibration" in warnings[0], warnings


def test_intrinsics_flags_have_the_limits_of_a_calibration(capsys: pytest.CaptureFixture[str]) -> None:
    """--fx 1e30 (finite, > 0) placed people at 0.2 m without a word; a calibration file with that K
    is refused (focal length 1000x off the image width), and so are the flags now, naming them."""
    args = argparse.Namespace(fx=1e30, fy=1e30, cx=405.0, cy=540.0, camera_info=None, assumed_hfov_deg=60.0)
    cameras = CameraSource(args)
    with pytest.raises(ValueError, match="--fx --fy --cx --cy: focal lengths"):
        cameras(810, 1080)
    args.fx = args.fy = 900.0
    assert CameraSource(args)(810, 1080).K[0, 0] == 900.0
