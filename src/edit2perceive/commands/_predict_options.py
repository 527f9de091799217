"""The typed options of ``e2p predict``, built once from the argparse namespace at the edge
(:meth:`PredictOptions.from_args`); the command's helpers take these, never the namespace."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..outputs.pointcloud import DEFAULT_FOV_DEG
from ..outputs.video import FRAME_NOISE_MODES
from ..pipelines.ensemble import DEFAULT_AUGMENTATIONS
from ._model_args import ModelOptions

Point = tuple[float, float]


@dataclass(frozen=True)
class ExtraOptions:
    """Options beyond one map (:mod:`edit2perceive.commands._predict_extras`): ensembles and
    uncertainty, metric depth, 3D export, video."""

    ensemble_size: int = 1
    ensemble_augmentations: tuple[str, ...] = DEFAULT_AUGMENTATIONS
    uncertainty: bool = False
    metric_depth: str | None = None
    metric_fit: str = "least_squares"
    export: tuple[str, ...] = ()
    fov: float = DEFAULT_FOV_DEG
    intrinsics: tuple[float, float, float, float] | None = None
    depth_range: tuple[float, float] = (1.0, 10.0)
    depth_model: str | None = None
    normal_model: str | None = None
    frame_noise: str = FRAME_NOISE_MODES[0]
    temporal_smoothing: float = 0.0
    frames: bool = True  # video: also write per-frame files

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ExtraOptions:
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name != "frames"}
        for name in ("ensemble_augmentations", "export", "intrinsics", "depth_range"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        return cls(**values, frames=not args.no_frames)


@dataclass(frozen=True)
class PredictOptions:
    """Everything one ``e2p predict`` run needs (see the command's ``--help``)."""

    inputs: tuple[str, ...]
    task: str
    output_dir: Path
    model: str | None = None
    loading: ModelOptions = field(default_factory=ModelOptions)
    points: tuple[Point, ...] | None = None
    steps: int = 1
    processing_resolution: int | None = None
    batch_size: int = 1
    skip_existing: bool = False
    device: str | None = None
    extras: ExtraOptions = field(default_factory=ExtraOptions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> PredictOptions:
        return cls(inputs=tuple(args.inputs), task=args.task, output_dir=Path(args.output_dir), model=args.model,
                   loading=ModelOptions.from_args(args), points=tuple(args.points) if args.points else None,
                   steps=args.steps, processing_resolution=args.processing_resolution, batch_size=args.batch_size,
                   skip_existing=args.skip_existing, device=args.device, extras=ExtraOptions.from_args(args))


class DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the new option's ``dest`` and says which to use."""

    def __init__(self, *args, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)
