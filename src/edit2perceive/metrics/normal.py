"""Surface-normal angular-error metrics.

Per pixel ``e = degrees(arccos(clip(cos_sim(n_pred, n_gt), -1, 1)))``; vectors need not be
unit length (the cosine normalizes them). A zero prediction vector scores 90 degrees.
Metrics over the valid pixels: ``mean``, ``median``, ``rmse`` (degrees) and ``a5``, ``a7_5``,
``a11_25``, ``a22_5``, ``a30``: percent (0-100) of pixels with ``e`` strictly below the threshold.

Valid pixels: ``valid_mask & isfinite(gt) & (||gt|| > gt_min_norm)`` (Marigold: 0,
Edit2Perceive's evaluator: 1e-3). No frame conversion happens here: both inputs must be
in the same camera frame (the project's: x right, y up, z toward the viewer).
"""

from __future__ import annotations

import numpy as np

from ._inputs import as_mask, handle_nonfinite, match_shape, squeeze_leading, to_numpy

NORMAL_THRESHOLDS = {"a5": 5.0, "a7_5": 7.5, "a11_25": 11.25, "a22_5": 22.5, "a30": 30.0}
NORMAL_METRIC_NAMES = ("mean", "median", "rmse", *NORMAL_THRESHOLDS)


def angular_error_deg(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors along the last axis (``... x 3``)."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    norms = np.linalg.norm(p, axis=-1) * np.linalg.norm(g, axis=-1)
    dot = np.sum(p * g, axis=-1)
    cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)  # zero vector -> 90 deg
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def summarize_angular_errors(errors: np.ndarray) -> dict:
    """The eight metrics of a 1-D array of angular errors (degrees); NaN for an empty array."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0:
        return {k: float("nan") for k in NORMAL_METRIC_NAMES}
    out = {"mean": float(e.mean()), "median": float(np.median(e)), "rmse": float(np.sqrt(np.mean(e * e)))}
    for key, thr in NORMAL_THRESHOLDS.items():
        out[key] = float(100.0 * np.mean(e < thr))
    return out


def normal_errors(pred, gt, valid_mask=None, *, gt_min_norm: float = 0.0, resize: str | None = "bilinear",
                  nonfinite: str = "error") -> np.ndarray:
    """1-D array of per-pixel angular errors (degrees) over the valid pixels of one image."""
    g = squeeze_leading(to_numpy(gt, "gt").astype(np.float64), 3, "gt")
    p = squeeze_leading(to_numpy(pred, "prediction").astype(np.float64), 3, "prediction")
    for name, arr in (("gt", g), ("prediction", p)):
        if arr.shape[-1] != 3:
            raise ValueError(f"{name} normals must be H x W x 3 (channels last), got shape {arr.shape}")
    p = match_shape(p, g.shape, resize)
    finite_gt = np.isfinite(g).all(axis=-1)
    g_norm = np.linalg.norm(np.where(finite_gt[..., None], g, 0.0), axis=-1)
    mask = as_mask(valid_mask, g.shape) & finite_gt & (g_norm > gt_min_norm)
    mask = handle_nonfinite(p, mask, nonfinite)
    return angular_error_deg(p[mask], g[mask])


def normal_metrics(pred, gt, valid_mask=None, *, gt_min_norm: float = 0.0, resize: str | None = "bilinear",
                   nonfinite: str = "error") -> dict:
    """Normal metrics of one image.

    Args:
        pred: ``H x W x 3`` predicted normals (numpy or torch), any length.
        gt: ``H x W x 3`` ground-truth normals, same camera frame.
        valid_mask: ``H x W`` bool (None: every finite gt with ``||gt|| > gt_min_norm``).
        resize: shape-mismatch policy (``"bilinear"``: resize the prediction to the GT size,
            interpolating each component; the cosine renormalizes). None = error.
        nonfinite: ``"error"`` or ``"mask"``.

    Returns:
        dict ``mean, median, rmse`` (degrees) and ``a5, a7_5, a11_25, a22_5, a30`` (percent);
        all NaN when no pixel is valid.
    """
    return summarize_angular_errors(
        normal_errors(pred, gt, valid_mask, gt_min_norm=gt_min_norm, resize=resize, nonfinite=nonfinite)
    )
