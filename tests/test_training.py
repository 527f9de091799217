"""Edit2PerceiveTrainer: objective, lambda curriculum, frozen parts, accumulation, checkpoints, resume."""

import os
from dataclasses import fields

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from edit2perceive.core.prompts import encode_prompt
from edit2perceive.tasks import get_task
from edit2perceive.testing import tiny_kontext_components
from edit2perceive.training import Edit2PerceiveTrainer, Edit2PerceiveTrainingArguments
from edit2perceive.training.precision import CompensatedBF16Optimizer
from edit2perceive.training.trainer import COMPLETE_MARKER

SIZE = 32


def make_data(n=16, task="depth", seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ex = {"rgb": (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8),
              "valid_mask": rng.random((SIZE, SIZE)) > 0.1, "meta": {"id": f"{task}-{i}"}}
        ex["depth"] = rng.uniform(1, 5, (SIZE, SIZE)).astype(np.float32)
        alpha = np.zeros((SIZE, SIZE), np.float32)
        alpha[8:24, 8:24] = 1.0
        ex["alpha"] = alpha
        out.append(ex)
    return out


def make_trainer(tmp_path, task="depth", data=None, components=None, **overrides):
    c = components or tiny_kontext_components(seed=0)
    t = get_task(task)
    cache = encode_prompt(t.prompt, **{k: c[k] for k in ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")})
    kw = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=6, learning_rate=1e-3,
              report_to=[], resolution=SIZE, use_cpu=True, seed=0, disable_tqdm=True, logging_steps=1,
              save_strategy="no", task=task, lr_scheduler_type="constant", effective_batch_size=0)
    trainer_kwargs = {k: overrides.pop(k) for k in ("eval_dataset", "base_model") if k in overrides}
    kw.update(overrides)
    args = Edit2PerceiveTrainingArguments(**kw)
    return Edit2PerceiveTrainer(c["transformer"], args, vae=c["vae"], prompt_cache=cache,
                                train_dataset=data if data is not None else make_data(task=task), **trainer_kwargs), c


def test_every_argument_has_help():
    ours = {f.name for f in fields(Edit2PerceiveTrainingArguments)} - {f.name for f in fields(TrainingArguments)}
    assert {"task", "pixel_loss", "sigma_sampling", "multires_noise", "noise_seed", "guidance", "use_lora"} <= ours
    for f in fields(Edit2PerceiveTrainingArguments):
        if f.name in ours:
            assert f.metadata.get("help"), f.name
    with pytest.raises(ValueError, match="multiple of 16"):
        Edit2PerceiveTrainingArguments(output_dir="x", resolution=30, report_to=[])


def test_loss_is_fm_plus_lambda_cons(tmp_path):
    trainer, _ = make_trainer(tmp_path, steps_per_epoch=4)
    batch = trainer.data_collator(make_data(4))
    model = trainer.model
    # first epoch: lambda = 0, L_cons still computed and logged, loss = L_FM
    trainer.state.global_step = 2
    loss = trainer.compute_loss(model, batch)
    m = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert m["lambda"] == 0.0 and m["loss_cons"] > 0
    assert loss.item() == pytest.approx(m["loss_fm"], rel=1e-6)
    # step 10 of 4 per epoch: ramp = 10 / 4 - 1 = 1.5
    trainer.state.global_step = 10
    assert trainer.lambda_ramp() == 1.5
    loss = trainer.compute_loss(model, batch)
    m = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    expected_lambda = 1.5 * abs(m["loss_fm"]) / (abs(m["loss_cons"]) + 1e-3)
    assert m["lambda"] == pytest.approx(expected_lambda, rel=1e-5)
    assert loss.item() == pytest.approx(m["loss_fm"] + expected_lambda * m["loss_cons"], rel=1e-5)


def test_pixel_loss_gradient_reaches_the_dit_through_the_decoder(tmp_path):
    trainer, c = make_trainer(tmp_path, steps_per_epoch=1, sigma_sampling="one", multires_noise=False)
    batch = trainer.data_collator(make_data(2))
    trainer.state.global_step = 3  # lambda > 0

    def grads(pixel_loss):
        trainer.args.pixel_loss = pixel_loss
        trainer.model.zero_grad()
        trainer.compute_loss(trainer.model, batch).backward()
        return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])

    with_pixel, fm_only = grads(True), grads(False)
    assert (with_pixel - fm_only).abs().max() > 1e-6
    assert all(p.grad is None for p in c["vae"].parameters())  # the decoder is frozen


def test_only_the_dit_trains(tmp_path):
    trainer, c = make_trainer(tmp_path, max_steps=2)
    vae_before = {k: v.clone() for k, v in c["vae"].state_dict().items()}
    dit_before = {k: v.clone() for k, v in c["transformer"].state_dict().items()}
    trainer.train()
    assert all(torch.equal(v, c["vae"].state_dict()[k]) for k, v in vae_before.items())
    assert any(not torch.equal(v, c["transformer"].state_dict()[k]) for k, v in dit_before.items())
    logged = trainer.state.log_history[0]
    assert {"loss", "loss_fm", "loss_cons", "lambda", "sigma_mean", "sigma_min", "sigma_max"} <= set(logged)


def test_lora_trains_only_adapters(tmp_path):
    trainer, c = make_trainer(tmp_path, max_steps=2, use_lora=True, lora_rank=4, lora_alpha=4,
                              save_strategy="steps", save_steps=2)
    base_before = {k: v.clone() for k, v in c["transformer"].state_dict().items() if "lora" not in k}
    trainer.train()
    state = c["transformer"].state_dict()
    assert all(torch.equal(v, state[k]) for k, v in base_before.items())
    trainable = [n for n, p in c["transformer"].named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    ckpt = tmp_path / "out" / "checkpoint-2"
    assert (ckpt / "transformer_lora" / "pytorch_lora_weights.safetensors").exists()
    assert not (ckpt / "transformer").exists()  # the base DiT is not re-saved
    import json

    settings = json.loads((ckpt / "training_args.json").read_text())  # what e2p card reads (no unpickling)
    assert settings["use_lora"] is True and settings["lora_rank"] == 4 and settings["max_steps"] == 2
    # the checkpoint loads on top of a fresh base transformer and reproduces the trained model
    from edit2perceive import Edit2PerceivePipeline

    base = tiny_kontext_components(seed=0)["transformer"]
    loaded = Edit2PerceivePipeline.from_pretrained(ckpt, transformer=base, vae=c["vae"])
    trained = trainer.build_pipeline(vae=c["vae"])
    for p in (loaded, trained):
        p.set_progress_bar_config(disable=True)
    image = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded(image).prediction, trained(image).prediction, atol=1e-5)
    with pytest.raises(ValueError, match="holds a LoRA adapter"):
        Edit2PerceivePipeline.from_pretrained(ckpt, vae=c["vae"])


def test_gradient_accumulation_matches_the_large_batch(tmp_path):
    common = dict(max_steps=1, sigma_sampling="one", multires_noise=False, pixel_loss=False,
                  optim="sgd", learning_rate=0.5, dataloader_drop_last=True)
    data = make_data(4)
    for m in data:
        m["valid_mask"][:] = True  # equal valid counts: the mean of micro-batch means is the batch mean
    big, c_big = make_trainer(tmp_path / "a", data=data, per_device_train_batch_size=4, **common)
    big.args.data_seed = None
    big.train()
    acc, c_acc = make_trainer(tmp_path / "b", data=data, per_device_train_batch_size=2,
                              gradient_accumulation_steps=2, **common)
    acc.train()
    for k, v in c_big["transformer"].state_dict().items():
        torch.testing.assert_close(v, c_acc["transformer"].state_dict()[k], atol=2e-5, rtol=1e-4)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    common = dict(max_steps=8, save_strategy="steps", save_steps=4, steps_per_epoch=2)
    full, c_full = make_trainer(tmp_path / "full", **common)
    full.train()
    first, _ = make_trainer(tmp_path / "part", **{**common, "max_steps": 8})
    # interrupt: train to step 4 only, keeping the same schedule (max_steps 8) for the LR scheduler
    first.add_callback(_StopAt(4))
    first.train()
    ckpt = tmp_path / "part" / "out" / "checkpoint-4"
    assert (ckpt / COMPLETE_MARKER).exists()
    resumed, c_res = make_trainer(tmp_path / "part", **common)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.state.global_step == 8 and resumed.loss_calls == full.loss_calls
    for k, v in c_full["transformer"].state_dict().items():
        torch.testing.assert_close(v, c_res["transformer"].state_dict()[k], atol=1e-5, rtol=1e-4)


class _StopAt:
    def __init__(self, step):
        self.step = step

    def __getattr__(self, name):  # a TrainerCallback that only acts on on_step_end
        return lambda *a, **k: None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_crash_while_saving_leaves_no_complete_looking_checkpoint(tmp_path, monkeypatch):
    trainer, _ = make_trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)

    def broken_save(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(trainer, "_save_optimizer_and_scheduler", broken_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.train()
    out = tmp_path / "out"
    assert not any(n.startswith("checkpoint-") for n in os.listdir(out))
    partial = out / ".staging" / "checkpoint-2"
    assert partial.exists() and not (partial / COMPLETE_MARKER).exists()
    with pytest.raises(ValueError, match="incomplete checkpoint"):
        trainer._load_from_checkpoint(str(partial))


def test_checkpoint_is_a_loadable_pipeline(tmp_path):
    from edit2perceive import Edit2PerceivePipeline

    trainer, c = make_trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2, task="matting",
                              data=make_data(task="matting"))
    trainer.train()
    pipe = Edit2PerceivePipeline.from_pretrained(tmp_path / "out" / "checkpoint-2", vae=c["vae"])
    assert pipe.task.name == "matting" and pipe.text_encoder is None
    pipe.set_progress_bar_config(disable=True)
    out = pipe(np.zeros((SIZE, SIZE, 3), np.uint8), points=[[(16, 16)]])
    assert out.prediction.shape == (1, SIZE, SIZE)


def test_adamw_8bit_runs(tmp_path):
    pytest.importorskip("bitsandbytes")
    trainer, _ = make_trainer(tmp_path, max_steps=1, optim="adamw_bnb_8bit")
    trainer.train()
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert type(opt).__module__.startswith("bitsandbytes")
    states = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    assert any(t.dtype == torch.uint8 for t in states)  # real 8-bit moments for the large matrices


def test_in_training_evaluation_logs_task_metrics(tmp_path):
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.training.callbacks import PerceptionEvalCallback

    data = list(synthetic_scenes(8, (SIZE, SIZE), seed=0))
    trainer, _ = make_trainer(tmp_path, data=data, max_steps=2)
    callback = PerceptionEvalCallback(list(synthetic_scenes(2, (SIZE, SIZE), seed=99)), eval_steps=1)
    callback.trainer = trainer
    trainer.add_callback(callback)
    trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_abs_rel" in h]
    assert [h["step"] for h in evals] == [1, 2]
    assert all(0 <= h["eval_abs_rel"] < 10 and 0 <= h["eval_delta1"] <= 1 for h in evals)


def test_fsdp_config_wraps_flux_blocks():
    import yaml
    from diffusers.models.transformers import transformer_flux

    root = os.path.join(os.path.dirname(__file__), "..", "examples", "configs")
    config = yaml.safe_load(open(os.path.join(root, "fsdp.yaml")))
    classes = config["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(",")
    assert classes == ["FluxTransformerBlock", "FluxSingleTransformerBlock"]
    assert all(hasattr(transformer_flux, name) for name in classes)
    for name in ("single_gpu", "multi_gpu_ddp", "deepspeed_zero2", "deepspeed_zero3"):
        text = open(os.path.join(root, f"{name}.yaml")).read()
        assert text.startswith("#") and yaml.safe_load(text)["mixed_precision"] == "bf16"


def test_vae_gradient_checkpointing_keeps_gradients(tmp_path):
    """Checkpointing the frozen decoder (for L_cons) changes memory, not the gradients."""
    grads = []
    for vae_gc in (False, True):
        trainer, c = make_trainer(tmp_path / str(vae_gc), steps_per_epoch=1, sigma_sampling="one", multires_noise=False,
                                  gradient_checkpointing=True, vae_gradient_checkpointing=vae_gc)
        assert c["vae"].decoder.gradient_checkpointing is vae_gc
        trainer.state.global_step = 3  # lambda > 0: the decoder backward runs
        trainer.model.train()
        trainer.compute_loss(trainer.model, trainer.data_collator(make_data(2))).backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_defaults_are_the_papers_recipe_with_sources():
    from edit2perceive.training.args import accumulation_steps, reference_steps_per_epoch

    args = Edit2PerceiveTrainingArguments(output_dir="x", task="depth", report_to=[], use_cpu=True)
    assert (args.learning_rate, args.max_steps, args.weight_decay) == (3e-5, 6000, 0.01)
    assert str(args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value") else args.lr_scheduler_type) \
        == "constant"
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 16  # 8 x 2 on one process
    assert args.master_weights == "fp32" and args.optim == "adamw_torch"
    helps = {f.name: f.metadata.get("help", "") for f in fields(Edit2PerceiveTrainingArguments)}
    for name in ("learning_rate", "max_steps", "effective_batch_size"):
        assert "Paper" in helps[name], name
    for name in ("lr_scheduler_type", "weight_decay"):
        assert "Reference" in helps[name], name
    matting = Edit2PerceiveTrainingArguments(output_dir="x", task="matting", report_to=[], use_cpu=True)
    assert matting.optim == "adamw_bnb_8bit"  # paper: 8-bit AdamW for matting
    pure = Edit2PerceiveTrainingArguments(output_dir="x", bf16=True, report_to=[], use_cpu=True,
                                          per_device_train_batch_size=4)
    assert pure.master_weights == "bf16" and pure.optim == "adamw_bnb_8bit" and pure.gradient_accumulation_steps == 4
    with pytest.raises(ValueError, match="not a multiple of per_device_train_batch_size 3"):
        Edit2PerceiveTrainingArguments(output_dir="x", report_to=[], use_cpu=True, per_device_train_batch_size=3)
    assert accumulation_steps(16, 4, 2) == 2
    with pytest.raises(ValueError, match="contradicts"):
        accumulation_steps(16, 4, 1, given=2)
    # the reference's epoch: every example of the mixture once, in effective batches
    assert reference_steps_per_epoch(74_000, 16) == 4625 and reference_steps_per_epoch(10, 16) == 1


def test_steps_per_epoch_counts_examples_per_effective_batch(tmp_path):
    trainer, _ = make_trainer(tmp_path, data=make_data(16), per_device_train_batch_size=2,
                              gradient_accumulation_steps=2)
    assert trainer.steps_per_epoch() == 16 // 4


def test_pure_bf16_trains_checkpoints_in_bf16_and_resumes(tmp_path):
    """--bf16 default: bf16 weights and gradients, stochastic rounding, bf16 checkpoints, exact resume."""
    from safetensors import safe_open

    common = dict(bf16=True, optim="adamw_torch", max_steps=4, save_strategy="steps", save_steps=2,
                  steps_per_epoch=1, learning_rate=3e-5)
    full, c_full = make_trainer(tmp_path / "full", **common)
    assert c_full["transformer"].dtype == torch.bfloat16 and full.args.master_weights == "bf16"
    before = {k: v.clone() for k, v in c_full["transformer"].state_dict().items()}
    full.train()
    assert isinstance(full.optimizer.optimizer, CompensatedBF16Optimizer)
    logged = [h for h in full.state.log_history if "vanished_fraction" in h]
    assert logged and all(0.0 <= h["vanished_fraction"] <= 1.0 for h in logged)
    after = c_full["transformer"].state_dict()
    assert all(v.dtype == torch.bfloat16 for v in after.values())
    assert any(not torch.equal(v, after[k]) for k, v in before.items())
    ckpt = tmp_path / "full" / "out" / "checkpoint-2"
    weights = next((ckpt / "transformer").glob("*.safetensors"))
    with safe_open(str(weights), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # the dtype it trained in
    resumed, c_res = make_trainer(tmp_path / "full", **common)
    resumed.train(resume_from_checkpoint=str(ckpt))
    for k, v in after.items():
        torch.testing.assert_close(v, c_res["transformer"].state_dict()[k], atol=0, rtol=0)


def test_default_training_noise_at_sigma_one_is_the_inference_noise(tmp_path, monkeypatch):
    """With the default multi-resolution noise, the sigma = 1 input is exactly the fixed base noise
    that single-step inference feeds the DiT; Marigold's 'sigma' annealing is not."""
    from edit2perceive import flow, modeling

    seen = []

    def capture(model, x, sigma, *args, **kwargs):
        seen.append(x.detach().clone())
        return torch.zeros_like(x, requires_grad=True)

    monkeypatch.setattr(modeling, "predict_velocity", capture)
    for anneal in ("sigma_below_one", "sigma"):
        overrides = {} if anneal == "sigma_below_one" else {"multires_anneal": anneal}
        trainer, _ = make_trainer(tmp_path / anneal, sigma_sampling="one", pixel_loss=False, **overrides)
        assert trainer.args.multires_noise and trainer.args.multires_anneal == anneal
        trainer.compute_loss(trainer.model, trainer.data_collator(make_data(2)))
    base = flow.base_noise(seen[0].shape[1:], seed=trainer.args.noise_seed, batch_size=2)
    assert torch.equal(seen[0], base)
    assert not torch.allclose(seen[1], base)
