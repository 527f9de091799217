"""KITTI Eigen test split (697 listed frames, 652 with ground truth).

Split file (Marigold's ``data_split/kitti/eigen_test_files_with_gt.txt``; ``--split-file``
or ``DATA_DIR/eigen_test_files_with_gt.txt``): ``<rgb> <depth or None> <focal>`` per line,
paths relative to ``DATA_DIR``, e.g.
``2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377``.
Lines whose depth is ``None`` have no ground truth: they are left out and reported in
``skipped`` (45 of 697). Depth PNG: uint16 divided by 256 (metres), 0 = no measurement.
Sample id: the RGB path without extension.
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import Entry, read_png_uint16, read_split_file, strip_suffix

KITTI_SPLIT_FILE = "eigen_test_files_with_gt.txt"


def kitti_split_entries(rows: list[list[str]]) -> tuple[list[tuple[str, str, float | None]], list[tuple[str, str]]]:
    """(frames with GT as (rgb, depth, focal), skipped (id, reason)) from split-file rows."""
    keep, skipped = [], []
    for row in rows:
        rgb, depth = row[0], row[1]
        focal = float(row[2]) if len(row) > 2 and row[2] != "None" else None
        if depth == "None":
            skipped.append((strip_suffix(rgb), "no ground truth in the split file (None)"))
        else:
            keep.append((rgb, depth, focal))
    return keep, skipped


class KITTIDepth(DepthReader):
    dataset = "kitti"
    layout = f"{KITTI_SPLIT_FILE} (rgb depth|None focal per line) + the KITTI raw / annotated depth files it lists"

    def list_entries(self):
        split = self.find_split_file(KITTI_SPLIT_FILE)
        if split is None:
            raise FileNotFoundError(f"{self.data_dir}: KITTI needs the Eigen split file ({KITTI_SPLIT_FILE} in the "
                                    "data directory or --split-file)")
        keep, self.skipped = kitti_split_entries(read_split_file(split, 2))
        return [Entry(strip_suffix(r), {"rgb": self.data_dir / r, "depth": self.data_dir / d, "focal": f})
                for r, d, f in keep]

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        depth = read_png_uint16(entry.paths["depth"], 256.0)
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth, meta={"focal": entry.paths["focal"]})
