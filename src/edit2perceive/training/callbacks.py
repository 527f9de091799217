"""Trainer callback for in-training evaluation with the task metrics."""

from __future__ import annotations

import numpy as np
from transformers import TrainerCallback


def evaluate_predictions(task_name: str, predictions, examples, *, depth_encoding: str = "sqrt") -> dict:
    """Mean task metrics of pipeline predictions against example dicts (per-image mean).

    depth: AbsRel and delta1 after least-squares alignment in the encoding's space
    (sqrt space for sqrt-encoded models); normal: mean angular error (degrees) and % < 11.25;
    matting: MAD and MSE over the whole image.
    """
    from ..evaluation.protocols import ALIGNMENT_FOR_ENCODING
    from ..metrics import depth_metrics, matting_metrics, normal_metrics

    rows = []
    for pred, ex in zip(predictions, examples):
        if task_name == "depth":
            alignment = ALIGNMENT_FOR_ENCODING.get(depth_encoding, "least_squares")
            gt = np.asarray(ex["depth"], dtype=np.float64)
            m = depth_metrics(pred, gt, ex["valid_mask"], alignment=alignment, min_depth=1e-3,
                              max_depth=float(gt[ex["valid_mask"]].max()) * 1.5)
            rows.append({"abs_rel": m["abs_rel"], "delta1": m["delta1"]})
        elif task_name == "normal":
            m = normal_metrics(pred, ex["normal"], ex["valid_mask"])
            rows.append({"mean_angle": m["mean"], "a11_25": m["a11_25"]})
        else:
            m = matting_metrics(pred, ex["alpha"])
            rows.append({"mad": m["mad"], "mse": m["mse"]})
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


class PerceptionEvalCallback(TrainerCallback):
    """Every ``eval_steps`` optimizer steps, run the pipeline on validation examples and
    log the task metrics (prefixed ``eval_``). Set ``trainer`` after construction.

    For matting, each validation example is prompted with the evaluation protocol's oracle
    points (:func:`edit2perceive.evaluation.points.oracle_points`, seed 42).
    """

    def __init__(self, examples: list[dict], eval_steps: int, *, vae=None, processing_resolution: int | None = None):
        if eval_steps <= 0:
            raise ValueError(f"eval_steps must be positive, got {eval_steps}")
        self.examples = examples
        self.eval_steps = eval_steps
        self.vae = vae
        self.processing_resolution = processing_resolution
        self.trainer = None
        self.history: list[dict] = []

    def run(self) -> dict:
        from ..evaluation.points import oracle_points

        trainer = self.trainer
        pipe = trainer.build_pipeline(vae=self.vae or trainer.vae)
        pipe.set_progress_bar_config(disable=True)
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        try:
            preds = []
            for ex in self.examples:
                points = None
                if trainer.task.name == "matting":
                    points = [oracle_points(ex["alpha"])[0]]
                out = pipe(ex["rgb"], points=points, processing_resolution=self.processing_resolution or 0)
                preds.append(out.prediction[0])
        finally:
            model.train(was_training)
        encoding = getattr(trainer.task, "encoding", "sqrt")
        metrics = {f"eval_{k}": v for k, v in evaluate_predictions(trainer.task.name, preds, self.examples,
                                                                   depth_encoding=encoding).items()}
        self.history.append({"step": trainer.state.global_step, **metrics})
        return metrics

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer is not None and state.global_step % self.eval_steps == 0 and args.process_index == 0:
            self.trainer.log(self.run())
        return control


__all__ = ["PerceptionEvalCallback", "evaluate_predictions"]
