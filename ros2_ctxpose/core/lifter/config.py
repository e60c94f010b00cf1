"""``LifterConfig``: everything needed to rebuild a ``ContextLifter``, without torch.

Kept apart from the model so that the training options (``training/options.py``, read by
``ctxpose --help``) can nest it without importing torch; ``core.lifter.model`` re-exports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ros2_ctxpose.core.skeleton import COCO17, H36M17


@dataclass
class LifterConfig:
    """Everything needed to rebuild a ContextLifter; stored beside the weights."""

    dim: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    num_joints_in: int = len(COCO17)
    num_joints_out: int = len(H36M17)
    #: COCO eyes and ears: masked (see module docstring).
    masked_input_joints: tuple[int, ...] = (1, 2, 3, 4)
    #: Normalised points further than this many RMS radii from the centre are clamped (outliers).
    max_radius: float = 6.0
    #: Detector feature channels per level (YOLO11n strides 4, 8, 16, 32).
    context_channels: tuple[int, ...] = (64, 128, 128, 256)
    context_points: int = 4
    #: Largest sampling offset, in units of the person's RMS radius in grid coordinates.
    context_offset_range: float = 0.5
    #: Side of each person's feature crop per level (``core.detector.features.crop_people``), and
    #: the crop's side as a multiple of the person box's longer side.
    context_crop_sizes: tuple[int, ...] = (16, 16, 8, 4)
    context_crop_margin: float = 1.25
    #: Whether the context branch was ever trained on images (False for mocap-only weights).
    context_trained: bool = False
    #: The image context decides only the joints' depths (the depth ambiguity it exists for); the
    #: image-plane coordinates stay the geometry path's, which the 2D keypoints pin down. Rendered
    #: training people moved the image-plane error on real frames when context could change it.
    context_depth_only: bool = False
    #: In eval mode, average the geometry-only prediction with that of the mirrored input (x
    #: negated, left/right swapped), which is as valid a view of the same person; this cancels
    #: any left/right asymmetry the model learned, for the price of a second batch row per person.
    flip_test: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["masked_input_joints"] = list(self.masked_input_joints)
        d["context_channels"] = list(self.context_channels)
        d["context_crop_sizes"] = list(self.context_crop_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LifterConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown LifterConfig keys {sorted(unknown)}")
        d = dict(d)
        for key in ("masked_input_joints", "context_channels", "context_crop_sizes"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
