"""How predictions are stored in a prediction dataset, and the helper that reads them back.

Encodings (``--encoding``):

- ``png16`` (default): lossless PNG of the prediction quantized to 16 bits,
  ``q = round(v * 65535)`` for depth (affine-invariant, in the model's depth encoding) and
  alpha in [0, 1]; normals (unit vectors, x right, y up, z toward the viewer) as three
  16-bit greyscale PNGs x, y, z of ``round((n + 1) / 2 * 65535)``. Decoding is within
  ``0.5 / 65535`` of the float value (normals: ``1 / 65535``). The column is a ``datasets``
  ``Image`` (a list of three for normals), so viewers show it.
- ``float32``: the float32 values, flattened row-major (``H x W`` or ``H x W x 3``), with the
  row's ``height`` and ``width``: exact.

Uncertainty (ensembles) is one map in [0, 1] per image (normals: the angular spread / pi),
stored like a depth map in the same encoding.
"""

from __future__ import annotations

import io

import numpy as np

ENCODINGS = ("png16", "float32")
Q16 = 65535.0
#: zlib level of the PNGs: 1 encodes a 1024 x 768 depth map in about half the time of PIL's
#: default 6, for files about 3 % larger (measured on a smooth map)
PNG_LEVEL = 1


def _png16(plane: np.ndarray) -> dict:
    import PIL.Image

    q = np.round(np.clip(plane, 0.0, 1.0) * Q16).astype(np.uint16)
    buf = io.BytesIO()
    PIL.Image.fromarray(q).save(buf, format="PNG", compress_level=PNG_LEVEL)
    return {"bytes": buf.getvalue(), "path": None}


def _unpng16(value) -> np.ndarray:
    import PIL.Image

    if isinstance(value, dict):
        value = value["bytes"]
    img = PIL.Image.open(io.BytesIO(value)) if isinstance(value, (bytes, bytearray)) else value
    arr = np.asarray(img)
    if arr.dtype != np.uint16 or arr.ndim != 2:
        raise ValueError(f"expected a 16-bit greyscale PNG, got mode {img.mode} of shape {arr.shape}")
    return arr.astype(np.float32) / np.float32(Q16)


def features(task: str, encoding: str) -> dict:
    """``datasets`` features of the ``prediction`` and ``uncertainty`` columns."""
    from datasets import Image, List, Value

    if encoding == "float32":
        return {"prediction": List(Value("float32")), "uncertainty": List(Value("float32"))}
    if encoding != "png16":
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    return {"prediction": List(Image()) if task == "normal" else Image(), "uncertainty": Image()}


def encode_map(values: np.ndarray, task: str, encoding: str):
    """One prediction (``H x W`` or normals ``H x W x 3``) as a column value."""
    values = np.asarray(values, dtype=np.float32)
    if encoding == "float32":
        return values.ravel().tolist()
    if task == "normal" and values.ndim == 3:
        return [_png16((values[..., c] + 1.0) / 2.0) for c in range(3)]
    return _png16(values)


def decode_prediction(value, task: str, encoding: str, height: int | None = None, width: int | None = None) -> np.ndarray:
    """A ``prediction`` (or ``uncertainty``, with ``task`` any of depth / matting) value read
    back from the dataset -> float32 ``H x W`` (normals ``H x W x 3`` in [-1, 1]).

    ``value``: as ``datasets`` returns it (PIL image, ``{"bytes": ...}``, a list of three
    for normals, or a flat float list); ``height`` / ``width`` (the row's) are needed for
    ``float32``. ``None`` (a row with status ``error``) raises ``ValueError``.
    """
    if value is None:
        raise ValueError("this row has no prediction (its status is 'error'; see its 'error' column)")
    if encoding == "float32":
        if height is None or width is None:
            raise ValueError("the float32 encoding needs the row's height and width")
        flat = np.asarray(value, dtype=np.float32)
        channels = flat.size // (height * width) if height * width else 0
        if channels not in (1, 3) or flat.size != channels * height * width:
            raise ValueError(f"{flat.size} values do not fill a {height} x {width} map (1 or 3 channels)")
        return flat.reshape(height, width) if channels == 1 else flat.reshape(height, width, 3)
    if encoding != "png16":
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    if isinstance(value, (list, tuple)):
        if task != "normal" or len(value) != 3:
            raise ValueError(f"a list of {len(value)} images is a normal map (3 planes) only, not {task!r}")
        return np.stack([_unpng16(v) * 2.0 - 1.0 for v in value], axis=-1).astype(np.float32)
    return _unpng16(value)


def decode_row(row: dict, card_or_task, encoding: str | None = None) -> dict:
    """``{"prediction": array, "uncertainty": array or None}`` of one row; ``card_or_task``
    is the task name (then give ``encoding``) or the ``edit2perceive`` mapping of the
    dataset card / manifest (``{"task": ..., "encoding": ...}``)."""
    if isinstance(card_or_task, dict):
        task, encoding = card_or_task["task"], card_or_task["encoding"]
    else:
        task = card_or_task
    h, w = row.get("height"), row.get("width")
    unc = row.get("uncertainty")
    return {"prediction": decode_prediction(row["prediction"], task, encoding, h, w),
            "uncertainty": None if unc is None else decode_prediction(unc, "depth", encoding, h, w)}
