"""Tiny offline Kontext components and the full-size FLUX.1 Kontext-dev config."""

import torch

from edit2perceive.testing import (
    FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG,
    tiny_clip_tokenizer,
    tiny_kontext_components,
    tiny_t5_tokenizer,
)


def test_components_have_kontext_keys_and_shapes(tiny_components):
    c = tiny_components
    assert set(c) == {"transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler"}
    assert c["vae"].config.latent_channels == 16
    assert c["transformer"].config.in_channels == 4 * c["vae"].config.latent_channels
    assert c["transformer"].config.guidance_embeds
    assert c["transformer"].config.joint_attention_dim == c["text_encoder_2"].config.d_model
    assert c["transformer"].config.pooled_projection_dim == c["text_encoder"].config.hidden_size
    with torch.no_grad():  # 8x downsampling
        lat = c["vae"].encode(torch.zeros(1, 3, 64, 96)).latent_dist.mode()
    assert lat.shape == (1, 16, 8, 12)
    n_params = sum(p.numel() for m in ("transformer", "vae", "text_encoder", "text_encoder_2") for p in c[m].parameters())
    assert n_params < 2_000_000  # a few MB


def test_components_deterministic_by_seed():
    a, b, c = (tiny_kontext_components(seed=s)["transformer"].state_dict() for s in (5, 5, 6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_tokenizers_work_offline_and_pad_like_flux():
    clip, t5 = tiny_clip_tokenizer(), tiny_t5_tokenizer()
    prompt = "Transform to depth map while maintaining original composition"
    ids = clip(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == clip.bos_token_id and ids[-1] == clip.eos_token_id
    text_ids = ids[1 : ids.index(clip.eos_token_id)]  # CLIP's unk is its eos, as in the real vocab
    # one byte symbol per character; spaces become the end-of-word marker of the symbol before
    assert len(text_ids) == len(prompt.replace(" ", "")) and all(i < 512 for i in text_ids)
    t5_ids = t5(prompt, padding="max_length", max_length=512, truncation=True).input_ids
    assert len(t5_ids) == 512
    pieces = t5.convert_ids_to_tokens(t5_ids[:9])
    assert pieces == ["\u2581" + w for w in prompt.split()] + ["</s>"]
    # text the vocabulary has no word for still tokenizes (character fall-back)
    assert t5.unk_token_id not in t5("zebra 42").input_ids


def test_full_size_kontext_config_builds_the_12b_architecture():
    from diffusers import FluxTransformer2DModel

    cfg = FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG
    assert (cfg["num_layers"], cfg["num_single_layers"]) == (19, 38)
    assert (cfg["num_attention_heads"], cfg["attention_head_dim"]) == (24, 128)
    assert sum(cfg["axes_dims_rope"]) == cfg["attention_head_dim"]
    with torch.device("meta"):  # no memory: shapes only
        model = FluxTransformer2DModel(**cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 11.8e9 < n < 12.0e9, n  # FLUX.1 Kontext-dev: 11.9B
    assert model.config.joint_attention_dim == 4096 and model.config.pooled_projection_dim == 768
