"""The render side: the detector outputs a ``ctxpose synth --out`` folder stored, as samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

from .. import shards
from ..schema import CROP_FIELDS
from ..summary import fully_visible, keypoint_error
from .sample import PeopleSample, pool_crops

#: The small per-person fields read for every stored person before sampling.
_FIELDS = ("keypoints", "box", "target_px", "joints_in_image", "visible_fraction", "truncation", "image_id")


@dataclass(frozen=True)
class CropGeometry:
    """How a set's crops were cut (``crop_people`` sizes and margin): real crops are cut alike."""

    sizes: tuple[int, ...]
    margin: float


@dataclass(frozen=True)
class RenderSet:
    all: PeopleSample  # the sampled people
    visible: PeopleSample  # those fully visible, as the real frames they are compared with
    stored: int  # people in the folder's complete shards
    geometry: CropGeometry
    engine_versions: tuple[int, ...]


def collect_renders(root: Path, max_people: int, seed: int) -> RenderSet:
    """At most ``max_people`` people of ``root``'s complete shards (a seeded draw), with their
    keypoint error on the shared joints in the image and their pooled crops."""
    paths = shards.list_shards(root)
    if not paths:
        raise FileNotFoundError(f"no complete shards under {root} (make them with `ctxpose synth --out {root}`)")
    metas, arrays = zip(*(shards.read_shard(p) for p in paths), strict=True)
    geometries = {CropGeometry(tuple(m["settings"]["crop_sizes"]), float(m["settings"]["crop_margin"])) for m in metas}
    if len(geometries) != 1:
        raise ValueError(f"{root}: shards cut their crops with different geometries {sorted(map(str, geometries))}")
    counts = [m["people"] for m in metas]
    stored = sum(counts)
    if not stored:
        raise ValueError(f"{root}: the complete shards hold no people")
    chosen = np.sort(np.random.default_rng(seed).permutation(stored)[:max_people])
    shard_of = np.repeat(np.arange(len(paths)), counts)
    starts = np.cumsum([0, *counts])
    parts: dict[str, list[np.ndarray]] = {"conf": [], "errors": [], "features": [], "groups": [], "visible": []}
    for s, a in enumerate(arrays):
        rows = chosen[shard_of[chosen] == s] - starts[s]
        if not len(rows):
            continue
        small = {name: np.asarray(a[name][rows]) for name in _FIELDS}
        errors = keypoint_error(small["keypoints"], small["target_px"], small["box"])
        in_image = small["joints_in_image"][:, [h for _, h in COCO_H36M_SHARED]]
        parts["errors"].append(np.where(in_image, errors, np.nan))
        parts["conf"].append(small["keypoints"][..., 2])
        parts["features"].append(pool_crops([a[name][rows] for name in CROP_FIELDS]))
        # One rendered image (all its people) is one group; the views of a multi-view instant too.
        group_ids = np.asarray(a["instant"][rows]) if "instant" in a else small["image_id"]
        parts["groups"].append(np.array([f"render:{g}" for g in group_ids]))
        parts["visible"].append(fully_visible(small["visible_fraction"], small["truncation"]))
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    everyone = PeopleSample(
        f"renders {Path(root).name}", "render", cat["conf"], cat["errors"], cat["features"], cat["groups"]
    )
    return RenderSet(
        all=everyone,
        visible=everyone.subset(cat["visible"], f"renders {Path(root).name}, fully visible"),
        stored=stored,
        geometry=geometries.pop(),
        engine_versions=tuple(sorted({int(m.get("engine_version", 0)) for m in metas})),
    )
