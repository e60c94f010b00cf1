"""How far renders are from real images in the detector's eyes: the median keypoint error /
sqrt(box area) of the detector on a rendered set (fully visible people, as ``summary`` reports
it) against the same figure on the real S11 WalkDog frames of ../shared (one person, fully
visible, exact 2D ground truth). A render set harder or easier than real frames shows as a gap.

``python -m ros2_ctxpose.training.synthetic.realism --renders DIR [--step 10]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .summary import keypoint_error, summarize


def real_frames_error(step: int = 10) -> np.ndarray:
    """Per-joint errors (frames x shared joints) of the detector on every ``step``-th real S11
    WalkDog frame; the detection closest to the annotated person is taken (frames where the
    detector finds nobody are left out and counted in the log line)."""
    import cv2

    from ros2_ctxpose.core.paths import shared_data_dir

    from .worker import make_detector

    folder = shared_data_dir() / "data" / "h36m_s11_walkdog"
    records = json.loads((folder / "annotations.json").read_text())["images"][::step]
    detector = make_detector()
    errors, missed = [], 0
    for record in records:
        det = detector.detect(cv2.imread(str(folder / record["file"])))
        if not len(det):
            missed += 1
            continue
        target = np.asarray(record["joints_2d_px"], np.float64)[None]
        per_detection = keypoint_error(det.keypoints, np.repeat(target, len(det), 0), det.boxes_xyxy)
        errors.append(per_detection[int(np.argmin(np.median(per_detection, 1)))])
    print(f"real S11 WalkDog: {len(records)} frames (every {step}th), detector found nobody in {missed}")
    return np.stack(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=Path, required=True, help="a `ctxpose synth --out` folder")
    parser.add_argument("--step", type=int, default=10, help="every step-th of the 399 real frames")
    args = parser.parse_args(argv)
    real = float(np.median(real_frames_error(args.step)))
    renders = summarize(args.renders)
    print(
        f"median keypoint error / sqrt(box area): real S11 {100 * real:.2f} %; renders "
        f"{100 * renders['median_keypoint_error_vs_target_unoccluded']:.2f} % fully visible, "
        f"{100 * renders['median_keypoint_error_vs_target']:.2f} % all ({renders['people']} people); "
        f"detection rate {100 * renders['detection_rate']:.1f} %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
