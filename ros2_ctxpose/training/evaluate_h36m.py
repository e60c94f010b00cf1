"""Human3.6M S11 evaluation of a lifter: MPJPE and PA-MPJPE in mm, root-aligned.

S11 mocap is projected through S11's 4 real cameras (every ``stride``-th frame of the 50 Hz
mocap). Two inputs: (a) exact 2D, the projection of the COCO points (mapped from H36M with the
documented offsets, eyes/ears masked), and (b) detector-like 2D, the training noise model with a
fixed seed. Only truncation at the image border changes (a). ``--noise-ablation`` also runs (b)
with one kind of corruption at a time, to show which one the detector-like error comes from.
``--real`` and ``--renders`` add annotated real frames and rendered people seen by the real
detector, measured as the training's validation measures them (geometry path, and the context
path when the weights have a trained one): the figures of the model card.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch
from tqdm import tqdm

from ros2_ctxpose.core.lifter.model import ContextLifter, load_lifter
from ros2_ctxpose.core.metrics import mpjpe, pa_mpjpe
from ros2_ctxpose.training.h36m import VAL_SUBJECTS, load_cameras, load_poses, project_real_cameras
from ros2_ctxpose.training.options import add_eval_arguments
from ros2_ctxpose.training.people import PeopleSet, evaluate_people, load_rendered
from ros2_ctxpose.training.synthetic_2d import DetectorNoise, lifter_sample


@dataclass(frozen=True)
class EvalSet:
    joints_cam: torch.Tensor  # (N, 17, 3) metres
    bounds: torch.Tensor  # (N, 4)


def load_eval_set(stride: int = 10, subjects: tuple[str, ...] = VAL_SUBJECTS) -> EvalSet:
    joints, bounds = project_real_cameras(load_poses(subjects, stride), load_cameras())
    return EvalSet(torch.from_numpy(joints), torch.from_numpy(bounds))


@torch.no_grad()
def evaluate(
    model: ContextLifter,
    data: EvalSet,
    noise: DetectorNoise | None,
    seed: int = 0,
    batch_size: int = 4096,
    progress: bool = False,
) -> dict[str, float]:
    """Mean errors (mm) of ``model`` on ``data`` with exact (noise None) or noisy 2D: MPJPE,
    PA-MPJPE, and the MPJPE's two parts, the mean image-plane (x, y) and depth (|z|) error per joint."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums = dict.fromkeys(("mpjpe_mm", "pa_mpjpe_mm", "xy_mm", "z_mm"), 0.0)
    starts = range(0, len(data.joints_cam), batch_size)
    for i in tqdm(starts, desc="eval", disable=not progress, leave=False):
        kp, conf, target = lifter_sample(
            data.joints_cam[i : i + batch_size], data.bounds[i : i + batch_size], noise, gen
        )
        pred = model(kp, conf)
        diff = pred - target
        sums["mpjpe_mm"] += mpjpe(pred, target).sum().item()
        sums["pa_mpjpe_mm"] += pa_mpjpe(pred, target).sum().item()
        sums["xy_mm"] += diff[..., :2].norm(dim=-1).mean(-1).sum().item()
        sums["z_mm"] += diff[..., 2].abs().mean(-1).sum().item()
    return {k: 1000 * v / len(data.joints_cam) for k, v in sums.items()}


def noise_ablation(noise: DetectorNoise | None = None) -> dict[str, DetectorNoise]:
    """``noise`` (default: the training noise model) taken apart: the Gaussian jitter alone, then
    each discrete corruption alone (no jitter). Confidences still fall with the damage, as in ``noise``."""
    noise = noise or DetectorNoise()
    off = {"outlier_prob": 0.0, "missing_prob": 0.0, "swap_prob": 0.0, "occluded_legs_prob": 0.0}
    no_jitter = replace(noise, level=(0.0, 0.0), **off)
    return {
        "jitter only": replace(noise, **off),
        **{
            f"{key.removesuffix('_prob').replace('_', ' ')} only": replace(no_jitter, **{key: getattr(noise, key)})
            for key in off
        },
    }


def evaluate_both(model: ContextLifter, data: EvalSet, seed: int = 0, progress: bool = False) -> dict[str, float]:
    exact = evaluate(model, data, None, seed, progress=progress)
    noisy = evaluate(model, data, DetectorNoise(), seed, progress=progress)
    return {**{f"exact_{k}": v for k, v in exact.items()}, **{f"detlike_{k}": v for k, v in noisy.items()}}


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model = load_lifter(args.weights)
    model.config.flip_test &= not args.no_flip_test
    if not args.skip_mocap:
        _run_mocap(model, args)
    for name, people in _people_sets(model, args):
        paths = ("geometry", "context") if model.config.context_trained else ("geometry",)
        for path in paths:
            r = evaluate_people(model, people, use_context=path == "context")
            print(
                f"{name} ({len(people)} people), {path:8s}: MPJPE {r['mpjpe_mm']:6.1f} mm   PA-MPJPE "
                f"{r['pa_mpjpe_mm']:6.1f} mm   image-plane {r['xy_mm']:5.1f}   depth {r['z_mm']:5.1f}",
                flush=True,
            )
    return 0


def _people_sets(model: ContextLifter, args: argparse.Namespace) -> list[tuple[str, PeopleSet]]:
    """The real frames and rendered people asked for, as the training's validation loads them."""
    sets: list[tuple[str, PeopleSet]] = []
    if args.real:
        from ros2_ctxpose.core.detector import TorchPoseDetector
        from ros2_ctxpose.training.real_frames import load_real_frames

        detector = TorchPoseDetector(device="cpu", precision="fp32")
        sets.append((f"real {args.real.parent.name}", load_real_frames(args.real, detector, model.config)))
    if args.renders:
        sets.append((f"renders {args.renders.name}", load_rendered([args.renders], model.config, in_memory=True)))
    return sets


def _run_mocap(model: ContextLifter, args: argparse.Namespace) -> None:
    data = load_eval_set(args.stride)
    print(
        f"S11, every {args.stride}th frame x 4 cameras = {len(data.joints_cam)} samples; "
        f"flip averaging {'on' if model.config.flip_test else 'off'}",
        flush=True,
    )
    exact = evaluate(model, data, None, args.seed, progress=True)
    detlike = evaluate(model, data, DetectorNoise(), args.seed, progress=True)
    print(f"exact 2D:         MPJPE {exact['mpjpe_mm']:6.1f} mm   PA-MPJPE {exact['pa_mpjpe_mm']:6.1f} mm")
    print(
        f"detector-like 2D: MPJPE {detlike['mpjpe_mm']:6.1f} mm   PA-MPJPE {detlike['pa_mpjpe_mm']:6.1f} mm (seed {args.seed})"
    )
    if args.noise_ablation:
        rows = {"exact 2D": exact, "detector-like 2D": detlike}
        rows.update(
            (name, evaluate(model, data, noise, args.seed, progress=True)) for name, noise in noise_ablation().items()
        )
        print("input                  MPJPE  PA-MPJPE  image-plane  depth (mm)")
        for name, r in rows.items():
            print(f"{name:20s} {r['mpjpe_mm']:7.1f} {r['pa_mpjpe_mm']:9.1f} {r['xy_mm']:12.1f} {r['z_mm']:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_eval_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
