"""Fitting a tiny VAE as an autoencoder (for tiny, randomly initialized components only).

A random VAE cannot reconstruct anything, so a tiny Edit2Perceive model trained on top
of it could never decode a good map. Before training the tiny DiT (demo, tests), the VAE
is fitted briefly to reconstruct both the RGB inputs and the encoded targets, then frozen.
The real FLUX VAE never needs this.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def reconstruction_error(vae, images: torch.Tensor, batch_size: int = 16) -> float:
    """Mean absolute error (in [-1, 1] pixel units) of ``decode(mean(encode(x)))``."""
    errors = []
    with torch.no_grad():
        for chunk in images.split(batch_size):
            chunk = chunk.to(vae.device, vae.dtype)
            recon = vae.decode(vae.encode(chunk).latent_dist.mode()).sample
            errors.append((recon - chunk).abs().mean(dim=(1, 2, 3)))
    return float(torch.cat(errors).mean())


def fit_autoencoder(
    vae,
    images: torch.Tensor,
    *,
    steps: int = 300,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    kl_weight: float = 1e-6,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fit ``vae`` to reconstruct ``images`` (``N x 3 x H x W`` in [-1, 1]); returns errors.

    L1 reconstruction of the posterior mean plus a tiny KL term, AdamW. The VAE is left in
    eval mode with gradients off. Returns ``{"before": mae, "after": mae}``.
    """
    generator = torch.Generator().manual_seed(seed)
    before = reconstruction_error(vae, images)
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    bar = tqdm(range(steps), desc="fit tiny VAE", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, len(images), (min(batch_size, len(images)),), generator=generator)
        x = images[idx].to(vae.device, vae.dtype)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.mode()).sample
        loss = F.l1_loss(recon, x) + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(l1=f"{loss.item():.4f}")
    vae.eval().requires_grad_(False)
    return {"before": before, "after": reconstruction_error(vae, images)}
