"""Common step of every depth reader: ground truth + RGB -> a :class:`Sample` under the protocol.

Order (Marigold): optional KITTI benchmark crop of RGB and GT; valid mask = GT strictly
inside the protocol's range (or the dataset's own mask, DIODE) AND the evaluation crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .crops import eval_crop_mask, kb_crop_box
from .io import BenchmarkReader, Entry, Sample, listed_paths, range_mask, read_rgb, read_split_file, sample_id


class DepthReader(BenchmarkReader):
    task = "depth"

    def rgb_depth_entries(self, split_names, glob_pairs) -> list[Entry]:
        """Entries from the split file (``rgb depth`` columns; ``split_names``: default list
        file name(s) looked up in ``data_dir``) if there is one, else from ``glob_pairs()``
        (relative ``(rgb, depth)`` paths). Sample id: RGB path relative to ``data_dir`` without
        extension (see :func:`.io.sample_id`)."""
        names = (split_names,) if isinstance(split_names, str) else tuple(split_names)
        split = self.find_split_file(*names)
        if split is not None:
            pairs = listed_paths(self.data_dir, read_split_file(split, 2), 2)
        else:
            pairs = [(self.data_dir / r, self.data_dir / d) for r, d in glob_pairs()]
        return [Entry(sample_id(self.data_dir, r), {"rgb": r, "depth": d}) for r, d in pairs]

    def make_sample(self, sample_id: str, rgb_path: Path, depth: np.ndarray, dataset_mask: np.ndarray | None = None,
                    meta: dict | None = None) -> Sample:
        p = self.protocol
        depth = np.asarray(depth, dtype=np.float32)
        box = kb_crop_box(*depth.shape) if p.kb_crop else None
        if box is not None:
            top, bottom, left, right = box
            depth = depth[top:bottom, left:right]
            dataset_mask = None if dataset_mask is None else dataset_mask[top:bottom, left:right]
        if p.use_dataset_mask:
            if dataset_mask is None:
                raise ValueError(f"{sample_id}: the protocol needs the dataset's valid mask, none was read")
            mask = dataset_mask.astype(bool) & np.isfinite(depth) & (depth > 0)
            if p.valid_max is not None:
                mask &= range_mask(depth, p.valid_min, p.valid_max)
        else:
            mask = range_mask(depth, p.valid_min, p.valid_max)
        mask &= eval_crop_mask(p.eval_crop, depth.shape, str(rgb_path))
        gt_shape = depth.shape

        def load_rgb() -> np.ndarray:
            rgb = read_rgb(rgb_path)
            if box is not None:
                rgb = rgb[box[0]:box[1], box[2]:box[3]]
            if rgb.shape[:2] != gt_shape:
                raise ValueError(f"{rgb_path}: RGB is {rgb.shape[:2]} but its ground truth is {gt_shape}")
            return rgb

        info = {"rgb": str(rgb_path), **(meta or {})}
        if box is not None:
            info["kb_crop"] = box
        return Sample(sample_id, depth, mask, load_rgb, meta=info)
