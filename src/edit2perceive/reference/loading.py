"""Build an :class:`~edit2perceive.Edit2PerceivePipeline` from a released reference checkpoint."""

from __future__ import annotations

import os

from ..core.base_model import (
    DEFAULT_BASE_MODEL,
    TEXT_PARTS,
    base_transformer_config,
    hub_kwargs,
    load_base_component,
    recorded_base,
)
from ..tasks import TASKS
from .convert import checkpoint_format, load_reference_lora, load_reference_transformer, resolve_checkpoint


def task_from_filename(path: str, task: str | None = None) -> str:
    """``depth`` / ``normal`` / ``matting`` from a released file name (``depth_lora.safetensors``);
    a given ``task`` must not contradict a file name that names another task."""
    name = os.path.basename(os.fspath(path)).lower()
    found = [t for t in TASKS if t in name]
    if task is not None:
        if len(found) == 1 and found[0] != task:
            raise ValueError(f"{path}: the file name says task {found[0]!r}, not {task!r} "
                             "(rename the file if it really holds another task)")
        return task
    if len(found) != 1:
        raise ValueError(f"{path}: cannot tell the task from the file name; pass task= one of {tuple(TASKS)}")
    return found[0]


def reference_pipeline(cls, path, *, task=None, base_model=None, torch_dtype=None, quantize=None,
                       keep_text_encoders=False, **components):
    """See :meth:`Edit2PerceivePipeline.from_reference_checkpoint`."""
    from . import REFERENCE_CONVENTIONS

    hub = hub_kwargs(components)
    for key in hub:
        components.pop(key)
    config = {**REFERENCE_CONVENTIONS, **{k: components.pop(k) for k in list(components) if k in REFERENCE_CONVENTIONS}}
    base_model = base_model or DEFAULT_BASE_MODEL
    file = resolve_checkpoint(path, **hub)
    task = task_from_filename(file, task)
    fmt = checkpoint_format(file)

    def base(name, **kw):
        return load_base_component(base_model, name, torch_dtype=torch_dtype, **kw, **hub)

    if fmt == "full":
        if "transformer" in components:
            raise ValueError(f"{path} is a full DiT checkpoint: it is the transformer, do not pass transformer=")
        if quantize is not None:
            raise ValueError("a full reference checkpoint cannot be quantized while loading: convert it first "
                             "(e2p convert ... --output-dir DIR), then from_pretrained(DIR, quantize=...)")
        transformer = load_reference_transformer(file, config=base_transformer_config(base_model, **hub),
                                                 torch_dtype=torch_dtype)
    else:
        transformer = components.pop("transformer", None) or base("transformer", quantize=quantize)
        load_reference_lora(transformer, file)
    if "vae" not in components:
        components["vae"] = base("vae")
    encode = components.get("prompt_cache") is None
    if encode:
        for name in TEXT_PARTS:
            if name not in components:
                components[name] = base(name)
    pipe = cls(transformer=transformer, task=task, base_model=recorded_base(base_model), **config, **components)
    if encode:
        pipe.ensure_prompt_cache()
        if not keep_text_encoders:
            pipe.register_modules(**dict.fromkeys(TEXT_PARTS))
    return pipe
