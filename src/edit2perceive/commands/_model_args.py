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
