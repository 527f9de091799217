"""Test-time ensembles: which members to run and how to undo their augmentation.

A *member* is one prediction of the same image under a test-time augmentation every task
allows:

- ``"flip"``: the image (and matting points) mirrored left-right; the prediction is mirrored
  back by the task (:meth:`edit2perceive.tasks.Task.unflip`; normals also negate x);
- ``"reseed"``: another initial noise draw; noise index ``k > 0`` draws from
  ``torch.Generator().manual_seed(noise_seed + k)`` (or from the call's generator);
- ``"resolution"``: another processing resolution, ``RESOLUTION_SCALES[k]`` times the base
  (:func:`member_resolution`).

Members are enumerated in a fixed order, variant ``k = 0, 1, 2, ...`` and for each variant the
plain then the flipped image; variant ``k`` uses noise index ``k`` (with ``"reseed"``) and scale
``RESOLUTION_SCALES[k]`` (with ``"resolution"``). Member 0 is always the plain prediction of a
call without ensembling. How members are combined (and the uncertainty) is the task's
:meth:`~edit2perceive.tasks.Task.ensemble`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

AUGMENTATIONS = ("flip", "reseed", "resolution")
#: older spellings still accepted (with a FutureWarning): "noise" named three things in 0.2
RENAMED_AUGMENTATIONS = {"noise": "reseed"}
#: not "reseed": the model is trained with one fixed noise, and other noise draws measurably
#: hurt it (benchmarks/bench_ensemble.py); ask for them explicitly
DEFAULT_AUGMENTATIONS = ("flip", "resolution")
RESOLUTION_SCALES = (1.0, 0.75, 1.25, 0.875, 1.125, 0.625, 1.375, 0.5)


@dataclass(frozen=True)
class EnsembleMember:
    """One test-time augmentation: mirrored or not, noise index (0 = the call's own noise),
    processing-resolution scale."""

    flip: bool = False
    noise_index: int = 0
    resolution_scale: float = 1.0


def check_augmentations(augmentations) -> tuple[str, ...]:
    """Validate a collection of augmentation names; returns them as a tuple."""
    if isinstance(augmentations, str):
        augmentations = (augmentations,)
    augmentations = tuple(augmentations)
    for old in set(augmentations) & set(RENAMED_AUGMENTATIONS):
        warnings.warn(f"ensemble augmentation {old!r} is now called {RENAMED_AUGMENTATIONS[old]!r}", FutureWarning,
                      stacklevel=3)
    augmentations = tuple(RENAMED_AUGMENTATIONS.get(a, a) for a in augmentations)
    unknown = [a for a in augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown ensemble augmentation(s) {unknown}; expected some of {AUGMENTATIONS}")
    if not augmentations:
        raise ValueError(f"an ensemble needs at least one augmentation of {AUGMENTATIONS}")
    return augmentations


def max_members(augmentations) -> int | None:
    """How many distinct members the augmentations allow (``None`` = unlimited)."""
    augmentations = check_augmentations(augmentations)
    flips = 2 if "flip" in augmentations else 1
    if "reseed" in augmentations:
        return None
    return flips * (len(RESOLUTION_SCALES) if "resolution" in augmentations else 1)


def plan_members(ensemble_size: int, augmentations=DEFAULT_AUGMENTATIONS) -> list[EnsembleMember]:
    """The first ``ensemble_size`` members in the order described in the module docstring."""
    augmentations = check_augmentations(augmentations)
    if int(ensemble_size) != ensemble_size or ensemble_size < 1:
        raise ValueError(f"ensemble_size must be a positive integer, got {ensemble_size!r}")
    limit = max_members(augmentations)
    if limit is not None and ensemble_size > limit:
        raise ValueError(f"augmentations {augmentations} give only {limit} distinct members, not "
                         f"ensemble_size={ensemble_size}; add 'reseed' for more")
    flips = (False, True) if "flip" in augmentations else (False,)
    members: list[EnsembleMember] = []
    k = 0
    while len(members) < ensemble_size:
        scale = RESOLUTION_SCALES[k] if "resolution" in augmentations else 1.0
        noise = k if "reseed" in augmentations else 0
        for flip in flips:
            if len(members) < ensemble_size:
                members.append(EnsembleMember(flip=flip, noise_index=noise, resolution_scale=scale))
        k += 1
    return members


def member_resolution(base_resolution: int, height: int, width: int, scale: float, *, step: int) -> int:
    """Processing resolution (longest side) of a member: the base (``0`` = native, i.e. the
    image's longest side) times ``scale``, on the pipeline's ``step``-px grid (its latent
    multiple), and at least one step away from the base's side (small images would otherwise
    round back to it); ``scale = 1`` keeps the base unchanged."""
    if scale == 1.0:
        return int(base_resolution)
    base = max(height, width) if base_resolution == 0 else base_resolution
    base_side = max(step, int(round(base / step)) * step)
    side = max(step, int(round(base * scale / step)) * step)
    if side == base_side:
        side = base_side + step if scale > 1 else max(step, base_side - step)
    return side


def flip_points(points: np.ndarray | None, width: int) -> np.ndarray | None:
    """``(x, y)`` pixel points of an image of ``width`` after a left-right mirror (x -> W-1-x)."""
    if points is None:
        return None
    out = np.array(points, dtype=np.float64, copy=True).reshape(-1, 2)
    out[:, 0] = (width - 1) - out[:, 0]
    return out
