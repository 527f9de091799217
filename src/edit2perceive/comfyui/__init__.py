"""ComfyUI nodes for Edit2Perceive (depth, normals, point-prompted matting).

ComfyUI loads ``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS`` from the small package
``comfyui/`` at the repository root (linked or copied into ``ComfyUI/custom_nodes/``), which
re-exports them from here. Usage and conventions: ``docs/comfyui.md``.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
