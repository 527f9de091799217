"""The dataset card (``README.md`` with ``datasets`` YAML metadata) of a prediction dataset.

The YAML header holds the Hub's usual fields (``configs`` pointing at the parquet shards,
``dataset_info`` with the features and the split size, tags) and an ``edit2perceive``
mapping: model id and revision, task, every prediction option, the encoding and how to
decode it, the input, and the software versions.
"""

from __future__ import annotations

from pathlib import Path

from ..io.atomic import write_text_atomic
from .encoding import __doc__ as ENCODING_DOC
from .shards import DATA_DIR

TASK_TAGS = {"depth": "depth-estimation", "normal": "surface-normals-estimation", "matting": "image-matting"}
PACKAGES = ("edit2perceive", "torch", "diffusers", "transformers", "accelerate", "datasets", "huggingface_hub",
            "pyarrow", "Pillow", "numpy")


def software_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from edit2perceive import __version__

    out = {}
    for name in PACKAGES:
        try:
            out[name] = __version__ if name == "edit2perceive" else version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def decode_text(task: str, encoding: str) -> str:
    shape = "H x W x 3 unit normals (x right, y up, z toward the viewer)" if task == "normal" else "H x W"
    if encoding == "png16":
        how = ("three 16-bit greyscale PNGs (x, y, z), n = q / 65535 * 2 - 1" if task == "normal"
               else "16-bit greyscale PNG, v = q / 65535")
    else:
        how = "float32 values flattened row-major; reshape with the row's height and width"
    return f"{how}; gives {shape}"


def card_metadata(manifest: dict, features) -> dict:
    """The YAML mapping of the card."""
    from datasets import DatasetInfo

    settings, split = manifest["settings"], manifest["split"]
    task, encoding = settings["task"], settings["encoding"]
    info = DatasetInfo(features=features)._to_yaml_dict()
    info["splits"] = [{"name": split, "num_bytes": manifest["num_bytes"], "num_examples": manifest["num_rows"]}]
    return {
        "pretty_name": f"Edit2Perceive {task} predictions",
        "tags": ["edit2perceive", TASK_TAGS[task], "pseudo-labels"],
        "configs": [{"config_name": "default", "data_files": [{"split": split, "path": f"{DATA_DIR}/{split}-*.parquet"}]}],
        "dataset_info": info,
        "edit2perceive": {
            "task": task,
            "encoding": encoding,
            "decode": decode_text(task, encoding),
            "model": settings.get("model"),
            "options": settings.get("options"),
            "uncertainty": settings["uncertainty"],
            "keep_image": settings["keep_image"],
            "shard_size": settings["shard_size"],
            "input": settings["input"],
            "id_columns": settings["id_columns"],
            "num_rows": manifest["num_rows"],
            "num_errors": manifest["num_errors"],
            "software": software_versions(),
        },
    }


def card_text(manifest: dict, features) -> str:
    """The whole ``README.md``: YAML header and a short description."""
    from huggingface_hub import DatasetCard, DatasetCardData

    meta = card_metadata(manifest, features)
    e2p = meta["edit2perceive"]
    model = (e2p["model"] or {}).get("id", "a model")
    body = f"""
# {meta['pretty_name']}

{e2p['num_rows']} rows of {e2p['task']} predictions by `{model}` (Edit2Perceive) for
`{e2p['input']['dataset']}` (split `{e2p['input']['split']}`), {e2p['num_errors']} with status `error`.
Columns: `row_index` (the input row), {''.join(f'`{c}`, ' for c in e2p['id_columns'])}`image_path`,
{'`image`, ' if e2p['keep_image'] else ''}`height`, `width`, `prediction`{', `uncertainty`' if e2p['uncertainty'] else ''}, `status`, `error`.
Model, options and software versions: the `edit2perceive` block of this card's metadata.

## Reading the predictions

```python
from datasets import load_dataset
from edit2perceive.inference_at_scale import decode_row

ds = load_dataset("parquet", data_files="{DATA_DIR}/{e2p['input']['split']}-*.parquet", split="train")
maps = decode_row(ds[0], "{e2p['task']}", "{e2p['encoding']}")   # {{"prediction": array, "uncertainty": ...}}
```

Encoding `{e2p['encoding']}`: {e2p['decode']}.

{ENCODING_DOC.split('Encodings (``--encoding``):', 1)[1].replace('``', '`')}"""
    return str(DatasetCard(f"---\n{DatasetCardData(**meta).to_yaml()}\n---\n{body}"))


def write_card(output_dir, manifest: dict, features) -> Path:
    return write_text_atomic(Path(output_dir) / "README.md", card_text(manifest, features))
