"""Low-level file readers for the released dataset formats (PNG/JPG, 16-bit PNG, HDF5, EXR, Sintel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SINTEL_TAG_FLOAT = 202021.25  # header tag of Sintel .dpt depth and .cam camera files


def read_rgb(path) -> np.ndarray:
    """8-bit colour image -> uint8 ``H x W x 3`` (grey/RGBA/palette converted to RGB)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_uint16_png(path) -> np.ndarray:
    """Single-channel 16-bit PNG -> uint16 ``H x W`` (raises if the file is not 16-bit)."""
    with Image.open(path) as im:
        if im.mode not in ("I;16", "I;16B", "I"):
            raise ValueError(f"{path}: expected a 16-bit single-channel PNG, got mode {im.mode!r}")
        arr = np.asarray(im)
    if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
        raise ValueError(f"{path}: values outside uint16")
    return arr.astype(np.uint16)


def read_matte(path) -> np.ndarray:
    """Alpha matte (8- or 16-bit grey, or the first channel of RGB) -> float32 in [0, 1]."""
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I"):
            return (np.asarray(im).astype(np.float32) / 65535.0).clip(0, 1)
        if im.mode == "RGBA" and np.asarray(im.getchannel("A")).min() < 255:
            return np.asarray(im.getchannel("A"), np.float32) / 255.0
        if im.mode not in ("L", "1", "P"):
            im = im.convert("RGB").getchannel("R")
        return np.asarray(im.convert("L"), np.float32) / 255.0


def read_hdf5(path, key: str = "dataset") -> np.ndarray:
    """The array stored under ``key`` in an HDF5 file (Hypersim stores everything under "dataset")."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing file") from None
    except OSError as err:
        raise OSError(f"{path}: not a readable HDF5 file ({err})") from err
    with f:
        if key not in f:
            raise KeyError(f"{path}: no HDF5 dataset {key!r} (has {list(f.keys())})")
        return np.asarray(f[key])


def read_exr(path) -> np.ndarray:
    """OpenEXR image -> float32 ``H x W x C`` in R, G, B(, A) order, or ``H x W`` for one channel."""
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        for name in ("RGB", "RGBA"):
            if name in channels:
                return np.asarray(channels[name].pixels, np.float32)
        if len(channels) == 1:
            return np.asarray(next(iter(channels.values())).pixels, np.float32)
        names = sorted(channels)
        return np.stack([np.asarray(channels[n].pixels, np.float32) for n in names], axis=-1)


def read_sintel_dpt(path) -> np.ndarray:
    """Sintel ``.dpt`` depth: float32 tag 202021.25, int32 width, int32 height, float32 data."""
    raw = Path(path).read_bytes()
    if len(raw) < 12:
        raise ValueError(f"{path}: truncated .dpt header ({len(raw)} bytes)")
    tag = np.frombuffer(raw, np.float32, 1, 0)[0]
    if tag != np.float32(SINTEL_TAG_FLOAT):
        raise ValueError(f"{path}: wrong .dpt tag {tag} (expected {SINTEL_TAG_FLOAT}; big-endian file?)")
    width, height = (int(v) for v in np.frombuffer(raw, np.int32, 2, 4))
    if not (0 < width < 100000 and 0 < height < 100000):
        raise ValueError(f"{path}: implausible .dpt size {width} x {height}")
    expected = 12 + 4 * width * height
    if len(raw) != expected:
        raise ValueError(f"{path}: .dpt has {len(raw)} bytes, expected {expected} for {width} x {height}")
    return np.frombuffer(raw, np.float32, width * height, 12).reshape(height, width).copy()


def read_sintel_cam(path):
    """Sintel ``.cam``: tag, 3x3 intrinsic matrix, 3x4 extrinsic matrix (float64) -> ``(K, E)``."""
    raw = Path(path).read_bytes()
    expected = 4 + 8 * 9 + 8 * 12
    if len(raw) != expected:
        raise ValueError(f"{path}: .cam has {len(raw)} bytes, expected {expected}")
    tag = np.frombuffer(raw, np.float32, 1, 0)[0]
    if tag != np.float32(SINTEL_TAG_FLOAT):
        raise ValueError(f"{path}: wrong .cam tag {tag} (expected {SINTEL_TAG_FLOAT})")
    K = np.frombuffer(raw, np.float64, 9, 4).reshape(3, 3).copy()
    E = np.frombuffer(raw, np.float64, 12, 4 + 72).reshape(3, 4).copy()
    return K, E


def require(path: Path) -> Path:
    """Raise ``FileNotFoundError`` naming ``path`` if it is missing."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: missing file")
    return Path(path)
