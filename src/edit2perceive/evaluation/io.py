"""File reading shared by the benchmark readers, with errors that name the file.

Also the reader base class: a reader lists its samples cheaply (``entries``: ids and
paths, nothing decoded) and decodes one sample at a time (``load``), so a run over a
dataset of 24-megapixel images holds one image in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image

from .protocols import Protocol


@dataclass
class Entry:
    """One listed sample: its id (used for saved predictions and per-image rows) and files."""

    sample_id: str
    paths: dict[str, Path]


@dataclass
class Sample:
    """A decoded evaluation sample.

    ``target``: depth ``H x W`` (metres, float32), normals ``H x W x 3`` or alpha ``H x W`` in
    [0, 1]; ``valid_mask``: bool ``H x W`` (protocol ranges, crops and dataset masks applied);
    ``trimap``: uint8 ``H x W`` (matting) or None; ``load_rgb()``: uint8 ``H x W x 3`` cropped
    exactly like the target.
    """

    sample_id: str
    target: np.ndarray
    valid_mask: np.ndarray
    load_rgb: Callable[[], np.ndarray]
    trimap: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


class BenchmarkReader:
    """Base class: ``entries`` (listed samples), ``skipped`` ((id, reason) left out when
    listing, e.g. KITTI frames without ground truth), ``load(entry) -> Sample``."""

    task: str = ""
    dataset: str = ""
    layout: str = ""  # one line describing the expected on-disk layout (used in errors)

    def __init__(self, data_dir: str | os.PathLike, protocol: Protocol, split_file: str | os.PathLike | None = None):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"{self.data_dir}: no such directory (expected {self.layout})")
        self.protocol = protocol
        self.split_file = Path(split_file) if split_file else None
        self.skipped: list[tuple[str, str]] = []
        self.entries: list[Entry] = self.list_entries()
        if not self.entries:
            raise FileNotFoundError(f"{self.data_dir}: no {self.dataset} samples found (expected {self.layout})")

    def list_entries(self) -> list[Entry]:
        raise NotImplementedError

    def load(self, entry: Entry) -> Sample:
        raise NotImplementedError

    def find_split_file(self, *names: str) -> Path | None:
        """The explicit split file, else the first of ``names`` present in ``data_dir``."""
        if self.split_file is not None:
            if not self.split_file.is_file():
                raise FileNotFoundError(f"{self.split_file}: split file not found")
            return self.split_file
        for name in names:
            if (self.data_dir / name).is_file():
                return self.data_dir / name
        return None

    def require(self, *paths: Path) -> None:
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{p}: listed for {self.dataset} but missing (expected {self.layout})")


def read_split_file(path: Path, min_columns: int) -> list[list[str]]:
    """Whitespace-separated rows (blank lines and ``#`` comments skipped); checks column count."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split()
        if len(cols) < min_columns:
            raise ValueError(f"{path}:{lineno}: expected at least {min_columns} columns, got {line!r}")
        rows.append(cols)
    return rows


def resolve_listed(data_dir: Path, first: str) -> tuple[Path, str]:
    """Where a split list's paths live: ``(base, prefix)`` such that listed path ``rel`` is the
    file ``base / rel[len(prefix):]``, found from the list's first path.

    Published lists name files from different roots: Marigold's DIODE lists start at
    ``outdoor/...``, the paper's at ``val/outdoor/...``; BTS's NYUv2 list at ``bathroom/...``
    inside ``official_splits/test/``. Tried in order: ``data_dir/rel``; ``data_dir`` with the
    list's first folder dropped; the one folder under ``data_dir`` that holds ``rel``. When
    nothing matches, ``(data_dir, "")`` (the missing files are reported when loaded)."""
    first = first.replace("\\", "/")
    if (data_dir / first).exists():
        return data_dir, ""
    head, _, tail = first.partition("/")
    if tail and (data_dir / tail).exists():
        return data_dir, head + "/"
    found = next(iter(data_dir.glob(f"**/{first}")), None)
    if found is not None:
        base = found
        for _ in first.split("/"):
            base = base.parent
        return base, ""
    return data_dir, ""


def listed_paths(data_dir: Path, rows: list[list[str]], columns: int) -> list[tuple[Path, ...]]:
    """The first ``columns`` paths of each split-list row as files (see :func:`resolve_listed`)."""
    if not rows:
        return []
    base, prefix = resolve_listed(data_dir, rows[0][0])

    def path(rel: str) -> Path:
        rel = rel.replace("\\", "/")
        return base / (rel[len(prefix):] if prefix and rel.startswith(prefix) else rel)

    return [tuple(path(c) for c in row[:columns]) for row in rows]


def sample_id(data_dir: Path, path: Path) -> str:
    """Sample id: the file's path relative to ``data_dir``, forward slashes, no extension (the
    same with and without a split file, whatever root the list's paths start from)."""
    try:
        rel = path.relative_to(data_dir).as_posix()
    except ValueError:
        rel = path.as_posix()
    return os.path.splitext(rel)[0]


def strip_suffix(rel: str) -> str:
    """Sample id from a relative path: forward slashes, no extension."""
    return os.path.splitext(rel.replace(os.sep, "/"))[0]


def read_rgb(path: Path) -> np.ndarray:
    """uint8 ``H x W x 3`` (greyscale replicated, alpha dropped)."""
    try:
        with PIL.Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: RGB image missing") from None
    except (PIL.UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the header only."""
    with PIL.Image.open(path) as img:
        return img.size[1], img.size[0]


def read_png_uint16(path: Path, scale: float) -> np.ndarray:
    """A 16-bit depth PNG divided by ``scale`` (NYUv2 / ScanNet 1000, KITTI 256): float32 metres."""
    try:
        with PIL.Image.open(path) as img:
            arr = np.asarray(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: depth PNG missing") from None
    if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint8):
        raise ValueError(f"{path}: expected a single-channel 16-bit depth PNG, got dtype {arr.dtype} shape {arr.shape}")
    return (arr.astype(np.float32) / scale).astype(np.float32)


def read_alpha(path: Path) -> np.ndarray:
    """Alpha PNG / JPG as float32 in [0, 1] (first channel of RGB files; 16-bit scaled by 65535)."""
    with PIL.Image.open(path) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype in (np.uint16, np.int32):
        return arr.astype(np.float32) / 65535.0
    raise ValueError(f"{path}: unsupported alpha dtype {arr.dtype}")


def read_trimap(path: Path) -> np.ndarray:
    """uint8 trimap; values must be 0 / 128 / 255."""
    with PIL.Image.open(path) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    values = set(np.unique(arr).tolist())
    if not values <= {0, 128, 255}:
        raise ValueError(f"{path}: trimap values must be 0 / 128 / 255, found {sorted(values)[:8]}")
    return arr.astype(np.uint8)


def range_mask(depth: np.ndarray, valid_min: float | None, valid_max: float | None) -> np.ndarray:
    """Finite depth strictly inside (valid_min, valid_max) (0 as the lower bound when None)."""
    with np.errstate(invalid="ignore"):
        m = np.isfinite(depth) & (depth > (valid_min if valid_min is not None else 0.0))
        if valid_max is not None:
            m &= depth < valid_max
    return m
