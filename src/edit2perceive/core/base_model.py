"""The base model's parts (FLUX.1 Kontext-dev): loading them, quantization, completion.

Pipeline configs record their base (``base_model``, ``base_model_revision``: a Hub id or a
``FluxKontextPipeline``-layout folder) whenever it is known. Full models are saved with their
VAE; LoRA models hold the adapter and name their base, from which ``from_pretrained`` loads
the rest: ``vae/``, ``transformer/``, and the text encoders only without a prompt cache
(see docs/sharing.md).
"""

from __future__ import annotations

import json
import os

import torch

DEFAULT_BASE_MODEL = "black-forest-labs/FLUX.1-Kontext-dev"
TEXT_PARTS = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
QUANTIZE_MODES = ("nf4", "int8")
_HUB_KEYS = ("cache_dir", "revision", "token", "local_files_only", "force_download")


def hub_kwargs(kwargs: dict) -> dict:
    """The download options (cache_dir, revision, token, ...) among ``kwargs``."""
    return {k: kwargs[k] for k in _HUB_KEYS if kwargs.get(k) is not None}


def quantization_config(mode: str, *, compute_dtype: torch.dtype = torch.bfloat16):
    """diffusers' ``BitsAndBytesConfig`` for the transformer: ``"nf4"`` (4-bit NormalFloat,
    bf16 compute) or ``"int8"`` (LLM.int8). Needs the ``bitsandbytes`` package and, to run,
    a CUDA GPU."""
    from diffusers import BitsAndBytesConfig

    if mode == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)
    if mode == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {mode!r}")


def _component_class(name: str):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

    return {"vae": AutoencoderKL, "transformer": FluxTransformer2DModel, "scheduler": FlowMatchEulerDiscreteScheduler,
            "text_encoder": CLIPTextModel, "tokenizer": CLIPTokenizer, "text_encoder_2": T5EncoderModel,
            "tokenizer_2": T5TokenizerFast}[name]


def load_base_component(base_model: str, name: str, *, torch_dtype=None, quantize: str | None = None, **hub):
    """One component of the base model (``subfolder=name``)."""
    cls = _component_class(name)
    kwargs = {k: v for k, v in hub.items() if k in _HUB_KEYS and v is not None}
    if name in ("tokenizer", "tokenizer_2"):
        return cls.from_pretrained(base_model, subfolder=name, **kwargs)
    if name == "scheduler":
        return cls.from_pretrained(base_model, subfolder=name, **kwargs)
    kwargs["use_safetensors"] = True  # pickle weights are never loaded
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype  # diffusers / transformers deprecate torch_dtype=
    if quantize is not None:
        if name != "transformer":
            raise ValueError("only the transformer is quantized")
        kwargs["quantization_config"] = quantization_config(quantize, compute_dtype=torch_dtype or torch.bfloat16)
    try:
        return cls.from_pretrained(base_model, subfolder=name, **kwargs)
    except OSError as err:
        raise OSError(f"{base_model!r} has no usable {name}/ ({err})") from err
    except RuntimeError as err:
        if quantize is not None:  # diffusers' bitsandbytes quantizer refuses to run without CUDA
            raise RuntimeError(f"quantize={quantize!r} needs a CUDA GPU with bitsandbytes: {err}") from err
        raise


def base_transformer_config(base_model: str, **hub) -> dict:
    """The base model's ``transformer/config.json`` (no weights read)."""
    from diffusers import FluxTransformer2DModel

    kwargs = {k: v for k, v in hub.items() if k in _HUB_KEYS and v is not None}
    return dict(FluxTransformer2DModel.load_config(base_model, subfolder="transformer", **kwargs))


def _model_index(model: str, hub: dict) -> dict:
    if os.path.isdir(model):
        path = os.path.join(model, "model_index.json")
        if not os.path.isfile(path):
            raise OSError(f"{model}: not a saved pipeline (no model_index.json)")
    else:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(model, "model_index.json", **{k: v for k, v in hub.items()
                                                             if k in _HUB_KEYS and v is not None})
    with open(path) as f:
        return json.load(f)


def _missing(index: dict, name: str) -> bool:
    entry = index.get(name)
    return entry is None or (isinstance(entry, (list, tuple)) and entry[0] is None)


def recorded_base(base_model: str | os.PathLike | None) -> str | None:
    """The base model as a pipeline config records it: a local folder as its absolute path
    (it means nothing relative to another working directory), a Hub id as given."""
    if base_model is None:
        return None
    base_model = os.fspath(base_model)
    return os.path.abspath(base_model) if os.path.isdir(base_model) else base_model


def copy_base_component(base_model: str, name: str, dest: str | os.PathLike, *, revision: str | None = None,
                        **hub) -> None:
    """Copy the base's ``name/`` folder (config and safetensors weights, byte for byte, no
    pickle files) to ``dest``: a local folder or a Hub snapshot."""
    import shutil

    patterns = (f"{name}/*.json", f"{name}/*.safetensors")
    if os.path.isdir(base_model):
        src = os.path.join(base_model, name)
    else:
        from huggingface_hub import snapshot_download

        kw = {k: v for k, v in hub.items() if k in _HUB_KEYS and k != "revision" and v is not None}
        src = os.path.join(snapshot_download(base_model, allow_patterns=list(patterns), revision=revision, **kw), name)
    if not os.path.isfile(os.path.join(src, "config.json")):
        raise OSError(f"{base_model!r} has no {name}/config.json")
    shutil.copytree(src, dest, ignore=lambda d, files: [f for f in files if f.endswith((".bin", ".pt", ".pkl"))])


def complete_from_base(model: str, kwargs: dict, *, base_model: str | None, quantize: str | None) -> dict:
    """``from_pretrained`` keywords with the base model's parts that ``model`` lacks added.

    The base is ``base_model`` if given, else the one recorded in ``model``'s config (with
    its revision). Filled (unless passed as a keyword): ``vae`` and ``transformer`` when the
    folder has none (a LoRA model, a model saved without its VAE); the tokenizers and text
    encoders only without a prompt cache. With ``quantize`` the transformer (ours or the
    base's) is loaded through bitsandbytes. A base that cannot be loaded (offline and not
    cached, a missing folder) is an ``OSError`` naming it and what would do instead.
    """
    kwargs = dict(kwargs)
    try:
        index = _model_index(os.fspath(model), kwargs)
    except OSError:
        if base_model is None and quantize is None:
            return kwargs  # diffusers' from_pretrained reports the unreachable model itself
        raise
    revision = None
    if base_model is None:
        base_model, revision = index.get("base_model"), index.get("base_model_revision")
    else:
        kwargs["base_model"] = recorded_base(base_model)  # the config records the base in use
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    wanted = [n for n in ("vae", "transformer") if _missing(index, n)]
    if _missing(index, "prompt_cache"):
        wanted += [n for n in TEXT_PARTS if _missing(index, n)]
    wanted = [n for n in wanted if n not in kwargs]
    if quantize is not None and "transformer" not in kwargs and "transformer" not in wanted:
        # our own fine-tuned transformer, quantized on load
        kwargs["transformer"] = load_base_component(os.fspath(model), "transformer", torch_dtype=dtype,
                                                    quantize=quantize, **hub_kwargs(kwargs))
    if wanted and base_model is None:
        if quantize is not None and "transformer" in wanted:
            raise ValueError(f"{model}: --quantize needs the base model (base_model=) for the base transformer")
        return kwargs
    hub = {**hub_kwargs(kwargs), "revision": revision}
    for name in wanted:
        try:
            kwargs[name] = load_base_component(base_model, name, torch_dtype=dtype,
                                               quantize=quantize if name == "transformer" else None, **hub)
        except OSError as err:
            at = f" at revision {revision}" if revision else ""
            raise OSError(
                f"{model}: its {name} comes from the base model {base_model!r}{at}, which could not be loaded "
                f"({err}). Pass base_model= a folder in FluxKontextPipeline layout (e.g. a local copy of "
                f"{DEFAULT_BASE_MODEL}), pass {name}= yourself, or load once online so the Hub cache holds it."
            ) from err
    return kwargs
