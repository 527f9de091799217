"""``e2p predict`` options beyond one map: ensembles + uncertainty, metric depth, 3D export, video.

Kept apart from the image loop of :mod:`edit2perceive.commands.predict`, which calls:
``add_arguments(parser)``, ``check_arguments(args)`` (a reason string or ``None``),
``call_kwargs(args)`` (extra pipeline-call arguments), ``Helpers(args, pipe)`` (the other
models a 3D export needs) and ``extra_files(args, helpers, rgb, out)`` (the additional files
of one image, ``{file name: value}`` for the writers of :mod:`edit2perceive.outputs.visualize`), and
``run_video(args, pipe, path, folder)`` / ``video_done(folder, task)`` for video inputs.

Extra files (in the input's output folder):
- ``--ensemble-size N --uncertainty``: ``<task>_uncertainty.png`` (Marigold's grey
  visualization) and ``<task>_uncertainty.npy``;
- ``--metric-depth FILE`` (depth): ``depth_metric.npy`` (float32 metres, 0 = undefined) and
  ``depth_metric_fit.json`` (scale, shift, residuals, inliers);
- ``--export ply|glb``: ``<task>_cloud.ply`` / ``.glb``, a coloured point cloud (see
  :mod:`edit2perceive.outputs.pointcloud`): depth from this model (``--task depth``) or from
  ``--depth-model``; metric when ``--metric-depth`` is given, else the prediction spread
  over ``--depth-range NEAR FAR`` (default 1 10 metres); normals from ``--task normal`` or
  ``--normal-model`` (PLY only); matting exports the cut-out object (alpha > 0.5) only.
  Intrinsics: ``--intrinsics FX FY CX CY`` in input pixels, else ``--fov`` (horizontal
  degrees, default 60).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from ..outputs.metric_depth import METHODS
from ..outputs.pointcloud import DEFAULT_FOV_DEG, FORMATS
from ..outputs.video import NOISE_MODES
from ..pipelines.ensemble import AUGMENTATIONS, DEFAULT_AUGMENTATIONS

DEFAULT_DEPTH_RANGE = (1.0, 10.0)
CUTOUT_THRESHOLD = 0.5


def add_arguments(p) -> None:
    g = p.add_argument_group("ensembles and uncertainty")
    g.add_argument("--ensemble-size", type=int, default=1, help="predictions combined per image (default 1 = none)")
    g.add_argument("--ensemble-augmentations", nargs="+", choices=AUGMENTATIONS, default=list(DEFAULT_AUGMENTATIONS),
                   help=f"how members differ (default: {' '.join(DEFAULT_AUGMENTATIONS)})")
    g.add_argument("--uncertainty", action="store_true", help="write the ensemble's uncertainty map (needs N >= 2)")
    g = p.add_argument_group("metric depth")
    g.add_argument("--metric-depth", type=str, default=None, metavar="FILE",
                   help="known distances: CSV x,y,depth (metres, input pixels) or .npy (K x 3 or a sparse H x W map)")
    g.add_argument("--metric-fit", choices=METHODS, default="least_squares", help="fit (default least_squares)")
    g = p.add_argument_group("3D export")
    g.add_argument("--export", nargs="+", choices=FORMATS, default=[], help="write a coloured point cloud")
    g.add_argument("--fov", type=float, default=DEFAULT_FOV_DEG, help="horizontal field of view in degrees (60)")
    g.add_argument("--intrinsics", type=float, nargs=4, default=None, metavar=("FX", "FY", "CX", "CY"),
                   help="camera intrinsics in input pixels (instead of --fov)")
    g.add_argument("--depth-range", type=float, nargs=2, default=list(DEFAULT_DEPTH_RANGE), metavar=("NEAR", "FAR"),
                   help="metres assumed for the prediction's 0..1 when nothing is measured (default 1 10)")
    g.add_argument("--depth-model", default=None, help="depth model for exporting normal / matting predictions")
    g.add_argument("--normal-model", default=None, help="normal model whose normals go into a depth export")
    g = p.add_argument_group("video (inputs ending in .mp4, .mov, .avi, .mkv, .webm, .m4v)")
    g.add_argument("--noise", choices=NOISE_MODES, default="fixed", help="per-frame noise (default fixed)")
    g.add_argument("--temporal-smoothing", type=float, default=0.0, metavar="W",
                   help="exponential smoothing weight of the past in [0, 1) (default 0 = off)")
    g.add_argument("--no-frames", action="store_true", help="video: write only the mp4, not per-frame files")


def check_arguments(args) -> str | None:
    """The reason the extra options would fail for every input, or ``None``."""
    if args.ensemble_size < 1:
        return f"--ensemble-size must be >= 1, got {args.ensemble_size}"
    if args.uncertainty and args.ensemble_size < 2:
        return "--uncertainty needs --ensemble-size 2 or more (the spread of the ensemble members)"
    if args.metric_depth is not None:
        if args.task != "depth":
            return "--metric-depth aligns a depth prediction: use it with --task depth"
        if not os.path.isfile(args.metric_depth):
            return f"--metric-depth {args.metric_depth}: no such file"
    if args.export:
        if args.task != "depth" and args.depth_model is None:
            return f"--export with --task {args.task} needs --depth-model (the depth to back-project)"
        if not 0 < args.fov < 180:
            return f"--fov must be within (0, 180) degrees, got {args.fov}"
        if args.intrinsics is not None and (min(args.intrinsics[:2]) <= 0 or not all(map(math.isfinite, args.intrinsics))):
            return f"--intrinsics FX FY CX CY need finite values and FX, FY > 0, got {args.intrinsics}"
        near, far = args.depth_range
        if not 0 < near < far:
            return f"--depth-range needs 0 < NEAR < FAR, got {near} {far}"
    if (args.depth_model or args.normal_model) and not args.export:
        return "--depth-model / --normal-model are only used by --export"
    if args.normal_model and args.task == "normal":
        return "--normal-model is for depth or matting exports; --task normal already gives normals"
    if not 0 <= args.temporal_smoothing < 1:
        return f"--temporal-smoothing must be in [0, 1), got {args.temporal_smoothing}"
    return None


def call_kwargs(args) -> dict:
    """Extra keyword arguments of the pipeline call."""
    return {"ensemble_size": args.ensemble_size, "ensemble_augmentations": tuple(args.ensemble_augmentations),
            "output_uncertainty": bool(args.uncertainty)}


class Helpers:
    """The second models of a 3D export (depth for normal / matting, normals for depth)."""

    def __init__(self, args, pipe):
        from ..pipelines.loading import load_pipeline

        self.depth = self.normal = None
        base = getattr(args, "base_model", None)  # fills what shared models leave out (VAE, ...)
        if args.export and args.task != "depth":
            self.depth = load_pipeline(args.depth_model, task="depth", device=args.device, base_model=base)
        if args.export and args.normal_model:
            self.normal = load_pipeline(args.normal_model, task="normal", device=args.device, base_model=base)
        self.main = pipe

    def predict(self, pipe, rgb, args):
        return pipe(rgb, num_inference_steps=args.steps, processing_resolution=args.processing_resolution).prediction[0]


def extra_files(args, helpers: Helpers, rgb, prediction, uncertainty=None) -> dict:
    """The additional files of one image (see the module docstring)."""
    from ..outputs.metric_depth import align_to_metric, depth_from_range
    from ..outputs.pointcloud import encode_point_cloud, intrinsics_from_fov, point_cloud
    from ..outputs.visualize import EncodedFile, uncertainty_to_image

    task = args.task
    files: dict[str, object] = {}
    if uncertainty is not None:
        files[f"{task}_uncertainty.png"] = uncertainty_to_image(uncertainty)
        files[f"{task}_uncertainty.npy"] = np.asarray(uncertainty, dtype=np.float32)
    fit = None
    if args.metric_depth is not None:
        fit = align_to_metric(prediction, args.metric_depth, encoding=helpers.main.task.encoding, method=args.metric_fit)
        files["depth_metric.npy"] = fit.depth
        summary = {**fit.summary(), "measurements_file": os.path.abspath(args.metric_depth)}
        files["depth_metric_fit.json"] = EncodedFile(json.dumps(summary, indent=2).encode())
    if args.export:
        depth_pipe = helpers.main if task == "depth" else helpers.depth
        depth_pred = prediction if task == "depth" else helpers.predict(depth_pipe, rgb, args)
        if fit is not None:
            depth_m = np.where(fit.valid_mask, fit.depth, 0.0)
        else:
            near, far = args.depth_range
            depth_m = depth_from_range(depth_pred, encoding=depth_pipe.task.encoding, near=near, far=far)
        normals = prediction if task == "normal" else (
            helpers.predict(helpers.normal, rgb, args) if helpers.normal is not None else None)
        h, w = depth_m.shape
        k = tuple(args.intrinsics) if args.intrinsics is not None else intrinsics_from_fov(h, w, args.fov)
        mask = np.asarray(prediction) > CUTOUT_THRESHOLD if task == "matting" else None
        cloud = point_cloud(depth_m, np.asarray(rgb.convert("RGB")), k, normals=normals, mask=mask)
        for fmt in args.export:
            files[f"{task}_cloud.{fmt}"] = EncodedFile(encode_point_cloud(cloud, fmt))
    return files


def video_done(folder, task: str) -> bool:
    """A video's outputs are complete when its mp4 exists (written last, atomically)."""
    from pathlib import Path

    return (Path(folder) / f"{task}.mp4").is_file()


def run_video(args, pipe, path, folder) -> int:
    """Predict a video into ``folder``: ``<task>.mp4`` and (unless ``--no-frames``)
    ``<task>_frames/``; returns the number of frames."""
    from pathlib import Path

    from ..outputs.video import predict_video

    folder = Path(folder)
    kwargs = call_kwargs(args)
    kwargs.pop("output_uncertainty")
    return predict_video(pipe, path, folder / f"{args.task}.mp4",
                         frames_dir=None if args.no_frames else folder / f"{args.task}_frames",
                         noise=args.noise, smoothing=args.temporal_smoothing, batch_size=getattr(args, "batch_size", 1),
                         points=list(args.points) if args.points else None, num_inference_steps=args.steps,
                         processing_resolution=args.processing_resolution, **kwargs)
