"""Interactive (point-prompted) matting.

Target: alpha in [0, 1] -> ``2 * alpha - 1`` copied to 3 channels. Continuous by default
(as the reference code trains); ``binarize=True`` uses ``alpha > 0.5`` as the paper writes.
Prediction (``decode``): ``N x H x W`` alpha in [0, 1].

Point prompt (the second context image, position index 2):
- training samples up to ``max_points`` (default 10; the count is uniform in 1..max)
  foreground points from ``alpha > 0.8`` with a per-example RNG
  (:func:`point_rng` of seed, example index and epoch: fresh points each epoch, no
  global reseeding);
- points are ``(x, y)`` pixel coordinates (x = column, y = row, origin top-left);
- the map is the max over points of a Gaussian ``exp(-r^2 / (2 sigma^2))`` with
  ``sigma = 20 / 512`` of the longest side (3.9 %: the reference trains at 512 px with 20 px;
  30 px at 768), in [0, 1], mapped to [-1, 1] and copied to 3 channels for the VAE. No
  points -> all -1.

The released models' prompts (``click_point_map`` for interactive use, the benchmark protocol
in :mod:`edit2perceive.evaluation.points`) draw ``render_reference_point_map`` at points
sampled with the authors' ``gen_points`` rule (:func:`gen_points_sample`).

Loss: mean L1 over the unknown band U plus mean L1 over the known region K. The trimap
comes from the ground truth: foreground ``alpha >= 0.99`` and background ``alpha <= 0.01``
are eroded by ``trimap_radius`` pixels (default ``10 * max(H, W) / 768``); everything else
(the transition and a band around every edge) is U; K is the rest of the valid pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import EncodedTarget, Task, as_valid_mask, channel_mean_unit, masked_mean, median_ensemble

MATTING_PROMPT = "Transform to matting map while maintaining original composition"
REFERENCE_RESOLUTION = 768
#: Gaussian sigma as a fraction of the longest side: the reference trains matting at 512 px with 20 px
POINT_SIGMA_FRACTION = 20.0 / 512.0
#: the released models' interactive prompt (app.py / inference.py), in px of the 768 x 768 input
CLICK_RADIUS, CLICK_POINTS, CLICK_SIGMA, CLICK_SEED = 100, 10, 30.0, 42


def point_rng(seed: int, example_index: int, epoch: int = 0) -> np.random.Generator:
    """Independent, reproducible RNG for one example in one epoch."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(example_index), int(epoch)]))


def sample_points(
    alpha: np.ndarray, rng: np.random.Generator, *, max_points: int = 10, threshold: float = 0.8
) -> np.ndarray:
    """Up to ``max_points`` distinct ``(x, y)`` pixels with ``alpha > threshold``.

    The count is drawn uniformly from ``1..max_points`` (capped by the number of candidate
    pixels). Returns an int array ``K x 2`` (``K = 0`` when no pixel qualifies).
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H x W, got shape {alpha.shape}")
    ys, xs = np.nonzero(alpha > threshold)
    if len(xs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    count = min(int(rng.integers(1, max_points + 1)), len(xs))
    pick = rng.choice(len(xs), size=count, replace=False)
    return np.stack([xs[pick], ys[pick]], axis=1).astype(np.int64)


def point_sigma(height: int, width: int) -> float:
    """Gaussian sigma in pixels for a ``height x width`` image: 20 / 512 of the longest side."""
    return POINT_SIGMA_FRACTION * max(height, width)


def render_point_map(points, height: int, width: int, sigma: float | None = None) -> np.ndarray:
    """Max-combined Gaussians at ``points`` (``K x 2`` of ``(x, y)``): float32 ``H x W`` in [0, 1].

    Raises ``ValueError`` for a point outside the image.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((height, width), dtype=np.float32)
    if len(pts) == 0:
        return out
    bad = (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
    if bad.any():
        x, y = pts[np.argmax(bad)]
        raise ValueError(f"point (x={x:g}, y={y:g}) lies outside the {width}x{height} image")
    sigma = point_sigma(height, width) if sigma is None else float(sigma)
    gx = np.exp(-((np.arange(width)[None, :] - pts[:, :1]) ** 2) / (2 * sigma**2))  # K x W
    gy = np.exp(-((np.arange(height)[None, :] - pts[:, 1:]) ** 2) / (2 * sigma**2))  # K x H
    return (gy[:, :, None] * gx[:, None, :]).max(axis=0).astype(np.float32)


def render_reference_point_map(points, height: int, width: int, sigma: float = 20.0) -> np.ndarray:
    """The reference's point map (models/unified_dataset.py ``gen_points``): a unit delta at
    each point's nearest whole pixel, ``scipy.ndimage.gaussian_filter`` with ``sigma`` px
    (default mode ``reflect``, truncated at 4 sigma), each normalised to peak 1, combined
    with a maximum. float32 ``H x W`` in [0, 1]. The released models were trained on maps of
    sigma 20 at 512 x 512; their benchmark draws sigma 20 on the original image, their app 30
    at 768 (:func:`click_point_map`).
    """
    try:
        from scipy.ndimage import gaussian_filter1d
    except ImportError as err:  # scipy is in the eval extra
        raise ImportError("the reference point map needs scipy: pip install scipy") from err

    def filtered_delta(n: int, at: int) -> np.ndarray:
        delta = np.zeros(n, dtype=np.float32)
        delta[at] = 1.0
        return gaussian_filter1d(delta, sigma=float(sigma))

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((height, width), dtype=np.float32)
    for x, y in np.rint(pts).astype(np.int64):
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"point (x={x}, y={y}) lies outside the {width}x{height} image")
        # gaussian_filter runs gaussian_filter1d along each axis, so on a delta it is the outer
        # product of two filtered 1-D deltas (the same values up to float32 rounding, ~100x faster)
        blob = np.outer(filtered_delta(height, y), filtered_delta(width, x))
        if blob.max() > 0:
            blob /= blob.max()
        out = np.maximum(out, blob)
    return out


def gen_points_sample(mask: np.ndarray, num_points: int, threshold: float = 0.8, seed: int = 42) -> np.ndarray:
    """The authors' ``gen_points`` sampling (models/unified_dataset.py): ``num_points`` pixels
    without replacement from ``mask > threshold`` (candidates in row-major order) by
    ``np.random.RandomState(seed).choice`` (the same draw as their ``np.random.seed(seed)``, without
    touching numpy's global state). Fewer candidates than ``num_points``: none (their map is then
    empty). Returns an int array ``K x 2`` of ``(x, y)``."""
    ys, xs = np.nonzero(np.asarray(mask) > threshold)
    if len(xs) < num_points:
        return np.zeros((0, 2), dtype=np.int64)
    pick = np.random.RandomState(seed).choice(len(xs), size=num_points, replace=False)
    return np.stack([xs[pick], ys[pick]], axis=1).astype(np.int64)


def click_point_map(clicks, image_size: tuple[int, int], height: int, width: int, sigma: float | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The released models' interactive prompt (app.py ``inference``): each click ``(x, y)`` in
    the ``image_size = (H0, W0)`` input becomes a disk of radius 100 px at ``int(x * W / W0),
    int(y * H / H0)`` on the ``height x width`` canvas; :func:`gen_points_sample` takes 10 points
    from the disks (seed 42) and :func:`render_reference_point_map` draws them with sigma 30 px.
    Radius and sigma are per 768 px of the canvas's longest side (exact at the reference's
    768 x 768). Returns ``(point map H x W in [0, 1], sampled points K x 2)``."""
    scale = max(height, width) / REFERENCE_RESOLUTION
    radius = CLICK_RADIUS * scale
    h0, w0 = image_size
    yy, xx = np.ogrid[:height, :width]
    disks = np.zeros((height, width), dtype=np.float32)
    for x, y in np.asarray(clicks, dtype=np.float64).reshape(-1, 2):
        cx, cy = int(x * width / w0), int(y * height / h0)
        disks[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = 1.0
    points = gen_points_sample(disks, CLICK_POINTS, seed=CLICK_SEED)
    sigma = CLICK_SIGMA * scale if sigma is None else float(sigma)
    return render_reference_point_map(points, height, width, sigma=sigma), points


def point_map_image(point_map: np.ndarray) -> torch.Tensor:
    """Point map in [0, 1] (``H x W``) -> ``3 x H x W`` in [-1, 1] for the VAE."""
    x = torch.from_numpy(np.asarray(point_map, dtype=np.float32)) * 2.0 - 1.0
    return x.unsqueeze(0).expand(3, -1, -1).contiguous()


def trimap_regions(alpha: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unknown, known)`` bool masks (``B x H x W``) from ground-truth alpha ``B x H x W``."""
    k = 2 * int(radius) + 1

    def erode(region: torch.Tensor) -> torch.Tensor:
        # erosion = NOT dilation of the complement; pixels outside the image count as inside
        grown = F.max_pool2d((~region).float().unsqueeze(1), k, stride=1, padding=int(radius))
        return grown.squeeze(1) == 0

    fg = erode(alpha >= 0.99)
    bg = erode(alpha <= 0.01)
    known = fg | bg
    return ~known, known


class MattingTask(Task):
    """Alpha matting from an RGB image plus foreground points."""

    name = "matting"
    target_key = "alpha"
    prompt = MATTING_PROMPT
    metric = "matting_metrics"
    config_fields = ("binarize", "max_points", "point_threshold")
    num_context_images = 2

    def __init__(self, binarize: bool = False, max_points: int = 10, point_threshold: float = 0.8):
        self.binarize = bool(binarize)
        self.max_points = int(max_points)
        self.point_threshold = float(point_threshold)

    def encode_target(self, target: np.ndarray, valid_mask=None) -> EncodedTarget:
        alpha = np.asarray(target, dtype=np.float32)
        if alpha.ndim != 2:
            raise ValueError(f"alpha must be H x W, got shape {alpha.shape}")
        finite = np.isfinite(alpha)
        if finite.any() and (alpha[finite].min() < 0 or alpha[finite].max() > 1):
            raise ValueError(f"alpha must lie in [0, 1], got [{alpha[finite].min():g}, {alpha[finite].max():g}]")
        mask = as_valid_mask(valid_mask, alpha.shape) & finite
        alpha = np.where(mask, alpha, 0.0)
        if self.binarize:
            alpha = (alpha > 0.5).astype(np.float32)
        image = torch.from_numpy(alpha * 2.0 - 1.0).unsqueeze(0).expand(3, -1, -1).contiguous()
        return EncodedTarget(image.float(), torch.from_numpy(mask))

    def sample_point_map(self, alpha: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Training prompt: ``(points K x 2, point map H x W in [0, 1])`` from GT alpha."""
        points = sample_points(alpha, rng, max_points=self.max_points, threshold=self.point_threshold)
        return points, render_point_map(points, *np.shape(alpha))

    def decode(self, pixels: torch.Tensor, clip_channels: bool = False) -> torch.Tensor:
        """``B x 3 x H x W`` -> alpha ``B x H x W`` in [0, 1] (see :func:`channel_mean_unit`)."""
        return channel_mean_unit(pixels, clip_channels)

    def ensemble(self, members: torch.Tensor, output_uncertainty: bool = False):
        """Per-pixel median alpha of ``E x H x W`` members (alpha is absolute: no alignment);
        uncertainty = median absolute deviation."""
        return median_ensemble(members, output_uncertainty)

    def pixel_loss(self, pixels: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unknown-band L1 + known-region L1 on alpha in [0, 1] (pooled over the batch)."""
        pred = (pixels.mean(dim=1) + 1.0) / 2.0
        gt = (target.mean(dim=1) + 1.0) / 2.0
        radius = max(1, round(10 * max(gt.shape[-2:]) / REFERENCE_RESOLUTION))
        unknown, known = trimap_regions(gt, radius)
        err = (pred - gt).abs()
        return masked_mean(err, unknown & mask) + masked_mean(err, known & mask)
