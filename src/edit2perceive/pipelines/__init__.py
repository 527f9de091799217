"""Inference: :class:`Edit2PerceivePipeline` (the diffusion call, :mod:`.pipeline`), test-time
ensembles (:mod:`.ensemble`), the convention switches (:mod:`.conventions`), model-folder checks (:mod:`.folders`) and the inference loading
policy shared by the command line, evaluation and the demo (:mod:`.loading`)."""

import importlib

# loaded on first use: importing pipelines.ensemble or pipelines.conventions (the command line's
# option tables) must not pull in diffusers
_LAZY = {
    "Conventions": ".conventions",
    "Edit2PerceivePipeline": ".pipeline",
    "Edit2PerceivePipelineOutput": ".pipeline",
    "PointMap": ".pipeline",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
