"""Matting test sets: AIM-500 (500), P3M-500-NP (500), AM-2k validation (200).

Layouts as distributed (``DATA_DIR`` may be the set's folder or a parent listed below):
- AIM-500: ``original/*.jpg``, ``mask/*.png`` (alpha), ``trimap/*.png`` (also under ``AIM-500/``).
- P3M-500-NP: ``original_image/*.jpg``, ``mask/*.png``, ``trimap/*.png``, found as
  ``DATA_DIR``, ``P3M-500-NP/``, ``validation/P3M-500-NP/`` or ``P3M-10k/validation/P3M-500-NP/``.
- AM-2k: ``validation/original/*.jpg``, ``validation/mask/*.png`` (+ ``validation/trimap/``
  when present), found as ``DATA_DIR`` (the validation folder), ``validation/`` or ``AM-2k/validation/``.
Alpha PNGs are divided by 255 (first channel of RGB files). Images are paired by file stem;
an alpha without an image is an error. Sample id: the file stem.
"""

from __future__ import annotations

from pathlib import Path

from .io import BenchmarkReader, Entry, Sample, read_alpha, read_rgb, read_trimap

LAYOUTS = {
    "aim500": ("original", ("", "AIM-500")),
    "p3m500np": ("original_image", ("", "P3M-500-NP", "validation/P3M-500-NP", "P3M-10k/validation/P3M-500-NP")),
    "am2k": ("original", ("", "validation", "AM-2k/validation")),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class MattingReader(BenchmarkReader):
    task = "matting"

    def __init__(self, data_dir, protocol, split_file=None):
        self.dataset = protocol.dataset
        image_dir, roots = LAYOUTS[self.dataset]
        self.layout = f"{image_dir}/*.jpg + mask/*.png (+ trimap/*.png) in one of {[r or '.' for r in roots]}"
        super().__init__(data_dir, protocol, split_file)

    def _root(self) -> Path:
        image_dir, roots = LAYOUTS[self.dataset]
        for rel in roots:
            root = self.data_dir / rel if rel else self.data_dir
            if (root / image_dir).is_dir() and (root / "mask").is_dir():
                return root
        raise FileNotFoundError(f"{self.data_dir}: no {self.dataset} folders found (expected {self.layout})")

    def list_entries(self):
        image_dir, _ = LAYOUTS[self.dataset]
        root = self._root()
        images = {p.stem: p for p in (root / image_dir).iterdir() if p.suffix in IMAGE_SUFFIXES}
        stems = sorted(p.stem for p in (root / "mask").iterdir() if p.suffix in IMAGE_SUFFIXES)
        if self.split_file is not None:
            wanted = [line.split()[0] for line in self.split_file.read_text().splitlines() if line.strip()]
            stems = [Path(w).stem for w in wanted]
        entries = []
        for stem in stems:
            if stem not in images:
                raise FileNotFoundError(f"{root / 'mask' / stem}.*: alpha without an image in {root / image_dir}")
            mask = next((root / "mask" / (stem + s) for s in IMAGE_SUFFIXES if (root / "mask" / (stem + s)).is_file()), None)
            if mask is None:
                raise FileNotFoundError(f"{root / 'mask'}: no alpha file for {stem!r}")
            trimap = next((root / "trimap" / (stem + s) for s in (".png", ".jpg") if (root / "trimap" / (stem + s)).is_file()), None)
            entries.append(Entry(stem, {"rgb": images[stem], "alpha": mask, "trimap": trimap}))
        return entries

    def load(self, entry):
        alpha = read_alpha(entry.paths["alpha"])
        trimap = read_trimap(entry.paths["trimap"]) if entry.paths["trimap"] is not None else None
        if self.protocol.region == "unknown" and trimap is None:
            raise FileNotFoundError(f"{entry.sample_id}: region 'unknown' needs a trimap, none found next to "
                                    f"{entry.paths['alpha']}")
        if trimap is not None and trimap.shape != alpha.shape:
            raise ValueError(f"{entry.paths['trimap']}: trimap {trimap.shape} differs from alpha {alpha.shape}")
        rgb_path, shape = entry.paths["rgb"], alpha.shape

        def load_rgb():
            rgb = read_rgb(rgb_path)
            if rgb.shape[:2] != shape:
                raise ValueError(f"{rgb_path}: RGB is {rgb.shape[:2]} but its alpha is {shape}")
            return rgb

        return Sample(entry.sample_id, alpha, alpha >= 0, load_rgb, trimap=trimap, meta={"rgb": str(rgb_path)})
