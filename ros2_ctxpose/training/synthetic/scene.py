"""One image's scene: who stands where, in which pose and clothes, seen by which camera, under
which light, in front of what.

What a robot sees, as far as rendering on a CPU allows: 1-4 people (mocap poses from the pose
library, random adult bodies and outfits) standing on a floor, some next to each other so that they
overlap, some cut by the image border, seated ones on a box (the mocap's chair is not in it); now
and then furniture between them and the camera (``furniture``). Indoors (``INDOOR_PROBABILITY``)
they stand in a room (``rooms``: floor, walls, ceiling) under lamps; outdoors on a floor at metric
scale (``floors``) or the photograph's own ground, under sun or overcast sky (``lighting``). Three quarters
of the cameras come from ``virtual_camera`` (robot mounts of :data:`ROBOT_MOUNTS`, 0.25-2.8 m high,
1-10 m away, pitch, 50-110 degree lenses, off-centre principal point; 640x480 or 1280x720), the
rest are the real Human3.6M cameras (1000x1002, their intrinsics and distortion), looking at the
mocap subject where it stood, so the real geometry of the validation images is covered too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import trimesh

from ros2_ctxpose.core.camera import CameraModel
from ros2_ctxpose.training.h36m import H36MCamera
from ros2_ctxpose.training.virtual_camera import VirtualCameraRanges, sample_virtual_cameras

from .appearance import TexelCoordinates, paint_texture, sample_outfit
from .backgrounds import random_crop
from .body import BodyModel, dominant_bone_vertices, pose_bodies, sample_phenotypes
from .body_segments import bone_segments
from .floors import floor_material
from .furniture import furniture_mesh
from .lighting import indoor_lighting, outdoor_lighting
from .pose_library import PoseLibrary
from .render import Light, MeshItem, RenderJob
from .rooms import room

PEOPLE_PER_IMAGE = (1, 2, 3, 4)
PEOPLE_PROBABILITIES = (0.35, 0.3, 0.2, 0.15)
H36M_CAMERA_PROBABILITY = 0.25
#: Image size of each virtual-camera aspect ratio (VirtualCameraRanges.aspect).
VIRTUAL_SIZES = {4 / 3: (640, 480), 16 / 9: (1280, 720)}
#: People keep at least this far apart (pelvis to pelvis, on the floor), so bodies do not
#: interpenetrate; "near" placements put them just beyond it, where they overlap in the image.
MIN_SEPARATION_M = 0.6
#: Shares of scenes in a room, and of outdoor scenes with a rendered floor (else the photograph's
#: own ground is under the feet).
INDOOR_PROBABILITY = 0.45
FLOOR_PROBABILITY = 0.6
#: Where robots carry their cameras: (examples, height above the floor in m, largest pitch in
#: degrees, share of the virtual cameras). Heights are approximate, from the makers' published
#: dimensions: small mobile bases and quadrupeds (TurtleBot 4's OAK-D ~0.3 m, Spot's body
#: cameras ~0.5 m) look up at people; service robots' heads (Pepper ~1.15 m, TIAGo and Fetch
#: ~1.1-1.5 m, Stretch ~1.3 m) look level or down; tall robots and fixed cameras on masts or
#: ceilings look down steeply. (The uniform 0.3-2.5 m of ``virtual_camera`` before.)
ROBOT_MOUNTS = (
    ("mobile base, quadruped", (0.25, 0.6), 25.0, 0.3),
    ("service robot head", (1.0, 1.5), 35.0, 0.45),
    ("tall robot, mast or ceiling camera", (1.8, 2.8), 50.0, 0.25),
)
_MOUNT_WEIGHTS = [m[3] for m in ROBOT_MOUNTS]


@dataclass
class Assets:
    """What every scene draws from, loaded once per worker."""

    body: BodyModel
    library: PoseLibrary
    texels: TexelCoordinates
    backgrounds: list[np.ndarray]  # BGR photographs
    h36m_cameras: dict[str, H36MCamera]
    segments: torch.Tensor  # bone -> segment
    seat_vertices: np.ndarray  # the buttocks and thighs, which rest on a seat


@dataclass
class ScenePerson:
    pose_index: int
    phenotype: np.ndarray  # (6,)
    vertices: np.ndarray  # (V, 3) world, every Anny vertex
    joints_world: np.ndarray  # (17, 3) H36M-17, the mapping of this body
    coco_world: np.ndarray  # (17, 3) Anny's COCO-17 keypoints of this body
    texture: np.ndarray  # RGB uint8


@dataclass
class Scene:
    camera: CameraModel
    R: np.ndarray  # world -> camera
    C: np.ndarray
    camera_name: str  # "virtual" or the H36M key "S1/54138969"
    people: list[ScenePerson]
    objects: list[MeshItem]
    lights: list[Light]
    ambient: float
    background: np.ndarray  # BGR, the camera's size
    #: A rendered floor at z = 0 (room or outdoor floor): cast shadows have something to fall on.
    floor: bool = False

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        return (np.asarray(points_world, np.float64) - self.C) @ self.R.T


def _yaw(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def _virtual_camera(joints_world: np.ndarray, rng: np.random.Generator) -> tuple[CameraModel, np.ndarray, np.ndarray]:
    """A robot's camera looking at the person: a mount of :data:`ROBOT_MOUNTS`, then distance,
    azimuth, lens and aim as ``virtual_camera`` draws them."""
    _, (low, high), max_pitch, _ = ROBOT_MOUNTS[int(rng.choice(len(ROBOT_MOUNTS), p=_MOUNT_WEIGHTS))]
    ranges = VirtualCameraRanges(height_m=(low, high), max_pitch_deg=max_pitch)
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    _, cams = sample_virtual_cameras(torch.as_tensor(joints_world, dtype=torch.float32)[None], ranges, generator=g)
    x0, y0, x1, y1 = cams.bounds[0].double().numpy()
    aspect = (x1 - x0) / (y1 - y0)
    W, H = VIRTUAL_SIZES[min(VIRTUAL_SIZES, key=lambda a: abs(a - aspect))]
    fx, fy = W / (x1 - x0), H / (y1 - y0)
    K = np.array([[fx, 0.0, -x0 * fx - 0.5], [0.0, fy, -y0 * fy - 0.5], [0.0, 0.0, 1.0]])
    return CameraModel(K=K, width=W, height=H), cams.R[0].double().numpy(), cams.C[0].double().numpy()


def _ground_point_in_view(
    camera: CameraModel, R: np.ndarray, C: np.ndarray, rng: np.random.Generator, depth: tuple[float, float]
) -> np.ndarray:
    """A floor point (x, y) at a random depth and a random column of the image."""
    u = rng.uniform(0.05, 0.95) * camera.width
    x_n = (u - camera.K[0, 2]) / camera.K[0, 0]
    d = rng.uniform(*depth)
    return (R.T @ np.array([x_n * d, 0.0, d]) + C)[:2]


def _place_near(main: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Just beyond arm's length from the main person: the two overlap in most views."""
    a = rng.uniform(0, 2 * math.pi)
    return main + rng.uniform(MIN_SEPARATION_M, 1.3) * np.array([math.cos(a), math.sin(a)])


def sample_scene(assets: Assets, rng: np.random.Generator) -> Scene:
    """Draw one scene (deterministic given ``rng``'s state)."""
    lib, body = assets.library, assets.body
    n = int(rng.choice(PEOPLE_PER_IMAGE, p=PEOPLE_PROBABILITIES))
    poses = rng.choice(np.flatnonzero(lib.keep), n)
    phenotypes = sample_phenotypes(body, n, int(rng.integers(2**31)))
    rotations = lib.rotations[poses].astype(np.float64)
    use_h36m = rng.random() < H36M_CAMERA_PROBABILITY
    # Everyone but an H36M camera's subject turns to a random heading.
    yaw = rng.uniform(0, 2 * math.pi, n)
    if use_h36m:
        yaw[0] = 0.0
    rotations = _yaw(yaw)[:, None] @ rotations
    with torch.no_grad():
        vertices = (
            pose_bodies(
                body, phenotypes, torch.as_tensor(rotations, dtype=torch.float32)[:, assets.segments], torch.zeros(n, 3)
            )
            .double()
            .numpy()
        )
    joints = lib.regressor.apply(vertices)
    rendered = body.render_topology.vertex_ids

    def put(k: int, xy: np.ndarray) -> None:
        shift = np.array([*(xy - joints[k, 0, :2]), -vertices[k, rendered, 2].min() - rng.uniform(0.0, 0.01)])
        vertices[k] += shift
        joints[k] += shift

    if use_h36m:
        subject = lib.sequences[lib.sequence[poses[0]]].split("/")[0]
        keys = [key for key in assets.h36m_cameras if key.split("/")[0] == subject]
        cam_key = keys[rng.integers(len(keys))]
        h36m = assets.h36m_cameras[cam_key]
        put(0, lib.pelvis[poses[0], :2].astype(np.float64))  # where the subject stood
        camera, R, C, camera_name = h36m.model, h36m.R.T, h36m.T, cam_key
    else:
        put(0, np.zeros(2))
        camera, R, C = _virtual_camera(joints[0], rng)
        camera_name = "virtual"
    placed = [joints[0, 0, :2].copy()]
    keep = [0]
    for k in range(1, n):
        near = rng.random() < 0.35
        for _ in range(12):  # a free spot, MIN_SEPARATION_M from everyone placed
            xy = _place_near(placed[0], rng) if near else _ground_point_in_view(camera, R, C, rng, (1.5, 9.0))
            if all(np.linalg.norm(xy - p) >= MIN_SEPARATION_M for p in placed):
                put(k, xy)
                placed.append(xy)
                keep.append(k)
                break
    coco = np.einsum("jv,nvd->njd", assets.body.coco_regressor.double().numpy(), vertices)
    people = [
        ScenePerson(
            int(poses[k]),
            phenotypes[k].numpy(),
            vertices[k].astype(np.float32),
            joints[k].astype(np.float32),
            coco[k].astype(np.float32),
            paint_texture(assets.texels, sample_outfit(rng), rng),
        )
        for k in keep
    ]
    background = random_crop(assets.backgrounds, rng, camera.width, camera.height)
    centre = people[0].joints_world[0, :2].astype(np.float64)
    objects, floor = [], rng.random() < FLOOR_PROBABILITY
    if rng.random() < INDOOR_PROBABILITY:
        walls, ceiling = room(rng, R, C, np.array([p.joints_world[0, :2] for p in people], np.float64))
        objects, floor = walls, True
        lights, ambient = indoor_lighting(rng, centre, ceiling)
    else:
        lights, ambient = outdoor_lighting(rng)
    if floor:  # furniture needs a rendered floor to stand on (the photograph's ground is anywhere)
        objects += [_floor(rng, centre), *_furniture(rng, people, C, background)]
    objects += _seats(assets, people, rng)
    return Scene(camera, R, C, camera_name, people, objects, lights, ambient, background, floor)


def sample_views(assets: Assets, scene: Scene, rng: np.random.Generator, count: int) -> list[Scene]:
    """``scene`` and ``count - 1`` more cameras on the same instant (same people, objects and
    light), as a multi-camera rig or several robots see it. A Human3.6M scene takes other
    cameras of that subject's studio (real multi-view geometry); a virtual one draws more robot
    cameras and turns each about the main person's pelvis so the views spread around them (view
    ``k`` about ``k / count`` of a turn from view 0). Each view has its own photograph behind.
    Draws nothing from ``rng`` when ``count`` is 1."""
    if count < 1:
        raise ValueError(f"views must be at least 1, got {count}")
    if scene.camera_name != "virtual":
        subject = scene.camera_name.split("/")[0]
        others = sorted(k for k in assets.h36m_cameras if k.split("/")[0] == subject and k != scene.camera_name)
        if count - 1 > len(others):
            raise ValueError(f"{subject} has {len(others) + 1} cameras; cannot make {count} views")
        picked = [assets.h36m_cameras[k] for k in rng.choice(others, count - 1, replace=False)] if count > 1 else []
        cameras = [(h.model, h.R.T, h.T, h.name) for h in picked]
    else:
        pelvis = scene.people[0].joints_world[0].astype(np.float64)
        azimuth0 = math.atan2(*(scene.C[:2] - pelvis[:2])[::-1])
        cameras = []
        for k in range(1, count):
            camera, R, C = _virtual_camera(scene.people[0].joints_world, rng)
            target = azimuth0 + 2 * math.pi * (k + rng.uniform(-0.25, 0.25)) / count
            turn = _yaw(np.array(target - math.atan2(*(C[:2] - pelvis[:2])[::-1])))
            # The draw's geometry relative to the pelvis is kept: X_cam = R Turn^T (X - C').
            cameras.append((camera, R @ turn.T, pelvis + turn @ (C - pelvis), "virtual"))
    return [scene] + [
        replace(
            scene,
            camera=camera,
            R=R,
            C=C,
            camera_name=name,
            background=random_crop(assets.backgrounds, rng, camera.width, camera.height),
        )
        for camera, R, C, name in cameras
    ]


def _floor(rng: np.random.Generator, centre: np.ndarray, size: float = 40.0) -> MeshItem:
    texture, metres = floor_material(rng)
    corners = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float64) * size / 2
    corners[:, :2] += centre
    return MeshItem(
        corners, np.array([[0, 1, 2], [0, 2, 3]]), uv=corners[:, :2] / metres, texture=texture, roughness=0.95
    )


def _seats(assets: Assets, people: list[ScenePerson], rng: np.random.Generator) -> list[MeshItem]:
    """A seat under every seated person."""
    return [seat for person in people if (seat := _seat(assets, person, rng)) is not None]


def _furniture(
    rng: np.random.Generator, people: list[ScenePerson], C: np.ndarray, background: np.ndarray
) -> list[MeshItem]:
    """Up to two pieces of furniture between the camera and the people."""
    objects = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15]))):
        person = people[rng.integers(len(people))].joints_world[0, :2].astype(np.float64)
        xy = C[:2] + rng.uniform(0.35, 0.85) * (person - C[:2]) + rng.normal(0.0, 0.25, 2)
        mesh = furniture_mesh(rng)
        mesh.apply_translation((xy[0], xy[1], 0.0))
        colour = (
            tuple(
                background[rng.integers(background.shape[0]), rng.integers(background.shape[1])][::-1].astype(float)
                * rng.uniform(0.6, 1.2)
            )
            if rng.random() < 0.5
            else tuple(rng.uniform(30, 230, 3))
        )
        objects.append(
            MeshItem(
                np.asarray(mesh.vertices), np.asarray(mesh.faces), colour=colour, roughness=float(rng.uniform(0.4, 1.0))
            )
        )
    return objects


def _seat(assets: Assets, person: ScenePerson, rng: np.random.Generator) -> MeshItem | None:
    """A stool or box under a seated person: Human3.6M's actors sit on a chair that the mocap does
    not show, and a body sitting on air looks like no real photograph. Seated: the buttocks and
    thighs are off the floor, below 0.7 m, with the knees about as high as the hips."""
    pts = person.vertices[assets.seat_vertices].astype(np.float64)
    j = person.joints_world
    bottom = pts[:, 2].min()
    knees_level = abs(0.5 * (j[2, 2] + j[5, 2]) - j[0, 2]) < 0.2
    if not (0.2 < bottom < 0.7 and knees_level):
        return None
    under = pts[pts[:, 2] < bottom + 0.05]
    lateral = j[4, :2] - j[1, :2]  # right hip -> left hip
    yaw = math.atan2(lateral[1], lateral[0])
    width, depth = rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.5)
    mesh = trimesh.creation.box(extents=(width, depth, bottom))
    mesh.apply_transform(trimesh.transformations.rotation_matrix(yaw, (0, 0, 1)))
    mesh.apply_translation((*under[:, :2].mean(0), bottom / 2))
    return MeshItem(
        np.asarray(mesh.vertices),
        np.asarray(mesh.faces),
        colour=tuple(rng.uniform(30, 200, 3)),
        roughness=float(rng.uniform(0.5, 1.0)),
    )


def render_job(scene: Scene, body: BodyModel) -> RenderJob:
    topo = body.render_topology
    people = [
        MeshItem(p.vertices[topo.vertex_ids], topo.faces, uv=topo.uv, texture=p.texture, roughness=0.8)
        for p in scene.people
    ]
    return RenderJob(scene.camera, scene.R, scene.C, people, scene.objects, scene.lights, scene.ambient)


def build_assets(
    body: BodyModel,
    library: PoseLibrary,
    texels: TexelCoordinates,
    backgrounds: list[np.ndarray],
    h36m_cameras: dict[str, H36MCamera],
) -> Assets:
    return Assets(
        body,
        library,
        texels,
        backgrounds,
        h36m_cameras,
        torch.as_tensor(bone_segments(body)),
        dominant_bone_vertices(body, ("root", "pelvis", "upperleg01")),
    )
