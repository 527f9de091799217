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
import tempfile

import numpy as np

from benchmarks.bench_training_noise import motorcycle_scores
from benchmarks.common import machine, markdown_table

OPTIONS = ("zero", "near")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)

    from edit2perceive.data import synthetic_scenes
    from edit2perceive.demo.tiny_run import TinyRunConfig, fit_tiny_vae, run_tiny
    from edit2perceive.testing import tiny_kontext_components

    vae = tiny_kontext_components(seed=0)["vae"]
    fit_tiny_vae(vae, list(synthetic_scenes(256, (64, 64), seed=0)), steps=400, progress=False)
    rows, raw = [], []
    for name in args.options:
        per_seed = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                config = TinyRunConfig(task="depth", seed=seed, train_steps=args.steps,
                                       training_overrides={"depth_hole_fill": name})
                report = run_tiny(config, tmp, vae=vae, progress=False)
                photo = motorcycle_scores(tmp)
            per_seed.append({"seed": seed, "synthetic": report["metrics"]["trained"], "motorcycle": photo})
            print(json.dumps({"hole_fill": name, **per_seed[-1]}), flush=True)
        raw.append({"hole_fill": name, "runs": per_seed})
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
