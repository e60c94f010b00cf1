"""Measure where the detector's COCO keypoints sit relative to Human3.6M joint centres.

COCO annotators click on the skin surface (hips at the outer hip, the nose at the tip), while
H36M joints are joint centres from mocap, so the two layouts differ by a systematic offset that
the lifter must learn. We estimate it on the annotated H36M frames in ``../shared/data/images``,
where both the ground-truth 3D joints and the golden YOLO11n keypoints exist, as a 3D offset in a
body frame (``core.body_frame.body_axes``: left, up, forward), shared by the left and right joint with the lateral part mirrored. The fit is
linearised around the ground-truth projection (offsets are a few centimetres).

Run ``python -m ros2_ctxpose.training.keypoint_offsets`` to print the fit; its output is
what ``synthetic_2d.COCO_OFFSETS_BODY_M`` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_ctxpose.core.annotations import read_annotations
from ros2_ctxpose.core.body_frame import body_axes
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.paths import shared_data_dir
from ros2_ctxpose.core.skeleton import COCO17, H36M17, index_of

#: COCO joint -> H36M joint it is modelled on (eyes and ears have none: H36M has no face points).
COCO_FROM_H36M: dict[str, str] = {
    "nose": "neck_nose",
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hip": "left_hip",
    "right_hip": "right_hip",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
}


def mirror_sign(coco_name: str) -> np.ndarray:
    """Right-side joints share the left side's offset with the lateral component negated."""
    return np.array([-1.0 if coco_name.startswith("right_") else 1.0, 1.0, 1.0])


def _projection_jacobian(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """d(pixel)/d(camera point) of a pinhole camera at X (3,): (2, 3)."""
    x, y, z = X
    return np.array([[K[0, 0] / z, 0.0, -K[0, 0] * x / z**2], [0.0, K[1, 1] / z, -K[1, 1] * y / z**2]])


def _golden_h36m(images_dir: Path, golden_files: Iterable[str]) -> Iterator[tuple[str, CameraModel, np.ndarray]]:
    """(file, camera for projecting only, H36M-17 joints) of each h36m17-annotated frame the golden
    detector outputs cover."""
    keys = set(golden_files)
    for im in read_annotations(images_dir / "annotations.json"):
        if im.truth is None or im.truth.joint_set != "h36m17" or im.K is None:
            continue
        if f"{im.file}:keypoints_xyc" in keys:
            yield im.file, CameraModel(K=im.K, width=1, height=1, dist=im.dist_opencv()), im.truth.joints_3d


@dataclass(frozen=True)
class OffsetFit:
    offsets_m: dict[str, np.ndarray]  # keyed by the left (or centre) COCO name, body frame
    residual_px: dict[str, float]  # RMS 2D distance golden vs ground truth, before and after
    raw_px: dict[str, float]
    person_height_px: float


def fit_offsets(
    images_dir: Path | None = None, golden: Path | None = None, min_conf: float = 0.5, ridge_m2: float = 1e-6
) -> OffsetFit:
    images_dir = images_dir or shared_data_dir() / "data" / "images"
    golden = golden or shared_data_dir() / "data" / "golden" / "yolo11n_pose_ultralytics.npz"
    gold = np.load(golden)
    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    raw: dict[str, list[float]] = {}
    heights = []
    for file, cam, j3 in _golden_h36m(images_dir, gold.files):
        kp = gold[f"{file}:keypoints_xyc"][0]
        gt_uv = cam.project(j3)
        heights.append(np.ptp(gt_uv[:, 1]))
        frame = body_axes(j3)
        for coco_name, h36m_name in COCO_FROM_H36M.items():
            c, h = index_of(COCO17, coco_name), index_of(H36M17, h36m_name)
            if kp[c, 2] < min_conf:
                continue
            resid = kp[c, :2] - gt_uv[h]
            A = _projection_jacobian(cam.K, j3[h]) @ frame @ np.diag(mirror_sign(coco_name))
            group = coco_name.replace("right_", "left_")
            rows.setdefault(group, []).append((A, resid))
            raw.setdefault(group, []).append(float(np.linalg.norm(resid)))
    offsets, after = {}, {}
    for group, eqs in rows.items():
        A = np.concatenate([a for a, _ in eqs])
        b = np.concatenate([r for _, r in eqs])
        o = np.linalg.solve(A.T @ A + ridge_m2 * np.eye(3) * np.trace(A.T @ A), A.T @ b)
        offsets[group] = o
        after[group] = float(np.sqrt(np.mean(np.sum((b - A @ o).reshape(-1, 2) ** 2, axis=1))))
    raw_rms = {g: float(np.sqrt(np.mean(np.square(v)))) for g, v in raw.items()}
    return OffsetFit(offsets_m=offsets, residual_px=after, raw_px=raw_rms, person_height_px=float(np.mean(heights)))


def noise_comparison(
    images_dir: Path | None = None, golden: Path | None = None, draws: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint error of the golden YOLO11n keypoints on the annotated H36M frames and of the
    synthetic detector-like 2D on the same frames, both relative to sqrt(person box area):
    (quantiles 50/90 %) x (real, synthetic). Uses every COCO joint with an H36M counterpart."""
    import torch

    from ros2_ctxpose.training.synthetic_2d import DetectorNoise, coco_points_3d, detector_like

    images_dir = images_dir or shared_data_dir() / "data" / "images"
    golden = golden or shared_data_dir() / "data" / "golden" / "yolo11n_pose_ultralytics.npz"
    gold = np.load(golden)
    used = [index_of(COCO17, c) for c in COCO_FROM_H36M]
    real, synth = [], []
    for file, undist, joints in _golden_h36m(images_dir, gold.files):
        K = undist.K
        j3 = torch.tensor(joints, dtype=torch.float32)[None]
        coco = coco_points_3d(j3)
        exact = (coco[0, :, :2] / coco[0, :, 2:]).numpy() * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
        size = np.sqrt(np.prod(np.ptp(exact[used], axis=0)))
        kp = undist.normalize(gold[f"{file}:keypoints_xyc"][0, :, :2]) * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
        real.append(np.linalg.norm(kp[used] - exact[used], axis=-1) / size)
        wide = torch.tensor([[-10.0, -10.0, 10.0, 10.0]]).expand(draws, 4)
        noisy, _ = detector_like(coco.expand(draws, 17, 3), wide, DetectorNoise(), torch.Generator().manual_seed(0))
        noisy_px = noisy.numpy() * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
        synth.append((np.linalg.norm(noisy_px[:, used] - exact[None, used], axis=-1) / size).ravel())
    q = (50, 90)
    return np.stack([np.percentile(np.concatenate(real), q), np.percentile(np.concatenate(synth), q)], -1), np.array(q)


def main() -> None:
    fit = fit_offsets()
    print(f"mean person height in these frames: {fit.person_height_px:.0f} px")
    print(f"{'joint':<14} {'lateral':>8} {'up':>8} {'forward':>8}  (m)   rms px before -> after")
    for g, o in fit.offsets_m.items():
        print(f"{g:<14} {o[0]:8.3f} {o[1]:8.3f} {o[2]:8.3f}        {fit.raw_px[g]:6.1f} -> {fit.residual_px[g]:5.1f}")
    table, q = noise_comparison()
    print("keypoint error / sqrt(person box area), after the applied offsets:")
    for row, pct in zip(table, q):
        print(
            f"  {pct}th percentile: golden YOLO11n {100 * row[0]:5.1f} %   synthetic detector-like {100 * row[1]:5.1f} %"
        )


if __name__ == "__main__":
    main()
