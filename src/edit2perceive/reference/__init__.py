"""The authors' released checkpoints (Hub ``Seq2Tri/Edit2Perceive``): formats, exact
conversion to diffusers, and the inference conventions they were trained with.

>>> from edit2perceive import Edit2PerceivePipeline
>>> pipe = Edit2PerceivePipeline.from_reference_checkpoint(  # doctest: +SKIP
...     "Seq2Tri/Edit2Perceive/depth.safetensors", task="depth",
...     base_model="black-forest-labs/FLUX.1-Kontext-dev")

``REFERENCE_CONVENTIONS`` are the pipeline config values that reproduce the authors'
inference (pipelines/flux_image_new.py, inference.py, app.py, models/unified_dataset.py,
utils/eval_multiple_datasets.py): ``Conventions.reference()`` and the reference's seed,
resolution and guidance; our own models keep the pipeline's defaults. Each value and its
reason: docs/conventions.md.
"""

from __future__ import annotations

from ..pipelines.conventions import Conventions
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

#: Pipeline config that reproduces the reference inference (docs/conventions.md): the reference
#: conventions plus the reference's seed, resolution and guidance.
REFERENCE_CONVENTIONS: dict = {
    "conventions": Conventions.reference(),
    "noise_seed": 42,
    "default_processing_resolution": 768,
    "guidance": 1.0,
}

__all__ = [
    "CheckpointFormatError", "REFERENCE_CONVENTIONS", "REFERENCE_FILES", "REFERENCE_REPO", "checkpoint_format",
    "convert_reference_lora", "load_reference_lora", "load_reference_transformer", "resolve_checkpoint",
    "save_reference_lora", "save_reference_transformer",
]
