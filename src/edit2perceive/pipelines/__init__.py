"""Inference: :class:`Edit2PerceivePipeline` (the diffusion call, :mod:`.pipeline`), test-time
ensembles (:mod:`.ensemble`), model-folder checks (:mod:`.folders`) and the inference loading
policy shared by the command line, evaluation and the demo (:mod:`.loading`)."""

from .pipeline import Edit2PerceivePipeline, Edit2PerceivePipelineOutput

__all__ = ["Edit2PerceivePipeline", "Edit2PerceivePipelineOutput"]
