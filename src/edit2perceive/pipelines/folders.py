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


#: file suffixes of pickle (torch.save) weights: never loaded, refused in a component folder
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_model_folder(folder, given=(), components=()) -> None:
    """A local pipeline folder has what ``model_index.json`` lists: for every component not
    given as a keyword (``given``), its subfolder (``components``: the pipeline's component
    names, whose entries must be ``[library, class]`` or ``[null, null]``); no pickle weights in any component folder
    (text encoders included: they are never loaded); for our diffusers models ``config.json``
    and safetensors weights holding every parameter. ``ValueError`` naming the path otherwise."""
    index_path = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index_path):
        raise ValueError(f"{folder}: not a saved pipeline folder (no model_index.json)")
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{index_path}: not valid JSON ({err})") from None
    if not isinstance(index, dict) or "_class_name" not in index:
        raise ValueError(f"{index_path}: not a pipeline index (expected a JSON object with \"_class_name\")")
    for name, entry in index.items():
        if name.startswith("_") or name in given or (name not in components and not isinstance(entry, list)):
            continue
        if not isinstance(entry, list) or len(entry) != 2 or not all(v is None or isinstance(v, str) for v in entry):
            raise ValueError(f"{index_path}: entry {name!r} is {entry!r}; expected [library, class name] or [null, null]")
        if entry[:1] == [None]:
            continue
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            raise ValueError(f"{sub}: missing (model_index.json lists component {name!r}; pass {name}= to use one "
                             "from elsewhere)")
        files = os.listdir(sub)
        weights = [f for f in files if f.endswith(".safetensors") or f.endswith(".safetensors.index.json")]
        pickled = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
        if pickled and weights:
            raise ValueError(f"{os.path.join(sub, pickled[0])}: pickle weights (can run code when loaded) beside "
                             "safetensors ones; they are never loaded: remove the file")
        if (entry[0] != "diffusers" and name != "prompt_cache") or str(entry[1]).endswith("Scheduler"):
            if pickled:  # tokenizers, text encoders: safetensors only, like ours
                raise ValueError(f"{sub}: only pickle weights ({pickled[0]}), which are never loaded; expected "
                                 f"{entry[1]} weights as .safetensors")
            continue
        if "config.json" not in files:
            raise ValueError(f"{sub}: no config.json (expected a saved {entry[1]})")
        if not weights:
            what = f"only pickle weights ({pickled[0]}), which are never loaded" if pickled else "no weights"
            raise ValueError(f"{sub}: {what}; expected {entry[1]} weights as .safetensors")
        _check_weight_keys(sub, name, entry[1], weights)


def _check_weight_keys(sub: str, name: str, class_name: str, weights: list[str]) -> None:
    """Every parameter of the component is in its safetensors files (else diffusers would leave
    it randomly initialised or fail with "Cannot copy out of meta tensor")."""
    import diffusers
    import torch
    from safetensors import safe_open

    from ..core.prompts import PromptCache

    cls = PromptCache if name == "prompt_cache" else getattr(diffusers, class_name, None)
    if cls is None:
        return
    try:
        with torch.device("meta"):
            expected = set(cls.from_config(cls.load_config(sub)).state_dict())
    except Exception as err:  # noqa: BLE001 - a config this class cannot build from
        raise ValueError(f"{os.path.join(sub, 'config.json')}: not a usable {class_name} config ({err})") from None
    found: set[str] = set()
    for f in weights:
        path = os.path.join(sub, f)
        try:
            if f.endswith(".index.json"):
                with open(path, encoding="utf-8") as fh:
                    found |= set(json.load(fh)["weight_map"])
            else:
                with safe_open(path, "pt") as fh:
                    found |= set(fh.keys())
        except Exception as err:  # noqa: BLE001 - truncated file, bad header, bad JSON
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    missing = sorted(expected - found)
    if missing:
        raise ValueError(f"{sub}: the weights ({', '.join(sorted(weights))}) lack {len(missing)} of the "
                         f"{len(expected)} {class_name} parameters, e.g. {', '.join(missing[:3])}")
