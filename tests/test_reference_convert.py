"""Released-checkpoint conversion: exact round trips, validation, streaming shards, LoRA split."""

import copy
import json

import pytest
import torch
from reference_fixtures import diffsynth_state_dict, lora_merged_weights, random_kohya_lora, write
from safetensors.torch import load_file

from edit2perceive.reference import (
    CheckpointFormatError,
    checkpoint_format,
    convert_reference_lora,
    load_reference_lora,
    load_reference_transformer,
    save_reference_lora,
    save_reference_transformer,
)
from edit2perceive.reference.formats import lora_layers, transformer_pieces


@pytest.fixture(scope="module")
def transformer(tiny_components):
    return tiny_components["transformer"]


@pytest.fixture(scope="module")
def full_file(transformer, tmp_path_factory):
    return write(tmp_path_factory.mktemp("ref") / "depth.safetensors", diffsynth_state_dict(transformer.state_dict()))


def test_full_round_trip_is_bit_exact(transformer, full_file):
    assert checkpoint_format(full_file) == "full"
    loaded = load_reference_transformer(full_file, config=dict(transformer.config))
    want, got = transformer.state_dict(), loaded.state_dict()
    assert set(want) == set(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert loaded.config.num_layers == 1 and loaded.config.num_single_layers == 1


def test_full_bf16_round_trip_keeps_dtype_and_bits(transformer, tmp_path):
    sd = {k: v.to(torch.bfloat16) for k, v in transformer.state_dict().items()}
    path = write(tmp_path / "normal.safetensors", diffsynth_state_dict(sd))
    loaded = load_reference_transformer(path, config=dict(transformer.config))
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.bfloat16 and torch.equal(value, sd[key]), key


def test_inferred_config_matches_the_model(transformer, full_file):
    cfg = dict(transformer.config)
    loaded = load_reference_transformer(full_file, config=None) if cfg["attention_head_dim"] == 128 else None
    assert loaded is None  # tiny heads are 16-dim: the rope axes cannot be inferred ...
    with pytest.raises(CheckpointFormatError, match="axes_dims_rope"):
        load_reference_transformer(full_file)
    from edit2perceive.reference.convert import transformer_plan

    inferred, _ = transformer_plan(full_file, axes_dims_rope=cfg["axes_dims_rope"])  # ... given them, the rest is
    for key in ("num_layers", "num_single_layers", "attention_head_dim", "num_attention_heads", "in_channels",
                "joint_attention_dim", "pooled_projection_dim", "guidance_embeds"):
        assert inferred[key] == cfg[key], key


def _with_nan(sd, key):
    """Two NaN in a copy of ``sd[key]`` (the tensors share the session's tiny model's storage)."""
    t = sd[key].clone()
    t.view(-1)[3:5] = float("nan")
    sd[key] = t


def _break(transformer, tmp_path, change):
    sd = diffsynth_state_dict(transformer.state_dict())
    change(sd)
    return write(tmp_path / "bad.safetensors", sd)


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.__setitem__("blocks.0.attn.extra.weight", torch.zeros(2)), "blocks.0.attn.extra.weight"),
    (lambda sd: sd.__setitem__("coord_proj.weight", torch.zeros(2)), "coord_proj.weight"),
    (lambda sd: sd.pop("single_blocks.0.norm_k_a.weight"), "misses"),
    (lambda sd: sd.__setitem__("blocks.0.ff_a.0.weight", torch.zeros(127, 32)), "blocks.0.ff_a.0.weight"),
    (lambda sd: sd.__setitem__("blocks.0.attn.a_to_qkv.weight", torch.zeros(95, 32)), "a_to_qkv"),
    (lambda sd: sd.__setitem__("blocks.0.ff_a.0.weight", sd["blocks.0.ff_a.0.weight"] > 0), "is BOOL, not floating"),
    (lambda sd: sd.__setitem__("blocks.0.ff_a.0.weight", sd["blocks.0.ff_a.0.weight"].to(torch.int8)), "is I8"),
    (lambda sd: _with_nan(sd, "blocks.0.ff_a.0.weight"), "blocks.0.ff_a.0.weight holds 2 non-finite values"),
])
def test_full_refuses_unknown_missing_or_misshaped_keys(transformer, tmp_path, change, message):
    path = _break(transformer, tmp_path, change)
    with pytest.raises(CheckpointFormatError, match=message.replace(".", r"\.")):
        load_reference_transformer(path, config=dict(transformer.config))


def test_refuses_non_safetensors_and_mixed_files(tmp_path, transformer):
    pickled = tmp_path / "depth.bin"
    pickled.write_bytes(b"not read")
    with pytest.raises(CheckpointFormatError, match="safetensors"):
        checkpoint_format(str(pickled))
    mixed = diffsynth_state_dict(transformer.state_dict())
    mixed["lora_unet_single_blocks_0_linear2.alpha"] = torch.tensor(4.0)
    with pytest.raises(CheckpointFormatError, match="mixes"):
        checkpoint_format(write(tmp_path / "mixed.safetensors", mixed))
    with pytest.raises(CheckpointFormatError, match="pipe.dit."):
        checkpoint_format(write(tmp_path / "prefixed.safetensors", {"pipe.dit.blocks.0.x.weight": torch.zeros(1)}))


def test_sharded_streaming_save_loads_with_diffusers(transformer, full_file, tmp_path):
    from diffusers import FluxTransformer2DModel

    folder = save_reference_transformer(full_file, tmp_path / "transformer", config=dict(transformer.config),
                                        max_shard_bytes=40_000, progress=False)
    index = json.loads((folder / "diffusion_pytorch_model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3 and all((folder / s).stat().st_size < 40_000 + 200_000 for s in shards)
    loaded = FluxTransformer2DModel.from_pretrained(folder)
    for key, value in transformer.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_single_block_split_uses_the_model_width():
    shapes = {"single_blocks.0.to_qkv_mlp.weight": (7 * 8, 8), "single_blocks.0.to_qkv_mlp.bias": (56,)}
    pieces = {p.target: p.rows for p in transformer_pieces(shapes)}
    assert pieces["single_transformer_blocks.0.attn.to_q.weight"] == (0, 8)
    assert pieces["single_transformer_blocks.0.attn.to_v.bias"] == (16, 24)
    assert pieces["single_transformer_blocks.0.proj_mlp.weight"] == (24, 56)


# -- LoRA -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora(transformer):
    return random_kohya_lora(transformer, rank=4, alpha=8.0)


@pytest.fixture(scope="module")
def lora_file(lora, tmp_path_factory):
    return write(tmp_path_factory.mktemp("ref") / "depth_lora.safetensors", lora)


def test_lora_split_is_exact(transformer, lora, lora_file):
    assert checkpoint_format(lora_file) == "lora"
    state, config = convert_reference_lora(lora_file, transformer=transformer)
    assert config["r"] == 4 and config["lora_alpha"] == 8.0 and not config["rank_pattern"]
    up = lora["lora_unet_single_blocks_0_linear1.lora_up.weight"]
    down = lora["lora_unet_single_blocks_0_linear1.lora_down.weight"]
    p = "single_transformer_blocks.0."
    assert torch.equal(torch.cat([state[p + n + ".lora_B.weight"] for n in ("attn.to_q", "attn.to_k", "attn.to_v",
                                                                           "proj_mlp")]), up)
    for n in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"):
        assert torch.equal(state[p + n + ".lora_A.weight"], down)
    assert len(state) == 2 * (3 + 3 + 1 * 8 + 4 + 2)  # double: 2x3 split + 8 plain; single: 4 split + 2 plain


def test_lora_adapter_equals_the_reference_merge(transformer, lora, lora_file):
    """peft adapter (our split) fused == the fused-layer update alpha/rank * B @ A of the reference."""
    adapted = load_reference_lora(copy.deepcopy(transformer), lora_file)
    adapted.fuse_lora()
    merged = copy.deepcopy(transformer)
    modules = dict(merged.named_modules())
    with torch.no_grad():
        for name, delta in lora_merged_weights(transformer, lora).items():
            modules[name].weight += delta.float()
    got = {k.replace(".base_layer", ""): v for k, v in adapted.state_dict().items() if "lora_" not in k}
    for key, value in merged.state_dict().items():
        torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-5)


def test_saved_adapter_reloads_with_its_alpha(transformer, lora_file, tmp_path):
    folder = save_reference_lora(lora_file, tmp_path / "transformer_lora")
    state = load_file(folder / "pytorch_lora_weights.safetensors")
    base = copy.deepcopy(transformer)
    base.load_lora_adapter(str(folder), adapter_name="default", use_safetensors=True, prefix=None)
    assert base.peft_config["default"].lora_alpha == 8.0 and base.peft_config["default"].r == 4
    live = {k.replace(".default", ""): v for k, v in base.state_dict().items() if "lora_" in k}
    assert set(live) == set(state) and all(torch.equal(live[k], state[k]) for k in state)


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("lora_unet_double_blocks_0_img_mlp_0.alpha"), "img_mlp_0.alpha"),
    (lambda sd: sd.__setitem__("lora_unet_double_blocks_0_img_foo.alpha", torch.tensor(4)), "img_foo"),
    (lambda sd: sd.__setitem__("lora_unet_single_blocks_0_linear2.lora_up.weight", torch.zeros(32, 3)), "linear2"),
])
def test_lora_refuses_bad_keys(transformer, lora, tmp_path, change, message):
    sd = dict(lora)
    change(sd)
    with pytest.raises(CheckpointFormatError, match=message):
        convert_reference_lora(write(tmp_path / "bad_lora.safetensors", sd), transformer=transformer)


def test_lora_checked_against_the_base_layers(lora_file, tiny_components):
    from diffusers import FluxTransformer2DModel

    from edit2perceive.testing import tiny_transformer_config

    wider = FluxTransformer2DModel(**{**tiny_transformer_config(), "attention_head_dim": 8})
    with pytest.raises(CheckpointFormatError, match="needs out x in"):
        convert_reference_lora(lora_file, transformer=wider)


def test_lora_split_equals_diffusers_kohya_conversion():
    """A second implementation: diffusers' own kohya Flux LoRA conversion, at the real model's
    widths (it hard-codes 3072 / 12288), on one double and one single block."""
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers

    g = torch.Generator().manual_seed(0)
    r, d = 2, 3072
    rows = {"img_attn_qkv": 3 * d, "txt_attn_qkv": 3 * d, "img_attn_proj": d, "txt_attn_proj": d,
            "img_mlp_0": 4 * d, "img_mlp_2": d, "txt_mlp_0": 4 * d, "txt_mlp_2": d, "img_mod_lin": 6 * d,
            "txt_mod_lin": 6 * d}
    cols = {"img_mlp_2": 4 * d, "txt_mlp_2": 4 * d}
    sd = {}
    for name, n in rows.items():
        stem = f"lora_unet_double_blocks_0_{name}"
        sd[stem + ".lora_down.weight"] = torch.randn(r, cols.get(name, d), generator=g)
        sd[stem + ".lora_up.weight"] = torch.randn(n, r, generator=g)
        sd[stem + ".alpha"] = torch.tensor((r,))[0]
    for name, n, c in (("linear1", 7 * d, d), ("linear2", d, 5 * d), ("modulation_lin", 3 * d, d)):
        stem = f"lora_unet_single_blocks_0_{name}"
        sd[stem + ".lora_down.weight"] = torch.randn(r, c, generator=g)
        sd[stem + ".lora_up.weight"] = torch.randn(n, r, generator=g)
        sd[stem + ".alpha"] = torch.tensor((r,))[0]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ours, _ = convert_reference_lora(write(f"{tmp}/x_lora.safetensors", sd))
    theirs = _convert_kohya_flux_lora_to_diffusers({k: v.clone() for k, v in sd.items()})
    theirs = {k.removeprefix("transformer."): v for k, v in theirs.items()}
    assert set(ours) == set(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_lora_layer_parsing_names_targets():
    layers = {layer.stem: layer for layer in lora_layers([
        "lora_unet_double_blocks_3_txt_attn_qkv.lora_down.weight", "lora_unet_double_blocks_3_txt_attn_qkv.lora_up.weight",
        "lora_unet_double_blocks_3_txt_attn_qkv.alpha"])}
    layer = layers["lora_unet_double_blocks_3_txt_attn_qkv"]
    assert layer.fused == "qkv" and layer.modules == (
        "transformer_blocks.3.attn.add_q_proj", "transformer_blocks.3.attn.add_k_proj",
        "transformer_blocks.3.attn.add_v_proj")


def test_loaded_weights_can_be_changed_without_touching_the_file(transformer, full_file):
    """The loaded tensors share pages with the mmap'd file: writes must stay private."""
    loaded = load_reference_transformer(full_file, config=dict(transformer.config))
    weight = loaded.single_transformer_blocks[0].proj_mlp.weight  # a row slice of the fused to_qkv_mlp
    with torch.no_grad():
        weight.add_(1.0)
    again = load_reference_transformer(full_file, config=dict(transformer.config))
    assert torch.equal(again.single_transformer_blocks[0].proj_mlp.weight,
                       transformer.single_transformer_blocks[0].proj_mlp.weight)
