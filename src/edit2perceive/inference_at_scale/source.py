"""The input side of dataset prediction: any ``datasets`` source, its image column, its rows.

``NAME_OR_PATH`` is, in this order: a data file (``.parquet``, ``.arrow``, ``.csv``,
``.json``, ``.jsonl``: loaded with that builder); a folder written by
``Dataset.save_to_disk``; anything else ``datasets.load_dataset`` takes (a Hub id, a local
folder of images or parquet files, a packaged builder such as ``imagefolder`` with
``data_dir``). Images are read undecoded (``Image(decode=False)``) and decoded row by row,
so an unreadable image becomes an error row instead of stopping the iteration.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass
class Source:
    """An input dataset ready to predict on."""

    dataset: object  # datasets.Dataset or IterableDataset, image column undecoded
    split: str
    image_column: str
    id_columns: list[str]
    description: dict  # what identifies the input (recorded in the manifest and the card)
    base_dir: Path | None  # where relative image paths are resolved

    @property
    def num_rows(self) -> int | None:
        return None if self.streaming else len(self.dataset)

    @property
    def streaming(self) -> bool:
        from datasets import IterableDataset

        return isinstance(self.dataset, IterableDataset)


def _pick_split(loaded, split: str | None, name: str):
    from datasets import DatasetDict, IterableDatasetDict

    if not isinstance(loaded, (DatasetDict, IterableDatasetDict)):
        return loaded, split or "train"
    if split is None:
        if len(loaded) != 1:
            raise ValueError(f"{name} has splits {sorted(loaded)}: choose one with --split")
        split = next(iter(loaded))
    if split not in loaded:
        raise ValueError(f"{name} has no split {split!r} (splits: {sorted(loaded)})")
    return loaded[split], split


def load_source(name: str, *, split: str | None = None, config: str | None = None, data_dir: str | None = None,
                streaming: bool = False, image_column: str | None = None,
                id_columns: list[str] | None = None) -> Source:
    """Open ``name`` (see the module docstring) and check its columns.

    ``image_column``: default the first ``Image`` column, else a column named ``image``
    (an ``Image`` or a string path, relative paths from the dataset's folder).
    ``id_columns``: the input columns copied to the output (default: all but image columns
    and those named like an output column, :data:`RESERVED_COLUMNS`).
    ``ValueError`` with the reason for a missing split or column.
    """
    import datasets

    path = Path(name)
    base_dir = None
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"{name}: not a data file datasets can read ({', '.join(FILE_BUILDERS)})")
        loaded = datasets.load_dataset(builder, data_files=[str(path.resolve())], split=split or "train",
                                       streaming=streaming)
        base_dir = path.resolve().parent
    elif path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if streaming:
            loaded = loaded.to_iterable_dataset() if isinstance(loaded, datasets.Dataset) else \
                datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in loaded.items()})
        base_dir = path.resolve()
    else:
        loaded = datasets.load_dataset(name, config, data_dir=data_dir, split=split, streaming=streaming)
        if path.is_dir():
            base_dir = path.resolve()
        elif data_dir is not None:
            base_dir = Path(data_dir).resolve()
    ds, split = _pick_split(loaded, split, name)
    feats = ds.features
    if feats is None:  # a streaming source whose features are unknown until read
        ds = ds._resolve_features()
        feats = ds.features
    image_cols = [k for k, f in feats.items() if isinstance(f, datasets.Image)]
    if image_column is None:
        image_column = image_cols[0] if image_cols else "image"
    if image_column not in feats:
        raise ValueError(f"{name}: no image column {image_column!r} (columns: {list(feats)}); "
                         "choose one with --image-column")
    feature = feats[image_column]
    if isinstance(feature, datasets.Image):
        ds = ds.cast_column(image_column, datasets.Image(decode=False))
    elif not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        raise ValueError(f"{name}: column {image_column!r} holds {feature}, not images or image paths")
    if id_columns is None:  # input columns named like an output column (height, width, ...) are left out
        id_columns = [k for k in feats if k != image_column and k not in image_cols and k not in RESERVED_COLUMNS]
    missing = [c for c in id_columns if c not in feats]
    if missing:
        raise ValueError(f"{name}: no column(s) {missing} for --id-columns (columns: {list(feats)})")
    reserved = [c for c in id_columns if c in RESERVED_COLUMNS]
    if reserved:
        raise ValueError(f"{name}: column(s) {reserved} clash with the output's own columns {RESERVED_COLUMNS}; "
                         "leave them out with --id-columns")
    ds = ds.select_columns([image_column, *id_columns])
    description = {"dataset": str(path.resolve()) if path.exists() else name, "config": config, "split": split,
                   "data_dir": data_dir, "streaming": bool(streaming), "image_column": image_column,
                   "num_rows": None if streaming else len(ds), "fingerprint": getattr(ds, "_fingerprint", None)}
    return Source(ds, split, image_column, list(id_columns), description, base_dir)


#: columns every output row has (see edit2perceive.inference_at_scale.runner)
RESERVED_COLUMNS = ("row_index", "image_path", "image", "height", "width", "prediction", "uncertainty", "status",
                    "error")


def open_row_image(value, base_dir: Path | None):
    """An undecoded image cell (``{"bytes", "path"}`` or a path string) -> 8-bit RGB PIL
    image; ``ValueError`` naming the file (or "embedded image") if it cannot be read."""
    from ..io.images import open_rgb8

    if value is None:
        raise ValueError("no image (empty cell)")
    if isinstance(value, dict) and value.get("bytes") is not None:
        return open_rgb8(io.BytesIO(value["bytes"]), name=value.get("path") or "embedded image")
    path = value.get("path") if isinstance(value, dict) else value
    if not path:
        raise ValueError("no image (neither bytes nor a path)")
    if not os.path.isabs(path) and base_dir is not None and not os.path.exists(path):
        path = os.path.join(base_dir, path)
    return open_rgb8(path)
