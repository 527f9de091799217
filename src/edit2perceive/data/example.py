"""The example dict every reader yields, its validation, and the bad-data policy.

Example dict (a source provides only the target keys it has):

- ``rgb``: uint8 ``H x W x 3``;
- ``depth``: float32 ``H x W``, planar depth (z along the optical axis) in metres, 0 where invalid;
- ``normal``: float32 ``H x W x 3`` unit vectors in the camera frame **x right, y up, z toward
  the viewer** (a surface seen head-on is ``(0, 0, 1)``), oriented toward the camera;
  invalid pixels hold ``(0, 0, 1)`` and are off in ``valid_mask``;
- ``alpha``: float32 ``H x W`` in [0, 1] (foreground matte);
- ``valid_mask``: bool ``H x W`` (where the geometric target is defined; all True for matting);
- ``meta``: dict with ``source``, ``id`` (stable, unique within the source), ``file`` and, when
  known, ``intrinsics`` = ``(fx, fy, cx, cy)`` in pixels with pixel ``(row i, col j)`` centred at
  ``(u, v) = (j, i)`` (OpenCV convention).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

TARGET_KEYS = ("depth", "normal", "alpha")
CAMERA_FACING = np.array([0.0, 0.0, 1.0], np.float32)


class BadSampleError(ValueError):
    """A sample that cannot be used: missing/corrupt file, non-finite values, wrong shapes."""


def _where(meta: dict) -> str:
    return str(meta.get("file") or meta.get("id") or meta.get("source") or "<example>")


def make_example(rgb, *, meta: dict, depth=None, normal=None, alpha=None, valid_mask=None) -> dict:
    """Build and validate an example dict; raise :class:`BadSampleError` naming the file otherwise.

    ``valid_mask`` defaults to all True. Depth is zeroed and normals set to ``(0, 0, 1)`` where
    invalid, so consumers never see garbage in masked pixels.
    """
    where = _where(meta)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadSampleError(f"{where}: rgb must be uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    hw = rgb.shape[:2]
    valid = np.ones(hw, bool) if valid_mask is None else np.asarray(valid_mask, bool)
    if valid.shape != hw:
        raise BadSampleError(f"{where}: valid_mask shape {valid.shape} != rgb shape {hw}")
    ex = {"rgb": rgb}
    if depth is not None:
        depth = np.asarray(depth, np.float32)
        if depth.shape != hw:
            raise BadSampleError(f"{where}: depth shape {depth.shape} != rgb shape {hw}")
        bad = ~np.isfinite(depth) & valid
        if bad.any():
            raise BadSampleError(f"{where}: {int(bad.sum())} non-finite depth values inside the valid region")
        if (depth[valid] <= 0).any():
            raise BadSampleError(f"{where}: non-positive depth inside the valid region")
        ex["depth"] = np.where(valid, depth, 0.0).astype(np.float32)
    if normal is not None:
        normal = np.asarray(normal, np.float32)
        if normal.shape != (*hw, 3):
            raise BadSampleError(f"{where}: normal shape {normal.shape} != {(*hw, 3)}")
        finite = np.isfinite(normal[..., 0]) & np.isfinite(normal[..., 1]) & np.isfinite(normal[..., 2])
        bad = ~finite & valid
        if bad.any():
            raise BadSampleError(f"{where}: {int(bad.sum())} non-finite normals inside the valid region")
        n = normal[valid]
        if n.size and (np.abs(np.sqrt((n * n) @ np.ones(3, np.float32)) - 1.0) > 1e-3).any():
            raise BadSampleError(f"{where}: normals inside the valid region are not unit length")
        ex["normal"] = np.where(valid[..., None], normal, CAMERA_FACING).astype(np.float32)
    if alpha is not None:
        alpha = np.asarray(alpha, np.float32)
        if alpha.shape != hw:
            raise BadSampleError(f"{where}: alpha shape {alpha.shape} != rgb shape {hw}")
        if not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1:
            raise BadSampleError(f"{where}: alpha must be finite and in [0, 1]")
        ex["alpha"] = alpha
    if not any(k in ex for k in TARGET_KEYS):
        raise BadSampleError(f"{where}: example has no target ({', '.join(TARGET_KEYS)})")
    if ("depth" in ex or "normal" in ex) and not valid.any():
        raise BadSampleError(f"{where}: no valid pixels")
    ex["valid_mask"] = valid
    ex["meta"] = dict(meta)
    return ex


def reason_key(reason: str) -> str:
    """A skip reason with file paths and numbers blanked: ``"/a/b/x.npy: 3 NaN"`` -> ``"<file>: N NaN"``."""
    key = re.sub(r"\S*[/\\]\S+", "<file>", reason)
    key = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?(?![\w.])", "N", key)
    return key[:120]


@dataclass
class BadDataLog:
    """Skip-and-count policy for bad samples (or raise with ``strict=True``).

    Every skip emits a ``UserWarning`` naming the file and the reason; ``counts`` tallies the
    error types, ``reasons`` the reasons with numbers and paths blanked (so equal causes group),
    ``skipped`` keeps ``(file, reason)`` pairs.
    """

    strict: bool = False
    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)

    def handle(self, source: str, file: str, error: Exception) -> None:
        reason = str(error)
        prefix = f"{file}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
        if self.strict:
            raise BadSampleError(f"{source}: bad sample {file}: {reason}") from error
        self.counts[type(error).__name__] += 1
        self.reasons[reason_key(reason)] += 1
        self.skipped.append((str(file), reason))
        warnings.warn(f"{source}: skipping bad sample {file}: {reason}", stacklevel=3)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)
