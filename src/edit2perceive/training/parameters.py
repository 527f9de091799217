"""Which DiT parameters train how: LoRA target presets and the weight-decay rule.

LoRA presets (``--lora_target_modules``), in ``FluxTransformer2DModel`` module names:

- ``released`` (default): what the authors' released LoRAs adapt (REFERENCE.md: kohya keys
  ``img/txt_attn_qkv``, ``img/txt_attn_proj``, ``img/txt_mlp_0/2``, ``img/txt_mod_lin`` of the
  double blocks and ``linear1``, ``linear2``, ``modulation_lin`` of the single blocks): attention,
  both feed-forwards, the AdaLN modulation linears, and the single blocks' fused linear1
  (``to_q/k/v`` + ``proj_mlp``) and linear2 (``proj_out``). A regular expression, so the model's
  final ``proj_out`` / ``norm_out`` stay frozen.
- ``attention``: the attention projections only (this project's default before).

Weight decay: every parameter except biases and the scales of real normalisation layers,
found by module type (``LayerNorm``, ``GroupNorm``, ``RMSNorm``), not by name: Flux's
``norm.linear`` / ``norm1.linear`` are AdaLN modulation ``Linear`` layers and decay like any
other (a name rule containing ``norm`` would exempt 1.08B of the 11.9B parameters).
"""

from __future__ import annotations

import torch

_DOUBLE = (r"transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
           r"|ff\.net\.(0\.proj|2)|ff_context\.net\.(0\.proj|2)|norm1\.linear|norm1_context\.linear)")
_SINGLE = r"single_transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v)|proj_mlp|proj_out|norm\.linear)"
LORA_PRESETS: dict[str, str | list[str]] = {
    "released": f"({_DOUBLE}|{_SINGLE})",
    "attention": ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"],
}


def lora_target_modules(value: str) -> str | list[str]:
    """``--lora_target_modules``: a preset name (:data:`LORA_PRESETS`) or comma-separated module
    names -> peft's ``target_modules`` (a list of name suffixes, or one full-match regex)."""
    if value in LORA_PRESETS:
        return LORA_PRESETS[value]
    names = [m.strip() for m in value.split(",") if m.strip()]
    if not names:
        raise ValueError(f"lora_target_modules must be a preset {sorted(LORA_PRESETS)} or module names, got {value!r}")
    return names


def normalization_types() -> tuple[type, ...]:
    """Module types whose own parameters are normalisation scales / shifts."""
    from diffusers.models import normalization

    types = [torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm]
    types += [getattr(normalization, n) for n in ("RMSNorm", "LayerNorm") if isinstance(getattr(normalization, n, None), type)]
    return tuple(types)


def decay_parameter_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters that take weight decay: all but biases and the parameters owned
    directly by normalisation modules (:func:`normalization_types`)."""
    norm_types = normalization_types()
    exempt = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, norm_types):
                exempt.add(f"{module_name}.{name}" if module_name else name)
    return [name for name, _ in model.named_parameters() if name not in exempt]
