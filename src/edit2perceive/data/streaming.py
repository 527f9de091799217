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
"""

from __future__ import annotations

import warnings

from datasets import IterableDataset, interleave_datasets, load_dataset
from datasets.distributed import split_dataset_by_node

from .records import STREAM_FEATURES, decode_example, encode_stream_row

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


def converted_dataset(path, *, split: str = "train", decode: bool = True) -> IterableDataset:
    """Parquet shards from ``dataset_scripts/convert.py`` (``load_dataset(path, streaming=True)``)
    as a stream of example dicts (``decode=False``: raw shard rows)."""
    ds = load_dataset(str(path), split=split, streaming=True)
    return _decoded(ds) if decode else ds


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
