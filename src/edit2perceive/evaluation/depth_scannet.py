"""ScanNet validation (800 sampled frames) in Marigold's layout.

``<scene>/color/NNNNNN.jpg`` (640 x 480) and ``<scene>/depth/NNNNNN.png`` (uint16 mm,
divided by 1000). Sample list: ``--split-file`` or ``DATA_DIR/scannet_val_sampled_list_800_1.txt``
(``rgb depth`` per line), else every ``*/color/*.jpg`` with its depth PNG.
Sample id: the RGB path without extension (``scene0011_00/color/000000``).
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import Entry, read_png_uint16, read_split_file, strip_suffix


class ScanNetDepth(DepthReader):
    dataset = "scannet"
    layout = "<scene>/color/NNNNNN.jpg + <scene>/depth/NNNNNN.png (uint16 mm), optional scannet_val_sampled_list_800_1.txt"

    def list_entries(self):
        split = self.find_split_file("scannet_val_sampled_list_800_1.txt")
        if split is not None:
            pairs = [(row[0], row[1]) for row in read_split_file(split, 2)]
        else:
            pairs = []
            for rgb in sorted(self.data_dir.glob("*/color/*.jpg")):
                rel = rgb.relative_to(self.data_dir).as_posix()
                pairs.append((rel, rel.replace("/color/", "/depth/")[:-4] + ".png"))
        return [Entry(strip_suffix(r), {"rgb": self.data_dir / r, "depth": self.data_dir / d}) for r, d in pairs]

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        return self.make_sample(entry.sample_id, entry.paths["rgb"], read_png_uint16(entry.paths["depth"], 1000.0))
