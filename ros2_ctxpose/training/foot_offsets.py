"""Learn the foot prior of floor-aware placement from the training mocap.

``core/floor.py`` places a standing person so that the supporting ankles stand at a learned height
above the floor. That height, and its spread, come from Human3.6M's training subjects (S1 S5 S6 S7
S8; never S11, the validation subject): their world frame has z up and the floor near z = 0, so
the support height of every frame is measured directly, with the same definition the placement
uses (``core.floor.support_weights``) and over the frames the placement would accept
(``core.floor.posture_codes`` == 0). The spread is robust (1.4826 x the median absolute
deviation): it includes the subjects' different shoes and marker placements, which a robot meets
as well. Writes ``core/floor_prior.json``::

    python -m ros2_ctxpose.training.foot_offsets --out ros2_ctxpose/core/floor_prior.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ros2_ctxpose.core.floor import FOOT_PRIOR_FILE, FOOT_PRIOR_VERSION, H36M_ANKLES, posture_codes, support_weights
from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS, load_poses

COMMAND = "python -m ros2_ctxpose.training.foot_offsets --out ros2_ctxpose/core/floor_prior.json"


def support_heights(poses_world_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 3) z-up world poses (floor at z = 0) -> support heights (N,) and which frames the
    placement would accept as standing on the feet (N,) bool."""
    z = np.asarray(poses_world_m, dtype=np.float64)[..., 2]
    ankles = z[:, list(H36M_ANKLES)]
    return (support_weights(ankles) * ankles).sum(axis=1), posture_codes(z) == 0


def learn(subjects: tuple[str, ...] = TRAIN_SUBJECTS, stride: int = 5) -> dict[str, Any]:
    """The foot prior of ``subjects``' mocap (every ``stride``-th frame), as written to the file."""
    if "S11" in subjects:
        raise ValueError("S11 is the validation subject: never learn from it")
    poses = load_poses(subjects, stride=stride)
    per_subject: dict[str, float] = {}
    kept: list[np.ndarray] = []
    total = 0
    for subject in subjects:
        frames = np.concatenate([v for k, v in poses.items() if k.split("/")[0] == subject])
        heights, standing = support_heights(frames)
        total += len(frames)
        kept.append(heights[standing])
        per_subject[subject] = round(float(np.median(heights[standing])), 4)
    heights = np.concatenate(kept)
    median = float(np.median(heights))
    sd = 1.4826 * float(np.median(np.abs(heights - median)))
    return {
        "version": FOOT_PRIOR_VERSION,
        "foot_offset_m": round(median, 4),
        "foot_offset_sd_m": round(sd, 4),
        "definition": "mean height above the floor of the ankles within 0.05 m of the lower one "
        "(core.floor.support_weights), frames that core.floor.posture_codes accepts",
        "subjects": list(subjects),
        "stride": stride,
        "frames": int(total),
        "frames_standing": int(len(heights)),
        "percentiles_5_25_75_95_m": [round(float(v), 4) for v in np.percentile(heights, [5, 25, 75, 95])],
        "per_subject_median_m": per_subject,
        "command": COMMAND,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FOOT_PRIOR_FILE, help="where to write the prior (JSON)")
    parser.add_argument("--stride", type=int, default=5, help="every n-th mocap frame (50 Hz)")
    args = parser.parse_args(argv)
    try:
        prior = learn(stride=args.stride)
    except (OSError, KeyError, ValueError) as exc:
        print(f"foot_offsets: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(prior, indent=2) + "\n")
    print(json.dumps(prior, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
