"""Single camera vs fused cameras on Human3.6M S11: MPJPE and absolute root error, and the fusion's cost.

    source scripts/env.sh && python benchmarks/fusion_views.py [--stride 25] [--seed 0] [--threads 2]

Every ``stride``-th mocap frame of the validation subject (S11) is seen by its 4 real cameras
(../shared/data/h36m/cameras.json, X_cam = R^T (X_world - T)); each view gets detector-like 2D
(``training/synthetic_2d``: jitter, outliers, missing joints, swaps, truncation), the shipped
lifter's geometry path lifts it, and ``core/placement.root_from_reprojection`` places it. The four
placed people, moved into the world frame, are then fused by ``core/fusion.fuse_views`` with the
plain average (baseline) and with per-view ray covariances (ray): "ray (geometric)" with the
default model used when a message has no root covariance (``fusion.ray_covariance``), "ray
(placement)" giving each view the root covariance the pipeline attaches to such a placement
(``placement.root_covariance``: the size prior's spread along the ray, centimetres across it).

Printed, in millimetres over all instants: absolute MPJPE (world frame, placement included),
root-relative MPJPE, and the absolute root (pelvis) error; single view is the mean over the 4
cameras. "one person" is the share of instants whose 4 views association kept together (the
fused person evaluated is the one with most views). Then the median time of one fusion of
4 cameras x 5 people (5 S11 poses spread over the room), a timing of this machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ros2_ctxpose.core.fusion import View, ViewPerson, fuse_views
from ros2_ctxpose.core.joint_sets import h36m_confidence
from ros2_ctxpose.core.lifter import load_lifter
from ros2_ctxpose.core.placement import (
    across_ray_sd,
    person_height_px,
    root_covariance,
    root_from_reprojection,
    size_prior_sd,
)
from ros2_ctxpose.training.h36m import (
    VAL_SUBJECTS,
    image_bounds,
    load_cameras,
    load_poses,
    subject_cameras,
)
from ros2_ctxpose.training.synthetic_2d import DetectorNoise, coco_points_3d, detector_like


@torch.no_grad()
def placed_views(world: np.ndarray, cameras: list, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each camera's placed estimate of every pose, in the world frame: (C, N, 17, 3), the
    per-joint H36M-17 confidences (C, N, 17), and the root covariances the pipeline gives such a
    placement (``placement.root_covariance`` with the size prior's spread), world frame (C, N, 3, 3)."""
    model = load_lifter()
    gen = torch.Generator().manual_seed(seed)
    estimates, confidences, covariances = [], [], []
    for cam in cameras:
        joints_cam = torch.from_numpy(cam.world_to_cam(world * 1000.0).astype(np.float32))
        bounds = torch.from_numpy(np.broadcast_to(image_bounds(cam.model), (len(world), 4)).astype(np.float32))
        kp, conf = detector_like(coco_points_3d(joints_cam), bounds, DetectorNoise(), gen)
        pose_rel = model(kp, conf).double().numpy()
        root = root_from_reprojection(pose_rel, kp.double().numpy(), conf.double().numpy())
        estimates.append((pose_rel + root[:, None]) @ cam.R.T + cam.T)
        confidences.append(h36m_confidence(conf.double().numpy()))
        K = cam.model.K
        kp_px = kp.double().numpy() * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
        height = person_height_px(kp_px, conf.double().numpy(), min_conf=0.3)
        along = np.linalg.norm(root, axis=1) * size_prior_sd(height)
        cov = root_covariance(root, along, across_ray_sd(root, float(K[1, 1])))
        covariances.append(cam.R @ cov @ cam.R.T)
    return np.stack(estimates), np.stack(confidences), np.stack(covariances)


def errors(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Mean absolute MPJPE, root-relative MPJPE and root error, mm, of (N, 17, 3) vs (N, 17, 3)."""
    absolute = np.linalg.norm(estimate - truth, axis=-1).mean()
    relative = np.linalg.norm((estimate - estimate[:, :1]) - (truth - truth[:, :1]), axis=-1).mean()
    root = np.linalg.norm(estimate[:, 0] - truth[:, 0], axis=-1).mean()
    return 1000 * absolute, 1000 * relative, 1000 * root


def fused(
    estimates: np.ndarray, conf: np.ndarray, covs: np.ndarray, origins: np.ndarray, method: str
) -> tuple[np.ndarray, float]:
    """Fused people (N, 17, 3) (the cluster with most views per instant) and the share kept as one;
    ``covs`` (C, N, 3, 3) root covariances, NaN for the geometric default."""
    out, together = [], 0
    for n in range(estimates.shape[1]):
        views = [
            View(origin=o, people=[ViewPerson(estimates[c, n], conf[c, n], 1.0, covs[c, n])])
            for c, o in enumerate(origins)
        ]
        people = fuse_views(views, method=method)
        best = max(people, key=lambda p: len(p.members))
        together += len(best.members) == len(origins)
        out.append(best.joints)
    return np.stack(out), together / estimates.shape[1]


def fusion_cost_ms(world: np.ndarray, cameras: list, repeats: int) -> float:
    """Median time of one ``fuse_views`` of 4 cameras x 5 people spread 1.5 m apart."""
    rng = np.random.default_rng(0)
    poses = world[rng.choice(len(world), 5, replace=False)]
    poses = (
        poses - poses[:, :1] + np.array([[[x, y, 0.0]] for x, y in [(0, 0), (1.5, 0), (-1.5, 0), (0, 1.5), (0, -1.5)]])
    )
    poses[..., 2] += 0.9
    views = [
        View(
            origin=cam.T,
            people=[
                ViewPerson(p + rng.normal(0, 0.05, p.shape), np.ones(17), 1.0, np.full((3, 3), np.nan), k)
                for k, p in enumerate(poses)
            ],
        )
        for cam in cameras
    ]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fuse_views(views)
        times.append(time.perf_counter() - start)
    assert len(result) == 5, f"association split or merged people: {len(result)}"
    return 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=25, help="every stride-th 50 Hz mocap frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200, help="timed fusions of 4 cameras x 5 people")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    subject = VAL_SUBJECTS[0]
    world = np.concatenate(list(load_poses((subject,), args.stride).values())).astype(np.float64)
    cameras = subject_cameras(load_cameras(), subject)
    estimates, conf, placement_covs = placed_views(world, cameras, args.seed)
    unknown = np.full_like(placement_covs, np.nan)
    origins = np.stack([cam.T for cam in cameras])

    print(f"{subject}: {len(world)} instants x {len(cameras)} cameras, detector-like 2D (seed {args.seed})")
    print(f"{'':24s} {'MPJPE abs':>10s} {'MPJPE rel':>10s} {'root':>8s} {'one person':>11s}  (mm)")
    single = np.array([errors(estimates[c], world) for c in range(len(cameras))])
    for c, cam in enumerate(cameras):
        print(f"single view {cam.name:12s} {single[c, 0]:10.1f} {single[c, 1]:10.1f} {single[c, 2]:8.1f}")
    mean = single.mean(axis=0)
    print(f"{'single view, mean':24s} {mean[0]:10.1f} {mean[1]:10.1f} {mean[2]:8.1f}")
    for method, covs, label in (
        ("average", unknown, "fused, average"),
        ("ray", unknown, "fused, ray (geometric)"),
        ("ray", placement_covs, "fused, ray (placement)"),
    ):
        people, together = fused(estimates, conf, covs, origins, method)
        e = errors(people, world)
        print(
            f"{label:24s} {e[0]:10.1f} {e[1]:10.1f} {e[2]:8.1f} {100 * together:10.1f}%   "
            f"(abs MPJPE {e[0] / mean[0]:.2f}x single)"
        )
    print(f"fusion of 4 cameras x 5 people: {fusion_cost_ms(world, cameras, args.repeats):.2f} ms (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
