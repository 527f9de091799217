"""``e2p convert``: a released reference checkpoint -> our pipeline folder.

The folder holds what is ours to share (like a trained model saved for the Hub):
``transformer/`` (full checkpoint, sharded safetensors) or ``transformer_lora/`` (peft
adapter), ``prompt_cache/`` (the task prompt encoded once by the base's text encoders),
``model_index.json`` with the reference conventions and the base model in the config,
``vae/`` (copied from the base for full checkpoints, so they load alone; a LoRA folder stays
small and loads the VAE and base transformer from the recorded base; the text encoders are
never needed, the prompt cache replaces them) and ``README.md``, a model card crediting the
authors and recording the conventions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.base_model import (
    DEFAULT_BASE_MODEL,
    TEXT_PARTS,
    base_transformer_config,
    copy_base_component,
    hub_kwargs,
    load_base_component,
    recorded_base,
)
from ..reference.convert import (
    DEFAULT_MAX_SHARD_BYTES,
    REFERENCE_REPO,
    checkpoint_format,
    convert_reference_lora,
    resolve_checkpoint,
    save_reference_lora,
    save_reference_transformer,
    transformer_plan,
)
from ..reference.loading import task_from_filename

CREDIT = (
    "Weights by the Edit2Perceive authors, released as `{file}` in "
    "[{repo}](https://huggingface.co/{repo}) (code: https://github.com/showlab/Edit2Perceive), converted "
    "exactly to diffusers' layout by `e2p convert` (renames and row splits of fused layers only)."
)


def conventions_markdown(config: dict) -> str:
    """The card section recording the inference conventions in the pipeline config."""
    from .conventions import Conventions

    values = {**Conventions.from_value(config["conventions"]).to_dict(),
              **{k: config[k] for k in ("noise_seed", "default_processing_resolution", "guidance")}}
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in values.items())
    return f"""
## Inference conventions

The released model was trained and evaluated with the reference code's conventions; this
pipeline's config reproduces them (see edit2perceive's docs/released_models.md):

| config | value |
|---|---|
{rows}
"""


REFERENCE_TAG = "edit2perceive-reference-release"


def reference_card(task: str, *, source: str, fmt: str, config, base_model: str = DEFAULT_BASE_MODEL,
                   repo_id: str, summaries: list[dict] | None = None):
    """The model card of a converted release: credit to the authors, the source file, the
    conventions in ``config``; tagged ``edit2perceive-reference-release`` so ``e2p push`` /
    ``e2p card`` keep it (with evaluation results added)."""
    from ..hub import model_card

    return model_card(
        task, repo_id=repo_id, base_model=base_model, summaries=summaries,
        description=(f"The Edit2Perceive authors' **{task}** model ({'LoRA' if fmt == 'lora' else 'full DiT'}), "
                     "FLUX.1 Kontext fine-tuned to \"edit\" an image into a dense map in a single step.\n\n"
                     + CREDIT.format(file=source, repo=REFERENCE_REPO)),
        training={"source": f"{REFERENCE_REPO}/{source}", "format": fmt, "base model": base_model},
        extra_sections=conventions_markdown(config), extra_tags=[REFERENCE_TAG],
        extra_metadata={"edit2perceive_reference": {"source": f"{REFERENCE_REPO}/{source}", "format": fmt}})


def convert_reference_checkpoint(checkpoint: str, output_dir: str | os.PathLike, *, task: str | None = None,
                                 base_model: str = DEFAULT_BASE_MODEL, repo_id: str | None = None,
                                 max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, progress: bool = True,
                                 text_encoder_dtype=None, **hub) -> Path:
    """Write our pipeline folder for a released checkpoint (see the module docstring).

    Everything is checked before anything is written; the folder appears only when complete.
    The prompt is encoded with the base's text encoders in ``text_encoder_dtype`` (default
    bf16, as the reference ran them; T5-XXL then needs 9.5 GB instead of 19 GB).
    """
    import torch

    from ..core.prompts import encode_prompt
    from ..hub import export_staging
    from ..reference import REFERENCE_CONVENTIONS
    from ..tasks import get_task
    from .pipeline import Edit2PerceivePipeline

    hub = hub_kwargs(hub)
    file = resolve_checkpoint(checkpoint, **hub)
    task = task_from_filename(file, task)
    fmt = checkpoint_format(file)
    base_config = base_transformer_config(base_model, **hub)
    if fmt == "full":
        transformer_plan(file, base_config)  # validates every key and shape, reads no weights
    else:
        from diffusers import FluxTransformer2DModel

        with torch.device("meta"):
            meta = FluxTransformer2DModel.from_config(base_config)
        convert_reference_lora(file, transformer=meta)  # validates against the base's layers
    dtype = torch.bfloat16 if text_encoder_dtype is None else text_encoder_dtype
    text = {name: load_base_component(base_model, name, torch_dtype=dtype, **hub) for name in TEXT_PARTS}
    cache = encode_prompt(get_task(task).prompt, **text)
    del text
    pipe = Edit2PerceivePipeline(transformer=None, vae=None, prompt_cache=cache, task=task, **REFERENCE_CONVENTIONS,
                                 base_model=recorded_base(base_model))
    card = reference_card(task, source=os.path.basename(file), fmt=fmt, config=pipe.config, base_model=base_model,
                          repo_id=repo_id or f"{REFERENCE_REPO}-{task}")
    with export_staging(Path(output_dir)) as tmp:
        pipe.save_pretrained(tmp)
        if fmt == "full":
            save_reference_transformer(file, tmp / "transformer", config=base_config,
                                       max_shard_bytes=max_shard_bytes, progress=progress)
            copy_base_component(base_model, "vae", tmp / "vae", **hub)
            index_path = tmp / "model_index.json"
            index = json.loads(index_path.read_text())
            index["transformer"] = ["diffusers", "FluxTransformer2DModel"]
            index["vae"] = ["diffusers", "AutoencoderKL"]
            index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        else:
            save_reference_lora(file, tmp / "transformer_lora")
        card.save(tmp / "README.md")
    return Path(output_dir)
