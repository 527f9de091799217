"""Writers of tiny dataset fixtures in the real on-disk formats (written independently of the readers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path, array, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def write_jpg(path, array):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)
    return path


def write_hdf5(path, array):
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=array)
    return path


def write_exr(path, channels: dict):
    import OpenEXR

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {k: np.ascontiguousarray(v, np.float32) for k, v in channels.items()}) as f:
        f.write(str(path))
    return path


def write_dpt(path, depth):
    """Sintel .dpt: float32 tag 202021.25, int32 width, int32 height, float32 row-major data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = depth.shape
    with open(path, "wb") as f:
        np.array([202021.25], "<f4").tofile(f)
        np.array([w, h], "<i4").tofile(f)
        depth.astype("<f4").tofile(f)
    return path


def write_cam(path, K, E=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    E = np.hstack([np.eye(3), np.zeros((3, 1))]) if E is None else E
    with open(path, "wb") as f:
        np.array([202021.25], "<f4").tofile(f)
        np.asarray(K, "<f8").tofile(f)
        np.asarray(E, "<f8").tofile(f)
    return path


def planar_rays(h, w, f, cx=None, cy=None):
    """Pixel rays (x right, y up, z toward viewer) with pixel (i, j) at (u, v) = (j, i)."""
    cx = (w - 1) / 2 if cx is None else cx
    cy = (h - 1) / 2 if cy is None else cy
    j, i = np.meshgrid(np.arange(w), np.arange(h))
    return np.stack([(j - cx) / f, -(i - cy) / f, -np.ones((h, w))], -1)


def flat_interior(depth, normal, tol=1e-3):
    """Pixels whose 4-neighbours share their normal and lie on one plane with them (inverse depth
    is linear in pixel coordinates on a plane), i.e. away from edges, creases and occlusions."""
    inv = 1.0 / np.maximum(depth.astype(np.float64), 1e-9)
    out = np.zeros(depth.shape, bool)
    same_n = (np.abs(normal[2:, 1:-1] - normal[:-2, 1:-1]).max(-1) < 1e-4) & (np.abs(normal[1:-1, 2:] - normal[1:-1, :-2]).max(-1) < 1e-4)
    c = inv[1:-1, 1:-1]
    lin_v = np.abs(inv[2:, 1:-1] + inv[:-2, 1:-1] - 2 * c) < tol * c
    lin_u = np.abs(inv[1:-1, 2:] + inv[1:-1, :-2] - 2 * c) < tol * c
    out[1:-1, 1:-1] = same_n & lin_u & lin_v & (depth[1:-1, 1:-1] > 0)
    return out
