"""The training recipe behind ``examples/train_{depth,normal,matting}.py``.

    accelerate launch examples/train_depth.py --model tiny --output_dir out/depth --max_steps 200
    accelerate launch --config_file examples/configs/fsdp.yaml examples/train_depth.py \\
        --model black-forest-labs/FLUX.1-Kontext-dev --data /data/depth_mix --bf16 ...

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


def _synthetic(n: int, size: int, seed: int) -> list[dict]:
    from ..data import synthetic_scenes

    return list(synthetic_scenes(num_samples=n, size=(size, size), seed=seed))


def _target_images(task, examples: list[dict]) -> torch.Tensor:
    from ..modeling import rgb_to_model_input

    imgs = [rgb_to_model_input(ex["rgb"])[0] for ex in examples]
    imgs += [task.encode_target(ex[task.target_key], ex.get("valid_mask")).image for ex in examples]
    return torch.stack(imgs)


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


def build_components(recipe: RecipeArguments, task, train_examples: list[dict], seed: int):
    """``(transformer, vae, prompt_cache, vae_report)`` for the recipe's ``--model``."""
    from ..prompts import PromptCache, encode_prompt
    from .autoencoder import fit_autoencoder

    text_keys = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    if recipe.model == "tiny":
        from ..testing import tiny_kontext_components

        c = tiny_kontext_components(seed=seed)
        cache = encode_prompt(task.prompt, **{k: c[k] for k in text_keys})
        report = fit_autoencoder(c["vae"], _target_images(task, train_examples[:256]), steps=recipe.fit_vae_steps,
                                 seed=seed, progress=True)
        return c["transformer"], c["vae"], cache, report
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    transformer = FluxTransformer2DModel.from_pretrained(recipe.model, subfolder="transformer")
    vae = AutoencoderKL.from_pretrained(recipe.model, subfolder="vae")
    if recipe.prompt_cache:
        cache = PromptCache.from_pretrained(recipe.prompt_cache)
    else:
        from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        parts = dict(
            tokenizer=CLIPTokenizer.from_pretrained(recipe.model, subfolder="tokenizer"),
            text_encoder=CLIPTextModel.from_pretrained(recipe.model, subfolder="text_encoder"),
            tokenizer_2=T5TokenizerFast.from_pretrained(recipe.model, subfolder="tokenizer_2"),
            text_encoder_2=T5EncoderModel.from_pretrained(recipe.model, subfolder="text_encoder_2", torch_dtype=torch.bfloat16),
        )
        cache = encode_prompt(task.prompt, **parts)
        del parts  # the 4.7B T5 is not kept
    return transformer, vae, cache, None


def main(task_name: str, argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from ..tasks import get_task
    from .args import Edit2PerceiveTrainingArguments
    from .callbacks import PerceptionEvalCallback
    from .trainer import Edit2PerceiveTrainer

    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--task" or a.startswith("--task=") for a in argv):
        argv += ["--task", task_name]
    parser = HfArgumentParser((RecipeArguments, Edit2PerceiveTrainingArguments))
    recipe, args = parser.parse_args_into_dataclasses(args=argv)
    task = get_task(args.task, **args.task_options())

    val = _synthetic(recipe.num_val_examples, args.resolution, recipe.data_seed_offset + 10_000)
    if recipe.data == "synthetic":
        train = _synthetic(recipe.num_train_examples, args.resolution, recipe.data_seed_offset)
        vae_examples = train
    else:
        train = dataset_mixture(recipe.data, task.name, args)
        vae_examples = val

    transformer, vae, cache, vae_report = build_components(recipe, task, vae_examples, args.seed)
    # a fitted tiny VAE is part of the model: save it; a real model's VAE stays in the base repository
    trainer = Edit2PerceiveTrainer(transformer, args, vae=vae, prompt_cache=cache, train_dataset=train,
                                   save_vae=recipe.model == "tiny")
    if recipe.eval_every:
        callback = PerceptionEvalCallback(val, recipe.eval_every, processing_resolution=args.resolution)
        callback.trainer = trainer
        trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
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


__all__ = ["RecipeArguments", "build_components", "main"]
