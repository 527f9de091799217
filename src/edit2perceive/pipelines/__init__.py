"""Inference: :class:`Edit2PerceivePipeline` (the diffusion call, :mod:`.pipeline`), test-time
ensembles (:mod:`.ensemble`), the convention switches (:mod:`.conventions`), model-folder checks (:mod:`.folders`) and the inference loading
policy shared by the command line, evaluation and the demo (:mod:`.loading`)."""

from ..core.lazy import lazy_exports

# loaded on first use: importing pipelines.ensemble or pipelines.conventions (the command line's
# option tables) must not pull in diffusers
_LAZY = {
    "Conventions": ".conventions",
    "Edit2PerceivePipeline": ".pipeline",
    "Edit2PerceivePipelineOutput": ".pipeline",
    "PointMap": ".pipeline",
}

__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = list(_LAZY)
