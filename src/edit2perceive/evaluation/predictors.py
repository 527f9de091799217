"""Predictors: what the runner asks for a prediction of one sample.

A predictor has ``predict(sample, points) -> np.ndarray`` (depth ``H x W``, normals
``H x W x 3``, alpha ``H x W``; a leading batch axis of 1 is accepted), ``depth_encoding``
(``"sqrt"``, ``"uniform"``, ``"disparity"``, ``"log"`` or None when unknown) and
``describe() -> dict`` (recorded in the summary).

- :class:`FunctionPredictor` wraps any callable ``fn(rgb_uint8_HxWx3, points) -> array``.
- :class:`SavedPredictions` reads ``<folder>/<sample_id>.npy`` (ids as the reader yields
  them, so ids with ``/`` live in sub-folders); the RGB is never decoded.
- :class:`PipelinePredictor` loads :class:`edit2perceive.Edit2PerceivePipeline` lazily on
  first use (``from_pretrained``; a local folder works offline).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import Sample


class FunctionPredictor:
    def __init__(self, fn, depth_encoding: str | None = None, name: str | None = None):
        self.fn = fn
        self.depth_encoding = depth_encoding
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def predict(self, sample: Sample, points) -> np.ndarray:
        return np.asarray(self.fn(sample.load_rgb(), points))

    def describe(self) -> dict:
        return {"kind": "function", "name": self.name, "depth_encoding": self.depth_encoding}


class SavedPredictions:
    """Predictions saved as ``.npy`` files, one per sample (``<folder>/<sample_id>.npy``)."""

    def __init__(self, folder: str | os.PathLike, depth_encoding: str | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: predictions folder not found")
        self.depth_encoding = depth_encoding

    def path_for(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.npy"

    def predict(self, sample: Sample, points) -> np.ndarray:
        path = self.path_for(sample.sample_id)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no saved prediction for sample {sample.sample_id!r} "
                                    "(expected <predictions>/<sample_id>.npy)")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # truncated, object array (pickle), not .npy
            raise ValueError(f"{path}: not a readable numeric .npy array ({err})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
            raise ValueError(f"{path}: expected a numeric array, got {getattr(arr, 'dtype', type(arr).__name__)}")
        return arr

    def describe(self) -> dict:
        return {"kind": "saved_predictions", "folder": str(self.folder), "depth_encoding": self.depth_encoding}


class PipelinePredictor:
    """An Edit2Perceive pipeline, loaded on first use."""

    def __init__(self, model: str | None, task: str, *, device: str | None = None,
                 processing_resolution: int | None = None, **load_options):
        self.model = model
        self.load_options = load_options  # base_model, reference_checkpoint, offload, quantize, vae_tiling
        self.task = task
        self.device = device
        self.processing_resolution = processing_resolution
        self._pipe = None

    @property
    def pipe(self):
        if self._pipe is None:
            from edit2perceive.pipelines.loading import load_pipeline

            self._pipe = load_pipeline(self.model, task=self.task, device=self.device, **self.load_options)
        return self._pipe

    @property
    def depth_encoding(self) -> str | None:
        return getattr(self.pipe.task, "encoding", None) if self.task == "depth" else None

    @property
    def point_protocol(self) -> str:
        """The matting benchmark prompt of the model's conventions (``"ours"`` / ``"reference"``)."""
        return self.pipe.conventions.benchmark_points if self.task == "matting" else "ours"

    def predict(self, sample: Sample, points) -> np.ndarray:
        """``points``: a list of ``(x, y)`` or a ``PointMap`` (the reference benchmark prompt)."""
        import PIL.Image

        from edit2perceive.pipelines import PointMap

        image = PIL.Image.fromarray(sample.load_rgb())
        prompt = {"point_maps": [points]} if isinstance(points, PointMap) else {
            "points": [list(points)] if points else None}
        out = self.pipe(image, **prompt, processing_resolution=self.processing_resolution, output_type="np")
        return np.asarray(out.prediction[0])

    def describe(self) -> dict:
        return {"kind": "pipeline", "model": self.model or self.load_options.get("reference_checkpoint"),
                "depth_encoding": self.depth_encoding,
                "processing_resolution": self.processing_resolution or "model default"}


def as_predictor(obj, depth_encoding: str | None = None):
    """A predictor object as is; a plain callable wrapped in :class:`FunctionPredictor`."""
    if hasattr(obj, "predict"):
        return obj
    if callable(obj):
        return FunctionPredictor(obj, depth_encoding)
    raise TypeError(f"predictor must be callable or have predict(sample, points), got {type(obj).__name__}")
