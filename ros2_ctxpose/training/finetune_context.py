"""Fine-tune the context branch on annotated image + 3D frames and measure what it changes.

There is no large image + 3D training set here: ``../shared/data/images`` has 29 annotated frames
(4 Human3.6M, 4 MPI-INF-3DHP, 21 consecutive GTA-IM frames of one person). The procedure is
dataset-agnostic (``context_data``), but on this little data the honest measurement is
leave-one-dataset-out: fine-tune on two datasets, test on the third, and compare the same
weights with and without image context on the held-out frames. Geometry weights are frozen by
default (``--train-geometry`` unfreezes them), so any change comes from the context branch.

    python -m ros2_ctxpose.training.finetune_context --out runs/context_loo
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from tqdm import tqdm

from ros2_ctxpose.core.detector import PoseDetector
from ros2_ctxpose.training.annotated_frames import AnnotatedSample, load_annotated_samples
from ros2_ctxpose.core.paths import shared_data_dir
from ros2_ctxpose.core.metrics import mpjpe, pa_mpjpe
from ros2_ctxpose.core.lifter.model import ContextLifter, load_lifter, save_lifter
from ros2_ctxpose.training.options import add_finetune_arguments


def _forward(model: ContextLifter, s: AnnotatedSample, use_context: bool) -> torch.Tensor:
    kp, conf = s.kp_norm[None], s.conf[None]
    if use_context:
        return model(kp, conf, s.features, s.grid_xy[None])
    return model(kp, conf)


def finetune(model: ContextLifter, samples: list[AnnotatedSample], steps: int, lr: float,
             train_geometry: bool = False, seed: int = 0) -> ContextLifter:
    """A copy of ``model`` with its context branch (and optionally all weights) fitted to ``samples``."""
    torch.manual_seed(seed)
    model = copy.deepcopy(model).train()
    params = list(model.parameters()) if train_geometry else list(model.context.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    for _ in tqdm(range(steps), desc="fine-tune", leave=False):
        opt.zero_grad(set_to_none=True)
        loss = sum(mpjpe(s.predicted(_forward(model, s, True)), s.target[None]).mean() for s in samples) / len(samples)
        loss.backward()
        opt.step()
    model.config.context_trained = True
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()


@torch.no_grad()
def evaluate_samples(model: ContextLifter, samples: list[AnnotatedSample], use_context: bool) -> dict[str, float]:
    """Mean MPJPE / PA-MPJPE (mm) over ``samples`` on each mapping's compared joints, root-aligned."""
    model.eval()
    err = [mpjpe(s.predicted(_forward(model, s, use_context)), s.target[None]).item() for s in samples]
    pa = [pa_mpjpe(s.predicted(_forward(model, s, use_context)), s.target[None]).item() for s in samples]
    return {"mpjpe_mm": 1000 * sum(err) / len(err), "pa_mpjpe_mm": 1000 * sum(pa) / len(pa), "frames": len(samples)}


def leave_one_dataset_out(model: ContextLifter, samples: list[AnnotatedSample], steps: int, lr: float,
                          train_geometry: bool) -> list[dict]:
    rows = []
    for held_out in sorted({s.dataset for s in samples}):
        train = [s for s in samples if s.dataset != held_out]
        test = [s for s in samples if s.dataset == held_out]
        tuned = finetune(model, train, steps, lr, train_geometry)
        rows.append({
            "held_out": held_out, "train_frames": len(train),
            "geometry_only": evaluate_samples(model, test, use_context=False),
            "finetuned_without_context": evaluate_samples(tuned, test, use_context=False),
            "finetuned_with_context": evaluate_samples(tuned, test, use_context=True),
            "finetuned_train_fit_with_context": evaluate_samples(tuned, train, use_context=True),
        })
    return rows


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = args.images or shared_data_dir() / "data" / "images"
    if not (images / "annotations.json").is_file():
        print(f"no annotations.json in {images}")
        return 2
    model = load_lifter(args.weights)
    # One view everywhere: the context path cannot flip-average (no mirrored feature maps), so
    # the geometry-only baseline must not either, or the comparison would not isolate context.
    model.config.flip_test = False
    samples = load_annotated_samples(PoseDetector(device="cpu"), images)
    print(f"{len(samples)} annotated frames with a detected person")
    rows = leave_one_dataset_out(model, samples, args.steps, args.lr, args.train_geometry)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leave_one_dataset_out.json").write_text(json.dumps(rows, indent=2))
    print(f"{'held out':<22} {'frames':>6}  {'geometry-only':>15}  {'tuned, no ctx':>15}  {'tuned + context':>15}  (MPJPE / PA-MPJPE mm)")
    for r in rows:
        cells = [r[k] for k in ("geometry_only", "finetuned_without_context", "finetuned_with_context")]
        print(f"{r['held_out']:<22} {cells[0]['frames']:>6}  " + "  ".join(f"{c['mpjpe_mm']:6.1f} / {c['pa_mpjpe_mm']:5.1f}" for c in cells))
    final = finetune(model, samples, args.steps, args.lr, args.train_geometry)
    save_lifter(final, args.out / "context_all_frames.pt", meta={"finetuned_on": [s.file for s in samples]})
    print(f"context weights fitted on all {len(samples)} frames: {args.out / 'context_all_frames.pt'} (not shipped)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_finetune_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
