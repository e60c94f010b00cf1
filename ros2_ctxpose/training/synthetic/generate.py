"""``ctxpose synth``: the command. Shards, progress, resume and the summary; where shards run
(this process, a local process pool, Ray) is ``schedulers``, what one process does is ``worker``.

Deterministic and resumable: shard ``i`` depends only on ``--seed`` and ``i``, and a shard folder
exists only once complete. Shards are made until at least ``--people`` matched people are stored.
Workers are processes (or Ray actors) with one torch thread each (the detector's CPU kernels are
deterministic then).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from . import schedulers
from .summary import format_summary, summarize
from .worker import Settings, Worker

#: Mocap frames per training subject that calibrate the Anny -> H36M mapping (and as many more
#: measure its residual).
CALIBRATION_FRAMES = 300


def run(args: argparse.Namespace) -> int:
    from .dependencies import SynthDependencyError, check_dependencies

    try:
        check_dependencies()
    except SynthDependencyError as e:
        print(f"ctxpose synth: {e}", file=sys.stderr)
        return 2
    from .backgrounds import BackgroundsMissing, fetch_backgrounds, load_backgrounds

    if args.fetch_backgrounds:
        fetch_backgrounds()
        if args.out is None:
            return 0
    if args.out is None:
        print("ctxpose synth: --out is required", file=sys.stderr)
        return 2
    if args.ray:
        if args.workers is not None and args.workers < 1:
            print("ctxpose synth: --workers 0 runs in this process; with --ray give at least 1", file=sys.stderr)
            return 2
        try:
            schedulers.import_ray()
        except schedulers.EngineError as e:
            print(f"ctxpose synth: {e}", file=sys.stderr)
            return 2
    try:
        load_backgrounds()
    except BackgroundsMissing as e:
        print(f"ctxpose synth: {e}", file=sys.stderr)
        return 2
    return generate(args)


def parse_subjects(text: str) -> tuple[str, ...]:
    """``"S1,S5"`` -> ``("S1", "S5")``, checked against the mocap's subjects."""
    from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS, VAL_SUBJECTS

    subjects = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(set(subjects) - set(TRAIN_SUBJECTS) - set(VAL_SUBJECTS))
    if not subjects or unknown:
        raise ValueError(f"--subjects: unknown {unknown}; choose from {', '.join(TRAIN_SUBJECTS + VAL_SUBJECTS)}")
    if set(subjects) & set(VAL_SUBJECTS) and set(subjects) & set(TRAIN_SUBJECTS):
        raise ValueError("--subjects mixes training and validation subjects; make the S11 split separately")
    return subjects


def _settings(args: argparse.Namespace, library_key: str) -> Settings:
    from ros2_ctxpose.core.lifter.model import LifterConfig

    cfg = LifterConfig()
    return Settings(
        seed=args.seed,
        subjects=parse_subjects(args.subjects),
        stride=args.stride,
        calibration_frames=CALIBRATION_FRAMES,
        images_per_shard=args.images_per_shard,
        crop_sizes=tuple(cfg.context_crop_sizes),
        crop_margin=float(cfg.context_crop_margin),
        library_key=library_key,
        views=args.views,
    )


def _engine(
    args: argparse.Namespace, settings: Settings, out: Path
) -> contextlib.AbstractContextManager[schedulers.Engine]:
    """Ray when ``--ray`` names it, else ``--workers`` local processes (0: this process)."""
    factory = functools.partial(Worker, settings, args.device)
    if args.ray:
        return schedulers.ray_actors(factory, args.ray, args.workers, out)
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    return schedulers.process_pool(factory, workers) if workers > 0 else schedulers.in_process(factory)


def generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import pose_library, retarget, shards
    from .body import load_body_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subjects = parse_subjects(args.subjects)
    body = load_body_model()
    library = pose_library.load_or_build(body, subjects, args.stride, CALIBRATION_FRAMES)
    settings = _settings(args, library.key)
    config_path = out / "settings.json"
    # Folders made before multi-view have no "views": they were single-view.
    if config_path.is_file() and {"views": 1, **json.loads(config_path.read_text())} != json.loads(
        json.dumps(asdict(settings))
    ):
        print(f"ctxpose synth: {out} was made with other settings ({config_path}); use another --out", file=sys.stderr)
        return 2
    config_path.write_text(json.dumps(asdict(settings), indent=1))
    print("Anny -> H36M-17 mapping, held-out residual per joint (mm):")
    print(retarget.format_residual_table(library.calibration_residual_mm))
    print(
        f"pose library: {len(library.keep)} frames of {', '.join(library.subjects)}, "
        f"{100 * library.drop_fraction():.1f} % dropped (mean residual > {retarget.MAX_MEAN_RESIDUAL_MM:.0f} mm "
        f"or a joint > {retarget.MAX_JOINT_RESIDUAL_MM:.0f} mm)"
    )

    shards.remove_partial(out)
    existing = {
        int(p.name.split("_")[1]): json.loads((p / "meta.json").read_text())["people"] for p in shards.list_shards(out)
    }
    done = sum(existing.values())
    bar = tqdm(total=args.people, initial=min(done, args.people), unit="people", desc="synth", file=sys.stderr)
    made: list[dict] = []
    engine: schedulers.Engine | None = None
    start = time.perf_counter()
    next_index = 0
    per_shard = max(1.0, settings.images_per_shard * settings.views * 1.6)  # people per shard, refined as shards finish

    def finished(meta: dict) -> None:
        nonlocal done, per_shard
        made.append(meta)
        done += meta["people"]
        per_shard = max(1.0, sum(m["people"] for m in made) / len(made))
        bar.update(max(0, min(meta["people"], args.people - bar.n)))

    def next_missing() -> int:
        nonlocal next_index
        while next_index in existing:
            next_index += 1
        index = next_index
        next_index += 1
        return index

    if done < args.people:
        try:
            with _engine(args, settings, out) as engine:
                schedulers.make_shards(
                    engine, out, next_missing, lambda in_flight: done + per_shard * in_flight < args.people, finished
                )
        except schedulers.EngineError as e:
            bar.close()
            print(f"ctxpose synth: {e}", file=sys.stderr)
            return 2
    bar.close()
    elapsed = time.perf_counter() - start
    summary = summarize(out)
    if made and engine is not None:
        people = sum(m["people"] for m in made)
        images = sum(m["counts"].get("images", 0) for m in made)
        summary["throughput"] = {
            "people_per_s": people / elapsed,
            "images_per_s": images / elapsed,
            "seconds": elapsed,
            "workers": engine.workers,
            "engine": engine.name,
        }
    summary["pose_library"] = {
        "frames": int(len(library.keep)),
        "dropped_fraction": library.drop_fraction(),
        "calibration_residual_mm": dict(zip(retarget.H36M17, map(float, library.calibration_residual_mm), strict=True)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(format_summary(summary))
    if settings.views > 1:
        from .annotations import export_annotations

        print(f"annotations: {export_annotations(out)}")
    if args.preview is not None:
        from .preview import contact_sheet

        contact_sheet(out, args.preview, seed=args.seed)
        print(f"preview: {args.preview}")
    return 0
