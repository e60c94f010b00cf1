"""2D multi-person pose detector: YOLO11/YOLOv8-pose in plain PyTorch (no ultralytics).

Public API (see docs/ARCHITECTURE.md): :class:`PoseDetector` runs the network and returns one
:class:`Detections` per image (boxes, scores, COCO-17 keypoints in original pixels, backbone
feature maps, and the :class:`Letterbox` that maps pixels to the maps); :func:`sample_features`
reads per-joint features from those maps for the lifter.
"""

from .checkpoint import CheckpointError
from .detector import Detections, PoseDetector, default_weights_path
from .features import sample_features
from .letterbox import Letterbox

__all__ = ["CheckpointError", "Detections", "Letterbox", "PoseDetector", "default_weights_path",
           "sample_features"]
