"""AbsRel: an `evaluate` module, thin over `edit2perceive.metrics.depth_metrics`.

Each image is reduced to scalars when it is added; only the scalars are stored.
"""

import evaluate

from edit2perceive.evaluation import hf_metric  # a module, so evaluate finds the class below first

_DESCRIPTION = """Absolute relative error mean(|d - g| / g) of depth predictions.
Affine-invariant protocol (Marigold): least-squares scale and shift of the prediction on the
valid pixels (in depth, disparity or sqrt space), clipping to [min_depth, max_depth], then the
metric per image; the dataset score is the mean over images (images with no valid pixel are
counted in num_nan and left out).
"""

_KWARGS_DESCRIPTION = """
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
    abs_rel: per-image mean (a fraction, not percent).
    num_images: images added. num_nan: images with no valid pixel.
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("metrics/absrel")
    >>> gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    >>> metric.compute(predictions=[gt * 0.5 + 1], references=[gt])["abs_rel"]
"""

_CITATION = """@InProceedings{ke2023repurposing,
  title={Repurposing Diffusion-Based Image Generators for Monocular Depth Estimation},
  author={Ke, Bingxin and Obukhov, Anton and Huang, Shengyu and Metzger, Nando and Daudt, Rodrigo Caye and Schindler, Konrad},
  booktitle={CVPR}, year={2024}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AbsRel(hf_metric.DepthScalarMetric):
    METRICS = ("abs_rel",)

    def _info(self):
        return self._metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)
