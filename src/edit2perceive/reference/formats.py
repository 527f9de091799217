"""Key layouts of the authors' released checkpoints and their exact inverse to diffusers.

Two formats (see docs/released_models.md):

- **full**: the state dict of DiffSynth's ``FluxDiT``. Double blocks ``blocks.N.*`` fuse
  ``attn.to_q/k/v`` into ``attn.a_to_qkv`` and ``attn.add_q/k/v_proj`` into
  ``attn.b_to_qkv`` (rows concatenated in that order); single blocks
  ``single_blocks.N.to_qkv_mlp`` fuses ``attn.to_q, to_k, to_v, proj_mlp``. Everything else
  is a rename. The inverse is a rename plus row slices: exact, bit for bit.
- **lora**: kohya-style ``lora_unet_{double,single}_blocks_N_<layer>.{lora_down.weight,
  lora_up.weight,alpha}`` on DiffSynth's (fused) layers. A LoRA ``W + s * B @ A`` on a
  fused layer splits exactly: every part keeps ``A`` and takes its rows of ``B``.

A *piece* says where one diffusers tensor comes from: ``(target, source, rows)`` with
``rows = (start, stop)`` along dim 0 of the source, or ``None`` for the whole tensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: DiffSynth global names -> diffusers names (module prefixes; ``.weight`` / ``.bias`` follow).
GLOBAL_RENAMES = {
    "time_embedder.timestep_embedder.0": "time_text_embed.timestep_embedder.linear_1",
    "time_embedder.timestep_embedder.2": "time_text_embed.timestep_embedder.linear_2",
    "guidance_embedder.timestep_embedder.0": "time_text_embed.guidance_embedder.linear_1",
    "guidance_embedder.timestep_embedder.2": "time_text_embed.guidance_embedder.linear_2",
    "pooled_text_embedder.0": "time_text_embed.text_embedder.linear_1",
    "pooled_text_embedder.2": "time_text_embed.text_embedder.linear_2",
    "final_norm_out.linear": "norm_out.linear",
    "final_proj_out": "proj_out",
    "x_embedder": "x_embedder",
    "context_embedder": "context_embedder",
}
#: double block (``blocks.N.``) module names -> ``transformer_blocks.N.`` names; a tuple = fused rows.
DOUBLE_RENAMES = {
    "norm1_a.linear": "norm1.linear",
    "norm1_b.linear": "norm1_context.linear",
    "attn.a_to_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "attn.b_to_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "attn.a_to_out": "attn.to_out.0",
    "attn.b_to_out": "attn.to_add_out",
    "ff_a.0": "ff.net.0.proj",
    "ff_a.2": "ff.net.2",
    "ff_b.0": "ff_context.net.0.proj",
    "ff_b.2": "ff_context.net.2",
    "attn.norm_q_a": "attn.norm_q",
    "attn.norm_k_a": "attn.norm_k",
    "attn.norm_q_b": "attn.norm_added_q",
    "attn.norm_k_b": "attn.norm_added_k",
}
#: single block (``single_blocks.N.``) names -> ``single_transformer_blocks.N.`` names.
SINGLE_RENAMES = {
    "to_qkv_mlp": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
    "norm_q_a": "attn.norm_q",
    "norm_k_a": "attn.norm_k",
    "norm.linear": "norm.linear",
    "proj_out": "proj_out",
}
#: kohya LoRA layer names (``lora_unet_double_blocks_N_<name>``) -> DiffSynth module names.
LORA_DOUBLE_LAYERS = {
    "img_attn_qkv": "attn.a_to_qkv", "txt_attn_qkv": "attn.b_to_qkv",
    "img_attn_proj": "attn.a_to_out", "txt_attn_proj": "attn.b_to_out",
    "img_mlp_0": "ff_a.0", "img_mlp_2": "ff_a.2", "txt_mlp_0": "ff_b.0", "txt_mlp_2": "ff_b.2",
    "img_mod_lin": "norm1_a.linear", "txt_mod_lin": "norm1_b.linear",
}
#: ``lora_unet_single_blocks_N_<name>`` -> DiffSynth module names.
LORA_SINGLE_LAYERS = {"linear1": "to_qkv_mlp", "linear2": "proj_out", "modulation_lin": "norm.linear"}
LORA_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")

_BLOCK = re.compile(r"^(blocks|single_blocks)\.(\d+)\.(.+)\.(weight|bias)$")
_GLOBAL = re.compile(r"^(.+)\.(weight|bias)$")
_LORA = re.compile(r"^lora_unet_(double|single)_blocks_(\d+)_(.+?)(\.lora_down\.weight|\.lora_up\.weight|\.alpha)$")


class CheckpointFormatError(ValueError):
    """A reference checkpoint key or shape that does not fit the expected layout."""


@dataclass(frozen=True)
class Piece:
    """One target tensor: ``source[rows[0]:rows[1]]`` (or the whole source when ``rows`` is None)."""

    target: str
    source: str
    rows: tuple[int, int] | None = None


def detect_format(keys) -> str:
    """``"full"`` (DiffSynth FluxDiT state dict) or ``"lora"`` (kohya LoRA); error otherwise."""
    keys = list(keys)
    if not keys:
        raise CheckpointFormatError("the checkpoint holds no tensors")
    lora = [k for k in keys if k.startswith("lora_unet_")]
    if lora and len(lora) == len(keys):
        return "lora"
    if lora:
        other = next(k for k in keys if not k.startswith("lora_unet_"))
        raise CheckpointFormatError(f"mixes LoRA keys (lora_unet_...) with other keys, e.g. {other!r}")
    if any(k.startswith("pipe.dit.") for k in keys):
        raise CheckpointFormatError("keys carry the training prefix 'pipe.dit.': strip it first (as the authors did)")
    if not any(k.startswith("blocks.") or k.startswith("single_blocks.") for k in keys):
        raise CheckpointFormatError(
            f"neither a DiffSynth FluxDiT state dict (blocks.N..., single_blocks.N...) nor a kohya LoRA "
            f"(lora_unet_...); first key {sorted(keys)[0]!r}")
    return "full"


def _split_rows(total: int, sizes: list[int], key: str) -> list[tuple[int, int]]:
    if sum(sizes) != total or min(sizes) <= 0:
        raise CheckpointFormatError(f"{key}: {total} rows do not split into {sizes}")
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


def fused_sizes(kind: str, rows: int, in_features: int, key: str) -> list[int]:
    """Row sizes of a fused layer: ``qkv`` -> three equal parts; ``qkv_mlp`` -> q, k, v of
    ``in_features`` rows each (the model width) and the MLP the rest."""
    if kind == "qkv":
        if rows % 3:
            raise CheckpointFormatError(f"{key}: {rows} rows are not three equal q/k/v parts")
        return [rows // 3] * 3
    if rows <= 3 * in_features:
        raise CheckpointFormatError(f"{key}: {rows} rows leave no MLP part after q/k/v of {in_features} rows each")
    return [in_features] * 3 + [rows - 3 * in_features]


def transformer_pieces(shapes: dict[str, tuple[int, ...]]) -> list[Piece]:
    """The diffusers ``FluxTransformer2DModel`` tensors of a DiffSynth ``FluxDiT`` state dict.

    ``shapes`` maps every source key to its shape (read from the file header, no data).
    Unknown keys raise :class:`CheckpointFormatError` naming the key.
    """
    pieces: list[Piece] = []
    for key in sorted(shapes):
        m = _BLOCK.match(key)
        if m:
            kind, idx, module, suffix = m.groups()
            table, prefix = (DOUBLE_RENAMES, "transformer_blocks") if kind == "blocks" else (
                SINGLE_RENAMES, "single_transformer_blocks")
            if module not in table:
                raise CheckpointFormatError(f"unknown key {key!r}: {module!r} is not a {kind} module of FluxDiT")
            target = table[module]
            if isinstance(target, str):
                pieces.append(Piece(f"{prefix}.{idx}.{target}.{suffix}", key))
                continue
            weight_key = f"{kind}.{idx}.{module}.weight"
            if weight_key not in shapes:
                raise CheckpointFormatError(f"missing key {weight_key!r} (needed to split {key!r})")
            rows = shapes[key][0]
            sizes = fused_sizes("qkv" if len(target) == 3 else "qkv_mlp", rows, shapes[weight_key][1], key)
            for name, span in zip(target, _split_rows(rows, sizes, key)):
                pieces.append(Piece(f"{prefix}.{idx}.{name}.{suffix}", key, span))
            continue
        m = _GLOBAL.match(key)
        if m and m.group(1) in GLOBAL_RENAMES:
            pieces.append(Piece(f"{GLOBAL_RENAMES[m.group(1)]}.{m.group(2)}", key))
            continue
        raise CheckpointFormatError(f"unknown key {key!r}: not part of DiffSynth's FluxDiT")
    return pieces


def infer_transformer_config(shapes: dict[str, tuple[int, ...]], axes_dims_rope=None) -> dict:
    """``FluxTransformer2DModel`` config from a FluxDiT state dict's shapes.

    ``axes_dims_rope`` cannot be read from weights: FLUX's ``(16, 56, 56)`` is used for
    128-dim heads; pass it (e.g. from the base model's config) otherwise.
    """
    def need(key):
        if key not in shapes:
            raise CheckpointFormatError(f"missing key {key!r}")
        return shapes[key]

    inner, in_channels = need("x_embedder.weight")
    head_dim = need("blocks.0.attn.norm_q_a.weight")[0]
    double = {int(k.split(".")[1]) for k in shapes if k.startswith("blocks.")}
    single = {int(k.split(".")[1]) for k in shapes if k.startswith("single_blocks.")}
    for name, ids in (("blocks", double), ("single_blocks", single)):
        if ids != set(range(len(ids))):
            missing = sorted(set(range(max(ids) + 1)) - ids)
            raise CheckpointFormatError(f"{name}: block numbers are not contiguous (missing {missing})")
    if axes_dims_rope is None:
        if head_dim != 128:
            raise CheckpointFormatError(f"head dim {head_dim}: give axes_dims_rope (FLUX's (16, 56, 56) needs 128)")
        axes_dims_rope = (16, 56, 56)
    out_channels = need("final_proj_out.weight")[0]
    return {
        "patch_size": 1,
        "in_channels": int(in_channels),
        "out_channels": None if out_channels == in_channels else int(out_channels),
        "num_layers": len(double),
        "num_single_layers": len(single),
        "attention_head_dim": int(head_dim),
        "num_attention_heads": int(inner // head_dim),
        "joint_attention_dim": int(need("context_embedder.weight")[1]),
        "pooled_projection_dim": int(need("pooled_text_embedder.0.weight")[1]),
        "guidance_embeds": "guidance_embedder.timestep_embedder.0.weight" in shapes,
        "axes_dims_rope": tuple(int(a) for a in axes_dims_rope),
    }


def check_pieces(pieces: list[Piece], source_shapes: dict, expected: dict[str, tuple[int, ...]]) -> None:
    """Every expected diffusers tensor comes from exactly one piece of the right shape."""
    produced: dict[str, tuple[int, ...]] = {}
    for p in pieces:
        shape = tuple(source_shapes[p.source])
        if p.rows is not None:
            shape = (p.rows[1] - p.rows[0], *shape[1:])
        if p.target not in expected:
            raise CheckpointFormatError(f"key {p.source!r} maps to {p.target!r}, which the model does not have")
        if shape != tuple(expected[p.target]):
            raise CheckpointFormatError(
                f"key {p.source!r}: gives {p.target!r} of shape {shape}, the model expects {tuple(expected[p.target])}")
        produced[p.target] = shape
    missing = sorted(set(expected) - set(produced))
    if missing:
        raise CheckpointFormatError(f"the checkpoint misses {len(missing)} tensors of the model, e.g. {missing[:3]}")


@dataclass(frozen=True)
class LoraLayer:
    """One kohya LoRA layer: its key stem, the diffusers modules it covers (in row order)
    and whether it is fused (``"qkv"``, ``"qkv_mlp"``) or plain (``None``)."""

    stem: str
    modules: tuple[str, ...]
    fused: str | None


def lora_layers(keys) -> list[LoraLayer]:
    """Parse kohya LoRA keys; every layer must have ``lora_down``, ``lora_up`` and ``alpha``."""
    found: dict[str, set] = {}
    layers: dict[str, LoraLayer] = {}
    for key in keys:
        m = _LORA.match(key)
        if not m:
            raise CheckpointFormatError(f"unknown LoRA key {key!r} (expected lora_unet_<double|single>_blocks_N_"
                                        "<layer>.lora_down.weight / .lora_up.weight / .alpha)")
        kind, idx, name, suffix = m.groups()
        table = LORA_DOUBLE_LAYERS if kind == "double" else LORA_SINGLE_LAYERS
        if name not in table:
            raise CheckpointFormatError(f"unknown LoRA key {key!r}: {name!r} is not a {kind}-block layer")
        stem = key[: -len(suffix)]
        found.setdefault(stem, set()).add(suffix)
        module = table[name]
        if kind == "double":
            prefix = f"transformer_blocks.{idx}."
            target = DOUBLE_RENAMES[module]
        else:
            prefix = f"single_transformer_blocks.{idx}."
            target = SINGLE_RENAMES[module]
        names = (target,) if isinstance(target, str) else target
        fused = None if isinstance(target, str) else ("qkv" if len(target) == 3 else "qkv_mlp")
        layers[stem] = LoraLayer(stem, tuple(prefix + n for n in names), fused)
    for stem, suffixes in found.items():
        missing = [s for s in LORA_SUFFIXES if s not in suffixes]
        if missing:
            raise CheckpointFormatError(f"missing key {stem + missing[0]!r}")
    return [layers[s] for s in sorted(layers)]
