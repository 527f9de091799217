"""Writers of tiny checkpoints in the two released formats, from a diffusers transformer.

This is the *forward* mapping (diffusers -> DiffSynth FluxDiT / kohya LoRA), written
independently of the library's inverse from the facts in REFERENCE.md / the reference's
``FluxDiTStateDictConverter.from_diffusers`` and ``FluxLoRAConverter.align_to_opensource_format``.
"""

import torch
from safetensors.torch import save_file

_GLOBAL = {
    "time_text_embed.timestep_embedder.linear_1": "time_embedder.timestep_embedder.0",
    "time_text_embed.timestep_embedder.linear_2": "time_embedder.timestep_embedder.2",
    "time_text_embed.guidance_embedder.linear_1": "guidance_embedder.timestep_embedder.0",
    "time_text_embed.guidance_embedder.linear_2": "guidance_embedder.timestep_embedder.2",
    "time_text_embed.text_embedder.linear_1": "pooled_text_embedder.0",
    "time_text_embed.text_embedder.linear_2": "pooled_text_embedder.2",
    "norm_out.linear": "final_norm_out.linear",
    "proj_out": "final_proj_out",
    "x_embedder": "x_embedder",
    "context_embedder": "context_embedder",
}
_DOUBLE = {
    "norm1.linear": "norm1_a.linear", "norm1_context.linear": "norm1_b.linear",
    "attn.to_out.0": "attn.a_to_out", "attn.to_add_out": "attn.b_to_out",
    "ff.net.0.proj": "ff_a.0", "ff.net.2": "ff_a.2", "ff_context.net.0.proj": "ff_b.0", "ff_context.net.2": "ff_b.2",
    "attn.norm_q": "attn.norm_q_a", "attn.norm_k": "attn.norm_k_a",
    "attn.norm_added_q": "attn.norm_q_b", "attn.norm_added_k": "attn.norm_k_b",
}
_SINGLE = {"attn.norm_q": "norm_q_a", "attn.norm_k": "norm_k_a", "norm.linear": "norm.linear", "proj_out": "proj_out"}


def diffsynth_state_dict(sd: dict) -> dict:
    """diffusers FluxTransformer2DModel state dict -> DiffSynth FluxDiT state dict."""
    out = {}
    double = sorted({int(k.split(".")[1]) for k in sd if k.startswith("transformer_blocks.")})
    single = sorted({int(k.split(".")[1]) for k in sd if k.startswith("single_transformer_blocks.")})
    for name, dst in _GLOBAL.items():
        for suffix in ("weight", "bias"):
            if f"{name}.{suffix}" in sd:
                out[f"{dst}.{suffix}"] = sd[f"{name}.{suffix}"]
    for i in double:
        p = f"transformer_blocks.{i}."
        for src, dst in _DOUBLE.items():
            for suffix in ("weight", "bias"):
                if p + f"{src}.{suffix}" in sd:
                    out[f"blocks.{i}.{dst}.{suffix}"] = sd[p + f"{src}.{suffix}"]
        for suffix in ("weight", "bias"):
            out[f"blocks.{i}.attn.a_to_qkv.{suffix}"] = torch.cat(
                [sd[p + f"attn.to_{c}.{suffix}"] for c in "qkv"])
            out[f"blocks.{i}.attn.b_to_qkv.{suffix}"] = torch.cat(
                [sd[p + f"attn.add_{c}_proj.{suffix}"] for c in "qkv"])
    for i in single:
        p = f"single_transformer_blocks.{i}."
        for src, dst in _SINGLE.items():
            for suffix in ("weight", "bias"):
                if p + f"{src}.{suffix}" in sd:
                    out[f"single_blocks.{i}.{dst}.{suffix}"] = sd[p + f"{src}.{suffix}"]
        for suffix in ("weight", "bias"):
            out[f"single_blocks.{i}.to_qkv_mlp.{suffix}"] = torch.cat(
                [sd[p + f"attn.to_{c}.{suffix}"] for c in "qkv"] + [sd[p + f"proj_mlp.{suffix}"]])
    return out


_LORA_DOUBLE = {  # kohya name -> diffusers modules, in fused row order
    "img_attn_qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
    "txt_attn_qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
    "img_attn_proj": ["attn.to_out.0"], "txt_attn_proj": ["attn.to_add_out"],
    "img_mlp_0": ["ff.net.0.proj"], "img_mlp_2": ["ff.net.2"],
    "txt_mlp_0": ["ff_context.net.0.proj"], "txt_mlp_2": ["ff_context.net.2"],
    "img_mod_lin": ["norm1.linear"], "txt_mod_lin": ["norm1_context.linear"],
}
_LORA_SINGLE = {"linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"], "linear2": ["proj_out"],
                "modulation_lin": ["norm.linear"]}


def random_kohya_lora(transformer, rank: int = 4, alpha: float | None = None, seed: int = 0,
                      dtype=torch.float32) -> dict:
    """A random LoRA on the reference's fused layers of ``transformer``, in the released
    kohya format (``alpha`` stored as the reference does, ``torch.tensor((alpha,))[0]``)."""
    g = torch.Generator().manual_seed(seed)
    modules = dict(transformer.named_modules())
    cfg = transformer.config
    out = {}
    layers = [(f"lora_unet_double_blocks_{i}_{k}", f"transformer_blocks.{i}.", v)
              for i in range(cfg.num_layers) for k, v in _LORA_DOUBLE.items()]
    layers += [(f"lora_unet_single_blocks_{i}_{k}", f"single_transformer_blocks.{i}.", v)
               for i in range(cfg.num_single_layers) for k, v in _LORA_SINGLE.items()]
    for stem, prefix, names in layers:
        rows = sum(modules[prefix + n].out_features for n in names)
        cols = modules[prefix + names[0]].in_features
        out[stem + ".lora_down.weight"] = (torch.randn(rank, cols, generator=g) * 0.3).to(dtype)
        out[stem + ".lora_up.weight"] = (torch.randn(rows, rank, generator=g) * 0.3).to(dtype)
        out[stem + ".alpha"] = torch.tensor((rank if alpha is None else alpha,))[0]
    return out


def lora_merged_weights(transformer, lora: dict) -> dict:
    """Reference semantics of a kohya LoRA on fused layers: ``W_fused += alpha / rank * B @ A``,
    returned per diffusers module as the rows of the fused delta (computed on the fused matrix)."""
    out = {}
    for key in lora:
        if not key.endswith(".lora_down.weight"):
            continue
        stem = key[: -len(".lora_down.weight")]
        a, b = lora[key].double(), lora[stem + ".lora_up.weight"].double()
        scale = float(lora[stem + ".alpha"]) / a.shape[0]
        delta = scale * b @ a
        kind, rest = stem[len("lora_unet_"):].split("_blocks_")
        idx, name = rest.split("_", 1)
        table, prefix = (_LORA_DOUBLE, f"transformer_blocks.{idx}.") if kind == "double" else (
            _LORA_SINGLE, f"single_transformer_blocks.{idx}.")
        modules = dict(transformer.named_modules())
        start = 0
        for n in table[name]:
            rows = modules[prefix + n].out_features
            out[prefix + n] = delta[start:start + rows]
            start += rows
    return out


def write(path, tensors: dict) -> str:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return str(path)
