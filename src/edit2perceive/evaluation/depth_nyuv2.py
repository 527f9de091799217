"""NYUv2 test set (654 images) in Marigold's layout.

``DATA_DIR/test/<scene>/rgb_XXXX.png`` (640 x 480) and ``depth_XXXX.png`` (uint16, mm:
divided by 1000). Sample list: ``--split-file`` or ``DATA_DIR/filename_list_test.txt``
(Marigold's ``data_split/nyu/labeled/filename_list_test.txt``: ``rgb depth filled`` per
line; the raw ``depth`` column is evaluated), else every ``test/*/rgb_*.png``.
Sample id: the RGB path relative to ``DATA_DIR`` without extension (``test/kitchen_0004/rgb_0001``).
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import Entry, read_png_uint16, read_split_file, strip_suffix


class NYUv2Depth(DepthReader):
    dataset = "nyuv2"
    layout = "test/<scene>/rgb_XXXX.png + depth_XXXX.png (uint16 mm), optional filename_list_test.txt"

    def list_entries(self):
        split = self.find_split_file("filename_list_test.txt")
        if split is not None:
            pairs = [(row[0], row[1]) for row in read_split_file(split, 2)]
        else:
            pairs = []
            for rgb in sorted(self.data_dir.glob("test/*/rgb_*.png")):
                rel = rgb.relative_to(self.data_dir).as_posix()
                pairs.append((rel, rel.replace("/rgb_", "/depth_")))
        return [Entry(strip_suffix(r), {"rgb": self.data_dir / r, "depth": self.data_dir / d}) for r, d in pairs]

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        depth = read_png_uint16(entry.paths["depth"], 1000.0)
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth)
