"""Delta1: an `evaluate` module, thin over `edit2perceive.metrics.depth_metrics`.

Each image is reduced to scalars when it is added; only the scalars are stored.
"""

import evaluate

from edit2perceive.evaluation import hf_metric  # a module, so evaluate finds the class below first

_METRICS = ("delta1",)
_DESCRIPTION = "Threshold accuracy delta1 = mean(max(d / g, g / d) < 1.25) (strict) of depth predictions.\n" + hf_metric.DEPTH_PROTOCOL_TEXT
_KWARGS_DESCRIPTION = hf_metric.depth_inputs_description("delta1", _METRICS)
_CITATION = hf_metric.MARIGOLD_CITATION


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Delta1(hf_metric.DepthScalarMetric):
    METRICS = _METRICS

    def _info(self):
        return self._metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)
