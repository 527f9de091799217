"""Virtual KITTI 2 (Cabon et al., 2020) in its released scene/variant layout.

Facts used (VKITTI2 release, Marigold's vkitti split files):

- ``SceneXX/<variant>/frames/rgb/Camera_K/rgb_NNNNN.jpg`` (1242 x 375) and
  ``SceneXX/<variant>/frames/depth/Camera_K/depth_NNNNN.png``: uint16 PNG of planar depth in
  **centimetres** (sky = 65535, i.e. 655.35 m). The rgb and depth tarballs may be extracted into
  one tree or into ``ROOT/rgb/...`` and ``ROOT/depth/...`` (Marigold's layout); both work.
- Variants: clone, fog, morning, overcast, rain, sunset, 15-deg-left/right, 30-deg-left/right.
- Valid depth range ``0.1 < d < 80`` m (METHOD.md).
- Split lists (``split_file=``): Marigold's / the paper's ``vkitti_depth/vkitti_{train,val}*.txt``
  (``rgb/Scene02/clone/frames/rgb/Camera_0/rgb_00000.jpg depth/...``).
- Intrinsics from ``SceneXX/<variant>/intrinsic.txt`` (textgt tarball; header
  ``frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]``) when present.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_rgb, read_uint16_png, require

MIN_DEPTH, MAX_DEPTH = 0.1, 80.0
_RGB_RE = re.compile(r"(?P<scene>Scene\d{2})/(?P<variant>[^/]+)/frames/rgb/(?P<camera>Camera_\d)/rgb_(?P<frame>\d{5})\.jpg$")


def read_vkitti_intrinsics(path: Path) -> dict:
    """``intrinsic.txt`` -> {(frame, camera_id): (fx, fy, cx, cy)}."""
    table = {}
    lines = Path(path).read_text().strip().splitlines()
    if not lines or not lines[0].startswith("frame"):
        raise ValueError(f"{path}: expected header 'frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]'")
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != 6:
            raise ValueError(f"{path}: malformed line {line!r}")
        table[(int(parts[0]), int(parts[1]))] = tuple(float(v) for v in parts[2:])
    return table


class VirtualKitti2Reader(Reader):
    """Virtual KITTI 2 frames with planar ``depth`` in metres.

    ``scenes`` / ``variants`` / ``cameras`` filter the tree (default: everything found; the
    paper's training set uses Scene01/02/06/18/20 in the METHOD.md counts).
    """

    name = "vkitti2"
    targets = ("depth",)
    layout_help = (
        "  ROOT/Scene01/clone/frames/rgb/Camera_0/rgb_00000.jpg\n"
        "  ROOT/Scene01/clone/frames/depth/Camera_0/depth_00000.png   (or ROOT/rgb/Scene01/... + ROOT/depth/Scene01/...)\n"
        "  ROOT/Scene01/clone/intrinsic.txt                            (optional, textgt)"
    )

    def __init__(self, root, *, scenes=None, variants=None, cameras=None, **kwargs):
        super().__init__(root, **kwargs)
        self.scenes, self.variants, self.cameras = (set(x) if x else None for x in (scenes, variants, cameras))
        self._intrinsics_cache: dict = {}

    def _roots(self):
        split = (self.root / "rgb").is_dir() and (self.root / "depth").is_dir()
        return (self.root / "rgb", self.root / "depth") if split else (self.root, self.root)

    def _list_records(self):
        rgb_root, _ = self._roots()
        records = []
        for path in rgb_root.glob("Scene*/*/frames/rgb/Camera_*/rgb_*.jpg"):
            m = _RGB_RE.search(path.relative_to(rgb_root).as_posix())
            if not m:
                continue
            if any(f is not None and m[k] not in f for k, f in (("scene", self.scenes), ("variant", self.variants), ("camera", self.cameras))):
                continue
            rid = f"{m['scene']}/{m['variant']}/{m['camera']}/{m['frame']}"
            records.append({"id": rid, "file": str(path), **m.groupdict()})
        return records

    def listed_id(self, row):
        m = _RGB_RE.search(row[0].replace("\\", "/"))
        return f"{m['scene']}/{m['variant']}/{m['camera']}/{m['frame']}" if m else None

    def _intrinsics(self, r):
        key = (r["scene"], r["variant"])
        if key not in self._intrinsics_cache:
            table = None
            for base in (self.root, self.root / "textgt"):
                path = base / r["scene"] / r["variant"] / "intrinsic.txt"
                if path.is_file():
                    table = read_vkitti_intrinsics(path)
                    break
            self._intrinsics_cache[key] = table
        table = self._intrinsics_cache[key]
        return None if table is None else table.get((int(r["frame"]), int(r["camera"][-1])))

    def load(self, r):
        rgb = read_rgb(require(r["file"]))
        _, depth_root = self._roots()
        depth_file = depth_root / r["scene"] / r["variant"] / "frames" / "depth" / r["camera"] / f"depth_{r['frame']}.png"
        depth = read_uint16_png(require(depth_file)).astype(np.float32) / 100.0
        if depth.shape != rgb.shape[:2]:
            raise BadSampleError(f"{depth_file}: shape {depth.shape} != rgb {rgb.shape[:2]}")
        valid = (depth > MIN_DEPTH) & (depth < MAX_DEPTH)
        extra = {"scene": r["scene"], "variant": r["variant"], "camera": r["camera"], "frame": int(r["frame"])}
        intrinsics = self._intrinsics(r)
        if intrinsics is not None:
            extra["intrinsics"] = intrinsics
        return make_example(rgb, meta=self.meta(r, **extra), depth=depth, valid_mask=valid)
