"""Evaluation protocols: every choice that moves benchmark numbers, as one recorded object.

Two named protocols (see PROTOCOLS.md and docs/evaluation.md):

- ``"marigold"`` (default): the field's reference. Depth per dataset: valid GT range
  (strict), clipping range, NYUv2 Eigen crop, KITTI benchmark crop to 352 x 1216 then the
  Eigen crop on the cropped image, ETH3D alignment fitted on a copy with longest side
  1024, DIODE valid = its mask only. Normals: mask ``||n_gt|| > 0``, pooled aggregation
  (per-image is reported too). Matting: whole image, 10 oracle points (no Marigold matting
  protocol exists; this is the Edit2Perceive / SDMatte setting).
- ``"edit2perceive"``: the paper's own evaluator. Depth: KITTI Eigen crop on the full-size
  canvas (no benchmark crop), DIODE clipped at 80 m and GT >= 80 m excluded, images with
  fewer than 100 valid pixels skipped. Normals: mask ``||n_gt|| > 1e-3``, per-image
  aggregation, and the ground truth converted to the reference model's frame by negating x
  (``flip_gt_x``: the released Edit2Perceive checkpoints predict x pointing left).

Any field can be overridden (``make_protocol(..., aggregation="per_image")``); the summary
of every run stores the resolved protocol.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

PROTOCOL_NAMES = ("marigold", "edit2perceive")
#: the benchmarks of each task (keys: the task names of edit2perceive.tasks.TASKS)
DATASETS = {
    "depth": ("nyuv2", "kitti", "eth3d", "scannet", "diode"),
    "normal": ("nyuv2", "scannet", "ibims", "diode"),
    "matting": ("aim500", "p3m500np", "am2k"),
}
DISPLAY_NAMES = {
    "nyuv2": "NYUv2", "kitti": "KITTI", "eth3d": "ETH3D", "scannet": "ScanNet", "diode": "DIODE",
    "ibims": "iBims-1", "aim500": "AIM-500", "p3m500np": "P3M-500-NP", "am2k": "AM-2k",
}
ALIASES = {
    "nyu": "nyuv2", "nyu_v2": "nyuv2", "kitti_eigen": "kitti", "ibims1": "ibims", "ibims-1": "ibims",
    "aim-500": "aim500", "p3m": "p3m500np", "p3m-500-np": "p3m500np", "am-2k": "am2k",
}
#: Images in each distributed evaluation set (for the record; readers report what they find).
EXPECTED_COUNTS = {
    ("depth", "nyuv2"): 654, ("depth", "kitti"): 652, ("depth", "eth3d"): 454, ("depth", "scannet"): 800,
    ("depth", "diode"): 771, ("normal", "nyuv2"): 654, ("normal", "scannet"): 300, ("normal", "ibims"): 100,
    ("normal", "diode"): 771, ("matting", "aim500"): 500, ("matting", "p3m500np"): 500, ("matting", "am2k"): 200,
}
ALIGNMENT_CHOICES = ("auto", "least_squares", "least_squares_disparity", "least_squares_sqrt", "none")


@dataclass(frozen=True)
class Protocol:
    """Resolved evaluation settings for one (task, dataset). Depths in metres."""

    name: str
    task: str
    dataset: str
    # depth -------------------------------------------------------------------------
    valid_min: float | None = None  #: GT must be > valid_min (None: only > 0)
    valid_max: float | None = None  #: GT must be < valid_max (None: no upper bound)
    use_dataset_mask: bool = False  #: AND with the dataset's own mask file (DIODE)
    min_depth: float = 1e-3  #: aligned prediction clipped to [min_depth, max_depth]
    max_depth: float = 10.0
    eval_crop: str | None = None  #: "nyu_eigen" | "kitti_eigen" | None
    kb_crop: bool = False  #: KITTI benchmark crop (352 x 1216) of RGB and GT before anything else
    fit_max_side: int | None = None  #: fit the alignment on a copy with this longest side
    min_valid_pixels: int = 0  #: fewer valid pixels: image skipped (0: kept, NaN if empty)
    alignment: str = "auto"  #: "auto" = from the model's depth encoding (sqrt -> least_squares_sqrt)
    # normals -----------------------------------------------------------------------
    gt_min_norm: float = 0.0
    flip_gt_x: bool = False
    aggregation: str = "pooled"  #: "pooled" | "per_image" (both are always reported)
    # matting -----------------------------------------------------------------------
    region: str = "image"  #: "image" | "unknown" (trimap band)
    conn_mode: str = "matlab"
    num_points: int = 10
    point_threshold: float = 0.8
    point_seed: int = 42
    # common ------------------------------------------------------------------------
    resize: str = "bilinear"  #: prediction resized to the GT size when shapes differ
    nonfinite: str = "error"  #: "error" | "mask"
    processing_resolution: int | None = None  #: None = the model's default (768)

    def to_dict(self) -> dict:
        """Only the fields that apply to this task (JSON-safe: inf becomes "inf")."""
        keep = {
            "depth": ("valid_min", "valid_max", "use_dataset_mask", "min_depth", "max_depth", "eval_crop", "kb_crop",
                      "fit_max_side", "min_valid_pixels", "alignment"),
            "normal": ("gt_min_norm", "flip_gt_x", "aggregation"),
            "matting": ("region", "conn_mode", "num_points", "point_threshold", "point_seed"),
        }[self.task]
        out = {"name": self.name, "task": self.task, "dataset": self.dataset}
        for f in (*keep, "resize", "nonfinite", "processing_resolution"):
            v = getattr(self, f)
            out[f] = "inf" if isinstance(v, float) and math.isinf(v) else v
        return out


def canonical_dataset(task: str, dataset: str) -> str:
    if task not in DATASETS:
        raise ValueError(f"task must be one of {tuple(DATASETS)}, got {task!r}")
    key = ALIASES.get(dataset.lower(), dataset.lower())
    if key not in DATASETS[task]:
        raise ValueError(f"unknown {task} dataset {dataset!r}; choose one of {DATASETS[task]}")
    return key


def _depth_settings(dataset: str, name: str) -> dict:
    base = {
        "nyuv2": dict(valid_min=1e-3, valid_max=10.0, min_depth=1e-3, max_depth=10.0, eval_crop="nyu_eigen"),
        "kitti": dict(valid_min=1e-5, valid_max=80.0, min_depth=1e-5, max_depth=80.0, eval_crop="kitti_eigen",
                      kb_crop=True),
        "eth3d": dict(valid_min=1e-5, valid_max=math.inf, min_depth=1e-5, max_depth=math.inf, fit_max_side=1024),
        "scannet": dict(valid_min=1e-3, valid_max=10.0, min_depth=1e-3, max_depth=10.0),
        "diode": dict(valid_min=None, valid_max=None, use_dataset_mask=True, min_depth=0.6, max_depth=350.0),
    }[dataset]
    if name == "edit2perceive":
        base["min_valid_pixels"] = 100
        if dataset == "kitti":
            base["kb_crop"] = False
        if dataset == "diode":
            base.update(valid_max=80.0, max_depth=80.0)
    return base


def make_protocol(task: str, dataset: str, name: str = "marigold", **overrides) -> Protocol:
    """The protocol ``name`` for ``(task, dataset)``, with field overrides (None values ignored)."""
    dataset = canonical_dataset(task, dataset)
    if name not in PROTOCOL_NAMES:
        raise ValueError(f"protocol must be one of {PROTOCOL_NAMES}, got {name!r}")
    settings: dict = {}
    if task == "depth":
        settings = _depth_settings(dataset, name)
    elif task == "normal" and name == "edit2perceive":
        settings = dict(gt_min_norm=1e-3, flip_gt_x=True, aggregation="per_image")
    fields = {f.name for f in dataclasses.fields(Protocol)}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown protocol field {key!r}; fields are {sorted(fields)}")
        if value is not None:
            settings[key] = value
    proto = Protocol(name=name, task=task, dataset=dataset, **settings)
    _check(proto)
    return proto


def _check(p: Protocol) -> None:
    choices = {"alignment": ALIGNMENT_CHOICES, "aggregation": ("pooled", "per_image"), "region": ("image", "unknown"),
               "conn_mode": ("matlab", "python_port"), "resize": ("bilinear", "none"), "nonfinite": ("error", "mask")}
    for key, allowed in choices.items():
        if getattr(p, key) not in allowed:
            raise ValueError(f"protocol {key} must be one of {allowed}, got {getattr(p, key)!r}")
    if not p.min_depth < p.max_depth:
        raise ValueError(f"protocol needs min_depth < max_depth, got {p.min_depth}, {p.max_depth}")
    if p.num_points < 1:
        raise ValueError(f"protocol num_points must be >= 1, got {p.num_points}")


#: alignment that fits each depth encoding of the model (tasks/depth.py)
ALIGNMENT_FOR_ENCODING = {"sqrt": "least_squares_sqrt", "uniform": "least_squares", "disparity": "least_squares_disparity"}


def resolve_alignment(protocol: Protocol, depth_encoding: str | None) -> str | None:
    """Concrete alignment for the metric function (None = no alignment, metric prediction).

    ``"auto"``: from the model's depth encoding; ``least_squares`` (depth space) when the
    encoding is unknown (saved predictions). A ``log`` encoding has no matching option:
    choose an alignment explicitly.
    """
    if protocol.alignment == "none":
        return None
    if protocol.alignment != "auto":
        return protocol.alignment
    if depth_encoding is None:
        return "least_squares"
    if depth_encoding not in ALIGNMENT_FOR_ENCODING:
        raise ValueError(f"no automatic alignment for depth encoding {depth_encoding!r}: pass --alignment "
                         f"(one of {ALIGNMENT_CHOICES[1:]})")
    return ALIGNMENT_FOR_ENCODING[depth_encoding]
