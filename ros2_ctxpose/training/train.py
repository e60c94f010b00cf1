"""Train the geometry-only lifter on Human3.6M mocap (S1 S5 S6 S7 S8), validating on S11.

Each batch mixes poses seen by the subjects' real cameras (projections precomputed once) with
poses seen by fresh random virtual cameras (``virtual_camera``), mirrors half of them, and turns
them into detector-like 2D on the fly (``synthetic_2d``). Training is by steps, seeded and
resumable: ``<out>/last.pt`` holds model, optimizer, scheduler, step and RNG states;
``<out>/metrics.jsonl`` logs the loss and the S11 metrics; ``<out>/best.pt`` is exported in the
shipped-weights format whenever the detector-like S11 MPJPE improves, ``<out>/final.pt`` at the
end (the shipped weights are a final one, so S11 stays a validation set, not a selection set).

    python -m ros2_ctxpose.training.train --out runs/lifter --steps 7000
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ros2_ctxpose.training.evaluate_h36m import evaluate_both, load_eval_set
from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS, load_cameras, load_poses, project_real_cameras
from ros2_ctxpose.core.metrics import mpjpe
from ros2_ctxpose.core.lifter.model import ContextLifter, LifterConfig, save_lifter
from ros2_ctxpose.training.options import TrainConfig, add_train_arguments
from ros2_ctxpose.training.synthetic_2d import DetectorNoise, lifter_sample, mirror
from ros2_ctxpose.training.virtual_camera import sample_virtual_cameras


@dataclass(frozen=True)
class MocapData:
    real_joints: torch.Tensor  # (N_real, 17, 3) camera frame, metres
    real_bounds: torch.Tensor  # (N_real, 4)
    world: torch.Tensor  # (N_world, 17, 3) world frame, metres (z up, floor at 0)


def load_training_data(stride: int) -> MocapData:
    poses = load_poses(TRAIN_SUBJECTS, stride)
    joints, bounds = project_real_cameras(poses, load_cameras())
    world = torch.from_numpy(np.concatenate(list(poses.values())))
    return MocapData(torch.from_numpy(joints), torch.from_numpy(bounds), world)


def make_batch(data: MocapData, cfg: TrainConfig, noise: DetectorNoise, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    n_virtual = int(round(cfg.batch_size * cfg.virtual_fraction))
    n_real = cfg.batch_size - n_virtual
    idx = torch.randint(len(data.real_joints), (n_real,), generator=gen)
    world = data.world[torch.randint(len(data.world), (n_virtual,), generator=gen)]
    virt_joints, cams = sample_virtual_cameras(world, generator=gen)
    joints = torch.cat([data.real_joints[idx], virt_joints])
    bounds = torch.cat([data.real_bounds[idx], cams.bounds])
    joints, bounds = mirror(joints, bounds, torch.rand(cfg.batch_size, generator=gen) < cfg.flip_prob)
    return lifter_sample(joints, bounds, noise, gen)


def _save_checkpoint(path: Path, model, opt, sched, step: int, best: float, gen: torch.Generator, cfg: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "step": step, "best": best, "data_rng": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "train_config": asdict(cfg), "model_config": model.config.to_dict(),
        },
        tmp,
    )
    tmp.replace(path)


def _replan_schedule(sched: torch.optim.lr_scheduler.OneCycleLR, step: int, total: int, planned: int) -> None:
    """Continue from ``step`` on a one-cycle curve that now ends at ``total`` instead of ``planned``.

    On a shared CPU the step rate can drop several-fold mid-run; re-planning the end keeps the
    steps already done instead of restarting with a shorter schedule.
    """
    if total <= step:
        raise ValueError(f"--steps {total} must exceed the checkpoint's step {step}")
    print(f"re-planning the learning-rate schedule: {planned} -> {total} steps")
    sched.last_epoch = step - 1
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore", UserWarning)
        sched.step()


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Run (or continue) training; returns the path of the best exported weights."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = ContextLifter(LifterConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio))
    # Only the geometry weights: the context branch gets no gradient from mocap, and weight decay
    # would otherwise shrink its (image-free) initialisation for nothing.
    opt = torch.optim.AdamW(model.geometry_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=cfg.warmup_fraction)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, float("inf")
    last = out / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best = ck["step"], ck["best"]
        gen.set_state(ck["data_rng"])
        torch.set_rng_state(ck["torch_rng"])
        if ck["train_config"]["steps"] == cfg.steps:
            sched.load_state_dict(ck["scheduler"])
        else:
            _replan_schedule(sched, step, cfg.steps, ck["train_config"]["steps"])
        print(f"resumed from {last} at step {step}")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    data = load_training_data(cfg.train_stride)
    val = load_eval_set(cfg.val_stride)
    print(f"train: {len(data.real_joints)} real-camera samples, {len(data.world)} poses for virtual cameras; "
          f"val: {len(val.joints_cam)} S11 samples; model: {sum(p.numel() for p in model.geometry_parameters())} geometry params")
    noise = DetectorNoise()
    log = (out / "metrics.jsonl").open("a")
    bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True)
    t0, running = time.time(), None
    end = min(cfg.steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.steps
    while step < end:
        model.train()
        kp, conf, target = make_batch(data, cfg, noise, gen)
        loss = mpjpe(model(kp, conf), target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        lr = sched.get_last_lr()[0]  # the rate this step used
        sched.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss_mm=f"{1000 * running:.1f}", lr=f"{lr:.2e}")
        if step % cfg.eval_every == 0 or step == end:
            metrics = evaluate_both(model, val, seed=0)
            record = {"step": step, "train_loss_mm": 1000 * running, "lr": lr,
                      "elapsed_s": time.time() - t0, **metrics}
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            if metrics["detlike_mpjpe_mm"] < best:
                best = metrics["detlike_mpjpe_mm"]
                save_lifter(model, out / "best.pt", meta={"step": step, "train_config": asdict(cfg), **metrics})
            _save_checkpoint(last, model, opt, sched, step, best, gen, cfg)
    bar.close()
    log.close()
    if step == cfg.steps:
        save_lifter(model, out / "final.pt", meta={"step": step, "train_config": asdict(cfg)})
    return out / "best.pt"


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**{k: getattr(args, k) for k in asdict(TrainConfig())})
    best = train(cfg, resume=args.resume)
    print(f"best weights: {best}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
