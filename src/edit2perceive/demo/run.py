"""The main job end to end, offline: ``make demo`` (``python -m edit2perceive.demo``).

Without ``--model``: synthetic scenes -> fit the tiny VAE -> train tiny depth, normal and
matting models -> evaluate them on held-out scenes with the ``evaluate`` metric modules
against the untrained model and a constant baseline -> predict on real photographs that
ship with scikit-image (astronaut, coffee, chelsea, and the Middlebury motorcycle, whose
ground-truth disparity gives a real depth score) -> write a report folder.

With ``--model DIR_OR_HUB_ID`` (our saved or shared model; ``--base-model`` fills the parts it
leaves out) or ``--reference-checkpoint FILE`` (a released checkpoint, e.g.
``Seq2Tri/Edit2Perceive/depth.safetensors``): no training; that model runs on the same photographs.

Report folder: ``metrics.json``, ``summary.md``, ``panels/*.png`` (comparison panels),
``models/<task>/`` (the trained pipelines, each with a model card ``README.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..core.base_model import DEFAULT_BASE_MODEL
from ..tasks import TASKS

#: Middlebury 2014 "Motorcycle" calibration (calib.txt, full resolution 2964 px wide); scikit-image
#: ships the pair at 741 px, so focal length and doffs scale by 741 / 2964.
MOTORCYCLE_CALIB = {"focal_px": 3979.911, "baseline_m": 0.193001, "doffs_px": 124.343, "full_width": 2964}


def demo_photos() -> list[dict]:
    """Real photographs bundled with scikit-image, with matting points and any ground truth."""
    from skimage import data

    left, _, disparity = data.stereo_motorcycle()
    scale = left.shape[1] / MOTORCYCLE_CALIB["full_width"]
    valid = np.isfinite(disparity) & (disparity > 0)
    depth = np.zeros(disparity.shape, np.float64)
    depth[valid] = (MOTORCYCLE_CALIB["baseline_m"] * MOTORCYCLE_CALIB["focal_px"] * scale
                    / (disparity[valid] + MOTORCYCLE_CALIB["doffs_px"] * scale))
    return [
        {"name": "astronaut", "rgb": data.astronaut(), "points": [(250, 230), (270, 380)]},
        {"name": "coffee", "rgb": data.coffee(), "points": [(300, 200), (330, 230)]},
        {"name": "chelsea", "rgb": data.chelsea(), "points": [(150, 150), (250, 200)]},
        {"name": "motorcycle", "rgb": left, "points": [(370, 260), (250, 300)], "depth": depth, "valid_mask": valid},
    ]


def _metric_module(name: str):
    import evaluate

    from ..evaluation.metric_modules import find_metric_sources

    return evaluate.load(str(find_metric_sources() / name))


def evaluate_with_modules(task: str, predictions: list[np.ndarray], examples: list[dict], *, encoding: str = "sqrt") -> dict:
    """Per-image-mean metrics through the ``evaluate`` modules in ``metrics/``."""
    if task == "depth":
        from ..evaluation.protocols import ALIGNMENT_FOR_ENCODING

        alignment = ALIGNMENT_FOR_ENCODING.get(encoding, "least_squares")
        refs = [np.asarray(ex["depth"], np.float64) for ex in examples]
        max_depth = max(float(r[ex["valid_mask"]].max()) for r, ex in zip(refs, examples)) * 1.5
        out = _metric_module("depth_metrics").compute(
            predictions=predictions, references=refs, valid_masks=[ex["valid_mask"] for ex in examples],
            alignment=alignment, min_depth=1e-3, max_depth=max_depth)
        return {k: out[k] for k in ("abs_rel", "delta1", "rmse")}
    if task == "normal":
        out = _metric_module("normal_metrics").compute(
            predictions=predictions, references=[ex["normal"] for ex in examples],
            valid_masks=[ex["valid_mask"] for ex in examples])
        return {k: v for k, v in out.items() if k in ("mean", "median", "a11_25", "a30") or k.startswith("mean")}
    out = _metric_module("matting_metrics").compute(predictions=predictions, references=[ex["alpha"] for ex in examples])
    return {k: out[k] for k in ("mse", "mad", "sad", "grad", "conn")}


def _predict_all(pipe, task: str, examples: list[dict], *, resolution: int, points_fn) -> list[np.ndarray]:
    out = []
    for ex in tqdm(examples, desc=f"predict {task}", leave=False):
        points = [points_fn(ex)] if task == "matting" else None
        out.append(pipe(ex["rgb"], points=points, processing_resolution=resolution).prediction[0])
    return out


def train_and_evaluate(report_dir: Path, *, quick: bool) -> tuple[dict, dict]:
    """Train the three tiny models; returns (metrics per task, pipelines per task)."""
    import copy

    import torch

    from ..data import synthetic_scenes
    from ..evaluation.points import oracle_points
    from ..hub import model_card
    from ..testing import tiny_kontext_components
    from .tiny_run import TinyRunConfig, constant_baseline, fit_tiny_vae, run_tiny

    size = 32 if quick else 64
    n_train = 32 if quick else 256
    steps = {"depth": 300, "normal": 200, "matting": 200} if not quick else dict.fromkeys(TASKS, 4)
    train = list(synthetic_scenes(n_train, (size, size), seed=0))
    val = list(synthetic_scenes(8 if quick else 24, (size, size), seed=10_000))
    vae = tiny_kontext_components(seed=0)["vae"]
    vae_fit = fit_tiny_vae(vae, train, steps=20 if quick else 400, progress=True)

    from ..pipelines.pipeline import Edit2PerceivePipeline

    metrics = {"vae_reconstruction_mae": vae_fit, "synthetic": {}}
    pipes = {}
    for task in tqdm(TASKS, desc="train tiny models"):
        model_dir = report_dir / "models" / task
        cfg = TinyRunConfig(task=task, size=size, num_train=n_train, num_val=len(val), train_steps=steps[task])
        run = run_tiny(cfg, str(model_dir), vae=copy.deepcopy(vae), progress=True)
        pipe = Edit2PerceivePipeline.from_pretrained(model_dir)
        pipe.set_progress_bar_config(disable=True)
        untrained = Edit2PerceivePipeline.from_pretrained(model_dir)
        untrained.register_modules(transformer=tiny_kontext_components(seed=0)["transformer"])
        untrained.set_progress_bar_config(disable=True)

        def points_fn(ex):
            return oracle_points(ex["alpha"])[0]

        with torch.no_grad():
            trained_pred = _predict_all(pipe, task, val, resolution=0, points_fn=points_fn)
            untrained_pred = _predict_all(untrained, task, val, resolution=0, points_fn=points_fn)
        const = [constant_baseline(task, train, (size, size))] * len(val)
        metrics["synthetic"][task] = {
            "trained": evaluate_with_modules(task, trained_pred, val),
            "untrained": evaluate_with_modules(task, untrained_pred, val),
            "constant": evaluate_with_modules(task, const, val),
            "train_steps": steps[task],
            "train_seconds": round(run["seconds"]["train"], 1),
        }
        training = {"base": "tiny random FLUX.1 Kontext-architecture components (edit2perceive.testing)",
                    "data": f"{n_train} synthetic scenes, {size} px", "steps": steps[task], "batch size": cfg.batch_size,
                    "learning rate": cfg.learning_rate, "held-out synthetic metrics": metrics["synthetic"][task]["trained"]}
        model_card(task, repo_id=f"edit2perceive-demo/tiny-{task}", training=training,
                   extra_limitations=["A tiny demo model (about 80k DiT parameters): it shows the method working end "
                                      "to end, not useful accuracy."]).save(model_dir / "README.md")
        pipes[task] = pipe
        _synthetic_panel(report_dir / "panels" / f"synthetic_{task}.png", task, val[:4], trained_pred[:4])
    return metrics, pipes


def _synthetic_panel(path: Path, task: str, examples, preds) -> None:
    import PIL.Image

    from ..outputs.visualize import alpha_to_image, depth_to_color, normals_to_rgb, side_by_side

    rows = []
    for ex, pred in zip(examples, preds):
        rgb = PIL.Image.fromarray(ex["rgb"])
        if task == "depth":
            gt = np.sqrt(np.where(ex["valid_mask"], ex["depth"], 0))
            gt = (gt - gt[ex["valid_mask"]].min()) / max(np.ptp(gt[ex["valid_mask"]]), 1e-6)
            images = [rgb, depth_to_color(np.clip(gt, 0, 1)), depth_to_color(pred)]
        elif task == "normal":
            images = [rgb, normals_to_rgb(ex["normal"]), normals_to_rgb(pred)]
        else:
            images = [rgb, alpha_to_image(ex["alpha"]), alpha_to_image(pred)]
        rows.append(side_by_side([im.resize((128, 128), PIL.Image.NEAREST) for im in images]))
    _stack(rows).save(path)


def _stack(rows):
    import PIL.Image

    width = max(r.width for r in rows)
    out = PIL.Image.new("RGB", (width, sum(r.height for r in rows) + 4 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 4
    return out


def predict_photos(pipes: dict, report_dir: Path, *, resolution: int) -> dict:
    """Run every pipeline on the bundled photographs; panels per photo; motorcycle depth score."""
    import PIL.Image

    from ..outputs.visualize import (
        alpha_to_image,
        depth_to_color,
        draw_points,
        normals_to_rgb,
        side_by_side,
        write_outputs,
    )

    photos = demo_photos()
    scores = {}
    for photo in tqdm(photos, desc="predict photographs"):
        rgb = PIL.Image.fromarray(photo["rgb"])
        images = [draw_points(rgb, photo["points"]) if "matting" in pipes else rgb]
        files = {}
        for task, pipe in pipes.items():
            points = [photo["points"]] if task == "matting" else None
            pred = pipe(rgb, points=points, processing_resolution=resolution).prediction[0]
            if task == "depth":
                images.append(depth_to_color(pred))
                if "depth" in photo:
                    encoding = getattr(pipe.task, "encoding", "sqrt")
                    ex = {"depth": photo["depth"], "valid_mask": photo["valid_mask"]}
                    const = np.full(pred.shape, 0.5, np.float32)
                    scores[photo["name"]] = {
                        "model": evaluate_with_modules("depth", [pred], [ex], encoding=encoding),
                        "constant": evaluate_with_modules("depth", [const], [ex], encoding=encoding)}
            elif task == "normal":
                images.append(normals_to_rgb(pred))
            else:
                images.append(alpha_to_image(pred))
            files[f"{task}.npy"] = pred.astype(np.float32)
        files["panel.png"] = side_by_side(images)
        write_outputs(files, report_dir / "panels", photo["name"])
    return scores


def write_summary(report_dir: Path, metrics: dict) -> None:
    lines = ["# Edit2Perceive demo report", "", f"Machine: {metrics['machine']}. Total {metrics['seconds']:.0f} s.", ""]
    if "synthetic" in metrics:
        fit = metrics["vae_reconstruction_mae"]
        lines += ["## Tiny models on held-out synthetic scenes", "",
                  f"Tiny VAE fitted as an autoencoder: reconstruction MAE {fit['before']:.3f} -> {fit['after']:.3f} "
                  "(pixels in [-1, 1]).", "",
                  "Metrics through the `evaluate` modules in `metrics/` (per-image means; depth aligned in sqrt space).", "",
                  "| task | metric | trained | untrained | constant |", "|---|---|---|---|---|"]
        for task, m in metrics["synthetic"].items():
            for key in m["trained"]:
                lines.append(f"| {task} | {key} | {m['trained'][key]:.4g} | {m['untrained'][key]:.4g} | "
                             f"{m['constant'][key]:.4g} |")
        lines += ["", "Panels (input | ground truth | prediction):", ""]
        lines += [f"![{t}](panels/synthetic_{t}.png)" for t in metrics["synthetic"]]
    if metrics.get("photos"):
        lines += ["", "## Middlebury motorcycle (real photograph, ground-truth disparity)", "",
                  "| predictor | AbsRel | delta1 |", "|---|---|---|"]
        for scores in metrics["photos"].values():
            for who, m in scores.items():
                lines.append(f"| {who} | {m['abs_rel']:.3f} | {m['delta1']:.3f} |")
    lines += ["", "## Photographs (input | " + " | ".join(metrics["tasks"]) + ")", ""]
    lines += [f"![{p}](panels/{p}_panel.png)" for p in ("astronaut", "coffee", "chelsea", "motorcycle")]
    (report_dir / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edit2perceive.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("demo_report"))
    parser.add_argument("--model", default=None, help="a trained model (folder or Hub id): skip training, run it")
    parser.add_argument("--reference-checkpoint", default=None, metavar="FILE",
                        help="a released reference checkpoint (local .safetensors or Hub file): skip training, run it")
    parser.add_argument("--base-model", default=None, metavar="DIR_OR_ID",
                        help="FLUX.1 Kontext base for the parts the model leaves out (default for "
                             f"--reference-checkpoint: {DEFAULT_BASE_MODEL})")
    parser.add_argument("--processing-resolution", type=int, default=None,
                        help="longest side for the photographs (default: 128 for the tiny models, the model's otherwise)")
    parser.add_argument("--quick", action="store_true", help="minimal sizes and steps (for tests)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    report = args.output_dir
    (report / "panels").mkdir(parents=True, exist_ok=True)
    import torch

    metrics: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"}
    if args.model and args.reference_checkpoint:
        parser.error("give --model or --reference-checkpoint, not both")
    if args.model or args.reference_checkpoint:
        from ..pipelines.loading import load_pipeline

        pipe = load_pipeline(args.model, reference_checkpoint=args.reference_checkpoint, base_model=args.base_model)
        pipes = {pipe.task.name: pipe}
        resolution = args.processing_resolution
        metrics["model"] = args.model or args.reference_checkpoint
    else:
        synthetic, pipes = train_and_evaluate(report, quick=args.quick)
        metrics.update(synthetic)
        resolution = args.processing_resolution or (64 if args.quick else 128)
    metrics["tasks"] = list(pipes)
    metrics["photos"] = predict_photos(pipes, report, resolution=resolution)
    metrics["seconds"] = time.perf_counter() - started
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    write_summary(report, metrics)
    print(f"demo report: {report}/summary.md ({metrics['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
