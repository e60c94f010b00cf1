"""Offscreen rendering of a scene with pyrender, and what a real camera does to the picture.

OSMesa renders on the CPU (``PYOPENGL_PLATFORM=osmesa``, the default here); on a GPU machine set
``PYOPENGL_PLATFORM=egl`` before starting. Cameras are OpenCV-style (x right, y down, z forward,
pixel centres at integer coordinates); pyrender's are OpenGL-style, so the pose is flipped and
the principal point shifted by half a pixel. Lens distortion (the Human3.6M cameras) is applied
after rendering by remapping the pinhole image, so the targets, projected with the same
``CameraModel``, land where the pixels are.

Besides the colour image every render gives a label image (which person, or an object, is seen at
each pixel) and each person's unoccluded silhouette, from which visibility and occlusion follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ros2_ctxpose.core.camera import CameraModel

from .dependencies import set_default_gl_platform

set_default_gl_platform()

import pyrender  # noqa: E402  (the GL platform must be chosen first)
import trimesh  # noqa: E402

#: Label of pixels showing no person (background, floor, occluders) in the label image.
NO_PERSON = 255
_OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])


@dataclass
class MeshItem:
    """One thing to draw: vertices ``(V, 3)`` world, faces ``(F, 3)``, and either a texture
    (``uv`` ``(V, 2)`` + ``texture`` RGB uint8) or a flat ``colour`` (RGB 0-255)."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    colour: tuple[float, float, float] = (200.0, 200.0, 200.0)
    roughness: float = 0.8


@dataclass
class Light:
    """A sun-like ``directional`` light, or a lamp at ``position``: a ``point`` light shining all
    round or a ``spot`` shining along ``direction`` within ``cone_deg``. A lamp's ``intensity`` is
    what a directional light of the same effect would have at 1 m (pyrender divides by the squared
    distance)."""

    direction: np.ndarray  # world, the way the light travels
    colour: tuple[float, float, float]
    intensity: float
    kind: str = "directional"
    position: np.ndarray | None = None
    cone_deg: float = 45.0


@dataclass
class RenderJob:
    camera: CameraModel
    R: np.ndarray  # (3, 3) world -> camera (rows: camera axes in world)
    C: np.ndarray  # (3,) camera centre, world
    people: list[MeshItem]
    objects: list[MeshItem] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    ambient: float = 0.4


@dataclass
class RenderResult:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) float32 coverage: 1 where something was drawn, else 0
    labels: np.ndarray  # (H, W) uint8: person index, or NO_PERSON
    silhouettes: list[np.ndarray]  # per person (H, W) bool, as if alone in the scene


def _material(item: MeshItem) -> pyrender.MetallicRoughnessMaterial:
    if item.texture is not None:
        texture = pyrender.Texture(
            source=item.texture, source_channels="RGB", sampler=pyrender.Sampler(magFilter=9729, minFilter=9987)
        )  # linear, mipmaps
        return pyrender.MetallicRoughnessMaterial(
            baseColorTexture=texture, metallicFactor=0.0, roughnessFactor=item.roughness
        )
    return pyrender.MetallicRoughnessMaterial(
        baseColorFactor=(*np.asarray(item.colour) / 255.0, 1.0), metallicFactor=0.0, roughnessFactor=item.roughness
    )


def _mesh(item: MeshItem) -> pyrender.Mesh:
    mesh = trimesh.Trimesh(
        item.vertices,
        item.faces,
        process=False,
        visual=trimesh.visual.TextureVisuals(uv=item.uv) if item.uv is not None else None,
    )
    return pyrender.Mesh.from_trimesh(mesh, material=_material(item), smooth=True)


class _Node(pyrender.Node):
    """A node whose hash is its place in the scene (the order it was added in). pyrender keeps a
    scene's lights and meshes in sets and iterates them in set order (lights are summed, meshes
    drawn, in that order); with the default hash, the object's address, that order changed from
    run to run, and with it pixels where two surfaces meet at equal depth or several lights add
    up: the same seed gave a different image. Equality stays identity."""

    def __init__(self, order: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._order = order

    def __hash__(self) -> int:
        return self._order

    def __eq__(self, other: object) -> bool:
        return self is other


def _add(scene: pyrender.Scene, obj: object, pose: np.ndarray | None = None) -> pyrender.Node:
    """Add a camera, light or mesh to ``scene`` in a :class:`_Node` numbered in adding order."""
    kind = {pyrender.Mesh: "mesh", pyrender.light.Light: "light", pyrender.camera.Camera: "camera"}
    field = next(name for cls, name in kind.items() if isinstance(obj, cls))
    node = _Node(len(scene.nodes), **{field: obj, "matrix": np.eye(4) if pose is None else pose})
    scene.add_node(node)
    return node


def _pyrender_light(light: Light) -> pyrender.light.Light:
    colour = np.asarray(light.colour) / 255.0
    if light.kind == "directional":
        return pyrender.DirectionalLight(color=colour, intensity=light.intensity)
    if light.kind == "point":
        return pyrender.PointLight(color=colour, intensity=light.intensity)
    if light.kind == "spot":
        cone = np.radians(light.cone_deg)
        return pyrender.SpotLight(
            color=colour, intensity=light.intensity, innerConeAngle=0.5 * cone, outerConeAngle=cone
        )
    raise ValueError(f"unknown light kind {light.kind!r}")


def _light_pose(direction: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
    """A pose at ``position`` whose -z axis points along ``direction`` (pyrender lights shine
    down their -z)."""
    z = -np.asarray(direction, np.float64)
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 0.0, 1.0] if abs(z[2]) < 0.99 else [1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
    if position is not None:
        pose[:3, 3] = position
    return pose


class Renderer:
    """Reuses one offscreen context per image size (creating one costs more than a render).

    OSMesa keeps ~20 MB per rendered scene that pyrender's own clean-up does not return (measured:
    a worker grew to 10 GB over ~500 images); deleting the contexts returns all of it, so callers
    ``reset`` now and then (the generator does once per shard).
    """

    def __init__(self) -> None:
        self._contexts: dict[tuple[int, int], pyrender.OffscreenRenderer] = {}

    def reset(self) -> None:
        """Delete every offscreen context, and with them what OSMesa held on to."""
        for context in self._contexts.values():
            context.delete()
        self._contexts.clear()

    def _context(self, width: int, height: int) -> pyrender.OffscreenRenderer:
        key = (width, height)
        if key not in self._contexts:
            self._contexts[key] = pyrender.OffscreenRenderer(width, height)
        return self._contexts[key]

    def render(self, job: RenderJob) -> RenderResult:
        cam = job.camera
        K = cam.K
        W, H, margin = cam.width, cam.height, 0
        if cam.has_distortion:
            # A distorted image sees past the pinhole image of the same K (barrel distortion):
            # render the pinhole image with a margin wide enough for every pixel the remap reads.
            mx, my = _distortion_maps(K.tobytes(), cam.dist.tobytes(), W, H)
            overflow = max(-mx.min(), -my.min(), mx.max() - (W - 1), my.max() - (H - 1), 0.0)
            margin = int(np.ceil(overflow)) + 2
            W, H = W + 2 * margin, H + 2 * margin
        scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(job.ambient,) * 3)
        # OpenGL pixel centres sit at +0.5: shift the principal point so both conventions agree.
        cx, cy = K[0, 2] + margin + 0.5, K[1, 2] + margin + 0.5
        camera = pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], cx, cy, znear=0.05, zfar=200.0)
        pose = np.eye(4)
        pose[:3, :3] = np.asarray(job.R).T @ _OPENCV_TO_OPENGL
        pose[:3, 3] = job.C
        _add(scene, camera, pose)
        for light in job.lights:
            _add(scene, _pyrender_light(light), _light_pose(light.direction, light.position))
        nodes = [_add(scene, _mesh(item)) for item in job.people + job.objects]
        person_nodes, object_nodes = nodes[: len(job.people)], nodes[len(job.people) :]
        ctx = self._context(W, H)
        rgb, _ = ctx.render(scene)  # OSMesa has no framebuffer objects, so no alpha channel
        # Segmentation colours: person i -> i + 1, objects -> 255, nothing -> 0.
        seg_map = {node: (i + 1,) * 3 for i, node in enumerate(person_nodes)}
        seg_map.update({node: (255,) * 3 for node in object_nodes})
        seg, _ = ctx.render(scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_map)
        seg = seg[..., 0].astype(np.int16)
        labels = np.where((seg > 0) & (seg < 255), seg - 1, NO_PERSON).astype(np.uint8)
        silhouettes = []
        for node in person_nodes:
            for other in person_nodes + object_nodes:
                other.mesh.is_visible = other is node
            silhouettes.append(ctx.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY) > 0)
        rgb, alpha = rgb[..., :3].copy(), (seg > 0).astype(np.float32)
        if cam.has_distortion:
            mx, my = mx + margin, my + margin
            rgb = cv2.remap(rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            alpha = cv2.remap(alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            labels = cv2.remap(labels, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=NO_PERSON)
            silhouettes = [cv2.remap(s.astype(np.uint8), mx, my, cv2.INTER_NEAREST) > 0 for s in silhouettes]
        return RenderResult(rgb, alpha, labels, silhouettes)


@lru_cache(maxsize=32)
def _distortion_maps(K_bytes: bytes, dist_bytes: bytes, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of the distorted image, where to read the pinhole render: the undistorted
    pixel of its position (one ``undistortPoints`` of the whole grid, cached per camera)."""
    K = np.frombuffer(K_bytes).reshape(3, 3)
    dist = np.frombuffer(dist_bytes)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    grid = np.stack([u.ravel(), v.ravel()], -1).reshape(-1, 1, 2)
    undist = cv2.undistortPoints(grid, K, dist, P=K).reshape(height, width, 2).astype(np.float32)
    return undist[..., 0].copy(), undist[..., 1].copy()


def composite(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """A rendered ``image`` over a ``background`` (same channel order, uint8), by coverage ``alpha``."""
    a = alpha[..., None]
    return (image.astype(np.float32) * a + background.astype(np.float32) * (1.0 - a)).astype(np.uint8)


def camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a real camera adds: defocus, motion blur or a soft (rescaled) image, exposure, gamma
    and white balance, sensor noise, and JPEG compression, once or twice as streams re-encode
    (BGR uint8 in and out).

    The ranges follow ``image_statistics`` on real footage (../shared's S11 clip and annotated
    frames, the demo video): real frames are 61-126 grey levels bright on average (indoor studio
    footage dark), renders lit to the same lights were ~125; the exposure is therefore drawn
    log-uniform in x0.5-1.3, so most renders are darker than the frame buffer."""
    img = image
    r = rng.random()
    if r < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.5))
    elif r < 0.4:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (length, length)))
    elif r < 0.6:  # a camera or stream that works at a lower resolution than it delivers
        h, w = img.shape[:2]
        factor = rng.uniform(1.2, 2.0)
        small = cv2.resize(img, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # Exposure, per-channel gain (white balance) and gamma as one lookup table per channel.
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    gain = np.exp(rng.uniform(np.log(0.5), np.log(1.3)))
    curve = np.clip(levels * gain * rng.uniform(0.92, 1.08, 3), 0, 1) ** rng.uniform(0.8, 1.25)
    img = cv2.LUT(img, np.round(255.0 * curve).astype(np.uint8).reshape(256, 1, 3))
    sigma = rng.uniform(0.0, 6.0)
    if sigma > 0.5:
        noise = rng.standard_normal(img.shape, dtype=np.float32) * sigma
        img = cv2.add(img, noise, dtype=cv2.CV_8U)
    for _ in range(2 if rng.random() < 0.3 else 1):
        _, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 96))])
        img = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    return img
