"""sensor_msgs/CameraInfo -> CameraModel (through ``CameraModel.from_calibration``).

CameraInfo's ``plumb_bob`` and ``rational_polynomial`` coefficients are in OpenCV's order, which
is what CameraModel uses; coefficient counts OpenCV does not take (3, 6, ...) are zero-padded,
other models (``equidistant`` fisheye) and calibrations that are no real camera (zero, non-finite
or absurd K such as fx = 1e300, huge D) are refused. When the image has another size than the
calibration (a driver scaling its output), the intrinsics are scaled.

A camera publishes the same CameraInfo with every frame: ``CameraInfoConverter`` converts it once
per calibration and image size and hands out what was padded, scaled or refused only the first
time, for the node to log once and fall back (to an assumed field of view) where it was refused.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor_msgs.msg import CameraInfo

from ros2_ctxpose.core.camera import CameraModel


def camera_model(info: CameraInfo, width: int, height: int) -> CameraModel:
    """The camera of an image of ``width`` x ``height`` from its CameraInfo; ValueError if unusable
    (an uncalibrated camera's all-zero K included). ``notes`` says what was padded or scaled."""
    return CameraModel.from_calibration(
        info.k,
        info.d,
        (width, height),
        calibration_size=(info.width, info.height),
        distortion_model=info.distortion_model,
    )


def _key(info: CameraInfo, width: int, height: int) -> tuple:
    return (
        tuple(float(v) for v in info.k),
        tuple(float(v) for v in info.d),
        str(info.distortion_model),
        int(info.width),
        int(info.height),
        int(width),
        int(height),
    )


class CameraInfoConverter:
    """``camera_model`` for a stream of frames, converting each calibration once and reporting once.

    ``convert(info, width, height)`` returns ``(model, news)``: the CameraModel, or None when the
    CameraInfo is unusable (the caller falls back), and the messages not reported before (what was
    padded or scaled, or why it was refused: "CameraInfo: ..."), empty on later frames.
    """

    def __init__(self, cache_size: int = 8) -> None:
        self._cache: OrderedDict[tuple, tuple[CameraModel | None, str | None]] = OrderedDict()
        self._cache_size = cache_size
        self._reported: set[str] = set()

    def convert(self, info: CameraInfo, width: int, height: int) -> tuple[CameraModel | None, list[str]]:
        key = _key(info, width, height)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            try:
                self._cache[key] = (camera_model(info, width, height), None)
            except ValueError as exc:
                self._cache[key] = (None, str(exc))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        model, error = self._cache[key]
        messages = (
            [f"CameraInfo: {n}" for n in model.notes]
            if model is not None
            else [f"CameraInfo unusable ({error}); falling back to an assumed field of view"]
        )
        news = [m for m in messages if m not in self._reported]
        self._reported.update(news)
        return model, news
