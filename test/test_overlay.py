"""``draw_people``: each person coloured and labelled by their track id, only what the detector saw."""

from __future__ import annotations

import numpy as np

from ros2_ctxpose.core.overlay import colour_for, draw_people
from ros2_ctxpose.core.results import ROOT_FROM_INTRINSICS, Person3D

WHITE = (255, 255, 255)


def _person(track_id: int, x0: float, conf: float = 0.9) -> Person3D:
    """A person whose keypoints lie on a vertical line inside a 60 x 200 box at ``x0``."""
    kp = np.column_stack([np.full(17, x0 + 30.0), np.linspace(70, 230, 17), np.full(17, conf)])
    joints = np.zeros((17, 3)) + [0.0, 0.0, 3.0]
    return Person3D(
        track_id=track_id,
        score=0.9,
        bbox_xyxy=np.array([x0, 50.0, x0 + 60, 250.0]),
        keypoints_2d=kp,
        joints_3d=joints,
        joints_uv=kp[:, :2],
        joints_conf=np.full(17, conf),
        root=joints[0].copy(),
        root_source=ROOT_FROM_INTRINSICS,
    )


def _has(image: np.ndarray, colour: tuple[int, int, int], region=np.s_[:, :]) -> bool:
    return bool((image[region] == colour).all(axis=-1).any())


def test_colours_follow_the_track_id_not_the_order() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    a, b = _person(3, 40), _person(6, 240)
    drawn = draw_people(image, [a, b])
    swapped = draw_people(image, [b, a])
    np.testing.assert_array_equal(drawn, swapped)  # the same people, whatever their order
    assert colour_for(3) != colour_for(6)
    # Each box's left edge is drawn in its own id's colour.
    assert _has(drawn, colour_for(3), np.s_[100:200, 39:42]) and not _has(drawn, colour_for(6), np.s_[100:200, 39:42])
    assert _has(drawn, colour_for(6), np.s_[100:200, 239:242])
    assert image.max() == 0  # the input is left alone
    assert colour_for(3) == colour_for(3 + 10)  # the palette cycles


def test_unseen_keypoints_are_not_drawn() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    person = _person(1, 100)
    person.keypoints_2d[:, 2] = 0.1
    person.keypoints_2d[8, 2] = 0.9  # one keypoint seen, at (130, 150)
    person.keypoints_2d[12] = [np.nan, np.nan, 0.9]  # broken coordinates are never drawn either
    drawn = draw_people(image, [person], keypoint_threshold=0.3)
    assert _has(drawn, WHITE, np.s_[147:154, 127:134])  # the seen keypoint's dot
    assert not _has(drawn, WHITE, np.s_[60:145, 110:150]) and not _has(drawn, WHITE, np.s_[156:240, 110:150])
    everything = draw_people(image, [person], keypoint_threshold=0.0)
    assert _has(everything, WHITE, np.s_[60:145, 110:150])


def test_grey_images_are_drawn_in_colour() -> None:
    drawn = draw_people(np.zeros((300, 400), np.uint8), [_person(2, 40)])
    assert drawn.shape == (300, 400, 3) and _has(drawn, colour_for(2))
