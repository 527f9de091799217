"""Which training noise learns better for a single-step model: the tiny depth model trained with
each multi-resolution noise option, scored on held-out synthetic scenes and on the Middlebury
motorcycle photograph (real ground-truth disparity, shipped with scikit-image).

    nice python -m benchmarks.bench_training_noise [--seeds 0 1] [--steps 300]

Every run uses the same fitted tiny VAE, data, seed and schedule (tiny_run's defaults); only the
noise differs. Single-step inference always starts from the pure fixed-seed base noise at
sigma = 1, so options differ in whether training at sigma = 1 sees that same noise:

- ``sigma``: Marigold's annealing (strength 0.9 * sigma): strongest at sigma = 1 (mismatch);
- ``sigma_below_one``: Marigold's annealing below sigma = 1, none at sigma = 1;
- ``one_minus_sigma``: strength 0.9 * (1 - sigma): annealed to zero at sigma = 1;
- ``off``: base noise only.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

from benchmarks.common import machine, markdown_table

OPTIONS = {
    "sigma": {"multires_noise": True, "multires_anneal": "sigma"},
    "sigma_below_one": {"multires_noise": True, "multires_anneal": "sigma_below_one"},
    "one_minus_sigma": {"multires_noise": True, "multires_anneal": "one_minus_sigma"},
    "off": {"multires_noise": False},
}


def motorcycle_scores(model_dir: str, resolution: int = 128) -> dict:
    """AbsRel / delta1 of a saved tiny depth pipeline on the Middlebury motorcycle (sqrt-space alignment)."""
    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.demo.run import demo_photos
    from edit2perceive.training.callbacks import evaluate_predictions

    photo = next(p for p in demo_photos() if p["name"] == "motorcycle")
    pipe = Edit2PerceivePipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    pred = pipe(photo["rgb"], processing_resolution=resolution).prediction[0]
    return evaluate_predictions("depth", [pred], [photo], depth_encoding=getattr(pipe.task, "encoding", "sqrt"))


def train_depth_options(overrides: dict[str, dict], seeds, steps: int, *, label: str) -> list[dict]:
    """Train the tiny depth model once per (option, seed) with the option's training overrides
    (same fitted tiny VAE, data and schedule for all) and score it on the held-out synthetic
    scenes and the motorcycle; each run is printed as a JSON line as it ends. Returns
    ``[{label: name, "runs": [{"seed", "synthetic", "motorcycle"}, ...]}, ...]``."""
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.demo.tiny_run import TinyRunConfig, fit_tiny_vae, run_tiny
    from edit2perceive.testing import tiny_kontext_components

    vae = tiny_kontext_components(seed=0)["vae"]
    fit_tiny_vae(vae, list(synthetic_scenes(256, (64, 64), seed=0)), steps=400, progress=False)
    raw = []
    for name, training_overrides in overrides.items():
        per_seed = []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                config = TinyRunConfig(task="depth", seed=seed, train_steps=steps, training_overrides=training_overrides)
                report = run_tiny(config, tmp, vae=vae, progress=False)
                photo = motorcycle_scores(tmp)
            per_seed.append({"seed": seed, "synthetic": report["metrics"]["trained"], "motorcycle": photo})
            print(json.dumps({label: name, **per_seed[-1]}), flush=True)
        raw.append({label: name, "runs": per_seed})
    return raw


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS))
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)

    raw = train_depth_options({name: OPTIONS[name] for name in args.options}, args.seeds, args.steps, label="option")
    rows = []
    for entry in raw:
        name, per_seed = entry["option"], entry["runs"]
        rows.append({
            "training noise": name,
            "synthetic AbsRel": float(np.mean([r["synthetic"]["abs_rel"] for r in per_seed])),
            "synthetic delta1": float(np.mean([r["synthetic"]["delta1"] for r in per_seed])),
            "motorcycle AbsRel": float(np.mean([r["motorcycle"]["abs_rel"] for r in per_seed])),
            "motorcycle delta1": float(np.mean([r["motorcycle"]["delta1"] for r in per_seed])),
        })
    print(f"\n{machine()}; tiny depth model, {args.steps} steps, mean over seeds {args.seeds}\n")
    print(markdown_table(rows, list(rows[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
