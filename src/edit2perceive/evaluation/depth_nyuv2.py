"""NYUv2 test set (654 images) in either of its two common distributions.

- Marigold's: ``DATA_DIR/test/<scene>/rgb_XXXX.png`` (640 x 480) and ``depth_XXXX.png`` (uint16,
  mm: divided by 1000). List: Marigold's ``data_split/nyu_depth/labeled/filename_list_test.txt``
  (``rgb depth filled`` per line; the raw ``depth`` column is evaluated).
- BTS's ``official_splits/test`` (``utils/extract_official_train_test_set_from_mat.py`` of
  cleinc/bts, used by AdaBins, ZoeDepth, ...): ``<scene>/rgb_%05d.jpg`` (640 x 480, black
  7-px border) and ``<scene>/sync_depth_%05d.png`` (uint16 mm of ``rawDepths``). List: BTS's
  ``train_test_inputs/nyudepthv2_test_files_with_gt.txt`` (``bathroom/rgb_00045.jpg
  bathroom/sync_depth_00045.png 518.8579`` per line, paths from the ``test`` folder).

Sample list: ``--split-file`` or one of those list files in ``DATA_DIR``, else every
``test/*/rgb_*.png`` with its ``depth_*.png``, or every ``**/rgb_*.jpg`` with its
``sync_depth_*.png``. ``DATA_DIR`` may be the dataset folder or any folder above the list's
root. Sample id: the RGB path relative to ``DATA_DIR`` without extension
(``test/kitchen_0004/rgb_0001``, ``official_splits/test/bathroom/rgb_00045``).
"""

from __future__ import annotations

from .depth_base import DepthReader
from .io import read_png_uint16

SPLIT_FILES = ("filename_list_test.txt", "nyudepthv2_test_files_with_gt.txt")


class NYUv2Depth(DepthReader):
    dataset = "nyuv2"
    layout = ("test/<scene>/rgb_XXXX.png + depth_XXXX.png (uint16 mm), or <scene>/rgb_XXXXX.jpg + "
              "sync_depth_XXXXX.png (BTS official_splits/test); optional filename_list_test.txt / "
              "nyudepthv2_test_files_with_gt.txt")

    def list_entries(self):
        def glob_pairs():
            rels = [p.relative_to(self.data_dir).as_posix() for p in sorted(self.data_dir.glob("test/*/rgb_*.png"))]
            pairs = [(rel, rel.replace("/rgb_", "/depth_")) for rel in rels]
            if pairs:
                return pairs
            for rgb in sorted(self.data_dir.rglob("rgb_*.jpg")):
                depth = rgb.with_name("sync_depth_" + rgb.name[len("rgb_"):-len(".jpg")] + ".png")
                if depth.is_file():
                    pairs.append((rgb.relative_to(self.data_dir).as_posix(), depth.relative_to(self.data_dir).as_posix()))
            return pairs

        return self.rgb_depth_entries(SPLIT_FILES, glob_pairs)

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        depth = read_png_uint16(entry.paths["depth"], 1000.0)
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth)
