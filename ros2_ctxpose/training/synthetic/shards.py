"""The on-disk format of rendered training people: one folder per shard, one ``.npy`` per field.

A shard is ``<root>/shard_<index:06d>/`` holding one array per field of :data:`FIELDS` (first
axis: the people stored in it, in image order), ``meta.json`` (counts, the crop geometry, the
camera and mocap tables, the engine's settings) and ``images/<i>.jpg``, each image the detector
saw, scaled to at most 640 px (for previews and checks; image ``i`` has image_id ``index * 1e6 + i``). Plain ``.npy`` files can be memory-mapped, so a
trainer reads 50,000 people without loading them. A shard is written into a temporary folder
and renamed into place, so a folder that exists is complete: a run killed at any moment resumes
at the next missing shard.

Per person (N people in a shard):

=======================  =====================  =============================================
field                    dtype, shape           meaning
=======================  =====================  =============================================
keypoints                float32 (N, 17, 3)     detector COCO-17 [u, v, conf], pixels
keypoints_norm           float32 (N, 17, 2)     the same, undistorted normalised (x/z, y/z)
box                      float32 (N, 4)         detector box x0 y0 x1 y1, pixels
score                    float32 (N,)           detector person score
crop_l0 .. crop_l3       float16 (N, C, S, S)   ``crop_people`` feature crops per level
joints_grid              float32 (N, 17, 2)     keypoints in the crops' grid_sample coords
target_cam               float32 (N, 17, 3)     H36M-17 of the rendered body, camera frame, m
target_px                float32 (N, 17, 2)     target_cam projected (distortion included)
coco_px                  float32 (N, 17, 2)     the body's own COCO-17 points projected
K                        float32 (N, 3, 3)      intrinsics
dist                     float32 (N, 5)         OpenCV k1 k2 p1 p2 k3
image_size               int32 (N, 2)           width, height
image_id                 int64 (N,)             shard index * 1e6 + image in shard
camera                   int16 (N,)             index into meta["cameras"] ("virtual", H36M)
mocap_sequence           int16 (N,)             index into meta["sequences"] ("S1/Walking 1")
mocap_frame              int32 (N,)             row of that sequence in poses_world17_mm.npz
phenotype                float32 (N, 6)         Anny phenotype (meta["phenotype_labels"])
mapping_residual_mm      float32 (N, 17)        fit residual of this mocap frame (retarget)
oks                      float32 (N,)           match quality, detection vs the body's COCO
visible_fraction         float32 (N,)           visible silhouette / silhouette in the image
truncation               float32 (N,)           share of the body's vertices outside the image
joints_in_image          bool (N, 17)           target joint projects into the image
joints_occluded          bool (N, 17)           another person or an object covers the joint
=======================  =====================  =============================================

Disk: ~125 kB per person for the arrays (the crops are 61,440 float16 values, the rest ~1 kB)
plus the preview JPEGs, measured by ``ctxpose synth`` (its summary's ``disk_gb_per_10k_people``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FIELDS: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "keypoints": ("float32", (17, 3)),
    "keypoints_norm": ("float32", (17, 2)),
    "box": ("float32", (4,)),
    "score": ("float32", ()),
    "crop_l0": ("float16", None),
    "crop_l1": ("float16", None),
    "crop_l2": ("float16", None),
    "crop_l3": ("float16", None),
    "joints_grid": ("float32", (17, 2)),
    "target_cam": ("float32", (17, 3)),
    "target_px": ("float32", (17, 2)),
    "coco_px": ("float32", (17, 2)),
    "K": ("float32", (3, 3)),
    "dist": ("float32", (5,)),
    "image_size": ("int32", (2,)),
    "image_id": ("int64", ()),
    "camera": ("int16", ()),
    "mocap_sequence": ("int16", ()),
    "mocap_frame": ("int32", ()),
    "phenotype": ("float32", (6,)),
    "mapping_residual_mm": ("float32", (17,)),
    "oks": ("float32", ()),
    "visible_fraction": ("float32", ()),
    "truncation": ("float32", ()),
    "joints_in_image": ("bool", (17,)),
    "joints_occluded": ("bool", (17,)),
}
FORMAT_VERSION = 1


def shard_dir(root: Path, index: int) -> Path:
    return Path(root) / f"shard_{index:06d}"


def write_shard(
    root: Path, index: int, people: list[dict[str, np.ndarray]], meta: dict, extra_dirs: dict[str, Path] | None = None
) -> Path:
    """Write ``people`` (one dict of :data:`FIELDS` per person) and ``meta`` atomically; the
    folders ``extra_dirs`` (name -> a folder on the same file system) are moved in with them."""
    final = shard_dir(root, index)
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, folder in (extra_dirs or {}).items():
        os.replace(folder, tmp / name)
    for name, (dtype, shape) in FIELDS.items():
        if people:
            array = np.stack([np.asarray(p[name], dtype=dtype) for p in people])
        else:  # an empty shard still has every field, with its per-person shape where known
            array = np.zeros((0,) + (shape if shape is not None else (0, 0, 0)), dtype=dtype)
        np.save(tmp / f"{name}.npy", array)
    meta = {**meta, "format_version": FORMAT_VERSION, "people": len(people)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    os.replace(tmp, final)  # a folder that exists is complete
    return final


def read_shard(path: Path, mmap: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of one shard; arrays are memory-mapped unless ``mmap=False``."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None) for name in FIELDS}
    return meta, arrays


def list_shards(root: Path) -> list[Path]:
    """The complete shards under ``root``, in index order."""
    return sorted(p for p in Path(root).glob("shard_[0-9]*") if (p / "meta.json").is_file())


def iter_people(root: Path, fields: tuple[str, ...]) -> Iterator[tuple[dict, dict[str, np.ndarray]]]:
    """Every shard's ``(meta, {field: array})`` for the chosen ``fields`` (memory-mapped)."""
    for path in list_shards(root):
        meta, arrays = read_shard(path)
        yield meta, {name: arrays[name] for name in fields}


def disk_bytes(root: Path) -> int:
    return sum(f.stat().st_size for p in list_shards(root) for f in p.rglob("*") if f.is_file())


def remove_partial(root: Path) -> int:
    """Delete what killed runs left half-written (``*.tmp<pid>`` folders); only safe while no
    other run writes into ``root``. Returns how many were removed."""
    partial = [p for p in Path(root).glob("shard_*.tmp*") if p.is_dir()]
    for p in partial:
        shutil.rmtree(p, ignore_errors=True)
    return len(partial)
