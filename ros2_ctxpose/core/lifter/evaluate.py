"""Human3.6M S11 evaluation of a lifter: MPJPE and PA-MPJPE in mm, root-aligned.

S11 mocap is projected through S11's 4 real cameras (every ``stride``-th frame of the 50 Hz
mocap). Two inputs: (a) exact 2D, the projection of the COCO points (mapped from H36M with the
documented offsets, eyes/ears masked), and (b) detector-like 2D, the training noise model with a
fixed seed. Only truncation at the image border changes (a).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ros2_ctxpose.core.lifter.h36m import VAL_SUBJECTS, load_cameras, load_poses, project_real_cameras
from ros2_ctxpose.core.lifter.metrics import mpjpe, pa_mpjpe
from ros2_ctxpose.core.lifter.model import ContextLifter, load_lifter
from ros2_ctxpose.core.lifter.options import add_eval_arguments
from ros2_ctxpose.core.lifter.synthetic_2d import DetectorNoise, lifter_sample


@dataclass(frozen=True)
class EvalSet:
    joints_cam: torch.Tensor  # (N, 17, 3) metres
    bounds: torch.Tensor  # (N, 4)


def load_eval_set(stride: int = 10, subjects: tuple[str, ...] = VAL_SUBJECTS) -> EvalSet:
    joints, bounds = project_real_cameras(load_poses(subjects, stride), load_cameras())
    return EvalSet(torch.from_numpy(joints), torch.from_numpy(bounds))


@torch.no_grad()
def evaluate(
    model: ContextLifter, data: EvalSet, noise: DetectorNoise | None, seed: int = 0, batch_size: int = 4096,
    progress: bool = False,
) -> dict[str, float]:
    """Mean MPJPE and PA-MPJPE (mm) of ``model`` on ``data`` with exact (noise None) or noisy 2D."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    err, pa_err = [], []
    starts = range(0, len(data.joints_cam), batch_size)
    for i in tqdm(starts, desc="eval", disable=not progress, leave=False):
        kp, conf, target = lifter_sample(data.joints_cam[i:i + batch_size], data.bounds[i:i + batch_size], noise, gen)
        pred = model(kp, conf)
        err.append(mpjpe(pred, target))
        pa_err.append(pa_mpjpe(pred, target))
    return {"mpjpe_mm": 1000 * torch.cat(err).mean().item(), "pa_mpjpe_mm": 1000 * torch.cat(pa_err).mean().item()}


def evaluate_both(model: ContextLifter, data: EvalSet, seed: int = 0, progress: bool = False) -> dict[str, float]:
    exact = evaluate(model, data, None, seed, progress=progress)
    noisy = evaluate(model, data, DetectorNoise(), seed, progress=progress)
    return {**{f"exact_{k}": v for k, v in exact.items()}, **{f"detlike_{k}": v for k, v in noisy.items()}}


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model = load_lifter(args.weights)
    model.config.flip_test &= not args.no_flip_test
    data = load_eval_set(args.stride)
    print(f"S11, every {args.stride}th frame x 4 cameras = {len(data.joints_cam)} samples; "
          f"flip averaging {'on' if model.config.flip_test else 'off'}", flush=True)
    res = evaluate_both(model, data, args.seed, progress=True)
    print(f"exact 2D:         MPJPE {res['exact_mpjpe_mm']:6.1f} mm   PA-MPJPE {res['exact_pa_mpjpe_mm']:6.1f} mm")
    print(f"detector-like 2D: MPJPE {res['detlike_mpjpe_mm']:6.1f} mm   PA-MPJPE {res['detlike_pa_mpjpe_mm']:6.1f} mm (seed {args.seed})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_eval_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
