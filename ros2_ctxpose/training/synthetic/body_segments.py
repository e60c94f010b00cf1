"""The 16 rigid body segments the pose fit rotates: which Anny bones each moves, and the H36M
joints its rotation is read from (an axis, a lateral axis, a hinge's lower limb).

Shared by the pose fit (``pose_fit``) and the renderer's scenes (``bone_segments``), which pose
Anny with one rotation per segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ros2_ctxpose.core.skeleton import H36M17

from .body import BodyModel

J = {name: i for i, name in enumerate(H36M17)}


@dataclass(frozen=True)
class Segment:
    """A rigid group of Anny bones and how its rotation is found from the mocap.

    kind: "frame" (axis + lateral axis), "swing" (minimal rotation from the parent onto the axis)
    or "hinge" (swing, then twist so the next segment bends about ``flex``'s hinge).
    """

    name: str
    bones: tuple[str, ...]
    kind: str
    axis: tuple[int, int]
    parent: str | None = None
    lateral: tuple[int, int] | None = None
    lower: tuple[int, int] | None = None
    #: Rest-frame direction the lower limb moves in when the joint flexes (Anny faces -y).
    flex: tuple[float, float, float] | None = None


def _side(side: str) -> list[Segment]:
    name = "left" if side == "L" else "right"
    return [
        Segment(
            f"clavicle.{side}",
            (f"clavicle.{side}", f"shoulder01.{side}"),
            "swing",
            (J["thorax"], J[f"{name}_shoulder"]),
            parent="chest",
        ),
        Segment(
            f"upperarm.{side}",
            (f"upperarm01.{side}", f"upperarm02.{side}"),
            "hinge",
            (J[f"{name}_shoulder"], J[f"{name}_elbow"]),
            parent=f"clavicle.{side}",
            lower=(J[f"{name}_elbow"], J[f"{name}_wrist"]),
            flex=(0.0, -1.0, 0.0),
        ),
        Segment(
            f"forearm.{side}",
            (f"lowerarm01.{side}", f"lowerarm02.{side}"),
            "swing",
            (J[f"{name}_elbow"], J[f"{name}_wrist"]),
            parent=f"upperarm.{side}",
        ),
        Segment(
            f"thigh.{side}",
            (f"upperleg01.{side}", f"upperleg02.{side}"),
            "hinge",
            (J[f"{name}_hip"], J[f"{name}_knee"]),
            parent="pelvis",
            lower=(J[f"{name}_knee"], J[f"{name}_ankle"]),
            flex=(0.0, 1.0, 0.0),
        ),
        Segment(
            f"shin.{side}",
            (f"lowerleg01.{side}", f"lowerleg02.{side}"),
            "swing",
            (J[f"{name}_knee"], J[f"{name}_ankle"]),
            parent=f"thigh.{side}",
        ),
    ]


_SHOULDERS = (J["right_shoulder"], J["left_shoulder"])
#: Parents before children. Bones in no segment (hands, feet, toes, eyes) move with their parent.
SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "pelvis",
        ("root", "pelvis.L", "pelvis.R", "spine05", "spine04", "spine03"),
        "frame",
        (J["pelvis"], J["spine"]),
        lateral=(J["right_hip"], J["left_hip"]),
    ),
    Segment("chest", ("spine02", "spine01"), "frame", (J["spine"], J["thorax"]), lateral=_SHOULDERS),
    Segment("neck", ("neck01", "neck02", "neck03"), "frame", (J["thorax"], J["neck_nose"]), lateral=_SHOULDERS),
    Segment("head", ("head",), "frame", (J["neck_nose"], J["head_top"]), lateral=_SHOULDERS),
    *_side("L"),
    *_side("R"),
)
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)

#: Joint weights of the pose fit. The trunk's own points (spine, thorax, neck_nose, head_top) are
#: where H36M's definitions and Anny's anatomy differ most, so they steer the fit less than the
#: limbs; the mapping then learns where they sit on the body.
FIT_WEIGHTS = torch.tensor([1.0 if n not in ("spine", "thorax", "neck_nose", "head_top") else 0.3 for n in H36M17])


def bone_segments(body: BodyModel) -> np.ndarray:
    """``(J_bones,)`` index into :data:`SEGMENTS` of the segment that moves each Anny bone."""
    labels, parents = body.bone_labels, body.bone_parents
    owner = {bone: i for i, seg in enumerate(SEGMENTS) for bone in seg.bones}
    out = np.full(len(labels), -1)
    for b, label in enumerate(labels):  # Anny lists parents before children
        out[b] = owner.get(label, out[parents[b]] if parents[b] >= 0 else -1)
    if (out < 0).any():
        raise ValueError(f"bones outside every segment: {[labels[i] for i in np.flatnonzero(out < 0)]}")
    return out
