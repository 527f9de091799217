"""The inference loading policy shared by the command line, evaluation and the demo: device
and dtype (bf16 on CUDA, float32 on CPU), offload, quantization, VAE tiling, task check."""

from __future__ import annotations

import torch

from .pipeline import Edit2PerceivePipeline


def load_pipeline(model: str | None = None, *, task: str | None = None, device: str | None = None,
                  base_model: str | None = None, reference_checkpoint: str | None = None, offload: bool = False,
                  quantize: str | None = None, vae_tiling: bool = False,
                  dtype: torch.dtype | None = None) -> Edit2PerceivePipeline:
    """Load a pipeline for inference (CLI, evaluation, demo): bf16 on CUDA (default when
    available), float32 on CPU, progress bars off. ``task`` (if given) must match the model's.

    Exactly one of ``model`` (our saved folder or Hub id; ``base_model`` fills the parts it
    leaves out) or ``reference_checkpoint`` (a released file, see ``from_reference_checkpoint``).
    ``offload``: diffusers' model CPU offload (one component on the GPU at a time) instead of
    moving everything to ``device``; ``quantize``: ``"nf4"`` / ``"int8"`` transformer through
    bitsandbytes (CUDA); ``vae_tiling``: tiled VAE encode/decode for large inputs; ``dtype``
    overrides the weights' dtype (default: bf16 on CUDA, float32 elsewhere).
    """
    if (model is None) == (reference_checkpoint is None):
        raise ValueError("give exactly one of a model (folder or Hub id) or a reference checkpoint")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if str(device).startswith("cuda") else torch.float32)
    if reference_checkpoint is not None:
        pipe = Edit2PerceivePipeline.from_reference_checkpoint(reference_checkpoint, task=task, base_model=base_model,
                                                               torch_dtype=dtype, quantize=quantize)
    else:
        pipe = Edit2PerceivePipeline.from_pretrained(model, dtype=dtype, base_model=base_model, quantize=quantize)
    if task is not None and pipe.task.name != task:
        raise ValueError(f"{model or reference_checkpoint}: the model was trained for task {pipe.task.name!r}, "
                         f"not {task!r}")
    pipe.set_progress_bar_config(disable=True)
    if vae_tiling and pipe.vae is not None:
        pipe.vae.enable_tiling()
    if offload:
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    if quantize is not None:  # bitsandbytes weights are placed on load and cannot be moved
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module) and name != "transformer":
                component.to(device)
        return pipe
    return pipe.to(device)
