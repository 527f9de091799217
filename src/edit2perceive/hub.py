"""Model cards and sharing on the Hugging Face Hub.

What we upload is what the model is: the fine-tuned transformer with its VAE (so a full
model loads alone; the VAE is 0.7 % of it), or for a LoRA only the adapter; the scheduler, the
prompt cache, the pipeline config (``model_index.json``, naming the base model) and the card.
The text encoders and tokenizers are never uploaded: the prompt cache replaces them. So

    from edit2perceive import Edit2PerceivePipeline
    pipe = Edit2PerceivePipeline.from_pretrained("you/e2p-depth")

is all a user writes; a LoRA model loads its base transformer and VAE from the base model its
config names (``base_model=`` overrides it).

``model-index`` results come from ``e2p evaluate`` summaries; each result's
``metric_config`` records the protocol that produced it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .core.base_model import DEFAULT_BASE_MODEL
from .io.atomic import atomic_folder

LICENSE = {"license": "other", "license_name": "flux-1-dev-non-commercial-license",
           "license_link": f"https://huggingface.co/{DEFAULT_BASE_MODEL}/blob/main/LICENSE.md"}
PIPELINE_TAGS = {"depth": "depth-estimation", "normal": "image-to-image", "matting": "image-segmentation"}
TASK_TAGS = {
    "depth": ["monocular-depth-estimation", "depth"],
    "normal": ["surface-normal-estimation", "normals"],
    "matting": ["image-matting", "interactive-matting"],
}
TRAINING_DATASETS = {
    "depth": ["Hypersim", "Virtual KITTI 2"],
    "normal": ["Hypersim", "InteriorVerse", "MPI Sintel"],
    "matting": ["AM-2k", "Distinctions-646", "Composition-1k", "COCO-Matting"],
}
#: metric key -> (model-index metric type, display name, scale for the card)
CARD_METRICS = {
    "depth": [("abs_rel", "AbsRel", 1.0), ("delta1", "delta1", 1.0)],
    "normal": [("mean", "mean angular error (deg)", 1.0), ("a11_25", "% < 11.25 deg", 1.0)],
    "matting": [("mse", "MSE", 1.0), ("mad", "MAD", 1.0), ("sad", "SAD/1000", 1.0), ("grad", "Grad/1000", 1.0),
                ("conn", "Conn/1000", 1.0)],
}
#: pipeline components never uploaded: the prompt cache replaces them
BASE_COMPONENTS = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")


@contextmanager
def export_staging(folder: Path):
    """Yield a staging folder that becomes ``folder`` (new or empty) on success
    (:func:`edit2perceive.io.atomic.atomic_folder`) and disappears on any error."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder}: not empty; choose a new folder for the export")
    with atomic_folder(folder) as staging:
        yield staging


def eval_results(summaries: list[dict]):
    """``huggingface_hub.EvalResult`` entries from ``e2p evaluate`` summary dicts."""
    from huggingface_hub import EvalResult

    results = []
    for s in summaries:
        protocol = ", ".join(f"{k}={v}" for k, v in sorted(s["protocol"].items()))
        for key, name, scale in CARD_METRICS[s["task"]]:
            value = s["metrics"].get(key)
            if value is None:
                continue
            results.append(EvalResult(
                task_type=PIPELINE_TAGS[s["task"]], task_name=f"{s['task']} (zero-shot)",
                dataset_type=s["dataset"], dataset_name=s.get("dataset_name", s["dataset"]), dataset_split="test",
                metric_type=key, metric_name=name, metric_value=float(value) * scale, metric_config=protocol,
            ))
    return results


def _usage(repo_id: str, task: str) -> str:
    points = ", points=[[(120, 80)]]" if task == "matting" else ""
    return f"""```python
from PIL import Image
from edit2perceive import Edit2PerceivePipeline

# a LoRA model loads its base transformer and VAE from the base model its config names;
# the prompt cache means no text encoders are needed
pipe = Edit2PerceivePipeline.from_pretrained("{repo_id}")
out = pipe(Image.open("photo.jpg"){points})  # one step, deterministic
out.prediction
```

Command line: `e2p predict --task {task} --model {repo_id} photo.jpg --output-dir out/`"""


def model_card(
    task: str,
    *,
    repo_id: str = "your-name/edit2perceive-model",
    summaries: list[dict] | None = None,
    training: dict | None = None,
    base_model: str = DEFAULT_BASE_MODEL,
    extra_limitations: list[str] | None = None,
    datasets: list[str] | None = None,
    description: str | None = None,
    extra_sections: str = "",
    extra_tags: list[str] | None = None,
    extra_metadata: dict | None = None,
):
    """A ``huggingface_hub.ModelCard`` for an Edit2Perceive model (``description`` replaces
    the default first paragraph; ``extra_sections`` is appended as Markdown)."""
    from huggingface_hub import ModelCard, ModelCardData

    if task not in PIPELINE_TAGS:
        raise ValueError(f"unknown task {task!r}")
    summaries = summaries or []
    results = eval_results(summaries)
    data = ModelCardData(
        base_model=base_model,
        library_name="diffusers",
        pipeline_tag=PIPELINE_TAGS[task],
        tags=["edit2perceive", "flux-kontext", "dense-prediction", *TASK_TAGS[task], *(extra_tags or [])],
        datasets=datasets or TRAINING_DATASETS[task],
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
        **LICENSE,
        **(extra_metadata or {}),
    )
    rows = [f"| {s.get('dataset_name', s['dataset'])} | "
            + " | ".join(f"{s['metrics'].get(k, float('nan')):.4g}" for k, _, _ in CARD_METRICS[task])
            + f" | {s['protocol'].get('name', '')} |" for s in summaries]
    header = "| dataset | " + " | ".join(n for _, n, _ in CARD_METRICS[task]) + " | protocol |"
    results_md = "\n".join([header, "|" + "---|" * (len(CARD_METRICS[task]) + 2), *rows]) if rows else "Not evaluated yet."
    training_md = "\n".join(f"- **{k}**: {v}" for k, v in (training or {}).items()) or "- not recorded"
    limitations = [
        "Depth is affine-invariant (in the sqrt encoding space for sqrt models): scale and shift are unknown; "
        "metric depth needs alignment or another source of scale.",
        "Normals are in the camera frame x right, y up, z toward the viewer.",
        "Zero-shot quality outside the training distribution (synthetic indoor/driving scenes for depth and "
        "normals, portrait/animal/object mattes for matting) is not guaranteed.",
        f"Use is subject to the base model's license ({LICENSE['license_name']}).",
        *(extra_limitations or []),
    ]
    description = description or (
        f"An [Edit2Perceive](https://arxiv.org/abs/2511.18673) **{task}** model: FLUX.1 Kontext fine-tuned to "
        f'"edit"\nan image into a dense {task} map in a single step, trained with the `edit2perceive` library.')
    body = f"""---
{data.to_yaml()}
---

# {repo_id.split('/')[-1]}

{description}

## Usage

{_usage(repo_id, task)}

## Results

{results_md}

Each result records the evaluation protocol that produced it (also in `model-index`).

## Training

{training_md}

## Limitations

{chr(10).join('- ' + item for item in limitations)}
{extra_sections}"""
    return ModelCard(body)


def export_for_hub(pipe, folder: str | os.PathLike, *, card=None, safe_serialization: bool = True,
                   variant: str | None = None) -> Path:
    """Write exactly what would be uploaded: the pipeline without its text encoders (recorded
    as ``null`` in ``model_index.json``; the prompt cache replaces them) and the card. A
    transformer carrying a peft LoRA is written as its adapter (``transformer_lora/``) without
    the VAE, like the trainer's LoRA models: both come from the recorded base model.
    Written to a temporary folder first and moved into place, so a failure leaves nothing behind.
    """
    if not safe_serialization:
        raise ValueError("safe_serialization=False would upload pickle weights; only safetensors are written")
    lora = bool(getattr(pipe.transformer, "peft_config", None))
    if lora and not pipe.config.get("base_model"):
        raise ValueError("this LoRA pipeline records no base model to load its transformer from: build it with "
                         "base_model= (from_reference_checkpoint, the trainer) or save it with save_pretrained")
    if pipe.prompt_cache is None:
        pipe.ensure_prompt_cache()
    left_out = BASE_COMPONENTS + (("transformer", "vae") if lora else ())
    parked = {name: getattr(pipe, name) for name in left_out}
    try:
        with export_staging(Path(folder)) as tmp:
            pipe.register_modules(**dict.fromkeys(left_out))
            pipe.save_pretrained(tmp, variant=variant)
            if lora:
                parked["transformer"].save_lora_adapter(str(tmp / "transformer_lora"))
            (card or model_card(pipe.task.name, base_model=hub_base_model(pipe.config))).save(tmp / "README.md")
    finally:
        pipe.register_modules(**parked)
    return Path(folder)


OUR_ENTRIES = ("transformer", "transformer_lora", "vae", "scheduler", "prompt_cache")


def hub_base_model(config) -> str:
    """The base model for a card's metadata: the recorded one if it is a Hub id, else the default."""
    base = dict(config).get("base_model")
    return base if base and not os.path.isabs(base) else DEFAULT_BASE_MODEL


def export_folder(source: str | os.PathLike, folder: str | os.PathLike, *, card=None,
                  base_model: str | None = None) -> Path:
    """File-level export of a saved pipeline or training checkpoint folder (no weights are
    loaded): copies ``transformer/`` or ``transformer_lora/``, ``vae/`` and ``scheduler/``
    when present, and ``prompt_cache/``; writes ``model_index.json`` with the text encoders
    set to ``null`` (and ``base_model`` replaced when given, e.g. a Hub id for a model trained
    from a local copy), and the card."""
    source, folder = Path(source), Path(folder)
    index_path = source / "model_index.json"
    if not index_path.is_file():
        raise ValueError(f"{source}: not a saved Edit2Perceive pipeline (no model_index.json)")
    index = json.loads(index_path.read_text())
    if index.get("_class_name") != "Edit2PerceivePipeline":
        raise ValueError(f"{source}: model_index.json is a {index.get('_class_name')!r}, not an Edit2PerceivePipeline")
    if not (source / "prompt_cache").is_dir():
        raise ValueError(f"{source}: no prompt_cache/ (save the pipeline once with its text encoders)")
    with export_staging(folder) as tmp:
        for name in OUR_ENTRIES:
            if (source / name).is_dir():
                shutil.copytree(source / name, tmp / name)
            elif name in index:
                index[name] = [None, None]
        for name in BASE_COMPONENTS:
            if name in index:
                index[name] = [None, None]
        if base_model is not None:
            index["base_model"], index["base_model_revision"] = base_model, None
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        task = index["task"]["name"] if isinstance(index.get("task"), dict) else index.get("task")
        (card or model_card(task, base_model=hub_base_model(index))).save(tmp / "README.md")
    return folder


def upload_folder(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None, token: str | None = None,
                  commit_message: str | None = None, repo_type: str = "model", **upload_kwargs) -> str:
    """Create ``repo_id`` (a ``repo_type`` repository) if needed and upload ``folder``
    (``upload_kwargs``: ``HfApi.upload_folder``'s, e.g. ``allow_patterns``, ``create_pr``,
    ``revision``, ``commit_description``)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
                             commit_message=commit_message or "Upload Edit2Perceive model", **upload_kwargs)
    return str(getattr(info, "commit_url", info))


def push_to_hub(pipe, repo_id: str, *, card=None, dry_run_dir: str | None = None, commit_message: str | None = None,
                private: bool | None = None, token: str | None = None, create_pr: bool = False,
                safe_serialization: bool = True, variant: str | None = None, **upload_kwargs) -> str:
    """Upload ``pipe`` to ``repo_id`` (see :func:`export_for_hub`), with diffusers'
    ``push_to_hub`` keywords; further keywords go to ``HfApi.upload_folder`` (``revision``,
    ``commit_description``, ...).

    ``dry_run_dir``: only write the folder that would be uploaded and return its path.
    """
    export = {"card": card, "safe_serialization": safe_serialization, "variant": variant}
    if dry_run_dir is not None:
        return str(export_for_hub(pipe, dry_run_dir, **export))
    with tempfile.TemporaryDirectory() as tmp:
        export_for_hub(pipe, Path(tmp) / "export", **export)
        return upload_folder(Path(tmp) / "export", repo_id, private=private, token=token, commit_message=commit_message,
                             create_pr=create_pr, **upload_kwargs)


def load_summaries(paths) -> list[dict]:
    """``summary.json`` files (or folders holding one) -> summary dicts of whole-benchmark
    evaluations. ``ValueError`` naming the file for one that is unreadable, or that covers
    only the first ``--max-samples`` images (a card would show it as the benchmark's result)."""
    out = []
    for p in paths:
        p = Path(p)
        p = p / "summary.json" if p.is_dir() else p
        try:
            s = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{p}: not an e2p evaluate summary.json ({type(err).__name__}: {err})") from None
        if not isinstance(s, dict) or not {"task", "metrics", "protocol"} <= set(s):
            raise ValueError(f"{p}: not an e2p evaluate summary.json (expected task, metrics and protocol)")
        if s.get("max_samples"):
            raise ValueError(f"{p}: an evaluation of the first {s['max_samples']} images only (--max-samples; "
                             f"{s.get('num_evaluated')} evaluated) is not the benchmark's result; evaluate the whole "
                             f"{s.get('dataset_name', s.get('dataset'))} set without --max-samples")
        out.append(s)
    return out
