"""One generation process: its assets, renderer and detector, loaded once, and the shards it makes.

Shard ``i`` depends only on the settings' seed and ``i`` (its generator is seeded with both; the
pose library is a cached deterministic fit). A worker runs with one torch and one OpenCV thread:
the detector's CPU kernels are deterministic then, and parallelism comes from running several
workers (``generate``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .image_people import observe

#: Recorded in every shard: 1 = round 1 (photographs of anything, stretched floors), 2 = round 2
#: (places only, metric floors, contact shadows, robot mounts, multi-view), 3 = round 3 (rooms,
#: furniture, lamps, cast shadows, fabrics, camera effects matched to real footage).
ENGINE_VERSION = 3
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
    #: Cameras per instant (``sample_views``); ``images_per_shard`` counts instants then.
    views: int = 1


def make_detector(device: str = "cpu"):
    """The project's detector: the torch reference backend, so stored crops are what the
    reference computes (the one place the engine names the detector API)."""
    from ros2_ctxpose.core.config import PipelineConfig
    from ros2_ctxpose.core.detector import create_detector

    return create_detector(PipelineConfig(backend="torch", device=device))


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
        from . import shards
        from .scene import sample_scene, sample_views

        rng = np.random.default_rng([self.settings.seed, index])
        self.renderer.reset()  # bounds the renderer's memory (see Renderer)
        people: list[dict] = []
        totals: dict[str, int] = {}
        images_dir = shards.shard_dir(out, index).with_name(f"shard_{index:06d}.images.tmp{os.getpid()}")
        images_dir.mkdir(parents=True, exist_ok=True)
        truths = []
        views = self.settings.views
        for scene_index in range(self.settings.images_per_shard):
            scene = sample_scene(self.assets, rng)
            instant = index * 1_000_000 + scene_index * views
            for view, view_scene in enumerate(sample_views(self.assets, scene, rng, views)):
                i = scene_index * views + view
                seen = observe(self, view_scene, rng, instant + view, instant, view)
                people += seen.people
                for key, value in seen.counts.items():
                    totals[key] = totals.get(key, 0) + value
                truths.append({"image": i, "file": f"{i:04d}.jpg", "instant": instant, "view": view, **seen.truth})
                self._write_image(images_dir / f"{i:04d}.jpg", seen.image)
        (images_dir / "index.json").write_text(json.dumps(truths))
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

    def _write_image(self, path: Path, image: np.ndarray) -> None:
        """Single-view sets keep a preview (at most PREVIEW_MAX_SIDE px); multi-view sets keep the
        full image, so the intrinsics of ``index.json`` and ``annotations.json`` apply to it."""
        import cv2

        if self.settings.views == 1:
            scale = min(1.0, PREVIEW_MAX_SIDE / max(image.shape[:2]))
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85 if self.settings.views == 1 else 95])
