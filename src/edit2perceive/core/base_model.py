"""The base model's parts (FLUX.1 Kontext-dev): loading them, quantization, completion.

Our saved and shared pipelines hold only what is ours (transformer or LoRA, prompt cache,
config); the VAE, the base transformer under a LoRA and the text encoders come from a base
model in ``FluxKontextPipeline`` layout (a local folder or a Hub id), component by component:
``vae/``, ``transformer/``, ``text_encoder/`` (CLIP), ``tokenizer/``, ``text_encoder_2/``
(T5), ``tokenizer_2/``, ``scheduler/``.
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


def complete_from_base(model: str, kwargs: dict, *, base_model: str | None, quantize: str | None) -> dict:
    """``from_pretrained`` keywords with the base model's parts that ``model`` lacks added.

    Filled (unless passed as a keyword): ``vae``; ``transformer`` when the folder has none
    (always for a LoRA model); the tokenizers and text encoders only without a prompt cache.
    With ``quantize`` the transformer (ours or the base's) is loaded through
    bitsandbytes.
    """
    kwargs = dict(kwargs)
    if base_model is None and quantize is None:
        return kwargs
    index = _model_index(os.fspath(model), kwargs)
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    wanted = [n for n in ("vae", "transformer") if _missing(index, n)]  # the scheduler is not used
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
    for name in wanted:
        kwargs[name] = load_base_component(base_model, name, torch_dtype=dtype,
                                           quantize=quantize if name == "transformer" else None, **hub_kwargs(kwargs))
    return kwargs
