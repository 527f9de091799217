"""Surface normals as an RGB "edit".

Camera convention (the Marigold / diffusers convention): x points right, y points up,
z points toward the viewer; normals face the camera, so a surface seen head-on is
``(0, 0, 1)``. Channels R, G, B hold x, y, z in [-1, 1]. A horizontal image flip negates x.
(Edit2Perceive's reference evaluator flips x of the ground truth; convert explicitly.)

Encoding: unit-normalize per pixel; pixels with a zero-length, non-finite or masked
normal are invalid and encode to 0. Prediction (``decode``): ``N x H x W x 3`` unit
vectors (an exactly zero decoded vector stays zero and scores 90 degrees in the metrics).
Loss: mean angle ``atan2(|y x y_hat|, y . y_hat)`` in radians over valid pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import EncodedTarget, Task, as_valid_mask, masked_mean

NORMAL_PROMPT = "Transform to normal map while maintaining original composition"
MIN_NORMAL_LENGTH = 1e-6


def angular_error_atan2(pred: torch.Tensor, target: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per-pixel angle (radians) between vectors along ``dim``: ``atan2(|a x b|, a . b)``.

    Scale-invariant in both arguments, numerically exact near 0 and pi, and with finite
    gradients for exactly collinear vectors (where ``arccos`` of the cosine has infinite ones).
    """
    cross = torch.linalg.vector_norm(torch.linalg.cross(target, pred, dim=dim), dim=dim)
    dot = (target * pred).sum(dim=dim)
    return torch.atan2(cross, dot)


class NormalTask(Task):
    """Surface normals in the camera frame (x right, y up, z toward the viewer)."""

    name = "normal"
    target_key = "normal"
    prompt = NORMAL_PROMPT
    metric = "normal_metrics"

    def encode_target(self, target: np.ndarray, valid_mask=None) -> EncodedTarget:
        normal = np.asarray(target, dtype=np.float64)
        if normal.ndim != 3 or normal.shape[-1] != 3:
            raise ValueError(f"normals must be H x W x 3, got shape {normal.shape}")
        mask = as_valid_mask(valid_mask, normal.shape[:2]) & np.isfinite(normal).all(axis=-1)
        length = np.linalg.norm(np.where(np.isfinite(normal), normal, 0.0), axis=-1)
        mask &= length > MIN_NORMAL_LENGTH
        unit = np.zeros_like(normal)
        unit[mask] = normal[mask] / length[mask, None]
        image = torch.from_numpy(unit.astype(np.float32)).permute(2, 0, 1).contiguous()
        return EncodedTarget(image, torch.from_numpy(mask))

    def decode(self, pixels: torch.Tensor, clip_channels: bool = False) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x H x W x 3`` unit vectors (never clipped first, as the
        reference's ``vae_out_to_np``: ``clip_channels`` is accepted and has no effect)."""
        return F.normalize(pixels, dim=1, eps=MIN_NORMAL_LENGTH).permute(0, 2, 3, 1)

    def pixel_loss(self, pixels: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean atan2 angular error (radians) over valid pixels of the batch."""
        return masked_mean(angular_error_atan2(pixels, target, dim=1), mask)

    def unflip(self, prediction: torch.Tensor) -> torch.Tensor:
        """Mirror an ``H x W x 3`` normal map back and negate x (a mirror flips the x axis)."""
        out = prediction.flip(1).clone()
        out[..., 0] = -out[..., 0]
        return out

    def ensemble(self, members: torch.Tensor, output_uncertainty: bool = False):
        """Mean direction of ``E x H x W x 3`` unit normals (diffusers'
        ``MarigoldNormalsPipeline.ensemble_normals``, reduction ``"mean"``). Uncertainty: the
        angular spread, the mean angle between the members and the mean direction divided by
        pi (in [0, 1]; Marigold's convention), repeated in the 3 components so that it has
        the prediction's shape (``uncertainty[..., 0]`` is the map)."""
        from diffusers import MarigoldNormalsPipeline

        pred, unc = MarigoldNormalsPipeline.ensemble_normals(
            members.float().permute(0, 3, 1, 2), output_uncertainty=output_uncertainty, reduction="mean")
        pred = pred[0].permute(1, 2, 0)
        if unc is None:
            return pred, None
        return pred, unc[0, 0, :, :, None].expand(-1, -1, 3).contiguous()
