"""The authors' released checkpoints (Hub ``Seq2Tri/Edit2Perceive``): formats, exact
conversion to diffusers, and the inference conventions they were trained with.

>>> from edit2perceive import Edit2PerceivePipeline
>>> pipe = Edit2PerceivePipeline.from_reference_checkpoint(  # doctest: +SKIP
...     "Seq2Tri/Edit2Perceive/depth.safetensors", task="depth",
...     base_model="black-forest-labs/FLUX.1-Kontext-dev")

``REFERENCE_CONVENTIONS`` are the pipeline config values that reproduce the authors'
inference (pipelines/flux_image_new.py, inference.py, models/unified_dataset.py); our own
models keep the pipeline's defaults. Each value and its reason: docs/released_models.md.
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

#: Pipeline config that reproduces the reference inference (docs/released_models.md, "Conventions").
REFERENCE_CONVENTIONS: dict = {
    "point_map_position_index": 1,  # the point map shares position index 1 with the RGB context
    "noise": "reference",  # one torch.Generator(execution device).manual_seed(seed) per batch
    "noise_seed": 42,
    "single_step_final_sigma": flow.reference_single_step_sigma(),  # z = eps - 0.9911 v
    "point_map": "reference",  # gaussian_filter'ed unit deltas at whole pixels, peak 1, max-combined
    "point_map_sigma": 20.0,  # px at the processing size (training and benchmark evaluation)
    "resize_mode": "stretch",  # inputs stretched to processing_resolution x processing_resolution
    "timestep_embedding": "reference",  # DiffSynth's timestep sinusoid with bf16-rounded frequencies
    "default_processing_resolution": 768,
    "guidance": 1.0,
}

__all__ = [
    "CheckpointFormatError", "REFERENCE_CONVENTIONS", "REFERENCE_FILES", "REFERENCE_REPO", "checkpoint_format",
    "convert_reference_lora", "load_reference_lora", "load_reference_transformer", "resolve_checkpoint",
    "save_reference_lora", "save_reference_transformer",
]
