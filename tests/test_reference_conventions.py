"""The reference conventions as pipeline options, each against the reference's own arithmetic
written out here independently (pipelines/flux_image_new.py, models/flowmatch_scheduler.py,
utils BasePipeline.generate_noise, models/unified_dataset.py gen_points)."""

import math
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive import Edit2PerceivePipeline, flow
from edit2perceive.io.images import load_rgb_inputs
from edit2perceive.pipelines import Conventions
from edit2perceive.reference import REFERENCE_CONVENTIONS
from edit2perceive.tasks.matting import point_map_image, render_reference_point_map


def reference_last_sigma() -> float:
    """FlowMatchScheduler(shift=3, sigma_min=0.003/1.002).set_timesteps(1000, training=True), then
    getsigmas(1000 - timesteps[0]): the sigma the single-step update uses."""
    sigmas = torch.linspace(1.0, 0.003 / 1.002, 1000)
    sigmas = 3.0 * sigmas / (1 + (3.0 - 1) * sigmas)
    timesteps = sigmas * 1000
    t = 1000 - timesteps[0]
    return float(sigmas[torch.argmin((timesteps - t).abs())])


def image(h=50, w=70, seed=0):
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def ref_matting(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting", **REFERENCE_CONVENTIONS)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffsynth_time_projection(timesteps, dim=256):
    """models/flux_dit.py get_timestep_embedding_sd3(t, 256, flip_sin_to_cos=True,
    downscale_freq_shift=0, align_dtype_to_timestep=True) with a bf16 timestep, written out."""
    t = timesteps.to(torch.bfloat16)
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(0, half, dtype=torch.float32) / (half - 0)
    freqs = torch.exp(exponent).to(t.dtype)
    e = t[:, None].float() * freqs[None, :]
    e = torch.cat([torch.sin(e), torch.cos(e)], dim=-1)
    return torch.cat([e[:, half:], e[:, :half]], dim=-1)


def test_reference_timestep_embedding(tiny_components):
    from edit2perceive import modeling

    t = tiny_components["transformer"]
    emb = t.time_text_embed
    step, guide, pooled = torch.tensor([1000.0]), torch.tensor([1000.0]), torch.randn(1, 32)
    with torch.no_grad():
        plain = emb(step, guide, pooled)
        with modeling.reference_timestep_embedding(t):
            ref = emb(step, guide, pooled)
        again = emb(step, guide, pooled)  # the hooks are gone afterwards
        want = (emb.timestep_embedder(diffsynth_time_projection(step)) + emb.guidance_embedder(emb.time_proj(guide))
                + emb.text_embedder(pooled))
    torch.testing.assert_close(ref, want, atol=1e-6, rtol=1e-6)
    assert torch.equal(plain, again) and (plain - ref).abs().max() > 1e-3
    # the frequencies really differ: 28 % of the projection's norm at t = 1000
    d = diffsynth_time_projection(step) - emb.time_proj(step)
    assert 0.2 < float(d.norm() / emb.time_proj(step).norm()) < 0.35


def test_single_step_factor_is_the_references():
    last = reference_last_sigma()
    assert abs(flow.reference_single_step_sigma() - last) < 1e-6
    assert abs((1 - last) - 0.99107) < 1e-5  # the factor on v: about 0.9911
    assert REFERENCE_CONVENTIONS["conventions"]["single_step_final_sigma"] == flow.reference_single_step_sigma()


def test_reference_noise_is_one_seeded_draw_per_batch(ref_matting, tiny_components):
    got = ref_matting.prepare_noise(2, (16, 4, 6))
    want = torch.randn((2, 16, 4, 6), generator=torch.Generator("cpu").manual_seed(42), device="cpu",
                       dtype=torch.float32)
    assert torch.equal(got, want)
    ours = Edit2PerceivePipeline(**tiny_components, task="matting").prepare_noise(2, (16, 4, 6))
    assert torch.equal(ours[0], ours[1]) and not torch.equal(got[0], got[1])  # ours: same noise per sample


def _pack(x):  # B x C x h x w -> B x (h/2 w/2) x 4C, written out
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w // 4, 4 * c)


def _ids(h, w, index):
    r, c = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2), indexing="ij")
    return torch.stack([torch.full_like(r, index), r, c], -1).reshape(-1, 3).float()


def test_matting_step_matches_reference_arithmetic(ref_matting, tiny_components):
    """Target ids index 0, RGB and point map both index 1; noise from seed 42; z = eps + (s_last - 1) v."""
    img, points = image(), [(20.0, 30.0), (50.0, 10.0)]
    out = ref_matting(img, points=[points], processing_resolution=64, output_type="pt")
    assert out.latent.shape == (1, 16, 8, 8)  # 50 x 70 stretched to 64 x 64
    contexts = ref_matting.prepare_contexts(load_rgb_inputs(img), [np.array(points)], (64, 64))
    eps = torch.randn((1, 16, 8, 8), generator=torch.Generator("cpu").manual_seed(42))
    cache = ref_matting.prompt_cache
    t = tiny_components["transformer"]
    emb = t.time_text_embed

    def diffsynth_conditioning(timestep, guidance, pooled):  # timestep sinusoid with bf16 frequencies
        return (emb.timestep_embedder(diffsynth_time_projection(timestep).to(pooled.dtype))
                + emb.guidance_embedder(emb.time_proj(guidance).to(pooled.dtype)) + emb.text_embedder(pooled))

    with torch.no_grad(), mock.patch.object(emb, "forward", diffsynth_conditioning):
        v = t(hidden_states=torch.cat([_pack(eps), _pack(contexts[0]), _pack(contexts[1])], 1),
              timestep=torch.tensor([1.0]), guidance=torch.tensor([1.0]),
              pooled_projections=cache.pooled_prompt_embeds, encoder_hidden_states=cache.prompt_embeds,
              txt_ids=torch.zeros(cache.prompt_embeds.shape[1], 3),
              img_ids=torch.cat([_ids(8, 8, 0), _ids(8, 8, 1), _ids(8, 8, 1)]), return_dict=False)[0][:, :16]
    v = v.reshape(1, 4, 4, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 16, 8, 8)
    want = eps + (reference_last_sigma() - 1.0) * v
    torch.testing.assert_close(out.latent, want, atol=2e-5, rtol=1e-5)
    # each convention matters: index 2 or the exact step give different latents
    for change in ({"point_map_position_index": 2}, {"single_step_final_sigma": 0.0},
                   {"timestep_embedding": "diffusers"}):
        other = Edit2PerceivePipeline(**tiny_components, task="matting", **{**REFERENCE_CONVENTIONS, **change})
        other.set_progress_bar_config(disable=True)
        lat = other(img, points=[points], processing_resolution=64, output_type="pt").latent
        assert (lat - want).abs().max() > 1e-4, change


def _g(d, sigma):
    """Peak-normalised truncated Gaussian of scipy's gaussian_filter (radius round(4 sigma))."""
    d = np.abs(np.asarray(d, dtype=np.float64))
    return np.where(d <= int(4 * sigma + 0.5), np.exp(-(d**2) / (2 * sigma**2)), 0.0)


def test_reference_point_map_is_gaussian_filtered_deltas():
    h, w, s = 40, 50, 3.0
    y, x = np.mgrid[0:h, 0:w]
    interior = render_reference_point_map([(25, 20)], h, w, sigma=s)
    np.testing.assert_allclose(interior, _g(x - 25, s) * _g(y - 20, s), atol=1e-6)
    # at the border scipy reflects (d c b a | a b c d): the delta's mirror sits at x = -1
    border = render_reference_point_map([(0, 20)], h, w, sigma=s)
    along_x = (_g(x, s) + _g(x + 1, s)) / (_g(0, s) + _g(1, s))
    np.testing.assert_allclose(border, along_x * _g(y - 20, s), atol=1e-6)
    both = render_reference_point_map([(0, 20), (25.4, 19.6)], h, w, sigma=s)  # whole pixels, max-combined
    np.testing.assert_allclose(both, np.maximum(border, interior), atol=1e-6)
    assert both.max() == pytest.approx(1.0)
    img3 = point_map_image(both)
    assert img3.shape == (3, h, w) and torch.equal(img3[0], img3[2])
    np.testing.assert_allclose(img3[1].numpy(), both * 2 - 1, atol=1e-7)


def test_pipeline_draws_the_reference_map_at_the_processing_size(tiny_components):
    from edit2perceive import modeling

    ref_matting = Edit2PerceivePipeline(**tiny_components, task="matting",
                                        **{**REFERENCE_CONVENTIONS, "point_map": "reference", "point_map_sigma": 20.0})

    img = image()  # 50 x 70 -> stretched to 64 x 64; (35, 25) -> ((35.5) * 64/70 - .5, (25.5) * 64/50 - .5)
    contexts = ref_matting.prepare_contexts(load_rgb_inputs(img), [np.array([(35.0, 25.0)])], (64, 64))
    px, py = round(35.5 * 64 / 70 - 0.5), round(25.5 * 64 / 50 - 0.5)
    y, x = np.mgrid[0:64, 0:64]
    # sigma 20 px: the 80 px radius reaches both borders, so add scipy's mirror images of the delta
    # (-1 - p and 127 - p; the next ones, p +- 128, lie beyond the radius for p = 32)
    assert (px, py) == (32, 32)
    gx = sum(_g(x - c, 20.0) for c in (px, -1 - px, 2 * 64 - 1 - px))
    gy = sum(_g(y - c, 20.0) for c in (py, -1 - py, 2 * 64 - 1 - py))
    expected = gx * gy / (gx * gy).max()
    want = modeling.encode_image(ref_matting.vae, torch.from_numpy(expected * 2 - 1).float()[None, None].expand(1, 3, 64, 64))
    torch.testing.assert_close(contexts[1], want, atol=1e-5, rtol=1e-5)


def test_stretch_and_keep_aspect(ref_matting, tiny_components):
    assert ref_matting.processing_size_for(50, 70, 64) == (64, 64)
    assert ref_matting.processing_size_for(50, 70, 0) == (48, 64)  # native: nothing to stretch to
    ours = Edit2PerceivePipeline(**tiny_components, task="depth")
    assert ours.processing_size_for(50, 70, 64) == (48, 64)
    out = ref_matting(image(), points=[[(5, 5)]], processing_resolution=64)
    assert out.prediction.shape == (1, 50, 70)


def test_conventions_survive_save_and_load(ref_matting, tmp_path):
    ref_matting.save_pretrained(tmp_path / "m")
    loaded = Edit2PerceivePipeline.from_pretrained(tmp_path / "m")
    assert loaded.conventions == Conventions.reference() == Conventions(**REFERENCE_CONVENTIONS["conventions"])
    for key in ("noise_seed", "default_processing_resolution", "guidance"):
        assert loaded.config[key] == REFERENCE_CONVENTIONS[key], key


def test_bad_convention_values(tiny_components):
    for bad in ({"noise": "gpu"}, {"point_map": "disc"}, {"resize_mode": "crop"}, {"single_step_final_sigma": 1.0},
                {"point_map_position_index": 0}, {"point_map_sigma": 0.0}, {"timestep_embedding": "bf16"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Edit2PerceivePipeline(**tiny_components, task="matting", **bad)


def test_default_conventions_are_ours(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting")
    c = pipe.conventions
    assert (c.point_map_position_index, c.noise, c.single_step_final_sigma, c.point_map, c.resize_mode,
            c.timestep_embedding, c.sigma_schedule, c.resize_filter, c.decode_clip) == (
        2, "fixed", 0.0, "gaussian", "keep_aspect", "diffusers", "linear", "antialias", "after_mean")
    assert math.isclose(REFERENCE_CONVENTIONS["conventions"]["single_step_final_sigma"], 0.008929, abs_tol=1e-6)


def test_separable_map_equals_scipys_2d_filter():
    from scipy.ndimage import gaussian_filter

    h, w = 60, 45
    pts = [(0, 0), (44, 30), (20, 59), (10.6, 12.4)]
    want = np.zeros((h, w), np.float32)
    for x, y in np.rint(np.array(pts)).astype(int):  # the reference's gen_points loop, verbatim arithmetic
        tmp = np.zeros((h, w), np.float32)
        tmp[y, x] = 1
        tmp = gaussian_filter(tmp, sigma=7)
        tmp /= tmp.max()
        want = np.maximum(want, tmp)
    np.testing.assert_allclose(render_reference_point_map(pts, h, w, sigma=7), want, atol=1e-6)
