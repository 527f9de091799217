"""Camera geometry shared by the readers and the synthetic renderer.

Camera frame: x right, y up, z toward the viewer (the camera looks along -z). Intrinsics
``(fx, fy, cx, cy)`` use the OpenCV pixel convention: pixel ``(row i, col j)`` is centred at
``(u, v) = (j, i)``. The ray of a pixel is ``((u - cx) / fx, -(v - cy) / fy, -1)``, so the
3D point at planar depth ``d`` is ``d * ray``.

A camera that is not a centred-axis pinhole (Hypersim's tilt-shift scenes) is given as a 3x3
``cam_from_pixel`` matrix instead: ``cam_from_pixel @ (u, v, 1)`` is the ray of pixel ``(u, v)``
in the camera frame above (any length, pointing forward). Every function taking ``camera``
accepts either form.
"""

from __future__ import annotations

import numpy as np


def pinhole_matrix(intrinsics) -> np.ndarray:
    """``cam_from_pixel`` of a pinhole ``(fx, fy, cx, cy)`` (rays with z = -1)."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    return np.array([[1 / fx, 0.0, -cx / fx], [0.0, -1 / fy, cy / fy], [0.0, 0.0, -1.0]])


def pixel_rays(height: int, width: int, camera) -> np.ndarray:
    """``H x W x 3`` rays (z component -1) in the camera frame; point = planar depth * ray.

    ``camera``: intrinsics ``(fx, fy, cx, cy)`` or a 3x3 ``cam_from_pixel`` matrix."""
    if np.shape(camera) == (3, 3):
        m = np.asarray(camera, np.float64)
        u = np.arange(width, dtype=np.float64)[None, :, None]
        v = np.arange(height, dtype=np.float64)[:, None, None]
        rays = u * m[:, 0] + v * m[:, 1] + m[:, 2]
        if not (rays[..., 2] < 0).all():
            raise ValueError("cam_from_pixel maps some pixels to rays that do not point forward (z >= 0)")
        return rays / -rays[..., 2:3]
    fx, fy, cx, cy = (float(v) for v in camera)
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


def distance_to_planar_depth(distance: np.ndarray, camera) -> np.ndarray:
    """Euclidean distance to the camera centre -> planar depth (z along the optical axis).
    ``camera``: intrinsics or a ``cam_from_pixel`` matrix."""
    rays = pixel_rays(*distance.shape, camera)
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


def normals_from_depth(depth: np.ndarray, valid: np.ndarray, camera):
    """Surface normals from planar depth by central differences of back-projected points.

    Returns ``(normal, ok)``: unit normals in the camera frame above, oriented toward the
    camera, and where they are defined (the pixel and its 4 neighbours valid).
    """
    rays = pixel_rays(*depth.shape, camera)
    points = depth[..., None].astype(np.float64) * rays
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
    unit = orient_toward_camera(unit, rays)
    return unit, ok


def pinhole_at_principal_point(cam_from_pixel) -> tuple:
    """The pinhole ``(fx, fy, cx, cy)`` that agrees with ``cam_from_pixel`` at its principal point.

    The principal point is the pixel whose ray is the optical axis ``(0, 0, -1)``; ``fx``, ``fy``
    are the local scales there. Exact for a pinhole matrix; for a tilted image plane (tilt-shift)
    the rays elsewhere differ, so use the matrix itself for geometry."""
    m = np.asarray(cam_from_pixel, np.float64)
    p = np.linalg.solve(m, np.array([0.0, 0.0, -1.0]))
    if abs(p[2]) < 1e-12:
        raise ValueError("cam_from_pixel has no principal point in the image plane")
    p = p / p[2]
    w = -(m[2] @ p)  # -z of the (unnormalized) axis ray
    return (float(w / m[0, 0]), float(-w / m[1, 1]), float(p[0]), float(p[1]))


def transform_cam_from_pixel(cam_from_pixel, old_from_new) -> list:
    """``cam_from_pixel`` after a pixel-coordinate change ``old = old_from_new @ new`` (3x3)."""
    return (np.asarray(cam_from_pixel, np.float64) @ np.asarray(old_from_new, np.float64)).tolist()


def scale_intrinsics(intrinsics, sx: float, sy: float):
    """Intrinsics after resizing the image by ``sx`` (width) and ``sy`` (height)."""
    fx, fy, cx, cy = intrinsics
    return (fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5)
