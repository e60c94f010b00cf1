"""CPU cost of the placement stage per frame, with and without the floor (a benchmark, not a test).

    source scripts/env.sh && python benchmarks/placement_latency.py [--people 1 4 10] [--repeats 2000]

People from the shared Human3.6M mocap (S1 walking) seen through one of its calibrated cameras,
placed as ``Pose3DPipeline._place`` does: robust reprojection, then (with the floor)
``place_on_floor``, then the root covariances. "floor adds" is the difference of the medians.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ros2_ctxpose.benchmarking import format_table, summarize
from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.floor import Floor, floor_from_extrinsics, place_on_floor
from ros2_ctxpose.core.paths import shared_data_dir
from ros2_ctxpose.core.placement import (
    across_ray_sd,
    person_height_px,
    root_covariance,
    root_from_reprojection,
    size_prior_sd,
)
from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED


def _people(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, CameraModel, Floor]:
    data = shared_data_dir() / "data" / "h36m"
    world = np.load(data / "poses_world17_mm.npz")["S1/Walking 1"][::50][:n].astype(np.float64) / 1000.0
    cam = json.loads((data / "cameras.json").read_text())["S1/54138969"]
    f, c = np.ravel(cam["f"]), np.ravel(cam["c"])
    camera = CameraModel(K=np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]]), width=cam["w"], height=cam["h"])
    joints = (world - np.ravel(cam["T"])) @ np.asarray(cam["R"])
    coco = np.repeat(joints[:, 10:11], 17, axis=1)
    for ci, hi in COCO_H36M_SHARED:
        coco[:, ci] = joints[:, hi]
    keypoints = np.concatenate([camera.project(coco), np.full((n, 17, 1), 0.9)], axis=-1)
    floor = Floor.from_matrix(floor_from_extrinsics(cam["R"], cam["T"]))
    return joints - joints[:, :1], keypoints, coco[..., :2] / coco[..., 2:], camera, floor


def _place(pose_rel, keypoints, kp_norm, camera, floor) -> np.ndarray:
    conf = keypoints[..., 2]
    roots = root_from_reprojection(pose_rel, kp_norm, conf)
    scale, scale_sd = np.ones(len(roots)), size_prior_sd(person_height_px(keypoints[..., :2], conf, 0.3))
    if floor is not None:
        placed = place_on_floor(pose_rel, roots, keypoints, camera, floor, min_conf=0.3)
        scale, scale_sd = placed.scale, placed.scale_sd
    roots = roots * scale[:, None]
    return root_covariance(roots, np.linalg.norm(roots, axis=1) * scale_sd, across_ray_sd(roots, camera.K[1, 1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args(argv)
    rows = []
    for n in args.people:
        pose_rel, keypoints, kp_norm, camera, floor = _people(n)
        medians = []
        for use_floor in (None, floor):
            samples = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                _place(pose_rel, keypoints, kp_norm, camera, use_floor)
                samples.append((time.perf_counter() - t) * 1000.0)
            medians.append(summarize(samples).median_ms)
        rows.append([len(pose_rel), f"{medians[0]:.3f}", f"{medians[1]:.3f}", f"{medians[1] - medians[0]:.3f}"])
    print(format_table(["people", "placement ms (p50)", "with floor ms (p50)", "floor adds ms"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
