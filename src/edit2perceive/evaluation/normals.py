"""Surface-normal test sets in Marigold's layout: NYUv2 (654), ScanNet (300), iBims-1 (100),
DIODE val (771).

Each sample is ``<name>_img.png`` (DIODE: ``<name>.png``, the release's own name) with
``<name>_normal.npy`` (float, H x W x 3, camera frame x right, y up, z toward the viewer).
Sample list: ``--split-file`` or the split file Marigold ships for the set in ``DATA_DIR``
(``nyuv2_test.txt``, ``scannet_test.txt``, ``ibims_test.txt``, ``diode_test.txt``: ``img normal``
per line), else every ``**/*_normal.npy`` with its image. The paper's copies of these lists
prefix the paths (``val/outdoor/...``, ``test/000000_img.png``, ``ibims/corridor_01_img.png``);
either form works with ``DATA_DIR`` = the folder holding the prefix folder or that folder itself.
Valid pixels: finite GT with ``||n_gt|| > gt_min_norm`` (protocol). With ``flip_gt_x`` (the
edit2perceive protocol) the GT is converted to the reference model's frame by
:func:`to_x_left_frame`. Sample id: the image path relative to ``DATA_DIR`` without ``_img.png`` / ``.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import BenchmarkReader, Entry, Sample, listed_paths, read_rgb, read_split_file

SPLIT_FILES = {"nyuv2": "nyuv2_test.txt", "scannet": "scannet_test.txt", "ibims": "ibims_test.txt",
               "diode": "diode_test.txt"}


def to_x_left_frame(normals: np.ndarray) -> np.ndarray:
    """Project frame (x right, y up, z toward viewer) -> Edit2Perceive reference frame (x
    left): negate the x component. The map is its own inverse."""
    out = np.array(normals, dtype=np.float32, copy=True)
    out[..., 0] *= -1.0
    return out


def _sample_id(rel: str) -> str:
    return rel[: -len("_img.png")] if rel.endswith("_img.png") else rel.rsplit(".", 1)[0]


class NormalsReader(BenchmarkReader):
    task = "normal"
    layout = "**/<name>_img.png (DIODE: <name>.png) + <name>_normal.npy (H x W x 3), optional split file"

    def __init__(self, data_dir, protocol, split_file=None):
        self.dataset = protocol.dataset
        super().__init__(data_dir, protocol, split_file)

    def list_entries(self):
        split = self.find_split_file(SPLIT_FILES[self.dataset])
        if split is not None:
            pairs = listed_paths(self.data_dir, read_split_file(split, 2), 2)
        else:
            pairs = []
            for normal in sorted(self.data_dir.rglob("*_normal.npy")):
                stem = str(normal)[: -len("_normal.npy")]
                img = next((Path(stem + s) for s in ("_img.png", ".png") if Path(stem + s).is_file()), None)
                if img is not None:
                    pairs.append((img, normal))
        return [Entry(_sample_id(img.relative_to(self.data_dir).as_posix() if img.is_relative_to(self.data_dir)
                                 else img.as_posix()), {"rgb": img, "normal": n}) for img, n in pairs]

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["normal"])
        normal = np.load(entry.paths["normal"], allow_pickle=False).astype(np.float32)
        if normal.ndim == 3 and normal.shape[0] == 3 and normal.shape[-1] != 3:
            normal = np.transpose(normal, (1, 2, 0))
        if normal.ndim != 3 or normal.shape[-1] != 3:
            raise ValueError(f"{entry.paths['normal']}: normals must be H x W x 3, got shape {normal.shape}")
        finite = np.isfinite(normal).all(axis=-1)
        norm = np.linalg.norm(np.where(finite[..., None], normal, 0.0), axis=-1)
        mask = finite & (norm > self.protocol.gt_min_norm)
        if self.protocol.flip_gt_x:
            normal = to_x_left_frame(normal)
        rgb_path, shape = entry.paths["rgb"], normal.shape[:2]

        def load_rgb():
            rgb = read_rgb(rgb_path)
            if rgb.shape[:2] != shape:
                raise ValueError(f"{rgb_path}: RGB is {rgb.shape[:2]} but its normals are {shape}")
            return rgb

        return Sample(entry.sample_id, normal, mask, load_rgb, meta={"rgb": str(rgb_path)})
