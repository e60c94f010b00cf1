"""The on-disk format of rendered training people: one folder per shard, one ``.npy`` per field.

A shard is ``<root>/shard_<index:06d>/`` holding one array per field of :data:`FIELDS` (first
axis: the people stored in it, in image order), ``meta.json`` (counts, the crop geometry, the
camera and mocap tables, the engine's settings) and ``images/<i>.jpg``, each image the detector
saw, scaled to at most 640 px (for previews and checks; image ``i`` has image_id ``index * 1e6 + i``). Plain ``.npy`` files can be memory-mapped, so a
trainer reads 50,000 people without loading them. A shard is written into a temporary folder
and renamed into place, so a folder that exists is complete: a run killed at any moment resumes
at the next missing shard.

The fields, their dtypes, per-person shapes and meanings are ``schema.FIELDS`` (the one
definition the engine, this module and ``training.people`` share).

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

from .schema import FIELDS, check_record

#: 2: instant, view, camera_R, camera_T added; images/index.json (each image's camera and truth).
FORMAT_VERSION = 2


def shard_dir(root: Path, index: int) -> Path:
    return Path(root) / f"shard_{index:06d}"


def write_shard(
    root: Path, index: int, people: list[dict[str, np.ndarray]], meta: dict, extra_dirs: dict[str, Path] | None = None
) -> Path:
    """Write ``people`` (one dict of ``schema.FIELDS`` per person, checked) and ``meta`` atomically; the
    folders ``extra_dirs`` (name -> a folder on the same file system) are moved in with them."""
    final = shard_dir(root, index)
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, folder in (extra_dirs or {}).items():
        os.replace(folder, tmp / name)
    for person in people:
        check_record(person)
    for name, field in FIELDS.items():
        if people:
            array = np.stack([np.asarray(p[name], dtype=field.dtype) for p in people])
        else:  # an empty shard still has every field, with its per-person shape where known
            array = np.zeros((0,) + (field.shape if field.shape is not None else (0, 0, 0)), dtype=field.dtype)
        np.save(tmp / f"{name}.npy", array)
    meta = {**meta, "format_version": FORMAT_VERSION, "people": len(people)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    os.replace(tmp, final)  # a folder that exists is complete
    return final


def read_shard(path: Path, mmap: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of one shard; arrays are memory-mapped unless ``mmap=False``. A shard
    of an older format lacks the fields added since (format 1: instant, view, camera_R, camera_T):
    they are absent from ``arrays``, so sets made before still train."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    arrays = {
        name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None)
        for name in FIELDS
        if (path / f"{name}.npy").is_file()
    }
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
