"""A contact sheet of random stored images, to check the data by eye.

Each tile is one image as the detector saw it, with every stored person drawn on it: the 3D
target projected (H36M-17 skeleton, lines, one colour per person) and the detector's keypoints
(dots). Misplaced targets, missed people, odd bodies, clothing or backgrounds show at a glance.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ros2_ctxpose.core.skeleton import H36M17_BONES

from . import shards

TILE = (480, 360)
COLOURS = ((0, 220, 255), (255, 120, 0), (60, 220, 60), (220, 60, 220), (255, 255, 255))


def contact_sheet(root: Path, out: Path, count: int = 16, columns: int = 4, seed: int = 0) -> Path:
    """Write a PNG of ``count`` random images of the shards under ``root`` to ``out``."""
    rng = np.random.default_rng(seed)
    images = [(path, int(p.stem)) for path in shards.list_shards(root) for p in sorted((path / "images").glob("*.jpg"))]
    if not images:
        raise FileNotFoundError(f"no stored images under {root}")
    tiles = []
    for k in rng.permutation(len(images))[:count]:
        path, i = images[k]
        tiles.append(_tile(path, i))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[r : r + columns]) for r in range(0, len(tiles), columns)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return out


def _tile(shard: Path, i: int) -> np.ndarray:
    meta, a = shards.read_shard(shard)
    image = cv2.imread(str(shard / "images" / f"{i:04d}.jpg"))
    image_id = meta["index"] * 1_000_000 + i
    people = np.flatnonzero(np.asarray(a["image_id"]) == image_id)
    W = int(a["image_size"][people[0], 0]) if len(people) else image.shape[1]
    scale = image.shape[1] / W
    for n, p in enumerate(people):
        colour = COLOURS[n % len(COLOURS)]
        target = np.asarray(a["target_px"][p]) * scale
        for j0, j1 in H36M17_BONES:
            cv2.line(
                image,
                tuple(np.round(target[j0]).astype(int)),
                tuple(np.round(target[j1]).astype(int)),
                colour,
                1,
                cv2.LINE_AA,
            )
        for u, v, c in np.asarray(a["keypoints"][p]):
            if c > 0.3:
                cv2.circle(image, (int(round(u * scale)), int(round(v * scale))), 3, (0, 0, 255), -1, cv2.LINE_AA)
        x0, y0 = (np.asarray(a["box"][p][:2]) * scale).astype(int)
        cv2.putText(
            image,
            f"oks {float(a['oks'][p]):.2f} vis {float(a['visible_fraction'][p]):.2f}",
            (x0, max(12, y0 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            colour,
            1,
            cv2.LINE_AA,
        )
    cams = meta["cameras"]
    label = cams[int(a["camera"][people[0]])] if len(people) else "nobody stored"
    cv2.putText(
        image,
        f"shard {meta['index']} image {i}: {label}",
        (4, 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    h, w = image.shape[:2]
    s = min(TILE[0] / w, TILE[1] / h)
    image = cv2.resize(image, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    tile = np.zeros((TILE[1], TILE[0], 3), np.uint8)
    tile[: image.shape[0], : image.shape[1]] = image
    return tile
