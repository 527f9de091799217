"""``e2p push`` and ``e2p card``: share a trained model on the Hub with a model card.

Uploaded: ``transformer/`` with ``vae/`` (a full model loads alone) or ``transformer_lora/``
(a LoRA loads the rest from the base model its config names), ``scheduler/``, ``prompt_cache/``,
``model_index.json`` (text encoders set to null: the prompt cache replaces them) and
``README.md`` (the card). ``--base-model`` replaces the recorded base, e.g. with the Hub id of
the local copy a model was trained from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _training_info(folder: Path) -> dict:
    """Training settings recorded next to a model (``training_args.json``, written by the
    trainer), if any. ``training_args.bin`` is never read: unpickling a file from a model
    folder could run arbitrary code."""
    path = folder / "training_args.json"
    if not path.is_file():
        return {}
    try:
        args = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(args, dict):
        raise ValueError(f"{path}: expected a JSON object of training settings")
    keys = ("task", "resolution", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
            "max_steps", "optim", "sigma_sampling", "multires_noise", "pixel_loss", "use_lora", "bf16", "seed")
    return {k: args[k] for k in keys if k in args}


def _card(model_dir: Path, *, repo_id: str, summary_paths, base_model: str | None = None):
    """The model card of ``model_dir`` (a ``huggingface_hub.ModelCard``) for ``repo_id``, with
    the metrics of the ``e2p evaluate`` summaries at ``summary_paths``; ``base_model`` replaces
    the recorded base in its metadata."""
    from edit2perceive.core.base_model import DEFAULT_BASE_MODEL
    from edit2perceive.hub import hub_base_model, load_summaries, model_card

    index_path = model_dir / "model_index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        task = index["task"]["name"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{index_path}: not a model index with a task ({type(err).__name__}: {err})") from None
    summaries = load_summaries(summary_paths or [])
    wrong = [s["task"] for s in summaries if s["task"] != task]
    if wrong:
        raise ValueError(f"summaries for task {wrong[0]!r} cannot go on a {task!r} model card")
    converted = _reference_release(model_dir)
    if converted is not None:  # a converted release keeps the authors' credit and its conventions
        from edit2perceive.pipelines.reference_export import reference_card

        return reference_card(task, source=converted["source"].split("/")[-1], fmt=converted["format"],
                              config=index, base_model=converted.get("base_model") or DEFAULT_BASE_MODEL,
                              repo_id=repo_id, summaries=summaries)
    return model_card(task, repo_id=repo_id, summaries=summaries, training=_training_info(model_dir),
                      base_model=base_model or hub_base_model(index))


def _reference_release(model_dir: Path) -> dict | None:
    """The ``edit2perceive_reference`` card metadata of an ``e2p convert`` folder, if any."""
    readme = model_dir / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    data = ModelCard.load(readme).data.to_dict()
    info = data.get("edit2perceive_reference")
    return None if info is None else {**info, "base_model": data.get("base_model")}


def register(subparsers) -> None:
    p = subparsers.add_parser("push", help="upload a trained model (without text encoders: the prompt cache replaces them) with its model card",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="saved pipeline folder or training checkpoint")
    p.add_argument("--repo-id", required=True, help="Hub repository, e.g. you/e2p-depth")
    p.add_argument("--summary", nargs="*", help="e2p evaluate summary.json files (or their folders) for model-index")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--base-model", default=None, metavar="HUB_ID",
                   help="record this base model instead of the one in the config (e.g. the Hub id of a local copy)")
    p.add_argument("--dry-run", type=Path, default=None, metavar="DIR",
                   help="write the exact folder that would be uploaded to DIR, upload nothing")
    p.set_defaults(func=run_push)

    c = subparsers.add_parser("card", help="write the model card (README.md) for a trained model")
    c.add_argument("model_dir", type=Path)
    c.add_argument("--repo-id", default="your-name/edit2perceive-model")
    c.add_argument("--summary", nargs="*", help="e2p evaluate summary.json files (or their folders)")
    c.add_argument("--output", type=Path, default=None, help="where to write (default: MODEL_DIR/README.md)")
    c.set_defaults(func=run_card)


def run_push(args) -> int:
    from edit2perceive.hub import export_folder, upload_folder

    try:
        card = _card(args.model_dir, repo_id=args.repo_id, summary_paths=args.summary, base_model=args.base_model)
        if args.dry_run is not None:
            export_folder(args.model_dir, args.dry_run, card=card, base_model=args.base_model)
            print(f"e2p push: dry run, wrote the upload to {args.dry_run}", file=sys.stderr)
            return 0
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            folder = export_folder(args.model_dir, Path(tmp) / "export", card=card, base_model=args.base_model)
            print(upload_folder(folder, args.repo_id, private=args.private))
        return 0
    except (ValueError, FileExistsError, OSError) as err:
        print(f"e2p push: {err}", file=sys.stderr)
        return 2


def run_card(args) -> int:
    try:
        card = _card(args.model_dir, repo_id=args.repo_id, summary_paths=args.summary)
    except (ValueError, OSError) as err:
        print(f"e2p card: {err}", file=sys.stderr)
        return 2
    out = args.output or args.model_dir / "README.md"
    card.save(out)
    print(out)
    return 0
