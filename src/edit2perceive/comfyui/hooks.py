"""ComfyUI's runtime services when the nodes run inside ComfyUI, no-ops elsewhere.

Looked up at each call (not at import), so the nodes import and run without ComfyUI:
``comfy.utils.ProgressBar`` (the progress bar on the node), ``comfy.model_management``
(interruption between batch items, the device ComfyUI computes on, freeing cached memory) and
``folder_paths`` (ComfyUI's ``models/diffusers`` and ``models/checkpoints`` folders).
"""

from __future__ import annotations

import importlib
import os


def _module(name: str):
    try:
        return importlib.import_module(name)
    except Exception:  # not inside ComfyUI (or an unrelated package of the same name)
        return None


class _NoProgress:
    def update(self, value) -> None:
        pass


def progress_bar(total: int):
    """ComfyUI's ``ProgressBar(total)`` (``update(1)`` per step), or a no-op outside ComfyUI."""
    utils = _module("comfy.utils")
    bar = getattr(utils, "ProgressBar", None)
    return bar(total) if bar is not None else _NoProgress()


def check_interrupted() -> None:
    """Raise ComfyUI's ``InterruptProcessingException`` if the user pressed Cancel."""
    management = _module("comfy.model_management")
    check = getattr(management, "throw_exception_if_processing_interrupted", None)
    if check is not None:
        check()


def default_device() -> str:
    """The device ComfyUI computes on; without ComfyUI, CUDA when available, else the CPU."""
    management = _module("comfy.model_management")
    if management is not None and hasattr(management, "get_torch_device"):
        return str(management.get_torch_device())
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def free_memory() -> None:
    """Let ComfyUI return cached accelerator memory (``soft_empty_cache``) after a node ran."""
    management = _module("comfy.model_management")
    if management is not None and hasattr(management, "soft_empty_cache"):
        management.soft_empty_cache()


def resolve_model_path(name: str) -> str:
    """``name`` as given when it exists (a folder or file) or looks like a Hub id; else the
    first match under ComfyUI's ``models/diffusers`` (folders) or ``models/checkpoints``
    (released ``.safetensors`` files)."""
    if os.path.exists(name):
        return name
    folder_paths = _module("folder_paths")
    if folder_paths is not None:
        for kind in ("diffusers", "checkpoints"):
            try:
                roots = folder_paths.get_folder_paths(kind)
            except Exception:  # kind not registered in this ComfyUI
                continue
            for root in roots:
                candidate = os.path.join(root, name)
                if os.path.exists(candidate):
                    return candidate
    return name
