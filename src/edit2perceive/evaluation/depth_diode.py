"""DIODE validation (771 images: 325 indoor + 446 outdoor), depth.

``[val/]{indoors,outdoor}/scene_XXXXX/scan_XXXXX/<name>.png`` (1024 x 768; no ``_img``
suffix) with ``<name>_depth.npy`` (metres, H x W x 1) and ``<name>_depth_mask.npy`` (valid
pixels), as the DIODE ``val`` tarball extracts and as Marigold's
``data_split/diode_depth/diode_val_{all,indoor,outdoor}_filename_list.txt`` name them
(``rgb depth mask`` per line, paths from ``indoors/`` / ``outdoor/``). Sample list:
``--split-file`` or ``DATA_DIR/diode_val_all_filename_list.txt``, else a glob for ``*_depth.npy``;
lists whose paths start with ``val/`` (the paper's) or without it work with ``DATA_DIR`` = the
folder holding ``val/`` or ``val/`` itself. Sample id: the RGB path relative to ``DATA_DIR``
without extension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .depth_base import DepthReader
from .io import Entry, listed_paths, read_split_file, sample_id


def load_npy(path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False).squeeze()
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
            rows = [row if len(row) > 2 else [*row[:2], row[1][:-4] + "_mask.npy"] for row in read_split_file(split, 2)]
            triples = listed_paths(self.data_dir, rows, 3)
        else:
            triples = []
            for depth in sorted(self.data_dir.rglob("*_depth.npy")):
                stem = str(depth)[: -len("_depth.npy")]
                triples.append((Path(stem + ".png"), depth, Path(stem + "_depth_mask.npy")))
        return [Entry(sample_id(self.data_dir, r), {"rgb": r, "depth": d, "mask": m}) for r, d, m in triples]

    def load(self, entry):
        self.require(entry.paths["rgb"])
        depth = load_npy(entry.paths["depth"], "depth").astype(np.float32)
        mask = load_npy(entry.paths["mask"], "depth mask").astype(bool)
        if mask.shape != depth.shape:
            raise ValueError(f"{entry.paths['mask']}: mask shape {mask.shape} differs from depth shape {depth.shape}")
        return self.make_sample(entry.sample_id, entry.paths["rgb"], depth, dataset_mask=mask)
