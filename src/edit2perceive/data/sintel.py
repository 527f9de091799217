"""MPI Sintel (Butler et al., ECCV 2012): official depth/camera release, or Marigold's normals.

Facts used (Sintel depth SDK; Marigold's sintel normals split):

- Official: ``training/{final,clean}/<scene>/frame_NNNN.png`` (1024 x 436),
  ``training/depth/<scene>/frame_NNNN.dpt`` and ``training/camdata_left/<scene>/frame_NNNN.cam``.
  ``.dpt``: float32 tag 202021.25, int32 width, int32 height, float32 z-depth (distance along
  the optical axis, scene units). ``.cam``: tag, 3x3 intrinsic K, 3x4 extrinsic (float64).
  Sintel releases no normals: they are computed from the depth by back-projecting with K and
  crossing central differences (``geometry.normals_from_depth``), in our camera frame (x right,
  y up, z toward the viewer), oriented toward the camera; pixels at depth discontinuities and
  creases (where the inverse depth, linear in pixel coordinates on any plane, bends by more than
  ``crease_tolerance``) are invalid.
  Depth above ``max_depth`` (sky / far backdrops) is invalid.
- Marigold's preprocessed normals (``sintel.zip`` of Marigold's normals README):
  ``<scene>/frame_NNNN_img.png`` + ``frame_NNNN_normal.npy`` (float H x W x 3, x right, y up,
  z toward the viewer; sky pixels have norm < 0.1 -> invalid). Marigold's loader
  (``src/dataset/sintel_dataset.py``) center-crops image and normals to 436 x 582 by cutting
  ``MARIGOLD_CROP = 221`` columns off each side of the 1024-wide frames; so does this reader
  (``marigold_crop=False`` keeps the full frame).
- Split list (``split_file=``): Marigold's / the paper's ``sintel_normals/sintel_filtered.txt``
  (``alley_2/frame_0001_img.png alley_2/frame_0001_normal.npy``, 627 frames).
"""

from __future__ import annotations

import re

import numpy as np

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_rgb, read_sintel_cam, read_sintel_dpt, require
from .geometry import normals_from_depth, orient_toward_camera, pixel_rays, unit_normals

_OFFICIAL_RE = re.compile(r"^frame_(?P<frame>\d{4})\.png$")
_MARIGOLD_RE = re.compile(r"^frame_(?P<frame>\d{4})_img\.png$")
_LISTED_RE = re.compile(r"(?:^|/)(?P<scene>[^/]+)/frame_(?P<frame>\d{4})(?:_img)?\.png$")
MARIGOLD_CROP = 221  # columns cut off each side (1024 -> 582), as Marigold's SintelNormalsDataset


class SintelReader(Reader):
    """Sintel frames with ``normal`` (and, from the official release, ``depth``) targets."""

    name = "sintel"
    layout_help = (
        "  official: ROOT/training/final/<scene>/frame_0001.png, ROOT/training/depth/<scene>/frame_0001.dpt,\n"
        "            ROOT/training/camdata_left/<scene>/frame_0001.cam\n"
        "  marigold: ROOT/<scene>/frame_0001_img.png + frame_0001_normal.npy"
    )

    def __init__(self, root, *, targets=("normal",), pass_name: str = "final", max_depth: float = 1000.0,
                 crease_tolerance: float = 0.5, marigold_crop: bool = True, **kwargs):
        super().__init__(root, **kwargs)
        if set(targets) - {"depth", "normal"} or not targets:
            raise ValueError(f"sintel targets must be a subset of ('depth', 'normal'), got {targets}")
        if pass_name not in ("final", "clean"):
            raise ValueError(f"sintel pass_name must be 'final' or 'clean', got {pass_name!r}")
        self.targets, self.pass_name = tuple(targets), pass_name
        self.max_depth, self.crease_tolerance = max_depth, crease_tolerance
        self.marigold_crop = marigold_crop

    def listed_id(self, row):
        m = _LISTED_RE.search(row[0].replace("\\", "/"))
        return f"{m['scene']}/{m['frame']}" if m else None

    def _list_records(self):
        records = []
        official = self.root / "training" / self.pass_name
        if official.is_dir():
            for path in official.glob("*/frame_*.png"):
                m = _OFFICIAL_RE.match(path.name)
                if m:
                    records.append({"id": f"{path.parent.name}/{m['frame']}", "file": str(path), "layout": "official",
                                    "scene": path.parent.name, "frame": m["frame"]})
        else:
            for path in self.root.glob("*/frame_*_img.png"):
                m = _MARIGOLD_RE.match(path.name)
                if m:
                    records.append({"id": f"{path.parent.name}/{m['frame']}", "file": str(path), "layout": "marigold",
                                    "scene": path.parent.name, "frame": m["frame"]})
        return records

    def load(self, r):
        rgb = read_rgb(require(r["file"]))
        h, w = rgb.shape[:2]
        if r["layout"] == "marigold":
            if "depth" in self.targets:
                raise BadSampleError(f"{r['file']}: Marigold's Sintel layout has no depth")
            normal_file = require(r["file"][: -len("_img.png")] + "_normal.npy")
            normal = np.load(normal_file, allow_pickle=False)
            if normal.shape not in ((h, w, 3), (3, h, w)):
                raise BadSampleError(f"{normal_file}: shape {normal.shape} does not match rgb {(h, w)}")
            normal = normal if normal.shape == (h, w, 3) else normal.transpose(1, 2, 0)
            if not np.isfinite(normal).all():
                raise BadSampleError(f"{normal_file}: NaN/inf normals")
            if self.marigold_crop:
                if w <= 2 * MARIGOLD_CROP:
                    raise BadSampleError(f"{r['file']}: width {w} too small for Marigold's {MARIGOLD_CROP}-px side crop "
                                         "(Sintel frames are 1024 wide)")
                rgb, normal = rgb[:, MARIGOLD_CROP:w - MARIGOLD_CROP], normal[:, MARIGOLD_CROP:w - MARIGOLD_CROP]
            unit, ok = unit_normals(normal)
            valid = ok & (np.linalg.norm(normal, axis=-1) >= 0.1)
            meta = self.meta(r, scene=r["scene"], crop_left=MARIGOLD_CROP if self.marigold_crop else 0)
            return make_example(np.ascontiguousarray(rgb), meta=meta, normal=unit, valid_mask=valid)
        training = self.root / "training"
        depth_file = training / "depth" / r["scene"] / f"frame_{r['frame']}.dpt"
        cam_file = training / "camdata_left" / r["scene"] / f"frame_{r['frame']}.cam"
        depth = read_sintel_dpt(require(depth_file))
        K, _ = read_sintel_cam(require(cam_file))
        if depth.shape != (h, w):
            raise BadSampleError(f"{depth_file}: shape {depth.shape} != rgb {(h, w)}")
        if np.isnan(depth).any():
            raise BadSampleError(f"{depth_file}: NaN depth values")
        intrinsics = (K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        valid = np.isfinite(depth) & (depth > 0) & (depth < self.max_depth)
        out = {"depth": depth} if "depth" in self.targets else {}
        if "normal" in self.targets:
            normal, ok = normals_from_depth(np.where(valid, depth, 1.0), valid, intrinsics)
            valid &= ok & self._smooth(np.where(valid, depth, 0.0))
            out["normal"] = orient_toward_camera(normal, pixel_rays(h, w, intrinsics))
        return make_example(rgb, meta=self.meta(r, intrinsics=intrinsics, scene=r["scene"]), valid_mask=valid, **out)

    def _smooth(self, depth):
        """False at depth discontinuities and creases. On a plane the inverse depth is linear in
        the pixel coordinates, so its second difference vanishes; a pixel is flagged where the
        second difference exceeds ``crease_tolerance`` times the sum of the adjacent first ones."""
        inv = 1.0 / np.maximum(depth.astype(np.float64), 1e-12)
        ok = np.ones(depth.shape, bool)
        for axis in (0, 1):
            a = np.moveaxis(inv, axis, 0)
            plus, minus = a[2:] - a[1:-1], a[1:-1] - a[:-2]
            bad = np.abs(plus - minus) > self.crease_tolerance * (np.abs(plus) + np.abs(minus)) + 1e-6 * a[1:-1]
            np.moveaxis(ok, axis, 0)[1:-1] &= ~bad
        return ok
