"""Hypersim's per-scene cameras (``metadata_camera_parameters.csv``).

Facts used (apple/ml-hypersim ``contrib/mikeroberts3000``: README, the CSV and the notebook
``01_casting_rays_that_match_hypersim_images.ipynb``):

- One row per scene (482 rows), ``scene_name``, ``settings_output_img_{height,width}`` and the
  columns ``M_cam_from_uv_00 .. M_cam_from_uv_22``: a 3x3 matrix taking ``(u, v, 1)`` to the
  camera-space ray of a pixel. ``u, v`` run over ``[-1, 1]`` at pixel centres, ``v = +1`` at the
  top: ``u = (2 j + 1) / W - 1``, ``v = 1 - (2 i + 1) / H`` for pixel (row i, col j). The camera
  frame is x right, y up, z backward (the camera looks along -z), the same as ours.
- The standard camera is ``diag(tan 30deg, tan 30deg * 3/4, -1)`` (60 deg horizontal FOV:
  f = 886.81 px at 1024 x 768, centred principal point). Scenes with V-Ray tilt-shift
  parameters have other entries (e.g. ai_037_002: principal point (572.94, 465.42) in our pixel
  convention; ai_021_002: the standard camera puts planar depth up to 17.8 % too far).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

CAMERA_CSV = "metadata_camera_parameters.csv"
STANDARD_M_CAM_FROM_UV = np.array([[0.5773502886169104, 0.0, 0.0], [0.0, 0.4330127164626828, 0.0], [0.0, 0.0, -1.0]])
_COLUMNS = [f"M_cam_from_uv_{r}{c}" for r in range(3) for c in range(3)]


def read_camera_table(path) -> dict[str, list]:
    """``metadata_camera_parameters.csv`` -> {scene: M_cam_from_uv as a 3x3 nested list}.

    Raises ``ValueError`` naming the file and scene for a missing column or a non-finite entry."""
    path = Path(path)
    table = {}
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        missing = [c for c in ["scene_name", *_COLUMNS] if c not in (rows.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a Hypersim camera table, missing columns {missing[:3]}")
        for row in rows:
            try:
                values = [float(row[c]) for c in _COLUMNS]
            except (TypeError, ValueError):
                raise ValueError(f"{path}: scene {row['scene_name']}: M_cam_from_uv entries must be numbers") from None
            if not np.isfinite(values).all():
                raise ValueError(f"{path}: scene {row['scene_name']}: non-finite M_cam_from_uv entry")
            table[row["scene_name"]] = np.reshape(values, (3, 3)).tolist()
    if not table:
        raise ValueError(f"{path}: no scenes in the camera table")
    return table


def cam_from_pixel(m_cam_from_uv, height: int, width: int) -> np.ndarray:
    """3x3 matrix taking pixel ``(col j, row i, 1)`` of a ``height x width`` image to its ray
    (the ``cam_from_pixel`` of :mod:`.geometry`)."""
    uv_from_pixel = np.array([[2.0 / width, 0.0, 1.0 / width - 1.0],
                              [0.0, -2.0 / height, 1.0 - 1.0 / height],
                              [0.0, 0.0, 1.0]])
    return np.asarray(m_cam_from_uv, np.float64) @ uv_from_pixel
