"""AM-2k animal matting (Li et al., GFM, IJCV 2022): real photos with alpha mattes.

Facts used (GFM release, Edit2Perceive split files): ``train/original/m_<hash>.jpg`` with
``train/mask/m_<hash>.png`` (alpha matte); ``validation/original``, ``validation/mask`` and
``validation/trimap`` for validation. Split list (``split_file=``): the paper's
``AM_matting/filenames_{train,val}.txt`` (``train/original/m_c5293d8b.jpg train/mask/m_c5293d8b.png``).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .base import SplitReader
from .example import BadSampleError, make_example
from .formats import read_matte, read_rgb, require


class AM2kReader(SplitReader):
    """AM-2k images with ``alpha``."""

    name = "am2k"
    splits = {"train": "train", "validation": "validation"}
    targets = ("alpha",)
    layout_help = "  ROOT/train/original/m_xxxx.jpg + ROOT/train/mask/m_xxxx.png (validation/... for split='validation')"

    def _list_records(self):
        base = self.root / self.splits[self.split]
        return [{"id": p.stem, "file": str(p), "mask": str(base / "mask" / f"{p.stem}.png")}
                for p in (base / "original").glob("*.jpg")]

    def listed_id(self, row):
        return PurePosixPath(row[0].replace("\\", "/")).stem or None

    def load(self, r):
        rgb = read_rgb(require(r["file"]))
        alpha = read_matte(require(r["mask"]))
        if alpha.shape != rgb.shape[:2]:
            raise BadSampleError(f"{r['mask']}: alpha shape {alpha.shape} != image {rgb.shape[:2]}")
        return make_example(rgb, meta=self.meta(r, alpha_file=r["mask"]), alpha=alpha)
