"""Depth metrics on a NYUv2-sized set: direct functions vs the evaluate modules.

Same inputs for every path: N synthetic 480 x 640 depth maps with an Eigen-crop valid mask
and noisy sqrt-encoded predictions. Paths:
1. direct: ``edit2perceive.metrics.depth_metrics`` per image + ``MeanAccumulator``;
2. evaluate module ``metrics/depth_metrics`` (reduces each image to scalars on ``add``);
3. evaluate module ``metrics/absrel`` (one metric);
4. a naive evaluate metric that stores the full maps and computes in ``_compute`` (how
   evaluate is usually used), timed on ``--naive-images`` images and extrapolated.
Prints a table and checks that paths 1-3 give the same numbers.

    python benchmarks/bench_metrics.py            # 654 images (NYUv2 test size)
    python benchmarks/bench_metrics.py --images 50
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_data(n: int, h: int = 480, w: int = 640, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 1.0 + 6.0 * (0.6 * xx / w + 0.4 * yy / h)
    mask = np.zeros((h, w), bool)
    mask[45:471, 41:601] = True
    for _ in range(n):
        gt = (base * rng.uniform(0.7, 1.3) + rng.uniform(0, 0.2, size=(h, w))).astype(np.float32)
        pred = (0.3 * np.sqrt(gt) + 0.05 + rng.normal(scale=0.01, size=(h, w))).astype(np.float32)
        yield pred, gt, mask


def naive_metric_class():
    """A conventional evaluate metric: stores every map, computes at the end."""
    import datasets
    import evaluate

    from edit2perceive.metrics import depth_metrics

    class NaiveAbsRel(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description="naive", citation="", inputs_description="",
                features=datasets.Features({
                    "predictions": datasets.Array2D(shape=(480, 640), dtype="float32"),
                    "references": datasets.Array2D(shape=(480, 640), dtype="float32"),
                }))

        def _compute(self, predictions, references):
            vals = []
            for p, g in zip(predictions, references):  # evaluate hands back nested lists
                g = np.asarray(g, dtype=np.float32)
                vals.append(depth_metrics(np.asarray(p, dtype=np.float32), g, g > 0,
                                          alignment="least_squares_sqrt")["abs_rel"])
            return {"abs_rel": float(np.mean(vals))}

    return NaiveAbsRel


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=654)
    parser.add_argument("--naive-images", type=int, default=20, help="images for the naive path (0 = skip)")
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="e2p_bench_hf_")
    os.environ.setdefault("HF_HOME", tmp)  # keep evaluate's module cache out of the user's
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(REPO)
    import evaluate

    from edit2perceive.metrics import DEPTH_METRIC_NAMES, MeanAccumulator, depth_metrics

    data = list(make_data(args.images))
    opts = dict(alignment="least_squares_sqrt", min_depth=1e-3, max_depth=10.0)
    rows = []

    t = time.perf_counter()
    acc = MeanAccumulator(DEPTH_METRIC_NAMES)
    for pred, gt, mask in data:
        acc.add(depth_metrics(pred, gt, mask, **opts))
    direct = acc.result()
    rows.append(("direct functions (depth_metrics + MeanAccumulator)", time.perf_counter() - t, args.images))

    for name in ("depth_metrics", "absrel"):
        module = evaluate.load(f"metrics/{name}")
        t = time.perf_counter()
        for pred, gt, mask in data:
            module.add(prediction=pred, reference=gt, valid_mask=mask, **opts)
        res = module.compute()
        rows.append((f"evaluate metrics/{name} (scalars per image)", time.perf_counter() - t, args.images))
        for k in (DEPTH_METRIC_NAMES if name == "depth_metrics" else ("abs_rel",)):
            if not np.isclose(res[k], direct[k], rtol=1e-9):
                print(f"MISMATCH {name}.{k}: {res[k]} vs direct {direct[k]}", file=sys.stderr)
                return 1

    if args.naive_images:
        naive = naive_metric_class()()
        sub = data[: args.naive_images]
        t = time.perf_counter()
        for pred, gt, _ in sub:
            naive.add_batch(predictions=[pred], references=[gt])
        naive.compute()
        elapsed = time.perf_counter() - t
        rows.append((f"naive evaluate metric storing full maps ({len(sub)} images, x{args.images / len(sub):.1f})",
                     elapsed * args.images / len(sub), args.images))

    base = rows[0][1]
    print(f"\nDepth metrics, {args.images} images of 480 x 640 (NYUv2 test size), same inputs, "
          f"alignment least_squares_sqrt\n")
    print("| path | total s | ms / image | vs direct |")
    print("|---|---|---|---|")
    for name, sec, n in rows:
        print(f"| {name} | {sec:.2f} | {1000 * sec / n:.1f} | {sec / base:.2f}x |")
    print(f"\nAbsRel {100 * direct['abs_rel']:.3f} %, delta1 {100 * direct['delta1']:.2f} % (identical on paths 1-3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
