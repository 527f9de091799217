"""DIODE validation (771 images: 325 indoor + 446 outdoor), depth.

``{indoors,outdoor}/scene_XXXXX/scan_XXXXX/<name>.png`` (1024 x 768) with
``<name>_depth.npy`` (metres, H x W x 1) and ``<name>_depth_mask.npy`` (valid pixels).
Sample list: ``--split-file`` or ``DATA_DIR/diode_val_all_filename_list.txt`` (``rgb depth
mask`` per line), else a glob for ``*_depth.npy``. Sample id: the RGB path without extension.
"""

from __future__ import annotations

import numpy as np

from .depth_base import DepthReader
from .io import Entry, read_split_file, strip_suffix


def load_npy(path, what: str) -> np.ndarray:
    try:
        return np.load(path).squeeze()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: DIODE {what} missing") from None
    except ValueError as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err


class DIODEDepth(DepthReader):
    dataset = "diode"
    layout = "<split>/scene_*/scan_*/<name>.png + <name>_depth.npy + <name>_depth_mask.npy"

    def list_entries(self):
        split = self.find_split_file("diode_val_all_filename_list.txt")
        if split is not None:
            triples = [(row[0], row[1], row[2] if len(row) > 2 else row[1][:-4] + "_mask.npy")
                       for row in read_split_file(split, 2)]
        else:
            triples = []
            for depth in sorted(self.data_dir.rglob("*_depth.npy")):
                rel = depth.relative_to(self.data_dir).as_posix()
                stem = rel[: -len("_depth.npy")]
                triples.append((stem + ".png", rel, stem + "_depth_mask.npy"))
        return [Entry(strip_suffix(r), {"rgb": self.data_dir / r, "depth": self.data_dir / d, "mask": self.data_dir / m})
                for r, d, m in triples]

    def load(self, entry):
        self.require(entry.paths["rgb"])
        depth = load_npy(entry.paths["depth"], "depth").astype(np.float32)
        mask = load_npy(entry.paths["mask"], "depth mask").astype(bool)
        if mask.shape != depth.shape:
            raise ValueError(f"{entry.paths['mask']}: mask shape {mask.shape} differs from depth shape {depth.shape}")
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth, dataset_mask=mask)
