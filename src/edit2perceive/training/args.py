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

from ..core.flow import ANNEAL_MODES, DEFAULT_NOISE_SEED, SIGMA_SAMPLING_MODES
from ..tasks import TASKS
from ..tasks.depth import DEPTH_ENCODINGS
from .precision import BF16_UPDATES


def accumulation_steps(effective_batch: int, per_device_batch: int, world_size: int, given: int = 1) -> int:
    """Gradient accumulation steps that make ``effective_batch`` examples per optimizer step.

    ``given`` is the user's ``gradient_accumulation_steps``: left at 1 it is derived; otherwise
    it must agree. Raises a ValueError naming the numbers when the batch does not divide.
    """
    per_step = per_device_batch * world_size
    if effective_batch < 1 or effective_batch % per_step:
        raise ValueError(
            f"effective_batch_size {effective_batch} is not a multiple of per_device_train_batch_size "
            f"{per_device_batch} x {world_size} process(es) = {per_step}; change one of them "
            f"(or set effective_batch_size None and choose gradient_accumulation_steps yourself)")
    steps = effective_batch // per_step
    if given not in (1, steps):
        raise ValueError(f"gradient_accumulation_steps {given} contradicts effective_batch_size {effective_batch} "
                         f"= {per_device_batch} x {world_size} x {steps}; set one of them only")
    return steps


def reference_steps_per_epoch(num_examples: int, effective_batch: int) -> int:
    """Optimizer steps in one epoch as the reference counts it: every example of every source of
    the mixture once (its mixed batch sampler's length), divided by the effective batch."""
    if num_examples < 1 or effective_batch < 1:
        raise ValueError(f"need positive counts, got {num_examples} examples and effective batch {effective_batch}")
    return max(1, num_examples // effective_batch)


#: ``master_weights`` values: ``bf16`` (pure bf16, this project's way to fit one GPU) or ``fp32`` master weights
#: (the reference's numerics: DeepSpeed ZeRO-2 with bf16 keeps fp32 master partitions).
MASTER_WEIGHTS = ("auto", "bf16", "fp32")


@dataclass
class Edit2PerceiveTrainingArguments(TrainingArguments):
    """Defaults are the paper's recipe (arXiv 2511.18673, Sec. 4) and, where the paper is silent,
    the reference code's (showlab/Edit2Perceive, DiffSynth-Studio's ``launch_training_task``);
    each field's help names its source."""

    task: str = field(default="depth", metadata={"help": "Task to train: depth | normal | matting."})
    # -- the paper's recipe (overrides of TrainingArguments' defaults) ----------------------
    learning_rate: float = field(
        default=3e-5,
        metadata={"help": "AdamW learning rate. Paper: 3e-5 (the reference's depth script uses 1e-5)."},
    )
    max_steps: int = field(default=6000, metadata={"help": "Optimizer steps. Paper: about 6000."})
    lr_scheduler_type: str = field(
        default="constant",
        metadata={"help": "Learning-rate schedule; the paper is silent. Reference: torch ConstantLR(), which runs at lr / 3 "
                          "for its first 5 steps, then at lr (not copied: plain constant). Warm-up is optional "
                          "(--warmup_steps, then use constant_with_warmup)."},
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay. Reference: 0.01 (launch_training_task) on every parameter; "
                                        "ours exempts biases and normalisation scales (by module type); paper silent."}
    )
    optim: str = field(
        default="auto",
        metadata={"help": "Optimizer (TrainingArguments' names). 'auto': adamw_bnb_8bit (bitsandbytes AdamW8bit) for "
                          "matting (paper) and for bf16 master weights (reference: --adamw8bit, how 12B full "
                          "fine-tuning fits one H200), else adamw_torch."},
    )
    effective_batch_size: int = field(
        default=16,
        metadata={"help": "Examples per optimizer step over all processes. Paper: 16. Reached by gradient "
                          "accumulation: gradient_accumulation_steps = effective_batch_size / (per_device_train_"
                          "batch_size x processes), which must divide exactly. 0: use gradient_accumulation_steps as given."},
    )
    master_weights: str = field(
        default="auto",
        metadata={"help": "Precision of the trained DiT weights, one of ('auto', 'bf16', 'fp32'). bf16: pure bf16, "
                          "weights and gradients bf16 with no fp32 copy (this project's choice: the only way 12B full "
                          "fine-tuning fits one 141 GB GPU); fp32: fp32 master weights (with --bf16 autocast: mixed "
                          "precision; the reference's numerics, which it gets from DeepSpeed ZeRO-2 with bf16: "
                          "examples/configs/deepspeed_zero2_offload.yaml). auto: bf16 when --bf16 is set, else fp32. "
                          "Checkpoints keep this dtype."},
    )
    bf16_update: str = field(
        default="stochastic_rounding",
        metadata={"help": "How bf16 master weights take an update, one of ('stochastic_rounding', 'kahan', "
                          "'nearest'). bf16 cannot represent most steps of size lr at lr 3e-5 (round-to-nearest "
                          "drops them); stochastic rounding keeps them in expectation at no memory cost, kahan keeps "
                          "the rounding error in a bf16 buffer (+2 bytes/parameter), nearest is the reference's "
                          "plain bf16 AdamW. See docs/training.md for measurements."},
    )
    resolution: int = field(
        default=768,
        metadata={"help": "Training crop size in pixels (longest side; a multiple of 16). The paper gives none; the reference "
                          "trains matting at 512 (scripts/Kontext_matting3.sh) and infers at 768."},
    )
    pixel_loss: bool = field(
        default=True,
        metadata={"help": "Add the pixel-space consistency loss on the decoded one-step estimate (L_cons)."},
    )
    steps_per_epoch: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps per epoch for the lambda curriculum lambda = sg|L_FM| / (sg|L_cons| + 1e-3) * "
            "max(0, step / steps_per_epoch - 1). Default: as the reference counts an epoch, examples in the "
            "training set (every source of the mixture once) // effective batch. A stream has no length: set it to "
            "(sum of the sources' example counts) // effective batch (docs/training.md)."
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
        default="sigma_below_one",
        metadata={"help": f"Annealing of the multi-resolution strength, one of {ANNEAL_MODES}. Default "
                          "sigma_below_one: Marigold's 0.9 * sigma below sigma = 1 and none at sigma = 1, so the "
                          "single-step model trains on exactly the noise inference feeds it; 'sigma' is Marigold's "
                          "(and the reference's) annealing, strongest at sigma = 1 (docs/training.md: measured)."},
    )
    noise_seed: int = field(
        default=DEFAULT_NOISE_SEED,
        metadata={"help": "Seed of the fixed base noise (must equal the pipeline's noise_seed at inference)."},
    )
    guidance: float = field(default=1.0, metadata={"help": "Embedded guidance value given to the DiT (Kontext-dev: 1.0)."})
    depth_encoding: str = field(
        default="sqrt", metadata={"help": f"Depth target encoding, one of {DEPTH_ENCODINGS}."}
    )
    depth_hole_fill: str = field(
        default="near",
        metadata={"help": "Depth: what the encoded target holds at holes (no measurement: 0 or NaN), 'near' (-1, the "
                          "reference's) or 'zero' (mid-range); masked pixels with a depth (sky) keep their clipped "
                          "value, so sky is far. docs/training.md has the measurement behind the default."},
    )
    matting_binarize: bool = field(
        default=False, metadata={"help": "Matting: train on alpha > 0.5 instead of continuous alpha."}
    )
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft) instead of the full DiT."})
    lora_rank: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    lora_target_modules: str = field(
        default="released",
        metadata={"help": "Modules that receive LoRA adapters: a preset, 'released' (what the authors' released "
                          "LoRAs adapt: attention, both feed-forwards, AdaLN modulation, the single blocks' linear1 / "
                          "linear2) or 'attention' (the attention projections only), or comma-separated module names."},
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
            return {"encoding": self.depth_encoding, "hole_fill": self.depth_hole_fill}
        if self.task == "matting":
            return {"binarize": self.matting_binarize}
        return {}

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {tuple(TASKS)}, got {self.task!r}")
        if self.master_weights not in MASTER_WEIGHTS:
            raise ValueError(f"master_weights must be one of {MASTER_WEIGHTS}, got {self.master_weights!r}")
        if self.master_weights == "auto":
            self.master_weights = "bf16" if self.bf16 else "fp32"
        if self.bf16_update not in BF16_UPDATES:
            raise ValueError(f"bf16_update must be one of {BF16_UPDATES}, got {self.bf16_update!r}")
        if self.optim == "auto":
            self.optim = "adamw_bnb_8bit" if self.task == "matting" or self.master_weights == "bf16" else "adamw_torch"
        super().__post_init__()
        if self.effective_batch_size:
            self.gradient_accumulation_steps = accumulation_steps(
                self.effective_batch_size, self.per_device_train_batch_size, self.world_size,
                self.gradient_accumulation_steps)
        if self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16, got {self.resolution}")
        if self.sigma_sampling not in SIGMA_SAMPLING_MODES:
            raise ValueError(f"sigma_sampling must be one of {SIGMA_SAMPLING_MODES}, got {self.sigma_sampling!r}")
        if self.multires_anneal not in ANNEAL_MODES:
            raise ValueError(f"multires_anneal must be one of {ANNEAL_MODES}, got {self.multires_anneal!r}")
