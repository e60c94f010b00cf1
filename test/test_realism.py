"""The realism report's maths on arrays with known answers: crop pooling, the distributions, the
renders/real ratio and its bootstrap interval, the crop classifier, and reading a render set
(a shard written in the stored format with known errors)."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.skeleton import COCO_H36M_SHARED, H36M17
from ros2_ctxpose.training.synthetic import schema, shards
from ros2_ctxpose.training.synthetic.realism.classifier import auc_within, separability, unseen_sets
from ros2_ctxpose.training.synthetic.realism.distributions import confidence_stats, error_stats, median_ratio
from ros2_ctxpose.training.synthetic.realism.real import h36m_target
from ros2_ctxpose.training.synthetic.realism.renders import CropGeometry, collect_renders
from ros2_ctxpose.training.synthetic.realism.report import format_report, render_report
from ros2_ctxpose.training.synthetic.realism.sample import PeopleSample, pool_crops

SHARED = len(COCO_H36M_SHARED)


def test_pool_crops_is_mean_and_std_per_level_and_channel() -> None:
    rng = np.random.default_rng(0)
    levels = [rng.normal(size=(3, 2, 4, 4)).astype(np.float16), rng.normal(size=(3, 5, 2, 2)).astype(np.float16)]
    pooled = pool_crops(levels)
    assert pooled.shape == (3, 2 * (2 + 5))
    c = levels[1].astype(np.float32)
    np.testing.assert_allclose(pooled[1, 4:9], c[1].mean((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(pooled[2, 9:14], c[2].std((1, 2)), rtol=1e-6)


def test_error_and_confidence_stats_known_values() -> None:
    errors = np.tile(np.arange(1, 101, dtype=float)[:, None], (1, SHARED)) / 100  # 0.01 .. 1.00 per joint
    errors[0, 0] = np.nan  # a joint without truth is ignored
    stats = error_stats(errors)
    assert stats["values"] == 100 * SHARED - 1
    assert stats["median"] == pytest.approx(0.51)  # the 600th of 1199 values (one 0.01 left out)
    assert stats["p90"] == pytest.approx(0.90, abs=0.01)
    assert set(stats["median_by_group"]) == {"shoulders", "elbows", "wrists", "hips", "knees", "ankles"}
    conf = np.full((10, 17), 0.9)
    conf[:, :5] = 0.2  # the face
    c = confidence_stats(conf)
    assert c["share_below_half"] == pytest.approx(5 / 17)
    assert c["median_by_group"]["face"] == pytest.approx(0.2) and c["median_by_group"]["ankles"] == pytest.approx(0.9)


def test_median_ratio_recovers_a_known_scale_and_its_interval_narrows_with_people() -> None:
    rng = np.random.default_rng(1)
    den = np.abs(rng.normal(size=(4000, SHARED)))
    num = 2.0 * np.abs(rng.normal(size=(4000, SHARED)))
    big = median_ratio(num, den, n_boot=200, seed=0)
    assert big["low"] <= 2.0 <= big["high"] and big["ratio"] == pytest.approx(2.0, rel=0.05)
    small = median_ratio(num[:40], den[:40], n_boot=200, seed=0)
    assert small["high"] - small["low"] > big["high"] - big["low"]
    same = median_ratio(den, den, n_boot=200, seed=0)
    assert same["ratio"] == 1.0 and same["low"] < 1.0 < same["high"]


def _classes(shift: float, n: int = 300, dims: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, dims))
    y = np.arange(2 * n) < n
    x[y, 0] += shift
    groups = np.array([f"g{i // 10}" for i in range(2 * n)])  # 10 neighbours per group
    return x, y, groups


def test_classifier_is_at_chance_on_identical_distributions() -> None:
    x, y, groups = _classes(shift=0.0)
    result = separability(x, y, groups, seed=0)
    assert 0.4 < result["accuracy"] < 0.6 and 0.4 < result["auc"] < 0.6
    assert result["people_per_class"] == 300 and result["folds"] == 5


def test_classifier_separates_shifted_features_and_balances_classes() -> None:
    x, y, groups = _classes(shift=8.0)
    y_unbalanced = y.copy()
    y_unbalanced[300:400] = True  # 400 renders vs 200 real: 200 of each are kept
    result = separability(x, y_unbalanced, groups, seed=0)
    assert result["people_per_class"] == 200
    assert np.sum(y_unbalanced[result["kept"]]) == 200
    clean = separability(x, y, groups, seed=0)
    assert clean["accuracy"] > 0.98 and clean["auc"] > 0.99
    # Held-out by group: no group sits in two folds, so a per-group signal cannot leak.
    assert auc_within(y, np.where(y, 0.9, 0.1), np.ones(len(y), bool)) == 1.0
    assert auc_within(y, np.zeros(len(y)), ~y) is None


def test_unseen_sets_tells_a_shared_render_signal_from_a_set_specific_one() -> None:
    rng = np.random.default_rng(2)
    n = 200
    x = rng.normal(size=(3 * n, 6))
    real_set = np.repeat([-1, 0, 1], n)  # renders, then two real sets
    groups = np.array([f"g{i // 10}" for i in range(3 * n)])
    x[real_set < 0, 0] += 8.0  # what every render has and no real person
    assert all(a is not None and a > 0.99 for a in unseen_sets(x, real_set, groups, seed=0).values())
    # Set 0 looks like the renders, set 1 does not: trained on renders vs set 1, the model
    # learns set 1's difference, which does not tell set 0 from renders (chance).
    y = rng.normal(size=(3 * n, 6))
    y[real_set == 1, 1] += 8.0
    unseen = unseen_sets(y, real_set, groups, seed=0)
    assert unseen[0] is not None and 0.35 < unseen[0] < 0.65


def test_classifier_refuses_a_class_with_one_group() -> None:
    x, y, _ = _classes(shift=0.0, n=20)
    with pytest.raises(ValueError, match="2 groups per class"):
        separability(x, y, np.where(y, "render", "real"), seed=0)


def test_h36m_target_maps_compared_joints_and_leaves_others_unknown() -> None:
    from ros2_ctxpose.core.joint_sets import GTA21

    joints = np.arange(len(GTA21) * 2, dtype=float).reshape(-1, 2)
    target = h36m_target("gta21", joints)
    assert np.isnan(target[H36M17.index("pelvis")]).all()
    np.testing.assert_array_equal(target[H36M17.index("left_wrist")], joints[GTA21.index("left_wrist")])


def _person(offset_px: float, visible: float, image_id: int, levels: list[tuple[int, int]]) -> dict:
    """A stored person whose shared keypoints lie ``offset_px`` right of the targets, box 100x100."""
    record: dict = {
        name: np.zeros(field.shape or (), dtype=field.dtype)
        for name, field in schema.FIELDS.items()
        if field.shape is not None
    }
    target = np.random.default_rng(image_id).uniform(100, 200, (17, 2))
    keypoints = np.zeros((17, 3), np.float32)
    for c, h in COCO_H36M_SHARED:
        keypoints[c] = (*(target[h] + [offset_px, 0.0]), 0.8)
    record.update(
        keypoints=keypoints,
        target_px=target,
        box=np.array([0, 0, 100, 100], np.float32),
        joints_in_image=np.ones(17, bool),
        visible_fraction=visible,
        truncation=0.0,
        image_id=image_id,
        instant=image_id,
    )
    for level, (channels, size) in enumerate(levels):
        record[schema.crop_field(level)] = np.full((channels, size, size), offset_px, np.float16)
    return record


def test_render_set_errors_visibility_and_sampling(tmp_path) -> None:
    levels = [(2, 4), (3, 4), (2, 2), (1, 1)]
    meta = {"settings": {"crop_sizes": [s for _, s in levels], "crop_margin": 1.25}, "counts": {}}
    people = [_person(5.0, 1.0, i, levels) for i in range(6)] + [_person(20.0, 0.5, 10 + i, levels) for i in range(4)]
    shards.write_shard(tmp_path, 0, people[:5], {**meta, "engine_version": 1})
    shards.write_shard(tmp_path, 1, people[5:], {**meta, "engine_version": 1})
    rs = collect_renders(tmp_path, max_people=100, seed=0)
    assert rs.stored == 10 and len(rs.all) == 10 and len(rs.visible) == 6
    assert rs.geometry == CropGeometry((4, 4, 2, 1), 1.25) and rs.engine_versions == (1,)
    np.testing.assert_allclose(rs.visible.errors, 0.05, rtol=1e-5)  # 5 px / sqrt(100 * 100)
    assert np.nanmax(rs.all.errors) == pytest.approx(0.2, rel=1e-5)
    assert rs.all.features.shape == (10, 2 * (2 + 3 + 2 + 1))
    assert len(set(rs.all.groups)) == 10
    few = collect_renders(tmp_path, max_people=4, seed=3)
    assert len(few.all) == 4 and np.array_equal(few.all.groups, collect_renders(tmp_path, 4, seed=3).all.groups)
    # The report on it: renders twice as wrong as a "real" set at 2.5 px, a crop classifier that
    # separates the two (their crops differ), and a readable table.
    rng = np.random.default_rng(0)
    real = PeopleSample(
        "real S11 WalkDog",
        "real",
        np.full((12, 17), 0.9, np.float32),
        np.full((12, SHARED), 0.025),
        np.full((12, rs.all.features.shape[1]), 2.5) + rng.normal(0, 0.01, (12, rs.all.features.shape[1])),
        np.array([f"s11:{i // 3}" for i in range(12)]),
    )
    report = render_report(rs, [real], seed=0, n_boot=100)
    assert report["ratio_vs"]["real S11 WalkDog"]["ratio"] == pytest.approx(2.0, rel=1e-4)
    assert report["target_met"] is False
    assert report["classifier"]["auc"] == 1.0
    table = format_report(str(tmp_path), report)
    assert "2.00 [2.00, 2.00]" in table and "NOT met" in table
    # Too few groups for cross-validation: the classifier is skipped with the reason, the rest stands.
    one_group = PeopleSample(real.name, "real", real.confidences, real.errors, real.features, np.full(12, "s11"))
    skipped = render_report(rs, [one_group], seed=0, n_boot=10)
    assert "2 groups per class" in skipped["classifier"]["skipped"]
    assert "crop classifier skipped" in format_report(str(tmp_path), skipped)


def test_command_refuses_a_folder_without_shards(tmp_path, capsys) -> None:
    from ros2_ctxpose.training.synthetic.realism.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--renders", str(tmp_path)])
    assert exit_info.value.code == 2 and "no complete shards" in capsys.readouterr().err
