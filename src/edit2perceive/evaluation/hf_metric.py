"""Base classes of the ``evaluate`` modules in ``metrics/<name>/`` (thin over edit2perceive.metrics).

``evaluate`` stores every input in an Arrow table before ``compute``; full depth maps
make that ~600x slower than numpy. These modules therefore reduce each image to a few
scalars inside ``add`` / ``add_batch`` / ``compute`` (with the package's metric functions)
and store only the scalars; ``_compute`` averages them. Per-image options (``alignment``,
``min_depth``, ``max_depth``, ``gt_min_norm``, ``conn_mode``, ...) are keyword arguments of
``add``/``add_batch``/``compute``. Images with no valid pixel give NaN scalars: they are
counted in ``num_nan`` and left out of the means.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from edit2perceive.metrics import (
    DEPTH_METRIC_NAMES,
    MATTING_METRIC_NAMES,
    NORMAL_METRIC_NAMES,
    depth_metrics,
    matting_metrics,
    normal_errors,
)
from edit2perceive.metrics.normal import NORMAL_THRESHOLDS, summarize_angular_errors

ARRAY_INPUTS = ("predictions", "references", "valid_masks", "trimaps")

#: text shared by the depth modules' descriptions
DEPTH_PROTOCOL_TEXT = """Affine-invariant protocol (Marigold): least-squares scale and shift of the prediction on the
valid pixels (in depth, disparity or sqrt space), clipping to [min_depth, max_depth], then the
metric per image; the dataset score is the mean over images (images with no valid pixel are
counted in num_nan and left out).
"""

MARIGOLD_CITATION = """@InProceedings{ke2023repurposing,
  title={Repurposing Diffusion-Based Image Generators for Monocular Depth Estimation},
  author={Ke, Bingxin and Obukhov, Anton and Huang, Shengyu and Metzger, Nando and Daudt, Rodrigo Caye and Schindler, Konrad},
  booktitle={CVPR}, year={2024}}
"""


def depth_inputs_description(module: str, metrics: tuple[str, ...]) -> str:
    """The ``_KWARGS_DESCRIPTION`` of a depth module returning ``metrics``."""
    returns = "\n".join(f"    {m}: per-image mean (a fraction, not percent)." for m in metrics)
    return f"""
Args:
    predictions: list of H x W arrays (numpy or torch), raw affine-invariant predictions.
    references: list of H x W ground-truth depth maps in metres.
    valid_masks: optional list of H x W bool masks (dataset range and crops); default: gt > 0.
    alignment: "least_squares" (default), "least_squares_disparity", "least_squares_sqrt" or None.
    min_depth, max_depth: clipping range in metres (default 1e-3, 10).
    fit_max_side: fit the alignment on a copy with this longest side (ETH3D: 1024).
    resize: "bilinear" (prediction resized to the GT size) or None (error on mismatch).
    nonfinite: "error" (default) or "mask" (NaN/inf prediction pixels left out).
Returns:
{returns}
    num_images: images added. num_nan: images with no valid pixel.
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("metrics/{module}")
    >>> gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    >>> metric.compute(predictions=[gt * 0.5 + 1], references=[gt])["{metrics[0]}"]
"""


def _items(values, n: int, name: str):
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"got {n} predictions but {len(values)} {name}")
    return values


class ScalarReducingMetric(evaluate.Metric):
    """Stores per-image scalars (``SCALARS``) computed by :meth:`reduce_image`."""

    SCALARS: tuple[str, ...] = ()
    OPTIONS: tuple[str, ...] = ()
    #: the method's code by the paper's authors; this library has no homepage of its own
    HOMEPAGE = "https://github.com/showlab/Edit2Perceive"

    def _metric_info(self, description: str, citation: str, inputs_description: str) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=description,
            citation=citation,
            inputs_description=inputs_description,
            features=datasets.Features({k: datasets.Value("float64") for k in self.SCALARS}),
            homepage=self.HOMEPAGE,
        )

    def reduce_image(self, prediction, reference, valid_mask, trimap, **options) -> dict:
        raise NotImplementedError

    def _split_options(self, kwargs: dict) -> dict:
        unknown = [k for k in kwargs if k not in self.OPTIONS]
        if unknown:
            raise ValueError(f"{self.name}: unknown options {unknown}; accepted: {list(self.OPTIONS)}")
        return kwargs

    def add_batch(self, *, predictions=None, references=None, valid_masks=None, trimaps=None, **options):
        """Reduce each (prediction, reference) pair to scalars and store only those."""
        options = self._split_options(options)
        if predictions is None or references is None:
            raise ValueError(f"{self.name}: add_batch needs predictions and references")
        predictions = list(predictions)
        references = _items(references, len(predictions), "references")
        masks = _items(valid_masks, len(predictions), "valid_masks")
        tris = _items(trimaps, len(predictions), "trimaps")
        rows = [self.reduce_image(p, r, m, t, **options) for p, r, m, t in zip(predictions, references, masks, tris)]
        super().add_batch(**{k: [row[k] for row in rows] for k in self.SCALARS})

    def add(self, *, prediction=None, reference=None, valid_mask=None, trimap=None, **options):
        """One image."""
        self.add_batch(predictions=[prediction], references=[reference],
                       valid_masks=None if valid_mask is None else [valid_mask],
                       trimaps=None if trimap is None else [trimap], **options)

    def compute(self, *, predictions=None, references=None, valid_masks=None, trimaps=None, **kwargs):
        """Add the given images (if any), then aggregate everything added so far."""
        compute_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in self.COMPUTE_OPTIONS}
        if predictions is not None or references is not None:
            self.add_batch(predictions=predictions, references=references, valid_masks=valid_masks, trimaps=trimaps,
                           **kwargs)
        elif kwargs:
            self._split_options(kwargs)
        return super().compute(**compute_kwargs)

    COMPUTE_OPTIONS: tuple[str, ...] = ()

    @staticmethod
    def nan_mean(values) -> tuple[float, int]:
        v = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(v)
        return (float(v[finite].mean()) if finite.any() else float("nan")), int((~finite).sum())


class DepthScalarMetric(ScalarReducingMetric):
    """Per-image depth metrics (``METRICS`` subset), per-image mean over the dataset."""

    METRICS: tuple[str, ...] = DEPTH_METRIC_NAMES
    OPTIONS = ("alignment", "min_depth", "max_depth", "fit_max_side", "resize", "nonfinite")

    @property
    def SCALARS(self):  # noqa: N802 - evaluate reads features from _info
        return self.METRICS

    def reduce_image(self, prediction, reference, valid_mask, trimap, **options) -> dict:
        m = depth_metrics(prediction, reference, valid_mask, **options)
        return {k: m[k] for k in self.METRICS}

    def _compute(self, **columns):
        out, num_nan = {}, 0
        for k in self.METRICS:
            out[k], nans = self.nan_mean(columns[k])
            num_nan = max(num_nan, nans)
        out.update(num_images=len(columns[self.METRICS[0]]), num_nan=num_nan)
        return out


class NormalScalarMetric(ScalarReducingMetric):
    """Per-image sufficient statistics; pooled (mean, rmse, a*) and per-image aggregation."""

    OPTIONS = ("gt_min_norm", "resize", "nonfinite")
    COMPUTE_OPTIONS = ("aggregation",)
    SCALARS = ("num_pixels", "sum", "sum_sq", *(f"below_{k}" for k in NORMAL_THRESHOLDS), *NORMAL_METRIC_NAMES)

    def reduce_image(self, prediction, reference, valid_mask, trimap, **options) -> dict:
        e = normal_errors(prediction, reference, valid_mask, **options)
        row = {"num_pixels": float(e.size), "sum": float(e.sum()), "sum_sq": float(np.sum(e * e))}
        row.update({f"below_{k}": float(np.count_nonzero(e < t)) for k, t in NORMAL_THRESHOLDS.items()})
        row.update(summarize_angular_errors(e))
        return row

    def _compute(self, aggregation: str = "pooled", **columns):
        if aggregation not in ("pooled", "per_image"):
            raise ValueError(f"aggregation must be 'pooled' or 'per_image', got {aggregation!r}")
        per_image = {k: self.nan_mean(columns[k])[0] for k in NORMAL_METRIC_NAMES}
        num_nan = self.nan_mean(columns["mean"])[1]
        counts = {"num_images": len(columns["mean"]), "num_nan": num_nan}
        if aggregation == "per_image":
            return {**per_image, **counts}
        n = float(np.sum(columns["num_pixels"]))
        if n == 0:
            pooled = {k: float("nan") for k in ("mean", "rmse", *NORMAL_THRESHOLDS)}
        else:
            pooled = {"mean": float(np.sum(columns["sum"]) / n), "rmse": float(np.sqrt(np.sum(columns["sum_sq"]) / n))}
            pooled.update({k: float(100.0 * np.sum(columns[f"below_{k}"]) / n) for k in NORMAL_THRESHOLDS})
        # the pooled median needs every pixel's error: see NormalAccumulator / e2p evaluate
        return {**pooled, "median_per_image": per_image["median"], "num_pixels": int(n), **counts}


class MattingScalarMetric(ScalarReducingMetric):
    """Per-image matting metrics, per-image mean over the dataset."""

    OPTIONS = ("conn_mode", "resize", "nonfinite")
    SCALARS = MATTING_METRIC_NAMES

    def reduce_image(self, prediction, reference, valid_mask, trimap, **options) -> dict:
        if valid_mask is not None:
            raise ValueError(f"{self.name}: matting uses trimaps (unknown band) or the whole image, not valid_masks")
        return matting_metrics(prediction, reference, trimap, **options)

    def _compute(self, **columns):
        out, num_nan = {}, 0
        for k in MATTING_METRIC_NAMES:
            out[k], nans = self.nan_mean(columns[k])
            num_nan = max(num_nan, nans)
        return {**out, "num_images": len(columns["mse"]), "num_nan": num_nan}
