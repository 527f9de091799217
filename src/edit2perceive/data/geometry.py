"""Camera geometry shared by the readers and the synthetic renderer.

Camera frame: x right, y up, z toward the viewer (the camera looks along -z). Intrinsics
``(fx, fy, cx, cy)`` use the OpenCV pixel convention: pixel ``(row i, col j)`` is centred at
``(u, v) = (j, i)``. The ray of a pixel is ``((u - cx) / fx, -(v - cy) / fy, -1)``, so the
3D point at planar depth ``d`` is ``d * ray``.
"""

from __future__ import annotations

import numpy as np


def pixel_rays(height: int, width: int, intrinsics) -> np.ndarray:
    """``H x W x 3`` rays (z component -1) in the camera frame; point = planar depth * ray."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    u = (np.arange(width, dtype=np.float64) - cx) / fx
    v = -(np.arange(height, dtype=np.float64) - cy) / fy
    rays = np.empty((height, width, 3), np.float64)
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    rays[..., 2] = -1.0
    return rays


def vector_norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis of size 3 (component-wise: much faster than a reduce)."""
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def distance_to_planar_depth(distance: np.ndarray, intrinsics) -> np.ndarray:
    """Euclidean distance to the camera centre -> planar depth (z along the optical axis)."""
    rays = pixel_rays(*distance.shape, intrinsics)
    return (distance / vector_norm(rays)).astype(np.float32)


def unit_normals(normal: np.ndarray, min_norm: float = 1e-6):
    """Normalize ``H x W x 3`` vectors; returns ``(unit, ok)`` where ``ok`` marks finite, non-zero ones."""
    normal = np.asarray(normal, np.float32)
    finite = np.isfinite(normal[..., 0]) & np.isfinite(normal[..., 1]) & np.isfinite(normal[..., 2])
    norm = vector_norm(np.where(finite[..., None], normal, 0.0))
    ok = finite & (norm > min_norm)
    unit = np.where(ok[..., None], normal / np.where(ok, norm, 1.0)[..., None], 0.0)
    return unit.astype(np.float32), ok


def orient_toward_camera(normal: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Flip normals that point away from the camera (``n . ray > 0``, ray = camera -> surface)."""
    away = dot3(normal, rays) > 0
    return np.where(away[..., None], -normal, normal).astype(np.float32)


def normals_from_depth(depth: np.ndarray, valid: np.ndarray, intrinsics):
    """Surface normals from planar depth by central differences of back-projected points.

    Returns ``(normal, ok)``: unit normals in the camera frame above, oriented toward the
    camera, and where they are defined (the pixel and its 4 neighbours valid).
    """
    points = depth[..., None].astype(np.float64) * pixel_rays(*depth.shape, intrinsics)
    du = np.zeros_like(points)
    dv = np.zeros_like(points)
    du[:, 1:-1] = points[:, 2:] - points[:, :-2]
    dv[1:-1] = points[2:] - points[:-2]
    # image v grows downward = camera -y, so (du x dv) points away; use dv x du to face the camera
    normal = np.cross(dv, du)
    ok = valid.copy()
    ok[:, 1:-1] &= valid[:, 2:] & valid[:, :-2]
    ok[1:-1] &= valid[2:] & valid[:-2]
    ok[[0, -1], :] = False
    ok[:, [0, -1]] = False
    unit, nonzero = unit_normals(normal)
    ok &= nonzero
    unit = orient_toward_camera(unit, pixel_rays(*depth.shape, intrinsics))
    return unit, ok


def scale_intrinsics(intrinsics, sx: float, sy: float):
    """Intrinsics after resizing the image by ``sx`` (width) and ``sy`` (height)."""
    fx, fy, cx, cy = intrinsics
    return (fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5)
