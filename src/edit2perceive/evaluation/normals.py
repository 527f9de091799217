"""Surface-normal test sets in Marigold's layout: NYUv2 (654), ScanNet (300), iBims-1 (100),
DIODE val (771).

Each sample is ``<name>_img.png`` with ``<name>_normal.npy`` (float, H x W x 3, camera frame
x right, y up, z toward the viewer). Sample list: ``--split-file`` or the split file Marigold
ships for the set in ``DATA_DIR`` (``nyuv2_test.txt``, ``scannet_test.txt``, ``ibims_test.txt``,
``diode_test.txt``: ``img normal`` per line), else every ``**/*_img.png``.
Valid pixels: finite GT with ``||n_gt|| > gt_min_norm`` (protocol). With ``flip_gt_x`` (the
edit2perceive protocol) the GT is converted to the reference model's frame by
:func:`to_x_left_frame`. Sample id: the image path without ``_img.png``.
"""

from __future__ import annotations

import numpy as np

from .io import BenchmarkReader, Entry, Sample, read_rgb, read_split_file

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
    layout = "**/<name>_img.png + <name>_normal.npy (H x W x 3), optional split file"

    def __init__(self, data_dir, protocol, split_file=None):
        self.dataset = protocol.dataset
        super().__init__(data_dir, protocol, split_file)

    def list_entries(self):
        split = self.find_split_file(SPLIT_FILES[self.dataset])
        if split is not None:
            pairs = [(row[0], row[1]) for row in read_split_file(split, 2)]
        else:
            pairs = []
            for img in sorted(self.data_dir.rglob("*_img.png")):
                rel = img.relative_to(self.data_dir).as_posix()
                pairs.append((rel, rel[: -len("_img.png")] + "_normal.npy"))
        return [Entry(_sample_id(r), {"rgb": self.data_dir / r, "normal": self.data_dir / n}) for r, n in pairs]

    def load(self, entry):
        self.require(entry.paths["rgb"], entry.paths["normal"])
        normal = np.load(entry.paths["normal"]).astype(np.float32)
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
