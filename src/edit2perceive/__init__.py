"""edit2perceive: FLUX.1 Kontext fine-tuned into a single-step dense perceiver.

Layers, bottom up (``docs/architecture.md``; imports only run downward): ``core`` (flow math,
Kontext plumbing, prompts, base model), ``io``, ``metrics``, ``testing``; ``tasks``, ``data``;
``hub``, ``reference``; ``pipelines`` (the call, ensembles, loading); ``outputs``,
``evaluation``; ``training``; ``commands``, ``demo``; ``cli``. Heavy submodules (diffusers,
transformers) load lazily, so ``import edit2perceive.metrics`` stays cheap.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from .core.lazy import lazy_exports

__version__ = "0.1.0.dev0"

_LAZY = {
    "Edit2PerceivePipeline": "edit2perceive.pipelines.pipeline",
    "Edit2PerceivePipelineOutput": "edit2perceive.pipelines.pipeline",
    "get_task": "edit2perceive.tasks",
}

# Module paths of 0.2 and where they live now: saved pipelines name ``edit2perceive.prompts``
# in their model_index.json, and user code imports the others. Each old name is the new module.
MOVED_MODULES = {
    "edit2perceive.flow": "edit2perceive.core.flow",
    "edit2perceive.modeling": "edit2perceive.core.modeling",
    "edit2perceive.prompts": "edit2perceive.core.prompts",
    "edit2perceive.base_model": "edit2perceive.core.base_model",
    "edit2perceive.pipeline": "edit2perceive.pipelines.pipeline",
    "edit2perceive.ensemble": "edit2perceive.pipelines.ensemble",
    "edit2perceive.visualize": "edit2perceive.outputs.visualize",
    "edit2perceive.pointcloud": "edit2perceive.outputs.pointcloud",
    "edit2perceive.metric_depth": "edit2perceive.outputs.metric_depth",
    "edit2perceive.video": "edit2perceive.outputs.video",
    "edit2perceive.images": "edit2perceive.io.images",
    "edit2perceive.training.tiny_run": "edit2perceive.demo.tiny_run",
    "edit2perceive.reference.export": "edit2perceive.pipelines.reference_export",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module that now holds its code (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__; restored below
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state

    def get_code(self, fullname):  # `python -m <old path>` runs the new module's code
        target = MOVED_MODULES[fullname]
        return importlib.util.find_spec(target).loader.get_code(target)

    def is_package(self, fullname):
        return False


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())

__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["__version__", *_LAZY]
