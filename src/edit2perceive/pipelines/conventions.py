"""The pipeline's convention switches as one frozen dataclass, with the reference set.

Our own models use ``Conventions()``; the authors' released models need
``Conventions.reference()`` (set by ``from_reference_checkpoint`` / ``e2p convert``). The
pipeline config stores them under one key, ``conventions``; configs saved before that (loose
keys ``noise``, ``resize_mode``, ...) still load (:meth:`Conventions.from_config`). What each
value does and why ours differ: docs/conventions.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core import flow

NOISE_MODES = ("fixed", "reference")
POINT_MAP_MODES = ("gaussian", "reference", "click")
RESIZE_MODES = ("keep_aspect", "stretch")
RESIZE_FILTERS = ("antialias", "pil")
TIMESTEP_EMBEDDINGS = ("diffusers", "reference")
DECODE_CLIPS = ("after_mean", "before_mean")
BENCHMARK_POINTS = ("ours", "reference")
#: the loose config keys of pipelines saved before the dataclass (all are fields)
LEGACY_KEYS = ("point_map_position_index", "noise", "single_step_final_sigma", "point_map", "point_map_sigma",
               "resize_mode", "timestep_embedding", "sigma_schedule")
#: the reference set as those loose keys held it (a folder saved with exactly these loads as the reference set)
_LEGACY_REFERENCE = {"point_map_position_index": 1, "noise": "reference", "point_map": "reference",
                     "point_map_sigma": 20.0, "resize_mode": "stretch", "timestep_embedding": "reference"}


@dataclass(frozen=True)
class Conventions:
    """How the pipeline turns inputs into model inputs and model outputs into predictions.

    Args:
        point_map_position_index: position index of the matting point map (ours 2; reference 1,
            shared with the RGB context).
        noise: ``"fixed"`` (``flow.base_noise``, drawn on the CPU, the same for every sample) or
            ``"reference"`` (``torch.randn`` of the whole batch from
            ``torch.Generator(execution device).manual_seed(noise_seed)``, float32, then cast).
        single_step_final_sigma: where the single step ends (ours 0: ``z = eps - v``; reference
            ``shift(sigma_min)`` = 0.00893: ``z = eps - 0.9911 v``).
        sigma_schedule: N-step grid, ``"linear"`` or ``"shifted"`` (the reference's, see
            :func:`edit2perceive.core.flow.inference_sigmas`). One step is ``[1, final sigma]``.
        point_map: how ``points`` become the matting point map: ``"gaussian"`` (analytic
            Gaussians at the points, sigma a fraction of the side), ``"reference"``
            (``gaussian_filter``'ed unit deltas at the points' whole pixels) or ``"click"`` (the
            released models' interactive prompt: each point a disk of radius 100 px at 768,
            10 points sampled from the disks with seed 42, drawn as ``"reference"`` with sigma
            30 px at 768; :func:`edit2perceive.tasks.matting.click_point_map`).
        point_map_sigma: Gaussian sigma in px on the canvas the map is drawn on; None = the
            mode's own (gaussian: 20 / 512 of the longest side; reference: 20 px; click:
            30 px per 768 px).
        resize_mode: ``"keep_aspect"`` (longest side = processing resolution) or ``"stretch"``
            (a square processing resolution x processing resolution).
        resize_filter: ``"antialias"`` (torch's antialiased bilinear on the float image) or
            ``"pil"`` (PIL bilinear on the uint8 image, the reference's).
        timestep_embedding: ``"diffusers"`` (float32 sinusoid) or ``"reference"`` (DiffSynth's,
            with bf16-rounded frequencies).
        decode_clip: ``"after_mean"`` (average the decoded channels, then clip) or
            ``"before_mean"`` (clip each channel to [-1, 1], then average: the reference's).
            Depth and alpha only; normals are normalised either way.
        benchmark_points: matting benchmark prompt of ``e2p evaluate``: ``"ours"``
            (:func:`edit2perceive.evaluation.points.oracle_points`, drawn at the processing
            size) or ``"reference"`` (``gen_points`` of the authors' evaluation script: a point
            map drawn on the original image, then stretched bilinearly).
    """

    point_map_position_index: int = 2
    noise: str = "fixed"
    single_step_final_sigma: float = 0.0
    sigma_schedule: str = "linear"
    point_map: str = "gaussian"
    point_map_sigma: float | None = None
    resize_mode: str = "keep_aspect"
    resize_filter: str = "antialias"
    timestep_embedding: str = "diffusers"
    decode_clip: str = "after_mean"
    benchmark_points: str = "ours"

    def __post_init__(self):
        for name, allowed in (("noise", NOISE_MODES), ("point_map", POINT_MAP_MODES), ("resize_mode", RESIZE_MODES),
                              ("resize_filter", RESIZE_FILTERS), ("timestep_embedding", TIMESTEP_EMBEDDINGS),
                              ("sigma_schedule", flow.SIGMA_SCHEDULES), ("decode_clip", DECODE_CLIPS),
                              ("benchmark_points", BENCHMARK_POINTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0.0 <= self.single_step_final_sigma < 1.0:
            raise ValueError(f"single_step_final_sigma must be in [0, 1), got {self.single_step_final_sigma}")
        if self.point_map_position_index < 1:
            raise ValueError(
                f"point_map_position_index must be >= 1 (0 is the target), got {self.point_map_position_index}")
        if self.point_map_sigma is not None and self.point_map_sigma <= 0:
            raise ValueError(f"point_map_sigma must be > 0 px, got {self.point_map_sigma}")
        object.__setattr__(self, "point_map_position_index", int(self.point_map_position_index))
        object.__setattr__(self, "single_step_final_sigma", float(self.single_step_final_sigma))
        if self.point_map_sigma is not None:
            object.__setattr__(self, "point_map_sigma", float(self.point_map_sigma))

    @classmethod
    def reference(cls) -> Conventions:
        """The conventions the authors' released models were trained and evaluated with
        (the values, each with its source: :data:`edit2perceive.reference.REFERENCE_CONVENTIONS`)."""
        from ..reference import REFERENCE_CONVENTIONS

        return cls(**REFERENCE_CONVENTIONS["conventions"])

    def replace(self, **changes) -> Conventions:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_value(cls, value) -> Conventions:
        """A ``Conventions``, its dict (as saved in the config), ``"reference"`` or None (ours)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if value == "reference":
            return cls.reference()
        if isinstance(value, dict):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(f"unknown convention(s) {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}")
            return cls(**value)
        raise TypeError(f"conventions must be a Conventions, a dict or 'reference', got {type(value).__name__}")

    @classmethod
    def from_config(cls, conventions=None, **legacy) -> Conventions:
        """The conventions of a pipeline config: ``conventions`` (new) with loose ``legacy`` keys
        (configs saved before the dataclass, or keyword overrides) applied on top. A legacy config
        without ``conventions`` that holds exactly the old reference values loads as
        :meth:`reference` (the set those values stood for)."""
        given = dict(legacy)
        unknown = sorted(set(given) - set(LEGACY_KEYS))
        if unknown:
            raise ValueError(f"unknown convention key(s) {unknown}")
        if conventions is None and given and all(k in given and given[k] == v for k, v in _LEGACY_REFERENCE.items()):
            base = cls.reference()  # the old loose reference set (its linear N-step grid was an omission)
            keep = given.get("single_step_final_sigma", base.single_step_final_sigma) != base.single_step_final_sigma
            given = {"single_step_final_sigma": given["single_step_final_sigma"]} if keep else {}
        else:
            base = cls.from_value(conventions)
        return base.replace(**given) if given else base
