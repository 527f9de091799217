"""Batches for the trainer: example dicts -> tensors the loss needs.

Input: the data readers' example dict (``rgb`` uint8 ``H x W x 3``; the task's target key
``depth`` / ``normal`` / ``alpha``; ``valid_mask`` bool ``H x W``; ``meta`` with an ``id``).
All examples of a batch must share one size (the transforms crop to a fixed size).

Output dict:
- ``pixel_values``: float ``B x 3 x H x W`` in [-1, 1] (the RGB context image);
- ``target``: the task-encoded ground truth, float ``B x 3 x H x W`` in [-1, 1];
- ``valid_mask``: bool ``B x H x W``;
- ``example_keys``: int64 ``B``, a stable hash of each example's id (per-example RNGs);
- the raw ground truth under the task's target key (``depth`` ``B x H x W`` metres,
  ``normal`` ``B x H x W x 3``, ``alpha`` ``B x H x W``): matting point sampling and the
  evaluation metrics.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from ..core.modeling import rgb_to_model_input
from ..tasks import Task


def example_key(example: dict) -> int:
    """Stable 32-bit key of an example: its ``meta['id']`` (or file), else its pixels."""
    meta = example.get("meta") or {}
    ident = meta.get("id") or meta.get("file") or meta.get("path")
    data = str(ident).encode() if ident is not None else np.ascontiguousarray(example["rgb"]).tobytes()
    return zlib.crc32(data)


class Edit2PerceiveCollator:
    """Encodes targets with the task and stacks a batch."""

    def __init__(self, task: Task):
        self.task = task

    def __call__(self, examples: list[dict]) -> dict:
        if not examples:
            raise ValueError("empty batch")
        shapes = {np.shape(ex["rgb"]) for ex in examples}
        if len(shapes) > 1:
            raise ValueError(f"examples in one batch must share a size, got {sorted(shapes)}")
        key = self.task.target_key
        rgbs, targets, masks, keys = [], [], [], []
        for ex in examples:
            if key not in ex:
                raise KeyError(f"example {ex.get('meta', {}).get('id', '?')} has no {key!r} for task {self.task.name!r}")
            encoded = self.task.encode_target(ex[key], ex.get("valid_mask"))
            rgbs.append(rgb_to_model_input(np.asarray(ex["rgb"]))[0])
            targets.append(encoded.image)
            masks.append(encoded.mask)
            keys.append(example_key(ex))
        batch = {
            "pixel_values": torch.stack(rgbs),
            "target": torch.stack(targets),
            "valid_mask": torch.stack(masks),
            "example_keys": torch.tensor(keys, dtype=torch.int64),
        }
        batch[key] = torch.stack([torch.as_tensor(np.asarray(ex[key], dtype=np.float32)) for ex in examples])
        return batch
