"""``e2p predict`` options beyond one map: ensembles + uncertainty, metric depth, 3D export, video.

Kept apart from the image loop of :mod:`edit2perceive.commands.predict`, which calls:
``add_arguments(parser)`` and, with the typed options of
:mod:`edit2perceive.commands._predict_options`, ``check_arguments(opts)`` (a reason string or
``None``), ``call_kwargs(opts.extras)`` (extra pipeline-call arguments), ``Helpers(opts, pipe)``
(the other models a 3D export needs) and ``extra_files(opts, helpers, rgb, out)`` (the
additional files of one image, ``{file name: value}`` for the writers of
:mod:`edit2perceive.outputs.visualize`), and ``run_video(opts, pipe, path, output_dir, name, owner)`` /
``video_done(opts, folder)`` for video inputs.

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

import argparse
import json
import math
import os

import numpy as np

from ..outputs.metric_depth import METHODS
from ..outputs.pointcloud import FORMATS
from ..outputs.video import FRAME_NOISE_MODES
from ..pipelines.ensemble import AUGMENTATIONS, RENAMED_AUGMENTATIONS
from ._predict_options import DeprecatedAlias, ExtraOptions, PredictOptions

DEFAULT = ExtraOptions()
CUTOUT_THRESHOLD = 0.5


def add_arguments(p) -> None:
    g = p.add_argument_group("ensembles and uncertainty")
    g.add_argument("--ensemble-size", type=int, default=DEFAULT.ensemble_size,
                   help="predictions combined per image (default 1 = none)")
    g.add_argument("--ensemble-augmentations", nargs="+", choices=(*AUGMENTATIONS, *RENAMED_AUGMENTATIONS),
                   metavar="{" + ",".join(AUGMENTATIONS) + "}",
                   default=list(DEFAULT.ensemble_augmentations),
                   help=f"how members differ (default: {' '.join(DEFAULT.ensemble_augmentations)})")
    g.add_argument("--uncertainty", action="store_true", help="write the ensemble's uncertainty map (needs N >= 2)")
    g = p.add_argument_group("metric depth")
    g.add_argument("--metric-depth", type=str, default=None, metavar="FILE",
                   help="known distances: CSV x,y,depth (metres, input pixels) or .npy (K x 3 or a sparse H x W map)")
    g.add_argument("--metric-fit", choices=METHODS, default=DEFAULT.metric_fit, help="fit (default %(default)s)")
    g = p.add_argument_group("3D export")
    g.add_argument("--export", nargs="+", choices=FORMATS, default=[], help="write a coloured point cloud")
    g.add_argument("--fov", type=float, default=DEFAULT.fov,
                   help="horizontal field of view in degrees (default %(default)g)")
    g.add_argument("--intrinsics", type=float, nargs=4, default=None, metavar=("FX", "FY", "CX", "CY"),
                   help="camera intrinsics in input pixels (instead of --fov)")
    g.add_argument("--depth-range", type=float, nargs=2, default=list(DEFAULT.depth_range), metavar=("NEAR", "FAR"),
                   help="metres assumed for the prediction's 0..1 when nothing is measured "
                        f"(default {' '.join(f'{v:g}' for v in DEFAULT.depth_range)})")
    g.add_argument("--depth-model", default=None, help="depth model for exporting normal / matting predictions")
    g.add_argument("--normal-model", default=None, help="normal model whose normals go into a depth export")
    g = p.add_argument_group("video (inputs ending in .mp4, .mov, .avi, .mkv, .webm, .m4v)")
    g.add_argument("--frame-noise", choices=FRAME_NOISE_MODES, default=DEFAULT.frame_noise,
                   help="initial noise of each frame: the fixed training noise or fresh draws (default %(default)s)")
    g.add_argument("--noise", dest="frame_noise", choices=FRAME_NOISE_MODES, action=DeprecatedAlias,
                   replacement="--frame-noise", help=argparse.SUPPRESS)
    g.add_argument("--temporal-smoothing", type=float, default=DEFAULT.temporal_smoothing, metavar="W",
                   help="exponential smoothing weight of the past in [0, 1) (default 0 = off)")
    g.add_argument("--no-frames", action="store_true", help="video: write only the mp4, not per-frame files")


def check_arguments(opts: PredictOptions) -> str | None:
    """The reason the extra options would fail for every input, or ``None``."""
    extras, task = opts.extras, opts.task
    if extras.ensemble_size < 1:
        return f"--ensemble-size must be >= 1, got {extras.ensemble_size}"
    if extras.uncertainty and extras.ensemble_size < 2:
        return "--uncertainty needs --ensemble-size 2 or more (the spread of the ensemble members)"
    if extras.metric_depth is not None:
        if task != "depth":
            return "--metric-depth aligns a depth prediction: use it with --task depth"
        if not os.path.isfile(extras.metric_depth):
            return f"--metric-depth {extras.metric_depth}: no such file"
        from ..outputs.metric_depth import check_measurement_file

        try:  # a malformed file is refused now, not after minutes of model loading
            check_measurement_file(extras.metric_depth)
        except ValueError as err:
            return f"--metric-depth {err}"
    if extras.export:
        if task != "depth" and extras.depth_model is None:
            return f"--export with --task {task} needs --depth-model (the depth to back-project)"
        if not 0 < extras.fov < 180:
            return f"--fov must be within (0, 180) degrees, got {extras.fov}"
        if extras.intrinsics is not None and (min(extras.intrinsics[:2]) <= 0 or not all(map(math.isfinite, extras.intrinsics))):
            return f"--intrinsics FX FY CX CY need finite values and FX, FY > 0, got {extras.intrinsics}"
        near, far = extras.depth_range
        if not 0 < near < far:
            return f"--depth-range needs 0 < NEAR < FAR, got {near} {far}"
    if (extras.depth_model or extras.normal_model) and not extras.export:
        return "--depth-model / --normal-model are only used by --export"
    if extras.normal_model and task == "normal":
        return "--normal-model is for depth or matting exports; --task normal already gives normals"
    if not 0 <= extras.temporal_smoothing < 1:
        return f"--temporal-smoothing must be in [0, 1), got {extras.temporal_smoothing}"
    return None


def extra_file_names(opts: PredictOptions) -> set[str]:
    """The names of the extra files :func:`extra_files` writes for one image."""
    extras, task = opts.extras, opts.task
    names = {f"{task}_uncertainty.png", f"{task}_uncertainty.npy"} if extras.uncertainty else set()
    if extras.metric_depth is not None:
        names |= {"depth_metric.npy", "depth_metric_fit.json"}
    return names | {f"{task}_cloud.{fmt}" for fmt in extras.export}


def call_kwargs(extras: ExtraOptions) -> dict:
    """Extra keyword arguments of the pipeline call."""
    return {"ensemble_size": extras.ensemble_size, "ensemble_augmentations": extras.ensemble_augmentations,
            "output_uncertainty": extras.uncertainty}


class Helpers:
    """The second models of a 3D export (depth for normal / matting, normals for depth)."""

    def __init__(self, opts: PredictOptions, pipe):
        from ..pipelines.loading import load_pipeline

        self.depth = self.normal = None
        extras, base = opts.extras, opts.loading.base_model  # the base fills what they leave out (VAE, ...)
        if extras.export and opts.task != "depth":
            self.depth = load_pipeline(extras.depth_model, task="depth", device=opts.device, base_model=base)
        if extras.export and extras.normal_model:
            self.normal = load_pipeline(extras.normal_model, task="normal", device=opts.device, base_model=base)
        self.main = pipe
        self.call = {"num_inference_steps": opts.steps, "processing_resolution": opts.processing_resolution}

    def predict(self, pipe, rgb):
        return pipe(rgb, **self.call).prediction[0]


def extra_files(opts: PredictOptions, helpers: Helpers, rgb, prediction, uncertainty=None) -> dict:
    """The additional files of one image (see the module docstring)."""
    from ..outputs.metric_depth import align_to_metric, depth_from_range
    from ..outputs.pointcloud import encode_point_cloud, intrinsics_from_fov, point_cloud
    from ..outputs.visualize import EncodedFile, uncertainty_to_image

    task, extras = opts.task, opts.extras
    files: dict[str, object] = {}
    if uncertainty is not None:
        files[f"{task}_uncertainty.png"] = uncertainty_to_image(uncertainty)
        files[f"{task}_uncertainty.npy"] = np.asarray(uncertainty, dtype=np.float32)
    fit = None
    if extras.metric_depth is not None:
        fit = align_to_metric(prediction, extras.metric_depth, encoding=helpers.main.task.encoding, method=extras.metric_fit)
        files["depth_metric.npy"] = fit.depth
        summary = {**fit.summary(), "measurements_file": os.path.abspath(extras.metric_depth)}
        files["depth_metric_fit.json"] = EncodedFile(json.dumps(summary, indent=2).encode())
    if extras.export:
        depth_pipe = helpers.main if task == "depth" else helpers.depth
        depth_pred = prediction if task == "depth" else helpers.predict(depth_pipe, rgb)
        if fit is not None:
            depth_m = np.where(fit.valid_mask, fit.depth, 0.0)
        else:
            near, far = extras.depth_range
            depth_m = depth_from_range(depth_pred, encoding=depth_pipe.task.encoding, near=near, far=far)
        normals = prediction if task == "normal" else (
            helpers.predict(helpers.normal, rgb) if helpers.normal is not None else None)
        h, w = depth_m.shape
        k = extras.intrinsics if extras.intrinsics is not None else intrinsics_from_fov(h, w, extras.fov)
        mask = np.asarray(prediction) > CUTOUT_THRESHOLD if task == "matting" else None
        cloud = point_cloud(depth_m, np.asarray(rgb.convert("RGB")), k, normals=normals, mask=mask)
        for fmt in extras.export:
            files[f"{task}_cloud.{fmt}"] = EncodedFile(encode_point_cloud(cloud, fmt))
    return files


def video_names(opts: PredictOptions) -> list[str]:
    """The entries a video input's folder gets for the task: ``<task>.mp4`` and ``<task>_frames/``."""
    return [f"{opts.task}.mp4"] + ([f"{opts.task}_frames"] if opts.extras.frames else [])


def video_done(opts: PredictOptions, folder) -> bool:
    """A video's outputs are complete when its folder's manifest proves exactly this run's
    entries for the task written (the folder appears whole, by one rename)."""
    from ..io.manifest import owned

    mine = {n for n, who in owned(folder).items() if who == f"e2p predict {opts.task}"}
    return mine == set(video_names(opts))


def check_video_options(opts: PredictOptions) -> str | None:
    """The reason the options do not apply to video inputs, or ``None``."""
    extras = opts.extras
    unused = [flag for flag, used in (("--export", extras.export), ("--metric-depth", extras.metric_depth),
                                      ("--uncertainty", extras.uncertainty)) if used]
    if unused:
        return (f"{' / '.join(unused)} apply to images, not to video inputs; predict the videos in a separate "
                "run without them")
    return None


def run_video(opts: PredictOptions, pipe, path, output_dir, name: str, owner: str) -> int:
    """Predict a video into the folder ``output_dir / name``: ``<task>.mp4`` and (unless
    ``--no-frames``) ``<task>_frames/``, written aside and moved into place together (a failed
    or killed run leaves the folder as it was; a re-run leaves no frame of a longer clip);
    returns the number of frames."""
    from ..outputs.video import predict_video
    from ..outputs.visualize import prediction_set

    extras = opts.extras
    kwargs = call_kwargs(extras)
    kwargs.pop("output_uncertainty")
    with prediction_set(output_dir, name, video_names(opts), owner=owner) as staging:
        return predict_video(pipe, path, staging / f"{opts.task}.mp4",
                             frames_dir=staging / f"{opts.task}_frames" if extras.frames else None,
                             frame_noise=extras.frame_noise, smoothing=extras.temporal_smoothing,
                             batch_size=opts.batch_size, points=list(opts.points) if opts.points else None,
                             num_inference_steps=opts.steps, processing_resolution=opts.processing_resolution,
                             **kwargs)
