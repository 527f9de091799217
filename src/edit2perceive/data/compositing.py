"""Foreground + alpha composited over a background (Composition-1k, Distinctions-646), or the
flattened, pre-composited layout the paper's split lists name (``merged/`` + ``alpha/``)."""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_matte, read_rgb, require

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: a pre-composited image name: ``<foreground name>[.png|.jpg]_<k>.<ext>``
_MERGED_RE = re.compile(r"^(?P<stem>.+?)(?:\.(?:png|jpg|jpeg))?_(?P<k>\d+)\.(?:png|jpg|jpeg)$", re.IGNORECASE)


def merged_id(name: str) -> str | None:
    """Record id ``<foreground stem>/<k>`` of a pre-composited file name, None if it is not one."""
    m = _MERGED_RE.match(name)
    return f"{m['stem']}/{int(m['k'])}" if m else None


def cover_background(bg: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``bg`` up (bicubic, aspect kept) until it covers ``height x width``, then crop the
    top-left corner: the rule of the Deep Image Matting compositing script."""
    bh, bw = bg.shape[:2]
    ratio = max(width / bw, height / bh)
    if ratio > 1:
        size = (math.ceil(bw * ratio), math.ceil(bh * ratio))
        bg = np.asarray(Image.fromarray(bg).resize(size, Image.BICUBIC))
    return bg[:height, :width]


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` rounded to uint8 (bg already covers fg)."""
    a = alpha[..., None].astype(np.float32)
    out = a * fg.astype(np.float32) + (1.0 - a) * bg.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if Path(folder).is_dir() else []


class CompositeMattingReader(Reader):
    """Base for datasets released as foreground + alpha without backgrounds.

    Each foreground is composited over ``backgrounds_per_foreground`` backgrounds. When the
    dataset ships background name lists (Composition-1k) they define the pairing; otherwise
    backgrounds are drawn from ``background_dir`` by a stable hash of (foreground, k, seed).

    Flattened layout (what the paper's ``comp_matting`` / ``Distinctions_matting`` lists name):
    ``merged/<name>_<k>.png`` already composited, with ``alpha/<name>_<k>.<ext>`` or one
    ``alpha/<name>.<ext>`` per foreground (JPEG alphas accepted); no backgrounds needed. It is
    used when the subclass's ``_flat_dir()`` finds such a folder. Record ids are
    ``<name>/<k>`` in both layouts.
    """

    targets = ("alpha",)

    def __init__(self, root, *, background_dir=None, backgrounds_per_foreground: int | None = None,
                 seed: int = 0, **kwargs):
        super().__init__(root, **kwargs)
        self.background_dir = None if background_dir is None else Path(background_dir)
        self.backgrounds_per_foreground = backgrounds_per_foreground
        self.seed = seed
        self._backgrounds: list[str] | None = None

    def _flat_dir(self) -> Path | None:
        """The folder holding ``merged/`` and ``alpha/`` (flattened layout), or None."""
        return None

    def listed_id(self, row):
        return merged_id(Path(row[0].replace("\\", "/")).name)

    def _list_flat(self, base: Path) -> list[dict]:
        alphas = {p.name: p for p in list_images(base / "alpha")}
        by_stem = {}
        for p in alphas.values():
            by_stem.setdefault(p.stem, p)
        records = []
        for merged in list_images(base / "merged"):
            m = _MERGED_RE.match(merged.name)
            if not m:
                continue
            alpha = alphas.get(merged.name) or by_stem.get(merged.stem) or by_stem.get(m["stem"]) \
                or alphas.get(merged.name.rsplit("_", 1)[0])  # Distinctions-646: <name>.png_0.png -> <name>.png
            records.append({"id": f"{m['stem']}/{int(m['k'])}", "file": str(merged), "layout": "flat",
                            "alpha": str(alpha if alpha is not None else base / "alpha" / merged.name)})
        return records

    def _require_backgrounds(self):
        background_dir = self.background_dir
        if background_dir is None or not Path(background_dir).is_dir():
            raise FileNotFoundError(
                f"{self.name}: background_dir {background_dir!r} is not a folder; the release has no backgrounds "
                "(Composition-1k trains on COCO train2014 and tests on VOC2012; Distinctions-646 uses VOC2012), "
                "or use the pre-composited layout (merged/ + alpha/)"
            )

    def _foregrounds(self) -> list[tuple[Path, Path]]:
        """(foreground, alpha) path pairs in dataset order."""
        raise NotImplementedError

    def _background_names(self):
        """Background file names in dataset order (one block per foreground), or None."""
        return None

    def _all_backgrounds(self) -> list[str]:
        if self._backgrounds is None:
            self._backgrounds = [p.name for p in list_images(self.background_dir)]
            if not self._backgrounds:
                raise FileNotFoundError(f"{self.name}: no images in background_dir {self.background_dir}")
        return self._backgrounds

    def _list_records(self):
        flat = self._flat_dir()
        if flat is not None:
            return self._list_flat(flat)
        self._require_backgrounds()
        pairs = self._foregrounds()
        names = self._background_names()
        per_fg = self.backgrounds_per_foreground
        records = []
        if names is not None:
            block = len(names) // max(len(pairs), 1)
            if block == 0 or block * len(pairs) != len(names):
                raise ValueError(f"{self.name}: {len(names)} background names for {len(pairs)} foregrounds")
            per_fg = min(per_fg or block, block)
        else:
            per_fg = per_fg or 1
        for i, (fg, alpha) in enumerate(pairs):
            for k in range(per_fg):
                if names is not None:
                    bg = names[i * block + k]
                else:
                    pool = self._all_backgrounds()
                    bg = pool[zlib.crc32(f"{fg.name}/{k}/{self.seed}".encode()) % len(pool)]
                records.append({"id": f"{fg.stem}/{k}", "file": str(fg), "alpha": str(alpha), "background": bg})
        return records

    def load(self, r):
        if r.get("layout") == "flat":
            rgb = read_rgb(require(r["file"]))
            alpha = read_matte(require(r["alpha"]))
            if alpha.shape != rgb.shape[:2]:
                raise BadSampleError(f"{r['alpha']}: alpha shape {alpha.shape} != image {rgb.shape[:2]}")
            return make_example(rgb, meta=self.meta(r, alpha_file=r["alpha"]), alpha=alpha)
        fg = read_rgb(require(r["file"]))
        alpha = read_matte(require(r["alpha"]))
        if alpha.shape != fg.shape[:2]:
            raise BadSampleError(f"{r['alpha']}: alpha shape {alpha.shape} != foreground {fg.shape[:2]}")
        bg_path = self.background_dir / r["background"]
        bg = cover_background(read_rgb(require(bg_path)), *fg.shape[:2])
        rgb = composite(fg, alpha, bg)
        meta = self.meta(r, background=str(bg_path), alpha_file=r["alpha"])
        return make_example(rgb, meta=meta, alpha=alpha)
