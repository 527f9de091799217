"""Distinctions-646 (Qiao et al., HAttMatting, CVPR 2020).

Facts used (the release and the Edit2Perceive README): ``Train/FG/<name>.png`` foregrounds and
``Train/GT/<name>.png`` alpha mattes (``Test/FG``, ``Test/GT``, ``Test/Trimap`` for testing);
no backgrounds are shipped: composites use PASCAL VOC2012 images (``background_dir``).
Flattened, pre-composited layout named by the paper's ``Distinctions_matting/filenames_{train,test}.txt``:
``Train_comp/merged/<name>.png_0.png`` + ``Train_comp/alpha/<name>.png_0.png`` (one alpha per
composite; ``Test_comp/merged/test_0.png`` + ``Test_comp/alpha/test_0.png``). Used when
``ROOT/Train_comp/merged`` (``Test_comp`` for split='test') exists.
"""

from __future__ import annotations

from .base import SplitReader
from .compositing import CompositeMattingReader, list_images


class Distinctions646Reader(SplitReader, CompositeMattingReader):
    """Distinctions-646 composites with ``alpha`` (backgrounds from ``background_dir``)."""

    name = "distinctions646"
    splits = {"train": "Train", "test": "Test"}
    layout_help = ("  ROOT/Train/FG/<name>.png, ROOT/Train/GT/<name>.png (ROOT/Test/{FG,GT} for split='test')\n"
                   "  or pre-composited: ROOT/Train_comp/merged/<name>.png_<k>.png + ROOT/Train_comp/alpha/<same name>")

    def _flat_dir(self):
        base = self.root / f"{self.splits[self.split]}_comp"
        return base if (base / "merged").is_dir() and (base / "alpha").is_dir() else None

    def _foregrounds(self):
        base = self.root / self.splits[self.split]
        return [(fg, base / "GT" / fg.name) for fg in list_images(base / "FG")]
