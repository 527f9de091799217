"""edit2perceive: FLUX.1 Kontext fine-tuned into a single-step dense perceiver.

Heavy submodules (diffusers, transformers) load lazily, so ``import edit2perceive.metrics``
stays cheap.
"""

__version__ = "0.1.0.dev0"

_LAZY = {
    "Edit2PerceivePipeline": "edit2perceive.pipeline",
    "Edit2PerceivePipelineOutput": "edit2perceive.pipeline",
    "get_task": "edit2perceive.tasks",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edit2perceive' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
