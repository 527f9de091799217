"""COCO-Matting (Xia et al., SEMat, 2024): 38,251 human-instance alpha mattes on COCO train2017.

Facts used (SEMat release notes, Edit2Perceive README and split file): the release
``COCO-Matting_trimap_alpha`` holds one PNG per instance, ``<12-digit COCO id>_<labels>_<NN>.png``,
whose left half is the trimap and right half the alpha matte (concatenated in width); the
images are COCO ``train2017/<12-digit id>.jpg``. A folder ``alpha/`` of already split mattes
(the Edit2Perceive reference layout) is accepted too. Split list (``split_file=``): the paper's
``coco_matting/filenames_train.txt``, tab-separated because instance names contain spaces
(``COCO_Path/train2017/000000000999.jpg<TAB>alpha/000000000999_baseball bat_00.png``).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_matte, read_rgb, require

_NAME_RE = re.compile(r"^(?P<image>\d{12})_.+\.png$")


class CocoMattingReader(Reader):
    """COCO-Matting instances with ``alpha``. ``coco_dir``: the COCO ``train2017`` image folder."""

    name = "coco_matting"
    targets = ("alpha",)
    layout_help = (
        "  ROOT/trimap_alpha/<12-digit id>_<labels>_<NN>.png  (trimap | alpha side by side)\n"
        "  or ROOT/alpha/<12-digit id>_<labels>_<NN>.png        (alpha only)\n"
        "  COCO_DIR/<12-digit id>.jpg                           (COCO train2017)"
    )

    def __init__(self, root, *, coco_dir, **kwargs):
        super().__init__(root, **kwargs)
        if coco_dir is None or not Path(coco_dir).is_dir():
            raise FileNotFoundError(f"coco_matting: coco_dir {coco_dir!r} is not a folder (COCO train2017 images)")
        self.coco_dir = Path(coco_dir)

    def _list_records(self):
        records = []
        for folder, kind in (("trimap_alpha", "side_by_side"), ("alpha", "alpha")):
            base = self.root / folder
            if base.is_dir():
                for path in base.glob("*.png"):
                    m = _NAME_RE.match(path.name)
                    if m:
                        records.append({"id": path.stem, "file": str(path), "kind": kind,
                                        "image": str(self.coco_dir / f"{m['image']}.jpg")})
                break
        return records

    def listed_id(self, row):
        name = PurePosixPath(row[-1].replace("\\", "/")).name
        return name[:-4] if _NAME_RE.match(name) else None

    def load(self, r):
        rgb = read_rgb(require(r["image"]))
        matte = read_matte(require(r["file"]))
        h, w = rgb.shape[:2]
        if r["kind"] == "side_by_side":
            if matte.shape != (h, 2 * w):
                raise BadSampleError(f"{r['file']}: trimap|alpha shape {matte.shape} != {(h, 2 * w)} for image {(h, w)}")
            matte = matte[:, w:]
        elif matte.shape != (h, w):
            raise BadSampleError(f"{r['file']}: alpha shape {matte.shape} != image {(h, w)}")
        return make_example(rgb, meta=self.meta(r, image_file=r["image"]), alpha=matte.copy())
