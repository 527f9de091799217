"""The data doctor: checks a dataset before a long training run (``e2p data check``).

Reads a few samples (evenly spaced over the sorted records, so the same ones every time) and
checks what can be checked without a second ground truth:

- the layout was found (record count, samples per group, split-list rows without files);
- sizes: every target has the image's size (the readers enforce it) and the image is not tiny;
- depth: fraction of valid pixels, value range and units (a median above 200 or below 0.05 "m"
  means millimetres/centimetres or a wrong scale), inside the source's documented range;
- normals: unit length, and facing the camera (``n . ray < 0`` for the pixel's ray from
  ``meta["cam_from_pixel"]`` / ``meta["intrinsics"]``, else the optical axis);
- alpha: in [0, 1], not empty, not binary (a mask instead of a matte);
- alignment: target edges sit on image edges. The image's gradient magnitude at the target's
  strongest edges (relative to its mean) is measured in place and shifted by 2-16 px; a target
  shifted or resized against its image scores better at some offset than in place, a wrong or
  mirrored one scores about 1 (chance) in place (:func:`edge_agreement`).

:func:`check_reader` returns a :class:`CheckReport` (statistics of the reader included),
:func:`format_reports` the printed table, :func:`check_training_sources` runs the same checks
on a few examples of converted shard folders at the start of training.
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import dot3, pixel_rays, vector_norm

#: documented valid depth ranges (metres) of each source, for the range check
DEPTH_RANGES = {"hypersim": (1e-3, 65.5), "vkitti2": (0.1, 80.0), "interiorverse": (1e-3, 100.0),
                "sintel": (0.0, 1000.0), "synthetic": (0.0, 1000.0)}
ALIGN_SHIFTS = (2, 4, 8, 16)
ALIGN_MARGIN = 1.15  # an offset must score this much better than 0 to flag misalignment
MIN_EDGE_SCORE = 1.1  # image gradient at target edges / mean image gradient below this: no agreement
MIN_VALID_FRACTION = 0.05
MIN_SIDE = 256


@dataclass
class CheckReport:
    """Result of checking one source: counts, per-sample measurements, problems (file, message)."""

    source: str
    root: str
    records: int = 0
    groups: int = 0
    listed_missing: int = 0
    checked: int = 0
    samples: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def usable(self) -> bool:
        """At least one sample was read (problems are reported, not blocking)."""
        return self.error is None and bool(self.samples)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _grad(a: np.ndarray) -> np.ndarray:
    """Central-difference gradient magnitude (vector images: over all channels)."""
    gy, gx = np.zeros_like(a), np.zeros_like(a)
    gy[1:-1] = a[2:] - a[:-2]
    gx[:, 1:-1] = a[:, 2:] - a[:, :-2]
    sq = gx * gx + gy * gy
    return np.sqrt(sq if a.ndim == 2 else sq.sum(-1))


def edge_agreement(rgb: np.ndarray, target: np.ndarray, valid: np.ndarray) -> dict:
    """How well the target's edges sit on image edges, at offset 0 and shifted.

    Edge pixels: the top 5 % of the target's gradient magnitude (log depth for depth) between
    valid pixels (not across the valid-mask border), at least 10 % of the largest. Score at an offset = mean image gradient magnitude at the edge pixels
    moved by that offset / mean image gradient magnitude. Returns ``{"zero": score at 0,
    "best": best score at offsets of 2, 4, 8, 16 px, "offset": that offset}`` (NaN when the
    target has too few edges)."""
    g_img = _grad(_grey(rgb))
    t = np.where(valid[..., None] if target.ndim == 3 else valid, target, 0).astype(np.float32)
    if target.ndim == 2 and target.max() > 1.0:  # depth: edges in log depth
        t = np.log(np.maximum(t, 1e-3))
    g_t = _grad(t)
    both = valid.copy()  # gradients across the valid-mask border are not target edges
    both[1:-1] &= valid[2:] & valid[:-2]
    both[:, 1:-1] &= valid[:, 2:] & valid[:, :-2]
    g_t = np.where(both, g_t, 0.0)
    b = max(ALIGN_SHIFTS)
    inner = valid.copy()
    for axis in (0, 1):
        idx = [slice(None)] * 2
        idx[axis] = slice(0, b + 1)
        inner[tuple(idx)] = False
        idx[axis] = slice(-b - 1, None)
        inner[tuple(idx)] = False
    nan = {"zero": float("nan"), "best": float("nan"), "offset": (0, 0)}
    if inner.sum() < 64 or g_img.mean() == 0:
        return nan
    thresh = np.percentile(g_t[inner], 95)
    edges = inner & (g_t > max(thresh, 0.1 * float(g_t[inner].max()), 1e-6))
    if edges.sum() < 16:
        return nan
    ys, xs = np.nonzero(edges)
    mean = float(g_img.mean())
    zero = float(g_img[ys, xs].mean()) / mean
    best, best_off = float("-inf"), (0, 0)
    for s in ALIGN_SHIFTS:
        for dy, dx in ((s, 0), (-s, 0), (0, s), (0, -s)):
            score = float(g_img[ys + dy, xs + dx].mean()) / mean
            if score > best:
                best, best_off = score, (dy, dx)
    return {"zero": zero, "best": best, "offset": best_off}


def misaligned(agreement: dict) -> str | None:
    """The alignment problem an :func:`edge_agreement` result shows, or None."""
    zero, best = agreement["zero"], agreement["best"]
    if not (np.isfinite(zero) and np.isfinite(best)):
        return None
    if best > zero * ALIGN_MARGIN:
        dy, dx = agreement["offset"]
        return (f"target edges sit on image edges better shifted by (rows {dy:+d}, cols {dx:+d}) px than in place "
                f"(score {best:.2f} vs {zero:.2f}): misaligned or resized target?")
    if zero < MIN_EDGE_SCORE:
        return (f"target edges do not sit on image edges (score {zero:.2f}, 1 = chance): wrong target for this "
                "image, or flipped?")
    return None


def check_example(example: dict, source: str = "") -> tuple[dict, list[str]]:
    """Measurements of one example dict and the problems found (messages without the file name)."""
    rgb, valid = example["rgb"], example["valid_mask"]
    h, w = rgb.shape[:2]
    row = {"size": f"{h}x{w}", "valid": float(valid.mean())}
    problems = []
    if min(h, w) < MIN_SIDE:
        problems.append(f"image is {h}x{w}: smaller than {MIN_SIDE} px on a side (upscaled for training)")
    if rgb.std() < 1.0:
        problems.append("image is constant (all pixels the same colour)")
    geometric = "depth" in example or "normal" in example
    if geometric and row["valid"] < MIN_VALID_FRACTION:
        problems.append(f"only {100 * row['valid']:.1f} % of the pixels are valid")
    targets = {}
    if "depth" in example and valid.any():
        d = example["depth"][valid]
        row["depth"] = (float(d.min()), float(np.median(d)), float(d.max()))
        lo, hi = DEPTH_RANGES.get(source, (0.0, float("inf")))
        if row["depth"][1] > 200:
            problems.append(f"median depth {row['depth'][1]:.4g} m: millimetres or centimetres not converted to metres?")
        elif row["depth"][1] < 0.05:
            problems.append(f"median depth {row['depth'][1]:.4g} m: wrong scale?")
        if row["depth"][0] < lo or row["depth"][2] > hi:
            problems.append(f"depth {row['depth'][0]:.4g}..{row['depth'][2]:.4g} m outside {source}'s valid range {lo}..{hi} m")
        targets["depth"] = example["depth"]
    if "normal" in example and valid.any():
        n = example["normal"]
        length_err = float(np.abs(vector_norm(n[valid]) - 1.0).max())
        meta = example.get("meta", {})
        camera = meta.get("cam_from_pixel") or meta.get("intrinsics")
        rays = pixel_rays(h, w, camera) if camera is not None else np.broadcast_to(np.array([0.0, 0.0, -1.0]), (h, w, 3))
        back = float((dot3(n, rays)[valid] > 1e-6).mean())
        row["normal_len_err"], row["back_facing"] = length_err, back
        if length_err > 1e-3:
            problems.append(f"normals are not unit length (max | |n| - 1 | = {length_err:.3g})")
        if back > 0.01:
            problems.append(f"{100 * back:.1f} % of the normals face away from the camera (frame or sign convention?)")
        targets["normal"] = n
    if "alpha" in example:
        a = example["alpha"]
        row["alpha"] = (float(a.min()), float(a.max()))
        soft = float(((a > 0.01) & (a < 0.99)).mean())
        row["alpha_soft"] = soft
        if a.min() < 0 or a.max() > 1 or not np.isfinite(a).all():
            problems.append(f"alpha outside [0, 1] ({a.min():.3g}..{a.max():.3g})")
        elif a.max() < 0.01:
            problems.append("alpha is empty (no foreground)")
        elif soft == 0:
            problems.append("alpha is binary (a segmentation mask, not a matte?)")
        targets["alpha"] = a
    if example.get("meta", {}).get("camera_source") == "standard":
        problems.append("no per-scene camera for this scene: the standard camera was used (planar depth approximate)")
    for key, target in targets.items():  # row["align"]: the worst target's agreement
        agreement = edge_agreement(rgb, target, valid if geometric else np.ones_like(valid))
        problem = misaligned(agreement)
        if problem:
            problems.append(f"{key}: {problem}")
        if "align" not in row or problem:
            row["align"] = agreement
    row["ok"] = not problems
    return row, problems


def _sample_records(records: list, n: int) -> list:
    if n >= len(records):
        return list(records)
    idx = sorted(set(np.linspace(0, len(records) - 1, n).round().astype(int).tolist()))
    return [records[i] for i in idx]


def open_reader(name: str, root, **options):
    """The training reader ``name`` (a key of ``READERS``) on ``root``; options the reader does
    not take (and None values) are dropped."""
    from . import READERS

    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(READERS)}")
    cls = READERS[name]
    accepted = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            accepted |= set(inspect.signature(klass.__init__).parameters)
    return cls(root, **{k: v for k, v in options.items() if v is not None and k in accepted})


def check_reader(reader, samples: int = 8) -> CheckReport:
    """Check ``samples`` records of a reader (evenly spaced over its sorted records)."""
    report = CheckReport(source=reader.name, root=str(reader.root))
    try:
        records = reader.records()
    except (FileNotFoundError, ValueError) as err:
        report.error = str(err)
        return report
    report.records = len(records)
    report.groups = len({r["id"].split("/")[0] for r in records})
    report.listed_missing = len(reader.stats.listed_missing)
    for missing in reader.stats.listed_missing[:3]:
        report.problems.append((missing.split()[0], "listed in the split file but not found"))
    chosen = _sample_records(records, samples)
    report.checked = len(chosen)
    skipped_before = reader.bad.num_skipped
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skips are reported below, with their files
        examples = list(reader.iter_records(chosen))
    for file, reason in reader.bad.skipped[skipped_before:]:
        report.problems.append((file, f"unreadable, skipped: {reason}"))
    for ex in examples:
        row, problems = check_example(ex, reader.name)
        row["file"] = ex["meta"].get("file", ex["meta"].get("id"))
        report.samples.append(row)
        report.problems += [(row["file"], p) for p in problems]
    report.stats = reader.stats.summary()
    return report


def check_examples(source: str, examples, where: str = "") -> CheckReport:
    """Check already decoded examples (e.g. converted shards) of one source."""
    report = CheckReport(source=source, root=where)
    for ex in examples:
        report.records += 1
        report.checked += 1
        row, problems = check_example(ex, source)
        row["file"] = ex.get("meta", {}).get("id", f"{source}#{report.checked}")
        report.samples.append(row)
        report.problems += [(row["file"], p) for p in problems]
    if not report.samples:
        report.error = f"{where}: no examples"
    return report


def _range(rows, key, fmt="{:.3g}"):
    vals = [r[key] for r in rows if key in r]
    if not vals:
        return "-"
    if isinstance(vals[0], tuple) and len(vals[0]) == 3:
        return "/".join(fmt.format(v) for v in (min(v[0] for v in vals), float(np.median([v[1] for v in vals])),
                                                  max(v[2] for v in vals)))
    if isinstance(vals[0], tuple):
        return "..".join(fmt.format(v) for v in (min(v[0] for v in vals), max(v[1] for v in vals)))
    return fmt.format(max(vals))


def format_reports(reports: list[CheckReport], max_problems: int = 10) -> str:
    """The table ``e2p data check`` prints, then the first problems with their files."""
    header = ["source", "records", "groups", "checked", "read", "skipped", "valid px", "depth m min/med/max",
              "|n|-1 max", "back-facing", "alpha", "sizes", "aligned"]
    lines = []
    for r in reports:
        rows = r.samples
        sizes = Counter(s["size"] for s in rows)
        aligned = [s["align"] for s in rows if "align" in s and np.isfinite(s["align"]["zero"])]
        n_ok = sum(1 for a in aligned if misaligned(a) is None)
        skipped = r.stats.get("skipped", 0) if r.stats else 0
        lines.append([
            r.source, str(r.records), str(r.groups), str(r.checked), str(len(rows)), str(skipped),
            f"{100 * np.mean([s['valid'] for s in rows]):.1f}%" if rows else "-",
            _range(rows, "depth"), _range(rows, "normal_len_err", "{:.1e}"),
            (f"{100 * max(s['back_facing'] for s in rows if 'back_facing' in s):.1f}%"
             if any("back_facing" in s for s in rows) else "-"),
            _range(rows, "alpha", "{:.2f}"),
            ", ".join(f"{k}" + (f" ({v})" if len(sizes) > 1 else "") for k, v in sizes.most_common(3)) or "-",
            f"{n_ok}/{len(aligned)}" if aligned else "-",
        ])
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines]
    for r in reports:
        if r.error:
            out.append(f"\n{r.source}: NOTHING USABLE: {r.error}")
            continue
        if r.stats:
            s = r.stats
            line = (f"\n{r.source}: read {s['read']}, skipped {s['skipped']}, invalid pixels {s['invalid_pixels']} of "
                    f"{s['pixels']} ({s['nonfinite_pixels']} non-finite in the files)")
            if r.listed_missing:
                line += f", {r.listed_missing} split-list rows without files"
            out.append(line)
            for reason, count in sorted(s["skip_reasons"].items(), key=lambda kv: -kv[1])[:5]:
                out.append(f"  skipped {count} x {reason}")
        if r.problems:
            out.append(f"{r.source}: {len(r.problems)} problems" + (f" (first {max_problems})" if len(r.problems) > max_problems else "") + ":")
            out += [f"  {file}: {msg}" for file, msg in r.problems[:max_problems]]
        elif r.samples:
            out.append(f"{r.source}: no problems in {len(r.samples)} checked samples")
    return "\n".join(out) + "\n"


def check_training_sources(root, task: str, samples: int = 4, print_fn=print) -> list[CheckReport]:
    """The training recipe's start-up check: decode the first ``samples`` examples of each
    converted source folder ``root/<source>`` of the task's mixture, run :func:`check_example`,
    print the table; raise ``SystemExit`` naming the folders when no source is usable."""
    from itertools import islice

    from .streaming import MIXTURES, converted_dataset

    reports = []
    for name in MIXTURES[task]:
        folder = Path(root) / name
        if not folder.is_dir():
            continue
        try:
            examples = list(islice(iter(converted_dataset(folder)), samples))
        except Exception as err:  # a broken folder is reported, not a crash in the middle of the check
            report = CheckReport(source=name, root=str(folder), error=f"{folder}: cannot be read ({err})")
        else:
            report = check_examples(name, examples, str(folder))
        reports.append(report)
    if reports:
        print_fn(f"data check ({samples} examples per source):\n" + format_reports(reports))
    if not any(r.usable for r in reports):
        names = ", ".join(str(Path(root) / n) for n in MIXTURES[task])
        raise SystemExit(f"--data {root}: no usable {task} source (looked for {names}); run `e2p data check`")
    return reports
