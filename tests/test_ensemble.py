"""Test-time ensembles: member plans, per-task aggregation against hand-computed values, and
the pipeline's ensemble call against separately computed plain calls."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from pipeline_fixtures import rgb_image

from edit2perceive import Edit2PerceivePipeline, flow
from edit2perceive.pipelines.ensemble import (
    AUGMENTATIONS,
    EnsembleMember,
    flip_points,
    member_resolution,
    plan_members,
)
from edit2perceive.pipelines.pipeline import processing_size
from edit2perceive.tasks import get_task


# -- member plans -------------------------------------------------------------------------
def test_plan_members_order_and_limits():
    assert plan_members(3, ("flip", "reseed")) == [
        EnsembleMember(False, 0, 1.0), EnsembleMember(True, 0, 1.0), EnsembleMember(False, 1, 1.0)]
    assert plan_members(3, ("resolution",)) == [
        EnsembleMember(False, 0, 1.0), EnsembleMember(False, 0, 0.75), EnsembleMember(False, 0, 1.25)]
    assert plan_members(2, "flip") == [EnsembleMember(False, 0, 1.0), EnsembleMember(True, 0, 1.0)]
    with pytest.raises(ValueError, match="only 2 distinct members"):
        plan_members(3, ("flip",))
    with pytest.raises(ValueError, match="unknown ensemble augmentation"):
        plan_members(2, ("rotate",))
    with pytest.raises(ValueError, match="positive integer"):
        plan_members(0)


def test_member_resolution_and_flip_points():
    assert member_resolution(768, 480, 640, 1.0, step=16) == 768
    assert member_resolution(768, 480, 640, 0.75, step=16) == 576
    assert member_resolution(0, 480, 640, 1.0, step=16) == 0  # native stays native
    assert member_resolution(0, 480, 640, 0.5, step=16) == 320
    assert member_resolution(0, 32, 32, 0.75, step=16) == 16 and member_resolution(0, 32, 32, 1.125, step=16) == 48  # one step away
    assert member_resolution(0, 16, 20, 0.5, step=16) == 16  # nothing smaller than 16
    np.testing.assert_array_equal(flip_points([(0, 3), (9, 4), (2.5, 1)], 10), [[9, 3], [0, 4], [6.5, 1]])


# -- aggregation per task -----------------------------------------------------------------
def test_alpha_median_and_mad():
    members = torch.tensor([[[0.1]], [[0.5]], [[0.9]]])
    pred, unc = get_task("matting").ensemble(members, output_uncertainty=True)
    assert pred.item() == pytest.approx(0.5) and unc.item() == pytest.approx(0.4)
    pred, unc = get_task("matting").ensemble(torch.tensor([[[0.2]], [[0.6]]]), output_uncertainty=True)
    assert pred.item() == pytest.approx(0.4) and unc.item() == pytest.approx(0.2)  # mean of the two middle values
    assert get_task("matting").ensemble(members)[1] is None


def test_normals_mean_direction_and_angular_spread():
    theta = math.radians(20)
    # two members rotated by +-20 degrees about y away from the head-on normal (0, 0, 1)
    a = torch.tensor([math.sin(theta), 0.0, math.cos(theta)])
    b = torch.tensor([-math.sin(theta), 0.0, math.cos(theta)])
    members = torch.stack([a.expand(2, 3, 3), b.expand(2, 3, 3)])
    pred, unc = get_task("normal").ensemble(members, output_uncertainty=True)
    torch.testing.assert_close(pred, torch.tensor([0.0, 0.0, 1.0]).expand(2, 3, 3), atol=1e-6, rtol=0)
    assert unc.shape == pred.shape
    torch.testing.assert_close(unc, torch.full((2, 3, 3), theta / math.pi), atol=1e-6, rtol=0)


def test_normal_unflip_negates_x():
    pred = torch.zeros(2, 4, 3)
    pred[:, :, 2] = 1.0
    pred[0, 0] = torch.tensor([0.6, 0.0, 0.8])
    out = get_task("normal").unflip(pred)
    torch.testing.assert_close(out[0, 3], torch.tensor([-0.6, 0.0, 0.8]))
    torch.testing.assert_close(out[1, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert get_task("depth").unflip(torch.arange(6.0).reshape(2, 3))[0].tolist() == [2.0, 1.0, 0.0]


@pytest.mark.parametrize("encoding", ["sqrt", "disparity"])
def test_depth_ensemble_aligns_affine_members(encoding):
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.random((24, 32))).float()
    members = torch.stack([s * base + t for s, t in [(1.0, 0.0), (0.5, 0.3), (0.8, 0.1), (0.6, 0.2)]])
    pred, unc = get_task("depth", encoding=encoding).ensemble(members, output_uncertainty=True)
    expected = (base - base.min()) / (base.max() - base.min())
    torch.testing.assert_close(pred, expected, atol=0.02, rtol=0)
    assert unc.shape == pred.shape and float(unc.max()) < 0.02
    # a member disagreeing in one region raises the uncertainty there, not elsewhere
    noisy = members.clone()
    noisy[1, :8, :8] = torch.from_numpy(rng.random((8, 8))).float()
    noisy[2, :8, :8] = torch.from_numpy(rng.random((8, 8))).float()
    _, unc = get_task("depth", encoding=encoding).ensemble(noisy, output_uncertainty=True)
    assert float(unc[:8, :8].mean()) > 5 * float(unc[8:, 8:].mean())


# -- the pipeline's ensemble call ---------------------------------------------------------
def test_flip_ensemble_is_mean_of_plain_and_mirrored_calls(pipes):
    pipe, img, pts = pipes["matting"], rgb_image(), [(10, 20), (30, 12)]
    plain = pipe(img, points=[pts], processing_resolution=64).prediction[0]
    mirrored_img = Image.fromarray(np.asarray(img)[:, ::-1].copy())
    mirrored = pipe(mirrored_img, points=[[(img.width - 1 - x, y) for x, y in pts]],
                    processing_resolution=64).prediction[0][:, ::-1]
    out = pipe(img, points=[pts], processing_resolution=64, ensemble_size=2, ensemble_augmentations=("flip",),
               output_uncertainty=True)
    np.testing.assert_allclose(out.prediction[0], (plain + mirrored) / 2, atol=1e-5)
    np.testing.assert_allclose(out.uncertainty[0], np.abs(plain - mirrored) / 2, atol=1e-5)


def test_noise_member_uses_next_seed(pipes):
    pipe, img = pipes["matting"], rgb_image(seed=1)
    plain = pipe(img, points=[[(5, 5)]], processing_resolution=64).prediction[0]
    seeded = pipe(img, points=[[(5, 5)]], processing_resolution=64,
                  latents=flow.base_noise((16, *(s // 8 for s in processing_size(40, 56, 64))), seed=pipe.config.noise_seed + 1, batch_size=1)).prediction[0]
    out = pipe(img, points=[[(5, 5)]], processing_resolution=64, ensemble_size=2, ensemble_augmentations=("reseed",))
    np.testing.assert_allclose(out.prediction[0], (plain + seeded) / 2, atol=1e-5)
    assert out.uncertainty is None


@pytest.mark.parametrize("task", ["depth", "normal"])
def test_ensemble_output_shapes_determinism_and_latent(pipes, task):
    pipe, imgs = pipes[task], [rgb_image(seed=0), rgb_image(36, 60, seed=1)]
    kwargs = dict(processing_resolution=32, ensemble_size=3, ensemble_augmentations=("flip", "reseed", "resolution"),
                  output_uncertainty=True)
    out = pipe(imgs, **kwargs)
    again = pipe(imgs, **kwargs)
    for p, u, a, img in zip(out.prediction, out.uncertainty, again.prediction, imgs):
        assert p.shape == u.shape and p.shape[:2] == (img.height, img.width)
        assert (u >= 0).all() and np.isfinite(u).all() and u.max() > 0
        np.testing.assert_array_equal(p, a)
    plain = pipe(imgs[0], processing_resolution=32)
    assert torch.equal(out.latent[0], plain.latent[0])  # member 0 is the plain prediction
    if task == "normal":
        np.testing.assert_allclose(np.linalg.norm(out.prediction[0], axis=-1), 1.0, atol=1e-4)
    native = pipe(imgs[0], processing_resolution=32, match_input_resolution=False, ensemble_size=2,
                  output_uncertainty=True, output_type="pt")
    assert isinstance(native.uncertainty, torch.Tensor)
    channels = 3 if task == "normal" else 1  # "pt" is channels-first, as diffusers' Marigold
    assert native.uncertainty.shape == native.prediction.shape == (1, channels, 16, 32)


def test_uncertainty_needs_an_ensemble(pipes):
    assert pipes["depth"](rgb_image(), processing_resolution=32).uncertainty is None
    with pytest.raises(ValueError, match="ensemble_size >= 2"):
        pipes["depth"](rgb_image(), processing_resolution=32, output_uncertainty=True)
    with pytest.raises(ValueError, match="ensemble_size"):
        pipes["depth"](rgb_image(), processing_resolution=32, ensemble_size=0)


# -- one batching loop over (image, member) rows, with every convention -------------------
@pytest.fixture(scope="module")
def ref_pipes(tiny_components):
    from edit2perceive.reference import REFERENCE_CONVENTIONS

    out = {}
    for task in ("depth", "matting"):
        out[task] = Edit2PerceivePipeline(**tiny_components, task=task, **REFERENCE_CONVENTIONS)
        out[task].set_progress_bar_config(disable=True)
    return out


def test_noise_members_with_the_reference_conventions(ref_pipes):
    """Stretch (32 x 32 for a 40 x 56 input): member 1's noise has the stretched shape."""
    pipe, img = ref_pipes["matting"], rgb_image(seed=1)
    assert pipe.processing_size_for(40, 56, 32) == (32, 32)
    plain = pipe(img, points=[[(5, 5)]], processing_resolution=32).prediction[0]
    seeded = pipe(img, points=[[(5, 5)]], processing_resolution=32,
                  latents=flow.base_noise((16, 4, 4), seed=pipe.config.noise_seed + 1, batch_size=1)).prediction[0]
    out = pipe(img, points=[[(5, 5)]], processing_resolution=32, ensemble_size=2, ensemble_augmentations=("reseed",))
    np.testing.assert_allclose(out.prediction[0], (plain + seeded) / 2, atol=1e-5)


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("resolution", [32, 0])
def test_ensemble_sizes_follow_the_plain_call(pipes, ref_pipes, reference, resolution):
    """match_input_resolution=False: an ensemble has the plain call's (processing) size, for
    keep-aspect, stretch and native resolution alike."""
    pipe = ref_pipes["depth"] if reference else pipes["depth"]
    img = rgb_image(seed=2)
    kwargs = dict(processing_resolution=resolution, match_input_resolution=False)
    plain = pipe(img, **kwargs)
    ens = pipe(img, ensemble_size=4, ensemble_augmentations=("flip", "reseed", "resolution"), output_uncertainty=True,
               **kwargs)
    expected = pipe.processing_size_for(40, 56, resolution)
    assert plain.prediction.shape[1:] == ens.prediction.shape[1:] == ens.uncertainty.shape[1:] == expected
    assert torch.equal(plain.latent, ens.latent)


def test_rows_share_batches_and_offload_is_armed_once(pipes, monkeypatch):
    """Two images x two flip members of one size: one forward pass with batch_size=4, the same
    predictions as one row at a time, and diffusers' offload hooks reset once per call."""
    pipe, imgs = pipes["normal"], [rgb_image(seed=3), rgb_image(seed=4)]
    kwargs = dict(processing_resolution=32, ensemble_size=2, ensemble_augmentations=("flip",))
    calls, frees = [], []
    real_batch = type(pipe).predict_batch
    monkeypatch.setattr(type(pipe), "predict_batch",
                        lambda self, images, *a, **k: calls.append(len(images)) or real_batch(self, images, *a, **k))
    monkeypatch.setattr(type(pipe), "maybe_free_model_hooks", lambda self: frees.append(1))
    batched = pipe(imgs, batch_size=4, **kwargs)
    assert calls == [4] and len(frees) == 1
    calls.clear()
    single = pipe(imgs, batch_size=1, **kwargs)
    assert calls == [1, 1, 1, 1]
    # float32, batch-size-dependent matmul order: latents agree to float32 rounding; the tiny
    # random model's decoded normals are unit vectors of short raw vectors, which amplify it
    torch.testing.assert_close(batched.latent, single.latent, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched.prediction, single.prediction, atol=1e-3)


def test_old_noise_augmentation_name_is_an_alias_of_reseed():
    with pytest.warns(FutureWarning, match="'reseed'"):
        old = plan_members(4, ("flip", "noise"))
    assert old == plan_members(4, ("flip", "reseed"))
    assert "noise" not in AUGMENTATIONS
