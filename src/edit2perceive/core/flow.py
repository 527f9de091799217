"""Rectified-flow math, in diffusers' Flux convention. The one place this math lives.

Conventions
-----------
- ``sigma`` in [0, 1]; ``sigma = 1`` is pure noise, ``sigma = 0`` is data.
- State: ``x_sigma = (1 - sigma) * z1 + sigma * eps`` (``z1`` = clean latent, ``eps`` = noise).
- The DiT predicts the velocity ``v = eps - z1`` (so ``dx/dsigma = v``).
- Exact one-step estimate of the data from any state: ``z1_hat = x_sigma - sigma * v``.
  Single-step inference is ``z1_hat = eps - v(eps, sigma=1)``.
- The timestep handed to ``FluxTransformer2DModel`` is ``sigma`` itself (the model scales
  by 1000 internally), exactly as ``FluxKontextPipeline`` does.
- The paper writes ``t = 1 - sigma`` and ``v_paper = -v``: the same trajectory.

Tensors are ``B x C x H x W`` latents; ``sigma`` is a float or a ``(B,)`` tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

#: Seed of the fixed base noise shared by training and inference.
DEFAULT_NOISE_SEED = 0


def _as_batch_sigma(sigma: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``sigma`` as a tensor broadcastable against ``like`` (B x ...)."""
    sigma = torch.as_tensor(sigma, device=like.device, dtype=like.dtype)
    if sigma.ndim == 0:
        return sigma
    if sigma.ndim != 1 or sigma.shape[0] != like.shape[0]:
        raise ValueError(f"sigma must be a scalar or shape ({like.shape[0]},); got shape {tuple(sigma.shape)}")
    return sigma.view(-1, *([1] * (like.ndim - 1)))


def interpolate(z1: torch.Tensor, eps: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``x_sigma = (1 - sigma) * z1 + sigma * eps``."""
    s = _as_batch_sigma(sigma, z1)
    return (1.0 - s) * z1 + s * eps


def target_velocity(z1: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Flow-matching regression target ``v = eps - z1`` (constant along the straight path)."""
    return eps - z1


def one_step_estimate(x: torch.Tensor, velocity: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Exact data estimate from a state and its velocity: ``z1_hat = x_sigma - sigma * v``."""
    return x - _as_batch_sigma(sigma, x) * velocity


def sigma_grid(num_steps: int) -> torch.Tensor:
    """``num_steps + 1`` sigmas from 1 (noise) down to 0 (data) in equal steps, float64.
    ``num_steps = 1`` gives ``[1, 0]``: the single-step estimate."""
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return torch.linspace(1.0, 0.0, int(num_steps) + 1, dtype=torch.float64)


#: Shift and last sigma of the reference's (DiffSynth's FlowMatchScheduler) 1000-step
#: training grid (models/flowmatch_scheduler.py): ``sigma_min = 0.003 / 1.002``.
REFERENCE_SHIFT = 3.0
REFERENCE_SIGMA_MIN = 0.003 / 1.002
#: Inference sigma schedules: ``"linear"`` (ours) and ``"shifted"`` (the reference's grid).
SIGMA_SCHEDULES = ("linear", "shifted")
#: FLUX.1's ``scheduler/scheduler_config.json`` (``FlowMatchEulerDiscreteScheduler``): the
#: pipeline's scheduler when none is given.
FLUX_SCHEDULER_CONFIG: dict = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}


def shift_sigmas(sigmas, shift: float = REFERENCE_SHIFT) -> torch.Tensor:
    """SD3-style constant shift ``shift * s / (1 + (shift - 1) * s)`` (float64); keeps 0 -> 0 and 1 -> 1."""
    s = torch.as_tensor(sigmas, dtype=torch.float64)
    return shift * s / (1.0 + (shift - 1.0) * s)


def shifted_sigma_grid(num_steps: int, *, sigma_min: float = REFERENCE_SIGMA_MIN,
                       shift: float = REFERENCE_SHIFT) -> torch.Tensor:
    """The reference's N-step grid (REFERENCE.md): ``num_steps + 1`` sigmas, float64.

    ``shift_sigmas(linspace(1, sigma_min, num_steps), shift)`` followed by 0: Euler steps
    between them, the last one straight to 0. ``num_steps = 1`` gives ``[1, 0]``, the same
    single step as the linear grid.
    """
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if not 0.0 <= sigma_min < 1.0:
        raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
    grid = shift_sigmas(torch.linspace(1.0, sigma_min, int(num_steps), dtype=torch.float64), shift)
    return torch.cat([grid, torch.zeros(1, dtype=torch.float64)])


def inference_sigmas(num_steps: int, schedule: str = "linear") -> torch.Tensor:
    """The sampling grid of an inference ``schedule`` (one of :data:`SIGMA_SCHEDULES`)."""
    if schedule == "linear":
        return sigma_grid(num_steps)
    if schedule == "shifted":
        return shifted_sigma_grid(num_steps)
    raise ValueError(f"sigma schedule must be one of {SIGMA_SCHEDULES}, got {schedule!r}")


def scheduler_sigmas(scheduler, num_steps: int, schedule: str = "linear") -> torch.Tensor:
    """The grid ``scheduler`` (a diffusers ``FlowMatchEulerDiscreteScheduler``) sets for
    ``schedule``: :func:`inference_sigmas` without its final 0 goes to
    ``scheduler.set_timesteps(sigmas=...)``, which shifts it by the scheduler's config and
    appends 0. With dynamic shifting ``mu`` is the identity (0 exponential, 1 linear; the
    schedule is not resolution-dependent), so FLUX.1's config returns our grid (float32);
    a scheduler with a static shift, Karras sigmas, ... changes it. Returns float64.
    """
    sigmas = inference_sigmas(num_steps, schedule)[:-1].tolist()
    mu = None
    if scheduler.config.get("use_dynamic_shifting", False):
        mu = 1.0 if scheduler.config.get("time_shift_type", "exponential") == "linear" else 0.0
    scheduler.set_timesteps(sigmas=sigmas, mu=mu)
    return scheduler.sigmas.to(torch.float64)


VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def euler_sample(
    velocity_fn: VelocityFn,
    noise: torch.Tensor,
    sigmas: Sequence[float] | torch.Tensor,
    *,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate ``dx/dsigma = v`` with Euler steps over a decreasing sigma grid.

    ``velocity_fn(x, sigma)`` gets ``sigma`` as a ``(B,)`` tensor in ``x``'s dtype and returns
    ``v`` shaped like ``x``. ``sigmas`` must start at the noise level of ``noise`` (1 for pure
    noise) and should end at 0. With a straight-path (oracle) velocity every grid is exact.
    """
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    if sigmas.ndim != 1 or len(sigmas) < 2 or bool((sigmas[1:] > sigmas[:-1]).any()):
        raise ValueError(f"sigmas must be a decreasing 1-D grid of at least 2 values, got {sigmas.tolist()}")
    x = noise
    steps = range(len(sigmas) - 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="Euler steps", leave=False)
    for i in steps:
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        v = velocity_fn(x, torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype))
        x = x + (sigma_next - sigma) * v
    return x


def base_noise(
    shape: Sequence[int],
    *,
    seed: int = DEFAULT_NOISE_SEED,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Fixed-seed Gaussian noise of per-sample ``shape`` (``C x h x w``).

    Drawn on the CPU in float32 from ``torch.Generator().manual_seed(seed)``, then moved to
    ``device``/``dtype``: the same on every device. With ``batch_size`` every sample gets the
    *same* noise, so a sample's noise does not depend on its position in the batch (the
    image -> map mapping is deterministic). Shared by training and inference.
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
    if batch_size is not None:
        noise = noise.unsqueeze(0).expand(batch_size, *noise.shape)
    return noise.to(device=device, dtype=dtype).contiguous()


ANNEAL_MODES = ("sigma", "sigma_below_one", "one_minus_sigma", "constant")


def multires_strength(sigma: torch.Tensor, strength: float, anneal: str) -> torch.Tensor:
    """Per-sample multi-resolution strength.

    ``"sigma"`` (Marigold's annealing): ``strength * sigma``; strongest at sigma = 1, where
    the single-step model is queried, so training noise differs from the pure base noise
    used at inference (a train/test mismatch). ``"sigma_below_one"``: Marigold's annealing
    for sigma < 1 and none at sigma = 1, so the sigma = 1 input is exactly the inference
    noise. ``"one_minus_sigma"``: ``strength * (1 - sigma)``, annealed continuously to zero
    at sigma = 1. ``"constant"``: ``strength`` everywhere.
    """
    if anneal == "sigma":
        return strength * sigma
    if anneal == "sigma_below_one":
        return torch.where(sigma < 1.0, strength * sigma, torch.zeros_like(sigma))
    if anneal == "one_minus_sigma":
        return strength * (1.0 - sigma)
    if anneal == "constant":
        return torch.full_like(sigma, strength)
    raise ValueError(f"anneal must be one of {ANNEAL_MODES}, got {anneal!r}")


def multi_resolution_noise(
    noise: torch.Tensor,
    sigma: float | torch.Tensor,
    *,
    strength: float = 0.9,
    levels: int = 10,
    anneal: str = "sigma",
    generator: torch.Generator | None = None,
    downscale_range: tuple[float, float] = (2.0, 4.0),
) -> torch.Tensor:
    """Annealed multi-resolution (pyramid) noise on top of ``noise`` (training only): Marigold's
    construction (its ``multi_res_noise_like``, which the reference trains with), exactly.

    ``noise`` (``B x C x H x W``, usually the fixed base noise) is the first full-resolution
    draw. Then for ``i = 0 .. levels - 1``: a factor ``r_i = lo + (hi - lo) * U[0, 1)`` (one
    ``torch.rand(1)`` from ``generator``), the grid shrinks by ``r_i ** i`` *compounding*
    (``h_i = int(h_{i-1} / r_i ** i)``, so level 0 is a second full-resolution level and level
    ``i`` has side ``h / (r_1 r_2^2 ... r_i^i)``), fresh Gaussian noise at that size (``torch.randn``
    from ``generator``) upsampled bilinearly (``align_corners=False``) and added with weight
    ``s ** i``, where ``s = multires_strength(sigma, strength, anneal)`` per sample; stop after the
    level whose grid reaches one pixel along a side. The sum is divided by its standard deviation
    over the whole batch (Marigold's per-batch renormalisation), taken over the samples with
    ``s > 0``; samples with ``s = 0`` are returned unchanged (bit-exact: this project's annealing
    options switch the pyramid off there). With ``anneal="sigma"`` and ``noise`` drawn as
    ``torch.randn(shape, generator=g)``, this equals ``multi_res_noise_like(x, 0.9 * sigma, generator=g)``.
    Draw a fresh ``generator`` state each step (the reference re-seeds it on every call, so its
    pyramid is the same every step; not copied).
    """
    if noise.ndim != 4:
        raise ValueError(f"noise must be B x C x H x W, got shape {tuple(noise.shape)}")
    b, c, h, w = noise.shape
    sigma = torch.as_tensor(sigma, dtype=torch.float32).flatten()
    sigma = sigma.expand(b) if sigma.numel() == 1 else sigma
    s = multires_strength(sigma.to(torch.float32), strength, anneal).to(noise.device)
    lo, hi = downscale_range
    out = noise.to(torch.float32).clone()
    gh, gw = h, w
    for i in range(levels):
        r = torch.rand(1, generator=generator) * (hi - lo) + lo
        gh, gw = max(1, int(gh / (r**i))), max(1, int(gw / (r**i)))
        coarse = torch.randn((b, c, gh, gw), generator=generator).to(out.device)
        up = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        out = out + up * (s**i).view(b, 1, 1, 1)
        if gh == 1 or gw == 1:
            break
    keep = s == 0
    if bool(keep.all()):
        return noise
    out = out / out[~keep].std()
    return torch.where(keep.view(b, 1, 1, 1), noise.to(torch.float32), out).to(noise.dtype)


SIGMA_SAMPLING_MODES = ("one_and_uniform", "uniform", "logit_normal", "one")


def sample_sigmas(
    batch_size: int,
    *,
    mode: str = "one_and_uniform",
    one_probability: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Training noise levels, float32 ``(batch_size,)`` in [0, 1].

    The single-step model is only ever queried at sigma = 1, so that point must get real
    weight (the reference code's weighting is exactly 0 there). Modes:
    ``"one_and_uniform"`` (default): sigma = 1 with probability ``one_probability``, else
    uniform in [0, 1); ``"uniform"``; ``"logit_normal"`` (SD3's ``sigmoid(N(0, 1))``);
    ``"one"``: always 1 (pure single-step regression).
    """
    if mode == "one":
        return torch.ones(batch_size)
    if mode == "uniform":
        return torch.rand(batch_size, generator=generator)
    if mode == "logit_normal":
        return torch.sigmoid(torch.randn(batch_size, generator=generator))
    if mode == "one_and_uniform":
        if not 0.0 <= one_probability <= 1.0:
            raise ValueError(f"one_probability must be in [0, 1], got {one_probability}")
        uniform = torch.rand(batch_size, generator=generator)
        pick_one = torch.rand(batch_size, generator=generator) < one_probability
        return torch.where(pick_one, torch.ones_like(uniform), uniform)
    raise ValueError(f"sigma sampling mode must be one of {SIGMA_SAMPLING_MODES}, got {mode!r}")


# -- The reference implementation's single-step update (released checkpoints) -------------
def reference_single_step_sigma() -> float:
    """Where the reference's single step ends: ``shift(sigma_min)``, about 0.00893.

    The reference computes ``z = eps + (sigma_last - 1) * v`` with sigma 1 given to the DiT,
    i.e. one Euler step over ``[1, sigma_last]``: the factor on ``v`` is ``1 - sigma_last``
    (about 0.9911) instead of the exact 1.
    """
    return float(shift_sigmas(REFERENCE_SIGMA_MIN, REFERENCE_SHIFT))
