"""Multi-camera association and fusion (core/fusion.py): exact views, noisy views, missing views,
two people crossing, ids across instants, the camera-pose convention."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.fusion import (
    FusedIdentities,
    View,
    ViewPerson,
    fuse_instant,
    fuse_views,
    ray_covariance,
)
from ros2_ctxpose.core.results import ROOT_FROM_VIEWS, Person3D

#: Four cameras 5 m around the origin at 1.5 m height, as in a room-scale rig.
ORIGINS = np.array([[5.0, 0.0, 1.5], [0.0, 5.0, 1.5], [-5.0, 0.0, 1.5], [0.0, -5.0, 1.5]])


def body(centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 17-joint body-sized point set standing at ``centre`` (pelvis first)."""
    joints = centre + rng.uniform([-0.25, -0.15, -0.9], [0.25, 0.15, 0.8], size=(17, 3))
    joints[0] = centre
    return joints


def seen(
    truth: np.ndarray, origin: np.ndarray, rng: np.random.Generator | None, track_id: int = 1, scale: float = 1.0
) -> ViewPerson:
    """One camera's estimate of ``truth``: one placement error along that camera's ray (it moves
    the whole body, as a monocular root does) plus small per-joint errors; exact without ``rng``."""
    joints = truth.copy()
    if rng is not None:
        root_error = rng.multivariate_normal(np.zeros(3), scale**2 * ray_covariance(origin, truth[0]))
        joints = joints + root_error + rng.normal(0.0, 0.01 * scale, size=truth.shape)
    return ViewPerson(joints=joints, conf=np.ones(17), score=0.9, root_cov=np.full((3, 3), np.nan), track_id=track_id)


def views_of(truths: list[np.ndarray], rng: np.random.Generator | None, cameras=range(4)) -> list[View]:
    return [
        View(origin=ORIGINS[c], people=[seen(t, ORIGINS[c], rng, track_id=k + 1) for k, t in enumerate(truths)])
        for c in cameras
    ]


def mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


def test_ray_covariance_is_long_along_the_ray() -> None:
    cov = ray_covariance(np.zeros(3), np.array([0.0, 0.0, 4.0]))
    assert np.allclose(cov, np.diag([(0.015 * 4) ** 2, (0.015 * 4) ** 2, (0.08 * 4) ** 2]))


@pytest.mark.parametrize("method", ["ray", "average"])
def test_exact_views_give_the_exact_answer(method: str) -> None:
    rng = np.random.default_rng(0)
    truths = [body(np.array([x, 0.0, 1.0]), rng) for x in (-1.5, 0.0, 1.5)]
    fused = fuse_views(views_of(truths, None), method=method)
    assert len(fused) == 3
    for person in fused:
        k = {member[1] for member in person.members}
        assert len(k) == 1 and len(person.members) == 4, person.members
        np.testing.assert_allclose(person.joints, truths[k.pop()], atol=1e-9)


def test_noisy_views_fused_along_rays_beat_the_average() -> None:
    rng = np.random.default_rng(1)
    ray_errors, average_errors, single_errors = [], [], []
    for _ in range(200):
        truth = body(rng.uniform(-1.0, 1.0, 3) * [1, 1, 0] + [0, 0, 1.0], rng)
        views = views_of([truth], rng)
        ray = fuse_views(views, method="ray")
        average = fuse_views(views, method="average")
        assert len(ray) == 1 and len(average) == 1
        ray_errors.append(mpjpe(ray[0].joints, truth))
        average_errors.append(mpjpe(average[0].joints, truth))
        single_errors.append(mpjpe(views[0].people[0].joints, truth))
    assert np.mean(ray_errors) < 0.7 * np.mean(average_errors) < np.mean(single_errors)


@pytest.mark.parametrize("method", ["ray", "average"])
def test_fusion_is_the_closed_form_of_its_method(method: str) -> None:
    """Running sums over views give exactly (sum Sigma^-1)^-1 sum Sigma^-1 x (ray) or the mean."""
    from ros2_ctxpose.core.fusion import joint_covariances

    rng = np.random.default_rng(11)
    truth = body(np.array([0.2, 0.1, 1.0]), rng)
    views = views_of([truth], rng, cameras=(0, 1, 3))
    (fused,) = fuse_views(views, method=method)
    x = np.stack([v.people[0].joints for v in views])
    if method == "average":
        expected = x.mean(axis=0)
    else:
        info = np.linalg.inv(np.stack([joint_covariances(v.people[0], v.origin) for v in views]))
        expected = np.linalg.solve(info.sum(0), (info @ x[..., None]).sum(0))[..., 0]
    np.testing.assert_allclose(fused.joints, expected, atol=1e-12)


def test_a_missing_view_leaves_fewer_views_and_nobody_is_lost() -> None:
    rng = np.random.default_rng(2)
    truths = [body(np.array([x, 0.5, 1.0]), rng) for x in (-1.0, 1.0)]
    views = views_of(truths, rng)
    views[2] = View(origin=ORIGINS[2], people=[])
    fused = fuse_views(views)
    assert len(fused) == 2
    assert sorted(len(p.members) for p in fused) == [3, 3]
    assert all(2 not in {v for v, _ in p.members} for p in fused)


def test_a_person_one_camera_sees_passes_through_unchanged() -> None:
    rng = np.random.default_rng(3)
    views = views_of([body(np.array([0.0, 0.0, 1.0]), rng)], rng)
    alone = body(np.array([3.5, 3.5, 1.0]), rng)
    views[1] = View(origin=ORIGINS[1], people=[*views[1].people, seen(alone, ORIGINS[1], None, track_id=9)])
    fused = fuse_views(views)
    assert len(fused) == 2
    single = [p for p in fused if len(p.members) == 1]
    assert len(single) == 1 and single[0].members == [(1, 1)]
    np.testing.assert_allclose(single[0].joints, alone, atol=1e-9)


def test_two_people_crossing_stay_apart() -> None:
    """Two people passing each other 0.5 m apart: from cameras 0 and 2 (on the x axis) one stands
    behind the other, so their depth (along x) is what differs and what those cameras get wrong;
    cameras 1 and 3 see them side by side. Every trial must keep each person's views together."""
    rng = np.random.default_rng(4)
    for _ in range(100):
        a = body(np.array([-0.25, 0.0, 1.0]), rng)
        b = body(np.array([0.25, 0.0, 1.0]), rng)
        fused = fuse_views(views_of([a, b], rng, cameras=(0, 1, 2, 3)))
        assert len(fused) == 2
        for person in fused:
            assert len({i for _, i in person.members}) == 1, person.members
            assert len(person.members) == 4


def test_the_same_camera_never_fuses_its_own_people() -> None:
    rng = np.random.default_rng(5)
    twin = body(np.array([0.0, 0.0, 1.0]), rng)
    view = View(origin=ORIGINS[0], people=[seen(twin, ORIGINS[0], None), seen(twin + 0.01, ORIGINS[0], None)])
    assert len(fuse_views([view])) == 2


def test_people_with_non_finite_joints_are_skipped() -> None:
    rng = np.random.default_rng(6)
    broken = body(np.zeros(3), rng)
    broken[4] = np.nan
    fine = body(np.array([2.0, 0.0, 1.0]), rng)
    view = View(origin=ORIGINS[0], people=[seen(broken, ORIGINS[0], None), seen(fine, ORIGINS[0], None)])
    fused = fuse_views([view])
    assert [p.members for p in fused] == [[(0, 1)]]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        fuse_views([], method="median")


def test_ids_continue_when_a_camera_drops_out() -> None:
    rng = np.random.default_rng(7)
    truths = [body(np.array([x, 0.0, 1.0]), rng) for x in (-1.5, 1.5)]
    ids = FusedIdentities()
    first_views = views_of(truths, rng)
    first = fuse_views(first_views)
    ids.assign(first_views, first)
    by_person = {p.members[0][1]: p.track_id for p in first}
    assert sorted(by_person.values()) == [1, 2]
    later_views = views_of(truths, rng, cameras=(2, 3))  # cameras 0 and 1 are gone: views 0, 1 are 2, 3
    # View indices are input positions: keep the positions, empty the lost cameras.
    later_views = [View(origin=ORIGINS[0], people=[]), View(origin=ORIGINS[1], people=[]), *later_views]
    later = fuse_views(later_views)
    ids.assign(later_views, later)
    assert {p.members[0][1]: p.track_id for p in later} == by_person
    newcomer_views = views_of([*truths, body(np.array([0.0, 3.0, 1.0]), rng)], rng)
    newcomer = fuse_views(newcomer_views)
    ids.assign(newcomer_views, newcomer)
    assert sorted(p.track_id for p in newcomer) == [1, 2, 3]


def looking_at_origin(yaw: float) -> np.ndarray:
    """R (X_world = R X_cam + T) of an optical frame (z forward, y down) turned by ``yaw`` about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]
    )


#: Two cameras (R, T): on +x looking back along -x, and on +y looking along -y.
CAMERAS = [(looking_at_origin(np.pi), ORIGINS[0]), (looking_at_origin(-np.pi / 2), ORIGINS[1])]


def camera_person(world: np.ndarray, R: np.ndarray, T: np.ndarray, track_id: int = 1) -> Person3D:
    cam = (world - T) @ R  # rows: R^T (X - T)
    assert (cam[:, 2] > 0).all(), "the test camera looks at the person"
    return Person3D(
        track_id=track_id,
        score=0.8,
        bbox_xyxy=np.zeros(4),
        keypoints_2d=np.ones((17, 3)),
        joints_3d=cam,
        joints_uv=np.zeros((17, 2)),
        joints_conf=np.ones(17),
        root=cam[0],
        root_source="intrinsics",
    )


def test_fuse_instant_uses_the_cameras_json_convention() -> None:
    """Cameras given as X_cam = R^T (X_world - T): camera-frame results of two cameras that saw the
    same world person exactly come back as that world person, flagged as placed from views."""
    world = body(np.array([0.3, -0.2, 1.0]), np.random.default_rng(8))
    fused = fuse_instant([([camera_person(world, R, T)], R, T.reshape(3, 1)) for R, T in CAMERAS])
    assert len(fused) == 1
    np.testing.assert_allclose(fused[0].joints_3d, world, atol=1e-9)
    assert fused[0].root_source == ROOT_FROM_VIEWS and fused[0].placement_note == "fused from 2 views"
    assert np.isfinite(fused[0].root_cov).all()


def test_ctxpose_fuse_writes_world_frame_people_per_instant(tmp_path, capsys) -> None:
    """Two cameras' infer output (the second's line 2 an error) fuse into the world person, with
    one id throughout and the camera count per instant; a bad camera file is exit 2."""
    import json

    from ros2_ctxpose.cli.main import main
    from ros2_ctxpose.core.results import FrameResult, frame_record, to_json

    world = body(np.array([0.3, -0.2, 1.0]), np.random.default_rng(9))
    arguments = []
    for c, (R, T) in enumerate(CAMERAS):
        lines = []
        for k in range(3):
            person = camera_person(world, R, T, track_id=5 + c)
            record = frame_record(FrameResult(people=[person]), file=f"cam{c}.mp4#{k:06d}")
            if c == 1 and k == 1:
                record = {"file": record["file"], "error": "damaged frame", "people": []}
            lines.append(to_json(record))
        (tmp_path / f"cam{c}.jsonl").write_text("\n".join(lines) + "\n")
        (tmp_path / "cameras.json").write_text(
            json.dumps({f"cam{i}": {"R": r.tolist(), "T": t.tolist()} for i, (r, t) in enumerate(CAMERAS)})
        )
        arguments += ["--view", str(tmp_path / f"cam{c}.jsonl"), f"{tmp_path / 'cameras.json'}#cam{c}"]
    out = tmp_path / "fused.jsonl"
    assert main(["fuse", *arguments, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["views"] for r in rows] == [2, 1, 2]
    assert rows[1]["files"] == ["cam0.mp4#000001", "cam1.mp4#000001"]
    for row in rows:
        assert row["frame"] == "world" and len(row["people"]) == 1
        person = row["people"][0]
        np.testing.assert_allclose(person["joints_3d_world_m"], world, atol=1e-3)  # written with 4 decimals
        assert person["root_source"] == ROOT_FROM_VIEWS and "joints_3d_cam_m" not in person
    assert len({r["people"][0]["id"] for r in rows}) == 1
    assert main(["fuse", "--view", str(tmp_path / "cam0.jsonl"), str(tmp_path / "nothing.json")]) == 2
    assert "not a camera pose" in capsys.readouterr().err
