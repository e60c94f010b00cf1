"""What a set of rendered people looks like: counts, detection rate, keypoint error and disk,
summed over the complete shards of an output folder (printed and stored by ``ctxpose synth``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .image_people import MIN_OKS


def box_scale(box: np.ndarray) -> np.ndarray:
    """(N, 1) sqrt(box area) of (N, 4) x0 y0 x1 y1 boxes, at least 1 px: the unit of keypoint errors."""
    box = np.asarray(box, np.float64)
    return np.sqrt(np.clip((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1.0, None))[:, None]


def keypoint_error(keypoints: np.ndarray, target_px: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(N, shared joints) distance of the detector's COCO keypoints (N, 17, 2+) to the projected
    H36M-17 targets (N, 17, 2) on the joints both skeletons share, / sqrt(box area). The same
    figure for renders (``summarize``) and real frames (``realism``), so the two compare."""
    from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

    coco_idx, h36m_idx = (list(x) for x in zip(*COCO_H36M_SHARED, strict=True))
    kp = np.asarray(keypoints)[:, coco_idx, :2]
    return np.linalg.norm(kp - np.asarray(target_px)[:, h36m_idx], axis=-1) / box_scale(box)


def fully_visible(visible_fraction: np.ndarray, truncation: np.ndarray) -> np.ndarray:
    """People nothing covers or cuts off, as the real frames renders are compared with (``realism``)."""
    return (np.asarray(visible_fraction) > 0.95) & (np.asarray(truncation) == 0)


def summarize(out: Path) -> dict:
    """Counts, detection rate, keypoint error and disk of everything in ``out``."""
    from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

    from . import shards

    totals: dict[str, int] = {}
    errors, errors_coco, errors_clean = [], [], []
    h36m_idx = [h for _, h in COCO_H36M_SHARED]
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
        scale = box_scale(a["box"])
        kp = np.asarray(a["keypoints"])[:, :, :2]
        valid = np.asarray(a["joints_in_image"])[:, h36m_idx]
        e = keypoint_error(a["keypoints"], a["target_px"], a["box"])
        errors.append(e[valid])
        # Fully visible people only, as in the real S11 frames the figure is compared with.
        clean = fully_visible(a["visible_fraction"], a["truncation"])
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
            f"({t.get('engine', str(t['workers']) + ' workers')}, {t['seconds']:.0f} s)"
        )
    return "\n".join(lines)
