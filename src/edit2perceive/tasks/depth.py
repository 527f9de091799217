"""Monocular depth: affine-invariant depth in a chosen encoding space (sqrt by default).

Encoding of a ground-truth depth map ``d`` (metres, planar depth):

1. ``s = g(d)`` with ``g`` = ``sqrt`` (default; minimizes bf16 relative quantization error,
   paper Eq. 11), ``uniform`` (identity), ``log`` or ``disparity`` (``1 / d``).
2. Robust normalization with the 2nd / 98th percentiles of ``s`` over valid pixels:
   ``y = ((s - p_lo) / (p_hi - p_lo) - 0.5) * 2``, clipped to [-1, 1], copied to 3 channels.

Invalid pixels (mask false, non-finite, or ``d <= 0``) never enter the percentiles. In the
encoded image (what the VAE encodes into the latent target), an invalid pixel that still has a
depth (``d > 0``, e.g. Virtual KITTI's sky at 655.35 m, masked by the valid range; ``+inf``)
keeps its clipped normalised value, so sky is far (+1; -1 for ``disparity``), as in the
reference; a hole (``d <= 0`` or NaN: no measurement) is ``hole_fill``: ``"near"`` (the value
of ``d -> 0``, -1 (+1 for ``disparity``); the reference's, and the default: measured in
docs/training.md) or ``"zero"`` (mid-range). A map with no valid pixel raises ``ValueError``; a constant map
(``p_hi == p_lo``) encodes to 0 (mid-range) everywhere.

Prediction (``decode``): ``N x H x W`` in [0, 1] = ``(y + 1) / 2`` averaged over channels,
i.e. normalized *encoded* depth (for ``disparity`` the order is inverted: near is high).
It is affine-invariant: evaluation fits scale and shift (in sqrt space for sqrt models).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import EncodedTarget, Task, as_valid_mask, channel_mean_unit

DEPTH_PROMPT = "Transform to depth map while maintaining original composition"
#: encoding -> (g: depth -> encoded, its inverse)
_ENCODINGS = {
    "sqrt": (np.sqrt, np.square),
    "uniform": (lambda d: d, lambda s: s),
    "log": (np.log, np.exp),
    "disparity": (lambda d: 1.0 / d, lambda s: 1.0 / s),
}
DEPTH_ENCODINGS = tuple(_ENCODINGS)


def _encoding(encoding: str) -> tuple:
    if encoding not in _ENCODINGS:
        raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
    return _ENCODINGS[encoding]


HOLE_FILLS = ("zero", "near")


def _forward(depth: np.ndarray, encoding: str) -> np.ndarray:
    return _encoding(encoding)[0](depth)


def _inverse(s: np.ndarray, encoding: str) -> np.ndarray:
    return _encoding(encoding)[1](s)


def scale_shift_invariant_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image least-squares scale-and-shift-invariant L1 (``B x H x W`` inputs).

    For each image, ``s, t = argmin sum_M (s * pred + t - target)^2`` (closed form, gradient
    flows through ``s`` and ``t``), then ``mean_M |target - (s * pred + t)|``. A constant
    prediction gets the minimum-norm solution ``s = 0, t = mean(target)``. Images with no
    valid pixel are left out of the batch mean; if none is valid the loss is 0 (attached to
    the graph).
    """
    m = mask.to(pred.dtype)
    n = m.sum(dim=(1, 2))
    has = n > 0
    n_safe = n.clamp_min(1.0)
    mean_p = (pred * m).sum(dim=(1, 2)) / n_safe
    mean_t = (target * m).sum(dim=(1, 2)) / n_safe
    dp = (pred - mean_p[:, None, None]) * m
    dt = (target - mean_t[:, None, None]) * m
    var = (dp * dp).sum(dim=(1, 2))
    cov = (dp * dt).sum(dim=(1, 2))
    degenerate = var <= 1e-12 * n_safe
    scale = torch.where(degenerate, torch.zeros_like(var), cov / torch.where(degenerate, torch.ones_like(var), var))
    shift = mean_t - scale * mean_p
    aligned = scale[:, None, None] * pred + shift[:, None, None]
    per_image = ((aligned - target).abs() * m).sum(dim=(1, 2)) / n_safe
    if not bool(has.any()):
        return pred.sum() * 0.0
    return per_image[has].mean()


class DepthTask(Task):
    """Depth as an "edit": RGB -> a grey image of normalized (sqrt) depth."""

    name = "depth"
    target_key = "depth"
    prompt = DEPTH_PROMPT
    metric = "depth_metrics"
    config_fields = ("encoding", "lower_percentile", "upper_percentile", "hole_fill")

    def __init__(self, encoding: str = "sqrt", lower_percentile: float = 2.0, upper_percentile: float = 98.0,
                 hole_fill: str = "near"):
        _encoding(encoding)
        if hole_fill not in HOLE_FILLS:
            raise ValueError(f"hole_fill must be one of {HOLE_FILLS}, got {hole_fill!r}")
        self.hole_fill = hole_fill
        if not 0 <= lower_percentile < upper_percentile <= 100:
            raise ValueError(f"need 0 <= lower < upper <= 100, got {lower_percentile}, {upper_percentile}")
        self.encoding = encoding
        self.lower_percentile = float(lower_percentile)
        self.upper_percentile = float(upper_percentile)


    # -- encoding ---------------------------------------------------------------------
    def valid_depth_mask(self, depth: np.ndarray, valid_mask=None) -> np.ndarray:
        """Pixels usable for the encoding: mask & finite & > 0."""
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"depth must be H x W, got shape {depth.shape}")
        with np.errstate(invalid="ignore"):
            return as_valid_mask(valid_mask, depth.shape) & np.isfinite(depth) & (depth > 0)

    def encode_depth(self, depth: np.ndarray, valid_mask=None) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """Depth (metres) -> (normalized map in [-1, 1], mask, (p_lo, p_hi)); invalid pixels as
        in the module docstring (measured: clipped value; holes: ``hole_fill``)."""
        mask = self.valid_depth_mask(depth, valid_mask)
        if not mask.any():
            raise ValueError("depth target has no valid pixel (all masked, non-finite or <= 0)")
        d = np.asarray(depth, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            measured = ~mask & (d > 0)  # +inf included (NaN > 0 is False)
        s = np.zeros(depth.shape, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s[mask | measured] = _forward(d[mask | measured], self.encoding)
        lo, hi = np.percentile(s[mask], [self.lower_percentile, self.upper_percentile])
        y = np.zeros_like(s)
        if hi > lo:
            with np.errstate(invalid="ignore"):
                y[mask | measured] = np.clip(((s[mask | measured] - lo) / (hi - lo) - 0.5) * 2.0, -1.0, 1.0)
            if self.hole_fill == "near":
                y[~(mask | measured)] = 1.0 if self.encoding == "disparity" else -1.0
        return y.astype(np.float32), mask, (float(lo), float(hi))

    def decode_depth(self, y: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
        """Inverse of :meth:`encode_depth` for a normalized map ``y`` in [-1, 1] (exact
        for pixels that were inside the percentile range; clipped ones saturate)."""
        lo, hi = stats
        s = (np.asarray(y, dtype=np.float64) / 2.0 + 0.5) * (hi - lo) + lo
        return _inverse(s, self.encoding)

    def encode_target(self, target: np.ndarray, valid_mask=None) -> EncodedTarget:
        y, mask, (lo, hi) = self.encode_depth(target, valid_mask)
        image = torch.from_numpy(y).unsqueeze(0).expand(3, -1, -1).contiguous()
        return EncodedTarget(image, torch.from_numpy(mask), {"p_lo": lo, "p_hi": hi, "encoding": self.encoding})

    # -- model side -------------------------------------------------------------------
    def decode(self, pixels: torch.Tensor, clip_channels: bool = False) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x H x W`` in [0, 1] (affine-invariant; see :func:`channel_mean_unit`)."""
        return channel_mean_unit(pixels, clip_channels)

    def pixel_loss(self, pixels: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Scale-and-shift-invariant L1 on the channel-mean maps (encoding space)."""
        return scale_shift_invariant_l1(pixels.mean(dim=1), target.mean(dim=1), mask)

    def ensemble(self, members: torch.Tensor, output_uncertainty: bool = False):
        """Affine-aligned ensemble of ``E x H x W`` predictions: diffusers'
        ``MarigoldDepthPipeline.ensemble_depth``. It fits every encoding: predictions are
        affine-invariant *in the encoding space* (sqrt, disparity, ...) and that is where the
        per-member scale and shift are solved and the members reduced. Reduction: median
        (Marigold's default; uncertainty = median absolute deviation), for two members the
        mean (uncertainty = standard deviation), as ``torch.median`` would pick the lower one.
        The result is rescaled to [0, 1] and the uncertainty by the same factor."""
        from diffusers import MarigoldDepthPipeline

        reduction = "mean" if members.shape[0] == 2 else "median"
        pred, unc = MarigoldDepthPipeline.ensemble_depth(
            members.float()[:, None], scale_invariant=True, shift_invariant=True,
            output_uncertainty=output_uncertainty, reduction=reduction)
        return pred[0, 0].clamp(0.0, 1.0), None if unc is None else unc[0, 0]
