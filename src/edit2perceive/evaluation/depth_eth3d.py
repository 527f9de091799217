"""ETH3D (454 DSLR images) in Marigold's layout.

``rgb/<scene>/images/dslr_images/DSC_XXXX.JPG`` (6048 x 4032) and
``depth/<scene>_dslr_depth/<scene>/ground_truth_depth/dslr_images/DSC_XXXX.JPG``: despite
the name, a raw little-endian float32 binary of shape (H, W) = the RGB size (4032 x 6048);
``inf`` marks no measurement and becomes 0. Sample list: ``--split-file`` or
``DATA_DIR/eth3d_filename_list.txt`` (``rgb depth`` per line), else a glob of the layout.
Sample id: the RGB path without extension.
"""

from __future__ import annotations

import numpy as np

from .depth_base import DepthReader
from .io import image_size


def read_eth3d_depth(path, height: int, width: int) -> np.ndarray:
    """Raw float32 depth of ``height x width``; inf -> 0. Checks the byte size."""
    expected = height * width * 4
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, expected {expected} (float32 {height} x {width}, the RGB size)")
    depth = np.fromfile(path, dtype="<f4").reshape(height, width).copy()
    depth[np.isinf(depth)] = 0.0
    return depth


class ETH3DDepth(DepthReader):
    dataset = "eth3d"
    layout = ("rgb/<scene>/images/dslr_images/*.JPG + depth/<scene>_dslr_depth/<scene>/ground_truth_depth/"
              "dslr_images/*.JPG (raw float32), optional eth3d_filename_list.txt")

    def list_entries(self):
        def glob_pairs():
            pairs = []
            for rgb in sorted(self.data_dir.glob("rgb/*/images/dslr_images/*.JPG")):
                scene = rgb.parts[-4]
                depth = f"depth/{scene}_dslr_depth/{scene}/ground_truth_depth/dslr_images/{rgb.name}"
                pairs.append((rgb.relative_to(self.data_dir).as_posix(), depth))
            return pairs

        return self.rgb_depth_entries("eth3d_filename_list.txt", glob_pairs)

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["depth"])
        h, w = image_size(entry.paths["rgb"])
        depth = read_eth3d_depth(entry.paths["depth"], h, w)
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth)
