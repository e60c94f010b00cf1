"""Annotated frames (image + camera + 3D joints) as training/test samples for the context branch.

Any set in the ``../shared/data/images/annotations.json`` format works: each entry has the image,
``K`` (and ``dist_k``/``dist_p`` when the lens is distorted), ``joint_names`` (a layout known to
``core.joint_sets``) and ``joints_3d_cam_m``. The detector supplies the 2D keypoints and the
feature maps, exactly as at inference, so the context branch is trained on what it will see.
The detected person that belongs to the annotation is the one whose keypoints lie nearest to the
projected ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.detector import PoseDetector
from ros2_ctxpose.core.joint_sets import JOINT_SETS, JointSetMapping
from ros2_ctxpose.core.skeleton import H36M17, index_of


@dataclass(frozen=True)
class AnnotatedSample:
    file: str
    dataset: str
    kp_norm: Tensor  # (17, 2) undistorted normalised coordinates of the detected COCO keypoints
    conf: Tensor  # (17,)
    grid_xy: Tensor  # (17, 2) the keypoints in the feature maps' grid_sample coordinates
    features: tuple[Tensor, ...]  # (1, C, h, w) per level, detached, float32
    target: Tensor  # (M, 3) ground truth of the mapping's compared joints, root-relative, metres
    mapping: JointSetMapping

    def predicted(self, pose_h36m: Tensor) -> Tensor:
        """(B, 17, 3) lifter output -> (B, M, 3) compared joints relative to the mapping's root
        (in torch, so the loss can flow back; ``JointSetMapping`` does the same in numpy)."""
        compared = [index_of(H36M17, h) for _, h in self.mapping.compared]
        root = [index_of(H36M17, h) for _, h in self.mapping.root]
        return pose_h36m[:, compared] - pose_h36m[:, root].mean(1, keepdim=True)


def camera_of(entry: dict, width: int, height: int) -> CameraModel:
    dist = np.zeros(5)
    if entry.get("dist_k"):
        k, p = entry["dist_k"], entry["dist_p"]
        dist = np.array([k[0], k[1], p[0], p[1], k[2]])
    return CameraModel(K=np.asarray(entry["K"]), width=width, height=height, dist=dist)


def load_annotated_samples(
    detector: PoseDetector, images_dir: Path, datasets: tuple[str, ...] | None = None
) -> list[AnnotatedSample]:
    """One sample per annotated image with 3D ground truth and a matching detection.

    Images where the detector finds nobody are skipped with a printed note (the caller reports
    how many samples it got).
    """
    ann = json.loads((images_dir / "annotations.json").read_text())
    samples = []
    for entry in ann["images"]:
        if entry.get("joint_names") not in JOINT_SETS or "joints_3d_cam_m" not in entry:
            continue
        if datasets is not None and entry["dataset"] not in datasets:
            continue
        image = cv2.imread(str(images_dir / entry["file"]))
        if image is None:
            print(f"skipped {entry['file']}: cannot read the image")
            continue
        det = detector.detect(image)
        mapping = JOINT_SETS[entry["joint_names"]]
        cam = camera_of(entry, image.shape[1], image.shape[0])
        joints = np.asarray(entry["joints_3d_cam_m"], dtype=np.float64)
        person = _matching_person(det.keypoints, cam.project(joints), mapping)
        if person is None:
            print(f"skipped {entry['file']}: no detected person")
            continue
        kp_px = det.keypoints[person, :, :2].astype(np.float64)
        gt = mapping.gt_compared(joints) - mapping.gt_root(joints)[None]
        samples.append(AnnotatedSample(
            file=entry["file"], dataset=entry["dataset"],
            kp_norm=torch.from_numpy(cam.normalize(kp_px)).float(),
            conf=torch.from_numpy(det.keypoints[person, :, 2]).float(),
            grid_xy=torch.from_numpy(det.letterbox.to_grid(kp_px)).float(),
            features=tuple(f.detach().float().cpu() for f in det.features),
            target=torch.from_numpy(gt).float(), mapping=mapping,
        ))
    return samples


def _matching_person(keypoints: np.ndarray, gt_px: np.ndarray, mapping: JointSetMapping) -> int | None:
    if len(keypoints) == 0:
        return None
    d_idx, c_idx = mapping.coco_pairs()
    dist = np.linalg.norm(keypoints[:, c_idx, :2] - gt_px[None, d_idx], axis=-1).mean(-1)
    return int(np.argmin(dist))
