"""InteriorVerse (Zhu et al., SIGGRAPH Asia 2022) material-geometry release, EXR files, or
Marigold's preprocessed normals.

Facts used (interiorverse/README.md of jingsenzhu/IndoorInverseRendering; Marigold's
``script/normals/dataset_preprocess/interiorverse/preprocess_interiorverse_normals.py``):

- ``dataset_85/<scene>/<NNN>_im.exr`` (HDR radiance; LDR = clip(0, 1) ** (1 / 2.2)),
  ``<NNN>_normal.exr``, ``<NNN>_depth.exr`` (millimetres, ``inf`` on invalid pixels) and
  ``<NNN>_mask.exr`` (1 valid, 0 invalid). ``dataset_120`` is the same views at 120 deg FOV.
  (Marigold's script calls the folder ``scenes_85``; both names are accepted.)
- Non-finite radiance, normal or depth pixels occur in the release; the dataset authors' loader
  sets them to 0. Here they are **invalid pixels** (off in ``valid_mask``, radiance 0 in the RGB),
  counted in ``meta["nonfinite_pixels"]`` and the reader's statistics; the sample is kept.
- Normals are in the **OpenGL camera frame: x right, y up, z back (screen to eye)**, the same axes
  as ours. Zero-length normals (norm < 0.1, as Marigold filters) are invalid; the rest are
  normalized and oriented toward the camera.
- Camera: horizontal FOV 85 (or 120) degrees, so ``fx = (W / 2) / tan(FOV / 2)``, square pixels,
  centred principal point. The depth is used as given (renderer depth, mm -> m).
- Marigold's preprocessed layout: ``scenes_85/<scene>/<NNN>_img.png`` (the LDR conversion above)
  + ``<NNN>_normal.npy`` (float H x W x 3, unit, same axes; views with NaN or zero normals were
  dropped by the script). Split lists (``split_file=``): Marigold's / the paper's
  ``interiorverse_normals/interiorverse_filtered_*.txt`` (``<scene>/008_img.png ... 008_normal.npy``;
  the paper's lists also name a ``008_depth.npy`` of unpublished units: not read).
"""

from __future__ import annotations

import math
import re

import numpy as np

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_exr, read_rgb, require
from .geometry import orient_toward_camera, pixel_rays, unit_normals

_IM_RE = re.compile(r"^(?P<index>\d+)_im\.exr$")
_IMG_RE = re.compile(r"^(?P<index>\d+)_img\.png$")
_LISTED_RE = re.compile(r"(?:^|/)(?P<scene>[^/]+)/(?P<index>\d+)_(?:im\.exr|img\.png)$")


def interiorverse_intrinsics(height: int, width: int, fov_deg: float):
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return (f, f, (width - 1) / 2.0, (height - 1) / 2.0)


class InteriorVerseReader(Reader):
    """InteriorVerse views with ``normal`` (and optionally ``depth``) targets."""

    name = "interiorverse"
    layout_help = (
        "  release:  ROOT/dataset_85/<scene>/000_im.exr, 000_normal.exr, 000_depth.exr, 000_mask.exr\n"
        "  marigold: ROOT/scenes_85/<scene>/000_img.png + 000_normal.npy\n"
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
        for pattern, regex, layout in (("*/*_im.exr", _IM_RE, "exr"), ("*/*_img.png", _IMG_RE, "marigold")):
            for path in base.glob(pattern):
                m = regex.match(path.name)
                if m:
                    rid = f"{path.parent.name}/{m['index']}"
                    records.append({"id": rid, "file": str(path), "scene": path.parent.name, "index": m["index"],
                                    "fov": fov, "layout": layout})
            if records:
                break
        return records

    def listed_id(self, row):
        m = _LISTED_RE.search(row[0].replace("\\", "/"))
        return f"{m['scene']}/{m['index']}" if m else None

    def load(self, r):
        return self._load_marigold(r) if r.get("layout") == "marigold" else self._load_exr(r)

    def _load_marigold(self, r):
        if "depth" in self.targets:
            raise BadSampleError(f"{r['file']}: Marigold's InteriorVerse layout has no depth of known units")
        rgb = read_rgb(require(r["file"]))
        h, w = rgb.shape[:2]
        normal_path = require(r["file"][: -len("_img.png")] + "_normal.npy")
        normal = np.load(normal_path, allow_pickle=False)
        if normal.shape != (h, w, 3):
            raise BadSampleError(f"{normal_path}: shape {normal.shape} != {(h, w, 3)}")
        return self._with_normals(rgb, normal, np.ones((h, w), bool), r, 0)

    def _with_normals(self, rgb, normal, valid, r, nonfinite, depth=None):
        h, w = rgb.shape[:2]
        intrinsics = interiorverse_intrinsics(h, w, r["fov"])
        finite = np.isfinite(normal).all(-1)
        nonfinite_normal = ~finite & valid
        normal = np.where(finite[..., None], normal, 0.0)
        unit, ok = unit_normals(normal)
        valid = valid & ok & (np.linalg.norm(normal, axis=-1) >= 0.1)
        out = {"normal": orient_toward_camera(unit, pixel_rays(h, w, intrinsics))}
        if depth is not None:
            out["depth"] = depth
        nonfinite += int(nonfinite_normal.sum())
        meta = self.meta(r, intrinsics=intrinsics, scene=r["scene"], fov_deg=r["fov"], nonfinite_pixels=nonfinite)
        return make_example(rgb, meta=meta, valid_mask=valid, **out)

    def _load_exr(self, r):
        im_path = require(r["file"])
        stem = im_path.parent / r["index"]
        hdr = read_exr(im_path)
        if hdr.ndim != 3 or hdr.shape[2] < 3:
            raise BadSampleError(f"{im_path}: expected an RGB EXR, got shape {hdr.shape}")
        hdr = hdr[..., :3]
        finite_rgb = np.isfinite(hdr).all(-1)
        hdr = np.where(finite_rgb[..., None], hdr, 0.0)  # as the authors' loader: non-finite -> 0
        rgb = (np.clip(hdr, 0.0, 1.0) ** (1.0 / 2.2) * 255.0).round().astype(np.uint8)
        h, w = rgb.shape[:2]
        mask_path = stem.with_name(f"{r['index']}_mask.exr")
        mask = read_exr(require(mask_path))
        mask = mask if mask.ndim == 2 else mask[..., :3].min(-1)
        if mask.shape != (h, w):
            raise BadSampleError(f"{mask_path}: shape {mask.shape} != image {(h, w)}")
        valid = (mask > 0.5) & finite_rgb
        nonfinite = int(((mask > 0.5) & ~finite_rgb).sum())
        depth = None
        if "depth" in self.targets:
            depth_path = stem.with_name(f"{r['index']}_depth.exr")
            depth = read_exr(require(depth_path))
            depth = depth if depth.ndim == 2 else depth[..., 0]
            if depth.shape != (h, w):
                raise BadSampleError(f"{depth_path}: shape {depth.shape} != image {(h, w)}")
            nonfinite += int((np.isnan(depth) & valid).sum())  # inf is the documented "no depth"
            valid &= np.isfinite(depth) & (depth > 0)
            depth = np.where(valid, depth, 0.0) / 1000.0
        if "normal" not in self.targets:
            meta = self.meta(r, intrinsics=interiorverse_intrinsics(h, w, r["fov"]), scene=r["scene"],
                             fov_deg=r["fov"], nonfinite_pixels=nonfinite)
            return make_example(rgb, meta=meta, valid_mask=valid, depth=depth)
        normal_path = stem.with_name(f"{r['index']}_normal.exr")
        normal = read_exr(require(normal_path))
        if normal.shape != (h, w, 3):
            raise BadSampleError(f"{normal_path}: shape {normal.shape} != {(h, w, 3)}")
        return self._with_normals(rgb, normal, valid, r, nonfinite, depth)
