"""The authors' released checkpoints (Hub ``Seq2Tri/Edit2Perceive``): formats, exact
conversion to diffusers, and the inference conventions they were trained with.

>>> from edit2perceive import Edit2PerceivePipeline
>>> pipe = Edit2PerceivePipeline.from_reference_checkpoint(  # doctest: +SKIP
...     "Seq2Tri/Edit2Perceive/depth.safetensors", task="depth",
...     base_model="black-forest-labs/FLUX.1-Kontext-dev")

``REFERENCE_CONVENTIONS`` are the pipeline config values that reproduce the authors'
inference (pipelines/flux_image_new.py, inference.py, app.py, models/unified_dataset.py,
utils/eval_multiple_datasets.py): the fields of ``Conventions.reference()`` and the reference's seed,
resolution and guidance; our own models keep the pipeline's defaults. Each value and its
reason: docs/released_models.md ("Conventions").
"""

from __future__ import annotations

from ..core import flow
from .convert import (
    REFERENCE_FILES,
    REFERENCE_REPO,
    checkpoint_format,
    convert_reference_lora,
    load_reference_lora,
    load_reference_transformer,
    resolve_checkpoint,
    save_reference_lora,
    save_reference_transformer,
)
from .formats import CheckpointFormatError

#: Pipeline config that reproduces the reference inference (docs/released_models.md, "Conventions"):
#: the reference conventions plus the reference's seed, resolution and guidance.
REFERENCE_CONVENTIONS: dict = {
    # the fields of edit2perceive.pipelines.Conventions (Conventions.reference() is built from these)
    "conventions": {
        "point_map_position_index": 1,  # the point map shares position index 1 with the RGB context
        "noise": "reference",  # one torch.Generator(execution device).manual_seed(seed) per batch
        "single_step_final_sigma": flow.reference_single_step_sigma(),  # z = eps - 0.9911 v
        "sigma_schedule": "shifted",  # FlowMatchScheduler: linspace(1, 0.003/1.002, N), shift 3, last step to 0
        "point_map": "click",  # app.py / inference.py: disks of 100 px at 768, 10 points (seed 42), sigma 30
        "point_map_sigma": None,  # the point map mode's own
        "resize_mode": "stretch",  # inputs stretched to processing_resolution x processing_resolution
        "resize_filter": "pil",  # PIL bilinear on the uint8 image
        "timestep_embedding": "reference",  # DiffSynth's timestep sinusoid with bf16-rounded frequencies
        "decode_clip": "before_mean",  # vae_out_to_np: each channel clipped to [-1, 1], then averaged
        "benchmark_points": "reference",  # eval_multiple_datasets.py: gen_points on the original alpha, stretched
    },
    "noise_seed": 42,
    "default_processing_resolution": 768,
    "guidance": 1.0,
}

__all__ = [
    "CheckpointFormatError", "REFERENCE_CONVENTIONS", "REFERENCE_FILES", "REFERENCE_REPO", "checkpoint_format",
    "convert_reference_lora", "load_reference_lora", "load_reference_transformer", "resolve_checkpoint",
    "save_reference_lora", "save_reference_transformer",
]
