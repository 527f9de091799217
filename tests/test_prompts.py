"""Prompt encoding and the prompt-embedding cache component."""

import json

import pytest
import torch

from edit2perceive.core.prompts import PromptCache, encode_prompt


def test_encode_matches_flux_kontext_pipeline(tiny_components):
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline(**tiny_components)
    text = "Transform to normal map while maintaining original composition"
    ref_embeds, ref_pooled, _ = pipe.encode_prompt(prompt=text, prompt_2=None, device="cpu")
    keys = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    ours = encode_prompt(text, **{k: tiny_components[k] for k in keys})
    assert ours.prompt == text
    assert ours.prompt_embeds.shape == (1, 512, 32) and ours.pooled_prompt_embeds.shape == (1, 32)
    # grad vs no-grad attention kernels differ in the last bits
    torch.testing.assert_close(ours.prompt_embeds, ref_embeds, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.pooled_prompt_embeds, ref_pooled, atol=1e-5, rtol=1e-5)


def test_cache_save_load_roundtrip(tmp_path):
    cache = PromptCache.from_tensors("a prompt", torch.randn(1, 7, 4), torch.randn(1, 3))
    cache.save_pretrained(tmp_path / "prompt_cache")
    assert json.loads((tmp_path / "prompt_cache" / "config.json").read_text())["prompt"] == "a prompt"
    back = PromptCache.from_pretrained(tmp_path / "prompt_cache")
    assert back.prompt == "a prompt"
    assert torch.equal(back.prompt_embeds, cache.prompt_embeds)
    assert torch.equal(back.pooled_prompt_embeds, cache.pooled_prompt_embeds)
    assert not back.prompt_embeds.requires_grad
    half = PromptCache.from_pretrained(tmp_path / "prompt_cache", torch_dtype=torch.bfloat16)
    assert half.prompt_embeds.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="1 x L x D"):
        PromptCache.from_tensors("x", torch.randn(7, 4), torch.randn(1, 3))
