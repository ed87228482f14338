"""A tiny numpy ray caster: random scenes (textured planes, boxes, spheres) with their exact depth maps.

Why: monocular depth needs images with *exact* ground-truth depth, and nothing may be downloaded.
Each scene is a ground plane, a back wall and a few boxes and spheres, seen by a pinhole camera
(focal length ``focal`` in pixels, optical axis along +z). Every surface has a procedural texture
(checkers or stripes of random frequency and colours) and Lambertian shading, so the image carries
the usual monocular cues: perspective of the ground texture, horizon, object size and occlusion.
The depth of a pixel is the z coordinate of the first surface its ray hits (metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Image side in pixels.
SIDE = 32
#: Range of the back wall depth and of the camera height above the ground (metres; a mounted camera).
WALL_RANGE = (7.0, 16.0)
CAMERA_HEIGHT = (1.5, 1.7)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: focal length in pixels and a pitch (radians, positive looks down)."""

    focal: float = 28.0
    pitch: float = 0.3


def _rays(camera: Camera, side: int) -> np.ndarray:
    """Unit-z ray directions (side*side, 3) in world coordinates (y up, z forward)."""
    v, u = np.mgrid[0:side, 0:side].astype(float) + 0.5
    x = (u - side / 2) / camera.focal
    y = -(v - side / 2) / camera.focal
    d = np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)
    c, s = np.cos(camera.pitch), np.sin(camera.pitch)
    rotation = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])  # pitch down about the x axis
    return d @ rotation.T


def _texture(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random procedural texture evaluated at 3D points: colours (N, 3) in [0, 1]."""
    colours = rng.uniform(0.1, 0.95, size=(2, 3))
    frequency = rng.uniform(0.8, 3.0)
    axes = rng.permutation(3)[:2]
    if rng.random() < 0.5:
        pattern = (np.floor(points[:, axes[0]] * frequency) + np.floor(points[:, axes[1]] * frequency)) % 2
    else:
        pattern = (np.floor(points[:, axes[0]] * frequency * 1.5) % 2).astype(float)
    return colours[0] * pattern[:, None] + colours[1] * (1 - pattern[:, None])


def _hit_plane(rays: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Ray parameter t of the plane normal·p = offset (inf where missed or behind)."""
    denominator = rays @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = offset / denominator
    return np.where((t > 1e-6) & np.isfinite(t), t, np.inf)


def _hit_sphere(rays: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.einsum("ij,ij->i", rays, rays)
    b = -2 * rays @ centre
    c = centre @ centre - radius**2
    disc = b * b - 4 * a * c
    t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
    t = np.where(t > 1e-6, t, np.inf)
    normals = rays * t[:, None] - centre
    return t, normals / radius


def _hit_box(rays: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / rays
        t1, t2 = low * inverse, high * inverse
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
    axis = np.nanargmax(np.minimum(t1, t2), axis=1)
    normals = np.zeros_like(rays)
    normals[np.arange(len(rays)), axis] = -np.sign(rays[np.arange(len(rays)), axis])
    return t, normals


def render_scene(
    rng: np.random.Generator, camera: Camera = Camera(), side: int = SIDE
) -> tuple[np.ndarray, np.ndarray]:
    """One random scene: an RGB image (3, side, side) in [0, 1] and its depth map (side, side) in metres."""
    rays = _rays(camera, side)
    height = rng.uniform(*CAMERA_HEIGHT)
    wall = rng.uniform(*WALL_RANGE)
    light = np.array([rng.uniform(-0.5, 0.5), 1.0, -rng.uniform(0.3, 1.0)])
    light /= np.linalg.norm(light)
    surfaces: list[tuple[np.ndarray, np.ndarray]] = [
        (_hit_plane(rays, np.array([0.0, 1.0, 0.0]), -height), np.tile([0.0, 1.0, 0.0], (len(rays), 1))),
        (_hit_plane(rays, np.array([0.0, 0.0, 1.0]), wall), np.tile([0.0, 0.0, -1.0], (len(rays), 1))),
    ]
    for _ in range(rng.integers(1, 5)):
        z = rng.uniform(3.0, wall - 1.5)
        x = rng.uniform(-0.45, 0.45) * z * side / camera.focal
        if rng.random() < 0.5:
            radius = rng.uniform(0.3, 1.2)
            surfaces.append(_hit_sphere(rays, np.array([x, -height + radius, z]), radius))
        else:
            size = rng.uniform(0.4, 1.6, size=3)
            low = np.array([x - size[0] / 2, -height, z - size[2] / 2])
            surfaces.append(_hit_box(rays, low, low + np.array([size[0], size[1] * 1.5, size[2]])))
    ts = np.stack([t for t, _ in surfaces])
    nearest = np.argmin(ts, axis=0)
    t = ts[nearest, np.arange(len(rays))]
    points = rays * t[:, None]
    image = np.zeros((len(rays), 3))
    for index, (_, normals) in enumerate(surfaces):
        mask = nearest == index
        if mask.any():
            shade = 0.3 + 0.7 * np.clip(np.abs(normals[mask] @ light), 0, 1)
            image[mask] = _texture(points[mask], rng) * shade[:, None]
    image += rng.normal(0, 0.01, image.shape)
    depth = points[:, 2]
    return (
        np.clip(image, 0, 1).T.reshape(3, side, side).astype(np.float32),
        depth.reshape(side, side).astype(np.float32),
    )


def render_dataset(
    count: int, seed: int, camera: Camera = Camera(), side: int = SIDE
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scenes from ``seed``: images (count, 3, side, side) and depths (count, side, side)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    pairs = [render_scene(rng, camera, side) for _ in range(count)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
