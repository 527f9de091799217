"""Evaluation crops (row/column index ranges, end exclusive).

- NYUv2 Eigen crop: rows 45:471, cols 41:601 of the 480 x 640 image.
- KITTI benchmark (KB) crop: 352 x 1216 at top = H - 352, left = (W - 1216) // 2.
- KITTI Eigen crop (Garg/Eigen fractions): rows int(0.3324324 H):int(0.91351351 H),
  cols int(0.0359477 W):int(0.96405229 W) of whatever canvas it is applied to (Marigold:
  the KB-cropped 352 x 1216 image; Edit2Perceive: the full-size image).
"""

from __future__ import annotations

import numpy as np

NYU_EIGEN_CROP = (45, 471, 41, 601)
NYU_SHAPE = (480, 640)
KB_CROP_HEIGHT, KB_CROP_WIDTH = 352, 1216


def kitti_eigen_crop(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the Eigen crop for a ``height x width`` canvas."""
    return int(0.3324324 * height), int(0.91351351 * height), int(0.0359477 * width), int(0.96405229 * width)


def kb_crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the KITTI benchmark crop."""
    if height < KB_CROP_HEIGHT or width < KB_CROP_WIDTH:
        raise ValueError(f"KITTI benchmark crop needs at least {KB_CROP_HEIGHT} x {KB_CROP_WIDTH}, got {height} x {width}")
    top, left = height - KB_CROP_HEIGHT, (width - KB_CROP_WIDTH) // 2
    return top, top + KB_CROP_HEIGHT, left, left + KB_CROP_WIDTH


def box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = box
    m = np.zeros(shape[:2], dtype=bool)
    m[top:bottom, left:right] = True
    return m


def eval_crop_mask(kind: str | None, shape: tuple[int, int], source: str = "") -> np.ndarray:
    """Boolean mask of the protocol's evaluation crop (all True for None)."""
    if kind is None:
        return np.ones(shape[:2], dtype=bool)
    if kind == "nyu_eigen":
        if tuple(shape[:2]) != NYU_SHAPE:
            raise ValueError(f"{source}: the NYUv2 Eigen crop is defined for 480 x 640 images, got {shape[:2]}")
        return box_mask(shape, NYU_EIGEN_CROP)
    if kind == "kitti_eigen":
        return box_mask(shape, kitti_eigen_crop(*shape[:2]))
    raise ValueError(f"unknown evaluation crop {kind!r}")
