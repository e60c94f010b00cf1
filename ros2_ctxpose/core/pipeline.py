"""One camera frame in, every person's absolute 3D skeleton out: detector -> lifter -> placement.

The ROS node and the CLI both call ``Pose3DPipeline``; it holds no ROS and no file handling. All
people of a frame are lifted in one batched call (the lifter's cost is per call far more than per
person), and placed in one vectorised solve.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .camera import CameraModel
from .detector.features import crop_people
from .duplicates import distinct_people
from .joint_sets import h36m_confidence
from .placement import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_INTRINSICS,
    ROOT_SCALE_UNKNOWN,
    depth_to_metres,
    root_from_depth,
    root_from_reprojection,
)

log = logging.getLogger(__name__)


@dataclass
class Person3D:
    """One person in one frame. Arrays are float64 numpy."""

    score: float
    bbox_xyxy: np.ndarray      # (4,) source pixels
    keypoints_2d: np.ndarray   # (17, 3) COCO-17 [u, v, conf], source pixels (detector output)
    joints_3d: np.ndarray      # (17, 3) H36M-17, camera optical frame, metres, absolute
    joints_uv: np.ndarray      # (17, 2) joints_3d projected into the image (pixels)
    joints_conf: np.ndarray    # (17,) per H36M-17 joint, from the COCO confidences
    root: np.ndarray           # (3,) = joints_3d[0]
    root_source: str           # ROOT_FROM_INTRINSICS | ROOT_FROM_DEPTH | ROOT_SCALE_UNKNOWN


@dataclass
class FrameResult:
    people: list[Person3D] = field(default_factory=list)
    #: Milliseconds per stage: "preprocess" (input checks, keypoint normalisation, lifter inputs),
    #: "detector", "lifter", "placement" and "total".
    timings_ms: dict[str, float] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that stage timings are not attributed to the wrong stage."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Pose3DPipeline:
    """Detector + lifter + placement for one camera frame.

    Args:
        detector: a ``PoseDetector`` (see docs/ARCHITECTURE.md).
        lifter: a ``ContextLifter``; it is moved to the detector's device.
        use_context: feed the detector's feature maps to the lifter; ``None`` = when the weights
            say their context branch was trained (an untrained branch adds nothing but cost).
        max_people: the highest-scoring people kept per frame.
        keypoint_threshold: keypoints below this confidence do not count for placement.
        duplicate_oks: a detection whose keypoints match a higher-scoring one's with more than
            this OKS is the same person again and is dropped (``duplicates``); 1 keeps all.
    """

    def __init__(self, detector: Any, lifter: torch.nn.Module, *, use_context: bool | None = None,
                 max_people: int = 10, keypoint_threshold: float = 0.3, duplicate_oks: float = 0.5) -> None:
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        if not 0.0 < duplicate_oks <= 1.0:
            raise ValueError(f"duplicate_oks must be in (0, 1], got {duplicate_oks}")
        trained = bool(getattr(getattr(lifter, "config", None), "context_trained", False))
        if use_context and not trained:
            raise ValueError("use_context=True, but these lifter weights have no trained context branch")
        self.detector = detector
        self.device = torch.device(getattr(detector, "device", "cpu"))
        self.lifter = lifter.to(self.device).eval()
        self.lifter_dtype = next(self.lifter.parameters()).dtype
        self.use_context = trained if use_context is None else use_context
        self.max_people = max_people
        self.keypoint_threshold = keypoint_threshold
        self.duplicate_oks = duplicate_oks

    @classmethod
    def create(cls, *, detector_weights: str | None = None, lifter_weights: str | None = None,
               device: str = "auto", half: bool | None = None, imgsz: int = 640,
               person_threshold: float = 0.25, iou_threshold: float = 0.7,
               keypoint_threshold: float = 0.3, max_people: int = 10, duplicate_oks: float = 0.5,
               cpu_bf16: bool = False) -> "Pose3DPipeline":
        """The shipped (or given) detector and lifter weights, on one device.

        ``half`` (fp16 on CUDA) and ``cpu_bf16`` (bf16 autocast on CPU) apply to the detector,
        which is 90 % of the time; the lifter stays fp32 on the same device (it is tiny,
        and its output feeds a least-squares fit that fp16 rounding would only make noisier).
        """
        from .detector import PoseDetector
        from .lifter import load_lifter

        detector = PoseDetector(detector_weights, device=device, half=half, imgsz=imgsz,
                                conf=person_threshold, iou=iou_threshold, cpu_bf16=cpu_bf16)
        lifter = load_lifter(lifter_weights, device=str(getattr(detector, "device", "cpu")))
        return cls(detector, lifter, max_people=max_people, keypoint_threshold=keypoint_threshold,
                   duplicate_oks=duplicate_oks)

    def __call__(self, image: np.ndarray, camera: CameraModel, *, bgr: bool = True,
                 depth: np.ndarray | None = None, depth_scale: float = 1.0) -> FrameResult:
        """People in ``image`` (H, W, 3 uint8) seen by ``camera``.

        ``depth``: optional depth image aligned with ``image`` (same view; it may have another
        resolution), in raw units times ``depth_scale`` = metres (16UC1 millimetres: 0.001,
        32FC1 metres: 1.0). Raises ``ValueError`` when the image does not match the camera.
        """
        t_start = time.perf_counter()
        timings = dict.fromkeys(("preprocess", "detector", "lifter", "placement"), 0.0)
        image = np.asarray(image)
        if image.size == 0:
            log.warning("empty image: no people")
            timings["total"] = _ms(t_start)
            return FrameResult([], timings)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if (image.shape[1], image.shape[0]) != (camera.width, camera.height):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but the camera is "
                             f"{camera.width}x{camera.height}")

        t = time.perf_counter()
        det = self.detector.detect(image, bgr=bgr)
        _sync(self.device)
        timings["detector"] = _ms(t)
        all_scores = np.asarray(det.scores, dtype=np.float64)
        all_keypoints = np.asarray(det.keypoints, dtype=np.float64)
        all_boxes = np.asarray(det.boxes_xyxy, dtype=np.float64)
        order = np.argsort(-all_scores, kind="stable")
        order = order[distinct_people(all_keypoints[order], all_boxes[order], self.duplicate_oks)]
        order = order[: self.max_people]
        if order.size == 0:
            timings["total"] = _ms(t_start)
            return FrameResult([], timings)

        t = time.perf_counter()
        keypoints = all_keypoints[order]
        kp_norm = camera.normalize(keypoints[..., :2])
        conf = np.nan_to_num(keypoints[..., 2], nan=0.0)
        lifter_args = self._lifter_inputs(kp_norm, conf, keypoints, all_boxes[order], det)
        timings["preprocess"] = _ms(t)

        t = time.perf_counter()
        with torch.inference_mode():
            pose_rel = self.lifter(*lifter_args).float().cpu().numpy().astype(np.float64)
        timings["lifter"] = _ms(t)

        t = time.perf_counter()
        roots, sources = self._place(pose_rel, keypoints, kp_norm, conf, camera, image.shape[:2],
                                     depth, depth_scale)
        joints = pose_rel + roots[:, None, :]
        joints_uv = camera.project(joints)
        joints_conf = h36m_confidence(conf)
        boxes = all_boxes[order]
        scores = all_scores[order]
        people = [
            Person3D(score=float(scores[i]), bbox_xyxy=boxes[i], keypoints_2d=keypoints[i],
                     joints_3d=joints[i], joints_uv=joints_uv[i], joints_conf=joints_conf[i],
                     root=joints[i, 0].copy(), root_source=sources[i])
            for i in range(len(order))
        ]
        timings["placement"] = _ms(t)
        timings["total"] = _ms(t_start)
        return FrameResult(people, timings)

    def _lifter_inputs(self, kp_norm: np.ndarray, conf: np.ndarray, keypoints: np.ndarray,
                       boxes: np.ndarray, det: Any) -> tuple[Any, ...]:
        """Positional arguments of the lifter: (kp_norm, conf[, crops, joints_grid])."""
        args: tuple[Any, ...] = (self._tensor(kp_norm), self._tensor(conf))
        if self.use_context:
            cfg = self.lifter.config
            people = crop_people(det.features, det.letterbox, self._tensor(boxes), self._tensor(keypoints[..., :2]),
                                 cfg.context_crop_sizes, cfg.context_crop_margin)
            args += (tuple(c.to(self.lifter_dtype) for c in people.crops), people.joints_grid.to(self.lifter_dtype))
        return args

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=self.lifter_dtype, device=self.device)

    def _place(self, pose_rel: np.ndarray, keypoints: np.ndarray, kp_norm: np.ndarray,
               conf: np.ndarray, camera: CameraModel, image_hw: tuple[int, int],
               depth: np.ndarray | None, depth_scale: float) -> tuple[np.ndarray, list[str]]:
        """Roots (B, 3) and their sources: depth where it has enough valid pixels, else reprojection."""
        roots = root_from_reprojection(pose_rel, kp_norm, conf, min_conf=self.keypoint_threshold)
        fallback = ROOT_SCALE_UNKNOWN if camera.assumed else ROOT_FROM_INTRINSICS
        sources = [fallback] * len(roots)
        if depth is None:
            return roots, sources
        depth_m = depth_to_metres(depth, depth_scale)
        to_depth_px = np.array([depth_m.shape[1] / image_hw[1], depth_m.shape[0] / image_hw[0]])
        d_roots, ok = root_from_depth(pose_rel, keypoints[..., :2] * to_depth_px, kp_norm, conf,
                                      depth_m, min_conf=self.keypoint_threshold)
        roots[ok] = d_roots[ok]
        return roots, [ROOT_FROM_DEPTH if k else s for k, s in zip(ok, sources)]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
