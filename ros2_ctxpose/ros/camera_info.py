"""sensor_msgs/CameraInfo -> CameraModel.

CameraInfo's ``plumb_bob`` (k1, k2, t1, t2, k3) and ``rational_polynomial`` (k1, k2, t1, t2, k3,
k4, k5, k6) coefficients are in OpenCV's order, which is what CameraModel uses. Fisheye
(``equidistant``) distortion is not modelled and is refused. When the image has another size than
the calibration (a driver scaling its output), the intrinsics are scaled to the image.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo

from ros2_ctxpose.core.camera import CameraModel

#: Distortion models whose coefficients CameraModel (OpenCV) takes as they are.
SUPPORTED_DISTORTION = ("plumb_bob", "rational_polynomial")


def camera_model(info: CameraInfo, width: int, height: int) -> CameraModel:
    """The camera of an image of ``width`` x ``height`` from its CameraInfo; ValueError if unusable.

    An all-zero K (an uncalibrated camera's CameraInfo) is refused like any other invalid matrix.
    """
    K = np.array(info.k, dtype=np.float64).reshape(3, 3)
    dist = np.array(info.d, dtype=np.float64)
    if dist.size and np.any(dist != 0.0) and info.distortion_model not in SUPPORTED_DISTORTION:
        raise ValueError(f"distortion model {info.distortion_model!r} is not supported "
                         f"(supported: {', '.join(SUPPORTED_DISTORTION)})")
    if info.width and info.height and (info.width, info.height) != (width, height):
        scale = np.array([[width / info.width], [height / info.height], [1.0]])
        K = K * scale
    return CameraModel(K=K, width=width, height=height, dist=dist if dist.size else np.zeros(5))
