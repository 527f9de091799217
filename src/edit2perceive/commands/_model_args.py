"""Command-line options shared by the commands that run a model (predict, evaluate)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edit2perceive.core.base_model import DEFAULT_BASE_MODEL, QUANTIZE_MODES


def add_model_arguments(parser, source_group) -> None:
    """``--reference-checkpoint`` (into ``source_group``, next to ``--model``), ``--base-model``,
    ``--offload``, ``--quantize``, ``--vae-tiling``."""
    source_group.add_argument("--reference-checkpoint", default=None, metavar="FILE",
                              help="a released reference checkpoint: local .safetensors or Hub file "
                                   "Seq2Tri/Edit2Perceive/<task>[_lora].safetensors (full DiT or LoRA)")
    g = parser.add_argument_group("running the 12B model")
    g.add_argument("--base-model", default=None, metavar="DIR_OR_ID",
                   help="FLUX.1 Kontext base (FluxKontextPipeline layout) providing what the model leaves out: "
                        "VAE, base transformer under a LoRA, text encoders without a prompt cache (default: the base "
                        f"the model's config records; {DEFAULT_BASE_MODEL} for a reference checkpoint)")
    g.add_argument("--offload", action="store_true", help="diffusers model CPU offload (one component on the GPU)")
    g.add_argument("--quantize", choices=QUANTIZE_MODES, default=None,
                   help="load the transformer quantized with bitsandbytes (CUDA)")
    g.add_argument("--vae-tiling", action="store_true", help="tiled VAE encode/decode for large inputs")


@dataclass(frozen=True)
class ModelOptions:
    """How to load the model: the keywords of :func:`edit2perceive.pipelines.loading.load_pipeline`
    beyond the model, task and device."""

    base_model: str | None = None  # None: the base the model records (reference checkpoints: DEFAULT_BASE_MODEL)
    reference_checkpoint: str | None = None
    offload: bool = False
    quantize: str | None = None
    vae_tiling: bool = False

    @classmethod
    def from_args(cls, args) -> ModelOptions:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def load_kwargs(self) -> dict:
        return dataclasses.asdict(self)


def looks_like_path(model: str) -> bool:
    """A ``--model`` value meant as a folder (``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``), not a
    Hub id (``owner/name``)."""
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1


def check_model_source(model: str | None, device: str | None) -> str | None:
    """The reason ``--model`` / ``--device`` cannot work, found before any loading, or ``None``:
    a folder that does not exist (a typo is not a Hub id), a Hub id while offline and not
    cached, a device torch does not have."""
    import os

    if model is not None and not os.path.isdir(model):
        if os.path.exists(model):
            return f"--model {model}: is a file; expected a saved pipeline folder or a Hub id"
        if looks_like_path(model):
            return f"--model {model}: no such folder"
        from huggingface_hub import constants, try_to_load_from_cache

        if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(model, "model_index.json"), str):
            return (f"--model {model}: no such folder, and as a Hub id it is not in the cache while the Hub is off "
                    "(HF_HUB_OFFLINE=1); download it once online or give a local folder")
    if device is not None:
        import torch

        try:
            kind = torch.device(device).type
        except (RuntimeError, ValueError) as err:
            return f"--device {device}: not a torch device ({err})"
        if kind == "cuda" and not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            return f"--device {device}: {why}; use --device cpu (or leave --device out)"
        if kind == "mps" and not torch.backends.mps.is_available():
            return f"--device {device}: MPS is not available here; use --device cpu"
    return None


def check_output_folder(folder) -> str | None:
    """The reason ``folder`` cannot be created or written, or ``None`` (nothing is created)."""
    import os
    from pathlib import Path

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"--output-dir {folder} exists and is not a folder"
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"--output-dir {folder}: cannot be created ({parent} is a file)"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"--output-dir {folder}: cannot be created or written ({parent} is not writable)"
    return None
