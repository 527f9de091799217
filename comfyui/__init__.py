"""ComfyUI custom-node entry for Edit2Perceive: link or copy this folder into
``ComfyUI/custom_nodes/`` (see docs/comfyui.md). The nodes live in the installed library
(``edit2perceive.comfyui``); inside a checkout of the repository, its ``src/`` is used when
the library is not installed in ComfyUI's Python."""

import importlib.util
import os
import sys

if importlib.util.find_spec("edit2perceive") is None:
    _src = os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir, "src")
    if not os.path.isdir(os.path.join(_src, "edit2perceive")):
        raise ImportError("Edit2Perceive nodes: the edit2perceive library is not installed in ComfyUI's Python: "
                          "run `pip install -e /path/to/edit2perceive` with that Python")
    sys.path.insert(0, os.path.abspath(_src))

from edit2perceive.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
