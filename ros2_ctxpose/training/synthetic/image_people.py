"""One rendered image, as the detector sees it: scene -> render -> detector -> stored people.

The scene (``scene``) is rendered, composited on its photograph and passed through camera
effects (``render``), then the project's detector runs on the result. Every detection is matched
to the rendered people by OKS between its keypoints and the body's own projected COCO-17 points
(Hungarian assignment); a match keeps the detection, its feature crops (``crop_people``, exactly
as the lifter computes them at inference) and the rendered body's H36M-17 joints as the target,
as one record of ``schema.FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .schema import crop_field

if TYPE_CHECKING:
    from ros2_ctxpose.core.detector import Detections

    from .body import BodyModel
    from .render import RenderResult
    from .scene import Scene
    from .worker import Worker

#: A detection must match a rendered body at least this well to be stored as that person: OKS
#: of its keypoints (confidence >= 0.3) to the body's projected COCO-17 points in the image, with
#: the body's silhouette box as the scale (``tracking.keypoint_similarity``). Enough to rule out a
#: neighbour, low enough to keep the poor detections a lifter must cope with; the report also
#: gives the rate at OKS >= 0.5.
MIN_OKS = 0.2
#: A rendered person counts towards the detection rate when this much of them is visible and
#: this many target joints fall inside the image; others are too hidden to expect a detection.
DETECTABLE_VISIBLE = 0.3
DETECTABLE_JOINTS = 8


def _inside(px: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    return (z > 0.05) & (px[..., 0] >= 0) & (px[..., 0] <= width - 1) & (px[..., 1] >= 0) & (px[..., 1] <= height - 1)


def person_views(scene: Scene, result: RenderResult, body: BodyModel) -> list[dict]:
    """Per rendered person: the targets in the camera and image, which joints are in the image
    or covered by someone or something else, the silhouette box, visibility and truncation."""
    cam, W, H = scene.camera, scene.camera.width, scene.camera.height
    sampled = body.render_topology.vertex_ids[::8]
    views = []
    for k, person in enumerate(scene.people):
        target_cam, coco_cam = scene.to_camera(person.joints_world), scene.to_camera(person.coco_world)
        target_px, coco_px = cam.project(target_cam), cam.project(coco_cam)
        verts_cam = scene.to_camera(person.vertices[sampled])
        mask = result.silhouettes[k]
        area = int(mask.sum())
        ys, xs = np.nonzero(mask)
        in_image = _inside(target_px, target_cam[:, 2], W, H)
        pix = np.clip(np.round(target_px).astype(int), 0, [W - 1, H - 1])
        views.append(
            {
                "target_cam": target_cam,
                "target_px": target_px,
                "coco_px": coco_px,
                "coco_in": _inside(coco_px, coco_cam[:, 2], W, H),
                "in_image": in_image,
                "occluded": in_image & (result.labels[pix[:, 1], pix[:, 0]] != k) & mask[pix[:, 1], pix[:, 0]],
                "box": np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float) if area else np.zeros(4),
                "visible_fraction": int((result.labels == k).sum()) / area if area else 0.0,
                "truncation": float(1.0 - _inside(cam.project(verts_cam), verts_cam[:, 2], W, H).mean()),
            }
        )
    return views


def match_detections(det: Detections, views: list[dict]) -> list[tuple[int, int, float]]:
    """``(detection, person, OKS)`` pairs: Hungarian assignment on OKS, pairs below
    :data:`MIN_OKS` dropped."""
    from scipy.optimize import linear_sum_assignment

    from ros2_ctxpose.core.tracking import keypoint_similarity

    if not len(det) or not views:
        return []
    bodies = np.concatenate(
        [np.stack([v["coco_px"] for v in views]), np.stack([v["coco_in"] for v in views])[..., None].astype(float)], -1
    )
    oks = keypoint_similarity(det.keypoints, bodies, np.stack([v["box"] for v in views]))
    rows, cols = linear_sum_assignment(-oks)
    return [(int(d), int(p), float(oks[d, p])) for d, p in zip(rows, cols, strict=True) if oks[d, p] >= MIN_OKS]


@dataclass
class ImagePeople:
    people: list[dict]  # stored people, records of ``schema.FIELDS``
    counts: dict[str, int]  # rendered, detectable, detections, matched, ...
    image: np.ndarray  # what the detector saw (BGR)
    truth: dict  # the camera and every rendered person's joints, detected or not (JSON-ready)


def observe(
    worker: Worker, scene: Scene, rng: np.random.Generator, image_id: int, instant: int, view: int = 0
) -> ImagePeople:
    """Render ``scene`` from its camera, detect, match (``rng`` draws the camera effects).
    ``instant`` and ``view`` say which scene and which of its cameras this image is."""
    from .render import camera_effects, composite
    from .scene import render_job
    from .shadows import cast_shadows, contact_shadows

    result = worker.renderer.render(render_job(scene, worker.assets.body))
    image = composite(result.rgb[..., ::-1], result.alpha, scene.background)
    topology = worker.assets.body.render_topology
    image = cast_shadows(image, scene, result.labels, topology.faces, topology.vertex_ids)
    image = camera_effects(contact_shadows(image, scene, result.labels, rng), rng)
    det = worker.detector.detect(image)
    info = person_views(scene, result, worker.assets.body)
    detectable = [
        i["visible_fraction"] >= DETECTABLE_VISIBLE and i["in_image"].sum() >= DETECTABLE_JOINTS for i in info
    ]
    matches = match_detections(det, info)
    counts = {
        "images": 1,
        "rendered": len(info),
        "detectable": int(sum(detectable)),
        "detections": len(det),
        "matched": len(matches),
        "matched_detectable": sum(detectable[p] for _, p, _ in matches),
        "matched_detectable_oks50": sum(detectable[p] and o >= 0.5 for _, p, o in matches),
        "unmatched_detections": len(det) - len(matches),
    }
    counts = {key: int(value) for key, value in counts.items()}
    truth = image_truth(scene, info, detectable)
    if not matches:
        return ImagePeople([], counts, image, truth)
    crops, joints_grid = stored_crops(
        det, [d for d, _, _ in matches], worker.settings.crop_sizes, worker.settings.crop_margin
    )
    lib = worker.assets.library
    cam, (W, H) = scene.camera, (scene.camera.width, scene.camera.height)
    camera_index = worker.camera_names.index(scene.camera_name)
    people = []
    for n, (d, p, oks_value) in enumerate(matches):
        person, i = scene.people[p], info[p]
        record = {
            "keypoints": det.keypoints[d],
            "keypoints_norm": cam.normalize(det.keypoints[d, :, :2]),
            "box": det.boxes_xyxy[d],
            "score": det.scores[d],
            **{crop_field(level): c[n] for level, c in enumerate(crops)},
            "joints_grid": joints_grid[n],
            "target_cam": i["target_cam"],
            "target_px": i["target_px"],
            "coco_px": i["coco_px"],
            "K": cam.K,
            "dist": cam.dist,
            "image_size": (W, H),
            "image_id": image_id,
            "camera": camera_index,
            "mocap_sequence": lib.sequence[person.pose_index],
            "mocap_frame": lib.frame[person.pose_index],
            "phenotype": person.phenotype,
            "mapping_residual_mm": lib.residual_mm[person.pose_index],
            "oks": oks_value,
            "visible_fraction": i["visible_fraction"],
            "truncation": i["truncation"],
            "joints_in_image": i["in_image"],
            "joints_occluded": i["occluded"],
            "instant": instant,
            "view": view,
            "camera_R": scene.R.T,
            "camera_T": scene.C,
        }
        people.append(record)
    return ImagePeople(people, counts, image, truth)


def stored_crops(
    det: Detections, rows: list[int], sizes: tuple[int, ...], margin: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """Detections ``rows``' feature crops as a shard stores them (per level ``(B, C, S, S)``
    float16) and their keypoints in the crops' grid ``(B, 17, 2)``; real people measured against
    renders (``realism``) are cut here too, so both sides are the same figures."""
    import torch

    from ros2_ctxpose.core.detector import crop_people

    with torch.no_grad():
        crops = crop_people(
            det.features,
            det.letterbox,
            torch.as_tensor(det.boxes_xyxy[rows]),
            torch.as_tensor(det.keypoints[rows, :, :2]),
            sizes,
            margin,
        )
    return [c.to(torch.float16).numpy() for c in crops.crops], crops.joints_grid.numpy()


def image_truth(scene: Scene, info: list[dict], detectable: list[bool]) -> dict:
    """The image's camera (intrinsics, distortion, pose R, T as in ``schema``) and each rendered
    person's H36M-17 joints in the camera and the image: ground truth that does not depend on
    whether the detector found them (for evaluation and multi-view fusion)."""
    cam = scene.camera
    return {
        "camera": scene.camera_name,
        "K": cam.K.tolist(),
        "dist": cam.dist.tolist(),
        "width": cam.width,
        "height": cam.height,
        "R": scene.R.T.tolist(),
        "T": scene.C.tolist(),
        "people": [
            {
                "joints_3d_cam_m": i["target_cam"].tolist(),
                "joints_2d_px": i["target_px"].tolist(),
                "visible_fraction": float(i["visible_fraction"]),
                "detectable": bool(d),
            }
            for i, d in zip(info, detectable, strict=True)
        ],
    }
