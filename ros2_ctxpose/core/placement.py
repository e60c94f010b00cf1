"""Absolute placement of lifted poses: the root translation, from the intrinsics or a depth image.

The lifter answers root-relative joints in metres; where the person stands is a separate, small
problem with a closed form. With calibrated intrinsics, the translation ``t`` that makes the pose
reproject onto the detector's keypoints is linear in ``t`` once the projection is multiplied out
(``x_j (Z_j + t_z) = X_j + t_x``), so it is solved as a weighted least-squares problem over the
joints COCO-17 and H36M-17 share. Confidence weights let occluded joints count less; an iteratively
reweighted loop with Cauchy weights (Huber's bounded influence proved too weak: one far-off wrist
still moved a distant person by 10 %) stops one wrong keypoint (a swapped wrist, a limb on the next person) from
dragging the whole person; dividing each row by the joint's current depth makes the residual the
true reprojection error rather than one that grows with distance. The absolute depth still carries
the lifter's assumed body size (a 10 % too large skeleton lands 10 % too far).

With an aligned depth image, the median of (measured depth - joint's relative z) over visible
joints gives ``t_z`` directly, and the reprojection equations then give ``t_x, t_y``. Depth sees the
body's surface, not the joint centres, so this root sits a few centimetres closer than the true
one; no body-radius correction is applied because it depends on the joint and the clothing.

Every root also gets a covariance (``root_covariance``), long along its viewing ray: across the
ray the keypoints pin the root down to centimetres, along it the distance is only as good as the
body-size prior (``size_prior_sd``), the depth image, or the floor (``core/floor.py``). Fusing
several views weights them by it.

Everything is batched over people: arrays are ``(B, 17, ...)`` and one ``np.linalg.solve`` call
serves all of them.
"""

from __future__ import annotations

from typing import Final, cast

import numpy as np

from .skeleton import COCO_H36M_SHARED

_COCO_IDX: Final[np.ndarray] = np.array([c for c, _ in COCO_H36M_SHARED])
_H36M_IDX: Final[np.ndarray] = np.array([h for _, h in COCO_H36M_SHARED])

#: Every joint must end up at least this far in front of the camera (metres).
_MIN_JOINT_DEPTH: Final[float] = 0.1

# The noise model of a placement (standard deviations). Body size: adult heights spread ~4 % and
# the lifter's skeleton has one average size (the model card: S11 is 3.4 % larger than the
# training mean), so 6 %.
BODY_SIZE_SD: Final[float] = 0.06
#: Keypoint noise of the detector: a constant part (stride-4 heat maps, pixel rounding) and a
#: part proportional to the person's height in pixels (training/synthetic_2d.py: YOLO11n misses by
#: 5-15 px on a 276 px tall person, 2-5 %).
KEYPOINT_SD_PX: Final[float] = 3.0
KEYPOINT_SD_FRACTION: Final[float] = 0.02
#: The lifter's error of a joint relative to the root in the image plane (metres): the model
#: card's detector-like S11 mocap figure (mean 36 mm) as a standard deviation.
LIFTER_IMAGE_SD_M: Final[float] = 0.04
#: A depth image's root: joints sit behind the surface it sees (a few cm) plus sensor noise
#: growing with distance (about 1 % for structured light and stereo at a few metres).
DEPTH_ROOT_SD_M: Final[float] = 0.05
DEPTH_ROOT_SD_FRACTION: Final[float] = 0.01


def _shared(
    pose_rel: np.ndarray, kp_norm: np.ndarray, conf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The shared joints: relative 3D (B, S, 3), observed normalised 2D (B, S, 2), conf (B, S)
    and which observations are finite (B, S); non-finite ones are zeroed with confidence 0."""
    pose = np.asarray(pose_rel, dtype=np.float64)[:, _H36M_IDX]
    xy = np.asarray(kp_norm, dtype=np.float64)[:, _COCO_IDX]
    # xy is (B, S, 2), so the reduction is a (B, S) array; numpy's stubs also allow a scalar.
    finite = cast(np.ndarray, np.isfinite(xy).all(axis=-1))
    c = np.where(finite, np.nan_to_num(np.asarray(conf, dtype=np.float64)[:, _COCO_IDX], nan=0.0), 0.0)
    return pose, np.where(finite[..., None], xy, 0.0), np.clip(c, 0.0, 1.0), finite


def _visibility_weights(conf: np.ndarray, finite: np.ndarray, min_conf: float, min_joints: int) -> np.ndarray:
    """Confidence weights of joints seen above ``min_conf``.

    People with fewer than ``min_joints`` such joints fall back to all (finite) shared joints with
    equal weight: the detector still places every keypoint at its best guess, and using all twelve
    keeps the problem well posed where a handful of confident ones would leave the depth undetermined.
    """
    w = np.where(conf >= min_conf, conf, 0.0)
    too_few = (w > 0).sum(axis=1) < min_joints
    w[too_few] = finite[too_few]
    return w


def _xy_given_z(pose: np.ndarray, xy: np.ndarray, w: np.ndarray, tz: np.ndarray) -> np.ndarray:
    """Weighted least-squares ``t_x, t_y`` for a known ``t_z`` (closed form: a weighted mean)."""
    depth = pose[..., 2] + tz[:, None]
    wd = w / np.maximum(depth, _MIN_JOINT_DEPTH) ** 2
    target = xy * depth[..., None] - pose[..., :2]
    return (wd[..., None] * target).sum(axis=1) / np.maximum(wd.sum(axis=1), 1e-12)[:, None]


def _solve_weighted(pose: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One weighted linear least-squares solve of ``x_j (Z_j + t_z) = X_j + t_x`` (and for y)."""
    B, S = w.shape
    A: np.ndarray = np.zeros((B, S, 2, 3))  # reshaped to (B, 2S, 3) below
    A[..., 0, 0] = 1.0
    A[..., 1, 1] = 1.0
    A[..., :, 2] = -xy
    b = xy * pose[..., 2:3] - pose[..., :2]
    A = A.reshape(B, 2 * S, 3)
    b = b.reshape(B, 2 * S)
    wr = np.repeat(w, 2, axis=1)
    AtW = A.transpose(0, 2, 1) * wr[:, None, :]
    M = AtW @ A + 1e-12 * np.eye(3)
    return np.linalg.solve(M, (AtW @ b[..., None]))[..., 0]


def root_from_reprojection(
    pose_rel: np.ndarray,
    kp_norm: np.ndarray,
    conf: np.ndarray,
    *,
    min_conf: float = 0.3,
    min_joints: int = 4,
    iterations: int = 8,
    cauchy_fraction: float = 0.05,
) -> np.ndarray:
    """Root translations (B, 3) that best reproject the poses onto the 2D keypoints.

    Args:
        pose_rel: (B, 17, 3) H36M-17 root-relative joints, camera frame, metres.
        kp_norm: (B, 17, 2) COCO-17 keypoints as undistorted normalised coordinates.
        conf: (B, 17) COCO-17 keypoint confidences.
        min_conf: keypoints below this confidence do not count (see ``_visibility_weights``).
        min_joints: fewer confident shared joints than this -> all shared joints, equal weights.
        iterations: reweighting rounds (Cauchy weights, per-joint depth normalisation).
        cauchy_fraction: Cauchy scale as a fraction of the person's 2D extent, so that the
            robustness does not depend on how far away the person is.
    """
    pose_rel = np.asarray(pose_rel, dtype=np.float64)
    if pose_rel.shape[0] == 0:
        return np.zeros((0, 3))
    pose, xy, c, finite = _shared(pose_rel, kp_norm, conf)
    base = _visibility_weights(c, finite, min_conf, min_joints)
    seen = base > 0
    lo = np.where(seen[..., None], xy, np.inf).min(axis=1)
    hi = np.where(seen[..., None], xy, -np.inf).max(axis=1)
    delta = cauchy_fraction * np.maximum(np.linalg.norm(hi - lo, axis=1), 1e-6)

    t = _solve_weighted(pose, xy, base)
    for _ in range(iterations):
        depth = np.maximum(pose[..., 2] + t[:, 2:3], _MIN_JOINT_DEPTH)
        residual = np.linalg.norm((pose[..., :2] + t[:, None, :2]) / depth[..., None] - xy, axis=-1)
        robust = 1.0 / (1.0 + (residual / delta[:, None]) ** 2)
        t = _solve_weighted(pose, xy, base * robust / depth**2)

    # A degenerate fit can put the person behind the camera; push it just in front instead.
    min_tz = _MIN_JOINT_DEPTH - pose_rel[..., 2].min(axis=1)
    behind = ~np.isfinite(t).all(axis=1) | (t[:, 2] < min_tz)
    if behind.any():
        t[behind, 2] = min_tz[behind]
        t[behind, :2] = _xy_given_z(pose[behind], xy[behind], base[behind], t[behind, 2])
    return t


def _nanmedian_last(a: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN; NaN (and no warning) where all are NaN."""
    out = np.full(a.shape[:-1], np.nan)
    has = np.isfinite(a).any(axis=-1)
    out[has] = np.nanmedian(a[has], axis=-1)
    return out


def _sample_depth(depth_m: np.ndarray, uv: np.ndarray, radius: int) -> np.ndarray:
    """Median valid depth (metres) in a (2r+1)^2 window around each pixel (..., 2); NaN if none.

    A window rather than one pixel because depth images have holes and flying pixels at edges,
    which is exactly where limbs are.
    """
    h, w = depth_m.shape
    uv = np.where(np.isfinite(uv), uv, -1e9)  # far outside the image: no depth
    offsets = np.arange(-radius, radius + 1)
    u = np.rint(uv[..., 0]).astype(np.int64)[..., None, None] + offsets[None, :]
    v = np.rint(uv[..., 1]).astype(np.int64)[..., None, None] + offsets[:, None]
    u, v = np.broadcast_arrays(u, v)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    vals = depth_m[np.clip(v, 0, h - 1), np.clip(u, 0, w - 1)]
    vals = np.where(inside & np.isfinite(vals) & (vals > 0), vals, np.nan)
    return _nanmedian_last(vals.reshape(vals.shape[:-2] + (-1,)))


def depth_to_metres(depth: np.ndarray, depth_scale: float) -> np.ndarray:
    """Raw depth image -> float metres (``raw * depth_scale``): 16UC1 mm uses 0.001, 32FC1 m 1.0."""
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth image must be single-channel (H, W), got shape {depth.shape}")
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise ValueError(f"depth_scale must be finite and > 0, got {depth_scale}")
    return depth.astype(np.float64) * depth_scale


def root_from_depth(
    pose_rel: np.ndarray,
    kp_px: np.ndarray,
    kp_norm: np.ndarray,
    conf: np.ndarray,
    depth_m: np.ndarray,
    *,
    min_conf: float = 0.3,
    min_valid: int = 3,
    window_radius: int = 2,
    inlier_band_m: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Root translations from an aligned depth image, and which people had enough valid depth.

    Args:
        pose_rel: (B, 17, 3) H36M-17 root-relative joints, metres.
        kp_px: (B, 17, 2) COCO-17 keypoints in the depth image's pixels.
        kp_norm: (B, 17, 2) the same keypoints as undistorted normalised coordinates.
        conf: (B, 17) COCO-17 keypoint confidences.
        depth_m: (H, W) depth in metres (see ``depth_to_metres``); 0, NaN and inf are holes.
        min_valid: people with fewer confident joints on valid depth get ``ok = False`` (the caller
            falls back to ``root_from_reprojection`` for them).
        inlier_band_m: joints whose depth-implied root is further than this from the median (the
            wall behind a thin arm) are dropped before taking the median again.

    Returns:
        roots (B, 3) (NaN where not ok) and ok (B,) bool.
    """
    pose_rel = np.asarray(pose_rel, dtype=np.float64)
    B = pose_rel.shape[0]
    if B == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    pose, xy, c, _ = _shared(pose_rel, kp_norm, conf)
    uv = np.asarray(kp_px, dtype=np.float64)[:, _COCO_IDX]
    measured = _sample_depth(depth_m, uv, window_radius)
    tz_each = np.where(c >= min_conf, measured - pose[..., 2], np.nan)

    ok = np.isfinite(tz_each).sum(axis=1) >= min_valid
    roots = np.full((B, 3), np.nan)
    if not ok.any():
        return roots, ok
    tz_ok = tz_each[ok]
    med = _nanmedian_last(tz_ok)
    inliers = np.where(np.abs(tz_ok - med[:, None]) <= inlier_band_m, tz_ok, np.nan)
    tz = _nanmedian_last(inliers)
    # An even count split far apart around its median leaves no inlier: keep the plain median.
    tz = np.where(np.isfinite(tz), tz, med)
    w = np.where(np.isfinite(inliers), c[ok], 0.0)
    no_inlier = (w == 0).all(axis=1)
    w[no_inlier] = c[ok][no_inlier]
    roots[ok, 2] = tz
    roots[ok, :2] = _xy_given_z(pose[ok], xy[ok], w, tz)
    return roots, ok


def keypoint_sd_px(height_px: np.ndarray) -> np.ndarray:
    """Standard deviation of one keypoint (pixels) of people ``height_px`` tall in the image."""
    return KEYPOINT_SD_PX + KEYPOINT_SD_FRACTION * np.asarray(height_px, dtype=np.float64)


def person_height_px(keypoints_px: np.ndarray, conf: np.ndarray, min_conf: float) -> np.ndarray:
    """(B,) vertical extent (pixels, at least 1) of each person's keypoints (B, 17, 2) seen with
    ``min_conf``, or of all finite ones where fewer than two are."""
    v = np.asarray(keypoints_px, dtype=np.float64)[..., 1]
    finite = np.isfinite(v)
    seen = (np.nan_to_num(np.asarray(conf, dtype=np.float64), nan=0.0) >= min_conf) & finite
    few = seen.sum(axis=1) < 2
    seen[few] = finite[few]
    hi = np.where(seen, v, -np.inf).max(axis=1, initial=-np.inf)
    lo = np.where(seen, v, np.inf).min(axis=1, initial=np.inf)
    extent = hi - lo
    return np.where(np.isfinite(extent), np.maximum(extent, 1.0), 1.0)


def keypoint_scale_sd(height_px: np.ndarray) -> np.ndarray:
    """(B,) relative standard deviation the keypoint noise gives the distance of people
    ``height_px`` tall in the image (their apparent size is only measured this well)."""
    height_px = np.asarray(height_px, dtype=np.float64)
    return keypoint_sd_px(height_px) / height_px


def size_prior_sd(height_px: np.ndarray, body_size_sd: float = BODY_SIZE_SD) -> np.ndarray:
    """(B,) relative standard deviation of the distance ``root_from_reprojection`` gives: the
    spread of body sizes and the keypoint noise relative to the person's height in pixels."""
    return np.hypot(body_size_sd, keypoint_scale_sd(height_px))


def across_ray_sd(roots: np.ndarray, focal_px: float) -> np.ndarray:
    """(B,) standard deviation (metres) of roots (B, 3) across their viewing ray: the lifter's
    image-plane error and the keypoints' constant noise at that distance."""
    distance = np.linalg.norm(np.asarray(roots, dtype=np.float64), axis=-1)
    return np.sqrt(LIFTER_IMAGE_SD_M**2 + (distance * KEYPOINT_SD_PX / focal_px) ** 2)


def depth_root_sd(roots: np.ndarray) -> np.ndarray:
    """(B,) standard deviation (metres) along the ray of roots placed from a depth image."""
    distance = np.linalg.norm(np.asarray(roots, dtype=np.float64), axis=-1)
    return np.hypot(DEPTH_ROOT_SD_M, DEPTH_ROOT_SD_FRACTION * distance)


def root_covariance(roots: np.ndarray, along_sd: np.ndarray, across_sd: np.ndarray) -> np.ndarray:
    """(B, 3, 3) covariances (m^2, camera frame) of roots (B, 3): ``along_sd`` along the viewing
    ray through each root, ``across_sd`` in the two directions across it (both (B,) metres)."""
    roots = np.asarray(roots, dtype=np.float64)
    u = roots / np.maximum(np.linalg.norm(roots, axis=-1, keepdims=True), 1e-12)
    along = np.einsum("bi,bj->bij", u, u)
    across = np.eye(3) - along
    a2 = np.asarray(along_sd, dtype=np.float64)[:, None, None] ** 2
    c2 = np.asarray(across_sd, dtype=np.float64)[:, None, None] ** 2
    return a2 * along + c2 * across
