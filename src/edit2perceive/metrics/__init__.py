"""Metric functions: the single source of truth for every number the project reports.

Pure numpy (torch tensors accepted, scipy for the matting Grad/Conn filters); nothing here
imports diffusers, transformers or model code. One image per call:

- :func:`depth_metrics` (affine-invariant depth, the Marigold protocol; fractions),
- :func:`normal_metrics` (angular errors in degrees, threshold accuracies in percent),
- :func:`matting_metrics` (MSE, MAD raw; SAD, Grad, Conn divided by 1000).

Accumulators (:class:`MeanAccumulator`, :class:`NormalAccumulator`) aggregate a dataset
with fixed-size state and combine across processes. See PROTOCOLS.md for the formulas.
"""

from ._inputs import count_nonfinite
from .accumulate import MeanAccumulator, NormalAccumulator
from .depth import ALIGNMENTS, DEPTH_METRIC_NAMES, align_depth, depth_metrics, fit_scale_shift
from .matting import CONN_MODES, MATTING_METRIC_NAMES, conn_error, grad_error, matting_metrics
from .normal import NORMAL_METRIC_NAMES, angular_error_deg, normal_errors, normal_metrics

__all__ = [
    "ALIGNMENTS",
    "CONN_MODES",
    "DEPTH_METRIC_NAMES",
    "MATTING_METRIC_NAMES",
    "NORMAL_METRIC_NAMES",
    "MeanAccumulator",
    "NormalAccumulator",
    "align_depth",
    "angular_error_deg",
    "conn_error",
    "count_nonfinite",
    "depth_metrics",
    "fit_scale_shift",
    "grad_error",
    "matting_metrics",
    "normal_errors",
    "normal_metrics",
]
