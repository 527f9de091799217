"""Alpha-matting metrics: MSE, MAD, SAD, Grad, Conn (the MATLAB reference definitions).

Inputs are alpha mattes in [0, 1] (8-bit ``uint8`` arrays are divided by 255). The region is
the whole image (``trimap=None``: Edit2Perceive, SDMatte, AIM/P3M tables) or the trimap's
unknown band (pixels equal to 128: DIM-style papers).

- ``mse = mean((p - g)^2)``, ``mad = mean(|p - g|)`` over the region (raw, not x1e3).
- ``sad = sum(|p - g|) / 1000``.
- ``grad = sum((|grad p| - |grad g|)^2) / 1000``; gradients by convolution with the
  first-derivative-of-Gaussian kernel (sigma 1.4, 9 x 9, L2-normalized, y kernel = x kernel
  transposed, replicated border).
- ``conn = sum(|phi_p - phi_g|) / 1000`` with thresholds ``k / 10`` (k = 1..10), the *largest
  4-connected foreground component* of ``(p >= tau) & (g >= tau)`` and ``theta = 0.15``.
  ``conn_mode="python_port"`` reproduces the widely copied Python port instead: float
  ``arange`` thresholds and a "largest component" that counts the background label (so it can
  pick the background); only for comparing with numbers produced by that code.

An empty region (no trimap pixel equals 128) gives NaN for every metric.
"""

from __future__ import annotations

import math

import numpy as np

from ._inputs import handle_nonfinite, match_shape, squeeze_leading, to_numpy

MATTING_METRIC_NAMES = ("mse", "mad", "sad", "grad", "conn")
CONN_MODES = ("matlab", "python_port")
GRAD_SIGMA = 1.4
UNKNOWN_VALUE = 128
_RANGE_TOLERANCE = 1e-3


def as_alpha(x, name: str) -> np.ndarray:
    """``H x W`` float64 alpha in [0, 1]; uint8 input is divided by 255; clear error otherwise."""
    a = squeeze_leading(to_numpy(x, name), 2, name)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    finite = a[np.isfinite(a)]
    if finite.size and (finite.min() < -_RANGE_TOLERANCE or finite.max() > 1.0 + _RANGE_TOLERANCE):
        hint = " (8-bit values? divide by 255)" if finite.max() > 1.5 else ""
        raise ValueError(f"{name} alpha must lie in [0, 1], got values in [{finite.min():g}, {finite.max():g}]{hint}")
    return np.clip(a, 0.0, 1.0)


def gaussian_gradient_kernels(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(hx, hy): ``hx[i, j] = G(u_i) * G'(u_j)``, L2-normalized; ``hy = hx.T``."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 0.01)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = -u * g / sigma**2
    hx = np.outer(g, dg)
    hx /= np.sqrt(np.sum(hx * hx))
    return hx, hx.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` with the Gaussian-derivative kernels (convolution, replicated border)."""
    from scipy.ndimage import convolve

    hx, hy = gaussian_gradient_kernels(sigma)
    gx = convolve(alpha, hx, mode="nearest")
    gy = convolve(alpha, hy, mode="nearest")
    return np.sqrt(gx * gx + gy * gy)


def grad_error(pred: np.ndarray, gt: np.ndarray, region: np.ndarray) -> float:
    """Gradient error (divided by 1000) over the boolean ``region``."""
    diff = gradient_magnitude(pred) - gradient_magnitude(gt)
    return float(np.sum(np.square(diff)[region]) / 1000.0)


def _largest_component(fg: np.ndarray, mode: str) -> np.ndarray:
    from scipy.ndimage import label

    four = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    labels, n = label(fg, structure=four)
    if mode == "python_port":  # argmax over ALL labels, background (0) included
        return labels == np.argmax(np.bincount(labels.ravel()))
    if n == 0:
        return np.zeros_like(fg, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def connectivity_levels(pred: np.ndarray, gt: np.ndarray, mode: str = "matlab", step: float = 0.1) -> np.ndarray:
    """The level map ``l``: for each pixel, the last threshold at which it was still connected."""
    if mode not in CONN_MODES:
        raise ValueError(f"conn_mode must be one of {CONN_MODES}, got {mode!r}")
    if mode == "python_port":
        thresholds = list(np.arange(0, 1 + step, step))
    else:
        steps = int(round(1.0 / step))
        thresholds = [k / steps for k in range(steps + 1)]
    level = np.full(pred.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((pred >= thresholds[i]) & (gt >= thresholds[i]), mode)
        level[(level == -1) & ~omega] = thresholds[i - 1]
    level[level == -1] = 1.0
    return level


def conn_error(pred: np.ndarray, gt: np.ndarray, region: np.ndarray, mode: str = "matlab", theta: float = 0.15) -> float:
    """Connectivity error (divided by 1000) over the boolean ``region``."""
    level = connectivity_levels(pred, gt, mode)
    dp, dg = pred - level, gt - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(np.sum(np.abs(phi_p - phi_g)[region]) / 1000.0)


def matting_region(trimap, shape: tuple[int, int]) -> np.ndarray:
    """Evaluation region: all pixels (``trimap=None``) or the unknown band (``trimap == 128``)."""
    if trimap is None:
        return np.ones(shape, dtype=bool)
    t = squeeze_leading(to_numpy(trimap, "trimap"), 2, "trimap")
    if t.shape != tuple(shape):
        raise ValueError(f"trimap has shape {t.shape} but the ground-truth alpha has {tuple(shape)}")
    if t.dtype != np.uint8:  # a float trimap in [0, 1]: 0.5 (128/255) is unknown
        t = np.round(t.astype(np.float64) * (255.0 if t.max() <= 1.0 else 1.0)).astype(np.int64)
    return t == UNKNOWN_VALUE


def matting_metrics(pred, gt, trimap=None, *, conn_mode: str = "matlab", resize: str | None = "bilinear",
                    nonfinite: str = "error") -> dict:
    """Matting metrics of one image.

    Args:
        pred, gt: ``H x W`` alpha in [0, 1] (numpy or torch; uint8 is divided by 255).
        trimap: None (whole image) or a uint8 trimap 0 / 128 / 255 (the 128 band is used).
        conn_mode: ``"matlab"`` (correct, default) or ``"python_port"`` (compatibility).
        resize: shape-mismatch policy (``"bilinear"`` to the GT size, or None = error).
        nonfinite: ``"error"``, or ``"mask"`` (NaN/inf prediction pixels leave the region).

    Returns:
        dict ``mse, mad`` (raw means) and ``sad, grad, conn`` (sums divided by 1000).
    """
    if conn_mode not in CONN_MODES:
        raise ValueError(f"conn_mode must be one of {CONN_MODES}, got {conn_mode!r}")
    g = as_alpha(gt, "gt")
    p = match_shape(as_alpha(pred, "prediction"), g.shape, resize)
    region = handle_nonfinite(p, matting_region(trimap, g.shape), nonfinite)
    p = np.where(np.isfinite(p), p, 0.0)
    if not region.any():
        return {k: float("nan") for k in MATTING_METRIC_NAMES}
    err = np.abs(p - g)[region]
    return {
        "mse": float(np.mean(err * err)),
        "mad": float(np.mean(err)),
        "sad": float(np.sum(err) / 1000.0),
        "grad": grad_error(p, g, region),
        "conn": conn_error(p, g, region, conn_mode),
    }
