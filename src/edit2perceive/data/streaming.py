"""Streaming with ``datasets`` (no loading scripts: they were removed in datasets 4).

- :func:`source_dataset`: one reader (raw files) as an ``IterableDataset`` of example dicts. Its
  records are split into ``num_shards`` shards: ``shuffle(seed=...)`` permutes shards and fills a
  buffer, ``set_epoch`` reseeds, DataLoader workers and :func:`split_by_node` hand out shards.
- :func:`converted_dataset`: Parquet shards written by ``dataset_scripts`` via
  ``load_dataset(dir, streaming=True)``, decoded to the same example dicts.
- :func:`task_mixture`: per-task mixture with the paper's ratios through ``interleave_datasets``.
- Resuming: ``ds.state_dict()`` / ``ds.load_state_dict(state)`` (exact without a shuffle buffer;
  with one, datasets refills the buffer, so resumption is at the right shard positions but the
  buffered examples are redrawn).
- Bad converted data (:class:`BadRows`): a shard whose Parquet footer cannot be read (truncated,
  "magic bytes not found") is left out when the stream is built; a row whose images or arrays
  cannot be decoded is skipped. Both are counted and named in a ``UserWarning``; more than
  ``max_bad_fraction`` of rows (or of shards) bad stops with :class:`TooMuchBadData`. The same
  holds for map-style access (:class:`ConvertedRows`). Counts are per process (per DataLoader
  worker).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import PIL.Image
from datasets import Features, IterableDataset, Value, interleave_datasets, load_dataset
from datasets import Image as ImageFeature
from datasets.distributed import split_dataset_by_node

from .records import SHARD_FEATURES, STREAM_FEATURES, decode_example, encode_stream_row

#: default bound on the fraction of bad rows (and of bad shards) before a run stops
MAX_BAD_FRACTION = 0.01
#: errors of decoding one row that mean "this row is bad" (corrupt PNG / npy bytes, bad JSON)
ROW_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, SyntaxError, PIL.Image.DecompressionBombError)


class TooMuchBadData(RuntimeError):
    """More than the allowed fraction of rows or shards could not be read."""


class BadRows:
    """Skip, count and name bad rows; stop when more than ``max_bad_fraction`` are bad.

    The fraction is taken over ``max(rows seen, min_rows)``, so a few bad rows at the very
    start do not stop a run: with the defaults (1 %, 100) the second bad row among the first
    100 stops it. ``skipped`` keeps ``(where, reason)`` pairs.
    """

    def __init__(self, max_bad_fraction: float = MAX_BAD_FRACTION, min_rows: int = 100):
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be within [0, 1], got {max_bad_fraction}")
        self.max_bad_fraction, self.min_rows = max_bad_fraction, min_rows
        self.seen = 0
        self.skipped: list[tuple[str, str]] = []

    def ok(self) -> None:
        self.seen += 1

    def skip(self, where: str, error: BaseException) -> None:
        self.seen += 1
        reason = f"{type(error).__name__}: {error}"
        self.skipped.append((where, reason))
        warnings.warn(f"skipping bad row {where} ({reason}); {len(self.skipped)} of {self.seen} rows bad so far",
                      stacklevel=2)
        if len(self.skipped) > self.max_bad_fraction * max(self.seen, self.min_rows):
            raise TooMuchBadData(
                f"{len(self.skipped)} of {self.seen} rows could not be decoded, more than max_bad_fraction="
                f"{self.max_bad_fraction:g}; last: {where} ({reason}). Re-convert the source "
                "(dataset_scripts/convert.py verifies and rebuilds damaged shards) or raise the limit")


def readable_shards(files, max_bad_fraction: float = MAX_BAD_FRACTION) -> list[str]:
    """The Parquet files whose footer reads; damaged ones are named in a warning and left out.
    ``TooMuchBadData`` when more than ``max_bad_fraction`` of them (or all) are damaged."""
    import pyarrow.parquet as pq

    good, bad = [], []
    for f in files:
        try:
            pq.ParquetFile(f).metadata  # noqa: B018 - reads and checks the footer
        except Exception as err:  # noqa: BLE001 - ArrowInvalid, OSError: a damaged file
            bad.append(f)
            warnings.warn(f"skipping damaged shard {f} ({type(err).__name__}: {err})", stacklevel=2)
        else:
            good.append(str(f))
    if bad and (not good or len(bad) > max_bad_fraction * len(files)):
        raise TooMuchBadData(f"{len(bad)} of {len(files)} shards are damaged (first: {bad[0]}), more than "
                             f"max_bad_fraction={max_bad_fraction:g}; re-convert the source")
    return good


def _shard_files(path, split: str) -> list[Path]:
    files = sorted(Path(path, "data").glob(f"{split}-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no converted shards data/{split}-*.parquet "
                                "(write them with dataset_scripts/convert.py)")
    return files


def _undecoded_images(ds):
    """Image columns as raw bytes: a corrupt image then fails in our decoding, row by row."""
    for name, feature in SHARD_FEATURES.items():
        if isinstance(feature, ImageFeature) and name in ds.column_names:
            ds = ds.cast_column(name, ImageFeature(decode=False))
    return ds


def _row_name(row: dict) -> str:
    return f"{row.get('source') or '?'}/{row.get('id') or '?'}"


def _checked_rows(ds: IterableDataset, bad: BadRows) -> IterableDataset:
    """Shard rows -> stream rows; rows that cannot be decoded are skipped through ``bad``."""
    features = Features({**STREAM_FEATURES, "_bad": Value("bool")})

    def convert(row):
        try:
            out = encode_stream_row(decode_example(row))
        except ROW_ERRORS as err:
            bad.skip(_row_name(row), err)
            return {**dict.fromkeys(STREAM_FEATURES), "_bad": True}
        bad.ok()
        return {**out, "_bad": False}

    ds = ds.map(convert, remove_columns=list(ds.column_names), features=features)
    return ds.filter(lambda row: not row["_bad"]).remove_columns("_bad")

#: the paper's training mixtures (METHOD.md, section Data)
MIXTURES = {
    "depth": {"hypersim": 0.9, "vkitti2": 0.1},
    "normal": {"hypersim": 0.5, "interiorverse": 0.45, "sintel": 0.05},
    "matting": {"composition1k": 0.25, "distinctions646": 0.25, "am2k": 0.25, "coco_matting": 0.25},
}


def _generate(reader, shards):
    for records in shards:
        for example in reader.iter_records(records):
            yield encode_stream_row(example)


def _shard(records: list, num_shards: int) -> list[list]:
    num_shards = max(1, min(num_shards, len(records)))
    return [records[i::num_shards] for i in range(num_shards)]


def _encoded(source, num_shards: int = 64) -> IterableDataset:
    """Reader or undecoded stream -> stream of encoded rows (``STREAM_FEATURES``), mixable."""
    if not isinstance(source, IterableDataset):
        shards = _shard(list(source.records()), num_shards)
        return IterableDataset.from_generator(_generate, features=STREAM_FEATURES,
                                              gen_kwargs={"reader": source, "shards": shards})
    if source.features is None:
        raise ValueError("pass readers or undecoded streams (source_dataset(..., decode=False), "
                         "converted_dataset(..., decode=False)) to a mixture; decode after mixing")
    if source.features == STREAM_FEATURES:
        return source
    return source.map(lambda row: encode_stream_row(decode_example(row)),
                      remove_columns=list(source.column_names), features=STREAM_FEATURES)


def _decoded(ds: IterableDataset) -> IterableDataset:
    return ds.map(decode_example, remove_columns=list(ds.column_names))


def source_dataset(reader, *, num_shards: int = 64, decode: bool = True) -> IterableDataset:
    """A reader (or :class:`SyntheticScenes`) as an ``IterableDataset`` of example dicts
    (``decode=False``: of encoded rows, for mixing)."""
    ds = _encoded(reader, num_shards)
    return _decoded(ds) if decode else ds


def converted_dataset(path, *, split: str = "train", decode: bool = True,
                      max_bad_fraction: float = MAX_BAD_FRACTION) -> IterableDataset:
    """Parquet shards from ``dataset_scripts/convert.py`` (read with ``load_dataset("parquet",
    streaming=True)``) as a stream of example dicts (``decode=False``: encoded stream rows, for
    mixing). Damaged shards and undecodable rows are skipped, counted and named (module doc)."""
    files = readable_shards(_shard_files(path, split), max_bad_fraction)
    ds = _undecoded_images(load_dataset("parquet", data_files={split: files}, split=split, streaming=True))
    ds = _checked_rows(ds, BadRows(max_bad_fraction))
    return _decoded(ds) if decode else ds


class ConvertedRows:
    """Map-style access to converted shards (``load_dataset("parquet")``, Arrow-cached):
    ``rows[i]`` is an example dict. A row that cannot be decoded is skipped, counted and
    named through :class:`BadRows`, and the next readable row (cyclically) is returned in
    its place, so a DataLoader sampler never sees a failure; ``bad`` holds the counts."""

    def __init__(self, path, *, split: str = "train", max_bad_fraction: float = MAX_BAD_FRACTION):
        files = readable_shards(_shard_files(path, split), max_bad_fraction)
        self.rows = _undecoded_images(load_dataset("parquet", data_files={split: files}, split=split))
        self.bad = BadRows(max_bad_fraction)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        n = len(self.rows)
        for k in range(n):
            row = self.rows[(int(index) + k) % n]
            try:
                example = decode_example(row)
            except ROW_ERRORS as err:
                self.bad.skip(_row_name(row), err)
                continue
            self.bad.ok()
            return example
        raise TooMuchBadData(f"no row of {n} could be decoded")


def split_by_node(ds: IterableDataset, rank: int, world_size: int) -> IterableDataset:
    """This process's part of a stream (whole shards when ``n_shards % world_size == 0``)."""
    if ds.num_shards % world_size:
        warnings.warn(
            f"stream has {ds.num_shards} shards, not a multiple of world_size={world_size}: every process reads "
            "all shards and keeps 1 example in world_size (correct, but more I/O)", stacklevel=2)
    return split_dataset_by_node(ds, rank=rank, world_size=world_size)


def task_mixture(task: str, sources: dict, *, ratios: dict | None = None, seed: int = 0,
                 shuffle_buffer: int = 0, rank: int | None = None, world_size: int | None = None,
                 stopping_strategy: str = "all_exhausted", num_shards: int = 64) -> IterableDataset:
    """Interleave the task's sources with the paper's ratios (or ``ratios``).

    ``sources``: name -> reader, or an undecoded stream (``source_dataset(..., decode=False)``,
    ``converted_dataset(..., decode=False)``); the names must be keys of
    the ratio table (``MIXTURES[task]``). A subset is allowed: its ratios are renormalized.
    Each source is shuffled (``shuffle_buffer > 0``) and split by node (``rank``/``world_size``)
    *before* interleaving, so every process gets whole shards of every source. The mixture
    draws the next example's source at random with the ratios (seeded).
    """
    table = dict(ratios or MIXTURES.get(task) or {})
    if not table:
        raise ValueError(f"unknown task {task!r}: expected one of {sorted(MIXTURES)} or explicit ratios")
    unknown = sorted(set(sources) - set(table))
    if unknown:
        raise ValueError(f"{task} mixture has no ratio for {unknown}; known sources: {sorted(table)}")
    if not sources:
        raise ValueError(f"{task} mixture needs at least one source of {sorted(table)}")
    names = [n for n in table if n in sources]
    total = sum(table[n] for n in names)
    streams = []
    for i, name in enumerate(names):
        ds = _encoded(sources[name], num_shards)
        if shuffle_buffer:
            ds = ds.shuffle(seed=seed + i, buffer_size=shuffle_buffer)
        if world_size is not None:
            ds = split_by_node(ds, rank=int(rank or 0), world_size=world_size)
        streams.append(ds)
    mixed = streams[0] if len(streams) == 1 else interleave_datasets(
        streams, probabilities=[table[n] / total for n in names], seed=seed, stopping_strategy=stopping_strategy)
    return _decoded(mixed)
