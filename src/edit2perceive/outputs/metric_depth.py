"""Metric depth from an affine-invariant prediction and a few known distances.

A depth prediction ``p`` (``H x W`` in [0, 1]) is affine-invariant *in its encoding space*
(:mod:`edit2perceive.tasks.depth`): ``g(d) = scale * p + shift`` with ``g`` = sqrt, identity,
log or 1/d. Given sparse metric measurements (pixel ``(x, y)`` = (column, row), depth in
metres, planar), :func:`align_to_metric` solves ``scale, shift`` in that space:

- ``"least_squares"``: ordinary least squares on all measurements;
- ``"huber"``: robust, scipy's ``least_squares`` with the Huber loss (its scale from the
  median absolute deviation of the least-squares residuals), started from the LS fit;
- ``"ransac"``: pairs of measurements propose fits (seeded, deterministic), the one with the
  most inliers (relative depth error below ``ransac_threshold``) is refit on its inliers.

The prediction is sampled bilinearly at the measurement points. Pixels whose fitted
encoding value has no depth (``sqrt``: negative; ``uniform``/``disparity``: <= 0) get depth
0 and ``valid_mask`` False (the data convention: 0 = invalid).

Measurements come as a list / ``K x 3`` array of ``(x, y, depth)``, a sparse ``H x W`` map
(LiDAR scan; 0 or non-finite = no measurement), or a file (:func:`read_measurements`):
CSV with columns ``x, y, depth`` (a header line is optional) or ``.npy`` (a ``K x 3`` array
or an ``H x W`` sparse map; loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

from ..metrics.depth import fit_scale_shift
from ..tasks.depth import DEPTH_ENCODINGS, _forward, _inverse

METHODS = ("least_squares", "huber", "ransac")


@dataclass
class MetricFit:
    """Result of :func:`align_to_metric`.

    ``depth``: float32 ``H x W`` metres (0 where ``valid_mask`` is False). ``scale``,
    ``shift``: ``g(depth) = scale * prediction + shift`` in the ``encoding`` space.
    ``residual_rms`` (metres) and ``residual_abs_rel`` (mean ``|fit - measured| / measured``)
    at the inlier measurements; ``inliers``: bool per measurement (all True for least squares).
    """

    depth: np.ndarray
    valid_mask: np.ndarray
    scale: float
    shift: float
    residual_rms: float
    residual_abs_rel: float
    inliers: np.ndarray
    method: str
    encoding: str
    measurements: np.ndarray = field(repr=False, default=None)

    def summary(self) -> dict:
        """JSON-able numbers of the fit (no maps)."""
        return {"method": self.method, "encoding": self.encoding, "scale": self.scale, "shift": self.shift,
                "residual_rms_m": self.residual_rms, "residual_abs_rel": self.residual_abs_rel,
                "num_measurements": int(len(self.inliers)), "num_inliers": int(self.inliers.sum())}


def _sparse_map_to_points(sparse: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(np.isfinite(sparse) & (sparse > 0))
    return np.stack([cols, rows, sparse[rows, cols]], axis=1).astype(np.float64)


def read_measurements(source, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Measurements as a float64 ``K x 3`` array of ``(x, y, depth)``; see the module docstring.

    ``shape`` (``H x W`` of the prediction) is required to tell a sparse map from a list and
    to check it. Errors name the file, the line or the value.
    """
    name = "measurements"
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise ValueError(f"{name}: no such measurement file")
        if name.lower().endswith(".npy"):
            try:
                source = np.load(name, allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                raise ValueError(f"{name}: not a plain numpy array ({err})") from None
        elif name.lower().endswith((".csv", ".txt")):
            source = _read_csv(name)
        else:
            raise ValueError(f"{name}: measurements must be a .csv (x,y,depth) or .npy file")
    arr = np.asarray(source, dtype=np.float64)
    if shape is not None and arr.ndim == 2 and arr.shape == tuple(shape) and arr.shape[1] != 3:
        arr = _sparse_map_to_points(arr)
    elif shape is not None and arr.ndim == 2 and arr.shape == tuple(shape):
        raise ValueError(f"{name}: a {arr.shape} array is ambiguous for a {shape} prediction (sparse map or "
                         "K x 3 list?); pass the list as a list of tuples")
    if arr.ndim != 2 or arr.shape[1] != 3:
        if arr.ndim == 2 and shape is not None:
            raise ValueError(f"{name}: a sparse depth map must be {shape[0]} x {shape[1]} like the prediction, "
                             f"got {arr.shape}")
        raise ValueError(f"{name}: expected (x, y, depth) rows (K x 3) or an H x W sparse map, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 2] <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: measurement {i} (x={arr[i, 0]:g}, y={arr[i, 1]:g}, depth={arr[i, 2]:g}) "
                         "needs finite coordinates and a depth > 0")
    if shape is not None:
        h, w = shape
        outside = (arr[:, 0] < 0) | (arr[:, 0] > w - 1) | (arr[:, 1] < 0) | (arr[:, 1] > h - 1)
        if outside.any():
            i = int(np.argmax(outside))
            raise ValueError(f"{name}: measurement {i} at (x={arr[i, 0]:g}, y={arr[i, 1]:g}) lies outside the "
                             f"{w}x{h} prediction")
    return arr


#: header names of the CSV columns (case-insensitive; a unit such as "depth_m" / "depth (m)" is allowed)
CSV_COLUMNS = {"x": "x", "y": "y", "depth": "depth", "z": "depth", "distance": "depth", "d": "depth"}


def _column(name: str) -> str | None:
    key = name.strip().lower()
    for unit in ("_m", " (m)", "[m]", " m", "(m)"):
        if key.endswith(unit):
            key = key[: -len(unit)].strip()
            break
    return CSV_COLUMNS.get(key)


def _read_csv(path: str) -> np.ndarray:
    """Rows ``x,y,depth``; a header line names the order (``y,x,depth`` is read as such). UTF-8
    (a spreadsheet's byte-order mark is dropped); ``#`` starts a comment line."""
    rows = []
    order = [0, 1, 2]  # column index of x, y, depth
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as CSV UTF-8") from None
    for line_no, row in enumerate(lines, start=1):
        cells = [c.strip() for c in row]
        if not cells or all(not c for c in cells) or cells[0].startswith("#"):
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if not rows and all(not c.replace(".", "", 1).lstrip("+-").isdigit() for c in cells):  # a header line
                names = [_column(c) for c in cells]
                if len(cells) != 3 or sorted(map(str, names)) != ["depth", "x", "y"]:
                    raise ValueError(f"{path}:{line_no}: header {row} must name the columns x, y and depth "
                                     "(in any order)") from None
                order = [names.index(k) for k in ("x", "y", "depth")]
                continue
            raise ValueError(f"{path}:{line_no}: expected numbers x,y,depth, got {row}") from None
        if len(values) != 3:
            raise ValueError(f"{path}:{line_no}: expected 3 values x,y,depth, got {len(values)}")
        rows.append([values[i] for i in order])
    if not rows:
        raise ValueError(f"{path}: no measurements (expected lines x,y,depth)")
    return np.asarray(rows, dtype=np.float64)


def check_measurement_file(path: str) -> None:
    """Read a measurement file as far as possible without the prediction's size (before a
    model loads); ``ValueError`` naming the file, line or value, like :func:`read_measurements`."""
    if path.lower().endswith((".csv", ".txt")):
        read_measurements(path)
        return
    if not path.lower().endswith(".npy"):
        raise ValueError(f"{path}: measurements must be a .csv (x,y,depth) or .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a plain numpy array ({err})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: expected a numeric K x 3 list (x, y, depth) or an H x W sparse map, "
                         f"got {arr.dtype} of shape {arr.shape}")
    if arr.shape[1] == 3:
        read_measurements(path)


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of an ``H x W`` map at sub-pixel ``(x, y)`` (pixel centres at integers)."""
    h, w = image.shape
    x0 = np.clip(np.floor(x).astype(int), 0, w - 1)
    y0 = np.clip(np.floor(y).astype(int), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
    img = np.asarray(image, dtype=np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def encoded_to_depth(s: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Encoding-space values -> ``(depth, valid)``; values outside the encoding's range give 0."""
    s = np.asarray(s, dtype=np.float64)
    valid = np.isfinite(s) & ((s >= 0) if encoding == "sqrt" else (s > 0) if encoding in ("uniform", "disparity")
                              else np.ones(s.shape, bool))
    depth = np.zeros(s.shape, dtype=np.float64)
    depth[valid] = _inverse(s[valid], encoding)
    valid &= np.isfinite(depth) & (depth > 0)
    return np.where(valid, depth, 0.0), valid


def align_to_metric(prediction, measurements, *, encoding: str = "sqrt", method: str = "least_squares",
                    ransac_threshold: float = 0.05, ransac_iterations: int = 200, seed: int = 0) -> MetricFit:
    """Fit the prediction to metric ``measurements`` (see the module docstring).

    Args:
        prediction: ``H x W`` depth prediction in [0, 1] (numpy or torch) at the resolution
            the measurement coordinates refer to.
        measurements: ``(x, y, depth)`` list / ``K x 3`` array, an ``H x W`` sparse map, or
            a ``.csv`` / ``.npy`` file.
        encoding: the model's depth encoding (``pipe.task.encoding``).
        method: ``"least_squares"``, ``"huber"`` or ``"ransac"``.
        ransac_threshold: RANSAC inlier test, relative depth error ``|fit - d| / d``.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    pred = prediction.detach().cpu().numpy() if hasattr(prediction, "detach") else np.asarray(prediction)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim != 2:
        raise ValueError(f"prediction must be an H x W depth map, got shape {pred.shape}")
    meas = read_measurements(measurements, pred.shape)
    if len(meas) < 2:
        raise ValueError(f"need at least 2 measurements to fit scale and shift, got {len(meas)}")
    p = sample_bilinear(pred, meas[:, 0], meas[:, 1])
    if np.ptp(p) <= 1e-9:
        raise ValueError("the prediction has the same value at every measurement point: scale and shift are "
                         "undetermined (measure points at different depths)")
    s = _forward(meas[:, 2], encoding)
    inliers = np.ones(len(meas), dtype=bool)
    scale, shift = fit_scale_shift(p, s)
    if method == "huber":
        from scipy.optimize import least_squares

        resid = scale * p + shift - s
        f_scale = max(1.4826 * float(np.median(np.abs(resid - np.median(resid)))), 1e-6 * float(np.abs(s).mean()), 1e-12)
        res = least_squares(lambda q: q[0] * p + q[1] - s, x0=[scale, shift], loss="huber", f_scale=f_scale)
        scale, shift = (float(v) for v in res.x)
        inliers = np.abs(scale * p + shift - s) <= 3.0 * f_scale
    elif method == "ransac":
        scale, shift, inliers = _ransac(p, s, meas[:, 2], encoding, ransac_threshold, ransac_iterations, seed)
    depth, valid = encoded_to_depth(scale * pred + shift, encoding)
    fit_at = encoded_to_depth(scale * p + shift, encoding)[0]
    err = fit_at[inliers] - meas[inliers, 2]
    return MetricFit(depth=depth.astype(np.float32), valid_mask=valid, scale=scale, shift=shift,
                     residual_rms=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
                     residual_abs_rel=float(np.mean(np.abs(err) / meas[inliers, 2])) if err.size else float("nan"),
                     inliers=inliers, method=method, encoding=encoding, measurements=meas)


def _ransac(p, s, d, encoding, threshold, iterations, seed):
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(int(iterations)):
        i, j = rng.choice(len(p), size=2, replace=False)
        if abs(p[i] - p[j]) <= 1e-9:
            continue
        scale = (s[i] - s[j]) / (p[i] - p[j])
        shift = s[i] - scale * p[i]
        fit, ok = encoded_to_depth(scale * p + shift, encoding)
        inl = ok & (np.abs(fit - d) <= threshold * d)
        if best is None or inl.sum() > best.sum():
            best = inl
    if best is None or best.sum() < 2:
        raise ValueError(f"RANSAC found no fit with 2 or more inliers within {threshold:.0%} (measurements too noisy "
                         "or a larger ransac_threshold needed)")
    scale, shift = fit_scale_shift(p[best], s[best])
    return scale, shift, best


def depth_from_range(prediction, *, encoding: str = "sqrt", near: float = 1.0, far: float = 10.0) -> np.ndarray:
    """Depth (metres) when nothing is measured: assume the prediction's [0, 1] spans the
    encoding of ``[near, far]`` (the lower encoding value at 0; for ``disparity`` that is
    ``far``, as near is high there). A stand-in for viewing, not a measurement."""
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
    pred = prediction.detach().cpu().numpy() if hasattr(prediction, "detach") else np.asarray(prediction)
    lo, hi = sorted(float(v) for v in _forward(np.array([near, far], dtype=np.float64), encoding))
    return _inverse(lo + np.clip(np.asarray(pred, np.float64), 0, 1) * (hi - lo), encoding).astype(np.float32)
