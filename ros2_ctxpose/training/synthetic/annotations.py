"""A multi-view rendered set as an ``annotations.json`` that ``ctxpose eval`` and multi-view
fusion read: the format of ``../shared/data/images/annotations.json`` plus each view's pose.

One record per view image and detectable person (``image_people``'s definition: enough of them
visible and in the image): ``file`` (relative to the set's folder), ``dataset``, ``K``,
``dist_k``/``dist_p``, ``width``, ``height``, ``joint_names`` ``"h36m17"``, ``joints_3d_cam_m``,
``joints_2d_px``, the camera pose ``R``, ``T`` (X_cam = R^T (X_world - T), world z up, floor at
z = 0, metres: the convention of Human3.6M's ``cameras.json``), ``instant`` (the views of one
instant share it), ``view``, ``person`` (the same person in every view of an instant) and
``visible_fraction``. A person a view does not show well has no record for that view.
"""

from __future__ import annotations

import json
from pathlib import Path

from .shards import list_shards

DATASET = "ctxpose_synth_multiview"


def annotation_records(root: Path) -> list[dict]:
    """The records of every complete shard under ``root`` (see the module's docstring)."""
    records = []
    for shard in list_shards(root):
        for image in json.loads((shard / "images" / "index.json").read_text()):
            k1, k2, p1, p2, k3 = image["dist"]
            for person, truth in enumerate(image["people"]):
                if not truth["detectable"]:
                    continue
                records.append(
                    {
                        "file": f"{shard.name}/images/{image['file']}",
                        "dataset": DATASET,
                        "K": image["K"],
                        "dist_k": [k1, k2, k3],
                        "dist_p": [p1, p2],
                        "width": image["width"],
                        "height": image["height"],
                        "joint_names": "h36m17",
                        "joints_3d_cam_m": truth["joints_3d_cam_m"],
                        "joints_2d_px": truth["joints_2d_px"],
                        "R": image["R"],
                        "T": image["T"],
                        "instant": image["instant"],
                        "view": image["view"],
                        "person": person,
                        "camera": image["camera"],
                        "visible_fraction": truth["visible_fraction"],
                    }
                )
    return records


def export_annotations(root: Path) -> Path:
    """Write ``<root>/annotations.json`` from the shards there (rewritten as shards are added)."""
    from ros2_ctxpose.core.joint_sets import JOINT_SETS

    path = Path(root) / "annotations.json"
    data = {"joint_sets": {"h36m17": list(JOINT_SETS["h36m17"].joints)}, "images": annotation_records(root)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return path
