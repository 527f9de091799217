"""Tasks: everything task-specific (prompt, target encoding, decoding, pixel loss, metric).

>>> from edit2perceive.tasks import get_task
>>> get_task("depth").prompt
'Transform to depth map while maintaining original composition'
"""

from __future__ import annotations

from .base import EncodedTarget, Task
from .depth import DepthTask
from .matting import MattingTask
from .normal import NormalTask

TASKS: dict[str, type[Task]] = {"depth": DepthTask, "normal": NormalTask, "matting": MattingTask}


def get_task(name: str | dict | Task, **options) -> Task:
    """A task by name (``"depth"``, ``"normal"``, ``"matting"``) with options, from a
    ``Task.config()`` dict, or a ``Task`` passed through."""
    if isinstance(name, Task):
        if options:
            raise ValueError("options cannot be combined with a Task instance")
        return name
    if isinstance(name, dict):
        options = {**{k: v for k, v in name.items() if k != "name"}, **options}
        name = name.get("name")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name](**options)


__all__ = ["DepthTask", "EncodedTarget", "MattingTask", "NormalTask", "TASKS", "Task", "get_task"]
