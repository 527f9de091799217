"""The training recipe behind ``examples/train_{depth,normal,matting}.py``.

    accelerate launch examples/train_depth.py --model tiny --output_dir out/depth --max_steps 200
    accelerate launch --config_file examples/configs/fsdp.yaml examples/train_depth.py \\
        --model black-forest-labs/FLUX.1-Kontext-dev --data /data/depth_mix --bf16 ...

With no arguments it picks settings that fit the machine and says so in its first line
(:func:`machine_defaults`: on a CPU the tiny model at 32 px, first step within about 2
minutes, done within about 10; the tiny model at 64 px on a GPU; the paper's
recipe with the largest per-device batch the memory model fits on a GPU). For a real model it
prints the memory model's estimate of one training step and refuses, naming options that fit,
a configuration the visible GPU cannot hold (:func:`check_memory`).

``--model tiny`` builds tiny random Kontext components offline, fits the tiny VAE as an
autoencoder on the training images and targets (a random VAE cannot reconstruct), freezes
it and trains the tiny DiT. Any other value is a FLUX.1 Kontext folder or Hub id: the
transformer and VAE are loaded, the text encoders only once to build the prompt cache
(or not at all with ``--prompt_cache``).

``--data synthetic`` (default) trains on procedurally rendered scenes with exact depth,
normals and alpha (:func:`edit2perceive.data.synthetic_scenes`); a folder uses the task's
dataset mixture (see docs/data.md).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import torch


@dataclass
class RecipeArguments:
    model: str = field(
        default="tiny",
        metadata={"help": "'tiny' (random tiny components, offline) or a FLUX.1 Kontext folder / Hub id."},
    )
    prompt_cache: str | None = field(
        default=None, metadata={"help": "Folder of a saved PromptCache; default: encode the prompt once."}
    )
    data: str = field(default="synthetic", metadata={"help": "'synthetic' or a dataset folder (docs/data.md)."})
    num_train_examples: int = field(default=512, metadata={"help": "Synthetic training scenes."})
    num_val_examples: int = field(default=16, metadata={"help": "Held-out examples for in-training evaluation."})
    data_seed_offset: int = field(default=0, metadata={"help": "Seed of the synthetic training scenes."})
    fit_vae_steps: int = field(default=300, metadata={"help": "Tiny model only: autoencoder fitting steps."})
    eval_every: int = field(default=0, metadata={"help": "Evaluate on the validation examples every N steps (0: off)."})


def _synthetic(n: int, size: int, seed: int, desc: str = "render synthetic scenes") -> list[dict]:
    from tqdm.auto import tqdm

    from ..data import synthetic_scenes

    return list(tqdm(synthetic_scenes(num_samples=n, size=(size, size), seed=seed), total=n, desc=desc))


def given_options(argv: list[str]) -> set[str]:
    """Option names (without ``--``) present on a command line."""
    return {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}


def machine_defaults(task_name: str, argv: list[str], *, gpu_gib: float | None) -> tuple[list[str], str]:
    """Settings for the options the user did not give, chosen for this machine.

    Returns ``(extra argv placed before the user's, one line saying what was chosen)``.
    Tiny model (the default): on a CPU ``tiny.CPU_QUICK_RUN`` (32 px; first training step within
    about 2 minutes, done within about 10 on 2 cores), on a GPU tiny_run's settings (64 px, 300
    steps, batch 8, lr 2e-3 cosine). A real model on a GPU: the paper's recipe
    (--bf16, gradient checkpointing) with the largest per-device batch in 16, 8, 4, 2, 1 that the
    memory model fits into ``gpu_gib`` (gradient accumulation keeps the effective batch 16).
    """
    from .tiny import CPU_QUICK_RUN, TinyRunConfig

    given = given_options(argv)
    model = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--model"), None)
    model = model or next((a.split("=", 1)[1] for a in argv if a.startswith("--model=")), "tiny")
    chosen: dict[str, str] = {}
    if model == "tiny":
        t = TinyRunConfig() if gpu_gib is not None else CPU_QUICK_RUN
        chosen.update(resolution=str(t.size), max_steps=str(t.train_steps), per_device_train_batch_size=str(t.batch_size),
                      effective_batch_size="0", learning_rate=str(t.learning_rate), lr_scheduler_type="cosine",
                      weight_decay="0", optim="adamw_torch", num_train_examples=str(t.num_train),
                      fit_vae_steps=str(t.vae_steps), logging_steps="25", save_steps="100",
                      output_dir=f"out/{task_name}-tiny")
        if gpu_gib is None:
            chosen["use_cpu"] = "true"
        why = ("tiny model on a GPU: a run of minutes" if gpu_gib is not None else
               "tiny model on the CPU: first training step within about 2 minutes, done within about 10 on 2 cores")
    elif gpu_gib is not None:
        chosen.update(bf16="true", gradient_checkpointing="true", output_dir=f"out/{task_name}", logging_steps="10",
                      save_steps="500")
        why = f"real model on a {gpu_gib:.0f} GiB GPU: the paper's recipe"
        if "per_device_train_batch_size" not in given:
            chosen["per_device_train_batch_size"] = str(_largest_fitting_batch(model, task_name, gpu_gib, argv))
    else:
        chosen.update(output_dir=f"out/{task_name}")
        why = "real model without a GPU: the paper's recipe as given (expect hours per step)"
    chosen = {k: v for k, v in chosen.items() if k not in given}
    extra = [x for k, v in chosen.items() for x in (f"--{k}", v)]
    text = " ".join(extra) if extra else "nothing (every setting given)"
    return extra, f"[edit2perceive] {why}; chose {text} (any option given on the command line wins)"


def _model_configs(model: str) -> tuple[dict, dict]:
    """The transformer and VAE configs of a FLUX.1 Kontext folder or Hub id (configs only)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    return (dict(FluxTransformer2DModel.load_config(model, subfolder="transformer")),
            dict(AutoencoderKL.load_config(model, subfolder="vae")))


def _init_kwargs(cls, config: dict) -> dict:
    import inspect

    names = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return {k: v for k, v in config.items() if k in names}


def memory_estimate(model_configs: tuple[dict, dict], args, *, batch_size: int | None = None, **overrides):
    """:func:`edit2perceive.training.memory.estimate_training_memory` for these training arguments."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    from .memory import estimate_training_memory

    dit, vae = model_configs
    kw = dict(batch_size=batch_size or args.per_device_train_batch_size, height=args.resolution, width=args.resolution,
              gradient_checkpointing=bool(args.gradient_checkpointing or args.activation_checkpointing),
              vae_gradient_checkpointing=args.vae_gradient_checkpointing, pixel_loss=args.pixel_loss,
              master_weights=args.master_weights, optim=str(getattr(args.optim, "value", args.optim)),
              bf16_update=args.bf16_update, num_context_images=2 if args.task == "matting" else 1)
    kw.update(overrides)
    return estimate_training_memory(_init_kwargs(FluxTransformer2DModel, dit), _init_kwargs(AutoencoderKL, vae), **kw)


def _largest_fitting_batch(model: str, task_name: str, gpu_gib: float, argv: list[str]) -> int:
    from .args import Edit2PerceiveTrainingArguments
    from .memory import GIB

    configs = _model_configs(model)
    args = Edit2PerceiveTrainingArguments(output_dir="unused", task=task_name, bf16=True, gradient_checkpointing=True,
                                          report_to=[], effective_batch_size=0)
    for b in (16, 8, 4, 2):
        if memory_estimate(configs, args, batch_size=b).total / GIB <= gpu_gib:
            return b
    return 1


def check_memory(model_configs: tuple[dict, dict], args, *, gpu_gib: float | None) -> str:
    """The estimate for this run as one line; raises SystemExit naming options that would fit
    when the visible GPU (``gpu_gib`` free) cannot hold it."""
    from .memory import GIB, fitting_options

    estimate = memory_estimate(model_configs, args)
    line = (f"[edit2perceive] memory model, one training step at batch {args.per_device_train_batch_size} x "
            f"{args.resolution}px: {estimate.summary()}")
    if gpu_gib is not None and estimate.total / GIB > gpu_gib:
        options = fitting_options(estimate.total / GIB, gpu_gib,
                                  lambda **o: memory_estimate(model_configs, args, **o),
                                  args.per_device_train_batch_size)
        hint = "; ".join(options) if options else "none of the single-GPU options; use several GPUs (FSDP/ZeRO configs)"
        raise SystemExit(f"{line}\nThis does not fit the visible GPU ({gpu_gib:.1f} GiB free). Options that fit: {hint}")
    return line


def _visible_gpu_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    return free / 1024**3



def dataset_mixture(root: str, task_name: str, args):
    """The task's mixture (paper ratios) of converted shard folders ``root/<source>``
    (``dataset_scripts/convert.py`` output), transformed to training crops.

    The stream is sharded across processes by the Trainer (accelerate dispatches batches of
    an ``IterableDataset``); set ``--steps_per_epoch`` for the lambda curriculum.
    """
    from pathlib import Path

    from ..data import MIXTURES, TrainTransform, converted_dataset, task_mixture

    folders = {name: Path(root) / name for name in MIXTURES[task_name]}
    present = {name: converted_dataset(path, decode=False) for name, path in folders.items() if path.is_dir()}
    if not present:
        expected = ", ".join(str(p) for p in folders.values())
        raise SystemExit(f"--data {root}: no converted source for {task_name}; expected one of: {expected}")
    from ..data.doctor import check_training_sources  # same checks as `e2p data check`, a few examples each

    check_training_sources(root, task_name)
    if args.steps_per_epoch is None:
        raise SystemExit("--data with streamed sources needs --steps_per_epoch (the stream has no length)")
    mix = task_mixture(task_name, present, seed=args.seed, shuffle_buffer=256)
    transform = TrainTransform(args.resolution, seed=args.seed)
    return mix.map(transform)


def build_components(recipe: RecipeArguments, task, train_examples: list[dict], seed: int, *,
                     master_weights: str = "fp32"):
    """``(transformer, vae, prompt_cache, vae_report)`` for the recipe's ``--model``; a real model's
    DiT and VAE are loaded in bf16 when ``master_weights`` is ``"bf16"``."""
    from ..core.prompts import PromptCache, encode_prompt
    from .autoencoder import fit_autoencoder
    from .tiny import target_images

    text_keys = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    if recipe.model == "tiny":
        from ..testing import tiny_kontext_components

        c = tiny_kontext_components(seed=seed)
        cache = encode_prompt(task.prompt, **{k: c[k] for k in text_keys})
        report = fit_autoencoder(c["vae"], target_images(task, train_examples[:256]), steps=recipe.fit_vae_steps,
                                 seed=seed, progress=True)
        return c["transformer"], c["vae"], cache, report
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    # pure bf16 (ours, the default with --bf16; the reference keeps fp32 masters under ZeRO-2): load the 24 GB as
    # they are, never an fp32 copy; the frozen VAE follows
    dtype = torch.bfloat16 if master_weights == "bf16" else torch.float32
    transformer = FluxTransformer2DModel.from_pretrained(recipe.model, subfolder="transformer", dtype=dtype,
                                                          use_safetensors=True)
    vae = AutoencoderKL.from_pretrained(recipe.model, subfolder="vae", dtype=dtype, use_safetensors=True)
    if recipe.prompt_cache:
        cache = PromptCache.from_pretrained(recipe.prompt_cache, use_safetensors=True)
    else:
        from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        parts = dict(
            tokenizer=CLIPTokenizer.from_pretrained(recipe.model, subfolder="tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(recipe.model, subfolder="text_encoder", use_safetensors=True),
            tokenizer_2=T5TokenizerFast.from_pretrained(recipe.model, subfolder="tokenizer_2"),
            text_encoder_2=T5EncoderModel.from_pretrained(recipe.model, subfolder="text_encoder_2", dtype=torch.bfloat16,
                                                          use_safetensors=True),
        )
        cache = encode_prompt(task.prompt, **parts)
        del parts  # the 4.7B T5 is not kept
    return transformer, vae, cache, None


def main(task_name: str, argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    gpu_gib = _visible_gpu_gib()
    extra, chosen = machine_defaults(task_name, argv, gpu_gib=gpu_gib)
    if os.environ.get("RANK", "0") == "0":
        print(chosen, flush=True)  # before the heavy imports: the first thing a user sees
    argv = extra + argv

    from transformers import HfArgumentParser

    from ..tasks import get_task
    from .args import Edit2PerceiveTrainingArguments
    from .callbacks import PerceptionEvalCallback
    from .trainer import Edit2PerceiveTrainer

    if not any(a == "--task" or a.startswith("--task=") for a in argv):
        argv += ["--task", task_name]
    parser = HfArgumentParser((RecipeArguments, Edit2PerceiveTrainingArguments))
    recipe, args = parser.parse_args_into_dataclasses(args=argv)
    task = get_task(args.task, **args.task_options())
    if recipe.model != "tiny":
        line = check_memory(_model_configs(recipe.model), args, gpu_gib=gpu_gib)
        if args.process_index == 0:
            print(line, flush=True)

    val = _synthetic(recipe.num_val_examples, args.resolution, recipe.data_seed_offset + 10_000,
                     desc="render held-out scenes")
    if recipe.data == "synthetic":
        train = _synthetic(recipe.num_train_examples, args.resolution, recipe.data_seed_offset)
        vae_examples = train
    else:
        train = dataset_mixture(recipe.data, task.name, args)
        vae_examples = val

    transformer, vae, cache, vae_report = build_components(recipe, task, vae_examples, args.seed,
                                                           master_weights=args.master_weights)
    # the held-out scenes are the eval stream (--eval_strategy steps); a real model records its base;
    # a fitted tiny VAE is part of the model, LoRA or not
    trainer = Edit2PerceiveTrainer(transformer, args, vae=vae, prompt_cache=cache, train_dataset=train, eval_dataset=val,
                                   base_model=None if recipe.model == "tiny" else recipe.model,
                                   save_vae=True if recipe.model == "tiny" else None)
    if recipe.eval_every:
        callback = PerceptionEvalCallback(val, recipe.eval_every, processing_resolution=args.resolution)
        callback.trainer = trainer
        trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    if args.process_index == 0:
        state = trainer.accelerator.state
        print(f"[edit2perceive] trained with distributed type {state.distributed_type.value}, "
              f"{state.num_processes} process(es)", flush=True)
    trainer.save_model(args.output_dir)
    with open(os.path.join(args.output_dir, f"data_seen_rank{args.process_index}.json"), "w") as f:
        json.dump(trainer.seen_example_keys, f)
    if args.should_save and vae_report is not None:
        with open(os.path.join(args.output_dir, "vae_fit.json"), "w") as f:
            json.dump(vae_report, f)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # tear the process group down here, not at interpreter exit
        torch.distributed.destroy_process_group()
    return 0


__all__ = ["RecipeArguments", "build_components", "check_memory", "machine_defaults", "main", "memory_estimate"]
