"""Train the lifter: Human3.6M mocap (S1 S5 S6 S7 S8) and, optionally, rendered people and real frames.

Each batch mixes the sources of ``TrainConfig.source_shares`` (``training/sources.py``). Mocap
poses seen by the subjects' real cameras (projections precomputed once) or by fresh random virtual
cameras (``virtual_camera``), half of them mirrored, with detector-like 2D made on the fly
(``synthetic_2d``). With ``--renders``, rendered people as the real detector saw them
(``training/synthetic``), and with ``--real``, annotated real frames: their keypoints, and with
``--context`` the crops of their feature maps, which train the context branch. A run without
``--context`` draws the very same batches and trains the geometry-only model, so two runs from
one seed differ only in the image context.

Training is by steps, seeded and resumable: ``<out>/last.pt`` holds model, optimizer, scheduler,
step and RNG states (tensors only: it loads with ``weights_only=True``); ``<out>/metrics.jsonl``
logs the loss and the validation figures (S11 mocap, held-out renders, annotated real frames);
``<out>/final.pt`` is exported at the end in the shipped-weights format.

    ctxpose train --out runs/lifter --steps 10000
    ctxpose train --out runs/ctx --init shipped --renders data/synth/train --context --steps 4000
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ros2_ctxpose.core.lifter.model import ContextLifter, LifterConfig, load_lifter, save_lifter
from ros2_ctxpose.core.weights import read_weights_file
from ros2_ctxpose.training.evaluate_h36m import EvalSet, evaluate_both, load_eval_set
from ros2_ctxpose.training.options import TrainConfig, add_train_arguments, train_config_from_args
from ros2_ctxpose.training.people import PeopleSet, evaluate_people, load_rendered
from ros2_ctxpose.training.sources import MocapSource, PeopleSource, Source, batch_errors, load_training_data
from ros2_ctxpose.training.synthetic_2d import DetectorNoise


@dataclass(frozen=True)
class Validation:
    mocap: EvalSet
    renders: PeopleSet | None
    real: PeopleSet | None


def validate(model: ContextLifter, val: Validation, context: bool) -> dict[str, float]:
    """The figures logged at every evaluation: S11 mocap (geometry path), and on rendered and real
    people both paths when the run trains context (the difference is what context buys)."""
    metrics = evaluate_both(model, val.mocap, seed=0)
    for name, people in (("val_renders", val.renders), ("val_real", val.real)):
        if people is None:
            continue
        for use_context in (False, True) if context else (False,):
            tag = f"{name}_{'context' if use_context else 'geometry'}"
            metrics.update({f"{tag}_{k}": v for k, v in evaluate_people(model, people, use_context).items()})
    return metrics


def load_sources(cfg: TrainConfig, config: LifterConfig) -> list[tuple[Source, float]]:
    """The training sources of ``cfg.source_shares()`` with their shares, in drawing order."""
    shares = cfg.source_shares()
    sources: list[tuple[Source, float]] = []
    for name, share in shares.items():
        if name == "mocap":
            data = load_training_data(cfg.train_stride)
            sources.append((MocapSource(data, cfg.virtual_fraction, cfg.flip_prob, DetectorNoise()), share))
        elif name == "renders":
            sources.append((PeopleSource(name, load_rendered(_split(cfg.renders), config)), share))
        else:
            sources.append((PeopleSource(name, _real_frames(Path(cfg.real), config)), share))
    return sources


def _real_frames(annotations: Path, config: LifterConfig) -> PeopleSet:
    """Annotated real frames as the torch fp32 detector sees them (cached by ``real_frames``)."""
    from ros2_ctxpose.core.detector import TorchPoseDetector
    from ros2_ctxpose.training.real_frames import load_real_frames

    return load_real_frames(annotations, TorchPoseDetector(device="cpu", precision="fp32"), config)


def _save_checkpoint(
    path: Path,
    model: ContextLifter,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    gen: torch.Generator,
    cfg: TrainConfig,
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "data_rng": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_config": asdict(cfg),
            "model_config": model.config.to_dict(),
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


def build_model(cfg: TrainConfig) -> ContextLifter:
    if cfg.init:
        model = load_lifter(None if cfg.init == "shipped" else cfg.init)
    else:
        model = ContextLifter(dataclasses.replace(cfg.model))
    model.config.context_depth_only = cfg.context and cfg.model.context_depth_only
    return model


def param_groups(model: ContextLifter, cfg: TrainConfig) -> list[dict]:
    """The geometry weights at the base rate (unless frozen); the context branch, only when trained,
    faster (it starts from scratch). Without context it gets no gradient, and weight decay would
    otherwise shrink its initialisation for nothing."""
    groups = [{"params": model.geometry_parameters(), "lr": cfg.lr}] if cfg.train_geometry else []
    if cfg.context:
        groups.append({"params": list(model.context.parameters()), "lr": cfg.lr * cfg.context_lr_scale})
    return groups


def _on_cpu(model: ContextLifter, device: str) -> ContextLifter:
    """``model`` itself on the CPU, else a CPU copy: the evaluations build their inputs there."""
    return model if torch.device(device).type == "cpu" else copy.deepcopy(model).cpu()


def _split(spec: str) -> list[Path]:
    return [Path(p) for p in spec.split(",") if p]


def load_validation(cfg: TrainConfig, config: LifterConfig) -> Validation:
    real = _real_frames(Path(cfg.val_real), config) if cfg.val_real else None
    renders = load_rendered(_split(cfg.val_renders), config, in_memory=True) if cfg.val_renders else None
    return Validation(load_eval_set(cfg.val_stride), renders, real)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Run (or continue) training; returns the path of the exported final weights."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg).to(cfg.device)
    if not cfg.train_geometry:
        for p in model.geometry_parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    max_lr = [g["lr"] for g in opt.param_groups]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=cfg.steps, pct_start=cfg.warmup_fraction)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    last = out / "last.pt"
    if resume and last.is_file():
        ck = read_weights_file(last, what="training checkpoint")  # tensors only, zip CRCs checked
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = ck["step"]
        gen.set_state(ck["data_rng"])
        torch.set_rng_state(ck["torch_rng"])
        if ck["train_config"]["steps"] == cfg.steps:
            sched.load_state_dict(ck["scheduler"])
        else:
            _replan_schedule(sched, step, cfg.steps, ck["train_config"]["steps"])
        print(f"resumed from {last} at step {step}")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    sources = load_sources(cfg, model.config)
    val = load_validation(cfg, model.config)
    print(
        "train: "
        + ", ".join(f"{src.name} {len(src)} people ({share:.0%})" for src, share in sources)
        + f" (context {'on' if cfg.context else 'off'}); "
        f"val: {len(val.mocap.joints_cam)} S11 mocap samples, "
        f"{len(val.renders) if val.renders is not None else 0} rendered, {len(val.real) if val.real is not None else 0} real"
    )
    log = (out / "metrics.jsonl").open("a")
    bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True)
    t0, running = time.time(), None
    end = min(cfg.steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.steps
    while step < end:
        model.train()
        loss = batch_errors(model, sources, cfg.batch_size, gen, cfg.context, cfg.device).mean()
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
            record = {
                "step": step,
                "train_loss_mm": 1000 * running,
                "lr": lr,
                "elapsed_s": time.time() - t0,
                **validate(_on_cpu(model, cfg.device), val, cfg.context),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            _save_checkpoint(last, model, opt, sched, step, gen, cfg)
    bar.close()
    log.close()
    final = out / "final.pt"
    if step == cfg.steps:
        model.config.context_trained = model.config.context_trained or cfg.context
        save_lifter(model, final, meta={"step": step, "train_config": asdict(cfg)})
    return final


def run(args: argparse.Namespace) -> int:
    try:
        cfg = train_config_from_args(args)
        torch.empty(0, device=cfg.device)  # an unknown or absent device fails here, in one line
    except (ValueError, RuntimeError, AssertionError) as exc:
        print(f"ctxpose train: {exc}", file=sys.stderr)
        return 2
    final = train(cfg, resume=args.resume)
    print(f"final weights: {final}" if final.is_file() else "stopped before the end; resume with --resume")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
