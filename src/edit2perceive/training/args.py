"""``Edit2PerceiveTrainingArguments``: ``TrainingArguments`` plus the method's settings.

Every field has help text, so ``HfArgumentParser`` gives a complete ``--help``. The
optimizer is chosen with the standard ``optim`` field (``adamw_torch``, ``adamw_bnb_8bit``
for bitsandbytes' 8-bit AdamW, ...). Gradient checkpointing uses the standard
``gradient_checkpointing`` / ``activation_checkpointing`` flag, routed to diffusers' own
``enable_gradient_checkpointing()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..flow import ANNEAL_MODES, DEFAULT_NOISE_SEED, SIGMA_SAMPLING_MODES
from ..tasks.depth import DEPTH_ENCODINGS


@dataclass
class Edit2PerceiveTrainingArguments(TrainingArguments):
    task: str = field(default="depth", metadata={"help": "Task to train: depth | normal | matting."})
    resolution: int = field(
        default=768,
        metadata={"help": "Training crop size in pixels (longest side; a multiple of 16). Paper: 768."},
    )
    pixel_loss: bool = field(
        default=True,
        metadata={"help": "Add the pixel-space consistency loss on the decoded one-step estimate (L_cons)."},
    )
    steps_per_epoch: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps per epoch for the lambda curriculum lambda = sg|L_FM| / (sg|L_cons| + 1e-3) * "
            "max(0, step / steps_per_epoch - 1). Default: the train dataloader length (required for streams)."
        },
    )
    sigma_sampling: str = field(
        default="one_and_uniform",
        metadata={"help": f"Training sigma distribution, one of {SIGMA_SAMPLING_MODES} (sigma = 1 is noise)."},
    )
    sigma_one_probability: float = field(
        default=0.5,
        metadata={"help": "For one_and_uniform: probability of sigma = 1, the level used at inference."},
    )
    multires_noise: bool = field(default=True, metadata={"help": "Add annealed multi-resolution noise in training."})
    multires_strength: float = field(default=0.9, metadata={"help": "Multi-resolution noise strength (Marigold: 0.9)."})
    multires_levels: int = field(default=10, metadata={"help": "Maximum pyramid levels of multi-resolution noise."})
    multires_anneal: str = field(
        default="sigma",
        metadata={"help": f"Annealing of the multi-resolution strength, one of {ANNEAL_MODES}."},
    )
    noise_seed: int = field(
        default=DEFAULT_NOISE_SEED,
        metadata={"help": "Seed of the fixed base noise (must equal the pipeline's noise_seed at inference)."},
    )
    guidance: float = field(default=1.0, metadata={"help": "Embedded guidance value given to the DiT (Kontext-dev: 1.0)."})
    depth_encoding: str = field(
        default="sqrt", metadata={"help": f"Depth target encoding, one of {DEPTH_ENCODINGS}."}
    )
    matting_binarize: bool = field(
        default=False, metadata={"help": "Matting: train on alpha > 0.5 instead of continuous alpha."}
    )
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft) instead of the full DiT."})
    lora_rank: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    lora_target_modules: str = field(
        default="to_q,to_k,to_v,to_out.0,add_q_proj,add_k_proj,add_v_proj,to_add_out",
        metadata={"help": "Comma-separated module names that receive LoRA adapters."},
    )
    vae_gradient_checkpointing: bool = field(
        default=True,
        metadata={
            "help": "With gradient checkpointing and the pixel loss, also checkpoint the frozen VAE decoder, whose "
            "full-resolution activations the L_cons backward otherwise keeps (less memory, some recompute)."
        },
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep False: batches are dicts built by the Edit2Perceive collator."}
    )

    def task_options(self) -> dict:
        """Options for :func:`edit2perceive.tasks.get_task` implied by these arguments."""
        if self.task == "depth":
            return {"encoding": self.depth_encoding}
        if self.task == "matting":
            return {"binarize": self.matting_binarize}
        return {}

    def __post_init__(self):
        super().__post_init__()
        if self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16, got {self.resolution}")
        if self.sigma_sampling not in SIGMA_SAMPLING_MODES:
            raise ValueError(f"sigma_sampling must be one of {SIGMA_SAMPLING_MODES}, got {self.sigma_sampling!r}")
        if self.multires_anneal not in ANNEAL_MODES:
            raise ValueError(f"multires_anneal must be one of {ANNEAL_MODES}, got {self.multires_anneal!r}")
        if self.task not in ("depth", "normal", "matting"):
            raise ValueError(f"task must be depth, normal or matting, got {self.task!r}")
