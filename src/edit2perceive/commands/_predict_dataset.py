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

from edit2perceive.inference_at_scale.encoding import ENCODINGS

#: file-mode options that have no meaning for a dataset run, with their "off" values
FILE_ONLY = {"metric_depth": None, "export": [], "depth_model": None, "normal_model": None, "no_frames": False,
             "temporal_smoothing": 0.0}


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


def check_arguments(args) -> str | None:
    """The reason a ``--dataset`` run would fail whatever the rows, or ``None``."""
    if args.inputs:
        return "give either image files / folders or --dataset, not both"
    if args.shard_size < 1:
        return f"--shard-size must be >= 1, got {args.shard_size}"
    used = [k for k, off in FILE_ONLY.items() if getattr(args, k, off) != off]
    if used:
        return f"--{used[0].replace('_', '-')} is for image files, not --dataset runs"
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


def settings_of(args, pipe) -> dict:
    """What makes the predictions what they are (recorded; a resumed run must match)."""
    return {
        "task": args.task,
        "model": {"id": args.model or args.reference_checkpoint, "revision": _model_revision(args.model),
                  "reference_checkpoint": args.reference_checkpoint is not None, "base_model": args.base_model,
                  "resize_mode": pipe.config.resize_mode if hasattr(pipe.config, "resize_mode") else None},
        "options": {"steps": args.steps, "processing_resolution": args.processing_resolution,
                    "points": [list(p) for p in args.points] if args.points else None,
                    "ensemble_size": args.ensemble_size,
                    "ensemble_augmentations": list(args.ensemble_augmentations) if args.ensemble_size > 1 else None},
    }


def run(args, check_common) -> int:
    """The dataset branch of ``e2p predict``; ``check_common(args)`` checks the options it
    shares with file runs."""
    from edit2perceive.inference_at_scale import end_processes, load_source, predict_dataset, process_state
    from edit2perceive.inference_at_scale.shards import DiskFullError

    from . import _predict_extras
    from ._model_args import model_options

    def say(line):
        print(f"e2p predict: {line}", file=sys.stderr)

    problem = check_arguments(args) or check_common(args) or _predict_extras.check_arguments(args)
    if problem is not None:
        say(problem)
        return 2
    state = process_state()
    prefix = f"[{state.process_index}/{state.num_processes}] " if state.num_processes > 1 else ""
    try:
        with state.main_process_first():  # one process downloads / prepares, the others reuse its cache
            source = load_source(args.dataset, split=args.split, config=args.dataset_config, data_dir=args.data_dir,
                                 streaming=args.streaming, image_column=args.image_column, id_columns=args.id_columns)
    except (ValueError, FileNotFoundError) as err:
        say(f"{prefix}cannot read --dataset: {err}")
        return end_processes(state, 2)
    from edit2perceive.pipelines.loading import load_pipeline

    device = args.device or ("cpu" if state.device.type == "cpu" else str(state.device))
    try:
        pipe = load_pipeline(args.model, task=args.task, device=device, **model_options(args))
    except (ValueError, OSError, RuntimeError) as err:
        say(f"{prefix}cannot use model: {err}")
        return end_processes(state, 2)
    call_kwargs = {"num_inference_steps": args.steps, "processing_resolution": args.processing_resolution,
                   **_predict_extras.call_kwargs(args)}
    call_kwargs.pop("output_uncertainty")
    try:
        result = predict_dataset(pipe, source, args.output_dir, settings=settings_of(args, pipe),
                                 encoding=args.encoding, keep_image=args.keep_image, uncertainty=args.uncertainty,
                                 shard_size=args.shard_size, batch_size=args.batch_size,
                                 points=[tuple(p) for p in args.points] if args.points else None,
                                 call_kwargs=call_kwargs, state=state, log=say)
    except DiskFullError as err:
        say(f"{prefix}{err.strerror}")
        return 1  # the other processes are stopped by the launcher
    except ValueError as err:
        say(f"{prefix}{err}")
        return end_processes(state, 2)
    for index, why in result.errors[:20]:
        say(f"{prefix}row {index}: {why}")
    if len(result.errors) > 20:
        say(f"{prefix}... {len(result.errors) - 20} more error rows")
    code = 0
    if result.manifest is not None:
        m = result.manifest
        say(f"{m['num_rows']} rows in {m['num_shards']} shards in {args.output_dir} ({m['num_errors']} with status "
            f"error); this run wrote {result.shards_written} shard(s) on process 0 of {state.num_processes}, "
            f"skipped {result.shards_skipped} already done")
        if args.push_to_hub:
            from edit2perceive.hub import upload_folder

            try:
                url = upload_folder(args.output_dir, args.push_to_hub, private=args.private, repo_type="dataset",
                                    allow_patterns=["README.md", "manifest.json", "data/*.parquet"],
                                    commit_message="Upload Edit2Perceive predictions")
                say(f"uploaded to {url}")
            except Exception as err:  # noqa: BLE001 - the dataset on disk is complete; say why the upload failed
                say(f"upload to {args.push_to_hub} failed: {err}")
                code = 1
    return end_processes(state, code)
