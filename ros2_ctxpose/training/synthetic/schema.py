"""What one stored rendered person is: the single definition of a shard's fields.

The engine writes these fields (``image_people``), ``shards`` stores one ``.npy`` per field and
``training.people`` reads the lifter's subset (:data:`LIFTER_FIELDS`); all three name them from
here, so a field renamed or added in one place cannot silently disagree with the others.
Plain Python (no numpy, torch or the ``[synth]`` extra), so readers import it for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Field:
    dtype: str  # numpy dtype name
    shape: tuple[int, ...] | None  # per person; None: set by the crop geometry (C, S, S)
    meaning: str


#: Feature-map levels of ``crop_people`` (the detector's P2-P5), one crop field each.
CROP_LEVELS: Final = 4


def crop_field(level: int) -> str:
    """The field holding level ``level``'s feature crops."""
    return f"crop_l{level}"


CROP_FIELDS: Final = tuple(crop_field(level) for level in range(CROP_LEVELS))

FIELDS: Final[dict[str, Field]] = {
    "keypoints": Field("float32", (17, 3), "detector COCO-17 [u, v, conf], pixels"),
    "keypoints_norm": Field("float32", (17, 2), "the same, undistorted normalised (x/z, y/z)"),
    "box": Field("float32", (4,), "detector box x0 y0 x1 y1, pixels"),
    "score": Field("float32", (), "detector person score"),
    **{name: Field("float16", None, "``crop_people`` feature crops of this level (C, S, S)") for name in CROP_FIELDS},
    "joints_grid": Field("float32", (17, 2), "keypoints in the crops' grid_sample coords"),
    "target_cam": Field("float32", (17, 3), "H36M-17 of the rendered body, camera frame, m"),
    "target_px": Field("float32", (17, 2), "target_cam projected (distortion included)"),
    "coco_px": Field("float32", (17, 2), "the body's own COCO-17 points projected"),
    "K": Field("float32", (3, 3), "intrinsics"),
    "dist": Field("float32", (5,), "OpenCV k1 k2 p1 p2 k3"),
    "image_size": Field("int32", (2,), "width, height"),
    "image_id": Field("int64", (), "shard index * 1e6 + image in shard"),
    "camera": Field("int16", (), 'index into meta["cameras"] ("virtual", H36M)'),
    "mocap_sequence": Field("int16", (), 'index into meta["sequences"] ("S1/Walking 1")'),
    "mocap_frame": Field("int32", (), "row of that sequence in poses_world17_mm.npz"),
    "phenotype": Field("float32", (6,), 'Anny phenotype (meta["phenotype_labels"])'),
    "mapping_residual_mm": Field("float32", (17,), "fit residual of this mocap frame (retarget)"),
    "oks": Field("float32", (), "match quality, detection vs the body's COCO"),
    "visible_fraction": Field("float32", (), "visible silhouette / silhouette in the image"),
    "truncation": Field("float32", (), "share of the body's vertices outside the image"),
    "joints_in_image": Field("bool", (17,), "target joint projects into the image"),
    "joints_occluded": Field("bool", (17,), "another person or an object covers the joint"),
    "instant": Field("int64", (), "the scene: every view of one instant has its image_id of view 0"),
    "view": Field("int16", (), "which of the instant's cameras (0 when single-view)"),
    "camera_R": Field("float32", (3, 3), "camera pose: X_cam = R^T (X_world - T), world z up"),
    "camera_T": Field("float32", (3,), "camera centre in the world (floor z = 0), m"),
}

#: Fields a ``training.people.PeopleSet`` is made of.
LIFTER_FIELDS: Final = ("keypoints_norm", "keypoints", "joints_grid", "target_cam", *CROP_FIELDS)


def check_record(record: dict[str, object]) -> None:
    """Refuse a stored person whose fields are not exactly :data:`FIELDS` (a writer that drifted
    from the schema fails when it writes, not when a trainer reads months later)."""
    missing, extra = set(FIELDS) - set(record), set(record) - set(FIELDS)
    if missing or extra:
        raise ValueError(
            f"stored person does not match the shard schema: missing {sorted(missing)}, extra {sorted(extra)}"
        )
