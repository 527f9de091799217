"""Distinctions-646 (Qiao et al., HAttMatting, CVPR 2020).

Facts used (the release and the Edit2Perceive README): ``Train/FG/<name>.png`` foregrounds and
``Train/GT/<name>.png`` alpha mattes (``Test/FG``, ``Test/GT``, ``Test/Trimap`` for testing);
no backgrounds are shipped: composites use PASCAL VOC2012 images (``background_dir``).
"""

from __future__ import annotations

from .compositing import CompositeMattingReader, list_images

_SPLITS = {"train": "Train", "test": "Test"}


class Distinctions646Reader(CompositeMattingReader):
    """Distinctions-646 composites with ``alpha`` (backgrounds from ``background_dir``)."""

    name = "distinctions646"
    layout_help = "  ROOT/Train/FG/<name>.png, ROOT/Train/GT/<name>.png (ROOT/Test/{FG,GT} for split='test')"

    def __init__(self, root, *, split: str = "train", **kwargs):
        if split not in _SPLITS:
            raise ValueError(f"distinctions646 split must be 'train' or 'test', got {split!r}")
        self.split = split
        super().__init__(root, **kwargs)

    def _foregrounds(self):
        base = self.root / _SPLITS[self.split]
        return [(fg, base / "GT" / fg.name) for fg in list_images(base / "FG")]
