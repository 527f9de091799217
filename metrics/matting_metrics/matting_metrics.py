"""Alpha-matting metrics (MSE, MAD, SAD, Grad, Conn): an `evaluate` module, thin over
`edit2perceive.metrics.matting_metrics`. Each image is reduced to scalars when it is added."""

import evaluate

from edit2perceive.evaluation import hf_metric  # a module, so evaluate finds the class below first

_DESCRIPTION = """Matting errors of predicted alpha against ground truth (both in [0, 1]) over the
whole image or the trimap's unknown band: MSE and MAD (raw means), SAD = sum |p - g| / 1000,
Grad = sum (|grad p| - |grad g|)^2 / 1000 (Gaussian-derivative filter, sigma 1.4) and
Conn = sum |phi_p - phi_g| / 1000 (thresholds k/10, largest 4-connected foreground component,
theta 0.15; the MATLAB reference definition). Dataset score: mean over images.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of H x W predicted alpha in [0, 1] (uint8 arrays are divided by 255).
    references: list of H x W ground-truth alpha in [0, 1].
    trimaps: optional list of uint8 trimaps (0 / 128 / 255): metrics over the 128 band only.
    conn_mode: "matlab" (default, correct) or "python_port" (reproduces the widely copied
        Python port, whose largest component can be the background).
    resize, nonfinite: as in edit2perceive.metrics.matting_metrics.
Returns:
    mse, mad, sad, grad, conn: means over images; num_images; num_nan (empty region).
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("metrics/matting_metrics")
    >>> metric.compute(predictions=[np.array([[0.0, 0.5]])], references=[np.array([[0.0, 1.0]])])["mad"]
    0.25
"""

_CITATION = """@inproceedings{rhemann2009perceptually,
  title={A perceptually motivated online benchmark for image matting},
  author={Rhemann, Christoph and Rother, Carsten and Wang, Jue and Gelautz, Margrit and Kohli, Pushmeet and Rott, Pamela},
  booktitle={CVPR}, year={2009}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MattingMetrics(hf_metric.MattingScalarMetric):
    def _info(self):
        return self._metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)
