"""Prompt encoding and the prompt-embedding cache file."""

import pytest
import torch

from edit2perceive.prompts import PromptEmbeddings, encode_prompt


def test_encode_matches_flux_kontext_pipeline(tiny_components):
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline(**tiny_components)
    text = "Transform to normal map while maintaining original composition"
    ref_embeds, ref_pooled, _ = pipe.encode_prompt(prompt=text, prompt_2=None, device="cpu")
    keys = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    ours = encode_prompt(text, **{k: tiny_components[k] for k in keys})
    assert ours.prompt_embeds.shape == (1, 512, 32) and ours.pooled_prompt_embeds.shape == (1, 32)
    torch.testing.assert_close(ours.prompt_embeds, ref_embeds, atol=1e-5, rtol=1e-5)  # grad vs no-grad kernels differ in the last bits
    torch.testing.assert_close(ours.pooled_prompt_embeds, ref_pooled, atol=1e-5, rtol=1e-5)  # grad vs no-grad kernels differ in the last bits


def test_cache_roundtrip_and_corrupt_file(tmp_path):
    emb = PromptEmbeddings("a prompt", torch.randn(1, 7, 4), torch.randn(1, 3))
    path = tmp_path / "prompt_embeds.safetensors"
    emb.save(path)
    back = PromptEmbeddings.load(path)
    assert back.prompt == "a prompt"
    assert torch.equal(back.prompt_embeds, emb.prompt_embeds)
    assert torch.equal(back.pooled_prompt_embeds, emb.pooled_prompt_embeds)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="prompt_embeds.safetensors"):
        PromptEmbeddings.load(path)
