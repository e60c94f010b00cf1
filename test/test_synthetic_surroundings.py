"""What surrounds the rendered people (engine round 3): rooms, furniture, lights, cast shadows,
fabrics, camera effects, and the image statistics they are matched with. Everything here but
the statistics needs the ``[synth]`` extra (the modules import the renderer); skipped with the
reason otherwise. No rendering: geometry, light arithmetic and image-space effects."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.training.synthetic.image_statistics import image_statistics


@pytest.fixture(scope="module")
def synth(synth_extras):
    from ros2_ctxpose.training.synthetic import appearance, furniture, lighting, render, rooms, scene, shadows

    return {
        "appearance": appearance,
        "furniture": furniture,
        "lighting": lighting,
        "render": render,
        "rooms": rooms,
        "scene": scene,
        "shadows": shadows,
    }


def _looking_along_y(C: np.ndarray) -> np.ndarray:
    """World -> camera rotation of a level camera looking along +y (x right, z up)."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def test_noise_sharpness_and_exposure_statistics() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((480, 640, 3), 120, np.uint8)
    noisy = np.clip(flat + rng.normal(0, 5.0, flat.shape), 0, 255).astype(np.uint8)
    stats = image_statistics(noisy)
    assert 2.5 < stats["noise"] < 5.5, stats  # Immerkaer's estimate over the flattest half: ~0.67 sigma
    quieter = np.clip(flat + rng.normal(0, 2.0, flat.shape), 0, 255).astype(np.uint8)
    assert image_statistics(quieter)["noise"] < stats["noise"]
    assert abs(stats["brightness"] - 120) < 1 and stats["clipped"] == 0.0
    assert image_statistics(flat)["noise"] == 0.0
    import cv2

    texture = np.kron(rng.integers(0, 255, (60, 80, 1)), np.ones((8, 8, 3))).astype(np.uint8)  # sharp blocks
    blurred = cv2.GaussianBlur(texture, (0, 0), 3.0)
    assert image_statistics(blurred)["sharpness"] < image_statistics(texture)["sharpness"]


def test_lamps_hang_under_the_ceiling_and_light_the_people_like_the_sun_would(synth) -> None:
    lighting = synth["lighting"]
    rng = np.random.default_rng(3)
    centre = np.array([2.0, -1.0])
    for _ in range(20):
        lights, ambient = lighting.indoor_lighting(rng, centre, 3.0)
        lamps = [light for light in lights if light.kind != "directional"]
        assert 1 <= len(lamps) <= 4 and 0.1 <= ambient <= 0.35
        total = 0.0
        for lamp in lamps:
            assert lamp.kind in ("point", "spot")
            assert 2.4 <= lamp.position[2] < 3.0
            assert np.linalg.norm(lamp.position[:2] - centre) <= 3.5 + 1e-9
            reach = np.hypot(np.linalg.norm(lamp.position[:2] - centre), lamp.position[2] - 1.3)
            total += lamp.intensity / reach**2  # what reaches a person's chest at the centre
        assert 2.0 <= total <= 4.5
        lights, ambient = lighting.outdoor_lighting(rng)
        assert all(light.kind == "directional" and light.direction[2] < 0 for light in lights)
    sun = lighting.Light(np.array([0.0, 0.0, -1.0]), (255.0, 255.0, 255.0), 3.0)
    lamp = lighting.Light(np.array([0.0, 0.0, -1.0]), (255.0,) * 3, 8.0, kind="point", position=np.zeros(3))
    assert lighting.key_light([lamp, sun]) is sun  # a lamp of 8 gives 2 at 2 m
    assert lighting.key_light([]) is None


def test_a_room_encloses_the_camera_and_the_people_and_faces_inwards(synth) -> None:
    rooms = synth["rooms"]
    C = np.array([0.0, -5.0, 1.2])
    people = np.array([[0.0, 0.0], [1.5, 2.0]])
    for seed in range(5):
        items, ceiling = rooms.room(np.random.default_rng(seed), _looking_along_y(C), C, people)
        assert len(items) == 5 and ceiling > C[2]
        walls, top = items[:4], items[4]
        inside = np.vstack([people, C[:2]])
        for wall in walls:
            v = wall.vertices
            normal = np.cross(v[wall.faces[0, 1]] - v[wall.faces[0, 0]], v[wall.faces[0, 2]] - v[wall.faces[0, 0]])
            # every inside point is on the front side of every wall: the room encloses them
            assert (((np.column_stack([inside, np.full(len(inside), 1.0)]) - v[0]) @ normal) > 0).all()
            assert v[:, 2].min() < 0 and v[:, 2].max() > ceiling  # past the floor and the ceiling
        normal = np.cross(*(top.vertices[top.faces[0, 1:]] - top.vertices[top.faces[0, 0]]))
        assert normal[2] < 0  # the ceiling faces down, at the camera
    texture, metres = rooms.wall_material(np.random.default_rng(1))
    assert texture.dtype == np.uint8 and 2.0 <= metres <= 2.4


def test_furniture_stands_on_the_floor_at_real_sizes(synth) -> None:
    furniture = synth["furniture"]
    rng = np.random.default_rng(5)
    for _ in range(40):
        mesh = furniture.furniture_mesh(rng)
        low, high = mesh.bounds
        assert abs(low[2]) < 1e-9  # on the floor, not in it or above it
        assert 0.4 <= high[2] <= 3.0
        assert max(high[:2] - low[:2]) <= 2.0


def test_the_sun_casts_a_person_shadow_away_from_it_on_a_rendered_floor_only(synth) -> None:
    scene_mod, shadows, render = synth["scene"], synth["shadows"], synth["render"]
    camera = CameraModel.from_fov(640, 480, 70.0)
    C = np.array([0.0, -5.0, 1.6])
    R = _looking_along_y(C)  # level, 1.6 m high: the floor 5 m ahead is in the lower half
    # A person as a 0.4 x 0.3 x 1.7 m block of vertices at the origin.
    grid = np.stack(np.meshgrid([-0.2, 0.2], [-0.15, 0.15], np.linspace(0, 1.7, 8)), -1).reshape(-1, 3)
    from scipy.spatial import ConvexHull

    faces = ConvexHull(grid).simplices
    joints = np.zeros((17, 3))
    person = scene_mod.ScenePerson(0, np.zeros(6), grid, joints, joints, np.zeros((4, 4, 3), np.uint8))
    sun = render.Light(np.array([-1.0, 0.0, -1.0]) / np.sqrt(2), (255.0,) * 3, 3.0)  # from +x, 45 deg high
    background = np.zeros((480, 640, 3), np.uint8)
    scene = scene_mod.Scene(camera, R, C, "virtual", [person], [], [sun], 0.3, background, floor=True)
    image = np.full((480, 640, 3), 200, np.uint8)
    labels = np.full((480, 640), render.NO_PERSON, np.uint8)
    body = camera.project(scene.to_camera(grid))
    x0, y0 = np.floor(body.min(0)).astype(int)
    x1, y1 = np.ceil(body.max(0)).astype(int)
    labels[y0 : y1 + 1, x0 : x1 + 1] = 0
    shaded = shadows.cast_shadows(image, scene, labels, faces, np.arange(len(grid)))
    left = camera.project(scene.to_camera(np.array([[-1.0, 0.0, 0.0]])))[0].round().astype(int)
    right = camera.project(scene.to_camera(np.array([[1.0, 0.0, 0.0]])))[0].round().astype(int)
    assert shaded[left[1], left[0]].max() < 150  # the shadow lies on the side away from the sun
    assert (shaded[right[1], right[0]] == 200).all()  # not towards it
    assert (shaded[labels == 0] == 200).all()  # the person is not darkened
    # as dark as the sun's share of the light on the floor: sun 3 cos45 / pi against ambient 0.3
    share = (3 * np.sqrt(0.5) / np.pi) / (3 * np.sqrt(0.5) / np.pi + 0.3)
    assert shaded[left[1], left[0]].min() == pytest.approx(200 * (1 - 0.85 * share), abs=3)
    outdoors = scene_mod.Scene(camera, R, C, "virtual", [person], [], [sun], 0.3, background, floor=False)
    assert (shadows.cast_shadows(image, outdoors, labels, faces, np.arange(len(grid))) == 200).all()


def test_fabrics_crease_and_weave(synth) -> None:
    appearance = synth["appearance"]
    size = 128
    u = np.broadcast_to(np.arange(size, dtype=np.float32) / size * 4.0, (size, size))
    v = np.broadcast_to((np.arange(size, dtype=np.float32) / size * 3.0)[:, None], (size, size))
    for fabric in appearance.FABRICS:
        g = appearance.Garment(np.full(3, 100.0), np.full(3, 50.0), "solid", 0.1, fabric, 0.2)
        shade = appearance._fabric(g, u, v, np.random.default_rng(0))
        assert shade.shape == (size, size) and shade.dtype == np.float32
        assert 0.5 < shade.min() < 0.95 and shade.max() < 1.5  # creases darken, nothing goes wild
        np.testing.assert_array_equal(shade, appearance._fabric(g, u, v, np.random.default_rng(0)))


def test_camera_effects_darken_on_average_and_are_seeded(synth) -> None:
    render = synth["render"]
    rng = np.random.default_rng(0)
    image = rng.integers(100, 160, (120, 160, 3)).astype(np.uint8)
    out = [render.camera_effects(image, np.random.default_rng(seed)) for seed in range(40)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in out)
    ratio = np.median([o.mean() / image.mean() for o in out])
    assert 0.65 < ratio < 0.95, ratio  # exposure log-uniform in 0.5-1.3: median about 0.8
    np.testing.assert_array_equal(out[3], render.camera_effects(image, np.random.default_rng(3)))
