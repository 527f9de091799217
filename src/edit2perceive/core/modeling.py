"""Kontext token plumbing around diffusers' ``FluxTransformer2DModel`` and ``AutoencoderKL``.

Same conventions as diffusers' ``FluxKontextPipeline``, so pretrained Kontext weights
behave as pretrained:

- Pixels: RGB (channel order R, G, B), ``B x 3 x H x W`` in [-1, 1]; ``H, W`` multiples of 16.
- Latents: VAE posterior *mean* (no sampling), ``(mean - shift_factor) * scaling_factor``;
  ``B x C x H/8 x W/8`` ("unpacked").
- Tokens: 2x2 latent patches packed to ``4C``-dim tokens, row-major over the patch grid
  (``B x (h/2 * w/2) x 4C``), the channel order ``c, dy, dx`` as in diffusers.
- Position ids ``(index, row, col)`` per token: the target (noisy) latent has index 0, the
  context image 1, a second context image (the matting point map) 2 (the released reference
  models: 1, see ``context_indices``). Text ids are 0.
- Sequence: ``[target tokens, context 1 tokens, context 2 tokens]``; the velocity is read
  from the first (target) tokens only.
- Timestep: ``sigma`` (see :mod:`edit2perceive.core.flow`); guidance embedding value
  (Kontext-dev is guidance-distilled; default 1.0 as in the reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch

DEFAULT_GUIDANCE = 1.0


def rgb_to_model_input(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``H x W x 3`` (or ``B x H x W x 3``) -> float ``B x 3 x H x W`` in [-1, 1]."""
    x = rgb if isinstance(rgb, torch.Tensor) else torch.tensor(np.asarray(rgb))  # copy: inputs may be read-only
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 RGB, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected H x W x 3 or B x H x W x 3 RGB, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0  # as diffusers: [0, 1] then 2x - 1


@torch.no_grad()
def encode_image(vae, image: torch.Tensor) -> torch.Tensor:
    """Pixels in [-1, 1] (``B x 3 x H x W``) -> scaled latents ``B x C x H/8 x W/8`` (posterior mean).

    Runs without gradients: the VAE is frozen and its inputs are data.
    """
    image = image.to(device=vae.device, dtype=vae.dtype)
    mean = vae.encode(image).latent_dist.mode()
    return (mean - vae.config.shift_factor) * vae.config.scaling_factor


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents -> pixels ``B x 3 x H x W``, nominally in [-1, 1] (not clamped).

    Differentiable (no ``no_grad``): the pixel consistency loss back-propagates through the
    frozen decoder into the DiT.
    """
    latents = latents.to(dtype=vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
    return vae.decode(latents, return_dict=False)[0]


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """``B x C x h x w`` -> ``B x (h/2 * w/2) x 4C`` (2x2 patches, diffusers' Flux order)."""
    b, c, h, w = latents.shape
    if h % 2 or w % 2:
        raise ValueError(f"latent height and width must be even to pack 2x2 patches, got {h}x{w}")
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_latents`; ``height, width`` are the latent (not pixel) sizes."""
    b, n, d = tokens.shape
    if n != (height // 2) * (width // 2) or d % 4:
        raise ValueError(f"{n} tokens of dim {d} do not unpack to a {height}x{width} latent")
    x = tokens.view(b, height // 2, width // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, d // 4, height, width)


def latent_position_ids(height: int, width: int, index: int = 0, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Position ids ``(h/2 * w/2) x 3`` for a latent of size ``height x width``: ``(index, row, col)``."""
    rows = torch.arange(height // 2, dtype=torch.float32).view(-1, 1).expand(height // 2, width // 2)
    cols = torch.arange(width // 2, dtype=torch.float32).view(1, -1).expand(height // 2, width // 2)
    ids = torch.stack([torch.full_like(rows, float(index)), rows, cols], dim=-1).reshape(-1, 3)
    return ids.to(device=device, dtype=dtype)


def predict_velocity(
    transformer,
    latents: torch.Tensor,
    sigma: float | torch.Tensor,
    context_latents: Sequence[torch.Tensor],
    prompt_embeds: torch.Tensor,
    pooled_prompt_embeds: torch.Tensor,
    *,
    guidance: float = DEFAULT_GUIDANCE,
    context_indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """Velocity ``v = eps - z1`` predicted by the DiT for the noisy target ``latents``.

    Args:
        latents: noisy target latent ``x_sigma``, unpacked ``B x C x h x w``.
        sigma: noise level(s), scalar or ``(B,)``; passed to the transformer as its timestep.
        context_latents: clean conditioning latents (unpacked, each ``B x C x h_i x w_i``);
            the i-th gets position index ``i + 1`` (image 1, point map 2).
        prompt_embeds: T5 embeddings ``1 x L x D`` or ``B x L x D``.
        pooled_prompt_embeds: CLIP pooled embeddings ``1 x P`` or ``B x P``.
        guidance: embedded guidance value (ignored if the model has no guidance embedding).
        context_indices: position index of each context (default ``1, 2, ...``; the released
            reference models give the point map index 1, the same as the RGB).

    Returns the velocity, unpacked, ``B x C x h x w``, in the transformer's dtype.
    """
    b, _, h, w = latents.shape
    core = getattr(transformer, "module", transformer)  # DDP / accelerate wrappers keep the model in .module
    device, dtype = core.device, core.dtype
    tokens = [pack_latents(latents)]
    ids = [latent_position_ids(h, w, 0, device=device, dtype=dtype)]
    if context_indices is None:
        context_indices = range(1, len(context_latents) + 1)
    if len(context_indices) != len(context_latents):
        raise ValueError(f"{len(context_indices)} context indices for {len(context_latents)} contexts")
    for i, (ctx, index) in enumerate(zip(context_latents, context_indices), start=1):
        if ctx.shape[0] != b:
            raise ValueError(f"context latent {i} has batch {ctx.shape[0]}, target has {b}")
        tokens.append(pack_latents(ctx))
        ids.append(latent_position_ids(ctx.shape[-2], ctx.shape[-1], index, device=device, dtype=dtype))
    hidden = torch.cat(tokens, dim=1).to(device=device, dtype=dtype)
    img_ids = torch.cat(ids, dim=0)

    prompt_embeds = prompt_embeds.to(device=device, dtype=dtype).expand(b, -1, -1)
    pooled_prompt_embeds = pooled_prompt_embeds.to(device=device, dtype=dtype).expand(b, -1)
    txt_ids = torch.zeros(prompt_embeds.shape[1], 3, device=device, dtype=dtype)

    timestep = torch.as_tensor(sigma, device=device, dtype=dtype).flatten().expand(b)
    guidance_vec = None
    if core.config.guidance_embeds:
        guidance_vec = torch.full((b,), float(guidance), device=device, dtype=torch.float32)

    out = transformer(
        hidden_states=hidden,
        timestep=timestep,
        guidance=guidance_vec,
        pooled_projections=pooled_prompt_embeds,
        encoder_hidden_states=prompt_embeds,
        txt_ids=txt_ids,
        img_ids=img_ids,
        return_dict=False,
    )[0]
    return unpack_latents(out[:, : tokens[0].shape[1]], h, w)


def reference_timestep_projection(timesteps: torch.Tensor, num_channels: int = 256) -> torch.Tensor:
    """The timestep sinusoid of DiffSynth's ``FluxDiT`` as the released models were trained:
    ``TimestepEmbeddings(..., align_dtype_to_timestep=True)`` with a bf16 timestep rounds the
    frequencies ``exp(-ln(10000) i / 128)`` to bf16 before ``t * f`` (at t = 1000 that moves
    the high-frequency terms by up to 2 rad: 28 % of the vector's norm). Layout as diffusers'
    ``Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0)``: ``[cos, sin]``, float32."""
    half = num_channels // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / half
    freqs = torch.exp(exponent).to(torch.bfloat16).float().to(timesteps.device)
    args = timesteps.to(torch.bfloat16).float()[:, None] * freqs[None, :]  # the bf16 timestep, as trained
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


@contextmanager
def reference_timestep_embedding(transformer):
    """Within the block, ``transformer`` (a diffusers ``FluxTransformer2DModel``) embeds its
    timestep with :func:`reference_timestep_projection` (the guidance keeps diffusers'
    float32 sinusoid, as DiffSynth's guidance embedder does). Done with forward pre-hooks:
    the combined embedder's timestep argument is kept and the timestep MLP's input replaced."""
    core = getattr(transformer, "module", transformer)
    embed = core.time_text_embed
    seen: dict = {}

    def keep_timestep(module, args):
        seen["timestep"] = args[0]

    def replace_projection(module, args):
        proj = reference_timestep_projection(seen["timestep"], args[0].shape[-1])
        return (proj.to(device=args[0].device, dtype=args[0].dtype),)

    hooks = [embed.register_forward_pre_hook(keep_timestep),
             embed.timestep_embedder.register_forward_pre_hook(replace_projection)]
    try:
        yield transformer
    finally:
        for hook in hooks:
            hook.remove()
