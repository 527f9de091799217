"""Inference: :class:`Edit2PerceivePipeline` (the diffusion call, :mod:`.pipeline`), test-time
ensembles (:mod:`.ensemble`), the convention switches (:mod:`.conventions`), model-folder checks (:mod:`.folders`) and the inference loading
policy shared by the command line, evaluation and the demo (:mod:`.loading`)."""

from .conventions import Conventions
from .pipeline import Edit2PerceivePipeline, Edit2PerceivePipelineOutput, PointMap

__all__ = ["Conventions", "Edit2PerceivePipeline", "Edit2PerceivePipelineOutput", "PointMap"]
