"""Dataset-level accumulators that keep only fixed-size state (never full pixel arrays).

- :class:`MeanAccumulator`: per-image mean of scalar metrics (depth, matting, and the
  per-image normal convention). An image whose metric is NaN (empty mask) is counted in
  ``num_nan`` and left out of that metric's mean; it is never silently averaged as 0.
- :class:`NormalAccumulator`: both normal conventions at once: *pooled* over every valid
  pixel of the dataset (exact mean, RMSE and threshold percentages; the median from a
  0.001-degree histogram, so within 0.0005 degrees) and *per-image* means.

Across processes (``accelerate``): every accumulator flattens its state to one float64
vector; :meth:`gather` sums it with ``accelerator.reduce(tensor, reduction="sum")`` (any
object with that method works) and returns the dataset-wide accumulator on every process.
"""

from __future__ import annotations

import math

import numpy as np

from .normal import NORMAL_METRIC_NAMES, NORMAL_THRESHOLDS, normal_errors, summarize_angular_errors


def reduce_sum(vector: np.ndarray, accelerator) -> np.ndarray:
    """Sum a float64 vector over processes with ``accelerator.reduce`` (identity if None)."""
    if accelerator is None:
        return vector
    import torch

    t = torch.from_numpy(np.ascontiguousarray(vector, dtype=np.float64))
    device = getattr(accelerator, "device", None)
    if device is not None:
        t = t.to(device)
    out = accelerator.reduce(t, reduction="sum")
    return out.detach().cpu().numpy().astype(np.float64)


class MeanAccumulator:
    """Running per-image mean of named scalar metrics."""

    def __init__(self, keys):
        self.keys = tuple(keys)
        k = len(self.keys)
        self.sums = np.zeros(k)
        self.counts = np.zeros(k)
        self.nans = np.zeros(k)
        self.num_images = 0

    def add(self, metrics: dict) -> None:
        """Add one image's metrics (a dict with every key; NaN values are counted separately)."""
        missing = [k for k in self.keys if k not in metrics]
        if missing:
            raise KeyError(f"metrics dict lacks {missing}; expected keys {list(self.keys)}")
        vals = np.array([float(metrics[k]) for k in self.keys])
        finite = np.isfinite(vals)
        self.sums[finite] += vals[finite]
        self.counts += finite
        self.nans += ~finite
        self.num_images += 1

    def merge(self, other: MeanAccumulator) -> MeanAccumulator:
        if other.keys != self.keys:
            raise ValueError(f"cannot merge accumulators with keys {other.keys} into {self.keys}")
        self.sums += other.sums
        self.counts += other.counts
        self.nans += other.nans
        self.num_images += other.num_images
        return self

    def state(self) -> np.ndarray:
        return np.concatenate([self.sums, self.counts, self.nans, [self.num_images]])

    def load_state(self, vector: np.ndarray) -> MeanAccumulator:
        k = len(self.keys)
        v = np.asarray(vector, dtype=np.float64)
        if v.shape != (3 * k + 1,):
            raise ValueError(f"state vector must have {3 * k + 1} values, got shape {v.shape}")
        self.sums, self.counts, self.nans = v[:k].copy(), v[k:2 * k].copy(), v[2 * k:3 * k].copy()
        self.num_images = int(round(v[-1]))
        return self

    def gather(self, accelerator) -> MeanAccumulator:
        """Dataset-wide accumulator (sum of every process's state)."""
        return type(self)(self.keys).load_state(reduce_sum(self.state(), accelerator))

    def result(self) -> dict:
        """Mean of each metric over the images where it is finite (NaN if none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)
        return {k: float(v) for k, v in zip(self.keys, means)}

    def num_nan(self) -> int:
        """Images whose metrics were NaN (the largest count over the metrics)."""
        return int(self.nans.max()) if len(self.keys) else 0


class NormalAccumulator:
    """Pooled and per-image normal metrics over a dataset."""

    BIN_WIDTH = 1e-3  # degrees
    NUM_BINS = int(round(180.0 / BIN_WIDTH)) + 1

    def __init__(self):
        self.hist = np.zeros(self.NUM_BINS)
        self.sum = 0.0
        self.sum_sq = 0.0
        self.num_pixels = 0
        self.below = np.zeros(len(NORMAL_THRESHOLDS))
        self.per_image = MeanAccumulator(NORMAL_METRIC_NAMES)

    def add_errors(self, errors) -> dict:
        """Add one image's per-pixel angular errors (degrees); returns its per-image metrics."""
        e = np.asarray(errors, dtype=np.float64).ravel()
        metrics = summarize_angular_errors(e)
        self.per_image.add(metrics)
        if e.size:
            bins = np.minimum((e / self.BIN_WIDTH).astype(np.int64), self.NUM_BINS - 1)
            self.hist += np.bincount(bins, minlength=self.NUM_BINS)
            self.sum += float(e.sum())
            self.sum_sq += float(np.sum(e * e))
            self.num_pixels += int(e.size)
            self.below += [np.count_nonzero(e < thr) for thr in NORMAL_THRESHOLDS.values()]
        return metrics

    def add(self, pred, gt, valid_mask=None, **kwargs) -> dict:
        """Add one image (arguments as :func:`edit2perceive.metrics.normal_metrics`)."""
        return self.add_errors(normal_errors(pred, gt, valid_mask, **kwargs))

    def _histogram_order_statistic(self, k: int, cumulative: np.ndarray) -> float:
        b = int(np.searchsorted(cumulative, k + 1, side="left"))
        return (b + 0.5) * self.BIN_WIDTH

    def pooled(self) -> dict:
        n = self.num_pixels
        if n == 0:
            return {k: float("nan") for k in NORMAL_METRIC_NAMES}
        cumulative = np.cumsum(self.hist)
        median = 0.5 * (self._histogram_order_statistic((n - 1) // 2, cumulative)
                        + self._histogram_order_statistic(n // 2, cumulative))
        out = {"mean": self.sum / n, "median": median, "rmse": math.sqrt(self.sum_sq / n)}
        out.update({k: float(100.0 * c / n) for k, c in zip(NORMAL_THRESHOLDS, self.below)})
        return out

    def result(self) -> dict:
        return {
            "pooled": self.pooled(),
            "per_image": self.per_image.result(),
            "num_images": self.per_image.num_images,
            "num_empty": self.per_image.num_nan(),
            "num_pixels": self.num_pixels,
        }

    def state(self) -> np.ndarray:
        return np.concatenate([self.hist, [self.sum, self.sum_sq, self.num_pixels], self.below, self.per_image.state()])

    def load_state(self, vector: np.ndarray) -> NormalAccumulator:
        v = np.asarray(vector, dtype=np.float64)
        nb, nt = self.NUM_BINS, len(NORMAL_THRESHOLDS)
        expected = nb + 3 + nt + len(self.per_image.state())
        if v.shape != (expected,):
            raise ValueError(f"state vector must have {expected} values, got shape {v.shape}")
        self.hist = v[:nb].copy()
        self.sum, self.sum_sq, self.num_pixels = float(v[nb]), float(v[nb + 1]), int(round(v[nb + 2]))
        self.below = v[nb + 3:nb + 3 + nt].copy()
        self.per_image.load_state(v[nb + 3 + nt:])
        return self

    def merge(self, other: NormalAccumulator) -> NormalAccumulator:
        return self.load_state(self.state() + other.state())

    def gather(self, accelerator) -> NormalAccumulator:
        return NormalAccumulator().load_state(reduce_sum(self.state(), accelerator))
