"""Coloured 3D point clouds from depth (and normals, and a matte), written as PLY or GLB.

Camera frame (as everywhere in the package, :mod:`edit2perceive.data.geometry`): x right, y up,
z toward the viewer, the camera at the origin looking along -z; the point of pixel
``(row i, col j)`` at planar depth ``d`` is ``d * ((j - cx) / fx, -(i - cy) / fy, -1)``. This is
also glTF's / OpenGL's convention, so GLB files open upright in viewers.

Intrinsics ``(fx, fy, cx, cy)`` in pixels of the depth map are given, or come from a
horizontal field of view (:func:`intrinsics_from_fov`, default ``DEFAULT_FOV_DEG`` = 60
degrees, principal point at the image centre, square pixels).

Files are written with trimesh: one well-kept library that writes *and* reads both PLY and
GLB (plyfile only does PLY). PLY holds positions, colours and (when given) normals; GLB holds
positions and colours (trimesh writes glTF point primitives without normals).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.geometry import pixel_rays
from ..io.atomic import write_bytes_atomic

DEFAULT_FOV_DEG = 60.0
FORMATS = ("ply", "glb")


def intrinsics_from_fov(height: int, width: int, fov_deg: float = DEFAULT_FOV_DEG) -> tuple[float, float, float, float]:
    """Pinhole intrinsics for a horizontal field of view (degrees), centred principal point."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return (f, f, (width - 1) / 2.0, (height - 1) / 2.0)


@dataclass
class PointCloud:
    """``points`` float32 ``N x 3`` (metres, camera frame), ``colors`` uint8 ``N x 3``,
    ``normals`` float32 ``N x 3`` or ``None``, ``pixels`` int ``N x 2`` source ``(x, y)``."""

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray | None
    pixels: np.ndarray


def point_cloud(depth, rgb, intrinsics, *, normals=None, mask=None) -> PointCloud:
    """Back-project every pixel with a finite depth > 0 (and ``mask`` True, e.g. a matte
    ``alpha > 0.5`` for a cut-out) into a coloured point cloud.

    Args:
        depth: ``H x W`` planar depth in metres.
        rgb: ``H x W x 3`` uint8 image (or PIL image) of the same size.
        intrinsics: ``(fx, fy, cx, cy)`` in pixels of ``depth``.
        normals: optional ``H x W x 3`` unit normals in the camera frame.
        mask: optional bool ``H x W`` of the pixels to keep.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be H x W, got shape {depth.shape}")
    rgb = np.asarray(rgb)
    if rgb.shape != (*depth.shape, 3) or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be a uint8 {depth.shape[0]} x {depth.shape[1]} x 3 image like the depth, got "
                         f"{rgb.dtype} {rgb.shape}")
    if len(tuple(intrinsics)) != 4 or not all(np.isfinite(intrinsics)) or min(intrinsics[0], intrinsics[1]) <= 0:
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy) with fx, fy > 0, got {tuple(intrinsics)}")
    keep = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != depth.shape:
            raise ValueError(f"mask has shape {mask.shape}, expected {depth.shape}")
        keep &= mask
    rows, cols = np.nonzero(keep)
    points = depth[rows, cols, None] * pixel_rays(*depth.shape, intrinsics)[rows, cols]
    out_normals = None
    if normals is not None:
        normals = np.asarray(normals, dtype=np.float32)
        if normals.shape != (*depth.shape, 3):
            raise ValueError(f"normals must be {depth.shape[0]} x {depth.shape[1]} x 3 like the depth, got {normals.shape}")
        out_normals = normals[rows, cols]
    return PointCloud(points=points.astype(np.float32), colors=rgb[rows, cols], normals=out_normals,
                      pixels=np.stack([cols, rows], axis=1))


def encode_point_cloud(cloud: PointCloud, file_format: str) -> bytes:
    """The file contents of ``cloud`` as binary ``"ply"`` (with normals when present) or ``"glb"``."""
    import trimesh

    file_format = file_format.lower()
    if file_format not in FORMATS:
        raise ValueError(f"point clouds are written as {' or '.join(FORMATS)}, not {file_format!r}")
    if len(cloud.points) == 0:
        raise ValueError("no point to write (no pixel with a valid depth inside the mask)")
    if file_format == "glb":
        return trimesh.PointCloud(cloud.points, colors=cloud.colors).export(file_type="glb")
    if cloud.normals is None:
        return trimesh.exchange.ply.export_ply(trimesh.PointCloud(cloud.points, colors=cloud.colors))
    # a face-less mesh carries per-vertex normals into the PLY
    geometry = trimesh.Trimesh(vertices=cloud.points, faces=np.zeros((0, 3), np.int64), vertex_colors=cloud.colors,
                               vertex_normals=cloud.normals, process=False)
    return trimesh.exchange.ply.export_ply(geometry, vertex_normal=True)


def write_point_cloud(cloud: PointCloud, path: str | os.PathLike, file_format: str | None = None) -> Path:
    """Write ``cloud`` to ``path`` (format from the suffix unless given) atomically: a
    staging file in the same folder is renamed into place."""
    path = Path(path)
    try:
        data = encode_point_cloud(cloud, file_format or path.suffix.lstrip("."))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return write_bytes_atomic(path, data)
