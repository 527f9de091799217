"""``Edit2PerceiveTrainer``: a ``transformers.Trainer`` that fine-tunes the Kontext DiT.

Objective (METHOD.md), both terms computed every step:

    L = L_FM + lambda * L_cons
    L_FM   = mean over valid latent positions of (v_theta - (eps - z1))^2
    L_cons = task.pixel_loss(decode(z1_hat), target, mask),  z1_hat = x_sigma - sigma * v_theta
    lambda = sg|L_FM| / (sg|L_cons| + 1e-3) * max(0, step / steps_per_epoch - 1)

``L_cons`` back-propagates through the frozen VAE decoder into the DiT. While lambda is 0
(the first epoch) ``L_cons`` is still computed and logged, without building its graph.
Only the DiT trains (all of it, or LoRA adapters with ``use_lora``); the VAE and the
prompt cache are frozen, and the text encoders are never loaded.

Gradient accumulation: the loss is a per-micro-batch mean (``model_accepts_loss_kwargs =
False``), so the Trainer divides it by the accumulation steps; the accumulated gradient is
the mean over micro-batches.

Randomness is stateless and resumable: the noise levels and multi-resolution noise of the
k-th loss evaluation come from a generator seeded by (seed, k, process index); matting
points from (seed, example, epoch). k is stored in every checkpoint.

Evaluation (``trainer.evaluate()``, ``--eval_strategy steps``): the same loss on the eval
stream, with its own randomness (the same draws at every evaluation, training's stream
untouched), plus the task's metric of the single-step prediction (sigma 1, the fixed base
noise: exactly inference) against the raw ground truth: depth ``abs_rel`` / ``delta1``
(least squares in the encoding's space), normals ``mean_angle`` / ``a11_25``, matting ``mad`` /
``mse``; all logged and returned with the ``eval_`` prefix. Logged statistics are kept per
mode (``self._metrics = {"train": ..., "eval": ...}``, TRL's shape).

The ``args`` given are left as they are: what the trainer handles itself (gradient
checkpointing through diffusers' switch) is private state on a copy.

Checkpoints: ``checkpoint-N/`` holds a diffusers-loadable pipeline folder (``transformer/``
or ``transformer_lora/``, ``prompt_cache/``, ``model_index.json``) plus the Trainer's
optimizer, scheduler, RNG and state files. It is written under ``.staging/`` and renamed
into place only when complete, with a ``CHECKPOINT_COMPLETE`` marker, so a crash while
saving never leaves a ``checkpoint-N`` that looks complete but is not.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer
from transformers.trainer_utils import rotate_checkpoints

from ..core import flow, modeling
from ..core.prompts import PromptCache
from ..io.atomic import publish_folder
from ..tasks import get_task
from ..tasks.base import masked_mean
from ..tasks.matting import point_map_image, point_rng
from .args import Edit2PerceiveTrainingArguments, reference_steps_per_epoch
from .collator import Edit2PerceiveCollator
from .parameters import decay_parameter_names, lora_target_modules
from .precision import CompensatedBF16Optimizer

COMPLETE_MARKER = "CHECKPOINT_COMPLETE"
E2P_STATE_NAME = "e2p_trainer_state.json"
LORA_DIR = "transformer_lora"
#: training settings as JSON next to a saved model (read by ``e2p card`` / ``e2p push``; never unpickled)
TRAINING_SETTINGS = "training_args.json"


def latent_valid_mask(mask: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """Pixel mask ``B x H x W`` -> latent mask ``B x H/8 x W/8``: valid where at least half of
    the 8x8 pixel block is valid."""
    return F.avg_pool2d(mask.float().unsqueeze(1), factor).squeeze(1) >= 0.5


class Edit2PerceiveTrainer(Trainer):
    """Trainer for Edit2Perceive. ``model`` is the ``FluxTransformer2DModel`` (the DiT).

    Args:
        model: the DiT to fine-tune.
        args: :class:`Edit2PerceiveTrainingArguments`.
        vae: the frozen ``AutoencoderKL``.
        prompt_cache: the task prompt's :class:`PromptCache` (no text encoders needed).
        base_model: the FLUX.1 Kontext folder or Hub id the DiT was loaded from (and
            ``base_model_revision``), recorded in every saved pipeline's config so that
            ``from_pretrained(folder)`` finds the parts a folder leaves out.
        save_vae: save the VAE with every checkpoint; default (``None``): with full models
            (self-contained, 0.7 % of their size), not with LoRA models (small; they name their base).
        Other keyword arguments go to ``transformers.Trainer``.
    """

    def __init__(self, model, args: Edit2PerceiveTrainingArguments, *, vae, prompt_cache: PromptCache,
                 base_model: str | None = None, base_model_revision: str | None = None,
                 save_vae: bool | None = None, **kwargs):
        if not isinstance(args, Edit2PerceiveTrainingArguments):
            raise TypeError("args must be Edit2PerceiveTrainingArguments")
        self.given_args = args  # saved as the run's settings; never modified
        self.task = get_task(args.task, **args.task_options())
        if prompt_cache.prompt != self.task.prompt:
            raise ValueError(f"prompt cache holds {prompt_cache.prompt!r}, task {self.task.name!r} needs {self.task.prompt!r}")
        vae.requires_grad_(False).eval()
        prompt_cache.requires_grad_(False)
        if args.use_lora:
            from peft import LoraConfig

            model.requires_grad_(False)
            model.add_adapter(
                LoraConfig(
                    r=args.lora_rank,
                    lora_alpha=args.lora_alpha,
                    init_lora_weights="gaussian",
                    target_modules=lora_target_modules(args.lora_target_modules),
                )
            )
        else:
            model.requires_grad_(True)
        weight_dtype = torch.bfloat16 if args.master_weights == "bf16" else torch.float32
        if model.dtype != weight_dtype:
            model.to(weight_dtype)  # the trained weights live in this dtype; checkpoints keep it
        if args.activation_checkpointing or args.gradient_checkpointing:
            model.enable_gradient_checkpointing()  # diffusers' own switch
            if args.pixel_loss and args.vae_gradient_checkpointing:
                vae.enable_gradient_checkpointing()  # L_cons back-propagates through the decoder
            args = copy.copy(args)  # the Trainer must not try its own (diffusers models have another switch)
            args.activation_checkpointing = args.gradient_checkpointing = False
            self.uses_gradient_checkpointing = True
        else:
            self.uses_gradient_checkpointing = False
        kwargs.setdefault("data_collator", Edit2PerceiveCollator(self.task))
        super().__init__(model=model, args=args, **kwargs)
        # our loss is already a mean over the micro-batch: let the Trainer scale it for accumulation
        self.model_accepts_loss_kwargs = False
        self.vae = vae
        self.prompt_cache = prompt_cache
        self.save_vae = (not args.use_lora) if save_vae is None else bool(save_vae)
        if base_model is not None and os.path.isdir(base_model):
            base_model = os.path.abspath(base_model)
        self.base_model, self.base_model_revision = base_model, base_model_revision
        self.loss_calls = 0
        self.evaluating = False  # inside evaluate(): losses and statistics go to the eval stream
        self.eval_batches = 0  # loss evaluations of the current evaluate() call
        self.seen_example_keys: list[int] = []  # per process: shows how data was sharded
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._steps_per_epoch: int | None = args.steps_per_epoch

    # -- optimizer ----------------------------------------------------------------------
    def create_optimizer(self, *args, **kwargs):
        """The optimizer ``args.optim`` names; with bf16 master weights wrapped so that small
        updates survive (:class:`~edit2perceive.training.precision.CompensatedBF16Optimizer`)."""
        optimizer = super().create_optimizer(*args, **kwargs)
        if self.args.master_weights == "bf16" and not isinstance(optimizer, CompensatedBF16Optimizer):
            self.optimizer = CompensatedBF16Optimizer(optimizer, self.args.bf16_update, seed=self.args.seed)
        return self.optimizer

    def effective_batch_size(self) -> int:
        args = self.args
        return args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps

    # -- schedule -----------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch of the lambda curriculum: ``args.steps_per_epoch``, else the
        reference's count, ``len(train_dataset) // effective batch``."""
        if self._steps_per_epoch is None:
            try:
                num_examples = len(self.train_dataset)
            except TypeError:
                raise ValueError("the train dataset has no length: set steps_per_epoch for the lambda curriculum "
                                 "((sum of the sources' example counts) // effective batch)") from None
            self._steps_per_epoch = reference_steps_per_epoch(num_examples, self.effective_batch_size())
        return self._steps_per_epoch

    def lambda_ramp(self, step: int | None = None) -> float:
        """``max(0, step / steps_per_epoch - 1)``: 0 for the first epoch, then linear."""
        step = self.state.global_step if step is None else step
        return max(0.0, step / self.steps_per_epoch() - 1.0)

    def get_decay_parameter_names(self, model) -> list[str]:
        """All but biases and normalisation scales, by module type (:mod:`.parameters`)."""
        return decay_parameter_names(model)

    def _generator(self, training: bool = True) -> torch.Generator:
        """Training: the stream of the k-th loss evaluation. Evaluation: its own stream (the
        n-th batch of every evaluate() call draws the same), leaving training's untouched."""
        if training:
            entropy = [self.args.seed, self.loss_calls, self.args.process_index]
        else:
            entropy = [self.args.seed, 2**31 - 1, self.eval_batches, self.args.process_index]
        seed = np.random.SeedSequence(entropy).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    # -- loss -----------------------------------------------------------------------------
    def _contexts(self, inputs: dict) -> list[torch.Tensor]:
        contexts = [modeling.encode_image(self.vae, inputs["pixel_values"])]
        if self.task.num_context_images > 1:
            epoch = self.state.global_step // self.steps_per_epoch()
            maps = []
            for key, alpha in zip(inputs["example_keys"].tolist(), inputs["alpha"].cpu().numpy()):
                _, point_map = self.task.sample_point_map(alpha, point_rng(self.args.seed, key, epoch))
                maps.append(point_map_image(point_map))
            contexts.append(modeling.encode_image(self.vae, torch.stack(maps)))
        return contexts

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args = self.args
        device = inputs["pixel_values"].device
        if self.vae.device != device:  # the frozen parts follow the DiT once, not every step
            self.vae.to(device)
            self.prompt_cache.to(device)
        mode = "eval" if self.evaluating else "train"
        generator = self._generator(training=not self.evaluating)
        if self.evaluating:
            self.eval_batches += 1
        else:
            self.loss_calls += 1
            if model.training:
                self.seen_example_keys.extend(inputs["example_keys"].tolist())

        contexts = self._contexts(inputs)
        z1 = modeling.encode_image(self.vae, inputs["target"]).float()
        b = z1.shape[0]
        eps = flow.base_noise(z1.shape[1:], seed=args.noise_seed, batch_size=b, device=device)
        sigma = flow.sample_sigmas(b, mode=args.sigma_sampling, one_probability=args.sigma_one_probability, generator=generator)
        if args.multires_noise:
            eps = flow.multi_resolution_noise(
                eps, sigma, strength=args.multires_strength, levels=args.multires_levels,
                anneal=args.multires_anneal, generator=generator,
            )
        sigma = sigma.to(device)
        x = flow.interpolate(z1, eps, sigma)
        prompt_embeds, pooled = self.prompt_cache.embeddings()
        v = modeling.predict_velocity(model, x, sigma, contexts, prompt_embeds, pooled, guidance=args.guidance).float()

        mask = inputs["valid_mask"]
        loss_fm = masked_mean((v - flow.target_velocity(z1, eps)).pow(2).mean(dim=1), latent_valid_mask(mask))
        loss = loss_fm
        metrics = {"loss_fm": loss_fm.item(), "sigma_mean": sigma.mean().item(), "sigma_min": sigma.min().item(),
                   "sigma_max": sigma.max().item()}
        if args.pixel_loss:
            ramp = self.lambda_ramp()
            z1_hat = flow.one_step_estimate(x, v, sigma)
            with torch.set_grad_enabled(ramp > 0 and torch.is_grad_enabled()):
                pixels = modeling.decode_latents(self.vae, z1_hat).float()
                loss_cons = self.task.pixel_loss(pixels, inputs["target"].float(), mask)
            lam = ramp * loss_fm.detach().abs() / (loss_cons.detach().abs() + 1e-3)
            if ramp > 0:
                loss = loss_fm + lam * loss_cons
            metrics.update(loss_cons=loss_cons.item(), **{"lambda": float(lam)})
        for k, val in metrics.items():
            self._metrics[mode][k].append(val)
        return (loss, {"velocity": v}) if return_outputs else loss

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """``transformers.Trainer.evaluate`` plus the task's metric (see the module docstring)."""
        self.eval_batches, self.evaluating, self._eval_prefix = 0, True, metric_key_prefix
        self._metrics["eval"].clear()
        try:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self.evaluating = False

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The loss and the task's metric of one eval batch (no predictions are gathered)."""
        inputs = self._prepare_inputs(inputs)
        evaluating, self.evaluating = self.evaluating, True  # also under predict(): never training's stream
        try:
            with torch.no_grad():
                loss = self.compute_loss(model, inputs).detach()
                for k, v in self.eval_metrics(model, inputs).items():
                    self._metrics["eval"][k].extend(v)
        finally:
            self.evaluating = evaluating
        return loss, None, None

    def eval_metrics(self, model, inputs: dict) -> dict[str, list[float]]:
        """Per-image task metrics of the single-step prediction (sigma 1, the fixed base
        noise, as at inference) against the batch's raw ground truth, gathered over processes."""
        from .callbacks import evaluate_predictions

        contexts = self._contexts(inputs)
        (b, _, h, w), device = inputs["pixel_values"].shape, inputs["pixel_values"].device
        f = 2 ** (len(self.vae.config.block_out_channels) - 1)
        eps = flow.base_noise((self.vae.config.latent_channels, h // f, w // f), seed=self.args.noise_seed,
                              batch_size=b, device=device)
        prompt_embeds, pooled = self.prompt_cache.embeddings()
        v = modeling.predict_velocity(model, eps, torch.ones(b, device=device), contexts, prompt_embeds, pooled,
                                      guidance=self.args.guidance).float()
        z1_hat = flow.one_step_estimate(eps, v, 1.0)
        preds = self.task.decode(modeling.decode_latents(self.vae, z1_hat).float()).cpu().numpy()
        key = self.task.target_key
        examples = [{key: inputs[key][j].float().cpu().numpy(), "valid_mask": inputs["valid_mask"][j].cpu().numpy()}
                    for j in range(b)]
        rows = [evaluate_predictions(self.task.name, [p], [ex], depth_encoding=getattr(self.task, "encoding", "sqrt"))
                for p, ex in zip(preds, examples)]
        values = torch.tensor([[r[k] for k in rows[0]] for r in rows], dtype=torch.float64, device=device)
        values = self.accelerator.gather_for_metrics(values).cpu()
        return {k: values[:, i].tolist() for i, k in enumerate(rows[0])}

    def optimizer_step_stats(self) -> dict[str, float]:
        """Statistics of the last optimizer step (bf16 master weights: ``vanished_fraction``)."""
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)
        return dict(getattr(optimizer, "last_stats", {}))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs get the means of the training statistics since the last log; an
        evaluation's log (and ``evaluate()``'s result) those of the evaluation, prefixed."""
        prefix = getattr(self, "_eval_prefix", "eval")
        if f"{prefix}_loss" in logs and self._metrics["eval"]:
            logs.update({f"{prefix}_{k}": float(np.nanmean(v)) for k, v in self._metrics["eval"].items()})
            self._metrics["eval"].clear()
        elif "loss" in logs:
            logs.update(self.optimizer_step_stats())
            logs.update({k: float(np.mean(v)) for k, v in self._metrics["train"].items()})
            self._metrics["train"].clear()
        super().log(logs, start_time)

    # -- checkpoints --------------------------------------------------------------------
    def build_pipeline(self, vae=None):
        """An :class:`Edit2PerceivePipeline` around the current DiT (no text encoders).

        With LoRA the pipeline holds the transformer with its adapters active."""
        from ..pipelines.pipeline import Edit2PerceivePipeline

        return Edit2PerceivePipeline(
            transformer=self.accelerator.unwrap_model(self.model),
            vae=vae,
            prompt_cache=self.prompt_cache,
            task=self.task,
            guidance=self.args.guidance,
            noise_seed=self.args.noise_seed,
            default_processing_resolution=self.args.resolution,
            base_model=self.base_model,
            base_model_revision=self.base_model_revision,
        )

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Write a diffusers-loadable folder: transformer (or LoRA), prompt cache, pipeline config."""
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        pipe = self.build_pipeline(vae=self.vae if self.save_vae else None)
        if self.args.use_lora:
            transformer = pipe.transformer
            pipe.register_modules(transformer=None)  # the base DiT is not ours to re-save
            pipe.save_pretrained(output_dir)
            transformer.save_lora_adapter(os.path.join(output_dir, LORA_DIR))
            pipe.register_modules(transformer=transformer)
        else:
            pipe.save_pretrained(output_dir)
        torch.save(self.given_args, os.path.join(output_dir, "training_args.bin"))  # the Trainer's; never read back
        with open(os.path.join(output_dir, TRAINING_SETTINGS), "w") as f:  # what e2p card / push read
            f.write(self.given_args.to_json_string())

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = self._get_output_dir(trial=trial)
        name = f"checkpoint-{self.state.global_step}"
        staging_root = os.path.join(run_dir, ".staging")
        real_get_output_dir = self._get_output_dir
        self._get_output_dir = lambda trial=None: staging_root  # the Trainer writes everything under staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._get_output_dir = real_get_output_dir
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state
        if self.args.should_save:
            staged, final = os.path.join(staging_root, name), os.path.join(run_dir, name)
            with open(os.path.join(staged, E2P_STATE_NAME), "w") as f:
                json.dump({"loss_calls": self.loss_calls, "steps_per_epoch": self.steps_per_epoch()}, f)
            open(os.path.join(staged, COMPLETE_MARKER), "w").close()
            publish_folder(staged, final)
            shutil.rmtree(staging_root, ignore_errors=True)
            rotate_checkpoints(
                output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
            )
        self.accelerator.wait_for_everyone()

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if not os.path.exists(os.path.join(resume_from_checkpoint, COMPLETE_MARKER)):
            raise ValueError(f"{resume_from_checkpoint}: incomplete checkpoint (no {COMPLETE_MARKER} marker)")
        model = self.accelerator.unwrap_model(model or self.model)
        if self.args.use_lora:
            from peft.utils import set_peft_model_state_dict
            from safetensors.torch import load_file

            state = load_file(os.path.join(resume_from_checkpoint, LORA_DIR, "pytorch_lora_weights.safetensors"))
            result = set_peft_model_state_dict(model, state, adapter_name="default")
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"{resume_from_checkpoint}: LoRA keys do not match the model: {result.unexpected_keys[:5]}")
        else:
            saved = type(model).from_pretrained(os.path.join(resume_from_checkpoint, "transformer"), dtype=model.dtype,
                                                use_safetensors=True)
            model.load_state_dict(saved.state_dict())
        with open(os.path.join(resume_from_checkpoint, E2P_STATE_NAME)) as f:
            state = json.load(f)
        self.loss_calls = int(state["loss_calls"])
        self._steps_per_epoch = self.args.steps_per_epoch or int(state["steps_per_epoch"])
