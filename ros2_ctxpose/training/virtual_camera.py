"""Random virtual cameras around a mocap pose, covering what a robot's camera sees.

Human3.6M has 4 cameras per subject, all at about 1.5 m height and 4-6 m away; a robot's camera
may be at knee or ceiling height, next to the person or across a hall, with a wide lens. Each
virtual camera is placed at a random horizontal distance and azimuth from the person's pelvis,
at a random height above the floor (the mocap floor is z = 0), looks roughly at the person (yaw
jitter within the field of view, pitch clipped to the range, small roll), and has a random field
of view, aspect ratio and principal point. Draws that leave the person mostly out of the image
are redrawn. All in torch, batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class VirtualCameraRanges:
    height_m: tuple[float, float] = (0.3, 2.5)
    distance_m: tuple[float, float] = (1.0, 10.0)
    max_pitch_deg: float = 30.0
    max_roll_deg: float = 5.0
    hfov_deg: tuple[float, float] = (50.0, 110.0)
    aspect: tuple[float, ...] = (4 / 3, 16 / 9)
    #: Principal point offset from the image centre, as a fraction of the image width/height.
    principal_offset: float = 0.08
    #: Pitch jitter around looking at the pelvis; yaw jitter as a fraction of the half FOV.
    pitch_jitter_deg: float = 10.0
    yaw_jitter: float = 0.6
    #: A draw is kept when at least this many of the 17 joints are inside the image.
    min_joints_in_view: int = 13


@dataclass
class VirtualCameraBatch:
    """Per sample: world->camera rotation R (B, 3, 3) (rows = camera axes in world), camera centre
    C (B, 3), image bounds in normalised coordinates (B, 4) = x_min, y_min, x_max, y_max, and the
    parameters drawn, for checking the ranges."""

    R: Tensor
    C: Tensor
    bounds: Tensor
    height: Tensor
    distance: Tensor
    pitch_deg: Tensor
    hfov_deg: Tensor

    def to_camera(self, joints_world: Tensor) -> Tensor:
        """(B, J, 3) world metres -> (B, J, 3) camera frame (x right, y down, z forward)."""
        return torch.einsum("bij,bkj->bki", self.R, joints_world - self.C.unsqueeze(1))


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def _rotation(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """World (z up) -> optical frame rotation for a camera with heading ``yaw`` (about world z,
    0 = looking along +x), ``pitch`` (positive = looking down) and ``roll`` (about the optical axis)."""
    cy, sy, cp, sp = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()
    forward = torch.stack([cy * cp, sy * cp, -sp], -1)
    right = torch.stack([sy, -cy, torch.zeros_like(cy)], -1)
    down = torch.cross(forward, right, dim=-1)
    cr, sr = roll.cos().unsqueeze(-1), roll.sin().unsqueeze(-1)
    right, down = cr * right + sr * down, -sr * right + cr * down
    return torch.stack([right, down, forward], 1)


def _draw(pelvis: Tensor, r: VirtualCameraRanges, g: torch.Generator | None) -> VirtualCameraBatch:
    n = pelvis.shape[0]
    height = _uniform(n, *r.height_m, g)
    distance = _uniform(n, *r.distance_m, g)
    azimuth = _uniform(n, 0.0, 2 * math.pi, g)
    hfov = _uniform(n, *r.hfov_deg, g)
    aspect = torch.tensor(r.aspect)[torch.randint(len(r.aspect), (n,), generator=g)]
    centre = torch.stack([pelvis[:, 0] + distance * azimuth.cos(), pelvis[:, 1] + distance * azimuth.sin(), height], -1)
    look_yaw = azimuth + math.pi  # towards the person
    half_w = torch.tan(torch.deg2rad(hfov) / 2)
    yaw = look_yaw + torch.atan(half_w) * r.yaw_jitter * _uniform(n, -1.0, 1.0, g)
    look_pitch = torch.atan2(height - pelvis[:, 2], distance)
    pitch = torch.deg2rad(
        (torch.rad2deg(look_pitch) + _uniform(n, -r.pitch_jitter_deg, r.pitch_jitter_deg, g)).clamp(
            -r.max_pitch_deg, r.max_pitch_deg
        )
    )
    roll = torch.deg2rad(_uniform(n, -r.max_roll_deg, r.max_roll_deg, g))
    half_h = half_w / aspect
    off_x = _uniform(n, -r.principal_offset, r.principal_offset, g) * 2 * half_w
    off_y = _uniform(n, -r.principal_offset, r.principal_offset, g) * 2 * half_h
    bounds = torch.stack([-half_w + off_x, -half_h + off_y, half_w + off_x, half_h + off_y], -1)
    return VirtualCameraBatch(_rotation(yaw, pitch, roll), centre, bounds, height, distance, torch.rad2deg(pitch), hfov)


def in_view(joints_cam: Tensor, bounds: Tensor, min_depth: float = 0.1) -> Tensor:
    """(B, J) bool: in front of the camera and inside the image rectangle."""
    z = joints_cam[..., 2]
    xy = joints_cam[..., :2] / z.clamp_min(1e-6).unsqueeze(-1)
    b = bounds.unsqueeze(1)
    return (
        (z > min_depth)
        & (xy[..., 0] >= b[..., 0])
        & (xy[..., 0] <= b[..., 2])
        & (xy[..., 1] >= b[..., 1])
        & (xy[..., 1] <= b[..., 3])
    )


def sample_virtual_cameras(
    joints_world: Tensor,
    ranges: VirtualCameraRanges = VirtualCameraRanges(),
    generator: torch.Generator | None = None,
    max_rounds: int = 20,
) -> tuple[Tensor, VirtualCameraBatch]:
    """Camera-frame joints (B, 17, 3) of each world pose (B, 17, 3) seen by its own random camera.

    Rejected draws (fewer than ``min_joints_in_view`` joints in view, or any joint behind the
    camera) are redrawn up to ``max_rounds`` times; the few left after that keep their last draw
    (they still train the truncation handling).
    """
    pelvis = joints_world[:, 0]
    cams = _draw(pelvis, ranges, generator)
    joints_cam = cams.to_camera(joints_world)
    for _ in range(max_rounds):
        bad = (in_view(joints_cam, cams.bounds).sum(-1) < ranges.min_joints_in_view) | (joints_cam[..., 2] <= 0.1).any(
            -1
        )
        if not bad.any():
            break
        idx = bad.nonzero().squeeze(1)
        redraw = _draw(pelvis[idx], ranges, generator)
        for name in ("R", "C", "bounds", "height", "distance", "pitch_deg", "hfov_deg"):
            getattr(cams, name)[idx] = getattr(redraw, name)
        joints_cam[idx] = redraw.to_camera(joints_world[idx])
    return joints_cam, cams
