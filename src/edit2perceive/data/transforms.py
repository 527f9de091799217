"""Geometric and photometric transforms on example dicts.

Every geometric transform moves all rasters (rgb, depth, normal, alpha, valid_mask) together
and updates ``meta["intrinsics"]`` (and ``meta["cam_from_pixel"]`` when a reader gives one). Resampling: rgb and alpha bilinear (PIL, antialiased when
shrinking); depth, normal and valid_mask **nearest neighbour**, so no depth is invented across
invalid pixels or object boundaries and normals stay unit vectors. A horizontal flip negates the
normal x component (camera frame x right, y up, z toward the viewer).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .geometry import scale_intrinsics, transform_cam_from_pixel

RASTERS = ("rgb", "depth", "normal", "alpha", "valid_mask")


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def _copy_meta(example: dict) -> dict:
    out = {k: v for k, v in example.items() if k not in RASTERS}
    out["meta"] = dict(example.get("meta", {}))
    return out


def _move_camera(meta: dict, old_from_new, mirror: bool = False) -> None:
    """Update ``meta["cam_from_pixel"]`` for a pixel change ``old = old_from_new @ new``."""
    if meta.get("cam_from_pixel") is not None:
        m = transform_cam_from_pixel(meta["cam_from_pixel"], old_from_new)
        meta["cam_from_pixel"] = [[-v for v in m[0]], m[1], m[2]] if mirror else m


def resize(example: dict, height: int, width: int) -> dict:
    """Resize to ``height x width`` (no aspect handling; see :func:`resize_to_cover`)."""
    h, w = example["rgb"].shape[:2]
    out = _copy_meta(example)
    out["rgb"] = np.asarray(Image.fromarray(example["rgb"]).resize((width, height), Image.BILINEAR))
    if "alpha" in example:
        alpha = Image.fromarray(np.asarray(example["alpha"], np.float32), mode="F").resize((width, height), Image.BILINEAR)
        out["alpha"] = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    rows, cols = _nearest_index(height, h), _nearest_index(width, w)
    for key in ("depth", "normal", "valid_mask"):
        if key in example:
            out[key] = np.ascontiguousarray(example[key][rows][:, cols])
    if out["meta"].get("intrinsics") is not None:
        out["meta"]["intrinsics"] = scale_intrinsics(out["meta"]["intrinsics"], width / w, height / h)
    sx, sy = w / width, h / height
    _move_camera(out["meta"], [[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    return out


def resize_to_cover(example: dict, height: int, width: int) -> dict:
    """Aspect-preserving resize: the smallest scale at which the image covers ``height x width``."""
    h, w = example["rgb"].shape[:2]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, math.ceil(h * scale - 1e-6)), max(width, math.ceil(w * scale - 1e-6))
    return example if (new_h, new_w) == (h, w) else resize(example, new_h, new_w)


def resize_longest_side(example: dict, size: int, multiple: int = 16) -> dict:
    """Aspect-preserving resize so the longest side is ``size``; both sides rounded to ``multiple``."""
    h, w = example["rgb"].shape[:2]
    scale = size / max(h, w)
    new_h = max(multiple, int(round(h * scale / multiple)) * multiple)
    new_w = max(multiple, int(round(w * scale / multiple)) * multiple)
    return resize(example, new_h, new_w)


def crop(example: dict, top: int, left: int, height: int, width: int) -> dict:
    h, w = example["rgb"].shape[:2]
    if top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f"crop {height}x{width} at ({top}, {left}) does not fit in {h}x{w}")
    out = _copy_meta(example)
    for key in RASTERS:
        if key in example:
            out[key] = np.ascontiguousarray(example[key][top:top + height, left:left + width])
    if out["meta"].get("intrinsics") is not None:
        fx, fy, cx, cy = out["meta"]["intrinsics"]
        out["meta"]["intrinsics"] = (fx, fy, cx - left, cy - top)
    _move_camera(out["meta"], [[1, 0, left], [0, 1, top], [0, 0, 1]])
    return out


def random_crop(example: dict, height: int, width: int, rng: np.random.Generator) -> dict:
    """Crop ``height x width`` (multiples of 16) at a uniformly random position."""
    if height % 16 or width % 16:
        raise ValueError(f"crop size must be a multiple of 16, got {height}x{width}")
    h, w = example["rgb"].shape[:2]
    return crop(example, int(rng.integers(0, h - height + 1)), int(rng.integers(0, w - width + 1)), height, width)


def hflip(example: dict) -> dict:
    """Mirror left-right; the normal x component changes sign, ``cx -> W - 1 - cx``."""
    out = _copy_meta(example)
    for key in RASTERS:
        if key in example:
            out[key] = np.ascontiguousarray(example[key][:, ::-1])
    if "normal" in out:
        out["normal"] = out["normal"] * np.array([-1.0, 1.0, 1.0], np.float32)
    if out["meta"].get("intrinsics") is not None:
        fx, fy, cx, cy = out["meta"]["intrinsics"]
        out["meta"]["intrinsics"] = (fx, fy, example["rgb"].shape[1] - 1 - cx, cy)
    _move_camera(out["meta"], [[-1, 0, example["rgb"].shape[1] - 1], [0, 1, 0], [0, 0, 1]], mirror=True)
    return out


def color_jitter(example: dict, rng: np.random.Generator, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02) -> dict:
    """Random brightness, contrast, saturation (multiplicative, in ``1 +- x``) and hue shift (``+- hue`` turns)."""
    rgb = example["rgb"].astype(np.float32) / 255.0
    rgb = rgb * rng.uniform(1 - brightness, 1 + brightness)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    rgb = (rgb - grey.mean()) * rng.uniform(1 - contrast, 1 + contrast) + grey.mean()
    grey = (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    rgb = (rgb - grey) * rng.uniform(1 - saturation, 1 + saturation) + grey
    if hue:
        rgb = _rotate_hue(np.clip(rgb, 0, 1), rng.uniform(-hue, hue))
    out = dict(example)
    out["rgb"] = (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return out


def _rotate_hue(rgb: np.ndarray, turns: float) -> np.ndarray:
    """Rotate hue by ``turns`` of a full circle (rotation about the grey axis in RGB space)."""
    angle = 2 * math.pi * turns
    c, s = math.cos(angle), math.sin(angle)
    k = 1.0 / math.sqrt(3.0)
    axis = np.array([k, k, k])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = c * np.eye(3) + s * cross + (1 - c) * np.outer(axis, axis)
    return rgb @ rot.T.astype(np.float32)


class TrainTransform:
    """Resize to cover ``size`` (aspect kept), random crop to ``size``, random flip, optional jitter.

    ``size``: int (square) or ``(height, width)``, multiples of 16. Call with an explicit
    ``numpy.random.Generator`` for per-example reproducibility, or let the transform use its own
    seeded generator.
    """

    def __init__(self, size=768, *, hflip_p: float = 0.5, jitter: dict | None = None, seed: int = 0):
        self.height, self.width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if self.height % 16 or self.width % 16:
            raise ValueError(f"training size must be a multiple of 16, got {self.height}x{self.width}")
        self.hflip_p, self.jitter = hflip_p, jitter
        self.rng = np.random.default_rng(seed)

    def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
        rng = self.rng if rng is None else rng
        out = random_crop(resize_to_cover(example, self.height, self.width), self.height, self.width, rng)
        if rng.random() < self.hflip_p:
            out = hflip(out)
        if self.jitter is not None:
            out = color_jitter(out, rng, **self.jitter)
        return out
