"""Input handling shared by the metric functions: numpy/torch conversion, masks, shape policy.

Policies (the same for every metric function):
- torch tensors are detached and moved to the CPU; everything is computed in float64.
- Leading singleton dimensions (``1 x H x W``) are dropped.
- Shape mismatch between prediction and ground truth: ``resize="bilinear"`` (the default)
  resizes the prediction to the ground-truth size with bilinear interpolation
  (``align_corners=False``, no antialiasing, as ``torch.nn.functional.interpolate``);
  ``resize=None`` raises ``ValueError`` instead.
- Non-finite predictions: ``nonfinite="error"`` (the default) raises ``ValueError`` giving
  the count and the first offending pixel; ``nonfinite="mask"`` drops those pixels from the
  evaluation mask (callers count them with :func:`count_nonfinite`).
"""

from __future__ import annotations

import numpy as np

RESIZE_POLICIES = ("bilinear", None)
NONFINITE_POLICIES = ("error", "mask")


def to_numpy(x, name: str) -> np.ndarray:
    """numpy array (float64 unless bool/integer is needed later) from numpy or torch input."""
    if x is None:
        raise ValueError(f"{name} is None")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def squeeze_leading(x: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """Drop leading singleton axes until ``x.ndim == ndim``; ``ValueError`` if that is impossible."""
    while x.ndim > ndim and x.shape[0] == 1:
        x = x[0]
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions (after dropping leading 1s), got shape {x.shape}")
    return x


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``H x W`` or ``H x W x C`` to ``size = (H', W')`` (align_corners=False)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)[0]
    return (out[0] if x.ndim == 2 else out.permute(1, 2, 0)).numpy()


def match_shape(pred: np.ndarray, gt_shape: tuple[int, ...], resize, name: str = "prediction") -> np.ndarray:
    """Apply the shape policy: return ``pred`` with spatial size ``gt_shape[:2]``."""
    if resize not in RESIZE_POLICIES:
        raise ValueError(f"resize must be one of {RESIZE_POLICIES}, got {resize!r}")
    if pred.shape[:2] == tuple(gt_shape[:2]):
        return pred
    if resize is None:
        raise ValueError(
            f"{name} has spatial size {pred.shape[:2]} but the ground truth has {tuple(gt_shape[:2])} "
            "(pass resize='bilinear' to resize the prediction to the ground-truth size)"
        )
    return resize_bilinear(pred, gt_shape[:2])


def as_mask(mask, shape: tuple[int, ...], name: str = "valid_mask") -> np.ndarray:
    """Boolean ``H x W`` mask; ``None`` means all pixels."""
    if mask is None:
        return np.ones(shape[:2], dtype=bool)
    m = squeeze_leading(to_numpy(mask, name), 2, name)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"{name} has shape {m.shape} but the ground truth has spatial size {tuple(shape[:2])}")
    return m.astype(bool)


def count_nonfinite(pred) -> int:
    """Number of pixels with a non-finite value (any channel) in a prediction."""
    p = to_numpy(pred, "prediction")
    bad = ~np.isfinite(p)
    if p.ndim == 3 and p.shape[-1] == 3:
        bad = bad.any(axis=-1)
    return int(bad.sum())


def handle_nonfinite(pred: np.ndarray, mask: np.ndarray, nonfinite: str, name: str = "prediction") -> np.ndarray:
    """Apply the non-finite policy; returns the (possibly reduced) mask."""
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    finite = np.isfinite(pred)
    if finite.ndim == 3:
        finite = finite.all(axis=-1)
    if finite.all():
        return mask
    if nonfinite == "error":
        bad = np.argwhere(~finite)
        raise ValueError(
            f"{name} has {len(bad)} non-finite pixel(s) (NaN or inf), first at (row, col) = {tuple(int(v) for v in bad[0])}; "
            "pass nonfinite='mask' to leave them out of the evaluation"
        )
    return mask & finite
