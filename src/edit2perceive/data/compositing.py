"""Foreground + alpha composited over a background (Composition-1k, Distinctions-646)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Reader
from .example import BadSampleError, make_example
from .formats import read_matte, read_rgb, require

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


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
    """

    targets = ("alpha",)

    def __init__(self, root, *, background_dir=None, backgrounds_per_foreground: int | None = None,
                 seed: int = 0, **kwargs):
        super().__init__(root, **kwargs)
        if background_dir is None or not Path(background_dir).is_dir():
            raise FileNotFoundError(
                f"{self.name}: background_dir {background_dir!r} is not a folder; the release has no backgrounds "
                "(Composition-1k trains on COCO train2014 and tests on VOC2012; Distinctions-646 uses VOC2012)"
            )
        self.background_dir = Path(background_dir)
        self.backgrounds_per_foreground = backgrounds_per_foreground
        self.seed = seed
        self._backgrounds: list[str] | None = None

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
        fg = read_rgb(require(r["file"]))
        alpha = read_matte(require(r["alpha"]))
        if alpha.shape != fg.shape[:2]:
            raise BadSampleError(f"{r['alpha']}: alpha shape {alpha.shape} != foreground {fg.shape[:2]}")
        bg_path = self.background_dir / r["background"]
        bg = cover_background(read_rgb(require(bg_path)), *fg.shape[:2])
        rgb = composite(fg, alpha, bg)
        meta = self.meta(r, background=str(bg_path), alpha_file=r["alpha"])
        return make_example(rgb, meta=meta, alpha=alpha)
