"""sensor_msgs/CameraInfo -> CameraModel (through ``CameraModel.from_calibration``).

CameraInfo's ``plumb_bob`` and ``rational_polynomial`` coefficients are in OpenCV's order, which
is what CameraModel uses; other models (``equidistant`` fisheye) are refused. When the image has
another size than the calibration (a driver scaling its output), the intrinsics are scaled.
"""

from __future__ import annotations

from sensor_msgs.msg import CameraInfo

from ros2_ctxpose.core.camera import CameraModel


def camera_model(info: CameraInfo, width: int, height: int) -> CameraModel:
    """The camera of an image of ``width`` x ``height`` from its CameraInfo; ValueError if unusable
    (an uncalibrated camera's all-zero K included)."""
    return CameraModel.from_calibration(info.k, info.d, (width, height),
                                        calibration_size=(info.width, info.height),
                                        distortion_model=info.distortion_model)
