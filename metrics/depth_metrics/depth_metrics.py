"""Depth metrics: an `evaluate` module, thin over `edit2perceive.metrics.depth_metrics`.

Each image is reduced to scalars when it is added; only the scalars are stored.
"""

import evaluate

from edit2perceive.evaluation import hf_metric  # a module, so evaluate finds the class below first

_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3", "i_rmse", "silog")
_DESCRIPTION = "The ten standard depth metrics (AbsRel, SqRel, RMSE, RMSE log, log10, delta1-3, iRMSE, SILog).\n" + hf_metric.DEPTH_PROTOCOL_TEXT
_KWARGS_DESCRIPTION = hf_metric.depth_inputs_description("depth_metrics", _METRICS)
_CITATION = hf_metric.MARIGOLD_CITATION


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DepthMetrics(hf_metric.DepthScalarMetric):
    METRICS = _METRICS

    def _info(self):
        return self._metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)
