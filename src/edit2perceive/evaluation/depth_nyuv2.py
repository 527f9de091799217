"""NYUv2 test set (654 images) in Marigold's layout.

``DATA_DIR/test/<scene>/rgb_XXXX.png`` (640 x 480) and ``depth_XXXX.png`` (uint16, mm:
divided by 1000). Sample list: ``--split-file`` or ``DATA_DIR/filename_list_test.txt``
(Marigold's ``data_split/nyu/labeled/filename_list_test.txt``: ``rgb depth filled`` per
line; the raw ``depth`` column is evaluated), else every ``test/*/rgb_*.png``.
Sample id: the RGB path relative to ``DATA_DIR`` without extension (``test/kitchen_0004/rgb_0001``).
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import read_png_uint16


class NYUv2Depth(DepthReader):
    dataset = "nyuv2"
    layout = "test/<scene>/rgb_XXXX.png + depth_XXXX.png (uint16 mm), optional filename_list_test.txt"

    def list_entries(self):
        def glob_pairs():
            rels = [p.relative_to(self.data_dir).as_posix() for p in sorted(self.data_dir.glob("test/*/rgb_*.png"))]
            return [(rel, rel.replace("/rgb_", "/depth_")) for rel in rels]

        return self.rgb_depth_entries("filename_list_test.txt", glob_pairs)

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        depth = read_png_uint16(entry.paths["depth"], 1000.0)
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth)
