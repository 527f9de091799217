"""The small interface every task implements (depth, normal, matting).

A task owns everything task-specific: the exact prompt, how a ground-truth map becomes a
3-channel image in [-1, 1] for the VAE (``encode_target``), how decoded pixels become a
prediction (``decode``), the pixel-space consistency loss, and which metrics apply.

Conventions shared by all tasks:
- Encoded targets and decoded model outputs are ``3 x H x W`` (batched: ``B x 3 x H x W``)
  float tensors in [-1, 1], channel-first.
- Valid masks are bool ``H x W`` (batched ``B x H x W``); losses and encodings only ever
  look at valid pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class EncodedTarget:
    """A ground-truth map encoded for the VAE.

    ``image``: float32 ``3 x H x W`` in [-1, 1] (0 where invalid). ``mask``: bool ``H x W``.
    ``stats``: what is needed to invert the encoding (e.g. depth percentiles).
    """

    image: torch.Tensor
    mask: torch.Tensor
    stats: dict = field(default_factory=dict)


def as_valid_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` (or all-True if None) as a bool array of ``shape``, with a clear error."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"valid mask has shape {mask.shape}, expected {tuple(shape)}")
    return mask.astype(bool)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (same shape). With no selected pixel the result is
    0 *attached to the graph* (so ``backward`` still works and contributes nothing)."""
    mask = mask.to(values.dtype)
    count = mask.sum()
    return (values * mask).sum() / count.clamp_min(1.0)


def median_ensemble(members: torch.Tensor, output_uncertainty: bool = False):
    """Per-pixel median over the first axis (the mean of the two middle values for an even
    count, unlike ``torch.median``) and, if asked, the median absolute deviation from it."""
    def middle(values: torch.Tensor) -> torch.Tensor:  # torch.quantile refuses inputs > 16M values
        ordered = values.sort(dim=0).values
        n = ordered.shape[0]
        return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0

    median = middle(members.float())
    if not output_uncertainty:
        return median, None
    return median, middle((members.float() - median).abs())


def channel_mean_unit(pixels: torch.Tensor, clip_channels: bool = False) -> torch.Tensor:
    """``B x 3 x H x W`` in about [-1, 1] -> ``B x H x W`` in [0, 1]: the channel mean mapped by
    ``(y + 1) / 2`` and clipped; with ``clip_channels`` each channel is clipped to [-1, 1] first
    (the reference's ``vae_out_to_np``, then its mean), which differs where a channel saturates."""
    if clip_channels:
        pixels = pixels.clamp(-1.0, 1.0)
    return ((pixels.mean(dim=1) + 1.0) / 2.0).clamp(0.0, 1.0)


class Task(ABC):
    """Base class of a dense-perception task."""

    #: registry name: "depth" | "normal" | "matting"
    name: str
    #: key of the ground truth in the data's example dict ("depth" | "normal" | "alpha")
    target_key: str
    #: exact prompt string given to the text encoders
    prompt: str
    #: number of conditioning images (RGB = 1; matting adds the point map = 2)
    num_context_images: int = 1
    #: metric function in :mod:`edit2perceive.metrics` that evaluates this task
    metric: str
    #: the constructor's options, stored as attributes of the same names (see ``config``)
    config_fields: tuple[str, ...] = ()

    @abstractmethod
    def encode_target(self, target: np.ndarray, valid_mask: np.ndarray | None = None) -> EncodedTarget:
        """Ground truth (one example, numpy) -> :class:`EncodedTarget`."""

    @abstractmethod
    def decode(self, pixels: torch.Tensor, clip_channels: bool = False) -> torch.Tensor:
        """Decoded VAE output ``B x 3 x H x W`` (about [-1, 1]) -> the task's prediction;
        ``clip_channels``: clip each channel to [-1, 1] before combining them (the reference's)."""

    @abstractmethod
    def pixel_loss(self, pixels: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Consistency loss between decoded pixels and the encoded target (both
        ``B x 3 x H x W``) over the valid ``mask`` (``B x H x W``); a differentiable scalar."""

    # -- test-time ensembles (see edit2perceive.pipelines.ensemble) -----------------------------
    def unflip(self, prediction: torch.Tensor) -> torch.Tensor:
        """Undo a left-right image mirror on one prediction (``H x W`` or ``H x W x C``)."""
        return prediction.flip(1)

    def ensemble(self, members: torch.Tensor, output_uncertainty: bool = False):
        """Combine ``E`` predictions of one image (``E x H x W`` or ``E x H x W x C``) into one
        prediction and, if asked, an uncertainty map of the same shape (``>= 0``, else ``None``)."""
        raise NotImplementedError(f"task {self.name!r} does not define ensembling")

    def config(self) -> dict:
        """JSON-serializable options that reconstruct this task with :func:`get_task`."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.config_fields}}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({opts})"
