"""What the depth target should hold at holes (pixels without a measurement): the tiny depth model
trained with each ``--depth_hole_fill``, scored on held-out synthetic scenes (AbsRel / delta1 on
valid pixels, sqrt-space alignment) and on the Middlebury motorcycle photograph.

    nice python -m benchmarks.bench_training_holes [--seeds 0 1] [--steps 200]

The synthetic scenes' invalid pixels are their sky, which has no depth there (0): holes. Every
run uses the same fitted tiny VAE, data, schedule and seed; only ``hole_fill`` differs:

- ``zero``: mid-range (0) in the encoded target (this project's previous behaviour);
- ``near``: -1, the value of depth -> 0 (the reference's; the default). Results: docs/training.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.bench_training_noise import train_depth_options
from benchmarks.common import machine, markdown_table

OPTIONS = ("zero", "near")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)

    raw = train_depth_options({name: {"depth_hole_fill": name} for name in args.options}, args.seeds, args.steps,
                              label="hole_fill")
    rows = []
    for entry in raw:
        name, per_seed = entry["hole_fill"], entry["runs"]
        rows.append({
            "hole_fill": name,
            **{f"synthetic AbsRel seed {r['seed']}": r["synthetic"]["abs_rel"] for r in per_seed},
            "synthetic AbsRel mean": float(np.mean([r["synthetic"]["abs_rel"] for r in per_seed])),
            "motorcycle AbsRel mean": float(np.mean([r["motorcycle"]["abs_rel"] for r in per_seed])),
        })
    print(f"\n{machine()}; tiny depth model, {args.steps} steps, seeds {args.seeds}\n")
    print(markdown_table(rows, list(rows[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
