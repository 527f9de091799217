"""Affine-invariant depth metrics (the Marigold protocol; see PROTOCOLS.md).

Per image:
1. Least-squares scale and shift ``s, t`` minimizing ``sum_M (s * p + t - target)^2`` where the
   target is ``g`` (``"least_squares"``), ``1 / g`` (``"least_squares_disparity"``: the aligned
   disparity is clipped to ``>= 1e-3`` then inverted) or ``sqrt(g)`` (``"least_squares_sqrt"``:
   the aligned value is clipped to ``>= 0`` then squared). ``None``: the prediction is metric depth.
   A constant prediction makes the fit rank-deficient: the minimum-norm solution is used
   (as ``numpy.linalg.lstsq``); the aligned prediction is then the mean target everywhere.
2. ``d = clip(aligned, min_depth, max_depth)``, then ``d >= 1e-6``.
3. Ten metrics on the mask ``M`` (all fractions, not percent; ``silog`` is ``100 * std(log)``
   as in the literature): abs_rel, sq_rel, rmse, rmse_log, log10, delta1-3 (strict ``<``),
   i_rmse, silog.

Units: ground truth in metres; ``rmse`` in metres, ``i_rmse`` in 1/m.
The evaluation mask is ``valid_mask & isfinite(gt) & (gt > 0)``: readers put the dataset's
valid depth range and crops into ``valid_mask``. An empty mask gives NaN for every metric.
"""

from __future__ import annotations

import numpy as np

from ._inputs import as_mask, handle_nonfinite, match_shape, squeeze_leading, to_numpy

DEPTH_METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3", "i_rmse", "silog")
ALIGNMENTS = ("least_squares", "least_squares_disparity", "least_squares_sqrt", None)
MIN_DISPARITY = 1e-3
MIN_PREDICTED_DEPTH = 1e-6


def fit_scale_shift(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(s, t)`` for ``s * pred + t ~ target`` (1-D arrays, float64).

    Unique solution when ``pred`` varies; for a constant ``pred = c`` the minimum-norm
    solution ``s = c * m / (c^2 + 1), t = m / (c^2 + 1)`` (``m = mean(target)``).
    """
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if p.size == 0:
        raise ValueError("cannot fit scale and shift on zero pixels")
    mp, my = p.mean(), y.mean()
    dp = p - mp  # sums, not np.dot: BLAS threads crawl on a busy machine (30x here)
    var = float(np.sum(dp * dp))
    if var <= 1e-12 * max(float(np.sum(p * p)), 1e-300):  # constant prediction: rank-deficient
        c = float(mp)
        return c * float(my) / (c * c + 1.0), float(my) / (c * c + 1.0)
    s = float(np.sum(dp * (y - my))) / var
    return s, float(my - s * mp)


def _fit_subsample(shape: tuple[int, int], max_side: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Nearest-neighbour row/column indices of a copy with longest side ``max_side`` (or None)."""
    h, w = shape
    if max_side is None or max(h, w) <= max_side:
        return None
    scale = max_side / max(h, w)
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    rows = np.minimum((np.arange(nh) * (h / nh)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(nw) * (w / nw)).astype(np.int64), w - 1)
    return rows, cols


def align_depth(pred, gt, mask, alignment: str | None = "least_squares", *, fit_max_side: int | None = None):
    """Aligned depth (metres, before clipping) at the ``mask`` pixels (1-D, row-major) and
    ``(s, t)`` (``(1, 0)`` when ``alignment`` is None).

    ``fit_max_side``: fit ``s, t`` on a nearest-neighbour downsampled copy whose longest
    side is at most this (the ETH3D protocol uses 1024), then apply them at full resolution.
    """
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    p = np.asarray(pred, dtype=np.float64)
    p_sel = p[mask]
    if alignment is None:
        return p_sel, (1.0, 0.0)
    g = np.asarray(gt, dtype=np.float64)
    sub = _fit_subsample(p.shape, fit_max_side)
    p_fit, g_fit = p_sel, g[mask]
    if sub is not None:
        ix = np.ix_(*sub)
        m_fit = mask[ix]
        if m_fit.any():  # else downsampling lost every valid pixel: fit at full resolution
            p_fit, g_fit = p[ix][m_fit], g[ix][m_fit]
    if alignment == "least_squares":
        target = g_fit
    elif alignment == "least_squares_disparity":
        target = 1.0 / g_fit
    else:
        target = np.sqrt(g_fit)
    s, t = fit_scale_shift(p_fit, target)
    aligned = s * p_sel + t
    if alignment == "least_squares_disparity":
        aligned = 1.0 / np.maximum(aligned, MIN_DISPARITY)
    elif alignment == "least_squares_sqrt":
        aligned = np.square(np.maximum(aligned, 0.0))
    return aligned, (s, t)


def depth_errors(d: np.ndarray, g: np.ndarray) -> dict:
    """The ten metrics for 1-D arrays of predicted and true depth (both > 0, metres)."""
    if d.size == 0:
        return {k: float("nan") for k in DEPTH_METRIC_NAMES}
    diff = d - g
    r = d / g
    log_diff = np.log(r)  # ln d - ln g
    ratio = np.maximum(r, 1.0 / r)
    mean_log, mean_log2 = log_diff.mean(), np.square(log_diff).mean()
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(np.square(diff) / g)),
        "rmse": float(np.sqrt(np.mean(np.square(diff)))),
        "rmse_log": float(np.sqrt(mean_log2)),
        "log10": float(np.mean(np.abs(log_diff)) / np.log(10.0)),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "i_rmse": float(np.sqrt(np.mean(np.square(1.0 / d - 1.0 / g)))),
        "silog": float(100.0 * np.sqrt(max(mean_log2 - mean_log**2, 0.0))),
    }


def depth_eval_mask(gt: np.ndarray, valid_mask) -> np.ndarray:
    """``valid_mask & isfinite(gt) & (gt > 0)`` as a boolean ``H x W`` array."""
    with np.errstate(invalid="ignore"):
        return as_mask(valid_mask, gt.shape) & np.isfinite(gt) & (gt > 0)


def depth_metrics(
    pred,
    gt,
    valid_mask=None,
    alignment: str | None = "least_squares",
    min_depth: float = 1e-3,
    max_depth: float = 10.0,
    *,
    fit_max_side: int | None = None,
    resize: str | None = "bilinear",
    nonfinite: str = "error",
) -> dict:
    """Depth metrics of one image (see the module docstring for the protocol).

    Args:
        pred: ``H x W`` raw prediction (numpy or torch; ``1 x H x W`` accepted).
        gt: ``H x W`` ground-truth depth in metres.
        valid_mask: ``H x W`` bool evaluation mask (None: every finite ``gt > 0``).
        alignment: ``"least_squares"`` (depth space), ``"least_squares_disparity"``,
            ``"least_squares_sqrt"`` or ``None`` (prediction is already metric depth).
        min_depth, max_depth: the aligned prediction is clipped to this range (metres).
        fit_max_side: fit the alignment on a copy with this longest side (ETH3D: 1024).
        resize: shape-mismatch policy (``"bilinear"`` to the GT size, or None = error).
        nonfinite: ``"error"`` or ``"mask"`` (leave NaN/inf prediction pixels out).

    Returns:
        dict with ``abs_rel, sq_rel, rmse, rmse_log, log10, delta1, delta2, delta3, i_rmse,
        silog`` as floats (fractions, not percent); all NaN when no pixel is valid.
    """
    g = squeeze_leading(to_numpy(gt, "gt").astype(np.float64), 2, "gt")
    p = squeeze_leading(to_numpy(pred, "prediction").astype(np.float64), 2, "prediction")
    if not min_depth < max_depth:
        raise ValueError(f"need min_depth < max_depth, got {min_depth}, {max_depth}")
    p = match_shape(p, g.shape, resize)
    mask = handle_nonfinite(p, depth_eval_mask(g, valid_mask), nonfinite)
    if not mask.any():
        return {k: float("nan") for k in DEPTH_METRIC_NAMES}
    aligned, _ = align_depth(p, g, mask, alignment, fit_max_side=fit_max_side)
    d = np.maximum(np.clip(aligned, min_depth, max_depth), MIN_PREDICTED_DEPTH)
    return depth_errors(d, g[mask])
