"""Floor-aware placement: the camera's pose above the floor fixes how far away a person is.

One image cannot tell a tall person far away from a short one close by: every placement
``s * (P + t)`` (P the lifter's root-relative pose, t the root ``root_from_reprojection`` found with
the lifter's assumed body size) reprojects onto the same keypoints. A robot knows where its floor
is (``floor_from_camera`` from TF: X_floor = R X_cam + t, floor z up, z = 0 the floor), and a
person standing on it has a supporting ankle at a known height above it (``FootPrior``, learned from
the training mocap by ``training/foot_offsets.py``). That fixes ``s`` along the ray.

The floor's ``s`` is fused with the size prior's ``s = 1`` by their variances (and their
covariance: both see the same keypoints). The floor's variance comes from the foot offset's
spread, the lifter's error in the ankle's position (mostly in depth) and the keypoint noise, all
divided by how far the ankle lies below the camera: it grows at grazing angles and with distance. The prior's comes from the spread of body sizes and the 2D noise
relative to the person's height in pixels. People who are probably not standing on their feet on
this floor keep the prior's placement, with the reason in ``notes``: ankles not visible or at the
image border, ankles not the lowest joints (kneeling, sitting, lying), no upright extent, a ray
that does not reach the floor in front of the camera, or floor and prior more than
``MAX_DISAGREEMENT_SIGMA`` apart (jumping, standing on a step, a wrong camera pose).

Everything is vectorised over the people of a frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

from .camera import CameraModel
from .placement import BODY_SIZE_SD, across_ray_sd, keypoint_scale_sd, person_height_px

#: The learned foot offset (``python -m ros2_ctxpose.training.foot_offsets``).
FOOT_PRIOR_FILE: Final[Path] = Path(__file__).with_name("floor_prior.json")
FOOT_PRIOR_VERSION: Final[int] = 1

#: H36M-17 ankles (right, left) and the COCO-17 keypoints they are seen as.
H36M_ANKLES: Final[tuple[int, int]] = (3, 6)
COCO_ANKLES: Final[tuple[int, int]] = (16, 15)

#: Ankles within this of the lower one both carry the weight; their mean height is the support
#: height (used alike when learning the offset and when placing).
SUPPORT_MARGIN_M: Final[float] = 0.05
#: A lowest joint this far below the supporting ankles means the body rests on something else
#: (knees, seat, back): H36M's kneeling and floor-sitting frames are 0.15-0.20 m.
MAX_ANKLE_ABOVE_LOWEST_M: Final[float] = 0.10
#: Highest joint less than this above the supporting ankles: lying (H36M's lying-down frames
#: are 0.16-0.25 m; its crouching ones 0.6 m and more, and they stand on their feet).
MIN_UPRIGHT_EXTENT_M: Final[float] = 0.5
#: The ankle's ray must point at least this far below the horizon ...
MIN_DEPRESSION_DEG: Final[float] = 2.0
#: ... and the camera must be at least this much higher than the ankle.
MIN_CAMERA_CLEARANCE_M: Final[float] = 0.1
#: Floor and size prior further apart than this (in standard deviations): not standing on this floor.
MAX_DISAGREEMENT_SIGMA: Final[float] = 3.0
#: Keypoints closer than this fraction of the image's larger side to its border are truncated.
BORDER_FRACTION: Final[float] = 0.01

#: The lifter's error of an ankle's depth relative to the root (metres): the model card's
#: detector-like S11 mocap figure over all joints (mean |z| 48 mm) as a standard deviation, 1.3x
#: for the ankles, the joints furthest from the root. Across the ray: ``placement.across_ray_sd``.
ANKLE_DEPTH_SD_M: Final[float] = 0.08

NOTE_FEET_HIDDEN: Final[str] = "floor not used: feet not visible (low confidence or at the image border)"
NOTE_NOT_ON_FEET: Final[str] = "floor not used: ankles are not the lowest joints (kneeling, sitting or lying)"
NOTE_NOT_UPRIGHT: Final[str] = "floor not used: body not upright (lying)"
NOTE_NO_FLOOR_RAY: Final[str] = (
    "floor not used: the ankle's ray does not reach the floor in front of the camera "
    "(camera not above the feet, or ray at the horizon)"
)
NOTE_DISAGREE: Final[str] = (
    "floor not used: floor and body-size prior disagree by more than 3 sigma "
    "(jumping, standing on something, or a wrong camera pose)"
)
NOTE_ASSUMED_INTRINSICS: Final[str] = "floor not used: the intrinsics are assumed, not calibrated"
NOTE_DEPTH_MEASURED: Final[str] = "floor not used: placed from the depth image (a measurement)"
#: Reasons in the order they are checked; index + 1 is the code ``place_on_floor`` reports.
_NOTES: Final[tuple[str, ...]] = (
    NOTE_FEET_HIDDEN,
    NOTE_NOT_ON_FEET,
    NOTE_NOT_UPRIGHT,
    NOTE_NO_FLOOR_RAY,
    NOTE_DISAGREE,
)


@dataclass(frozen=True)
class FootPrior:
    """Height of the supporting ankles above the floor when standing, and its spread (metres)."""

    offset_m: float
    sd_m: float

    @classmethod
    def load(cls, path: Path | None = None) -> FootPrior:
        """The shipped prior (``floor_prior.json``) or another file of that format."""
        return _load_prior(path or FOOT_PRIOR_FILE)


@lru_cache(maxsize=4)
def _load_prior(path: Path) -> FootPrior:
    data = json.loads(path.read_text())
    if data.get("version") != FOOT_PRIOR_VERSION:
        raise ValueError(f"{path}: foot prior version {data.get('version')!r}, expected {FOOT_PRIOR_VERSION}")
    prior = FootPrior(float(data["foot_offset_m"]), float(data["foot_offset_sd_m"]))
    if not (0.0 <= prior.offset_m < 0.5 and 0.0 < prior.sd_m < 0.5):
        raise ValueError(f"{path}: implausible foot prior {prior}")
    return prior


@dataclass(frozen=True)
class Floor:
    """The floor seen from the camera: ``up`` (3,) unit vector and the camera's ``height`` above
    it, so that a camera-frame point X is ``up @ X + height`` above the floor."""

    up: np.ndarray
    height: float

    @classmethod
    def from_matrix(cls, floor_from_camera: np.ndarray) -> Floor:
        m = check_floor_from_camera(floor_from_camera)
        return cls(up=m[2, :3].copy(), height=float(m[2, 3]))


def check_floor_from_camera(floor_from_camera: object, *, tolerance: float = 1e-3) -> np.ndarray:
    """The 4x4 ``floor_from_camera`` as float64; ValueError saying what is wrong otherwise (not
    4x4, not finite, last row not (0, 0, 0, 1), rotation not orthonormal or a reflection)."""
    try:
        m = np.asarray(floor_from_camera, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"floor_from_camera is not a numeric matrix ({exc})") from None
    if m.shape != (4, 4):
        raise ValueError(f"floor_from_camera must be 4x4, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("floor_from_camera has non-finite values")
    if not np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), atol=tolerance):
        raise ValueError(f"floor_from_camera's last row must be (0, 0, 0, 1), got {m[3].tolist()}")
    r = m[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=tolerance):
        raise ValueError("floor_from_camera's rotation is not orthonormal (R R^T != I)")
    if np.linalg.det(r) <= 0:
        raise ValueError("floor_from_camera's rotation is a reflection (det R < 0)")
    return m


def floor_from_extrinsics(R: object, T: object) -> np.ndarray:
    """``floor_from_camera`` (4x4) from extrinsics in the Human3.6M ``cameras.json`` convention
    X_cam = R^T (X_world - T), metres, world z up and z = 0 the floor (so X_world = R X_cam + T).
    ValueError when R is not a 3x3 rotation or T not 3 finite numbers."""
    try:
        r = np.asarray(R, dtype=np.float64)
        t = np.asarray(T, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"R and T must be numbers ({exc})") from None
    if r.shape != (3, 3) or t.shape != (3,):
        raise ValueError(f"R must be 3x3 and T 3 numbers, got shapes {r.shape} and {t.shape}")
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return check_floor_from_camera(m)


def support_weights(ankle_heights: np.ndarray, margin: float = SUPPORT_MARGIN_M) -> np.ndarray:
    """(..., 2) -> (..., 2) weights (summing to 1) of the ankles within ``margin`` of the lower one:
    the feet that carry the weight. Training and placement both use it, so the learned offset is
    the height of exactly what the placement measures."""
    h = np.asarray(ankle_heights, dtype=np.float64)
    w = (h <= h.min(axis=-1, keepdims=True) + margin).astype(np.float64)
    return w / w.sum(axis=-1, keepdims=True)


def posture_codes(heights: np.ndarray) -> np.ndarray:
    """(..., 17) H36M-17 joint heights (any common offset) -> (...,) 0 when the pose may stand on
    its ankles, 2 when another joint is clearly lower (kneeling, sitting, lying), 3 when the body
    has no upright extent (lying); codes index ``_NOTES`` from 1."""
    h = np.asarray(heights, dtype=np.float64)
    ankles = h[..., list(H36M_ANKLES)]
    support = (support_weights(ankles) * ankles).sum(axis=-1)
    code = np.zeros(h.shape[:-1], dtype=np.int64)
    code[h.max(axis=-1) - support < MIN_UPRIGHT_EXTENT_M] = 3
    code[support - h.min(axis=-1) > MAX_ANKLE_ABOVE_LOWEST_M] = 2
    return code


@dataclass(frozen=True)
class FloorPlacement:
    """What the floor says about each person of a frame: the fused scale and its relative
    standard deviation (1 and the prior's where not used), and why it was not used ("" if it was)."""

    scale: np.ndarray  # (B,)
    scale_sd: np.ndarray  # (B,) relative
    used: np.ndarray  # (B,) bool
    notes: list[str]


def place_on_floor(
    pose_rel: np.ndarray,
    root: np.ndarray,
    keypoints: np.ndarray,
    camera: CameraModel,
    floor: Floor,
    *,
    min_conf: float,
    prior: FootPrior | None = None,
    body_size_sd: float = BODY_SIZE_SD,
) -> FloorPlacement:
    """Fuse the floor with the size prior for every person.

    Args:
        pose_rel: (B, 17, 3) H36M-17 root-relative joints, camera frame, metres.
        root: (B, 3) the roots ``root_from_reprojection`` found (scale 1 = the size prior).
        keypoints: (B, 17, 3) COCO-17 [u, v, conf] in pixels (ankle visibility, the person's
            height in pixels for the noise model).
        camera: the calibrated camera.
        floor: the floor in the camera frame.
        min_conf: ankles below this confidence count as not visible.
        prior: the foot offset (default: the shipped one).
        body_size_sd: the size prior's spread of body sizes (relative).
    """
    prior = prior or FootPrior.load()
    pose_rel = np.asarray(pose_rel, dtype=np.float64)
    B = len(pose_rel)
    kp = np.asarray(keypoints, dtype=np.float64)
    conf = np.nan_to_num(kp[..., 2], nan=0.0)
    keypoint_var = keypoint_scale_sd(person_height_px(kp[..., :2], conf, min_conf)) ** 2
    prior_var = body_size_sd**2 + keypoint_var
    if B == 0:
        return FloorPlacement(np.ones(0), np.sqrt(prior_var), np.zeros(0, dtype=bool), [])

    joints = pose_rel + np.asarray(root, dtype=np.float64)[:, None, :]
    heights = joints @ floor.up + floor.height  # (B, 17) at the prior's scale
    ankles = joints[:, list(H36M_ANKLES)]  # (B, 2, 3)
    weights = support_weights(heights[:, list(H36M_ANKLES)])
    visible = _visible(kp[:, list(COCO_ANKLES)], camera, min_conf)
    supporting = weights > 0
    code = np.where((supporting & visible).any(axis=1), posture_codes(heights), 1)
    # The visible supporting ankles are the ones measured.
    w = np.where(supporting & visible, weights, 0.0)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    ankle = (w[..., None] * ankles).sum(axis=1)  # (B, 3)
    ankle_below_root = -((w[..., None] * pose_rel[:, list(H36M_ANKLES)]).sum(axis=1) @ floor.up)

    below = -(ankle @ floor.up)  # how far the ankle lies below the camera, at the prior's scale
    distance = np.linalg.norm(ankle, axis=1)
    drop = floor.height - prior.offset_m  # how far the camera is above a standing ankle
    reaches = (below > distance * np.sin(np.radians(MIN_DEPRESSION_DEG))) & (drop > MIN_CAMERA_CLEARANCE_M)
    code = np.where((code == 0) & ~reaches, 4, code)

    safe_below = np.where(reaches, below, 1.0)
    scale_floor = np.where(reaches, drop / safe_below, 1.0)
    cos2 = (ankle @ floor.up / np.maximum(distance, 1e-9)) ** 2  # the ray's alignment with "up"
    height_var = (  # of the ankle's height at the prior's scale: offset spread, depth and image-plane errors
        prior.sd_m**2 * scale_floor**-2
        + ANKLE_DEPTH_SD_M**2 * cos2
        + across_ray_sd(ankle, camera.K[1, 1]) ** 2 * (1.0 - cos2)
    )
    # The keypoint noise moves the prior's root along its ray by a relative e; the family's ankle
    # moves with it only in part (the pose's own ankle-below-root part stays), so the floor's scale
    # carries c * e of it: the two estimates are correlated through the keypoints.
    c = ankle_below_root / safe_below
    floor_var = height_var / safe_below**2 * scale_floor**2 + c**2 * keypoint_var
    cov = c * keypoint_var
    diff_var = np.maximum(floor_var + prior_var - 2.0 * cov, 1e-12)  # of scale_floor - 1
    gap = np.abs(scale_floor - 1.0) / np.sqrt(diff_var)
    code = np.where((code == 0) & (gap > MAX_DISAGREEMENT_SIGMA), 5, code)

    # The best linear unbiased combination of two correlated estimates of the same scale, kept
    # between the two (a weight outside [0, 1] would trust the noise model beyond its precision).
    used = code == 0
    a = np.clip((floor_var - cov) / diff_var, 0.0, 1.0)  # the prior's weight
    fused = scale_floor + a * (1.0 - scale_floor)
    fused_var = (1.0 - a) ** 2 * floor_var + a**2 * prior_var + 2.0 * a * (1.0 - a) * cov
    return FloorPlacement(
        scale=np.where(used, fused, 1.0),
        scale_sd=np.sqrt(np.where(used, fused_var, prior_var)),
        used=used,
        notes=["" if c == 0 else _NOTES[c - 1] for c in code],
    )


def _visible(ankles_kp: np.ndarray, camera: CameraModel, min_conf: float) -> np.ndarray:
    """(B, 2) whether each ankle keypoint (B, 2, 3) is confident and inside the image by a margin."""
    uv, conf = ankles_kp[..., :2], np.nan_to_num(ankles_kp[..., 2], nan=0.0)
    margin = BORDER_FRACTION * max(camera.width, camera.height)
    with np.errstate(invalid="ignore"):
        inside = (
            (uv[..., 0] >= margin)
            & (uv[..., 0] <= camera.width - 1 - margin)
            & (uv[..., 1] >= margin)
            & (uv[..., 1] <= camera.height - 1 - margin)
        )
    return inside & (conf >= min_conf)
