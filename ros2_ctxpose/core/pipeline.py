"""One camera frame in, every person's absolute 3D skeleton out: detector -> lifter -> placement
-> identities.

The ROS node and the CLI both call ``Pose3DPipeline``; it holds no ROS and no file handling, and
everything it can be told is a ``PipelineConfig`` field. All people of a frame are lifted in one
batched call (the lifter's cost is per call far more than per person), and placed in one
vectorised solve. Frames given a time stamp are tracked (``Person3D.track_id`` stays with a
person); still images number their people 0, 1, ...
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import numpy as np
import torch

from .camera import CameraModel
from .config import DYNAMIC, FIELDS, ConfigError, PipelineConfig
from .detector import PoseDetector, create_detector
from .detector.features import crop_people
from .duplicates import distinct_people
from .floor import NOTE_ASSUMED_INTRINSICS, NOTE_DEPTH_MEASURED, Floor, place_on_floor
from .joint_sets import h36m_confidence
from .lifter.model import ContextLifter, load_lifter
from .placement import (
    across_ray_sd,
    depth_root_sd,
    depth_to_metres,
    person_height_px,
    root_covariance,
    root_from_depth,
    root_from_reprojection,
    size_prior_sd,
)
from .results import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_FLOOR,
    ROOT_FROM_INTRINSICS,
    ROOT_SCALE_UNKNOWN,
    FrameResult,
    Person3D,
)
from .tracking import Tracker

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that stage timings are not attributed to the wrong stage."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_device_memory(device: str) -> None:
    """Give a dropped pipeline's memory back: collect it now, and on CUDA empty torch's cache
    (otherwise the allocator keeps the GPU memory for the process)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def torch_threads_for(config: PipelineConfig, backend: str) -> int:
    """How many threads torch (process-wide) should use for a pipeline; 0 = leave torch's default.

    ``cpu_threads`` when set. Otherwise one beside another runtime: the detector's runtime has its
    own thread pool, torch's spinning OpenMP threads beside it slowed the whole frame (measured
    under load: lifter 102 -> 25 ms, frame 317 -> 201 ms p50 with one torch thread), and the lifter
    is too small to need more than one. Benchmarks that hold several pipelines in one process set
    it before each one's calls.
    """
    if config.cpu_threads:
        return config.cpu_threads
    return 1 if backend != "torch" else 0


class Pose3DPipeline:
    """Detector + lifter + placement (+ tracking) for one camera's frames.

    Args:
        detector: any ``PoseDetector`` backend.
        lifter: a ``ContextLifter``; it is moved to the detector's device.
        config: the settings; the detector and lifter must already match its model settings
            (``from_config`` builds all three together). Per-frame settings: ``update``.
        use_context: crop the detector's feature maps for the lifter; ``None`` = when the weights
            say their context branch was trained (an untrained branch adds nothing but cost).
    """

    def __init__(
        self,
        detector: PoseDetector,
        lifter: ContextLifter,
        config: PipelineConfig | None = None,
        *,
        use_context: bool | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        trained = lifter.config.context_trained
        if use_context and not trained:
            raise ConfigError("use_context=True, but these lifter weights have no trained context branch")
        self.use_context = trained if use_context is None else use_context
        if self.use_context and tuple(lifter.config.context_channels) != tuple(detector.feature_channels):
            raise ConfigError(
                f"the lifter's context branch reads {tuple(lifter.config.context_channels)} feature "
                f"channels but the detector gives {tuple(detector.feature_channels)}: these lifter "
                "weights were trained for another detector"
            )
        self.detector = detector
        # The config is the truth for the per-frame settings, whoever built the detector.
        detector.person_threshold = self.config.person_threshold
        detector.nms_iou_threshold = self.config.nms_iou_threshold
        self.device = torch.device(detector.device)
        self.lifter = lifter.to(self.device).eval()
        self.lifter_dtype = next(self.lifter.parameters()).dtype
        self.tracker = Tracker(max_age_s=self.config.track_max_age_s)

    @classmethod
    def from_config(cls, config: PipelineConfig | None = None) -> Pose3DPipeline:
        """The detector and lifter ``config`` names (default: the packaged ones), on one device.

        The detector's precision applies to the detector only (90 % of the time); the lifter stays
        fp32 on the same device (it is tiny, and its output feeds a least-squares fit that fp16
        rounding would only make noisier).
        """
        config = config or PipelineConfig()
        detector = create_detector(config)
        threads = torch_threads_for(config, detector.backend)
        if threads:
            torch.set_num_threads(threads)
        lifter = load_lifter(config.lifter_weights or None, device=detector.device)
        return cls(detector, lifter, config)

    def update(self, **changes: Any) -> None:
        """Apply per-frame settings (``config.DYNAMIC``) to the running pipeline; others need a new
        pipeline and raise ``ConfigError``, as do invalid values (nothing is applied then)."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise ConfigError(f"unknown settings {sorted(unknown)}")
        fixed = set(changes) - DYNAMIC
        if fixed:
            raise ConfigError(f"{sorted(fixed)} cannot change while running (they need the models loaded again)")
        self.config = self.config.replace(**changes)
        self.detector.person_threshold = self.config.person_threshold
        self.detector.nms_iou_threshold = self.config.nms_iou_threshold
        self.tracker.max_age_s = self.config.track_max_age_s

    def reset_tracking(self) -> None:
        """Forget who was seen (a new video); ids keep counting up, none is reused."""
        self.tracker.reset()

    def __call__(
        self,
        image: np.ndarray,
        camera: CameraModel,
        *,
        bgr: bool = True,
        depth: np.ndarray | None = None,
        depth_scale: float = 1.0,
        stamp_s: float | None = None,
        floor_from_camera: np.ndarray | None = None,
    ) -> FrameResult:
        """People in ``image`` (H, W, 3 uint8) seen by ``camera``.

        ``stamp_s``: when the frame was taken (seconds, any clock that only moves forward within
        one camera's stream): the people are then tracked across calls; ``None`` for unrelated
        still images.

        ``depth``: optional depth image aligned with ``image`` (same view; it may have another
        resolution), in raw units times ``depth_scale`` = metres (16UC1 millimetres: 0.001,
        32FC1 metres: 1.0). Raises ``ValueError`` when the image does not match the camera.

        ``floor_from_camera``: optional 4x4 pose of the camera above the floor (X_floor = R X_cam +
        t; floor z up, z = 0 the floor; the node's TF lookup of ``config.floor_frame``): people
        standing on their feet are then placed on it (``root_source`` "floor", ``core/floor.py``),
        the others keep the intrinsics' placement with the reason in ``placement_note``. Raises
        ``ValueError`` for a matrix that is not a finite rigid transform.
        """
        floor = Floor.from_matrix(floor_from_camera) if floor_from_camera is not None else None
        t_start = time.perf_counter()
        timings = dict.fromkeys(("preprocess", "detector", "lifter", "placement"), 0.0)
        image = np.asarray(image)
        if image.size == 0:
            log.warning("empty image: no people")
            timings["total"] = _ms(t_start)
            return FrameResult([], timings)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if image.shape[0] * image.shape[1] > self.config.max_image_pixels:
            raise ValueError(
                f"image is {image.shape[1]}x{image.shape[0]}, more than max_image_pixels = "
                f"{self.config.max_image_pixels}"
            )
        if (image.shape[1], image.shape[0]) != (camera.width, camera.height):
            raise ValueError(
                f"image is {image.shape[1]}x{image.shape[0]} but the camera is {camera.width}x{camera.height}"
            )

        t = time.perf_counter()
        det = self.detector.detect(image, bgr=bgr)
        _sync(self.device)
        timings["detector"] = _ms(t)
        all_scores = np.asarray(det.scores, dtype=np.float64)
        all_keypoints = np.asarray(det.keypoints, dtype=np.float64)
        all_boxes = np.asarray(det.boxes_xyxy, dtype=np.float64)
        order = np.argsort(-all_scores, kind="stable")
        order = order[distinct_people(all_keypoints[order], all_boxes[order], self.config.duplicate_oks_threshold)]
        order = order[: self.config.max_people]
        if order.size == 0:
            if stamp_s is not None:
                self.tracker.update(np.zeros((0, 4)), None, stamp_s)  # time passes for the tracks too
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
            pose_t, placement_t = self.lifter.lift(*lifter_args)
        pose_rel = _float64(pose_t)
        placement_pose = pose_rel if placement_t is pose_t else _float64(placement_t)  # geometry-only: one pose
        timings["lifter"] = _ms(t)

        t = time.perf_counter()
        joints, sources, covs, notes = self._place(
            pose_rel, placement_pose, keypoints, kp_norm, conf, camera, image.shape[:2], depth, depth_scale, floor
        )
        joints_uv = camera.project(joints)
        joints_conf = h36m_confidence(conf)
        boxes = all_boxes[order]
        scores = all_scores[order]
        ids = np.arange(len(order)) if stamp_s is None else self.tracker.update(boxes, keypoints, stamp_s)
        people = [
            Person3D(
                track_id=int(ids[i]),
                score=float(scores[i]),
                bbox_xyxy=boxes[i],
                keypoints_2d=keypoints[i],
                joints_3d=joints[i],
                joints_uv=joints_uv[i],
                joints_conf=joints_conf[i],
                root=joints[i, 0].copy(),
                root_source=sources[i],
                root_cov=covs[i],
                placement_note=notes[i],
            )
            for i in range(len(order))
        ]
        timings["placement"] = _ms(t)
        timings["total"] = _ms(t_start)
        return FrameResult(people, timings)

    def _lifter_inputs(
        self, kp_norm: np.ndarray, conf: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray, det: Any
    ) -> tuple[Any, ...]:
        """Positional arguments of the lifter: (kp_norm, conf[, crops, joints_grid])."""
        args: tuple[Any, ...] = (self._tensor(kp_norm), self._tensor(conf))
        if self.use_context:
            cfg = self.lifter.config
            people = crop_people(
                det.features,
                det.letterbox,
                self._tensor(boxes),
                self._tensor(keypoints[..., :2]),
                cfg.context_crop_sizes,
                cfg.context_crop_margin,
            )
            args += (tuple(c.to(self.lifter_dtype) for c in people.crops), people.joints_grid.to(self.lifter_dtype))
        return args

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=self.lifter_dtype, device=self.device)

    def _place(
        self,
        pose_rel: np.ndarray,
        placement_pose: np.ndarray,
        keypoints: np.ndarray,
        kp_norm: np.ndarray,
        conf: np.ndarray,
        camera: CameraModel,
        image_hw: tuple[int, int],
        depth: np.ndarray | None,
        depth_scale: float,
        floor: Floor | None,
    ) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """Absolute joints (B, 17, 3), root sources, root covariances (B, 3, 3) and placement notes.
        The root is placed with ``placement_pose`` (the lifter's geometry path, ``lift``), the
        joints around it are ``pose_rel``.

        Depth where it has enough valid pixels; else the floor for people standing on it (the
        skeleton scaled with its distance: ``s * (P + t)`` reprojects as ``P + t`` does); else
        the reprojection with the lifter's body size. Assumed intrinsics give no covariance.
        """
        threshold = self.config.keypoint_threshold
        roots = root_from_reprojection(placement_pose, kp_norm, conf, min_conf=threshold)
        B = len(roots)
        fallback = ROOT_SCALE_UNKNOWN if camera.assumed else ROOT_FROM_INTRINSICS
        sources, notes = [fallback] * B, [""] * B
        scale, scale_sd = np.ones(B), size_prior_sd(person_height_px(keypoints[..., :2], conf, threshold))
        if floor is not None and camera.assumed:
            notes = [NOTE_ASSUMED_INTRINSICS] * B
        elif floor is not None:
            on_floor = place_on_floor(placement_pose, roots, keypoints, camera, floor, min_conf=threshold)
            scale, scale_sd, notes = on_floor.scale, on_floor.scale_sd, on_floor.notes
            sources = [ROOT_FROM_FLOOR if used else s for used, s in zip(on_floor.used, sources)]
        roots = roots * scale[:, None]
        joints = scale[:, None, None] * pose_rel + roots[:, None, :]
        focal = float(camera.K[1, 1])
        covs = root_covariance(roots, np.linalg.norm(roots, axis=1) * scale_sd, across_ray_sd(roots, focal))
        if camera.assumed:
            covs[:] = np.nan  # distances are not metric: unknown
        if depth is None:
            return joints, sources, covs, notes
        depth_m = depth_to_metres(depth, depth_scale)
        to_depth_px = np.array([depth_m.shape[1] / image_hw[1], depth_m.shape[0] / image_hw[0]])
        d_roots, ok = root_from_depth(
            placement_pose, keypoints[..., :2] * to_depth_px, kp_norm, conf, depth_m, min_conf=threshold
        )
        joints[ok] = pose_rel[ok] + d_roots[ok, None, :]
        covs[ok] = root_covariance(d_roots[ok], depth_root_sd(d_roots[ok]), across_ray_sd(d_roots[ok], focal))
        for i in np.flatnonzero(ok):
            sources[i] = ROOT_FROM_DEPTH
            notes[i] = NOTE_DEPTH_MEASURED if floor is not None else ""
        return joints, sources, covs, notes


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.float().cpu().numpy().astype(np.float64)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
