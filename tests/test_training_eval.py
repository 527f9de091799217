"""Trainer.evaluate(): eval loss and the task's metric with eval_ keys, statistics kept per
mode, --eval_strategy steps in the example scripts; the trainer leaves its args as given."""

import json

import numpy as np
import pytest
from test_training import SIZE, make_data, make_trainer

from edit2perceive.data import synthetic_scenes
from edit2perceive.metrics import depth_metrics, normal_metrics

METRIC_KEYS = {"depth": ("abs_rel", "delta1"), "normal": ("mean_angle", "a11_25"), "matting": ("mad", "mse")}


def eval_scenes(n=3):
    return list(synthetic_scenes(n, (SIZE, SIZE), seed=99))


@pytest.mark.parametrize("task", ["depth", "normal", "matting"])
def test_evaluate_returns_eval_loss_and_the_task_metric(tmp_path, task):
    data = list(synthetic_scenes(4, (SIZE, SIZE), seed=0))
    trainer, c = make_trainer(tmp_path, task=task, data=data, per_device_eval_batch_size=2,
                              eval_dataset=eval_scenes())
    calls = trainer.loss_calls
    metrics = trainer.evaluate()
    assert trainer.loss_calls == calls  # training's random stream is untouched
    assert np.isfinite(metrics["eval_loss"]) and metrics["eval_loss"] > 0
    for key in METRIC_KEYS[task]:
        assert np.isfinite(metrics[f"eval_{key}"]), key
    assert "eval_loss_fm" in metrics and "loss_fm" not in metrics
    assert trainer.evaluate()["eval_loss"] == pytest.approx(metrics["eval_loss"], rel=1e-6)  # same draws each time
    if task == "matting":
        return
    # a second implementation of the metric: the pipeline (single step, fixed noise) + the metric functions
    pipe = trainer.build_pipeline(vae=c["vae"])
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for ex in eval_scenes():
        pred = pipe(ex["rgb"], processing_resolution=0).prediction[0]
        if task == "depth":
            gt = ex["depth"].astype(np.float64)
            rows.append(depth_metrics(pred, gt, ex["valid_mask"], alignment="least_squares_sqrt", min_depth=1e-3,
                                      max_depth=float(gt[ex["valid_mask"]].max()) * 1.5)["abs_rel"])
        else:
            rows.append(normal_metrics(pred, ex["normal"], ex["valid_mask"])["mean"])
    key = "eval_abs_rel" if task == "depth" else "eval_mean_angle"
    assert metrics[key] == pytest.approx(float(np.mean(rows)), rel=1e-3)


def test_eval_strategy_steps_keeps_train_and_eval_statistics_apart(tmp_path):
    trainer, _ = make_trainer(tmp_path, data=make_data(8), max_steps=2, eval_strategy="steps", eval_steps=1,
                              per_device_eval_batch_size=2, eval_dataset=eval_scenes(2))
    assert set(trainer._metrics) == {"train", "eval"}
    trainer.train()
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    eval_logs = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [h["step"] for h in eval_logs] == [1, 2] and [h["step"] for h in train_logs] == [1, 2]
    assert all("eval_abs_rel" in h and "eval_loss_fm" in h and "loss_fm" not in h for h in eval_logs)
    assert all("loss_fm" in h and not any(k.startswith("eval_") for k in h) for h in train_logs)
    assert trainer.loss_calls == 2  # only the training steps advanced training's random stream


def test_the_trainer_leaves_args_as_given(tmp_path):
    from edit2perceive.testing import tiny_kontext_components
    from edit2perceive.training import Edit2PerceiveTrainer, Edit2PerceiveTrainingArguments

    args = Edit2PerceiveTrainingArguments(output_dir=str(tmp_path / "out"), task="depth", resolution=SIZE,
                                          per_device_train_batch_size=2, effective_batch_size=0, max_steps=1,
                                          use_cpu=True, report_to=[], disable_tqdm=True, save_strategy="no",
                                          gradient_checkpointing=True)
    before = args.to_dict()
    for seed in (0, 1):  # a second trainer from the same args checkpoints too
        c = tiny_kontext_components(seed=seed)
        cache = make_trainer(tmp_path, components=c)[0].prompt_cache
        trainer = Edit2PerceiveTrainer(c["transformer"], args, vae=c["vae"], prompt_cache=cache,
                                       train_dataset=make_data(4))
        assert args.to_dict() == before and args.gradient_checkpointing is True
        assert trainer.uses_gradient_checkpointing and c["transformer"].is_gradient_checkpointing
    trainer.train()
    trainer.save_model(str(tmp_path / "saved"))
    assert args.to_dict() == before
    assert json.loads((tmp_path / "saved" / "training_args.json").read_text())["gradient_checkpointing"] is True


def test_example_scripts_evaluate_with_eval_strategy_steps(tmp_path):
    from test_training_recipe import SMALL

    from edit2perceive.training.recipe import main

    out = tmp_path / "out"
    argv = [a for a in SMALL if a not in ("--save_strategy", "no")]
    assert main("depth", argv + ["--output_dir", str(out), "--max_steps", "2", "--num_train_examples", "4",
                                 "--num_val_examples", "2", "--eval_strategy", "steps", "--eval_steps", "1",
                                 "--save_strategy", "steps", "--save_steps", "2"]) == 0
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    evals = [h for h in history if "eval_loss" in h]
    assert [h["step"] for h in evals] == [1, 2] and all(np.isfinite(h["eval_abs_rel"]) for h in evals)
