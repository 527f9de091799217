"""Synthetic scenes: a tiny vectorized ray caster, the embedded default training data.

Each scene: a pinhole camera (random FOV, height, pitch, roll, yaw) above a ground plane, a back
wall (sometimes with sky above it), sometimes a side wall, boxes, spheres and a tilted
rectangle, plus a foreground sphere. Targets are exact:

- ``depth``: planar depth (z along the optical axis) of the first hit of each pixel's ray;
- ``normal``: the analytic surface normal there, camera frame x right, y up, z toward the
  viewer, oriented toward the camera;
- ``alpha``: the foreground sphere's visible coverage (zero where nearer geometry occludes it)
  with an anti-aliased, feathered edge (the 0.5 contour is the exact silhouette); ``rgb`` is the composite ``alpha * fg + (1 - alpha) * bg``
  of the Lambert-shaded, procedurally textured foreground and background renders;
- ``valid_mask``: False only on sky pixels (no surface: depth 0, normal (0, 0, 1)).

``meta`` holds the intrinsics and ``surfaces``: planes as ``(normal, offset)`` with
``normal . p = offset`` and spheres as ``(center, radius)`` in camera coordinates; boxes as
world-frame ``(lo, hi)`` corners with ``p_world = world_from_camera @ p_camera``; so tests can
verify the geometry independently. Deterministic by seed (``numpy.random.default_rng((seed, i))``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .example import BadDataLog, make_example
from .geometry import pixel_rays

SKY_TOP, SKY_BOTTOM = np.array([0.35, 0.55, 0.9]), np.array([0.8, 0.88, 0.97])


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-from-camera rotation: yaw about y, pitch about x (negative = look down), roll about z."""
    cy, sy, cp, sp, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


class _Canvas:
    """Z-buffer over the image: keeps, per pixel, the nearest hit's depth, world normal and albedo."""

    def __init__(self, rays_w: np.ndarray):
        self.rays = rays_w
        shape = rays_w.shape[:2]
        self.t = np.full(shape, np.inf, rays_w.dtype)
        self.normal = np.zeros((*shape, 3), rays_w.dtype)
        self.albedo = np.zeros((*shape, 3), rays_w.dtype)

    def add(self, t, hit, normal, albedo_fn):
        """Keep the hits nearer than the current ones; ``normal``: (3,) or callable(points) -> (n, 3)."""
        idx = np.nonzero(hit & (t > 1e-6) & (t < self.t))
        if not idx[0].size:
            return
        t_new = t[idx]
        points = t_new[:, None] * self.rays[idx]
        self.t[idx] = t_new
        self.normal[idx] = normal(points) if callable(normal) else normal
        self.albedo[idx] = albedo_fn(points)


def _checker(points, axes, period, c1, c2):
    a, b = axes
    parity = (np.floor(points[..., a] / period) + np.floor(points[..., b] / period)) % 2
    return np.where(parity[..., None] > 0, c1, c2)


def _stripes(points, axis, period, c1, c2):
    w = 0.5 + 0.5 * np.sin(2 * np.pi * points[..., axis] / period)
    return c1 * w[..., None] + c2 * (1 - w[..., None])


def _spots(points, freq, c1, c2):
    w = 0.5 + 0.5 * np.sin(freq * points[..., 0]) * np.sin(freq * points[..., 1]) * np.sin(freq * points[..., 2])
    return c1 * w[..., None] + c2 * (1 - w[..., None])


def _plane(canvas, normal, offset, albedo_fn, extent=None):
    """Plane ``normal . p = offset`` (world); ``extent(points) -> bool`` limits it to a patch."""
    denom = canvas.rays @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = offset / denom
    hit = np.abs(denom) > 1e-9
    if extent is not None:
        hit &= extent(np.where(hit, t, 0.0)[..., None] * canvas.rays)
    canvas.add(t, hit, normal, albedo_fn)


def _sphere_hit(rays, center, radius):
    """Nearest positive ``t`` of ray ``t * rays`` hitting the sphere, and the hit mask."""
    a = rays[..., 0] ** 2 + rays[..., 1] ** 2 + rays[..., 2] ** 2
    b = rays @ center
    c = center @ center - radius**2
    disc = b * b - a * c
    hit = disc >= 0
    t = (b - np.sqrt(np.where(hit, disc, 0.0))) / a
    return t, hit & (t > 0)


def _sphere(canvas, center, radius, albedo_fn):
    t, hit = _sphere_hit(canvas.rays, center, radius)
    canvas.add(t, hit, lambda p: (p - center) / radius, albedo_fn)


def _box(canvas, lo, hi, albedo_fn):
    """Axis-aligned box (slab method): entry distance and the normal of the entry face."""
    t_near = np.full(canvas.t.shape, -np.inf)
    t_far = np.full(canvas.t.shape, np.inf)
    for k in range(3):
        d = canvas.rays[..., k]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = lo[k] / d, hi[k] / d
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near = np.maximum(t_near, near)
        t_far = np.minimum(t_far, far)
    hit = (t_near <= t_far) & (t_near > 0)

    def entry_normal(points):
        # the entry face is the one whose slab bound the point lies on
        dist = np.minimum(np.abs(points - lo), np.abs(points - hi))
        k = dist.argmin(-1)
        n = np.zeros_like(points)
        center = (lo + hi) / 2
        n[np.arange(len(k)), k] = np.sign(points[np.arange(len(k)), k] - center[k])
        return n

    canvas.add(t_near, hit, entry_normal, albedo_fn)


@dataclass(frozen=True)
class SceneRanges:
    """The ranges a scene is drawn from: ``(lo, hi)`` of a uniform draw (angles in degrees,
    lengths in metres, world frame: y up, the camera looking along -z), ``*_probability`` of a
    coin, ``(lo, hi)`` of an integer count (``hi`` excluded). Objects stand between
    ``object_near`` and ``wall_distance - object_margin`` in front of the camera."""

    hfov: tuple = (50, 75)
    yaw: tuple = (-15, 15)
    pitch_down: tuple = (0, 15)
    roll: tuple = (-5, 5)
    camera_height: tuple = (1.0, 1.8)
    wall_distance: tuple = (6.0, 14.0)
    color: tuple = (0.15, 0.95)  # albedo of every surface but the foreground sphere
    floor_checker: tuple = (0.3, 1.0)
    sky_probability: float = 0.5
    wall_top: tuple = (1.0, 3.0)  # with sky: the back and side walls' height
    wall_stripes: tuple = (0.2, 0.8)
    side_wall_probability: float = 0.5
    side_wall_distance: tuple = (2.5, 5.0)
    side_wall_stripes: float = 0.5
    object_x: tuple = (-3, 3)
    object_near: float = 3.0
    object_margin: float = 1.0
    boxes: tuple = (1, 4)
    box_half_size: tuple = ((0.2, 0.2, 0.2), (0.8, 0.9, 0.8))  # (lo, hi) of (x, y, z)
    box_checker: tuple = (0.1, 0.4)
    spheres: tuple = (0, 3)
    sphere_radius: tuple = (0.2, 0.7)
    sphere_spots: tuple = (4, 12)
    rectangle_probability: float = 0.5
    rectangle_x: tuple = (-2, 2)
    rectangle_clearance: float = 0.5  # its centre above the floor, at most ``rectangle_top``
    rectangle_top: float = 1.0
    rectangle_half_size: tuple = (0.4, 1.2)
    rectangle_stripes: float = 0.3
    foreground_x: tuple = (-0.3, 0.3)  # centre ray offset, in image widths from the centre
    foreground_y: tuple = (-0.3, 0.2)  # in image heights
    foreground_depth: tuple = (2.0, 4.0)
    foreground_radius: tuple = (0.12, 0.3)  # in image heights at its depth
    foreground_colors: tuple = ((0.3, 1.0), (0.0, 0.6))
    foreground_spots: tuple = (6, 20)
    feather_px: tuple = (1.0, 3.0)
    light_x: tuple = (-0.6, 0.6)  # light direction, camera frame, normalized after drawing
    light_y: tuple = (0.3, 1.0)
    light_z: tuple = (0.2, 1.0)
    ambient: tuple = (0.25, 0.45)


SCENE_RANGES = SceneRanges()


class _Scene:
    """One scene being drawn: the random source, the ranges, the camera, the z-buffer and the
    surfaces recorded in camera coordinates for ``meta``."""

    def __init__(self, rng, ranges: SceneRanges, height: int, width: int):
        self.rng, self.ranges, self.height, self.width = rng, ranges, height, width
        hfov = math.radians(rng.uniform(*ranges.hfov))
        self.f = (width / 2.0) / math.tan(hfov / 2.0)
        self.intrinsics = (self.f, self.f, (width - 1) / 2.0, (height - 1) / 2.0)
        self.R = _rotation(math.radians(rng.uniform(*ranges.yaw)), math.radians(-rng.uniform(*ranges.pitch_down)),
                           math.radians(rng.uniform(*ranges.roll)))
        self.rays_cam = pixel_rays(height, width, self.intrinsics).astype(np.float32)
        self.rays_w = self.rays_cam @ self.R.T  # world direction of each pixel ray; point = depth * ray
        self.canvas = _Canvas(self.rays_w)
        self.cam_h = rng.uniform(*ranges.camera_height)
        self.wall_d = rng.uniform(*ranges.wall_distance)
        self.surfaces: list[dict] = []

    def uniform(self, bounds):
        return self.rng.uniform(*bounds)

    def color(self, bounds=None):
        return _color(self.rng, *(bounds or self.ranges.color))

    def object_depth(self):
        return -self.rng.uniform(self.ranges.object_near, self.wall_d - self.ranges.object_margin)

    def plane(self, n_w, offset, fn, extent=None):
        n_w = np.asarray(n_w, float)
        _plane(self.canvas, n_w, offset, fn, extent)
        self.surfaces.append({"type": "plane", "normal": (self.R.T @ n_w).tolist(), "offset": float(offset)})

    def sphere(self, center, radius, fn):
        _sphere(self.canvas, center, radius, fn)
        self.surfaces.append({"type": "sphere", "center": (self.R.T @ center).tolist(), "radius": float(radius)})

    def box(self, lo, hi, fn):
        _box(self.canvas, lo, hi, fn)
        self.surfaces.append({"type": "box", "lo": lo.tolist(), "hi": hi.tolist()})


def _color(rng, lo=0.15, hi=0.95):
    return rng.uniform(lo, hi, 3)


def _draw_room(scene: _Scene) -> None:
    """Floor, back wall (sky above it or not), maybe a side wall."""
    r, rng = scene.ranges, scene.rng
    c1, c2, period = scene.color(), scene.color(), scene.uniform(r.floor_checker)
    scene.plane([0, 1, 0], -scene.cam_h, lambda p: _checker(p, (0, 2), period, c1, c2))
    sky = rng.random() < r.sky_probability
    wall_top = scene.uniform(r.wall_top) if sky else np.inf
    w1, w2, wp = scene.color(), scene.color(), scene.uniform(r.wall_stripes)
    scene.plane([0, 0, 1], -scene.wall_d, lambda p: _stripes(p, 0, wp, w1, w2), extent=lambda p: p[..., 1] < wall_top)
    if rng.random() < r.side_wall_probability:
        side = rng.choice([-1.0, 1.0])
        sx = scene.uniform(r.side_wall_distance)
        s1, s2 = scene.color(), scene.color()
        scene.plane([-side, 0, 0], -sx, lambda p: _stripes(p, 1, r.side_wall_stripes, s1, s2),
                    extent=lambda p: p[..., 1] < wall_top)


def _draw_objects(scene: _Scene) -> None:
    """Boxes and spheres on the floor, maybe a tilted rectangle."""
    r, rng = scene.ranges, scene.rng
    for _ in range(rng.integers(*r.boxes)):
        half = rng.uniform(*r.box_half_size)
        center = np.array([scene.uniform(r.object_x), -scene.cam_h + half[1], scene.object_depth()])
        b1, b2, bp = scene.color(), scene.color(), scene.uniform(r.box_checker)
        scene.box(center - half, center + half, lambda p, b1=b1, b2=b2, bp=bp: _checker(p, (0, 1), bp, b1, b2))
    for _ in range(rng.integers(*r.spheres)):
        radius = scene.uniform(r.sphere_radius)
        center = np.array([scene.uniform(r.object_x), -scene.cam_h + radius, scene.object_depth()])
        q1, q2, fq = scene.color(), scene.color(), scene.uniform(r.sphere_spots)
        scene.sphere(center, radius, lambda p, q1=q1, q2=q2, fq=fq: _spots(p, fq, q1, q2))
    if rng.random() < r.rectangle_probability:
        n = rng.normal(size=3)
        n[2] = abs(n[2]) + 0.5
        n /= np.linalg.norm(n)
        u = np.cross(n, [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(n, u)
        center = np.array([scene.uniform(r.rectangle_x),
                           rng.uniform(-scene.cam_h + r.rectangle_clearance, r.rectangle_top), scene.object_depth()])
        a, b = rng.uniform(*r.rectangle_half_size, 2)
        t1, t2 = scene.color(), scene.color()
        extent = lambda p, c=center, u=u, v=v, a=a, b=b: (np.abs((p - c) @ u) < a) & (np.abs((p - c) @ v) < b)  # noqa: E731
        scene.plane(n, float(n @ center), lambda p: _stripes(p, 2, r.rectangle_stripes, t1, t2), extent)


def _composite_foreground(scene: _Scene) -> tuple[np.ndarray, np.ndarray, float]:
    """Shade the background, add the foreground sphere with its soft alpha (module docstring);
    returns ``rgb`` (uint8), ``alpha`` and the feather width in pixels."""
    r, canvas, R = scene.ranges, scene.canvas, scene.R
    height, width, f, rays_w = scene.height, scene.width, scene.f, scene.rays_w
    # placed along a random ray near the image centre
    fg_ray = R @ np.array([scene.uniform(r.foreground_x) * width / f, scene.uniform(r.foreground_y) * height / f, -1.0])
    fg_depth = scene.uniform(r.foreground_depth)
    fg_radius = scene.uniform(r.foreground_radius) * fg_depth * height / f
    fg_center = fg_depth * fg_ray
    light = np.array([scene.uniform(r.light_x), scene.uniform(r.light_y), scene.uniform(r.light_z)])
    light /= np.linalg.norm(light)  # camera frame
    ambient = scene.uniform(r.ambient)

    def shade(albedo, normal_cam):
        return albedo * (ambient + (1 - ambient) * np.clip(normal_cam @ light, 0.0, 1.0))[..., None]

    hit_any = np.isfinite(canvas.t)
    normal_bg = canvas.normal @ R  # world -> camera (R^T n, row-vector form)
    sky_col = SKY_BOTTOM + (SKY_TOP - SKY_BOTTOM) * np.linspace(0, 1, height)[::-1, None, None]
    bg = np.where(hit_any[..., None], shade(canvas.albedo, normal_bg), np.broadcast_to(sky_col, (height, width, 3)))

    # foreground coverage: signed distance (px) of each ray to the sphere's silhouette
    ray_length = np.sqrt(rays_w[..., 0] ** 2 + rays_w[..., 1] ** 2 + rays_w[..., 2] ** 2)
    unit = rays_w / ray_length[..., None]
    along = unit @ fg_center
    miss = np.sqrt(np.maximum(fg_center @ fg_center - along * along, 0.0))
    feather_px = scene.uniform(r.feather_px)
    signed_px = (fg_radius - miss) * f / np.maximum(along, 1e-6)
    alpha = np.clip(signed_px / feather_px + 0.5, 0.0, 1.0)
    alpha[along <= 0] = 0.0
    t_fg, fg_hit = _sphere_hit(rays_w, fg_center, fg_radius)
    # visible coverage: zero where the background is nearer than the sphere (or its silhouette point)
    fg_depth_px = np.where(fg_hit, t_fg, along / ray_length)
    alpha[canvas.t < fg_depth_px] = 0.0
    g_lo, g_hi = r.foreground_colors
    g1, g2, gq = scene.color(g_lo), scene.color(g_hi), scene.uniform(r.foreground_spots)
    idx = np.nonzero(alpha > 0)  # shade the foreground only where it covers something
    # on the sphere: the hit point; just outside: the ray's nearest point (silhouette normal)
    fg_point = np.where(fg_hit[idx][:, None], t_fg[idx][:, None] * rays_w[idx], along[idx][:, None] * unit[idx])
    fg_normal_w = fg_point - fg_center
    fg_normal_w /= np.maximum(np.sqrt((fg_normal_w * fg_normal_w).sum(-1)), 1e-9)[:, None]
    rgb = bg
    a = alpha[idx][:, None]
    rgb[idx] = a * shade(_spots(fg_point - fg_center, gq, g1, g2), fg_normal_w @ R) + (1 - a) * bg[idx]
    rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)

    canvas.add(t_fg, fg_hit, lambda p: (p - fg_center) / fg_radius, lambda p: np.zeros(p.shape))
    scene.surfaces.append({"type": "sphere", "center": (R.T @ fg_center).tolist(), "radius": float(fg_radius),
                           "foreground": True})
    return rgb, alpha, feather_px


def render_scene(seed, size=(64, 96), ranges: SceneRanges = SCENE_RANGES) -> dict:
    """Render one synthetic scene (an example dict) of ``size = (height, width)``."""
    scene = _Scene(np.random.default_rng(seed), ranges, int(size[0]), int(size[1]))
    _draw_room(scene)
    _draw_objects(scene)
    rgb, alpha, feather_px = _composite_foreground(scene)
    canvas, R, rays_cam = scene.canvas, scene.R, scene.rays_cam
    valid = np.isfinite(canvas.t)
    depth = np.where(valid, canvas.t, 0.0).astype(np.float32)
    normal = canvas.normal @ R
    normal /= np.maximum(np.sqrt(normal[..., 0] ** 2 + normal[..., 1] ** 2 + normal[..., 2] ** 2), 1e-12)[..., None]
    flip = (normal[..., 0] * rays_cam[..., 0] + normal[..., 1] * rays_cam[..., 1] + normal[..., 2] * rays_cam[..., 2]) > 0
    normal = np.where(flip[..., None], -normal, normal).astype(np.float32)
    meta = {"source": "synthetic", "id": f"synthetic/{seed}", "file": f"synthetic:{seed}",
            "intrinsics": scene.intrinsics, "surfaces": scene.surfaces, "world_from_camera": R.tolist(),
            "feather_px": float(feather_px)}
    return make_example(rgb, meta=meta, depth=depth, normal=normal, alpha=alpha.astype(np.float32), valid_mask=valid)


class SyntheticScenes:
    """``num_samples`` synthetic scenes, deterministic by ``seed`` (scene ``i`` uses seed ``(seed, i)``).

    Iterable (and re-iterable), indexable, and reader-like (``records``, ``iter_records``) so it
    streams through :func:`edit2perceive.data.streaming.source_dataset` like any dataset.
    """

    name = "synthetic"
    targets = ("depth", "normal", "alpha")

    def __init__(self, num_samples: int = 8, size=(64, 96), seed: int = 0):
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (height, width) with both >= 8, got {size}")
        self.num_samples, self.size, self.seed = int(num_samples), (int(size[0]), int(size[1])), int(seed)
        self.bad = BadDataLog()  # never used (renders cannot fail); keeps the reader interface

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"scene {index} out of range for {self.num_samples} scenes")
        index %= self.num_samples
        example = render_scene((self.seed, index), self.size)
        example["meta"]["id"] = f"synthetic/{self.seed}/{index}"
        example["meta"]["file"] = f"synthetic:{self.seed}/{index}"
        return example

    def records(self):
        return [{"id": str(i), "file": f"synthetic:{self.seed}/{i}", "index": i} for i in range(self.num_samples)]

    def iter_records(self, records):
        for record in records:
            yield self[record["index"]]

    def __iter__(self):
        return (self[i] for i in range(self.num_samples))

    def __repr__(self):
        return f"SyntheticScenes(num_samples={self.num_samples}, size={self.size}, seed={self.seed})"


def synthetic_scenes(num_samples: int = 8, size=(64, 96), seed: int = 0) -> SyntheticScenes:
    """The embedded default data: ``num_samples`` exact synthetic scenes of ``size = (H, W)``."""
    return SyntheticScenes(num_samples=num_samples, size=size, seed=seed)
