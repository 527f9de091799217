"""InteriorVerse (Zhu et al., SIGGRAPH Asia 2022) material-geometry release, EXR files.

Facts used (interiorverse/README.md of jingsenzhu/IndoorInverseRendering; Marigold's script):

- ``dataset_85/<scene>/<NNN>_im.exr`` (HDR radiance; LDR = clip(0, 1) ** (1 / 2.2)),
  ``<NNN>_normal.exr``, ``<NNN>_depth.exr`` (millimetres, ``inf`` on invalid pixels) and
  ``<NNN>_mask.exr`` (1 valid, 0 invalid). ``dataset_120`` is the same views at 120 deg FOV.
  (Marigold's script calls the folder ``scenes_85``; both names are accepted.)
- Normals are in the **OpenGL camera frame: x right, y up, z back (screen to eye)**, the same axes
  as ours. Zero-length normals (norm < 0.1, as Marigold filters) are invalid; the rest are
  normalized and oriented toward the camera.
- Camera: horizontal FOV 85 (or 120) degrees, so ``fx = (W / 2) / tan(FOV / 2)``, square pixels,
  centred principal point. The depth is used as given (renderer depth, mm -> m).
"""

from __future__ import annotations

import math
import re

import numpy as np

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_exr, require
from .geometry import orient_toward_camera, pixel_rays, unit_normals

_IM_RE = re.compile(r"^(?P<index>\d+)_im\.exr$")


def interiorverse_intrinsics(height: int, width: int, fov_deg: float):
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return (f, f, (width - 1) / 2.0, (height - 1) / 2.0)


class InteriorVerseReader(Reader):
    """InteriorVerse views with ``normal`` (and optionally ``depth``) targets."""

    name = "interiorverse"
    layout_help = (
        "  ROOT/dataset_85/<scene>/000_im.exr, 000_normal.exr, 000_depth.exr, 000_mask.exr\n"
        "  (ROOT may also be the dataset_85 / scenes_85 folder itself)"
    )

    def __init__(self, root, *, targets=("normal",), fov_deg: float | None = None, **kwargs):
        super().__init__(root, **kwargs)
        if set(targets) - {"depth", "normal"} or not targets:
            raise ValueError(f"interiorverse targets must be a subset of ('depth', 'normal'), got {targets}")
        self.targets = tuple(targets)
        self.fov_deg = fov_deg

    def _scene_root(self):
        for name in ("dataset_85", "scenes_85", "dataset_120", "scenes_120"):
            if (self.root / name).is_dir():
                return self.root / name
        return self.root

    def _list_records(self):
        base = self._scene_root()
        fov = self.fov_deg or (120.0 if base.name.endswith("120") else 85.0)
        records = []
        for path in base.glob("*/*_im.exr"):
            m = _IM_RE.match(path.name)
            if m:
                rid = f"{path.parent.name}/{m['index']}"
                records.append({"id": rid, "file": str(path), "scene": path.parent.name, "index": m["index"], "fov": fov})
        return records

    def load(self, r):
        im_path = require(r["file"])
        stem = im_path.parent / r["index"]
        hdr = read_exr(im_path)
        if hdr.ndim != 3 or hdr.shape[2] < 3:
            raise BadSampleError(f"{im_path}: expected an RGB EXR, got shape {hdr.shape}")
        hdr = hdr[..., :3]
        if not np.isfinite(hdr).all():
            raise BadSampleError(f"{im_path}: NaN/inf radiance")
        rgb = (np.clip(hdr, 0.0, 1.0) ** (1.0 / 2.2) * 255.0).round().astype(np.uint8)
        h, w = rgb.shape[:2]
        intrinsics = interiorverse_intrinsics(h, w, r["fov"])
        mask_path = stem.with_name(f"{r['index']}_mask.exr")
        mask = read_exr(require(mask_path))
        mask = mask if mask.ndim == 2 else mask[..., :3].min(-1)
        if mask.shape != (h, w):
            raise BadSampleError(f"{mask_path}: shape {mask.shape} != image {(h, w)}")
        valid = mask > 0.5
        out = {}
        if "normal" in self.targets:
            normal_path = stem.with_name(f"{r['index']}_normal.exr")
            normal = read_exr(require(normal_path))
            if normal.shape != (h, w, 3):
                raise BadSampleError(f"{normal_path}: shape {normal.shape} != {(h, w, 3)}")
            if (~np.isfinite(normal).all(-1) & valid).any():
                raise BadSampleError(f"{normal_path}: NaN/inf normals inside the mask")
            norm = np.linalg.norm(np.nan_to_num(normal), axis=-1)
            unit, ok = unit_normals(normal)
            valid &= ok & (norm >= 0.1)
            out["normal"] = orient_toward_camera(unit, pixel_rays(h, w, intrinsics))
        if "depth" in self.targets:
            depth_path = stem.with_name(f"{r['index']}_depth.exr")
            depth = read_exr(require(depth_path))
            depth = depth if depth.ndim == 2 else depth[..., 0]
            if depth.shape != (h, w):
                raise BadSampleError(f"{depth_path}: shape {depth.shape} != image {(h, w)}")
            if np.isnan(depth[valid]).any():
                raise BadSampleError(f"{depth_path}: NaN depth inside the mask")
            valid &= np.isfinite(depth) & (depth > 0)  # inf marks invalid pixels (README)
            out["depth"] = np.where(valid, depth, 0.0) / 1000.0
        meta = self.meta(r, intrinsics=intrinsics, scene=r["scene"], fov_deg=r["fov"])
        return make_example(rgb, meta=meta, valid_mask=valid, **out)
