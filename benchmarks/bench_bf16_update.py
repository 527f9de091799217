"""Pure-bf16 training with and without a compensated update, against fp32 master weights.

    nice python -m benchmarks.bench_bf16_update [--steps 200] [--lr 3e-4]

The tiny depth model (tiny_run's data, VAE fit and schedule, constant learning rate) trained
four ways: fp32 master weights (the reference's numerics, under DeepSpeed ZeRO-2); bf16 weights and
gradients with round-to-nearest updates (plain bf16 AdamW); with stochastic rounding; with Kahan compensation. Reports the held-out
synthetic AbsRel / delta1 and the mean fraction of parameter updates that round-to-nearest
would lose ("vanished", measured by the wrapper at every step; fp32 has none). A second table
gives the vanished fraction of the first steps at several learning rates, the paper's 3e-5
included.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

from benchmarks.common import machine, markdown_table

MODES = {
    "fp32 master weights": {"master_weights": "fp32"},
    "bf16, round to nearest": {"master_weights": "bf16", "bf16_update": "nearest"},
    "bf16, stochastic rounding": {"master_weights": "bf16", "bf16_update": "stochastic_rounding"},
    "bf16, Kahan": {"master_weights": "bf16", "bf16_update": "kahan"},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--probe-lrs", type=float, nargs="+", default=[3e-5, 3e-4, 3e-3])
    parser.add_argument("--probe-steps", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    args = parser.parse_args(argv)

    from edit2perceive.data import synthetic_scenes
    from edit2perceive.demo.tiny_run import TinyRunConfig, fit_tiny_vae, run_tiny
    from edit2perceive.testing import tiny_kontext_components

    vae = tiny_kontext_components(seed=0)["vae"]
    fit_tiny_vae(vae, list(synthetic_scenes(256, (64, 64), seed=0)), steps=400, progress=False)

    def train(mode: str, lr: float, steps: int) -> dict:
        overrides = {**MODES[mode], "optim": "adamw_torch", "lr_scheduler_type": "constant", "logging_steps": 1}
        with tempfile.TemporaryDirectory() as tmp:
            config = TinyRunConfig(task="depth", train_steps=steps, learning_rate=lr, training_overrides=overrides)
            report = run_tiny(config, tmp, vae=vae, progress=False, keep_log=True)
        vanished = [h["vanished_fraction"] for h in report["log_history"] if "vanished_fraction" in h]
        return {"metrics": report["metrics"]["trained"], "vanished": float(np.mean(vanished)) if vanished else 0.0}

    probe_rows = []
    for lr in args.probe_lrs:
        r = train("bf16, round to nearest", lr, args.probe_steps)
        probe_rows.append({"learning rate": lr, f"vanished fraction (mean of {args.probe_steps} steps)": r["vanished"]})
        print(json.dumps(probe_rows[-1]), flush=True)
    rows = []
    for mode in args.modes:
        r = train(mode, args.lr, args.steps)
        rows.append({"weights / update": mode, "held-out AbsRel": r["metrics"]["abs_rel"],
                     "held-out delta1": r["metrics"]["delta1"], "vanished updates": r["vanished"]})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{machine()}; tiny depth model\n")
    print(markdown_table(probe_rows, list(probe_rows[0])))
    print(f"\n{args.steps} steps at lr {args.lr} (constant), AdamW:\n")
    print(markdown_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
