"""Result files and tables.

A run writes into its output folder:
- ``per_image.jsonl`` and ``per_image.csv``: one row per listed sample (id, status, valid
  pixel count, non-finite count, every metric; matting adds the oracle points),
- ``summary.json``: dataset, protocol (resolved), predictor, counts and the aggregate metrics,
- ``results.md``: the paper's layout (depth AbsRel / delta1 in percent; normals mean angle
  and % < 11.25 deg; matting MSE, MAD, SAD, Grad, Conn) and a table of every metric.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .protocols import DATASETS, DISPLAY_NAMES

#: (metric key, column header, scale, decimals) of the paper's tables
PAPER_COLUMNS = {
    "depth": [("abs_rel", "AbsRel↓", 100.0, 1), ("delta1", "δ1↑", 100.0, 1)],
    "normal": [("mean", "Mean↓", 1.0, 1), ("a11_25", "11.25°↑", 1.0, 1)],
    "matting": [("mse", "MSE↓", 1.0, 3), ("mad", "MAD↓", 1.0, 3), ("sad", "SAD↓", 1.0, 1), ("grad", "Grad↓", 1.0, 1),
                ("conn", "Conn↓", 1.0, 1)],
}
#: every metric with its unit in the full table
FULL_COLUMNS = {
    "depth": [("abs_rel", "AbsRel %", 100.0, 2), ("sq_rel", "SqRel", 1.0, 4), ("rmse", "RMSE m", 1.0, 4),
              ("rmse_log", "RMSE log", 1.0, 4), ("log10", "log10", 1.0, 4), ("delta1", "δ1 %", 100.0, 2),
              ("delta2", "δ2 %", 100.0, 2), ("delta3", "δ3 %", 100.0, 2), ("i_rmse", "iRMSE 1/m", 1.0, 4),
              ("silog", "SILog", 1.0, 3)],
    "normal": [("mean", "Mean°", 1.0, 2), ("median", "Median°", 1.0, 2), ("rmse", "RMSE°", 1.0, 2),
               ("a5", "<5° %", 1.0, 2), ("a7_5", "<7.5° %", 1.0, 2), ("a11_25", "<11.25° %", 1.0, 2),
               ("a22_5", "<22.5° %", 1.0, 2), ("a30", "<30° %", 1.0, 2)],
    "matting": [("mse", "MSE", 1.0, 4), ("mad", "MAD", 1.0, 4), ("sad", "SAD/1e3", 1.0, 2), ("grad", "Grad/1e3", 1.0, 2),
                ("conn", "Conn/1e3", 1.0, 2)],
}


def _fmt(value, scale: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * scale:.{decimals}f}"


def paper_table(summaries: list[dict], columns=None) -> str:
    """Markdown table: one row per method, datasets as column groups in the paper's order.

    ``summaries``: summary dicts of one task (several datasets and/or methods); the method
    name is ``summary["method"]``.
    """
    if not summaries:
        raise ValueError("no summaries to tabulate")
    tasks = {s["task"] for s in summaries}
    if len(tasks) != 1:
        raise ValueError(f"summaries mix tasks {sorted(tasks)}: one table per task")
    task = tasks.pop()
    columns = columns or PAPER_COLUMNS[task]
    datasets = [d for d in DATASETS[task] if any(s["dataset"] == d for s in summaries)]
    methods = list(dict.fromkeys(s["method"] for s in summaries))
    header = ["Method"] + [f"{DISPLAY_NAMES[d]} {title}" for d in datasets for _, title, _, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cells = [method]
        for d in datasets:
            found = [s for s in summaries if s["method"] == method and s["dataset"] == d]
            metrics = found[-1]["metrics"] if found else {}
            cells += [_fmt(metrics.get(key), scale, dec) for key, _, scale, dec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(summary: dict) -> str:
    """``results.md`` for one run: paper layout, all metrics, and the protocol in one line."""
    task = summary["task"]
    proto = ", ".join(f"{k}={v}" for k, v in summary["protocol"].items())
    parts = [
        f"# {DISPLAY_NAMES[summary['dataset']]} {task}: {summary['method']}\n",
        f"Protocol: {proto}\n",
        f"Images: {summary['num_evaluated']} evaluated of {summary['num_listed']} listed "
        f"({summary['num_skipped']} skipped, {summary['num_nan']} with no valid pixel).\n",
        "## Paper layout\n", paper_table([summary]),
        "\n## All metrics\n", paper_table([summary], FULL_COLUMNS[task]),
    ]
    if task == "normal":
        other = "per_image" if summary["protocol"]["aggregation"] == "pooled" else "pooled"
        parts += [f"\n## All metrics, {other} aggregation\n",
                  paper_table([{**summary, "metrics": summary[f"metrics_{other}"]}], FULL_COLUMNS[task])]
    return "\n".join(parts)


def _json_safe(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class RowWriter:
    """Streams per-image rows to JSONL and CSV (fixed columns) as they are produced."""

    def __init__(self, folder: Path, columns: list[str]):
        folder.mkdir(parents=True, exist_ok=True)
        self.columns = columns
        self._jsonl = open(folder / "per_image.jsonl", "w")
        self._csv_file = open(folder / "per_image.csv", "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=columns, extrasaction="ignore")
        self._csv.writeheader()

    def write(self, row: dict) -> None:
        self._jsonl.write(json.dumps(_json_safe(row)) + "\n")
        self._csv.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()})

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()


def write_summary(folder: Path, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    (folder / "results.md").write_text(results_markdown(summary))
