"""Does test-time ensembling help, and does its uncertainty rank the errors?

On held-out synthetic scenes (exact targets) with trained tiny models: the plain single-step
prediction against ensembles (``pipe(..., ensemble_size=N, output_uncertainty=True)``) per
task: depth AbsRel, normal mean angle (degrees), matting MAD. Uncertainty ranking: pool the
per-pixel errors (depth |aligned - gt| / gt, normal angle, |alpha - gt|) of all images, and
compare the mean error of the 10 % most uncertain pixels with that of the other 90 %
(ratio > 1: uncertainty finds errors), plus the Spearman rank correlation.

    python -m benchmarks.bench_ensemble --models /tmp/tiny-models      # trains there if missing

``--models DIR`` holds ``depth/``, ``normal/``, ``matting/`` pipelines (as written by the
tiny run); missing ones are trained first (:mod:`edit2perceive.demo.tiny_run`, minutes).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, markdown_table
from edit2perceive.tasks import TASKS

CONFIGS = [
    ("plain", 1, ("flip",)),
    ("flip", 2, ("flip",)),
    ("reseed x4", 4, ("reseed",)),
    ("flip+reseed x4", 4, ("flip", "reseed")),
    ("flip+res x4 (default)", 4, ("flip", "resolution")),
    ("flip+res x8 (default)", 8, ("flip", "resolution")),
]


def ensure_models(models: Path, tasks) -> None:
    """Train the tiny models that are missing under ``models`` (one shared fitted VAE)."""
    missing = [t for t in tasks if not (models / t / "model_index.json").exists()]
    if not missing:
        return
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.demo.tiny_run import TinyRunConfig, fit_tiny_vae, run_tiny
    from edit2perceive.testing import tiny_kontext_components

    vae = tiny_kontext_components(seed=0)["vae"]
    fit_tiny_vae(vae, list(synthetic_scenes(256, (64, 64), seed=0)), steps=400, progress=True)
    for task in missing:
        run_tiny(TinyRunConfig(task=task), str(models / task), vae=copy.deepcopy(vae), progress=True)


def pixel_errors(task: str, pred: np.ndarray, ex: dict, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel errors and the selection they refer to (bool ``H x W``)."""
    if task == "depth":
        from edit2perceive.evaluation.protocols import ALIGNMENT_FOR_ENCODING
        from edit2perceive.metrics.depth import align_depth

        mask = ex["valid_mask"] & (ex["depth"] > 0)
        aligned, _ = align_depth(pred, ex["depth"], mask, ALIGNMENT_FOR_ENCODING.get(encoding, "least_squares"))
        gt = ex["depth"][mask].astype(np.float64)
        return np.abs(aligned - gt) / gt, mask
    if task == "normal":
        mask = ex["valid_mask"]
        cos = np.clip(np.sum(pred[mask] * ex["normal"][mask], axis=-1), -1, 1)
        return np.degrees(np.arccos(cos)), mask
    mask = np.ones(ex["alpha"].shape, bool)
    return np.abs(pred - ex["alpha"]).ravel(), mask


def uncertainty_ranking(errors: np.ndarray, uncertainty: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    order = np.argsort(-uncertainty, kind="stable")
    top = order[: max(1, len(order) // 10)]
    rest = order[len(top):]
    return {"err_top10_unc": float(errors[top].mean()), "err_rest": float(errors[rest].mean()),
            "ratio": float(errors[top].mean() / max(errors[rest].mean(), 1e-12)),
            "spearman": float(spearmanr(uncertainty, errors).statistic)}


def run(models: Path, tasks, num_scenes: int, size: int, configs=None) -> list[dict]:
    import torch

    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.evaluation.points import oracle_points
    from edit2perceive.training.callbacks import evaluate_predictions

    val = list(synthetic_scenes(num_scenes, (size, size), seed=10_000))
    rows = []
    for task in tasks:
        pipe = Edit2PerceivePipeline.from_pretrained(models / task)
        pipe.set_progress_bar_config(disable=True)
        encoding = getattr(pipe.task, "encoding", "sqrt")
        for name, n, aug in [c for c in CONFIGS if configs is None or c[0] in configs]:
            preds, errs, uncs = [], [], []
            start = time.perf_counter()
            with torch.no_grad():
                for ex in val:
                    points = [oracle_points(ex["alpha"])[0]] if task == "matting" else None
                    out = pipe(ex["rgb"], points=points, processing_resolution=0, ensemble_size=n,
                               ensemble_augmentations=aug, output_uncertainty=n > 1)
                    pred = out.prediction[0]
                    preds.append(pred)
                    if n > 1:
                        err, mask = pixel_errors(task, pred, ex, encoding)
                        unc = out.uncertainty[0][..., 0] if task == "normal" else out.uncertainty[0]
                        errs.append(err)
                        uncs.append(unc[mask])
            metrics = evaluate_predictions(task, preds, val, depth_encoding=encoding)
            key = {"depth": "abs_rel", "normal": "mean_angle", "matting": "mad"}[task]
            row = {"task": task, "config": name, "members": n, "metric": key, "value": metrics[key],
                   "seconds/image": (time.perf_counter() - start) / len(val)}
            if n > 1:
                row.update(uncertainty_ranking(np.concatenate(errs), np.concatenate(uncs)))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, required=True, help="folder with depth/ normal/ matting/ tiny models")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--num-scenes", type=int, default=24, help="held-out synthetic scenes (seed 10000)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--configs", nargs="+", default=None, choices=[c[0] for c in CONFIGS], help="default: all")
    args = parser.parse_args(argv)
    ensure_models(args.models, args.tasks)
    rows = run(args.models, args.tasks, args.num_scenes, args.size, args.configs)
    print(f"\n{machine()}\n")
    print(markdown_table(rows, ["task", "config", "members", "metric", "value", "err_top10_unc", "err_rest", "ratio",
                                "spearman", "seconds/image"]))


if __name__ == "__main__":
    main()
