"""Hypersim (Roberts et al., ICCV 2021): raw HDF5 release and Marigold's preprocessed PNG layout.

Facts used (apple/ml-hypersim README and issues #9, #26, #44; Marigold's preprocessing scripts):

- ``depth_meters`` is the Euclidean *distance* to the camera centre, not planar depth; planar
  depth = distance * |ray_z| / |ray| with the ray of the pixel from the scene's own camera:
  ``M_cam_from_uv`` of ``metadata_camera_parameters.csv`` (see :mod:`.hypersim_camera`; 282 of
  482 scenes differ from the standard camera). The CSV is ``camera_csv=`` or
  ``ROOT/metadata_camera_parameters.csv``; without it (or for a scene it lacks) the standard
  camera (f = 886.81 px at 1024 x 768, centred principal point) is used and a warning is given
  once per scene. ``meta["cam_from_pixel"]`` holds the exact 3x3 pixel->ray matrix and
  ``meta["intrinsics"]`` the pinhole that agrees with it at its principal point.
- Pixels with ``render_entity_id == -1`` have no geometry (invalid). Valid depth range
  ``1e-3 < d < 65.5`` m (METHOD.md; 65.5 m is where Marigold's uint16-millimetre PNGs saturate).
- ``color`` is linear HDR; it is tone-mapped with Hypersim's own published operator (scale so
  the 90th-percentile brightness of valid pixels maps to 0.8 after gamma 1/2.2, then clip).
- ``normal_cam`` is in Hypersim's camera frame **+x right, +y up, +z backward (toward the
  viewer)**, the same axes as ours, so no axis change. Artist-defined normals can be zero,
  non-unit or point away from the camera (issue #26): they are normalized, zero ones invalid,
  and back-facing ones flipped toward the camera (using the pixel ray; Marigold uses positions).
- Marigold's preprocessed layout: ``<split>/<scene>/rgb_cam_00_fr0000.png`` (tone-mapped RGB),
  ``depth_plane_cam_00_fr0000.png`` (uint16 planar depth in mm, 0 invalid) and, from its normals
  script, ``normal_cam_cam_00_fr0000.npy`` (float H x W x 3, already oriented, same axes).
  Marigold's ``dist_2_depth`` converted distances with the standard camera for every scene, so
  these PNGs carry the standard-camera approximation; the reader keeps that camera for them.
- Split lists (``split_file=``): Marigold's ``hypersim_depth/filename_list_*.txt``
  (``ai_001_001/rgb_cam_00_fr0000.png ...``) and ``hypersim_normals/hypersim_filtered_*.txt``
  (``train/ai_001_001/rgb_cam_00_fr0000.png ...``); the same lists select frames of the raw layout.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_hdf5, read_rgb, read_uint16_png, require
from .geometry import (
    distance_to_planar_depth,
    orient_toward_camera,
    pinhole_at_principal_point,
    pixel_rays,
    unit_normals,
)
from .hypersim_camera import CAMERA_CSV, STANDARD_M_CAM_FROM_UV, cam_from_pixel, read_camera_table

HYPERSIM_FOCAL_PX = 886.81  # at 1024 x 768
HYPERSIM_WIDTH = 1024
MIN_DEPTH, MAX_DEPTH = 1e-3, 65.5

_RAW_RE = re.compile(r"^(?P<scene>ai_\d{3}_\d{3})/images/scene_(?P<cam>cam_\d{2})_final_hdf5/frame\.(?P<frame>\d{4})\.color\.hdf5$")
_RAW_LISTED_RE = re.compile(r"(?:^|/)(?P<scene>ai_\d{3}_\d{3})/images/scene_(?P<cam>cam_\d{2})_final_hdf5/frame\.(?P<frame>\d{4})\.color\.hdf5$")
_MARIGOLD_RE = re.compile(r"rgb_(?P<cam>cam_\d{2})_fr(?P<frame>\d{4})\.png$")


def hypersim_intrinsics(height: int, width: int):
    """Published Hypersim pinhole intrinsics, scaled to ``width`` (square pixels, centred)."""
    f = HYPERSIM_FOCAL_PX * width / HYPERSIM_WIDTH
    return (f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def tone_map(rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Hypersim's tone mapping (scene_generate_images_tonemap.py) -> uint8 ``H x W x 3``."""
    gamma, percentile, target = 1.0 / 2.2, 90, 0.8
    if not valid.any():
        scale = 1.0
    else:
        brightness = 0.3 * rgb[..., 0] + 0.59 * rgb[..., 1] + 0.11 * rgb[..., 2]
        current = np.percentile(brightness[valid], percentile)
        scale = 0.0 if current < 1e-4 else target ** (1.0 / gamma) / current
    mapped = np.clip(np.power(np.maximum(np.float32(scale) * rgb, 0.0), np.float32(gamma)), 0.0, 1.0)
    return np.round(mapped * np.float32(255.0)).astype(np.uint8)


class HypersimReader(Reader):
    """Hypersim frames as example dicts with ``depth`` and/or ``normal``.

    ``layout``: "raw" (the released HDF5 tree), "marigold" (preprocessed PNGs) or "auto".
    ``targets``: subset of ("depth", "normal"). ``scenes``: optional list of scene names.
    ``camera_csv``: Hypersim's ``metadata_camera_parameters.csv`` (default: ``ROOT/`` + that name
    if present) for the raw layout's per-scene cameras.
    """

    name = "hypersim"
    layout_help = (
        "  raw:      ROOT/ai_001_001/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5\n"
        "            ROOT/ai_001_001/images/scene_cam_00_geometry_hdf5/frame.0000.{depth_meters,render_entity_id,normal_cam}.hdf5\n"
        "  marigold: ROOT/[split/]ai_001_001/rgb_cam_00_fr0000.png + depth_plane_cam_00_fr0000.png"
        " (+ normal_cam_cam_00_fr0000.npy)"
    )

    def __init__(self, root, *, targets=("depth", "normal"), layout: str = "auto", scenes=None, camera_csv=None,
                 **kwargs):
        super().__init__(root, **kwargs)
        bad = set(targets) - {"depth", "normal"}
        if bad or not targets:
            raise ValueError(f"hypersim targets must be a non-empty subset of ('depth', 'normal'), got {targets}")
        if layout not in ("auto", "raw", "marigold"):
            raise ValueError(f"hypersim layout must be 'auto', 'raw' or 'marigold', got {layout!r}")
        self.targets = tuple(targets)
        self.layout = layout
        self.scenes = set(scenes) if scenes else None
        if camera_csv is None and (self.root / CAMERA_CSV).is_file():
            camera_csv = self.root / CAMERA_CSV
        if camera_csv is not None and not Path(camera_csv).is_file():
            raise FileNotFoundError(f"hypersim: camera_csv {camera_csv} does not exist (expected Hypersim's {CAMERA_CSV})")
        self.camera_csv = None if camera_csv is None else Path(camera_csv)
        self._cameras = read_camera_table(self.camera_csv) if self.camera_csv is not None else None
        self._warned_scenes: set = set()

    def scene_camera(self, scene: str, height: int, width: int):
        """``(cam_from_pixel, source)`` of a raw-layout scene: from the camera table, else the
        standard camera (warned once per scene)."""
        m = None if self._cameras is None else self._cameras.get(scene)
        if m is not None:
            return cam_from_pixel(m, height, width), "metadata_camera_parameters"
        if scene not in self._warned_scenes:
            self._warned_scenes.add(scene)
            why = "no camera_csv given" if self._cameras is None else f"scene missing from {self.camera_csv}"
            warnings.warn(f"hypersim: {scene}: {why}; using the standard camera (f = 886.81 px at 1024 x 768, centred "
                          f"principal point), planar depth can be off by up to 18 % on tilt-shift scenes. Pass "
                          f"camera_csv= (apple/ml-hypersim contrib/mikeroberts3000/{CAMERA_CSV})", stacklevel=3)
        return cam_from_pixel(STANDARD_M_CAM_FROM_UV, height, width), "standard"

    def listed_id(self, row):
        """``<scene>/<cam>/<frame>`` of a listed Marigold PNG (``[split/]ai_001_001/rgb_cam_00_fr0000.png``)
        or raw colour file (``ai_001_001/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5``)."""
        path = row[0].replace("\\", "/")
        raw = _RAW_LISTED_RE.search(path)
        if raw:
            return f"{raw['scene']}/{raw['cam']}/{raw['frame']}"
        m = _MARIGOLD_RE.search(path)
        scene = path.split("/")[-2] if "/" in path else None
        return f"{scene}/{m['cam']}/{m['frame']}" if m and scene else None

    def _list_records(self):
        records = []
        if self.layout in ("auto", "raw"):
            for path in self.root.glob("ai_*/images/scene_cam_*_final_hdf5/frame.*.color.hdf5"):
                m = _RAW_RE.match(path.relative_to(self.root).as_posix())
                if m and (self.scenes is None or m["scene"] in self.scenes):
                    rid = f"{m['scene']}/{m['cam']}/{m['frame']}"
                    records.append({"id": rid, "file": str(path), "layout": "raw", **m.groupdict()})
        if self.layout == "marigold" or (self.layout == "auto" and not records):
            for path in self.root.rglob("rgb_cam_*_fr*.png"):
                m = _MARIGOLD_RE.search(path.name)
                scene = path.parent.name
                if m and (self.scenes is None or scene in self.scenes):
                    rid = f"{scene}/{m['cam']}/{m['frame']}"
                    records.append({"id": rid, "file": str(path), "layout": "marigold", "scene": scene, **m.groupdict()})
        return records

    def load(self, record):
        return self._load_raw(record) if record["layout"] == "raw" else self._load_marigold(record)

    def _load_raw(self, r):
        scene_dir = self.root / r["scene"] / "images"
        geo = scene_dir / f"scene_{r['cam']}_geometry_hdf5"
        stem = f"frame.{r['frame']}"
        entity = read_hdf5(require(geo / f"{stem}.render_entity_id.hdf5"))
        hdr = read_hdf5(require(scene_dir / f"scene_{r['cam']}_final_hdf5" / f"{stem}.color.hdf5")).astype(np.float32)
        if hdr.ndim != 3 or hdr.shape[2] != 3 or entity.shape != hdr.shape[:2]:
            raise BadSampleError(f"{r['file']}: color {hdr.shape} and render_entity_id {entity.shape} do not match")
        geometry = entity != -1
        h, w = entity.shape
        if not np.isfinite(hdr[geometry]).all():
            raise BadSampleError(f"{r['file']}: non-finite colour values")
        rgb = tone_map(np.nan_to_num(hdr, nan=0.0, posinf=0.0, neginf=0.0), geometry)
        camera, camera_source = self.scene_camera(r["scene"], h, w)
        rays = pixel_rays(h, w, camera)
        valid = geometry.copy()
        out = {}
        if "depth" in self.targets:
            dist_file = geo / f"{stem}.depth_meters.hdf5"
            dist = read_hdf5(require(dist_file)).astype(np.float32)
            if dist.shape != (h, w):
                raise BadSampleError(f"{dist_file}: shape {dist.shape} != colour {(h, w)}")
            nonfinite = ~np.isfinite(dist) & geometry
            if nonfinite.any():
                raise BadSampleError(f"{dist_file}: {int(nonfinite.sum())} NaN/inf distances on rendered geometry")
            depth = distance_to_planar_depth(np.where(geometry, dist, 1.0), camera)
            valid &= (depth > MIN_DEPTH) & (depth < MAX_DEPTH)
            out["depth"] = depth
        if "normal" in self.targets:
            normal_file = geo / f"{stem}.normal_cam.hdf5"
            normal = read_hdf5(require(normal_file))
            if normal.shape != (h, w, 3):
                raise BadSampleError(f"{normal_file}: shape {normal.shape} != {(h, w, 3)}")
            if (~np.isfinite(normal).all(-1) & geometry).any():
                raise BadSampleError(f"{normal_file}: NaN/inf normals on rendered geometry")
            unit, ok = unit_normals(normal)
            valid &= ok
            out["normal"] = orient_toward_camera(unit, rays)
        meta = self.meta(r, intrinsics=pinhole_at_principal_point(camera), cam_from_pixel=camera.tolist(),
                         camera_source=camera_source, scene=r["scene"], camera=r["cam"], frame=int(r["frame"]))
        return make_example(rgb, meta=meta, valid_mask=valid, **out)

    def _load_marigold(self, r):
        rgb_path = require(r["file"])
        rgb = read_rgb(rgb_path)
        h, w = rgb.shape[:2]
        valid = np.ones((h, w), bool)
        out = {}
        if "depth" in self.targets:
            depth_file = rgb_path.with_name(f"depth_plane_{r['cam']}_fr{r['frame']}.png")
            depth = read_uint16_png(require(depth_file)).astype(np.float32) / 1000.0
            if depth.shape != (h, w):
                raise BadSampleError(f"{depth_file}: shape {depth.shape} != rgb {(h, w)}")
            valid &= (depth > MIN_DEPTH) & (depth < MAX_DEPTH)
            out["depth"] = depth
        if "normal" in self.targets:
            normal_file = rgb_path.with_name(f"normal_cam_{r['cam']}_fr{r['frame']}.npy")
            normal = np.load(require(normal_file), allow_pickle=False)
            if normal.shape != (h, w, 3):
                raise BadSampleError(f"{normal_file}: shape {normal.shape} != {(h, w, 3)}")
            if not np.isfinite(normal).all():
                raise BadSampleError(f"{normal_file}: NaN/inf normals")
            unit, ok = unit_normals(normal)
            valid &= ok
            out["normal"] = orient_toward_camera(unit, pixel_rays(h, w, hypersim_intrinsics(h, w)))
        meta = self.meta(r, intrinsics=hypersim_intrinsics(h, w), scene=r["scene"], camera=r["cam"], frame=int(r["frame"]))
        return make_example(rgb, meta=meta, valid_mask=valid, **out)
