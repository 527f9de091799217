"""ScanNet validation (800 sampled frames) in Marigold's layout.

``<scene>/color/NNNNNN.jpg`` (640 x 480) and ``<scene>/depth/NNNNNN.png`` (uint16 mm,
divided by 1000). Sample list: ``--split-file`` or ``DATA_DIR/scannet_val_sampled_list_800_1.txt``
(``rgb depth`` per line), else every ``*/color/*.jpg`` with its depth PNG.
Sample id: the RGB path without extension (``scene0011_00/color/000000``).
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import read_png_uint16


class ScanNetDepth(DepthReader):
    dataset = "scannet"
    layout = "<scene>/color/NNNNNN.jpg + <scene>/depth/NNNNNN.png (uint16 mm), optional scannet_val_sampled_list_800_1.txt"

    def list_entries(self):
        def glob_pairs():
            rels = [p.relative_to(self.data_dir).as_posix() for p in sorted(self.data_dir.glob("*/color/*.jpg"))]
            return [(rel, rel.replace("/color/", "/depth/")[:-4] + ".png") for rel in rels]

        return self.rgb_depth_entries("scannet_val_sampled_list_800_1.txt", glob_pairs)

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        return self.make_sample(entry.sample_id, entry.paths["rgb"], read_png_uint16(entry.paths["depth"], 1000.0))
