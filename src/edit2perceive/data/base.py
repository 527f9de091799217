"""Reader base class: a list of lightweight records (file paths), loaded one example at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .example import BadDataLog, BadSampleError

#: errors that mean "this sample is bad" (missing/corrupt files, bad values); anything else is a bug
BAD_SAMPLE_ERRORS = (BadSampleError, OSError, ValueError, KeyError, EOFError, RuntimeError)


class Reader:
    """Iterates the examples of one dataset in its released on-disk layout.

    Subclasses set ``name`` and ``targets`` and implement ``_list_records`` (cheap: paths only)
    and ``load(record)`` (reads files, returns the example dict or raises). Iterating skips bad
    samples with a warning naming the file and counts them in ``bad`` (``strict=True`` raises).
    Readers are picklable, so ``datasets`` can run them in DataLoader workers.
    """

    name = "reader"
    targets: tuple = ()
    layout_help = ""

    def __init__(self, root, *, strict: bool = False, limit: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.name}: dataset root {self.root} does not exist.{self._help()}")
        self.strict = strict
        self.limit = limit
        self.bad = BadDataLog(strict=strict)
        self._records: list[dict] | None = None

    def _help(self) -> str:
        return f" Expected layout:\n{self.layout_help}" if self.layout_help else ""

    def _list_records(self) -> list[dict]:
        raise NotImplementedError

    def load(self, record: dict) -> dict:
        raise NotImplementedError

    def records(self) -> list[dict]:
        """All sample records (each has ``id`` and ``file``), sorted by id, cut to ``limit``."""
        if self._records is None:
            records = sorted(self._list_records(), key=lambda r: r["id"])
            if not records:
                raise FileNotFoundError(f"{self.name}: no samples found under {self.root}.{self._help()}")
            self._records = records[: self.limit] if self.limit is not None else records
        return self._records

    def __len__(self) -> int:
        return len(self.records())

    def iter_records(self, records: Iterable[dict]) -> Iterator[dict]:
        """Load the given records, skipping (or, if strict, raising on) bad samples."""
        for record in records:
            try:
                example = self.load(record)
            except BAD_SAMPLE_ERRORS as error:
                self.bad.handle(self.name, record.get("file", record["id"]), error)
                continue
            yield example

    def __iter__(self) -> Iterator[dict]:
        return self.iter_records(self.records())

    def meta(self, record: dict, **extra) -> dict:
        return {"source": self.name, "id": f"{self.name}/{record['id']}", "file": str(record["file"]), **extra}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"
