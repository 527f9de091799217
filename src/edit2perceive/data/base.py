"""Reader base class: a list of lightweight records (file paths), loaded one example at a time,
optionally restricted to a published split list, with statistics of every pass."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL.Image import DecompressionBombError

from .example import BadDataLog, BadSampleError

logger = logging.getLogger(__name__)

#: errors that mean "this sample is bad" (missing/corrupt files, bad values, an image PIL refuses
#: as a decompression bomb); anything else is a bug
BAD_SAMPLE_ERRORS = (BadSampleError, OSError, ValueError, KeyError, EOFError, RuntimeError, DecompressionBombError)


def read_split_rows(path) -> list[list[str]]:
    """Rows of a split list (Marigold's / the paper's ``data_split/*.txt``): columns separated by
    tabs when the line has one (names may contain spaces, e.g. COCO-Matting), else by whitespace;
    blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found")
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append([c.strip() for c in line.split("\t")] if "\t" in line else line.split())
    return rows


@dataclass
class ReaderStats:
    """What one reader did: samples read, skipped (with reasons, in ``bad``), split-list rows
    without a sample on disk, and pixel counts of the examples read (invalid = off in
    ``valid_mask``; non-finite = NaN/inf in the source files, a subset of invalid)."""

    bad: BadDataLog
    read: int = 0
    pixels: int = 0
    invalid_pixels: int = 0
    nonfinite_pixels: int = 0
    listed_missing: list = field(default_factory=list)

    def add(self, example: dict) -> None:
        valid = example["valid_mask"]
        self.read += 1
        self.pixels += int(valid.size)
        if "depth" in example or "normal" in example:
            self.invalid_pixels += int(valid.size - np.count_nonzero(valid))
        self.nonfinite_pixels += int(example["meta"].get("nonfinite_pixels", 0))

    def summary(self) -> dict:
        return {"read": self.read, "skipped": self.bad.num_skipped, "skip_reasons": dict(self.bad.reasons),
                "listed_missing": len(self.listed_missing), "pixels": self.pixels,
                "invalid_pixels": self.invalid_pixels, "nonfinite_pixels": self.nonfinite_pixels}

    def report(self, name: str) -> str:
        s = self.summary()
        line = (f"{name}: read {s['read']}, skipped {s['skipped']}, invalid pixels {s['invalid_pixels']} of {s['pixels']}"
                f" ({s['nonfinite_pixels']} non-finite)")
        if s["listed_missing"]:
            line += f", {s['listed_missing']} split-list rows without files"
        if s["skip_reasons"]:
            line += "; skip reasons: " + "; ".join(f"{n} x {r}" for r, n in self.bad.reasons.most_common(5))
        return line


class Reader:
    """Iterates the examples of one dataset in its released on-disk layout.

    Subclasses set ``name`` and ``targets`` and implement ``_list_records`` (cheap: paths only),
    ``load(record)`` (reads files, returns the example dict or raises) and ``listed_id(row)``
    (the record id a split-list row names, or None). Iterating skips bad samples with a warning
    naming the file and counts them in ``bad`` (``strict=True`` raises); ``stats`` counts what was
    read, skipped and invalid, and a full pass logs ``stats.report()`` at INFO level.
    ``split_file``: a published split list (Marigold's or the paper's ``data_split/*.txt``);
    only the samples it names are read. Readers are picklable, so ``datasets`` can run them in
    DataLoader workers.
    """

    name = "reader"
    targets: tuple = ()
    layout_help = ""
    split_file = None

    def __init__(self, root, *, strict: bool = False, limit: int | None = None, split_file=None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.name}: dataset root {self.root} does not exist.{self._help()}")
        self.strict = strict
        self.limit = limit
        self.split_file = None if split_file is None else Path(split_file)
        if self.split_file is not None and not self.split_file.is_file():
            raise FileNotFoundError(f"{self.name}: split file {self.split_file} does not exist")
        self.bad = BadDataLog(strict=strict)
        self._records: list[dict] | None = None

    @property
    def stats(self) -> ReaderStats:
        """Counts of all passes so far (created on first use; shares ``bad``)."""
        if "_stats" not in self.__dict__:
            self._stats = ReaderStats(self.bad)
        return self._stats

    def _help(self) -> str:
        return f" Expected layout:\n{self.layout_help}" if self.layout_help else ""

    def _list_records(self) -> list[dict]:
        raise NotImplementedError

    def listed_id(self, row: list[str]) -> str | None:
        """The record id named by a split-list row (columns as in the list), None if unrecognized."""
        raise NotImplementedError

    def load(self, record: dict) -> dict:
        raise NotImplementedError

    def _apply_split(self, records: list[dict]) -> list[dict]:
        rows = read_split_rows(self.split_file)
        wanted = {}
        for row in rows:
            rid = self.listed_id(row)
            if rid is None:
                raise ValueError(f"{self.split_file}: row {' '.join(row)!r} does not name a {self.name} sample "
                                 f"(expected paths like the published lists).{self._help()}")
            wanted.setdefault(rid, row)
        ids = {r["id"] for r in records}
        self.stats.listed_missing = [" ".join(row) for rid, row in wanted.items() if rid not in ids]
        kept = [r for r in records if r["id"] in wanted]  # still sorted by id
        if not kept and wanted:
            first = next(iter(wanted.values()))
            raise FileNotFoundError(f"{self.name}: none of the {len(wanted)} samples listed in {self.split_file} is "
                                    f"under {self.root} (first: {' '.join(first)!r}).{self._help()}")
        if self.stats.listed_missing:
            logger.warning("%s: %d of %d rows of %s have no files under %s (first: %s)", self.name,
                           len(self.stats.listed_missing), len(wanted), self.split_file, self.root,
                           self.stats.listed_missing[0])
        return kept

    def records(self) -> list[dict]:
        """All sample records (each has ``id`` and ``file``), sorted by id, restricted to the split
        file's samples, cut to ``limit``."""
        if self._records is None:
            records = sorted(self._list_records(), key=lambda r: r["id"])
            if not records:
                raise FileNotFoundError(f"{self.name}: no samples found under {self.root}.{self._help()}")
            if self.split_file is not None:
                records = self._apply_split(records)
            self._records = records[: self.limit] if self.limit is not None else records
        return self._records

    def __len__(self) -> int:
        return len(self.records())

    def iter_records(self, records: Iterable[dict]) -> Iterator[dict]:
        """Load the given records, skipping (or, if strict, raising on) bad samples; counted in ``stats``."""
        for record in records:
            try:
                example = self.load(record)
            except BAD_SAMPLE_ERRORS as error:
                self.bad.handle(self.name, record.get("file", record["id"]), error)
                continue
            self.stats.add(example)
            yield example

    def __iter__(self) -> Iterator[dict]:
        yield from self.iter_records(self.records())
        logger.info(self.stats.report(self.name))

    def meta(self, record: dict, **extra) -> dict:
        return {"source": self.name, "id": f"{self.name}/{record['id']}", "file": str(record["file"]), **extra}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"


class SplitReader(Reader):
    """A reader of one split of a release: ``splits`` maps each split name to where it lives."""

    splits: dict = {}

    def __init__(self, root, *, split: str = "train", **kwargs):
        if split not in self.splits:
            raise ValueError(f"{self.name} split must be one of {tuple(self.splits)}, got {split!r}")
        self.split = split
        super().__init__(root, **kwargs)
