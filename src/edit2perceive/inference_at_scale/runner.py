"""Predict every row of a dataset into a prediction dataset, on one or many processes.

Each process (``accelerate``'s ``PartialState``: rank and world size; one process when not
launched) does its shards (:mod:`.shards`), skipping those already written, and writes each
one whole. The main process then checks that every shard is there, writes the complete
manifest and the dataset card. A row whose image cannot be read or whose prediction fails
(too small, a point outside it, a non-finite prediction, out of memory) is a row with
``status`` ``error`` and the reason in ``error``; the shard is written all the same.

Output columns (in order): ``row_index`` (the input row, int64), the id columns,
``image_path`` (the image's path in the input, relative to its folder; ``None`` for embedded
bytes without a name), ``image`` (with ``keep_image``), ``height``, ``width`` (the input
image's, int32), ``prediction``, ``uncertainty`` (with ``uncertainty``), ``status`` and
``error``. Encodings: :mod:`.encoding`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import shards as shard_files
from .encoding import encode_map
from .encoding import features as prediction_features
from .source import Source, open_row_image


@dataclass
class DatasetPredictionResult:
    """What one process did; ``manifest`` is the complete manifest (main process only)."""

    output_dir: Path
    num_shards: int
    shards_written: int
    shards_skipped: int
    rows_written: int
    num_errors: int = 0  # rows of this run with status error
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row_index, reason), the first MAX_REPORTED
    manifest: dict | None = None


#: error rows a process keeps for its report (all are in the dataset)
MAX_REPORTED = 100


def process_state():
    """accelerate's ``PartialState`` (rank, world size, device); on a machine without CUDA
    it is the CPU (gloo) one, so ``accelerate launch --multi_gpu`` runs CPU processes."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import str_to_bool

    cpu = str_to_bool(os.environ.get("ACCELERATE_USE_CPU", "false")) or not torch.cuda.is_available()
    return PartialState(cpu=bool(cpu))


def end_processes(state, code: int = 0) -> int:
    """Leave the process group cleanly after a multi-process run (gloo can abort when it is
    left to interpreter exit); returns ``code``."""
    if state.num_processes > 1:
        import torch.distributed as dist

        state.wait_for_everyone()
        if dist.is_initialized():
            dist.destroy_process_group()
    return code


def output_features(source: Source, task: str, encoding: str, keep_image: bool, uncertainty: bool):
    from datasets import Features, Image, Value

    pred = prediction_features(task, encoding)
    cols = {"row_index": Value("int64")}
    cols.update({c: source.dataset.features[c] for c in source.id_columns})
    cols["image_path"] = Value("string")
    if keep_image:
        cols["image"] = Image()
    cols.update(height=Value("int32"), width=Value("int32"), prediction=pred["prediction"])
    if uncertainty:
        cols["uncertainty"] = pred["uncertainty"]
    cols.update(status=Value("string"), error=Value("string"))
    return Features(cols)


def failure_message(err: BaseException) -> str:
    """Why one input failed, for the user (out of memory gets a hint; ``ValueError`` /
    ``OSError`` texts name the file already)."""
    text = str(err) or type(err).__name__
    if "out of memory" in text.lower() or type(err).__name__ == "OutOfMemoryError":
        return f"out of memory ({text.splitlines()[0]}); try a smaller --processing-resolution or --batch-size"
    return text if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {text}"


def _image_cell(value, base_dir):
    """The input image as an ``Image`` cell with its bytes (``keep_image``)."""
    if isinstance(value, dict) and value.get("bytes") is not None:
        return {"bytes": value["bytes"], "path": os.path.basename(value.get("path") or "") or None}
    path = value.get("path") if isinstance(value, dict) else value
    if not os.path.isabs(path) and base_dir is not None and not os.path.exists(path):
        path = os.path.join(base_dir, path)
    return {"bytes": Path(path).read_bytes(), "path": os.path.basename(path)}


def _image_path(cell, source: Source) -> str | None:
    path = cell.get("path") if isinstance(cell, dict) else cell
    if not path:
        return None
    if source.base_dir is not None and os.path.isabs(path):
        try:
            return Path(path).relative_to(source.base_dir).as_posix()
        except ValueError:
            pass
    return str(path)


class _ShardPredictor:
    """Turns the input rows of one shard into output rows."""

    def __init__(self, pipe, source: Source, *, encoding, keep_image, uncertainty, batch_size, points, call_kwargs):
        self.pipe, self.source, self.encoding = pipe, source, encoding
        self.task = pipe.task.name
        self.keep_image, self.uncertainty, self.batch_size = keep_image, uncertainty, batch_size
        self.points, self.call_kwargs = points, dict(call_kwargs or {})
        if uncertainty:
            self.call_kwargs["output_uncertainty"] = True

    def _predict(self, rgbs):  # -> [(prediction, uncertainty or None)]
        out = self.pipe(rgbs, points=[self.points] * len(rgbs) if self.points else None, batch_size=self.batch_size,
                        **self.call_kwargs)
        preds = list(out.prediction)
        uncs = [None] * len(preds) if out.uncertainty is None else list(out.uncertainty)
        return [(np.asarray(p), None if u is None else np.asarray(u)) for p, u in zip(preds, uncs)]

    def _fill(self, row: dict, pred, unc) -> None:
        pred = np.asarray(pred, dtype=np.float32)
        if not np.isfinite(pred).all():
            raise ValueError("the prediction holds NaN / inf values")
        row["prediction"] = encode_map(pred, self.task, self.encoding)
        if self.uncertainty:
            if unc is None:
                raise ValueError("the pipeline returned no uncertainty")
            unc = np.asarray(unc, dtype=np.float32)
            row["uncertainty"] = encode_map(unc[..., 0] if unc.ndim == 3 else unc, "depth", self.encoding)
        row["status"] = "ok"

    def _row(self, index: int, record: dict) -> dict:
        cell = record[self.source.image_column]
        row = {"row_index": index, **{c: record[c] for c in self.source.id_columns},
               "image_path": _image_path(cell, self.source)}
        if self.keep_image:
            row["image"] = None
        row.update(height=None, width=None, prediction=None)
        if self.uncertainty:
            row["uncertainty"] = None
        row.update(status="error", error=None)
        return row

    def batches(self, items: list[tuple[int, dict]]):
        """The output rows of ``items`` (input order), ``batch_size`` input rows at a time:
        only one batch of decoded images and predictions is held at once."""
        src = self.source
        for start in range(0, len(items), self.batch_size):
            out, ready = [], []
            for index, record in items[start:start + self.batch_size]:
                row = self._row(index, record)
                out.append(row)
                cell = record[src.image_column]
                try:
                    rgb = open_row_image(cell, src.base_dir)
                    row["height"], row["width"] = rgb.height, rgb.width
                    if self.keep_image:
                        row["image"] = _image_cell(cell, src.base_dir)
                    ready.append((row, rgb))
                except Exception as err:  # noqa: BLE001 - a bad row is recorded, the shard goes on
                    row["error"] = failure_message(err)
            if ready:
                self._predict_rows(ready)
            yield out

    def _predict_rows(self, ready: list[tuple[dict, object]]) -> None:
        try:
            results = self._predict([rgb for _, rgb in ready])
        except Exception as err:  # noqa: BLE001
            if len(ready) == 1:
                ready[0][0]["error"] = failure_message(err)
                return
            results = [None] * len(ready)  # find the failing image: one at a time
        for (row, rgb), result in zip(ready, results):
            try:
                self._fill(row, *(result if result is not None else self._predict([rgb])[0]))
            except Exception as err:  # noqa: BLE001
                row["prediction"] = None
                row["error"] = failure_message(err)


def _chunks(source: Source, shard_size: int, wanted: set[int] | None):
    """``(k, [(row_index, row)])`` for the shards ``k`` in ``wanted`` (all if None), in
    order; a streaming source is read through (other shards' images are not decoded)."""
    ds = source.dataset
    if not source.streaming:
        n = len(ds)
        for k in sorted(wanted) if wanted is not None else range(math.ceil(n / shard_size)):
            rows = shard_files.shard_rows(k, shard_size, n)
            yield k, list(zip(rows, ds.select(rows)))
        return
    chunk, k = [], 0
    for index, record in enumerate(ds):
        if index // shard_size != k:
            if wanted is None or k in wanted:
                yield k, chunk
            chunk, k = [], index // shard_size
        if wanted is None or k in wanted:
            chunk.append((index, record))
    if chunk or k == 0:
        yield k, chunk


def predict_dataset(pipe, source: Source, output_dir, *, settings: dict, encoding: str = "png16",
                    keep_image: bool = False, uncertainty: bool = False, shard_size: int = 1000, batch_size: int = 1,
                    points=None, call_kwargs: dict | None = None, state=None, progress: bool = True,
                    log=None) -> DatasetPredictionResult:
    """Predict ``source`` into ``output_dir`` (see the module docstring).

    ``settings``: what makes the predictions what they are (model, task, options); recorded
    in the manifest and the card, and a resumed run must give the same. ``call_kwargs``:
    further pipeline-call arguments (steps, processing resolution, ensemble). ``state``:
    rank / world size (``process_state()`` by default). ``log``: a function taking a line
    (main process messages).
    """
    import pyarrow as pa
    from tqdm.auto import tqdm

    from .card import write_card

    state = state if state is not None else process_state()
    rank, world, is_main = state.process_index, state.num_processes, state.is_main_process
    log = log or (lambda line: None)
    output_dir = Path(output_dir)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    settings = {**settings, "encoding": encoding, "keep_image": bool(keep_image), "uncertainty": bool(uncertainty),
                "shard_size": int(shard_size), "input": source.description, "id_columns": source.id_columns}
    shard_files.check_resumable(output_dir, settings)
    state.wait_for_everyone()  # every process checked before the main one writes
    if is_main:
        for stale in shard_files.start(output_dir, settings):
            log(f"removed {stale.name}, left by an interrupted run")
    state.wait_for_everyone()

    if source.streaming:
        num_rows = None
        num_shards = None
    else:
        num_rows = len(source.dataset)
        if num_rows == 0:
            raise ValueError(f"{source.description['dataset']}: split {source.split!r} has no rows")
        num_shards = math.ceil(num_rows / shard_size)
    features = output_features(source, pipe.task.name, encoding, keep_image, uncertainty)
    schema = features.arrow_schema  # carries the datasets features (parquet metadata)
    worker = _ShardPredictor(pipe, source, encoding=encoding, keep_image=keep_image, uncertainty=uncertainty,
                             batch_size=batch_size, points=points, call_kwargs=call_kwargs)

    def done(k):
        return shard_files.shard_path(output_dir, source.split, k).is_file()

    written = skipped = rows_written = num_errors = 0
    errors: list[tuple[int, str]] = []
    if num_shards is not None:
        mine = shard_files.my_shards(num_shards, rank, world)
        todo = [k for k in mine if not done(k)]
        skipped = len(mine) - len(todo)
        wanted, total = set(todo), sum(len(shard_files.shard_rows(k, shard_size, num_rows)) for k in todo)
    else:
        wanted, total = None, None
    bar = tqdm(total=total, desc=f"predict {source.split}", unit="image", disable=not (progress and is_main))
    last_k = -1
    for k, items in _chunks(source, shard_size, wanted):
        last_k = max(last_k, k)
        if wanted is None and (k % world != rank or done(k)):
            skipped += k % world == rank
            continue
        if not items:
            raise ValueError(f"{source.description['dataset']}: split {source.split!r} has no rows")
        with shard_files.shard_writer(shard_files.shard_path(output_dir, source.split, k), schema) as write:
            group: list[dict] = []
            for rows in worker.batches(items):
                group += [features.encode_example(r) for r in rows]
                failed = [(r["row_index"], r["error"]) for r in rows if r["status"] != "ok"]
                num_errors += len(failed)
                errors += failed[:MAX_REPORTED - len(errors)]
                rows_written += len(rows)
                bar.update(len(rows))
                if len(group) >= shard_files.ROW_GROUP_ROWS:
                    write(pa.Table.from_pylist(group, schema=schema))
                    group = []
            if group:
                write(pa.Table.from_pylist(group, schema=schema))
        written += 1
    bar.close()
    if num_shards is None:
        num_shards = last_k + 1
    state.wait_for_everyone()
    manifest = None
    if is_main:
        manifest = shard_files.finish(output_dir, settings, source.split, num_shards,
                                      {"num_processes_last_run": world})
        write_card(output_dir, manifest, features)
    state.wait_for_everyone()
    return DatasetPredictionResult(output_dir, num_shards, written, skipped, rows_written, num_errors, errors,
                                   manifest)
