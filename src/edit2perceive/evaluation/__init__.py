"""Benchmark evaluation: dataset readers in their distributed layouts, protocols, runner,
result tables. See docs/evaluation.md and PROTOCOLS.md.

Quick use::

    from edit2perceive.evaluation import evaluate_benchmark, SavedPredictions
    res = evaluate_benchmark("depth", "nyuv2", "data/nyuv2", SavedPredictions("preds/"),
                             protocol="marigold", output_dir="eval/nyuv2")
    res.summary["metrics"]["abs_rel"]
"""

from .points import POINT_PROTOCOL, oracle_points
from .predictors import FunctionPredictor, PipelinePredictor, SavedPredictions, as_predictor
from .protocols import DATASETS, DISPLAY_NAMES, PROTOCOL_NAMES, Protocol, make_protocol, resolve_alignment
from .registry import BENCHMARK_READERS, get_reader
from .report import paper_table, results_markdown
from .runner import EvaluationResult, evaluate_benchmark

__all__ = [
    "BENCHMARK_READERS", "DATASETS", "DISPLAY_NAMES", "POINT_PROTOCOL", "PROTOCOL_NAMES", "EvaluationResult",
    "FunctionPredictor", "PipelinePredictor", "Protocol", "SavedPredictions", "as_predictor", "evaluate_benchmark",
    "get_reader", "make_protocol", "oracle_points", "paper_table", "resolve_alignment", "results_markdown",
]
