"""Kontext token plumbing, checked against hand-computed layouts and diffusers' FluxKontextPipeline."""

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive import flow, modeling
from edit2perceive.core.prompts import PromptCache, encode_prompt
from edit2perceive.tasks import get_task

H, W = 64, 96  # pixels; latents 8 x 12, 24 target tokens


def test_pack_layout_by_hand():
    lat = torch.arange(2 * 2 * 4, dtype=torch.float32).view(1, 2, 2, 4)  # C=2, h=2, w=4
    tokens = modeling.pack_latents(lat)
    assert tokens.shape == (1, 2, 8)
    # token 0 = patch rows 0-1, cols 0-1; channel-major, then (dy, dx)
    c0, c1 = lat[0, 0], lat[0, 1]
    expected0 = [c0[0, 0], c0[0, 1], c0[1, 0], c0[1, 1], c1[0, 0], c1[0, 1], c1[1, 0], c1[1, 1]]
    assert tokens[0, 0].tolist() == [v.item() for v in expected0]
    assert tokens[0, 1, 0].item() == c0[0, 2].item()
    assert torch.equal(modeling.unpack_latents(tokens, 2, 4), lat)
    with pytest.raises(ValueError, match="even"):
        modeling.pack_latents(torch.zeros(1, 2, 3, 4))


def test_pack_roundtrip_random():
    lat = torch.randn(3, 16, 10, 6)
    assert torch.equal(modeling.unpack_latents(modeling.pack_latents(lat), 10, 6), lat)


def test_position_ids_by_hand():
    ids = modeling.latent_position_ids(4, 6, index=2)
    assert ids.shape == (6, 3)
    assert ids.tolist() == [[2, 0, 0], [2, 0, 1], [2, 0, 2], [2, 1, 0], [2, 1, 1], [2, 1, 2]]


def test_rgb_to_model_input():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 128)
    x = modeling.rgb_to_model_input(rgb)
    assert x.shape == (1, 3, 2, 3)
    assert x[0, :, 0, 0].tolist() == pytest.approx([1.0, -1.0, 128 / 255 * 2 - 1], abs=1e-7)
    assert x[0, :, 1, 1].tolist() == [-1.0, -1.0, -1.0]
    with pytest.raises(TypeError, match="uint8"):
        modeling.rgb_to_model_input(rgb.astype(np.float32))


def _rgb(seed=0):
    return (np.random.default_rng(seed).random((H, W, 3)) * 255).astype(np.uint8)


def _prompt(components, text):
    keys = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    return encode_prompt(text, **{k: components[k] for k in keys})


def _our_one_step(components, rgb, prompt: PromptCache, noise, contexts_extra=()):
    with torch.no_grad():
        ctx = modeling.encode_image(components["vae"], modeling.rgb_to_model_input(rgb))
        v = modeling.predict_velocity(
            components["transformer"], noise, 1.0, [ctx, *contexts_extra], prompt.prompt_embeds, prompt.pooled_prompt_embeds
        )
    return flow.one_step_estimate(noise, v, 1.0)


def test_one_step_latent_equals_flux_kontext_pipeline(tiny_components):
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline(**tiny_components)
    pipe.set_progress_bar_config(disable=True)
    rgb = _rgb()
    text = get_task("depth").prompt
    noise = flow.base_noise((16, H // 8, W // 8), seed=3, batch_size=1)
    ref_tokens = pipe(
        image=Image.fromarray(rgb),
        prompt=text,
        height=H,
        width=W,
        num_inference_steps=1,
        guidance_scale=1.0,
        latents=modeling.pack_latents(noise),
        output_type="latent",
        _auto_resize=False,
        max_area=H * W,
    ).images
    ref = modeling.unpack_latents(ref_tokens, H // 8, W // 8)
    prompt = _prompt(tiny_components, text)
    ours = _our_one_step(tiny_components, rgb, prompt, noise)
    assert ref.abs().max() > 0.5  # a real, non-trivial latent
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # the check is sensitive: another prompt or another image changes the latent
    other = _our_one_step(tiny_components, rgb, _prompt(tiny_components, get_task("normal").prompt), noise)
    assert (other - ref).abs().max() > 1e-3
    other = _our_one_step(tiny_components, _rgb(1), prompt, noise)
    assert (other - ref).abs().max() > 1e-3


def test_transformer_receives_kontext_ids_sigma_and_guidance(tiny_components):
    seen = {}

    def hook(module, args, kwargs):
        seen.update(kwargs)

    transformer = tiny_components["transformer"]
    handle = transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        prompt = _prompt(tiny_components, get_task("matting").prompt)
        noise = flow.base_noise((16, 8, 12), seed=0, batch_size=2)
        ctx1 = torch.randn(2, 16, 8, 12)
        ctx2 = torch.randn(2, 16, 8, 12)
        with torch.no_grad():
            v = modeling.predict_velocity(
                transformer, noise, torch.tensor([1.0, 0.5]), [ctx1, ctx2],
                prompt.prompt_embeds, prompt.pooled_prompt_embeds,
            )
    finally:
        handle.remove()
    assert v.shape == noise.shape
    ids = seen["img_ids"]
    assert ids.shape == (3 * 24, 3)
    assert set(ids[:24, 0].tolist()) == {0.0} and set(ids[24:48, 0].tolist()) == {1.0}
    assert set(ids[48:, 0].tolist()) == {2.0}
    assert seen["hidden_states"].shape == (2, 72, 64)
    assert seen["timestep"].tolist() == [1.0, 0.5]
    assert seen["guidance"].tolist() == [1.0, 1.0]
    assert torch.equal(seen["txt_ids"], torch.zeros(prompt.prompt_embeds.shape[1], 3))


def test_second_context_index_changes_prediction(tiny_components):
    """The point map is a separate image (index 2): moving it to index 1 changes the output."""
    transformer = tiny_components["transformer"]
    prompt = _prompt(tiny_components, get_task("matting").prompt)
    noise = flow.base_noise((16, 8, 12), seed=0, batch_size=1)
    ctx1, ctx2 = torch.randn(1, 16, 8, 12), torch.randn(1, 16, 8, 12)
    args = (prompt.prompt_embeds, prompt.pooled_prompt_embeds)
    with torch.no_grad():
        with_points = modeling.predict_velocity(transformer, noise, 1.0, [ctx1, ctx2], *args)
        without = modeling.predict_velocity(transformer, noise, 1.0, [ctx1], *args)
    assert (with_points - without).abs().max() > 1e-4


def test_vae_encode_is_posterior_mean_and_decode_inverts_scaling(tiny_components):
    vae = tiny_components["vae"]
    x = modeling.rgb_to_model_input(_rgb())
    lat = modeling.encode_image(vae, x)
    assert lat.shape == (1, 16, H // 8, W // 8)
    assert torch.equal(lat, modeling.encode_image(vae, x))  # no sampling
    with torch.no_grad():
        mean = vae.encode(x).latent_dist.mean
        expected = (mean - 0.1159) * 0.3611  # FLUX shift / scale factors
        torch.testing.assert_close(lat, expected)
        torch.testing.assert_close(modeling.decode_latents(vae, lat), vae.decode(mean).sample)


def test_decode_is_differentiable(tiny_components):
    lat = torch.randn(1, 16, 4, 4, requires_grad=True)
    modeling.decode_latents(tiny_components["vae"], lat).mean().backward()
    assert lat.grad is not None and torch.isfinite(lat.grad).all() and lat.grad.abs().sum() > 0
