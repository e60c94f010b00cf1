"""The real side: the project's detector on real material, as samples comparable with renders.

Sets: the 399 real S11 WalkDog frames (Human3.6M, one person, exact 2D truth), the annotated
frames of ../shared/data/images split by dataset (Human3.6M and MPI-INF-3DHP photographs,
GTA-IM game frames, COCO photographs without truth) and Sports2D's demo clip (two people walking
outdoors, no truth: confidences and crops only). The detector is the one the shards were made
with (``worker.make_detector``: torch, fp32) and each person's crops are cut and rounded to
float16 by the function ``image_people`` stores them with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ros2_ctxpose.core.skeleton import H36M17

from ..image_people import stored_crops
from ..summary import keypoint_error
from .renders import CropGeometry
from .sample import Kind, PeopleSample, pool_crops

#: A detection whose median shared-joint error exceeds this (in sqrt(box area)) is somebody
#: else than the annotated person (at ~0.03 typical, 0.5 is half a body away), so a miss.
MAX_MATCH_ERROR = 0.5
#: Contiguous frames per cross-validation group of a clip (~1 s of S11 at 50 Hz or the demo at 30 fps).
CLIP_BLOCK = 40
#: The set the issue's target ratio is measured against.
S11 = "real S11 WalkDog"
#: ``dataset`` of ../shared/data/images/annotations.json -> (set name, kind).
ANNOTATED_SETS: dict[str, tuple[str, Kind]] = {
    "human3.6m": ("H36M photos", "real"),
    "mpi-inf-3dhp": ("MPI-INF-3DHP photos", "real"),
    "gta-im (synthetic)": ("GTA-IM (game)", "game"),
    "ultralytics assets (no 3D ground truth)": ("COCO photos (no truth)", "real"),
}


class _Collector:
    """People of one set, appended detection by detection."""

    def __init__(self, detector, geometry: CropGeometry) -> None:
        self.detector, self.geometry = detector, geometry
        self.conf: list[np.ndarray] = []
        self.errors: list[np.ndarray] = []
        self.features: list[np.ndarray] = []
        self.groups: list[str] = []
        self.missed = 0

    def add(self, image: np.ndarray, group: str, truth_px: np.ndarray | None = None) -> None:
        """Detect people in ``image``: with ``truth_px`` ((17, 2) H36M-17, NaN where unknown) the
        one closest to it, else everyone."""
        det = self.detector.detect(image)
        if truth_px is None:
            chosen = list(range(len(det)))
        else:
            if not len(det):
                self.missed += 1
                return
            per_det = keypoint_error(det.keypoints, np.repeat(truth_px[None], len(det), 0), det.boxes_xyxy)
            best = int(np.argmin(np.nanmedian(per_det, 1)))
            if np.nanmedian(per_det[best]) > MAX_MATCH_ERROR:
                self.missed += 1
                return
            chosen = [best]
            self.errors.append(per_det[best])
        if not chosen:
            return
        self.conf += [det.keypoints[i, :, 2] for i in chosen]
        self.features.append(pool_crops(stored_crops(det, chosen, self.geometry.sizes, self.geometry.margin)[0]))
        self.groups += [group] * len(chosen)

    def sample(self, name: str, kind: Kind, with_truth: bool) -> PeopleSample:
        if not self.conf:
            raise ValueError(f"{name}: the detector found nobody")
        return PeopleSample(
            name,
            kind,
            np.stack(self.conf).astype(np.float32),
            np.stack(self.errors) if with_truth else None,
            np.concatenate(self.features),
            np.array(self.groups),
            self.missed,
        )


def h36m_target(joint_set: str, joints_2d: np.ndarray) -> np.ndarray:
    """(17, 2) H36M-17 pixels of an annotation in ``joint_set``: the joints its mapping compares
    (``core.joint_sets``), NaN for the others."""
    from ros2_ctxpose.core.joint_sets import JOINT_SETS

    mapping = JOINT_SETS[joint_set]
    target = np.full((len(H36M17), 2), np.nan)
    for dataset_joint, h36m_joint in mapping.compared:
        target[H36M17.index(h36m_joint)] = joints_2d[mapping.joints.index(dataset_joint)]
    return target


def _annotated(path: Path, step: int) -> Iterator[tuple[str, np.ndarray, str, np.ndarray | None]]:
    """``(dataset, image, group, H36M-17 truth or None)`` of every ``step``-th record."""
    from ros2_ctxpose.core.annotations import read_annotations
    from ros2_ctxpose.core.media.images import read_image

    for i, record in enumerate(read_annotations(path).images[::step]):
        truth = record.truth
        target = None if truth is None else h36m_target(truth.joint_set, truth.joints_2d)
        # A clip's frames are grouped in contiguous blocks; separate photographs one per group.
        clip = f"{record.subject}/{record.sequence}" if record.sequence else record.subject or record.file
        group = f"{record.dataset}:{clip}:{i * step // CLIP_BLOCK}"
        yield record.dataset, read_image(record.path), group, target


def _demo_frames(step: int) -> Iterator[tuple[int, np.ndarray]]:
    from ros2_ctxpose.core.media.videos import demo_video_path, video_frames

    for frame in video_frames(demo_video_path(), None):
        if frame.image is not None and frame.index is not None and frame.index % step == 0:
            yield frame.index, frame.image


def collect_real(
    geometry: CropGeometry, s11_step: int = 1, demo_step: int = 1, log: Callable[[str], None] = print
) -> list[PeopleSample]:
    """Every real set the shared data and the installed demo clip provide; a missing source is
    logged and left out."""
    from ros2_ctxpose.core.paths import shared_data_dir

    from ..worker import make_detector

    detector = make_detector()
    samples = []
    data = shared_data_dir() / "data"
    s11 = data / "h36m_s11_walkdog" / "annotations.json"
    if s11.is_file():
        c = _Collector(detector, geometry)
        for _, image, group, target in _annotated(s11, s11_step):
            c.add(image, group, target)
        samples.append(c.sample(S11, "real", with_truth=True))
    else:
        log(f"realism: {s11} not found, the S11 clip is left out")
    images = data / "images" / "annotations.json"
    if images.is_file():
        by_set: dict[str, _Collector] = {}
        for dataset, image, group, target in _annotated(images, 1):
            by_set.setdefault(dataset, _Collector(detector, geometry)).add(image, group, target)
        for dataset, c in by_set.items():
            name, kind = ANNOTATED_SETS.get(dataset, (dataset, "real"))
            samples.append(c.sample(name, kind, with_truth=bool(c.errors)))
    else:
        log(f"realism: {images} not found, the annotated frames are left out")
    try:
        c = _Collector(detector, geometry)
        for index, image in _demo_frames(demo_step):
            c.add(image, f"demo:{index // CLIP_BLOCK}")
        samples.append(c.sample("demo clip (no truth)", "real", with_truth=False))
    except FileNotFoundError as exc:
        log(f"realism: {exc}; the demo clip is left out")
    return samples
