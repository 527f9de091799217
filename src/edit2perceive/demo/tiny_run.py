"""A complete tiny Edit2Perceive run on synthetic scenes, offline, in CPU minutes.

Used by the demo, the learning tests and ``examples/train_*.py --model tiny``:

1. render synthetic scenes (exact depth, normals, alpha);
2. fit the tiny VAE as an autoencoder (a random VAE cannot reconstruct) and freeze it;
3. train the tiny DiT with :class:`Edit2PerceiveTrainer`;
4. evaluate on held-out scenes against the untrained model and a constant baseline.

The numbers are about the *method* working end to end (the model measurably learns),
not about accuracy: the DiT has ~80k parameters.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ..training.tiny import TinyRunConfig, target_images

__all__ = ["TinyRunConfig", "constant_baseline", "fit_tiny_vae", "run_tiny"]


def constant_baseline(task: str, train_examples: list[dict], shape) -> np.ndarray:
    """The best constant map from training statistics (depth: any constant, since
    evaluation fits scale and shift; normals: the mean training normal; alpha: mean alpha)."""
    h, w = shape
    if task == "depth":
        return np.full((h, w), 0.5, dtype=np.float32)
    if task == "normal":
        mean = np.mean([ex["normal"][ex["valid_mask"]].mean(axis=0) for ex in train_examples], axis=0)
        return np.broadcast_to(mean / np.linalg.norm(mean), (h, w, 3)).astype(np.float32)
    return np.full((h, w), float(np.mean([ex["alpha"].mean() for ex in train_examples])), dtype=np.float32)


def fit_tiny_vae(vae, examples: list[dict], *, steps: int, seed: int = 0, progress: bool = True) -> dict:
    """Fit a tiny VAE on the RGB images and the depth, normal and alpha encodings of
    ``examples`` (so one fitted VAE serves every task); returns the MAE before/after."""
    from ..tasks import get_task
    from ..training.autoencoder import fit_autoencoder

    images = [target_images(get_task("depth"), examples)]
    images += [target_images(get_task(t), examples)[len(examples):] for t in ("normal", "matting")]
    return fit_autoencoder(vae, torch.cat(images), steps=steps, seed=seed, progress=progress)


def run_tiny(config: TinyRunConfig, output_dir: str, *, vae=None, progress: bool = True, keep_log: bool = False) -> dict:
    """Train and evaluate; save the trained pipeline (VAE included) to ``output_dir``.

    ``vae``: an already fitted tiny VAE to reuse (e.g. across tasks); otherwise the tiny
    components' VAE is fitted here (:func:`fit_tiny_vae`). Returns a JSON-able report: VAE
    reconstruction error, held-out metrics of the trained model, the untrained model and
    the constant baseline, timings (and the Trainer's ``log_history`` with ``keep_log``).
    """
    from ..core.prompts import encode_prompt
    from ..data import synthetic_scenes
    from ..tasks import get_task
    from ..testing import tiny_kontext_components
    from ..training.args import Edit2PerceiveTrainingArguments
    from ..training.callbacks import evaluate_predictions
    from ..training.trainer import Edit2PerceiveTrainer

    started = time.perf_counter()
    task = get_task(config.task)
    train = list(synthetic_scenes(config.num_train, (config.size, config.size), seed=config.data_seed))
    val = list(synthetic_scenes(config.num_val, (config.size, config.size), seed=config.data_seed + 10_000))
    t_data = time.perf_counter() - started

    c = tiny_kontext_components(seed=config.seed)
    cache = encode_prompt(task.prompt, **{k: c[k] for k in ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")})
    if vae is None:
        vae_report = fit_tiny_vae(c["vae"], train, steps=config.vae_steps, seed=config.seed, progress=progress)
    else:
        c["vae"], vae_report = vae, None
    t_vae = time.perf_counter() - started - t_data
    untrained = copy.deepcopy(c["transformer"])

    kwargs = dict(
        output_dir=output_dir, task=config.task, resolution=config.size, per_device_train_batch_size=config.batch_size,
        max_steps=config.train_steps, learning_rate=config.learning_rate, lr_scheduler_type="cosine", warmup_steps=0,
        weight_decay=0.0, report_to=[], use_cpu=True, seed=config.seed, save_strategy="no", logging_steps=50,
        disable_tqdm=not progress, dataloader_drop_last=True, effective_batch_size=0, optim="adamw_torch",
    )
    args = Edit2PerceiveTrainingArguments(**{**kwargs, **config.training_overrides})
    trainer = Edit2PerceiveTrainer(c["transformer"], args, vae=c["vae"], prompt_cache=cache, train_dataset=train,
                                   save_vae=True)
    trainer.train()
    t_train = time.perf_counter() - started - t_data - t_vae

    def predict(transformer) -> list[np.ndarray]:
        pipe = trainer.build_pipeline(vae=c["vae"])
        pipe.register_modules(transformer=transformer)
        pipe.set_progress_bar_config(disable=True)
        from ..evaluation.points import oracle_points

        preds = []
        for ex in val:
            points = [oracle_points(ex["alpha"])[0]] if config.task == "matting" else None
            preds.append(pipe(ex["rgb"], points=points, processing_resolution=0).prediction[0])
        return preds

    encoding = getattr(task, "encoding", "sqrt")
    metrics = {
        "trained": evaluate_predictions(config.task, predict(c["transformer"]), val, depth_encoding=encoding),
        "untrained": evaluate_predictions(config.task, predict(untrained), val, depth_encoding=encoding),
        "constant": evaluate_predictions(
            config.task, [constant_baseline(config.task, train, (config.size, config.size))] * len(val), val,
            depth_encoding=encoding),
    }
    trainer.save_model(output_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report = {
        "task": config.task,
        "config": {k: v for k, v in vars(config).items()},
        "vae_reconstruction_mae": vae_report,
        "metrics": metrics,
        "train_loss_first_last": [losses[0], losses[-1]] if losses else None,
        "seconds": {"data": t_data, "vae_fit": t_vae, "train": t_train, "total": time.perf_counter() - started},
        "model_dir": output_dir,
    }
    if keep_log:
        report["log_history"] = trainer.state.log_history
    return report


def _main(argv=None) -> int:  # python -m edit2perceive.demo.tiny_run [depth|normal|matting]
    import argparse
    import json
    import tempfile

    from ..tasks import TASKS

    parser = argparse.ArgumentParser(prog="python -m edit2perceive.demo.tiny_run",
                                     description="One tiny run (TinyRunConfig's defaults); prints its report as JSON.")
    parser.add_argument("task", nargs="?", default="depth", choices=sorted(TASKS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run_tiny(TinyRunConfig(task=args.task), tmp), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

