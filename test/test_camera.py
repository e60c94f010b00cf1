"""``CameraModel``: pixels <-> normalised coordinates, and ``from_calibration`` (padding, scaling to
the image, refusing what is no camera)."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.camera import CameraModel

K = np.array([[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]])
PIXELS = np.array([[0.0, 0.0], [320.0, 240.0], [639.0, 479.0], [100.5, 400.25]])


def test_normalize_and_project_are_inverse_with_distortion() -> None:
    cam = CameraModel(K=K, width=640, height=480, dist=np.array([-0.2, 0.05, 0.001, -0.002, 0.0]))
    xy = cam.normalize(PIXELS)
    points = np.column_stack([xy * 3.0, np.full(len(xy), 3.0)])
    # undistortPoints iterates (OpenCV's default: 5 rounds): ~4e-3 px left at the corners.
    np.testing.assert_allclose(cam.project(points), PIXELS, atol=0.01)
    plain = CameraModel(K=K, width=640, height=480)
    np.testing.assert_allclose(plain.normalize(PIXELS[1:2]), [[0.0, 0.0]])
    assert not np.allclose(cam.normalize(PIXELS[:1]), plain.normalize(PIXELS[:1]), atol=1e-3)


def test_calibration_at_the_image_size_is_taken_as_is() -> None:
    dist = [-0.2, 0.05, 0.001, -0.002, 0.01]
    cam = CameraModel.from_calibration(K.ravel().tolist(), dist, (640, 480), calibration_size=(640, 480))
    np.testing.assert_array_equal(cam.K, K)
    np.testing.assert_array_equal(cam.dist, dist)
    assert (cam.width, cam.height, cam.assumed, cam.notes) == (640, 480, False, ())
    assert CameraModel.from_calibration(K, [], (640, 480)).dist.tolist() == [0.0] * 5  # no coefficients: none


@pytest.mark.parametrize(("given", "padded_to"), [(3, 4), (6, 8), (9, 12), (13, 14)])
def test_coefficient_counts_opencv_does_not_take_are_zero_padded(given: int, padded_to: int) -> None:
    dist = [0.01 * (i + 1) for i in range(given)]
    cam = CameraModel.from_calibration(K, dist, (640, 480))
    np.testing.assert_array_equal(cam.dist, dist + [0.0] * (padded_to - given))
    assert cam.notes == (f"{given} distortion coefficients zero-padded to {padded_to} (OpenCV order)",)
    # What the padding means: the missing higher-order terms are zero, the given ones keep their place.
    explicit = CameraModel(K=K, width=640, height=480, dist=np.array(dist + [0.0] * (padded_to - given)))
    np.testing.assert_allclose(cam.normalize(PIXELS), explicit.normalize(PIXELS))


@pytest.mark.parametrize("count", [4, 5, 8, 12, 14])
def test_coefficient_counts_opencv_takes_are_kept(count: int) -> None:
    cam = CameraModel.from_calibration(K, [0.001] * count, (640, 480), distortion_model="rational_polynomial")
    assert cam.dist.size == count and cam.notes == ()


def test_more_than_fourteen_coefficients_are_refused() -> None:
    with pytest.raises(ValueError, match="15 distortion coefficients; OpenCV's models have at most 14"):
        CameraModel.from_calibration(K, [0.0] * 15, (640, 480))


def test_intrinsics_are_scaled_to_the_image_size() -> None:
    """A driver that halves its output keeps its calibration: the same scene point must still map
    to the same direction."""
    dist = [-0.2, 0.05, 0.001, -0.002, 0.0]
    full = CameraModel.from_calibration(K * [[2], [2], [1]], dist, (1280, 960))
    half = CameraModel.from_calibration(K * [[2], [2], [1]], dist, (640, 480), calibration_size=(1280, 960))
    np.testing.assert_allclose(half.K, K)
    np.testing.assert_array_equal(half.dist, dist)  # coefficients act on normalised coordinates: unchanged
    assert half.notes == ("intrinsics calibrated for 1280x960 scaled to the 640x480 image",)
    np.testing.assert_allclose(half.normalize(PIXELS), full.normalize(PIXELS * 2), atol=1e-9)


def test_a_changed_aspect_ratio_scales_each_axis() -> None:
    cam = CameraModel.from_calibration(K, (), (1280, 720), calibration_size=(640, 480))
    np.testing.assert_allclose(cam.K, [[1200, 0, 640], [0, 915, 360], [0, 0, 1]])
    assert (cam.width, cam.height) == (1280, 720)


def test_image_and_calibration_size_default_to_each_other() -> None:
    cam = CameraModel.from_calibration(K, (), calibration_size=(640, 480))
    assert (cam.width, cam.height, cam.notes) == (640, 480, ())
    # An unknown calibration size (CameraInfo's 0x0) scales nothing.
    assert CameraModel.from_calibration(K, (), (640, 480), calibration_size=(0, 0)).notes == ()
    with pytest.raises(ValueError, match="give the image size or the calibration size"):
        CameraModel.from_calibration(K, ())


@pytest.mark.parametrize(
    ("k", "message"),
    [
        (np.zeros((3, 3)), "not a real camera"),
        (K * [[-1], [1], [1]], "not a real camera"),  # a negative focal length
        (K * [[1e5], [1e5], [1]], "not a real camera"),  # 6e7 px for a 640 px image
        (K * [[1e-4], [1e-4], [1]], "not a real camera"),  # 0.06 px
        (np.full((3, 3), np.nan), "invalid camera matrix"),
        (np.array([[500.0, 0, 1e12], [0, 500.0, 240], [0, 0, 1]]), "principal point"),
    ],
)
def test_absurd_intrinsics_are_refused(k: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CameraModel.from_calibration(k, (), (640, 480))


@pytest.mark.parametrize("dist", [[1e4, 0, 0, 0, 0], [0, 0, 0, np.nan, 0], [np.inf, 0, 0]])
def test_absurd_distortion_is_refused(dist: list[float]) -> None:
    with pytest.raises(ValueError, match="not a real lens"):
        CameraModel.from_calibration(K, dist, (640, 480))


def test_unsupported_distortion_model_is_refused_unless_it_distorts_nothing() -> None:
    with pytest.raises(ValueError, match="distortion model 'equidistant' is not supported.*plumb_bob"):
        CameraModel.from_calibration(K, [0.1, 0.01, 0.0, 0.0], (640, 480), distortion_model="equidistant")
    cam = CameraModel.from_calibration(K, [0.0] * 4, (640, 480), distortion_model="equidistant")
    assert not cam.has_distortion


def test_from_fov_is_marked_assumed() -> None:
    cam = CameraModel.from_fov(640, 480, 90.0)
    assert cam.assumed and cam.K[0, 0] == pytest.approx(320.0)
    with pytest.raises(ValueError, match="field of view"):
        CameraModel.from_fov(640, 480, 180.0)
