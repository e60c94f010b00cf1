"""The shipped lifter weights: small, safe to load, and a sane skeleton on an exact-2D S11 frame."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from ros2_ctxpose.core.lifter import load_lifter
from ros2_ctxpose.core.skeleton import H36M17, H36M17_BONES
from ros2_ctxpose.training.synthetic_2d import lifter_sample

WEIGHTS = resources.files("ros2_ctxpose.core.lifter") / "weights" / "ctxpose_lifter.pt"

#: Plausible adult lengths (m) of the H36M-17 bones, generous: a sane skeleton, not an accurate one.
ADULT_BONE_RANGES_M: dict[tuple[str, str], tuple[float, float]] = {
    ("pelvis", "spine"): (0.15, 0.35),
    ("spine", "thorax"): (0.15, 0.35),
    ("thorax", "neck_nose"): (0.05, 0.25),
    ("neck_nose", "head_top"): (0.07, 0.25),
}
for _side in ("left", "right"):
    ADULT_BONE_RANGES_M.update(
        {
            ("pelvis", f"{_side}_hip"): (0.08, 0.20),
            (f"{_side}_hip", f"{_side}_knee"): (0.30, 0.55),
            (f"{_side}_knee", f"{_side}_ankle"): (0.30, 0.55),
            ("thorax", f"{_side}_shoulder"): (0.10, 0.25),
            (f"{_side}_shoulder", f"{_side}_elbow"): (0.20, 0.40),
            (f"{_side}_elbow", f"{_side}_wrist"): (0.18, 0.35),
        }
    )


def test_shipped_weights_are_small_plain_tensors() -> None:
    with resources.as_file(WEIGHTS) as path:
        assert path.stat().st_size < 5 * 1024 * 1024
        blob = torch.load(path, map_location="cpu", weights_only=True)
    assert set(blob) >= {"config", "state_dict"}
    model = load_lifter()
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_lifter(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a lifter weights file"):
        load_lifter(bad)


def test_shipped_weights_give_a_human_skeleton_for_an_exact_2d_s11_frame(shared_data) -> None:
    from ros2_ctxpose.training.h36m import image_bounds, load_cameras, subject_cameras

    poses = np.load(shared_data("data/h36m/poses_world17_mm.npz"))
    cam = subject_cameras(load_cameras(shared_data("data/h36m/cameras.json")), "S11")[0]
    joints = torch.from_numpy(cam.world_to_cam(poses["S11/Walking 1"][100].astype(np.float32))).float()[None]
    bounds = torch.from_numpy(image_bounds(cam.model)).float()[None]
    kp, conf, target = lifter_sample(joints, bounds, noise=None)
    with torch.no_grad():
        pred = load_lifter()(kp, conf)
    assert pred.shape == (1, 17, 3) and torch.all(pred[:, 0] == 0)
    bones = torch.tensor(H36M17_BONES)
    length = (pred[0, bones[:, 1]] - pred[0, bones[:, 0]]).norm(dim=-1)
    for (parent, child), value in zip(H36M17_BONES, length.tolist()):
        lo, hi = ADULT_BONE_RANGES_M[(H36M17[parent], H36M17[child])]
        assert lo <= value <= hi, f"{H36M17[parent]}->{H36M17[child]}: {value:.3f} m not in [{lo}, {hi}]"
    assert (pred - target).norm(dim=-1).mean() < 0.1  # a walking pose with exact 2D: under 10 cm
