"""Composition-1k (Adobe Deep Image Matting dataset, Xu et al., CVPR 2017).

Facts used (the dataset's README and compositing script):

- ``Combined_Dataset/Training_set/{Adobe-licensed images,Other}/{fg,alpha}/<name>`` with
  ``Training_set/training_fg_names.txt`` and ``training_bg_names.txt`` (MSCOCO train2014
  backgrounds, 100 per foreground, listed in foreground order);
  ``Test_set/Adobe-licensed images/{fg,alpha,trimaps}`` with ``test_fg_names.txt`` and
  ``test_bg_names.txt`` (PASCAL VOC backgrounds, 20 per foreground).
- Compositing: the background is scaled up (bicubic) to cover the foreground, cropped at the top
  left, and ``alpha * fg + (1 - alpha) * bg``.
- Flattened, pre-composited layout named by the paper's ``comp_matting/filenames_{train,test}.txt``
  (tab-separated): ``Training_set/merged/035A4301_0.png`` + ``Training_set/alpha/035A4301.jpg``
  (one alpha per foreground, JPEG), ``Test_set/merged/<name>_0.png``, ``Test_set/trimaps/<name>_0.png``,
  ``Test_set/fg/<name>.png``, ``Test_set/alpha/<name>.png``. Used when ``merged/`` exists.
"""

from __future__ import annotations

from pathlib import Path

from .base import SplitReader
from .compositing import CompositeMattingReader, list_images

_GROUPS = ("Adobe-licensed images", "Other")


class Composition1kReader(SplitReader, CompositeMattingReader):
    """Composition-1k composites with ``alpha``. ``background_dir``: COCO train2014 / VOC images."""

    name = "composition1k"
    splits = {"train": ("Training_set", "training"), "test": ("Test_set", "test")}  # folder, file prefix
    layout_help = (
        "  ROOT/[Combined_Dataset/]Training_set/Adobe-licensed images/{fg,alpha}/<name>.png (+ Other/{fg,alpha})\n"
        "  ROOT/[Combined_Dataset/]Training_set/training_fg_names.txt, training_bg_names.txt\n"
        "  ROOT/[Combined_Dataset/]Test_set/Adobe-licensed images/{fg,alpha}, test_fg_names.txt, test_bg_names.txt\n"
        "  or pre-composited: ROOT/Training_set/merged/<name>_<k>.png + ROOT/Training_set/alpha/<name>.jpg"
    )

    def __init__(self, root, *, split: str = "train", **kwargs):
        super().__init__(root, split=split, **kwargs)
        base = self.root / "Combined_Dataset" if (self.root / "Combined_Dataset").is_dir() else self.root
        self.split_dir = base / self.splits[split][0]

    def _flat_dir(self):
        return self.split_dir if (self.split_dir / "merged").is_dir() and (self.split_dir / "alpha").is_dir() else None

    def _foregrounds(self):
        prefix = self.splits[self.split][1]
        names_file = self.split_dir / f"{prefix}_fg_names.txt"
        groups = [self.split_dir / g for g in _GROUPS if (self.split_dir / g).is_dir()]
        if names_file.is_file():
            pairs = []
            for name in filter(None, (n.strip() for n in names_file.read_text().splitlines())):
                group = next((g for g in groups if (g / "fg" / name).is_file()), groups[0] if groups else self.split_dir)
                pairs.append((group / "fg" / name, group / "alpha" / name))
            return pairs
        return [(fg, g / "alpha" / fg.name) for g in groups for fg in list_images(g / "fg")]

    def _background_names(self):
        path = Path(self.split_dir) / f"{self.splits[self.split][1]}_bg_names.txt"
        if not path.is_file():
            return None
        return [n.strip() for n in path.read_text().splitlines() if n.strip()]
