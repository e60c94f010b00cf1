"""The synthetic data engine end to end, on a couple of renders: the mocap fit, the render, the
real detector on it, the stored format and determinism.

Needs the ``[synth]`` extra (anny, pyrender, an offscreen OpenGL) and ../shared's Human3.6M
mocap; skipped with the reason otherwise. Anny's first model build (~90 s) is cached under
``$ANNY_CACHE_DIR`` (default ``~/.cache/anny``). The pose library is built small (one subject,
few calibration frames) into a temporary folder, and the backgrounds are generated textures
unless the real photographs were fetched (``ctxpose synth --fetch-backgrounds``), so no test
downloads anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.core.paths import shared_data_dir

#: Bounds of the quick calibration below (300 frames per subject in the real one measure
#: ~7 mm mean): a broken fit or mapping lands far above them.
MAX_CALIBRATION_MEAN_MM = 20.0
MAX_CALIBRATION_JOINT_MM = 45.0


@pytest.fixture(scope="module")
def synth(synth_extras, tmp_path_factory):
    if not (shared_data_dir() / "data" / "h36m" / "poses_world17_mm.npz").is_file():
        pytest.skip(f"Human3.6M mocap not found under {shared_data_dir()}")
    from ros2_ctxpose.core.lifter.model import LifterConfig
    from ros2_ctxpose.training.synthetic import backgrounds
    from ros2_ctxpose.training.synthetic.worker import Settings, Worker

    tmp = tmp_path_factory.mktemp("synth")
    try:
        backgrounds.load_backgrounds()
        bg_dir = None
    except backgrounds.BackgroundsMissing:
        bg_dir = _fake_backgrounds(tmp / "backgrounds")
    cfg = LifterConfig()
    settings = Settings(
        seed=7,
        subjects=("S1",),
        stride=100,
        calibration_frames=40,
        images_per_shard=2,
        crop_sizes=tuple(cfg.context_crop_sizes),
        crop_margin=cfg.context_crop_margin,
        library_key="test",
    )
    worker = Worker(settings, "cpu", backgrounds=bg_dir, library_cache=tmp / "library")
    return worker, tmp


def _fake_backgrounds(folder: Path) -> Path:
    """Smooth random colour fields standing in for the photographs."""
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    manifest = []
    for i in range(3):
        image = cv2.resize(rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8), (800, 600), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i}.jpg"), image)
        manifest.append({"file": f"{i}.jpg", "package": "test", "version": "0", "path": "", "licence": "none"})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.slow
def test_fit_residuals_are_finite_and_bounded(synth):
    worker, _ = synth
    lib = worker.assets.library
    residual = lib.calibration_residual_mm
    assert residual.shape == (17,) and np.isfinite(residual).all()
    assert residual.mean() < MAX_CALIBRATION_MEAN_MM and residual.max() < MAX_CALIBRATION_JOINT_MM, residual
    assert np.isfinite(lib.residual_mm).all() and np.isfinite(lib.rotations).all()
    assert lib.keep.mean() > 0.9  # almost every frame of a training subject fits
    weights = lib.regressor.weights
    assert (weights >= 0).all() and np.allclose(weights.sum(1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_sampled_bodies_span_adult_heights(synth):
    from ros2_ctxpose.training.synthetic.body import body_heights_m, sample_phenotypes

    worker, _ = synth
    phenotypes = sample_phenotypes(worker.assets.body, 400, seed=0)
    heights = body_heights_m(worker.assets.body, phenotypes).numpy()
    female = phenotypes[:, worker.assets.body.phenotype_labels.index("gender")].numpy() > 0.5
    assert 0.35 < female.mean() < 0.65  # both genders
    lo, hi = np.percentile(heights, [2, 98])
    assert 1.40 < lo < 1.60 and 1.80 < hi < 2.05, (lo, hi)  # adults, not children or giants
    assert np.median(heights[~female]) - np.median(heights[female]) > 0.08


def _standing_person_scene(worker):
    """One body in a library pose, 3.5 m in front of a 640x480 camera at chest height."""
    import torch

    from ros2_ctxpose.core.camera import CameraModel
    from ros2_ctxpose.training.synthetic import appearance, render
    from ros2_ctxpose.training.synthetic import body as body_mod
    from ros2_ctxpose.training.synthetic.scene import Scene, ScenePerson, render_job

    assets = worker.assets
    lib = assets.library
    rng = np.random.default_rng(3)
    index = int(np.flatnonzero(lib.keep)[0])
    phenotype = body_mod.sample_phenotypes(assets.body, 1, seed=1)
    with torch.no_grad():
        vertices = (
            body_mod.pose_bodies(
                assets.body, phenotype, torch.as_tensor(lib.rotations[[index]])[:, assets.segments], torch.zeros(1, 3)
            )[0]
            .double()
            .numpy()
        )
    joints = lib.regressor.apply(vertices)
    vertices -= [*joints[0, :2], vertices[assets.body.render_topology.vertex_ids, 2].min()]
    joints = lib.regressor.apply(vertices)
    coco = assets.body.coco_regressor.double().numpy() @ vertices
    # Camera on the -y side of the body's pelvis... wherever the mocap faces: look at it from its front.
    facing = np.cross(joints[4] - joints[1], [0.0, 0.0, 1.0])  # left hip - right hip, x up -> forward
    facing = facing / np.linalg.norm(facing)
    C = np.array([*(joints[0, :2] + 3.5 * facing[:2]), 1.3])
    forward = np.array([*(-facing[:2]), 0.0])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    R = np.stack([right, np.cross(forward, right), forward])
    camera = CameraModel.from_fov(640, 480, 60.0)
    person = ScenePerson(
        index,
        phenotype[0].numpy(),
        vertices.astype(np.float32),
        joints.astype(np.float32),
        coco.astype(np.float32),
        appearance.paint_texture(assets.texels, appearance.sample_outfit(rng), rng),
    )
    background = np.full((480, 640, 3), 128, np.uint8)
    scene = Scene(
        camera,
        R,
        C,
        "virtual",
        [person],
        [],
        [render.Light(np.array([0.3, 0.5, -1.0]), (255, 255, 255), 3.0)],
        0.5,
        background,
    )
    result = worker.renderer.render(render_job(scene, assets.body))
    return scene, result, render.composite(result.rgb[..., ::-1], result.alpha, background)


@pytest.mark.slow
def test_render_shows_the_person_and_the_detector_finds_them(synth):
    from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED

    worker, _ = synth
    scene, result, image = _standing_person_scene(worker)
    assert result.silhouettes[0].sum() > 3000  # a ~1.7 m person at 3.5 m, 60 degree lens: ~180 px tall
    assert (result.labels == 0).sum() == result.silhouettes[0].sum()  # nothing hides them
    assert image[result.silhouettes[0]].std() > 5  # textured, not a flat fill
    det = worker.detector.detect(image)
    assert len(det) >= 1
    target_px = scene.camera.project(scene.to_camera(scene.people[0].joints_world))
    coco_px = scene.camera.project(scene.to_camera(scene.people[0].coco_world))
    best = int(np.argmin(np.linalg.norm(det.keypoints[:, :, :2] - coco_px, axis=-1).mean(1)))
    box = det.boxes_xyxy[best]
    scale = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    c, h = (list(x) for x in zip(*COCO_H36M_SHARED, strict=True))
    error = np.linalg.norm(det.keypoints[best, c, :2] - target_px[h], axis=-1) / scale
    assert np.median(error) < 0.08, error  # real S11 frames: ~3 %; H36M joints are not COCO's
    assert np.median(np.linalg.norm(det.keypoints[best, :, :2] - coco_px, axis=-1) / scale) < 0.06


@pytest.mark.slow
def test_shard_format_round_trip_and_determinism(synth):
    from ros2_ctxpose.training.synthetic import schema, shards

    worker, tmp = synth
    a_root, b_root = tmp / "a", tmp / "b"
    meta_a = worker.shard(a_root, 0)
    meta_b = worker.shard(b_root, 0)
    assert meta_a["counts"] == meta_b["counts"]
    _, arrays_a = shards.read_shard(shards.shard_dir(a_root, 0))
    meta, arrays_b = shards.read_shard(shards.shard_dir(b_root, 0), mmap=False)
    n = meta["people"]
    assert set(arrays_b) == set(schema.FIELDS)
    for name, field in schema.FIELDS.items():
        assert arrays_b[name].dtype == np.dtype(field.dtype), name
        assert arrays_b[name].shape[0] == n, name
        if field.shape is not None:
            assert arrays_b[name].shape[1:] == field.shape, name
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
    sizes = worker.settings.crop_sizes
    for level, size in enumerate(sizes):
        assert arrays_b[schema.crop_field(level)].shape[1:] == (worker.detector.feature_channels[level], size, size)
    assert (
        meta["settings"]["crop_sizes"] == list(sizes) and meta["settings"]["crop_margin"] == worker.settings.crop_margin
    )
    assert len(list((shards.shard_dir(b_root, 0) / "images").glob("*.jpg"))) == worker.settings.images_per_shard
    if n:
        assert np.isfinite(arrays_b["target_cam"]).all() and (arrays_b["target_cam"][..., 2] > 0).any()
        assert ((arrays_b["oks"] >= 0.2) & (arrays_b["oks"] <= 1.0)).all()
    # A different shard index gives a different scene.
    meta_c = worker.shard(a_root, 1)
    assert shards.list_shards(a_root) == [shards.shard_dir(a_root, 0), shards.shard_dir(a_root, 1)]
    assert meta_c["index"] == 1


def test_cli_defaults_and_subject_checks() -> None:
    """Light checks that need none of the [synth] dependencies."""
    from ros2_ctxpose.cli import main as cli_main
    from ros2_ctxpose.cli.synth import DEFAULT_SUBJECTS
    from ros2_ctxpose.training.h36m import TRAIN_SUBJECTS
    from ros2_ctxpose.training.synthetic.generate import parse_subjects

    assert parse_subjects(DEFAULT_SUBJECTS) == TRAIN_SUBJECTS
    assert parse_subjects(" S11 ") == ("S11",)
    for bad in ("S9", "S1,S11", ""):
        with pytest.raises(ValueError):
            parse_subjects(bad)
    args = cli_main.build_parser().parse_args(["synth", "--out", "x", "--people", "5"])
    assert args.people == 5 and args.subjects == DEFAULT_SUBJECTS and args.seed == 0
    assert args.views == 1
    assert cli_main.build_parser().parse_args(["synth", "--out", "x", "--views", "3"]).views == 3
    for bad in ("0", "5"):
        with pytest.raises(SystemExit):
            cli_main.build_parser().parse_args(["synth", "--out", "x", "--views", bad])


@pytest.mark.slow
def test_multiview_instant_is_one_scene_in_every_view(synth):
    """Two views of one instant: the same people, the stored R, T map each view's joints to the
    same world points, and annotations.json points at full-size images with their intrinsics."""
    import dataclasses

    import cv2

    from ros2_ctxpose.core.floor import floor_from_extrinsics
    from ros2_ctxpose.training.synthetic import annotations, shards

    worker, tmp = synth
    single = worker.settings
    worker.settings = dataclasses.replace(single, views=2, images_per_shard=1)
    try:
        worker.shard(tmp / "mv", 0)
    finally:
        worker.settings = single
    index = json.loads((shards.shard_dir(tmp / "mv", 0) / "images" / "index.json").read_text())
    assert [(i["instant"], i["view"]) for i in index] == [(0, 0), (0, 1)]
    assert len(index[0]["people"]) == len(index[1]["people"]) >= 1
    for a, b in zip(index[0]["people"], index[1]["people"], strict=True):
        world = [
            np.asarray(p["joints_3d_cam_m"]) @ np.asarray(i["R"]).T + i["T"] for p, i in ((a, index[0]), (b, index[1]))
        ]
        np.testing.assert_allclose(world[0], world[1], atol=1e-5)  # one body, seen twice
        assert world[0][:, 2].min() > -0.05  # standing on the floor z = 0, not under it
    meta, arrays = shards.read_shard(shards.shard_dir(tmp / "mv", 0), mmap=False)
    assert set(arrays["instant"].tolist()) <= {0} and set(arrays["view"].tolist()) <= {0, 1}
    path = annotations.export_annotations(tmp / "mv")
    records = json.loads(path.read_text())["images"]
    assert records and {r["instant"] for r in records} == {0}
    for r in records:
        image = cv2.imread(str(tmp / "mv" / r["file"]))
        assert image.shape[:2] == (r["height"], r["width"])  # full size: K applies
        floor_from_extrinsics(r["R"], r["T"])  # ctxpose eval's reading of the pose
        assert set(r) >= {"file", "dataset", "K", "joint_names", "joints_3d_cam_m", "joints_2d_px", "R", "T"}
