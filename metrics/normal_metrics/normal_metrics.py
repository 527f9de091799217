"""Surface-normal angular-error metrics: an `evaluate` module, thin over
`edit2perceive.metrics.normal_errors`. Each image is reduced to scalars when it is added."""

import evaluate

from edit2perceive.evaluation import hf_metric  # a module, so evaluate finds the class below first

_DESCRIPTION = """Angular error e = degrees(arccos(clip(cos_sim(pred, gt), -1, 1))) per valid pixel
(a zero prediction vector scores 90 degrees); mean, median, RMSE in degrees and the percentage
of pixels with e < 5, 7.5, 11.25, 22.5, 30 degrees. Two aggregations (not comparable):
"pooled" over all valid pixels of the dataset (DSINE, Lotus, StableNormal) and "per_image"
then averaged (Marigold, Edit2Perceive; their median is a mean of per-image medians).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of H x W x 3 predicted normals (any length; same camera frame as gt).
    references: list of H x W x 3 ground-truth normals.
    valid_masks: optional list of H x W bool masks; pixels with ||gt|| <= gt_min_norm are invalid.
    gt_min_norm: 0 (Marigold, default) or 1e-3 (Edit2Perceive).
    resize, nonfinite: as in edit2perceive.metrics.normal_metrics.
    aggregation (compute only): "pooled" (default) or "per_image".
Returns:
    pooled: mean, rmse (degrees), a5, a7_5, a11_25, a22_5, a30 (percent) over all pixels;
        median_per_image (the pooled median needs every pixel's error: use `e2p evaluate`,
        which keeps a 0.001-degree histogram); num_pixels.
    per_image: mean, median, rmse, a5, a7_5, a11_25, a22_5, a30 averaged over images.
    num_images, num_nan (images with no valid pixel, left out).
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("metrics/normal_metrics")
    >>> gt = np.dstack([np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2))])
    >>> metric.compute(predictions=[gt * 2], references=[gt])["a11_25"]
    100.0
"""

_CITATION = """@inproceedings{bae2024dsine,
  title={Rethinking Inductive Biases for Surface Normal Estimation},
  author={Bae, Gwangbin and Davison, Andrew J.}, booktitle={CVPR}, year={2024}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NormalMetrics(hf_metric.NormalScalarMetric):
    def _info(self):
        return self._metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)
