"""Run a benchmark: reader -> predictor -> per-image metrics -> dataset aggregate -> files.

Per listed sample the runner decodes the ground truth, samples the oracle points
(matting), asks the predictor, and reduces the image to scalars right away with the
functions of :mod:`edit2perceive.metrics`; only scalars are kept.

Row statuses: ``ok``; ``empty`` (no valid pixel: metrics NaN, counted in ``num_nan``,
left out of the means: the Marigold protocol); ``skipped`` (fewer valid pixels than the
protocol's ``min_valid_pixels``: the Edit2Perceive protocol). A prediction of the wrong
dimensionality, a missing saved prediction or (with ``nonfinite="error"``) a NaN/inf
prediction stops the run with an error naming the sample.

A prediction whose shape is not a resize of the ground truth's at the same aspect ratio
(e.g. transposed) is an error naming the sample; an empty (0-pixel) prediction too.

With ``accelerator`` (``accelerate.Accelerator``) each process evaluates every
``num_processes``-th sample; accumulators are summed across processes and the rows
gathered in the listed order (the one-process order), and only the main process writes
files. The numbers equal a one-process run's up to the order of float64 sums (1e-15
relative: the printed digits are the same).

A run owns its output folder: files are written into a staging folder beside it and
replace the folder only when the run succeeded, so a failed run leaves the previous
results untouched and never mixes its files with them. The run records what it wrote in the
folder's manifest (:mod:`edit2perceive.io.manifest`); a folder holding anything the manifest
does not prove written by an earlier run (a user's own ``results.md`` included) is refused.
"""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edit2perceive.metrics import (
    DEPTH_METRIC_NAMES,
    MATTING_METRIC_NAMES,
    NORMAL_METRIC_NAMES,
    MeanAccumulator,
    NormalAccumulator,
    count_nonfinite,
    depth_metrics,
    matting_metrics,
    normal_errors,
)
from edit2perceive.metrics._inputs import squeeze_leading

from ..io.atomic import publish_folder, staging_path
from ..io.manifest import foreign, write_manifest
from .points import POINT_PROTOCOL, REFERENCE_POINT_PROTOCOL, oracle_points, reference_point_map
from .predictors import as_predictor
from .protocols import DISPLAY_NAMES, EXPECTED_COUNTS, Protocol, make_protocol, resolve_alignment
from .registry import get_reader
from .report import RowWriter, write_summary

METRIC_NAMES = {"depth": DEPTH_METRIC_NAMES, "normal": NORMAL_METRIC_NAMES, "matting": MATTING_METRIC_NAMES}
#: the files a run writes into its output folder (with the manifest)
RUN_FILES = frozenset({"per_image.jsonl", "per_image.csv", "summary.json", "results.md"})
OWNER = "e2p evaluate"
#: how far a prediction's height may be off a same-aspect resize of the ground truth: 16 px
#: (processing sizes are rounded to multiples of 16; KITTI's benchmark crop) or 5 %
ASPECT_SLACK_PX, ASPECT_SLACK = 16, 0.05


class SetupError(ValueError):
    """The data folder's layout or the output folder is unusable: nothing was evaluated."""


def _check_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir():
        others = foreign(out)
        if others:
            raise ValueError(f"{out}: holds files that e2p evaluate did not write ({', '.join(others[:3])}; "
                             "not in its manifest); choose a new or empty --output-dir")


def _check_shape(pred: np.ndarray, target: np.ndarray, where: str) -> None:
    (hp, wp), (hg, wg) = pred.shape[:2], target.shape[:2]
    if min(hp, wp) == 0:
        raise ValueError(f"{where}: the prediction is empty ({wp}x{hp} pixels)")
    if (hp, wp) != (hg, wg) and abs(hp - hg * wp / wg) > max(ASPECT_SLACK_PX * max(1.0, wp / wg), ASPECT_SLACK * hp):
        raise ValueError(f"{where}: the prediction is {wp}x{hp} (W x H) but the ground truth is {wg}x{hg}: not a "
                         "resize at the same aspect ratio (transposed or from another image?)")


@dataclass
class EvaluationResult:
    summary: dict
    rows: list[dict]
    output_dir: Path | None


def _prediction(raw, task: str, sample_id: str) -> np.ndarray:
    arr = np.asarray(raw)
    try:
        return squeeze_leading(arr, 3 if task == "normal" else 2, f"prediction for {sample_id}")
    except ValueError as err:
        raise ValueError(f"{err} (expected {'H x W x 3' if task == 'normal' else 'H x W'})") from None


def _evaluate_sample(protocol: Protocol, sample, pred: np.ndarray, alignment, acc) -> tuple[dict, str]:
    """Metrics dict and status for one sample; adds to the accumulator unless skipped."""
    resize = None if protocol.resize == "none" else protocol.resize
    valid = int(sample.valid_mask.sum())
    if valid < protocol.min_valid_pixels:
        return {k: float("nan") for k in METRIC_NAMES[protocol.task]}, "skipped"
    if protocol.task == "depth":
        metrics = depth_metrics(pred, sample.target, sample.valid_mask, alignment=alignment,
                                min_depth=protocol.min_depth, max_depth=protocol.max_depth,
                                fit_max_side=protocol.fit_max_side, resize=resize, nonfinite=protocol.nonfinite)
        acc.add(metrics)
    elif protocol.task == "normal":
        metrics = acc.add_errors(normal_errors(pred, sample.target, sample.valid_mask, gt_min_norm=protocol.gt_min_norm,
                                               resize=resize, nonfinite=protocol.nonfinite))
    else:
        trimap = sample.trimap if protocol.region == "unknown" else None
        metrics = matting_metrics(pred, sample.target, trimap, conn_mode=protocol.conn_mode, resize=resize,
                                  nonfinite=protocol.nonfinite)
        acc.add(metrics)
    return metrics, ("empty" if all(np.isnan(v) for v in metrics.values()) else "ok")


def evaluate_benchmark(
    task: str,
    dataset: str,
    data_dir,
    predictor,
    *,
    protocol: str | Protocol = "marigold",
    overrides: dict | None = None,
    split_file=None,
    max_samples: int | None = None,
    output_dir=None,
    method: str | None = None,
    progress: bool = True,
    accelerator=None,
) -> EvaluationResult:
    """Evaluate ``predictor`` on a benchmark under a protocol.

    Args:
        task: ``"depth"``, ``"normal"`` or ``"matting"``.
        dataset: a name from :data:`edit2perceive.evaluation.DATASETS` (aliases accepted).
        data_dir: the dataset folder in its distributed layout (see each reader's docstring).
        predictor: an object with ``predict(sample, points)`` (see ``predictors``) or a
            callable ``fn(rgb_uint8, points) -> array``.
        protocol: ``"marigold"`` (default), ``"edit2perceive"`` or a :class:`Protocol`.
        overrides: protocol field overrides (e.g. ``{"alignment": "least_squares"}``).
        split_file: sample list to use instead of the default one.
        max_samples: evaluate only the first N listed samples (recorded).
        output_dir: write ``per_image.jsonl/.csv``, ``summary.json``, ``results.md`` here.
        method: name for the tables (default: from the predictor).
    """
    proto = protocol if isinstance(protocol, Protocol) else make_protocol(task, dataset, protocol, **(overrides or {}))
    predictor = as_predictor(predictor)
    if proto.processing_resolution is not None and getattr(predictor, "processing_resolution", 0) is None:
        predictor.processing_resolution = proto.processing_resolution  # a model predictor follows the protocol
    try:
        reader = get_reader(proto, data_dir, split_file)
    except (ValueError, OSError) as err:
        raise SetupError(str(err)) from err
    entries = reader.entries[:max_samples] if max_samples else reader.entries
    alignment = resolve_alignment(proto, predictor.depth_encoding) if task == "depth" else None
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    is_main = rank == 0
    acc = NormalAccumulator() if task == "normal" else MeanAccumulator(METRIC_NAMES[task])
    columns = ["sample_id", "status", "valid_pixels", "nonfinite_pixels", *METRIC_NAMES[task]]
    if task == "matting":
        columns += ["points", "points_fallback"]
    out = Path(output_dir) if output_dir is not None else None
    staging = None
    if out is not None and is_main:
        try:
            _check_output_dir(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            staging = staging_path(out)
            staging.mkdir()
        except (ValueError, OSError) as err:
            raise SetupError(f"--output-dir {out}: {err}" if isinstance(err, OSError) else str(err)) from err
    try:
        result = _run(task, proto, reader, predictor, entries, alignment, acc, columns, staging, rank, world, is_main,
                      accelerator, max_samples, split_file, method, data_dir, progress)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging is not None:
        write_manifest(staging, {p.name: OWNER for p in staging.iterdir()})
        publish_folder(staging, out)
    return EvaluationResult(result.summary, result.rows, out)


def point_protocol(predictor) -> str:
    """``"reference"`` for a predictor whose model has the reference conventions (the authors'
    benchmark prompt, :func:`reference_point_map`), else ``"ours"`` (:func:`oracle_points`)."""
    return getattr(predictor, "point_protocol", "ours")


def _run(task, proto, reader, predictor, entries, alignment, acc, columns, out, rank, world, is_main, accelerator,
         max_samples, split_file, method, data_dir, progress) -> EvaluationResult:
    """The evaluation loop; files go to ``out`` (the staging folder) on the main process."""
    from tqdm.auto import tqdm

    writer = RowWriter(out, columns) if out is not None and world == 1 else None

    rows: list[dict] = []
    start = time.perf_counter()
    mine = entries[rank::world]
    reference_points = task == "matting" and point_protocol(predictor) == "reference"
    for entry in tqdm(mine, desc=f"{DISPLAY_NAMES[proto.dataset]} {task}", unit="image", disable=not (progress and is_main)):
        sample = reader.load(entry)
        points, fallback, prompt = None, None, None
        if reference_points:
            from edit2perceive.pipelines import PointMap

            values, points, fallback = reference_point_map(sample.target, proto.num_points, proto.point_threshold,
                                                           proto.point_seed)
            prompt = PointMap(values)
        elif task == "matting":
            points, fallback = oracle_points(sample.target, proto.num_points, proto.point_threshold, proto.point_seed)
            prompt = points
        pred = _prediction(predictor.predict(sample, prompt), task, sample.sample_id)
        where = str(predictor.path_for(sample.sample_id)) if hasattr(predictor, "path_for") else sample.sample_id
        _check_shape(pred, sample.target, f"sample {where}")
        try:
            metrics, status = _evaluate_sample(proto, sample, pred, alignment, acc)
        except ValueError as err:
            raise ValueError(f"sample {sample.sample_id}: {err}") from err
        row = {"sample_id": sample.sample_id, "status": status, "valid_pixels": int(sample.valid_mask.sum()),
               "nonfinite_pixels": count_nonfinite(pred), **metrics}
        if task == "matting":
            row.update(points=[list(p) for p in points], points_fallback=fallback)
        rows.append(row)
        if writer is not None:
            writer.write(row)
    if writer is not None:
        writer.close()
    elapsed = time.perf_counter() - start

    if accelerator is not None and world > 1:
        from accelerate.utils import gather_object

        acc = acc.gather(accelerator)
        # row i of process r is listed sample r + i * world: back to the listed order
        tagged = gather_object([(rank + i * world, row) for i, row in enumerate(rows)])
        rows = [row for _, row in sorted(tagged, key=lambda pair: pair[0])]
        if is_main and out is not None:
            writer = RowWriter(out, columns)
            for row in rows:
                writer.write(row)
            writer.close()

    summary = _summary(proto, reader, predictor, acc, rows, alignment, entries, max_samples, split_file, method, elapsed,
                       data_dir)
    if out is not None and is_main:
        write_summary(out, summary)
    return EvaluationResult(summary, rows, out)


def _summary(proto, reader, predictor, acc, rows, alignment, entries, max_samples, split_file, method, elapsed,
             data_dir) -> dict:
    from edit2perceive import __version__

    protocol = proto.to_dict()
    if proto.task == "depth":
        protocol["alignment"] = alignment if alignment is not None else "none"
        protocol["alignment_requested"] = proto.alignment
    if proto.task == "matting":
        text = REFERENCE_POINT_PROTOCOL if point_protocol(predictor) == "reference" else POINT_PROTOCOL
        protocol["points"] = text.format(n=proto.num_points, t=proto.point_threshold, seed=proto.point_seed)
    described = predictor.describe()
    statuses = [r["status"] for r in rows]
    summary = {
        "task": proto.task,
        "dataset": proto.dataset,
        "dataset_name": DISPLAY_NAMES[proto.dataset],
        "method": method or described.get("model") or described.get("folder") or described.get("name") or "model",
        "predictor": described,
        "protocol": protocol,
        "data_dir": str(data_dir),
        "split_file": str(reader.split_file) if reader.split_file else None,
        "num_listed": len(reader.entries) + len(reader.skipped),
        "num_listed_without_gt": len(reader.skipped),
        "num_expected": EXPECTED_COUNTS.get((proto.task, proto.dataset)),
        "max_samples": max_samples,
        "num_evaluated": statuses.count("ok"),
        "num_nan": statuses.count("empty"),
        "num_skipped": statuses.count("skipped") + len(reader.skipped),
        "num_nonfinite_pixels": int(sum(r["nonfinite_pixels"] for r in rows)),
        "elapsed_s": round(elapsed, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "edit2perceive_version": __version__,
    }
    if proto.task == "normal":
        res = acc.result()
        summary["metrics"] = res[proto.aggregation]
        summary["metrics_pooled"], summary["metrics_per_image"] = res["pooled"], res["per_image"]
        summary["num_pixels"] = res["num_pixels"]
    else:
        summary["metrics"] = acc.result()
    summary["units"] = {"depth": "fractions (tables: AbsRel, delta in percent); rmse in metres",
                        "normal": "degrees; a* in percent", "matting": "mse, mad raw; sad, grad, conn divided by 1000"
                        }[proto.task]
    return summary
