"""``ctxpose synth``: render people, run the real detector on them, store what training needs.

Per image: a scene (``scene``), its render composited on a photograph and passed through camera
effects (``render``), then the project's detector on the result. Every detection is matched to
the rendered people by OKS between its keypoints and the body's own projected COCO-17 points
(Hungarian assignment); a match keeps the detection, its feature crops (``crop_people``, exactly
as the lifter computes them at inference) and the rendered body's H36M-17 joints as the target.

Deterministic and resumable: shard ``i`` depends only on ``--seed`` and ``i`` (its generator is
seeded with both; the pose library is a cached deterministic fit), and a shard folder exists only
once complete. Shards are made until at least ``--people`` matched people are stored. Workers are
processes with one torch thread each (the detector's CPU kernels are deterministic then).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ros2_ctxpose.core.detector import Detections

    from .body import BodyModel
    from .render import RenderResult
    from .scene import Scene

#: A detection must match a rendered body at least this well to be stored as that person: OKS
#: of its keypoints (confidence >= 0.3) to the body's projected COCO-17 points in the image, with
#: the body's silhouette box as the scale (``tracking.keypoint_similarity``). Enough to rule out a
#: neighbour, low enough to keep the poor detections a lifter must cope with; the report also
#: gives the rate at OKS >= 0.5.
MIN_OKS = 0.2
#: A rendered person counts towards the detection rate when this much of them is visible and
#: this many target joints fall inside the image; others are too hidden to expect a detection.
DETECTABLE_VISIBLE = 0.3
DETECTABLE_JOINTS = 8
ENGINE_VERSION = 1
#: Mocap frames per training subject that calibrate the Anny -> H36M mapping (and as many more
#: measure its residual).
CALIBRATION_FRAMES = 300
PREVIEW_MAX_SIDE = 640


@dataclass(frozen=True)
class Settings:
    seed: int
    subjects: tuple[str, ...]
    stride: int
    calibration_frames: int
    images_per_shard: int
    crop_sizes: tuple[int, ...]
    crop_margin: float
    library_key: str


def make_detector(device: str = "cpu"):
    """The project's detector: the torch reference backend, so stored crops are what the
    reference computes (the one place the engine names the detector API)."""
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.detector import create_detector

    return create_detector(PipelineConfig(backend="torch", device=device))


# ---------------------------------------------------------------------------------------------
# One image


def _inside(px: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    return (z > 0.05) & (px[..., 0] >= 0) & (px[..., 0] <= width - 1) & (px[..., 1] >= 0) & (px[..., 1] <= height - 1)


def person_views(scene: Scene, result: RenderResult, body: BodyModel) -> list[dict]:
    """Per rendered person: the targets in the camera and image, which joints are in the image
    or covered by someone or something else, the silhouette box, visibility and truncation."""
    cam, W, H = scene.camera, scene.camera.width, scene.camera.height
    sampled = body.render_topology.vertex_ids[::8]
    views = []
    for k, person in enumerate(scene.people):
        target_cam, coco_cam = scene.to_camera(person.joints_world), scene.to_camera(person.coco_world)
        target_px, coco_px = cam.project(target_cam), cam.project(coco_cam)
        verts_cam = scene.to_camera(person.vertices[sampled])
        mask = result.silhouettes[k]
        area = int(mask.sum())
        ys, xs = np.nonzero(mask)
        in_image = _inside(target_px, target_cam[:, 2], W, H)
        pix = np.clip(np.round(target_px).astype(int), 0, [W - 1, H - 1])
        views.append(
            {
                "target_cam": target_cam,
                "target_px": target_px,
                "coco_px": coco_px,
                "coco_in": _inside(coco_px, coco_cam[:, 2], W, H),
                "in_image": in_image,
                "occluded": in_image & (result.labels[pix[:, 1], pix[:, 0]] != k) & mask[pix[:, 1], pix[:, 0]],
                "box": np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float) if area else np.zeros(4),
                "visible_fraction": int((result.labels == k).sum()) / area if area else 0.0,
                "truncation": float(1.0 - _inside(cam.project(verts_cam), verts_cam[:, 2], W, H).mean()),
            }
        )
    return views


def match_detections(det: Detections, views: list[dict]) -> list[tuple[int, int, float]]:
    """``(detection, person, OKS)`` pairs: Hungarian assignment on OKS, pairs below
    :data:`MIN_OKS` dropped."""
    from scipy.optimize import linear_sum_assignment

    from ros2_ctxpose.core.tracking import keypoint_similarity

    if not len(det) or not views:
        return []
    bodies = np.concatenate(
        [np.stack([v["coco_px"] for v in views]), np.stack([v["coco_in"] for v in views])[..., None].astype(float)], -1
    )
    oks = keypoint_similarity(det.keypoints, bodies, np.stack([v["box"] for v in views]))
    rows, cols = linear_sum_assignment(-oks)
    return [(int(d), int(p), float(oks[d, p])) for d, p in zip(rows, cols, strict=True) if oks[d, p] >= MIN_OKS]


def process_image(worker: Worker, rng: np.random.Generator, image_id: int) -> tuple[list[dict], dict, np.ndarray]:
    """Render one scene, detect, match. Returns the stored people, the image's counts and the
    final (BGR) image."""
    import torch

    from ros2_ctxpose.core.detector import crop_people

    from .render import camera_effects, composite
    from .scene import render_job, sample_scene

    scene = sample_scene(worker.assets, rng)
    result = worker.renderer.render(render_job(scene, worker.assets.body))
    image = camera_effects(composite(result.rgb[..., ::-1], result.alpha, scene.background), rng)
    det = worker.detector.detect(image)
    info = person_views(scene, result, worker.assets.body)
    detectable = [
        i["visible_fraction"] >= DETECTABLE_VISIBLE and i["in_image"].sum() >= DETECTABLE_JOINTS for i in info
    ]
    matches = match_detections(det, info)
    counts = {
        "images": 1,
        "rendered": len(info),
        "detectable": int(sum(detectable)),
        "detections": len(det),
        "matched": len(matches),
        "matched_detectable": sum(detectable[p] for _, p, _ in matches),
        "matched_detectable_oks50": sum(detectable[p] and o >= 0.5 for _, p, o in matches),
        "unmatched_detections": len(det) - len(matches),
    }
    counts = {key: int(value) for key, value in counts.items()}
    if not matches:
        return [], counts, image
    d_idx = [d for d, _, _ in matches]
    with torch.no_grad():
        crops = crop_people(
            det.features,
            det.letterbox,
            torch.as_tensor(det.boxes_xyxy[d_idx]),
            torch.as_tensor(det.keypoints[d_idx, :, :2]),
            worker.settings.crop_sizes,
            worker.settings.crop_margin,
        )
    lib = worker.assets.library
    cam, (W, H) = scene.camera, (scene.camera.width, scene.camera.height)
    camera_index = worker.camera_names.index(scene.camera_name)
    people = []
    for n, (d, p, oks_value) in enumerate(matches):
        person, i = scene.people[p], info[p]
        record = {
            "keypoints": det.keypoints[d],
            "keypoints_norm": cam.normalize(det.keypoints[d, :, :2]),
            "box": det.boxes_xyxy[d],
            "score": det.scores[d],
            **{f"crop_l{level}": c[n].to(torch.float16).numpy() for level, c in enumerate(crops.crops)},
            "joints_grid": crops.joints_grid[n].numpy(),
            "target_cam": i["target_cam"],
            "target_px": i["target_px"],
            "coco_px": i["coco_px"],
            "K": cam.K,
            "dist": cam.dist,
            "image_size": (W, H),
            "image_id": image_id,
            "camera": camera_index,
            "mocap_sequence": lib.sequence[person.pose_index],
            "mocap_frame": lib.frame[person.pose_index],
            "phenotype": person.phenotype,
            "mapping_residual_mm": lib.residual_mm[person.pose_index],
            "oks": oks_value,
            "visible_fraction": i["visible_fraction"],
            "truncation": i["truncation"],
            "joints_in_image": i["in_image"],
            "joints_occluded": i["occluded"],
        }
        people.append(record)
    return people, counts, image


# ---------------------------------------------------------------------------------------------
# Workers and shards


class Worker:
    """Everything one process needs, loaded once: assets, renderer, detector."""

    def __init__(
        self, settings: Settings, device: str, backgrounds: Path | None = None, library_cache: Path | None = None
    ) -> None:
        import cv2
        import torch

        from ros2_ctxpose.training.h36m import load_cameras

        from . import pose_library
        from .appearance import texel_coordinates
        from .backgrounds import load_backgrounds
        from .body import load_body_model
        from .render import Renderer
        from .scene import build_assets

        torch.set_num_threads(1)
        cv2.setNumThreads(1)  # one core per worker, for OpenCV too
        self.settings = settings
        body = load_body_model()
        library = pose_library.load_or_build(
            body, settings.subjects, settings.stride, settings.calibration_frames, library_cache, log=lambda _: None
        )
        cameras = load_cameras()
        self.assets = build_assets(body, library, texel_coordinates(body), load_backgrounds(backgrounds), cameras)
        self.camera_names = ["virtual"] + sorted(cameras)
        self.renderer = Renderer()
        self.detector = make_detector(device)

    def shard(self, out: Path, index: int) -> dict:
        """Make and write shard ``index``; returns its meta."""
        import cv2

        from . import shards

        rng = np.random.default_rng([self.settings.seed, index])
        self.renderer.reset()  # bounds the renderer's memory (see Renderer)
        people: list[dict] = []
        totals: dict[str, int] = {}
        images_dir = shards.shard_dir(out, index).with_name(f"shard_{index:06d}.images.tmp{os.getpid()}")
        images_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.settings.images_per_shard):
            image_id = index * 1_000_000 + i
            found, counts, image = process_image(self, rng, image_id)
            people += found
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
            scale = min(1.0, PREVIEW_MAX_SIDE / max(image.shape[:2]))
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(images_dir / f"{i:04d}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        lib = self.assets.library
        meta = {
            "index": index,
            "counts": totals,
            "settings": asdict(self.settings),
            "engine_version": ENGINE_VERSION,
            "cameras": self.camera_names,
            "sequences": lib.sequences,
            "phenotype_labels": self.assets.body.phenotype_labels,
            "image_scale": "images/<i>.jpg are the detector's input scaled to at most "
            f"{PREVIEW_MAX_SIDE} px (for previews and checks)",
        }
        path = shards.write_shard(out, index, people, meta, extra_dirs={"images": images_dir})
        return json.loads((path / "meta.json").read_text())


_WORKER: Worker | None = None


def _init_worker(settings: Settings, device: str) -> None:
    global _WORKER
    _WORKER = Worker(settings, device)


def _run_shard(out: str, index: int) -> dict:
    assert _WORKER is not None
    return _WORKER.shard(Path(out), index)


# ---------------------------------------------------------------------------------------------
# The command


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
    )


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
    if config_path.is_file() and json.loads(config_path.read_text()) != json.loads(json.dumps(asdict(settings))):
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
    start = time.perf_counter()
    next_index = 0
    per_shard = max(1.0, settings.images_per_shard * 1.6)  # people per shard, refined as shards finish

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

    if done >= args.people:
        pass  # everything asked for is there already
    elif args.workers <= 0:
        worker = Worker(settings, args.device)
        while done < args.people:
            finished(worker.shard(out, next_missing()))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.workers, initializer=_init_worker, initargs=(settings, args.device)) as pool:
            pending: list = []
            while True:
                while len(pending) < 2 * args.workers and done + per_shard * len(pending) < args.people:
                    pending.append(pool.apply_async(_run_shard, (str(out), next_missing())))
                if not pending:
                    break
                ready = [p for p in pending if p.ready()]
                if not ready:
                    time.sleep(0.2)
                    continue
                for p in ready:
                    pending.remove(p)
                    finished(p.get())
    bar.close()
    elapsed = time.perf_counter() - start
    summary = summarize(out)
    if made:
        people = sum(m["people"] for m in made)
        images = sum(m["counts"].get("images", 0) for m in made)
        summary["throughput"] = {
            "people_per_s": people / elapsed,
            "images_per_s": images / elapsed,
            "seconds": elapsed,
            "workers": args.workers,
        }
    summary["pose_library"] = {
        "frames": int(len(library.keep)),
        "dropped_fraction": library.drop_fraction(),
        "calibration_residual_mm": dict(zip(retarget.H36M17, map(float, library.calibration_residual_mm), strict=True)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(format_summary(summary))
    if args.preview is not None:
        from .preview import contact_sheet

        contact_sheet(out, args.preview, seed=args.seed)
        print(f"preview: {args.preview}")
    return 0


def summarize(out: Path) -> dict:
    """Counts, detection rate, keypoint error and disk of everything in ``out``."""
    from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

    from . import shards

    totals: dict[str, int] = {}
    errors, errors_coco, errors_clean = [], [], []
    coco_idx, h36m_idx = (list(x) for x in zip(*COCO_H36M_SHARED, strict=True))
    fields = (
        "keypoints",
        "box",
        "target_px",
        "coco_px",
        "joints_in_image",
        "visible_fraction",
        "truncation",
        "image_size",
    )
    for meta, a in shards.iter_people(out, fields):
        for key, value in meta["counts"].items():
            totals[key] = totals.get(key, 0) + value
        if not meta["people"]:
            continue
        box = np.asarray(a["box"], np.float64)
        scale = np.sqrt(np.clip((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1.0, None))[:, None]
        kp = np.asarray(a["keypoints"])[:, :, :2]
        valid = np.asarray(a["joints_in_image"])[:, h36m_idx]
        e = np.linalg.norm(kp[:, coco_idx] - np.asarray(a["target_px"])[:, h36m_idx], axis=-1) / scale
        errors.append(e[valid])
        # Fully visible people only, as in the real S11 frames the figure is compared with.
        clean = (np.asarray(a["visible_fraction"]) > 0.95) & (np.asarray(a["truncation"]) == 0)
        errors_clean.append(e[clean])
        coco_px, size = np.asarray(a["coco_px"]), np.asarray(a["image_size"])[:, None]
        coco_in = ((coco_px >= 0) & (coco_px <= size - 1)).all(-1)
        errors_coco.append((np.linalg.norm(kp - coco_px, axis=-1) / scale)[coco_in])
    people = sum(json.loads((p / "meta.json").read_text())["people"] for p in shards.list_shards(out))
    disk = shards.disk_bytes(out)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)

    return {
        "people": people,
        "counts": totals,
        "disk_bytes": disk,
        "disk_gb_per_10k_people": disk / max(people, 1) * 1e4 / 1e9,
        "detection_rate": totals.get("matched_detectable", 0) / max(totals.get("detectable", 0), 1),
        "detection_rate_oks50": totals.get("matched_detectable_oks50", 0) / max(totals.get("detectable", 0), 1),
        "median_keypoint_error_vs_target": float(np.median(cat(errors))) if errors else float("nan"),
        "median_keypoint_error_vs_body_coco": float(np.median(cat(errors_coco))) if errors_coco else float("nan"),
        "median_keypoint_error_vs_target_unoccluded": float(np.median(cat(errors_clean)))
        if len(cat(errors_clean))
        else float("nan"),
    }


def format_summary(s: dict) -> str:
    c = s["counts"]
    lines = [
        f"stored people: {s['people']} ({c.get('images', 0)} images, {c.get('rendered', 0)} people rendered, "
        f"{c.get('detectable', 0)} detectable, {c.get('detections', 0)} detections, "
        f"{c.get('unmatched_detections', 0)} unmatched detections, "
        f"{c.get('rendered', 0) - c.get('matched', 0)} rendered people unmatched)",
        f"detection rate (detectable people matched, OKS >= {MIN_OKS}): {100 * s['detection_rate']:.1f} %; "
        f"at OKS >= 0.5: {100 * s['detection_rate_oks50']:.1f} %",
        f"median keypoint error / sqrt(box area): {100 * s['median_keypoint_error_vs_target']:.2f} % vs the projected "
        f"H36M targets (shared joints; {100 * s['median_keypoint_error_vs_target_unoccluded']:.2f} % for fully "
        f"visible people), {100 * s['median_keypoint_error_vs_body_coco']:.2f} % vs the body's own COCO points",
        f"disk: {s['disk_bytes'] / 1e6:.1f} MB, {s['disk_gb_per_10k_people']:.2f} GB per 10,000 people",
    ]
    if "throughput" in s:
        t = s["throughput"]
        lines.append(
            f"throughput: {t['people_per_s']:.2f} people/s, {t['images_per_s']:.2f} images/s "
            f"({t['workers']} workers, {t['seconds']:.0f} s)"
        )
    return "\n".join(lines)
