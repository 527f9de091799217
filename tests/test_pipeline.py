"""Edit2PerceivePipeline: save/load, Marigold-style call, determinism, prompt cache, Kontext equality."""

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive import Edit2PerceivePipeline, flow, modeling
from edit2perceive.pipelines.pipeline import processing_size, scale_points
from edit2perceive.tasks.matting import render_point_map

TEXT_PARTS = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")


def rgb_image(h=50, w=70, seed=0):
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def depth_pipe(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def saved_depth(depth_pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe") / "depth"
    depth_pipe.save_pretrained(path)
    return path


def test_processing_size_keeps_aspect_multiple_of_16():
    assert processing_size(480, 640, 768) == (576, 768)
    assert processing_size(375, 1242, 768) == (224, 768)  # 231.9 -> 224, no stretching to a square
    assert processing_size(50, 70, 0) == (48, 64)
    assert processing_size(10, 2000, 64) == (16, 64)
    with pytest.raises(ValueError):
        processing_size(10, 10, -1)


def test_output_shapes_ranges_and_resolution(depth_pipe):
    out = depth_pipe(rgb_image(), processing_resolution=96)
    assert out.prediction.shape == (1, 50, 70) and out.prediction.dtype == np.float32
    assert 0 <= out.prediction.min() and out.prediction.max() <= 1
    assert tuple(out.latent.shape) == (1, 16, 64 // 8, 96 // 8)  # 50x70 -> 64x96 (aspect kept)
    native = depth_pipe(rgb_image(), processing_resolution=96, match_input_resolution=False, output_type="pt")
    assert isinstance(native.prediction, torch.Tensor) and native.prediction.shape == (1, 1, 64, 96)  # channels-first


def test_deterministic_and_batch_independent(depth_pipe):
    imgs = [rgb_image(seed=s) for s in range(3)]
    one = [depth_pipe(img, processing_resolution=64).prediction[0] for img in imgs]
    again = depth_pipe(imgs[1], processing_resolution=64).prediction[0]
    assert np.array_equal(one[1], again)
    batched = depth_pipe(imgs, processing_resolution=64, batch_size=3).prediction
    assert batched.shape == (3, 50, 70)
    for a, b in zip(batched, one):
        np.testing.assert_allclose(a, b, atol=1e-5)  # the same image gives the same map at any batch position
    tensor_in = torch.from_numpy(np.stack([np.asarray(i) for i in imgs])).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_allclose(depth_pipe(tensor_in, processing_resolution=64).prediction, batched, atol=1e-5)


def test_generator_latents_and_steps(depth_pipe):
    img = rgb_image()
    base = depth_pipe(img, processing_resolution=64).latent
    g1 = depth_pipe(img, processing_resolution=64, generator=torch.Generator().manual_seed(1)).latent
    g1b = depth_pipe(img, processing_resolution=64, generator=torch.Generator().manual_seed(1)).latent
    assert torch.equal(g1, g1b) and not torch.allclose(g1, base)
    # 50x70 at 64 px -> 46x64 -> 48x64 pixels -> 6x8 latents
    out = depth_pipe(img, processing_resolution=64, latents=torch.randn(1, 16, 6, 8))
    assert out.latent.shape == (1, 16, 6, 8) and not torch.allclose(out.latent, base)
    default_noise = flow.base_noise((16, 6, 8), seed=0, batch_size=1)
    assert torch.equal(depth_pipe(img, processing_resolution=64, latents=default_noise).latent, base)
    multi = depth_pipe(img, processing_resolution=64, num_inference_steps=4)
    assert multi.prediction.shape == (1, 50, 70) and not torch.allclose(multi.latent, base)
    with pytest.raises(ValueError, match="num_inference_steps"):
        depth_pipe(img, num_inference_steps=0)
    with pytest.raises(ValueError, match="latents"):
        depth_pipe(img, processing_resolution=64, latents=torch.randn(2, 16, 6, 8))


def test_one_step_latent_equals_flux_kontext_through_pipeline(depth_pipe, tiny_components):
    from diffusers import FluxKontextPipeline

    kontext = FluxKontextPipeline(**tiny_components)
    kontext.set_progress_bar_config(disable=True)
    img = rgb_image(64, 96, seed=4)
    noise = torch.randn(1, 16, 8, 12, generator=torch.Generator().manual_seed(9))
    ref = kontext(
        image=img, prompt=depth_pipe.task.prompt, height=64, width=96, num_inference_steps=1, guidance_scale=1.0,
        latents=modeling.pack_latents(noise), output_type="latent", _auto_resize=False, max_area=64 * 96,
    ).images
    ours = depth_pipe(img, processing_resolution=0, latents=noise).latent
    torch.testing.assert_close(ours, modeling.unpack_latents(ref, 8, 12), atol=1e-5, rtol=1e-5)


def test_save_load_roundtrip_with_prompt_cache_only(depth_pipe, saved_depth):
    assert (saved_depth / "prompt_cache" / "diffusion_pytorch_model.safetensors").exists()
    loaded = Edit2PerceivePipeline.from_pretrained(saved_depth, **dict.fromkeys(TEXT_PARTS))
    loaded.set_progress_bar_config(disable=True)
    assert loaded.text_encoder is None and loaded.text_encoder_2 is None
    assert loaded.task.config() == depth_pipe.task.config()
    img = rgb_image()
    expected = depth_pipe(img, processing_resolution=64).prediction
    # separately loaded weights (memory aligned differently, another CPU) agree to float32 rounding, not bit for bit
    torch.testing.assert_close(loaded(img, processing_resolution=64).prediction, expected)
    with torch.no_grad():  # what another machine does: the loaded copy off by one ulp in one weight tensor
        w = loaded.transformer.proj_out.weight
        w.copy_(torch.nextafter(w, torch.full_like(w, np.inf)))
    nudged = loaded(img, processing_resolution=64).prediction
    assert not np.array_equal(nudged, expected)  # the nudge reaches the output ...
    torch.testing.assert_close(nudged, expected)  # ... and the comparison tied to float32 still holds


def test_cached_prompt_equals_text_encoders(tiny_components):
    with_encoders = Edit2PerceivePipeline(**tiny_components, task="normal")
    with_encoders.set_progress_bar_config(disable=True)
    cache = with_encoders.ensure_prompt_cache()
    no_encoders = Edit2PerceivePipeline(
        transformer=tiny_components["transformer"], vae=tiny_components["vae"], prompt_cache=cache, task="normal"
    )
    no_encoders.set_progress_bar_config(disable=True)
    fresh = Edit2PerceivePipeline(**tiny_components, task="normal")  # encodes on first call
    fresh.set_progress_bar_config(disable=True)
    img = rgb_image()
    a = fresh(img, processing_resolution=64).prediction
    b = no_encoders(img, processing_resolution=64).prediction
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, 50, 70, 3)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-5)
    bare = Edit2PerceivePipeline(transformer=tiny_components["transformer"], vae=tiny_components["vae"], task="normal")
    with pytest.raises(ValueError, match="no prompt_cache"):
        bare(img)
    with pytest.raises(ValueError, match="prompt cache holds"):
        Edit2PerceivePipeline(transformer=tiny_components["transformer"], vae=tiny_components["vae"], prompt_cache=cache, task="depth")


def test_hub_id_loads_through_the_same_path(saved_depth, tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub's cache (offline), the code path a download takes."""
    import shutil

    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--e2p-test--tiny-depth" / "snapshots" / ("a" * 40)
    shutil.copytree(saved_depth, snapshot)
    (cache / "models--e2p-test--tiny-depth" / "refs").mkdir()
    (cache / "models--e2p-test--tiny-depth" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    pipe = Edit2PerceivePipeline.from_pretrained("e2p-test/tiny-depth", cache_dir=str(cache), **dict.fromkeys(TEXT_PARTS))
    assert pipe.task.name == "depth" and pipe.prompt_cache is not None


def test_matting_points(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting")
    pipe.set_progress_bar_config(disable=True)
    img = rgb_image(64, 96)
    out = pipe(img, points=[[(10, 20), (50, 30)]], processing_resolution=0)
    assert out.prediction.shape == (1, 64, 96) and 0 <= out.prediction.min() <= out.prediction.max() <= 1
    other = pipe(img, points=[[(90, 60)]], processing_resolution=0)
    assert not np.allclose(other.prediction, out.prediction)  # the points condition the output
    single = pipe(img, points=[(10, 20), (50, 30)], processing_resolution=0)  # one image: a flat list works
    np.testing.assert_array_equal(single.prediction, out.prediction)
    with pytest.raises(ValueError, match="needs foreground points"):
        pipe(img)
    with pytest.raises(ValueError, match="outside"):
        pipe(img, points=[[(96, 10)]], processing_resolution=0)
    with pytest.raises(ValueError, match="2 images"):
        pipe([img, img], points=[[(1, 1)]])


def test_point_map_rendering_matches_training(tiny_components):
    # at the native size the pipeline's point coordinates are the user's (identity mapping)
    pts = np.array([[10.0, 20.0], [50.0, 30.0]])
    np.testing.assert_allclose(scale_points(pts, (64, 96), (64, 96)), pts)
    # at half size, pixel centres map to centres: x = (10 + 0.5) / 2 - 0.5
    np.testing.assert_allclose(scale_points(pts, (64, 96), (32, 48))[0], [4.75, 9.75])
    # the map the pipeline encodes is the training renderer's
    captured = []
    vae = tiny_components["vae"]
    original = modeling.encode_image

    def spy(v, image):
        captured.append(image.clone())
        return original(v, image)

    pipe = Edit2PerceivePipeline(**tiny_components, task="matting")
    pipe.set_progress_bar_config(disable=True)
    try:
        modeling.encode_image = spy
        pipe(rgb_image(64, 96), points=[pts.tolist()], processing_resolution=0)
    finally:
        modeling.encode_image = original
    expected = render_point_map(pts, 64, 96) * 2 - 1
    np.testing.assert_allclose(captured[1][0, 0].numpy(), expected, atol=1e-6)
    assert vae is pipe.vae


def test_points_rejected_for_other_tasks(depth_pipe):
    with pytest.raises(ValueError, match="only used by the matting"):
        depth_pipe(rgb_image(), points=[[(1, 1)]])


def test_latents_are_validated_against_the_processing_size(depth_pipe):
    img = rgb_image()  # 50x70 at 64 px -> 48x64 pixels -> latents 1 x 16 x 6 x 8
    for wrong in (torch.randn(1, 16, 8, 6), torch.randn(1, 4, 6, 8), torch.randn(1, 16, 12, 16)):
        with pytest.raises(ValueError, match=r"latents must have shape \(1, 16, 6, 8\) .*processing size 48x64"):
            depth_pipe(img, processing_resolution=64, latents=wrong)
    with pytest.raises(ValueError, match="float tensor"):
        depth_pipe(img, processing_resolution=64, latents=np.zeros((1, 16, 6, 8), np.float32))
    nan = torch.randn(1, 16, 6, 8)
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite values"):
        depth_pipe(img, processing_resolution=64, latents=nan)


def test_non_finite_inputs_and_outputs_are_errors(tiny_components, depth_pipe):
    img = rgb_image(64, 96)
    matting = Edit2PerceivePipeline(**tiny_components, task="matting")
    matting.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"point \(x=nan, y=nan\) is not finite"):
        matting(img, points=[[(float("nan"), float("nan"))]], processing_resolution=32)
    with pytest.raises(ValueError, match="num_inference_steps must be an integer within 1..1000"):
        depth_pipe(img, num_inference_steps=100_000_000)
    with pytest.raises(ValueError, match="processing_resolution must be within 0..8192"):
        depth_pipe(img, processing_resolution=100_000)
    import copy

    broken = copy.deepcopy(depth_pipe)
    with torch.no_grad():
        broken.transformer.proj_out.weight.fill_(float("nan"))  # NaN weights
    with pytest.raises(ValueError, match=r"image 0: the prediction holds \d+ non-finite values"):
        broken([img, rgb_image(40, 40)], processing_resolution=32)


def test_incomplete_model_folders_name_what_is_missing(saved_depth, tmp_path):
    import shutil

    missing_weights = tmp_path / "a"
    shutil.copytree(saved_depth, missing_weights)
    (missing_weights / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"a/transformer: no weights; expected FluxTransformer2DModel weights as "
                                         r"\.safetensors"):
        Edit2PerceivePipeline.from_pretrained(missing_weights)
    (missing_weights / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"only pickle weights \(diffusion_pytorch_model.bin\), which are never loaded"):
        Edit2PerceivePipeline.from_pretrained(missing_weights)
    no_vae = tmp_path / "b"
    shutil.copytree(saved_depth, no_vae)
    shutil.rmtree(no_vae / "vae")
    with pytest.raises(ValueError, match=r"b/vae: missing \(model_index.json lists component 'vae'; pass vae="):
        Edit2PerceivePipeline.from_pretrained(no_vae)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(saved_depth / "vae")
    assert Edit2PerceivePipeline.from_pretrained(no_vae, vae=vae).vae is vae  # given: not needed on disk
    with pytest.raises(ValueError, match="not a saved pipeline folder"):
        Edit2PerceivePipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize("schedule", ["linear", "shifted"])
def test_sigma_schedule_config_sets_the_multi_step_grid(tiny_components, tmp_path, monkeypatch, schedule):
    """The DiT is queried exactly at the grid's sigmas (the reference's shifted grid or the linear one),
    and the choice survives save / load."""
    from edit2perceive import flow

    pipe = Edit2PerceivePipeline(**tiny_components, task="depth", sigma_schedule=schedule)
    pipe.save_pretrained(tmp_path / "p")
    loaded = Edit2PerceivePipeline.from_pretrained(tmp_path / "p", **{k: tiny_components[k] for k in ("vae",)})
    assert loaded.conventions.sigma_schedule == schedule
    seen = []

    def fake_velocity(transformer, x, sigma, *args, **kwargs):
        seen.append(float(sigma[0]))
        return torch.zeros_like(x)

    monkeypatch.setattr(modeling, "predict_velocity", fake_velocity)
    loaded.set_progress_bar_config(disable=True)
    loaded(rgb_image(32, 32, seed=1), processing_resolution=0, num_inference_steps=4)
    linspace = [1.0, (2 + 0.003 / 1.002) / 3, (1 + 2 * 0.003 / 1.002) / 3, 0.003 / 1.002]  # linspace(1, m, 4)
    expected = [3 * s / (1 + 2 * s) for s in linspace] if schedule == "shifted" else [1.0, 0.75, 0.5, 0.25]
    assert seen == pytest.approx(expected, abs=1e-6)
    assert flow.inference_sigmas(1, schedule).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="sigma_schedule must be one of"):
        Edit2PerceivePipeline(**tiny_components, task="depth", sigma_schedule="cosine")
