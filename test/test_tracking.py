"""Tracker: ids follow people, survive misses shorter than ``max_age_s`` (seconds of the frames' own
clock, not frames), are never reused, restart when time goes back; keypoints break box ties."""

from __future__ import annotations

import numpy as np

from ros2_ctxpose.core.tracking import Tracker, box_iou, greedy_assignment, keypoint_similarity


def _person(x: float, y: float = 100.0, w: float = 80.0, h: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """A box and 17 keypoints spread inside it (all confident)."""
    box = np.array([x, y, x + w, y + h])
    rng = np.random.default_rng(int(x))
    kp = np.column_stack([x + rng.uniform(0, w, 17), y + rng.uniform(0, h, 17), np.ones(17)])
    return box, kp


def _frame(*people: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([p[0] for p in people]), np.stack([p[1] for p in people])


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 1 / 3, 0.0]])


def test_keypoint_similarity_is_one_for_identical_and_drops_with_distance() -> None:
    box, kp = _person(0)
    far = kp.copy()
    far[:, 0] += 60
    sim = keypoint_similarity(kp[None], np.stack([kp, far]), np.stack([box, box]))
    assert sim[0, 0] == 1.0 and sim[0, 1] < 0.2


NOBODY = (np.zeros((0, 4)), np.zeros((0, 17, 3)))


def test_ids_follow_people_as_they_move_and_reorder() -> None:
    tracker = Tracker()
    ids0 = tracker.update(*_frame(_person(0), _person(300)), 0.0)
    assert ids0.dtype == np.int64 and sorted(ids0.tolist()) == [1, 2]
    # Next frame: both moved 10 px, listed in the other order.
    ids1 = tracker.update(*_frame(_person(310), _person(10)), 0.04)
    assert ids1.tolist() == [ids0[1], ids0[0]]


def test_short_miss_keeps_the_id_and_ids_are_never_reused() -> None:
    tracker = Tracker(max_age_s=0.5)
    (first,) = tracker.update(*_frame(_person(0)), 0.0)
    tracker.update(*NOBODY, 0.25)
    (again,) = tracker.update(*_frame(_person(5)), 0.5)  # unseen for exactly max_age_s: kept
    assert again == first
    tracker.update(*NOBODY, 0.75)
    (new,) = tracker.update(*_frame(_person(5)), 1.25)  # unseen for 0.75 s: forgotten
    assert new != first and new > first
    (other,) = tracker.update(*_frame(_person(900)), 1.5)
    assert other not in (first, new)


def test_age_is_measured_in_seconds_not_frames() -> None:
    """A fast camera's many empty frames within ``max_age_s`` keep the id; one frame after a
    long gap (a slow camera, a dropped stream) does not."""
    tracker = Tracker(max_age_s=0.5)
    (first,) = tracker.update(*_frame(_person(0)), 0.0)
    for i in range(1, 40):
        tracker.update(*NOBODY, i * 0.01)
    (again,) = tracker.update(*_frame(_person(4)), 0.4)
    assert again == first
    (later,) = tracker.update(*_frame(_person(8)), 2.0)  # the very next frame, 1.6 s later
    assert later != first


def test_max_age_can_change_between_frames() -> None:
    """What ``Pose3DPipeline.update(track_max_age_s=...)`` does: the next frame uses the new age."""
    tracker = Tracker(max_age_s=0.25)
    (first,) = tracker.update(*_frame(_person(0)), 0.0)
    tracker.max_age_s = 2.0
    (again,) = tracker.update(*_frame(_person(3)), 1.0)
    assert again == first


def test_time_going_backwards_starts_afresh() -> None:
    """A replayed bag or a looping video: tracks from the 'future' are dropped, ids keep counting."""
    tracker = Tracker(max_age_s=1.0)
    ids = tracker.update(*_frame(_person(0), _person(300)), 100.0)
    same = tracker.update(*_frame(_person(0), _person(300)), 100.0)  # the same stamp is not going back
    assert same.tolist() == ids.tolist()
    replay = tracker.update(*_frame(_person(0), _person(300)), 10.0)
    assert sorted(replay.tolist()) == [3, 4]
    # The new timeline then tracks as usual.
    assert tracker.update(*_frame(_person(5), _person(305)), 10.1).tolist() == replay.tolist()


def test_reset_forgets_tracks_but_not_the_counter() -> None:
    tracker = Tracker()
    ids = tracker.update(*_frame(_person(0), _person(300)), 0.0)
    tracker.reset()
    assert sorted(tracker.update(*_frame(_person(0), _person(300)), 0.1).tolist()) == [i + 2 for i in sorted(ids)]


def test_keypoints_resolve_overlapping_boxes() -> None:
    """Two people with the same box (one behind the other): the keypoints decide."""
    box = np.array([0.0, 0.0, 100.0, 200.0])
    kp_a = np.column_stack([np.linspace(10, 40, 17), np.linspace(10, 190, 17), np.ones(17)])
    kp_b = np.column_stack([np.linspace(60, 90, 17), np.linspace(10, 190, 17), np.ones(17)])
    tracker = Tracker()
    ids0 = tracker.update(np.stack([box, box]), np.stack([kp_a, kp_b]), 0.0)
    ids1 = tracker.update(np.stack([box, box]), np.stack([kp_b, kp_a]), 0.1)
    assert ids1.tolist() == ids0[::-1].tolist()


def test_works_without_keypoints() -> None:
    tracker = Tracker()
    a = tracker.update(np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), None, 0.0)
    b = tracker.update(np.array([[51, 50, 61, 60], [1, 0, 11, 10]]), None, 0.1)
    assert b.tolist() == a[::-1].tolist()


def test_no_people_gives_no_ids() -> None:
    ids = Tracker().update(*NOBODY, 0.0)
    assert ids.shape == (0,) and ids.dtype == np.int64


def test_greedy_assignment_takes_best_pairs_first() -> None:
    score = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert greedy_assignment(score, score > 0.5) == [(0, 0)]
    assert greedy_assignment(score, score > 0.0) == [(0, 0), (1, 1)]
