"""Example dict <-> flat rows for ``datasets`` (in-memory stream rows and Parquet shard rows).

Two row formats, one decoder (:func:`decode_example` accepts both):

- **stream rows** (``STREAM_FEATURES``): arrays as ``.npy`` bytes (lossless, no compression:
  fast for streaming straight from the raw files), ``meta`` as JSON;
- **shard rows** (``SHARD_FEATURES``, what ``dataset_scripts`` write to Parquet): ``rgb`` as an
  8-bit PNG Image; ``depth`` as a 16-bit PNG Image of ``round(depth / depth_scale)`` (0 = invalid)
  plus ``depth_scale`` in metres per unit; ``normal`` as float16 ``.npy`` bytes; ``alpha`` as a
  16-bit PNG (``alpha * 65535``); ``valid_mask`` as a 1-bit PNG; ``intrinsics`` ``[fx, fy, cx, cy]``
  or empty; ``source``, ``id`` and the remaining ``meta`` as JSON.
"""

from __future__ import annotations

import io
import json

import numpy as np
from datasets import Features, Image, Sequence, Value
from PIL import Image as PILImage

from .example import TARGET_KEYS

ARRAY_KEYS = ("rgb",) + TARGET_KEYS + ("valid_mask",)

STREAM_FEATURES = Features({**{k: Value("binary") for k in ARRAY_KEYS}, "meta": Value("string")})

SHARD_FEATURES = Features({
    "rgb": Image(),
    "depth": Image(),
    "depth_scale": Value("float32"),
    "normal": Value("binary"),
    "alpha": Image(),
    "valid_mask": Image(),
    "intrinsics": Sequence(Value("float32")),
    "source": Value("string"),
    "id": Value("string"),
    "meta": Value("string"),
})

#: default depth quantization step (metres per 16-bit unit) per source; 1 mm covers Hypersim's 65.5 m
DEPTH_SCALES = {"hypersim": 1e-3, "vkitti2": 1e-2, "interiorverse": 1e-3, "synthetic": 1e-3}


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _from_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _png(array, mode=None) -> dict:
    buf = io.BytesIO()
    PILImage.fromarray(array, mode=mode).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _meta_json(meta: dict) -> str:
    return json.dumps(meta, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _meta_from_json(text: str) -> dict:
    meta = json.loads(text) if text else {}
    if meta.get("intrinsics") is not None:
        meta["intrinsics"] = tuple(float(v) for v in meta["intrinsics"])
    return meta


def encode_stream_row(example: dict) -> dict:
    """Example dict -> stream row (lossless)."""
    row = {k: (_npy(example[k]) if k in example else None) for k in ARRAY_KEYS}
    row["meta"] = _meta_json(example.get("meta", {}))
    return row


def encode_shard_row(example: dict, depth_scale: float | None = None) -> dict:
    """Example dict -> Parquet shard row (PNG-compressed; depth quantized to ``depth_scale``)."""
    meta = dict(example.get("meta", {}))
    row = {"rgb": _png(example["rgb"]), "depth": None, "depth_scale": None, "normal": None, "alpha": None}
    valid = np.asarray(example["valid_mask"], bool)
    if "depth" in example:
        depth = np.asarray(example["depth"], np.float64)
        scale = depth_scale or DEPTH_SCALES.get(meta.get("source"), 1e-3)
        top = float(depth[valid].max()) if valid.any() else 0.0
        if top / scale > 65535:  # keep the full range: coarser step for this image
            scale = top / 65535.0
        units = np.where(valid, np.clip(np.round(depth / scale), 1, 65535), 0).astype(np.uint16)
        row["depth"], row["depth_scale"] = _png(units), float(scale)
    if "normal" in example:
        row["normal"] = _npy(np.asarray(example["normal"], np.float16))
    if "alpha" in example:
        row["alpha"] = _png(np.round(np.asarray(example["alpha"]) * 65535).astype(np.uint16))
    row["valid_mask"] = _png(valid.astype(np.uint8) * 255, mode="L")
    intr = meta.pop("intrinsics", None)
    row["intrinsics"] = [float(v) for v in intr] if intr is not None else []
    row["source"] = str(meta.get("source", ""))
    row["id"] = str(meta.get("id", ""))
    row["meta"] = _meta_json(meta)
    return row


def _image_array(value) -> np.ndarray:
    if isinstance(value, dict):  # undecoded Image feature
        value = PILImage.open(io.BytesIO(value["bytes"]))
    return np.asarray(value)


def decode_example(row: dict) -> dict:
    """Stream row or shard row -> the readers' example dict."""
    if isinstance(row.get("rgb"), (bytes, bytearray)):
        example = {k: _from_npy(row[k]) for k in ARRAY_KEYS if row.get(k) is not None}
        example["meta"] = _meta_from_json(row.get("meta"))
        return example
    meta = _meta_from_json(row.get("meta"))
    if row.get("intrinsics"):
        meta["intrinsics"] = tuple(float(v) for v in row["intrinsics"])
    example = {"rgb": _image_array(row["rgb"]).astype(np.uint8)}
    if example["rgb"].ndim == 2 or example["rgb"].shape[-1] != 3:
        example["rgb"] = np.asarray(PILImage.fromarray(example["rgb"]).convert("RGB"))
    valid = _image_array(row["valid_mask"]) > 0
    if row.get("depth") is not None:
        units = _image_array(row["depth"]).astype(np.float64)
        example["depth"] = np.where(valid, units * float(row["depth_scale"]), 0.0).astype(np.float32)
    if row.get("normal") is not None:
        normal = _from_npy(row["normal"]).astype(np.float32)
        example["normal"] = normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
    if row.get("alpha") is not None:
        example["alpha"] = (_image_array(row["alpha"]).astype(np.float32) / 65535.0).clip(0, 1)
    example["valid_mask"] = valid
    example["meta"] = meta
    return example
