"""Checks on a saved pipeline folder before diffusers loads it: every listed component present
with safetensors weights (pickle weights are never loaded), and the LoRA adapter folder of a
local or Hub model."""

from __future__ import annotations

import json
import os


def lora_folder(name_or_path, kwargs) -> str | None:
    """The ``transformer_lora`` folder of a local pipeline folder or Hub repository, if any.
    Hub errors other than "offline and not cached" propagate (they are not "not a LoRA")."""

    if os.path.isdir(name_or_path):
        folder = os.path.join(name_or_path, "transformer_lora")
        return folder if os.path.isdir(folder) else None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        root = snapshot_download(name_or_path, allow_patterns=["transformer_lora/*"], cache_dir=kwargs.get("cache_dir"),
                                 revision=kwargs.get("revision"), token=kwargs.get("token"))
    except LocalEntryNotFoundError:  # offline and not cached: from_pretrained reports what is missing
        return None
    folder = os.path.join(root, "transformer_lora")
    return folder if os.path.isdir(folder) else None


def check_model_folder(folder, given=()) -> None:
    """A local pipeline folder has what ``model_index.json`` lists: for every component not
    given as a keyword (``given``), its subfolder with ``config.json`` and safetensors weights
    (pickle ``.bin`` weights are never loaded). ``ValueError`` naming the path otherwise."""
    index_path = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index_path):
        raise ValueError(f"{folder}: not a saved pipeline folder (no model_index.json)")
    try:
        with open(index_path) as f:
            index = json.load(f)
    except ValueError as err:
        raise ValueError(f"{index_path}: not valid JSON ({err})") from None
    for name, entry in index.items():
        if name.startswith("_") or name in given or not isinstance(entry, list) or entry[:1] == [None]:
            continue
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            raise ValueError(f"{sub}: missing (model_index.json lists component {name!r}; pass {name}= to use one "
                             "from elsewhere)")
        if (entry[0] != "diffusers" and name != "prompt_cache") or str(entry[1]).endswith("Scheduler"):
            continue  # tokenizers, text encoders, the scheduler: their libraries' own checks
        files = os.listdir(sub)
        if "config.json" not in files:
            raise ValueError(f"{sub}: no config.json (expected a saved {entry[1]})")
        weights = [f for f in files if f.endswith(".safetensors") or f.endswith(".safetensors.index.json")]
        if not weights:
            pickled = [f for f in files if f.endswith(".bin")]
            what = f"only pickle weights ({pickled[0]}), which are never loaded" if pickled else "no weights"
            raise ValueError(f"{sub}: {what}; expected {entry[1]} weights as .safetensors")
