"""People seen by the real detector, with 3D ground truth: the samples the context lifter learns
and is measured on.

Rendered people (``training/synthetic``) and annotated real frames (``real_frames``) end up in the
same form: the detector's keypoints as the lifter sees them (undistorted normalised coordinates
and confidences), each person's feature crops and their joints inside them (``crop_people``), and
the 3D target, root-relative, in the camera frame. One form means one training loop and one
evaluation for both, and the same evaluation of a model with and without its image context.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ros2_ctxpose.core.lifter.model import ContextLifter, LifterConfig
from ros2_ctxpose.core.metrics import mpjpe, pa_mpjpe
from ros2_ctxpose.training.synthetic.schema import CROP_FIELDS, LIFTER_FIELDS


@dataclass(frozen=True)
class PeopleSet:
    """N people. Arrays may be memory-mapped; ``take`` copies only the rows asked for."""

    kp_norm: np.ndarray  # (N, 17, 2) float32, COCO-17 undistorted normalised coordinates
    conf: np.ndarray  # (N, 17) float32
    joints_grid: np.ndarray  # (N, 17, 2) float32, the keypoints in the crops' grid coordinates
    crops: tuple[np.ndarray, ...]  # per level (N, C, S, S) float16
    target: np.ndarray  # (N, 17, 3) float32, H36M-17, camera frame, root-relative metres (or a
    # lazy view that makes rows root-relative as they are read)

    def __len__(self) -> int:
        return len(self.target)

    def take(self, index: np.ndarray | Sequence[int], with_crops: bool = True) -> dict[str, Tensor]:
        """Rows ``index`` as float32 tensors (crops too, unless ``with_crops`` is False)."""
        index = np.sort(np.asarray(index))  # ascending reads are what memory maps like
        rows = {
            "kp_norm": torch.from_numpy(np.ascontiguousarray(self.kp_norm[index], dtype=np.float32)),
            "conf": torch.from_numpy(np.ascontiguousarray(self.conf[index], dtype=np.float32)),
            "joints_grid": torch.from_numpy(np.ascontiguousarray(self.joints_grid[index], dtype=np.float32)),
            "target": torch.from_numpy(np.ascontiguousarray(self.target[index], dtype=np.float32)),
        }
        if with_crops:
            rows["crops"] = tuple(torch.from_numpy(np.asarray(c[index], dtype=np.float32)) for c in self.crops)
        return rows


def concat(sets: Sequence[PeopleSet]) -> PeopleSet:
    """One set of every person in ``sets`` (copies into memory; use for evaluation-sized sets)."""
    return PeopleSet(
        kp_norm=np.concatenate([s.kp_norm for s in sets]),
        conf=np.concatenate([s.conf for s in sets]),
        joints_grid=np.concatenate([s.joints_grid for s in sets]),
        crops=tuple(np.concatenate(level) for level in zip(*(s.crops for s in sets))),
        target=np.concatenate([s.target[np.arange(len(s))] for s in sets]),
    )


def predict(model: ContextLifter, rows: dict[str, Tensor], use_context: bool) -> Tensor:
    """The model's root-relative poses for ``rows`` (from ``PeopleSet.take``)."""
    if use_context:
        return model(rows["kp_norm"], rows["conf"], rows["crops"], rows["joints_grid"])
    return model(rows["kp_norm"], rows["conf"])


@torch.no_grad()
def evaluate_people(
    model: ContextLifter, people: PeopleSet, use_context: bool, batch_size: int = 512
) -> dict[str, float]:
    """Mean MPJPE, PA-MPJPE and their image-plane / depth parts (mm) over ``people``.

    Without context the model answers as shipped (flip averaging when its config says so); with
    context it answers for one view (mirrored feature maps do not exist).
    """
    model.eval()
    sums = dict.fromkeys(("mpjpe_mm", "pa_mpjpe_mm", "xy_mm", "z_mm"), 0.0)
    for start in range(0, len(people), batch_size):
        rows = people.take(np.arange(start, min(start + batch_size, len(people))), with_crops=use_context)
        pred, target = predict(model, rows, use_context), rows["target"]
        diff = pred - target
        sums["mpjpe_mm"] += mpjpe(pred, target).sum().item()
        sums["pa_mpjpe_mm"] += pa_mpjpe(pred, target).sum().item()
        sums["xy_mm"] += diff[..., :2].norm(dim=-1).mean(-1).sum().item()
        sums["z_mm"] += diff[..., 2].abs().mean(-1).sum().item()
    return {k: 1000.0 * v / max(len(people), 1) for k, v in sums.items()}


def load_rendered(roots: Sequence[Path], lifter: LifterConfig, in_memory: bool = False) -> PeopleSet:
    """Every rendered person in the complete shards under ``roots`` (``ctxpose synth`` outputs).

    The shards of each root are merged once into one memory-mapped file per field
    (``<root>/merged/``, rebuilt when the shard list changes), so a batch reads its rows without
    loading 50,000 people's crops. Shards whose crops were cut with another geometry than
    ``lifter``'s are refused: the context branch would read them wrongly.
    """
    from ros2_ctxpose.training.synthetic.shards import list_shards, read_shard

    sets = []
    for root in map(Path, roots):
        shards = list_shards(root)
        if not shards:
            raise FileNotFoundError(f"no complete shards under {root} (make them with `ctxpose synth --out {root}`)")
        for path in shards:
            meta, _ = read_shard(path)
            settings = meta["settings"]
            sizes, margin = settings["crop_sizes"], settings["crop_margin"]
            if (
                tuple(sizes) != tuple(lifter.context_crop_sizes)
                or abs(float(margin) - lifter.context_crop_margin) > 1e-9
            ):
                raise ValueError(
                    f"{path}: crops of sizes {sizes} x margin {margin}, but the lifter reads "
                    f"{tuple(lifter.context_crop_sizes)} x {lifter.context_crop_margin}"
                )
        arrays = _merged(root, shards, read_shard)
        if in_memory:
            arrays = {k: np.array(v) for k, v in arrays.items()}
        target = arrays["target_cam"]
        sets.append(
            PeopleSet(
                kp_norm=arrays["keypoints_norm"],
                conf=arrays["keypoints"][..., 2],
                joints_grid=arrays["joints_grid"],
                crops=tuple(arrays[name] for name in CROP_FIELDS),
                target=(target - target[:, :1]) if in_memory else _RootRelative(target),
            )
        )
    return sets[0] if len(sets) == 1 else concat(sets)


class _RootRelative:
    """``target_cam`` made root-relative row by row as it is read (keeps the memory map lazy)."""

    def __init__(self, target_cam: np.ndarray) -> None:
        self._target = target_cam
        self.shape = target_cam.shape

    def __len__(self) -> int:
        return len(self._target)

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        rows = np.asarray(self._target[index], dtype=np.float32)
        return rows - rows[:, :1]


def _merged(root: Path, shards: list[Path], read_shard) -> dict[str, np.ndarray]:
    """One memory-mapped array per field over ``shards``, written once under ``root/merged``."""
    out = root / "merged"
    stamp = "\n".join(p.name for p in shards)
    if (out / "shards.txt").is_file() and (out / "shards.txt").read_text() == stamp:
        return {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in LIFTER_FIELDS}
    parts = [read_shard(p)[1] for p in shards]
    tmp = root / "merged.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for name in LIFTER_FIELDS:
        first = parts[0][name]
        total = sum(len(a[name]) for a in parts)
        merged = np.lib.format.open_memmap(
            tmp / f"{name}.npy", mode="w+", dtype=first.dtype, shape=(total, *first.shape[1:])
        )
        at = 0
        for a in parts:
            merged[at : at + len(a[name])] = a[name]
            at += len(a[name])
        merged.flush()
        del merged
    (tmp / "shards.txt").write_text(stamp)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in LIFTER_FIELDS}
