"""Temporal consistency on a static-camera synthetic clip: fixed noise vs fresh noise per
frame vs temporal smoothing.

The clip: one held-out synthetic scene, every frame the same render plus independent sensor
noise (Gaussian, ``--sensor-noise`` grey levels), so the ideal prediction never changes.
Flicker = :func:`edit2perceive.outputs.video.temporal_change` (mean absolute change between
consecutive predictions; depth aligned to the previous frame by least squares, normals as
the angle in degrees, alpha as is). Accuracy = the task metric of every frame against the
exact target (depth AbsRel, normal mean angle, matting MAD), averaged over frames and scenes.

    python -m benchmarks.bench_video --models /tmp/tiny-models
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.bench_ensemble import TASKS, ensure_models
from benchmarks.common import machine, markdown_table

CONFIGS = [("fixed noise", "fixed", 0.0), ("fresh noise", "fresh", 0.0), ("fixed + smoothing 0.5", "fixed", 0.5),
           ("fresh + smoothing 0.5", "fresh", 0.5), ("fresh + smoothing 0.8", "fresh", 0.8)]


def static_clip(rgb: np.ndarray, frames: int, sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).round().astype(np.uint8) for _ in range(frames)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--sensor-noise", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=64, help="scene side in pixels (the models' training size)")
    args = parser.parse_args(argv)
    ensure_models(args.models, args.tasks)

    import torch

    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.evaluation.points import oracle_points
    from edit2perceive.outputs.video import predict_frames, temporal_change
    from edit2perceive.training.callbacks import evaluate_predictions

    scenes = list(synthetic_scenes(args.scenes, (args.size, args.size), seed=20_000))
    rows = []
    for task in args.tasks:
        pipe = Edit2PerceivePipeline.from_pretrained(args.models / task)
        pipe.set_progress_bar_config(disable=True)
        encoding = getattr(pipe.task, "encoding", "sqrt")
        key = {"depth": "abs_rel", "normal": "mean_angle", "matting": "mad"}[task]
        for name, frame_noise, smoothing in CONFIGS:
            flicker, accuracy = [], []
            for i, ex in enumerate(scenes):
                clip = static_clip(ex["rgb"], args.frames, args.sensor_noise, seed=i)
                points = oracle_points(ex["alpha"])[0] if task == "matting" else None
                with torch.no_grad():
                    preds = list(predict_frames(pipe, clip, frame_noise=frame_noise, seed=i, smoothing=smoothing,
                                                points=points, processing_resolution=0))
                flicker.append(temporal_change(preds, task))
                accuracy.append(evaluate_predictions(task, preds, [ex] * len(preds), depth_encoding=encoding)[key])
            row = {"task": task, "config": name, "flicker": float(np.mean(flicker)), "metric": key,
                   "value": float(np.mean(accuracy))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{machine()}; {args.scenes} scenes x {args.frames} frames, sensor noise sigma {args.sensor_noise}\n")
    print(markdown_table(rows, ["task", "config", "flicker", "metric", "value"]))


if __name__ == "__main__":
    main()
