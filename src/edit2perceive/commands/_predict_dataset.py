"""``e2p predict --dataset NAME_OR_PATH``: a whole ``datasets`` dataset into a prediction
dataset (parquet shards, ``manifest.json``, dataset card ``README.md``) in --output-dir.

Run it as is (one process) or under ``accelerate launch`` (any number of processes and
machines, each doing its own shards); run the same command again to resume: only the
missing shards are done. See docs/inference-at-scale.md and
:mod:`edit2perceive.inference_at_scale`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from edit2perceive.inference_at_scale.encoding import ENCODINGS

from ._predict_options import ExtraOptions, PredictOptions


@dataclass(frozen=True)
class DatasetOptions:
    """The ``--dataset`` options of ``e2p predict`` (the others are :class:`PredictOptions`)."""

    dataset: str
    split: str | None = None
    config: str | None = None
    data_dir: str | None = None
    streaming: bool = False
    image_column: str | None = None
    id_columns: tuple[str, ...] | None = None
    keep_image: bool = False
    encoding: str = "png16"
    shard_size: int = 1000
    push_to_hub: str | None = None
    private: bool = False

    @classmethod
    def from_args(cls, args) -> DatasetOptions:
        return cls(dataset=args.dataset, split=args.split, config=args.dataset_config, data_dir=args.data_dir,
                   streaming=args.streaming, image_column=args.image_column,
                   id_columns=None if args.id_columns is None else tuple(args.id_columns), keep_image=args.keep_image,
                   encoding=args.encoding, shard_size=args.shard_size, push_to_hub=args.push_to_hub,
                   private=args.private)


#: ExtraOptions that only mean something for image files
FILE_ONLY = ("metric_depth", "export", "depth_model", "normal_model", "frames", "temporal_smoothing", "frame_noise")


def add_arguments(p) -> None:
    g = p.add_argument_group("whole datasets (instead of files; see docs/inference-at-scale.md)")
    g.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                   help="a datasets source: Hub id, local folder (images, parquet, save_to_disk), or a data file")
    g.add_argument("--split", default=None, help="split to predict (default: the only one)")
    g.add_argument("--config", dest="dataset_config", default=None, help="dataset configuration name")
    g.add_argument("--data-dir", default=None, help="data_dir for a packaged builder such as imagefolder")
    g.add_argument("--streaming", action="store_true", help="read the source as a stream (no full download)")
    g.add_argument("--image-column", default=None, help="column with the images (default: the first Image column)")
    g.add_argument("--id-columns", nargs="*", default=None, metavar="COLUMN",
                   help="input columns copied to the output (default: all but the images)")
    g.add_argument("--keep-image", action="store_true", help="also store the input image in each row")
    g.add_argument("--encoding", choices=ENCODINGS, default="png16",
                   help="prediction storage: png16 (lossless 16-bit PNG, default) or float32 arrays")
    g.add_argument("--shard-size", type=int, default=1000, help="rows per parquet shard (default 1000)")
    g.add_argument("--push-to-hub", default=None, metavar="REPO", help="upload the result as a dataset repository")
    g.add_argument("--private", action="store_true", help="--push-to-hub: create the repository private")


def check_arguments(opts: PredictOptions, data: DatasetOptions) -> str | None:
    """The reason a ``--dataset`` run would fail whatever the rows, or ``None``."""
    if opts.inputs:
        return "give either image files / folders or --dataset, not both"
    if data.shard_size < 1:
        return f"--shard-size must be >= 1, got {data.shard_size}"
    default = ExtraOptions()
    used = [k for k in FILE_ONLY if getattr(opts.extras, k) != getattr(default, k)]
    if used:
        flag = {"frames": "no_frames"}.get(used[0], used[0])
        return f"--{flag.replace('_', '-')} is for image files, not --dataset runs"
    return None


def _model_revision(model: str | None) -> str | None:
    """The Hub commit a model id resolved to (from the local cache), None for folders."""
    if model is None or os.path.isdir(model):
        return None
    try:
        from huggingface_hub import snapshot_download

        return os.path.basename(snapshot_download(model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not a cached Hub model
        return None


def settings_of(opts: PredictOptions, pipe) -> dict:
    """What makes the predictions what they are (recorded; a resumed run must match)."""
    extras, loading = opts.extras, opts.loading
    return {
        "task": opts.task,
        "model": {"id": opts.model or loading.reference_checkpoint, "revision": _model_revision(opts.model),
                  "reference_checkpoint": loading.reference_checkpoint is not None, "base_model": loading.base_model,
                  "resize_mode": getattr(pipe.config, "resize_mode", None)},
        "options": {"steps": opts.steps, "processing_resolution": opts.processing_resolution,
                    "points": [list(p) for p in opts.points] if opts.points else None,
                    "ensemble_size": extras.ensemble_size,
                    "ensemble_augmentations": list(extras.ensemble_augmentations) if extras.ensemble_size > 1 else None},
    }


def run(opts: PredictOptions, data: DatasetOptions, check_common) -> int:
    """The dataset branch of ``e2p predict``; ``check_common(opts)`` checks the options it
    shares with file runs."""
    from edit2perceive.inference_at_scale import end_processes, load_source, predict_dataset, process_state
    from edit2perceive.inference_at_scale.shards import DiskFullError

    from . import _predict_extras

    def say(line):
        print(f"e2p predict: {line}", file=sys.stderr)

    problem = check_arguments(opts, data) or check_common(opts) or _predict_extras.check_arguments(opts)
    if problem is not None:
        say(problem)
        return 2
    state = process_state()
    prefix = f"[{state.process_index}/{state.num_processes}] " if state.num_processes > 1 else ""
    try:
        with state.main_process_first():  # one process downloads / prepares, the others reuse its cache
            source = load_source(data.dataset, split=data.split, config=data.config, data_dir=data.data_dir,
                                 streaming=data.streaming, image_column=data.image_column,
                                 id_columns=None if data.id_columns is None else list(data.id_columns))
    except (ValueError, FileNotFoundError) as err:
        say(f"{prefix}cannot read --dataset: {err}")
        return end_processes(state, 2)
    from edit2perceive.pipelines.loading import load_pipeline

    device = opts.device or ("cpu" if state.device.type == "cpu" else str(state.device))
    try:
        pipe = load_pipeline(opts.model, task=opts.task, device=device, **opts.loading.load_kwargs())
    except (ValueError, OSError, RuntimeError) as err:
        say(f"{prefix}cannot use model: {err}")
        return end_processes(state, 2)
    call_kwargs = {"num_inference_steps": opts.steps, "processing_resolution": opts.processing_resolution,
                   **_predict_extras.call_kwargs(opts.extras)}
    call_kwargs.pop("output_uncertainty")
    try:
        result = predict_dataset(pipe, source, opts.output_dir, settings=settings_of(opts, pipe),
                                 encoding=data.encoding, keep_image=data.keep_image,
                                 uncertainty=opts.extras.uncertainty, shard_size=data.shard_size,
                                 batch_size=opts.batch_size, points=list(opts.points) if opts.points else None,
                                 call_kwargs=call_kwargs, state=state, log=say)
    except DiskFullError as err:
        say(f"{prefix}{err.strerror}")
        return 1  # the other processes are stopped by the launcher
    except ValueError as err:
        say(f"{prefix}{err}")
        return end_processes(state, 2)
    for index, why in result.errors[:20]:
        say(f"{prefix}row {index}: {why}")
    if result.num_errors > 20:
        say(f"{prefix}... {result.num_errors - 20} more error rows (the rows' error column says why)")
    code = 0
    if result.manifest is not None:
        m = result.manifest
        say(f"{m['num_rows']} rows in {m['num_shards']} shards in {opts.output_dir} ({m['num_errors']} with status "
            f"error); this run wrote {result.shards_written} shard(s) on process 0 of {state.num_processes}, "
            f"skipped {result.shards_skipped} already done")
        if data.push_to_hub:
            from edit2perceive.hub import upload_folder

            try:
                url = upload_folder(opts.output_dir, data.push_to_hub, private=data.private, repo_type="dataset",
                                    allow_patterns=["README.md", "manifest.json", "data/*.parquet"],
                                    commit_message="Upload Edit2Perceive predictions")
                say(f"uploaded to {url}")
            except Exception as err:  # noqa: BLE001 - the dataset on disk is complete; say why the upload failed
                say(f"upload to {data.push_to_hub} failed: {err}")
                code = 1
    return end_processes(state, code)
