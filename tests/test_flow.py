"""Flow-matching math: oracle recovery, grids, fixed-seed and multi-resolution noise."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edit2perceive import flow


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(123)
    z1 = torch.randn(2, 4, 8, 6, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 4, 8, 6, generator=g, dtype=torch.float64)
    return z1, eps


def test_interpolation_endpoints_and_velocity(pair):
    z1, eps = pair
    assert torch.equal(flow.interpolate(z1, eps, 0.0), z1)
    assert torch.equal(flow.interpolate(z1, eps, 1.0), eps)
    # per-sample sigma; the state moves along v = eps - z1 when sigma increases
    sigma = torch.tensor([0.3, 0.8], dtype=torch.float64)
    x = flow.interpolate(z1, eps, sigma)
    x_hi = flow.interpolate(z1, eps, sigma + 0.1)
    assert torch.allclose((x_hi - x) / 0.1, flow.target_velocity(z1, eps))
    # hand value: 0.3 * eps + 0.7 * z1 for the first sample
    assert torch.allclose(x[0], 0.7 * z1[0] + 0.3 * eps[0])


def test_one_step_estimate_is_exact_from_any_state(pair):
    z1, eps = pair
    v = flow.target_velocity(z1, eps)
    for sigma in (1.0, 0.5, torch.tensor([0.9, 0.1], dtype=torch.float64)):
        x = flow.interpolate(z1, eps, sigma)
        assert torch.allclose(flow.one_step_estimate(x, v, sigma), z1, atol=1e-12)


@pytest.mark.parametrize("num_steps", [1, 2, 4, 10, 25])
def test_euler_with_oracle_velocity_recovers_target(pair, num_steps):
    z1, eps = pair
    calls = []

    def oracle(x, sigma):  # the true straight-path velocity field towards z1
        calls.append(sigma.clone())
        s = sigma.view(-1, 1, 1, 1)
        eps_implied = (x - (1 - s) * z1) / s  # invert x = (1-s) z1 + s eps
        return eps_implied - z1

    out = flow.euler_sample(oracle, eps, flow.sigma_grid(num_steps))
    assert len(calls) == num_steps
    assert torch.allclose(out, z1, atol=1e-10)


def test_sigma_grid_values():
    assert flow.sigma_grid(1).tolist() == [1.0, 0.0]
    assert torch.allclose(flow.sigma_grid(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="positive integer"):
        flow.sigma_grid(0)
    with pytest.raises(ValueError, match="decreasing"):
        flow.euler_sample(lambda x, s: x, torch.zeros(1, 1, 2, 2), [0.0, 1.0])


@pytest.mark.parametrize("num_steps", [1, 2, 4, 10, 28])
def test_diffusers_scheduler_sets_our_grids(num_steps):
    """Second implementation: diffusers' FlowMatchEulerDiscreteScheduler (FLUX.1's config).
    ``set_timesteps(sigmas=linspace(1, m, N), mu=log 3)`` is the reference's constant shift 3
    (e^mu / (e^mu + 1/s - 1) = 3s / (1 + 2s)); mu = 0 keeps the linear grid."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(**flow.FLUX_SCHEDULER_CONFIG)
    n = num_steps
    scheduler.set_timesteps(sigmas=np.linspace(1.0, flow.REFERENCE_SIGMA_MIN, n), mu=math.log(3.0))
    torch.testing.assert_close(scheduler.sigmas.double(), flow.shifted_sigma_grid(n), atol=1e-6, rtol=0)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / n, n), mu=0.0)
    torch.testing.assert_close(scheduler.sigmas.double(), flow.sigma_grid(n), atol=1e-6, rtol=0)
    # what the pipeline asks of its scheduler: the same grids
    for schedule in flow.SIGMA_SCHEDULES:
        torch.testing.assert_close(flow.scheduler_sigmas(scheduler, n, schedule), flow.inference_sigmas(n, schedule),
                                   atol=1e-6, rtol=0)
    # a scheduler with its own (static) shift moves the grid: shift(0.5) = 3 * 0.5 / (1 + 2 * 0.5) = 0.75
    static = FlowMatchEulerDiscreteScheduler(shift=3.0)
    assert flow.scheduler_sigmas(static, 2).tolist() == pytest.approx([1.0, 0.75, 0.0], abs=1e-7)


def test_base_noise_reproducible_and_batch_independent():
    a = flow.base_noise((16, 8, 12), seed=7)
    torch.manual_seed(999)  # the global RNG must not matter
    b = flow.base_noise((16, 8, 12), seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, flow.base_noise((16, 8, 12), seed=8))
    batch = flow.base_noise((16, 8, 12), seed=7, batch_size=5)
    assert batch.shape == (5, 16, 8, 12)
    for i in range(5):  # same noise at every batch position
        assert torch.equal(batch[i], a)
    # drawn in float32 on the CPU, then cast: bf16 noise is the cast of the float32 noise
    assert torch.equal(flow.base_noise((16, 8, 12), seed=7, dtype=torch.bfloat16), a.to(torch.bfloat16))
    big = flow.base_noise((16, 64, 64), seed=0)
    assert abs(big.mean().item()) < 0.02 and abs(big.std().item() - 1) < 0.02


def _lowpass_energy(x):
    return F.avg_pool2d(x, 8).pow(2).mean().item()


def test_multires_noise_unit_variance_and_annealing():
    base = flow.base_noise((4, 64, 64), seed=0, batch_size=5)
    sigma = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    g = torch.Generator().manual_seed(0)
    out = flow.multi_resolution_noise(base, sigma, strength=0.9, generator=g)
    assert out.shape == base.shape
    # sigma = 0 -> strength 0 -> the base noise, bit for bit
    assert torch.equal(out[0], base[0])
    # renormalized to unit standard deviation over the batch (Marigold's), samples with s > 0
    assert out[1:].std().item() == pytest.approx(1.0, abs=1e-5)
    # annealing: the share of low-frequency energy grows with sigma, and correlation with the
    # base noise falls
    low = [_lowpass_energy(out[i : i + 1]) for i in range(5)]
    assert all(a < b for a, b in zip(low, low[1:])), low
    corr = [F.cosine_similarity(out[i].flatten(), base[i].flatten(), dim=0).item() for i in range(5)]
    assert corr[0] == pytest.approx(1.0) and all(a > b for a, b in zip(corr, corr[1:])), corr


def test_multires_noise_modes_and_determinism():
    base = flow.base_noise((4, 32, 32), seed=1, batch_size=2)
    ones = torch.ones(2)

    def run(seed, **kw):
        return flow.multi_resolution_noise(base, ones, generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    # "one_minus_sigma" vanishes at sigma = 1: training input equals the inference noise there
    assert torch.equal(run(3, anneal="one_minus_sigma"), base)
    # Marigold's "sigma" annealing is strongest at sigma = 1: a train/test mismatch
    assert not torch.allclose(run(3, anneal="sigma"), base)
    with pytest.raises(ValueError, match="anneal"):
        run(3, anneal="cosine")
    tiny = flow.multi_resolution_noise(torch.randn(1, 2, 2, 2), 1.0, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(tiny).all()


def test_reference_shifted_grid_against_the_formula():
    """linspace(1, 0.003/1.002, N) shifted by 3s / (1 + 2s), then 0 (REFERENCE.md), by hand."""
    sigma_min = 0.003 / 1.002
    assert flow.shifted_sigma_grid(1).tolist() == [1.0, 0.0]
    grid = flow.shifted_sigma_grid(3)
    # N = 3: linspace gives 1, (1 + m) / 2, m with m = sigma_min
    mid = (1 + sigma_min) / 2
    expected = [1.0, 3 * mid / (1 + 2 * mid), 3 * sigma_min / (1 + 2 * sigma_min), 0.0]
    assert grid.tolist() == pytest.approx(expected, abs=1e-15)
    assert grid[2].item() == pytest.approx(0.009 / 1.008, rel=1e-12)  # 3m / (1 + 2m) with m = 0.003 / 1.002
    for n in (2, 4, 10, 25):
        g = flow.shifted_sigma_grid(n)
        assert len(g) == n + 1 and g[0] == 1.0 and g[-1] == 0.0
        assert bool((g[1:] < g[:-1]).all())
        assert g[-2].item() == pytest.approx(3 * sigma_min / (1 + 2 * sigma_min))
    # the shift pushes the grid towards noise: every inner point lies above the linear one
    assert bool((flow.shifted_sigma_grid(4)[1:-1] > torch.linspace(1, sigma_min, 4, dtype=torch.float64)[1:]).all())
    assert torch.equal(flow.inference_sigmas(4, "shifted"), flow.shifted_sigma_grid(4))
    assert torch.equal(flow.inference_sigmas(4, "linear"), flow.sigma_grid(4))
    with pytest.raises(ValueError, match="sigma schedule must be one of"):
        flow.inference_sigmas(4, "cosine")
    with pytest.raises(ValueError, match="positive integer"):
        flow.shifted_sigma_grid(0)


@pytest.mark.parametrize("num_steps", [1, 2, 4, 10, 25])
def test_euler_on_the_shifted_grid_with_oracle_velocity(pair, num_steps):
    z1, eps = pair

    def oracle(x, sigma):
        s = sigma.view(-1, 1, 1, 1)
        return (x - (1 - s) * z1) / s - z1

    out = flow.euler_sample(oracle, eps, flow.shifted_sigma_grid(num_steps))
    assert torch.allclose(out, z1, atol=1e-10)


def test_sigma_below_one_anneal_is_marigold_below_one_and_off_at_one():
    base = flow.base_noise((4, 32, 32), seed=1, batch_size=3)
    sigma = torch.tensor([1.0, 0.5, 0.5])

    def run(anneal):
        return flow.multi_resolution_noise(base, sigma, anneal=anneal, generator=torch.Generator().manual_seed(3))

    below, marigold = run("sigma_below_one"), run("sigma")
    assert torch.equal(below[0], base[0])  # sigma = 1: exactly the inference noise
    assert not torch.equal(marigold[0], base[0])
    # sigma < 1: Marigold's annealing with the same draws; only the batch's renormalisation differs
    # (over the samples with s > 0), so the two are proportional
    ratio = below[1:] / marigold[1:]
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()), rtol=1e-4, atol=1e-4)
    s = flow.multires_strength(torch.tensor([0.0, 0.5, 0.999, 1.0]), 0.9, "sigma_below_one")
    assert s.tolist() == pytest.approx([0.0, 0.45, 0.9 * 0.999, 0.0])
