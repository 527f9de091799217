"""Dataset-scale prediction: any ``datasets`` source in, a prediction dataset (parquet shards,
manifest, dataset card) out, on one or many processes (``accelerate launch``), resumable.

``e2p predict --dataset NAME_OR_PATH`` is the command; :func:`predict_dataset` the function;
:func:`decode_row` / :func:`decode_prediction` read predictions back. See
docs/inference-at-scale.md.
"""

from .encoding import ENCODINGS, decode_prediction, decode_row
from .runner import DatasetPredictionResult, end_processes, predict_dataset, process_state
from .source import Source, load_source

__all__ = ["ENCODINGS", "DatasetPredictionResult", "Source", "decode_prediction", "decode_row", "end_processes", "load_source",
           "predict_dataset", "process_state"]
