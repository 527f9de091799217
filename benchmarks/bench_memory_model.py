"""The training-step memory model (edit2perceive.training.memory): the full-size table, and a check
of the model against real peak memory on the CPU.

    nice python -m benchmarks.bench_memory_model            # both
    nice python -m benchmarks.bench_memory_model --check    # only the CPU check

Table: FLUX.1 Kontext-dev's DiT (11.9B) and VAE, fake tensors (no memory, no GPU needed),
the default full-size mode: bf16 weights and gradients, 8-bit AdamW, stochastic rounding,
pixel loss on (VAE decode + its backward), one context image, 512 text tokens.

Check: a small DiT of the same architecture (2 double + 4 single blocks, 8 heads x 64) with the
full FLUX VAE, fp32, AdamW, at 256 x 256, batch 2: the model's estimate of what one step adds on
top of the resident weights (gradients + optimizer states + activation peak) against the rise
of the process's peak RSS during a real step (forward, backward, optimizer step), in a fresh
process with glibc's mmap threshold at 64 KiB so freed tensors return to the OS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import machine, markdown_table

SMALL_DIT = {"num_layers": 2, "num_single_layers": 4, "num_attention_heads": 8, "attention_head_dim": 64,
             "axes_dims_rope": (8, 28, 28)}
CHECK = {"batch_size": 2, "height": 256, "width": 256}


def check_child() -> dict:
    import torch

    from benchmarks.common import peak_rss_mb, reset_peak_rss
    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG
    from edit2perceive.training.memory import GIB, estimate_training_memory

    torch.manual_seed(0)
    config = {**FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, **SMALL_DIT}
    kwargs = dict(**CHECK, master_weights="fp32", optim="adamw_torch", gradient_checkpointing=False)
    estimate = estimate_training_memory(config, FLUX_VAE_CONFIG, **kwargs)
    before = reset_peak_rss()
    estimate_training_memory(config, FLUX_VAE_CONFIG, **kwargs, fake=False, optimizer_step=True)
    peak = peak_rss_mb()
    # the real run builds its own weights inside the measured window: subtract them
    measured = (peak - before) * 2**20 - estimate.weights - estimate.frozen
    predicted = estimate.gradients + estimate.optimizer_states + estimate.activations
    return {"predicted_gib": predicted / GIB, "measured_gib": measured / GIB, "estimate": estimate.as_gib()}


def table_rows(resolutions, batches) -> list[dict]:
    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG
    from edit2perceive.training.memory import estimate_training_memory

    rows = []
    for h, w in resolutions:
        for gc in (True, False):
            for b in batches:
                e = estimate_training_memory(FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG, batch_size=b,
                                             height=h, width=w, gradient_checkpointing=gc).as_gib()
                rows.append({"resolution": f"{h}x{w}", "grad. checkpointing": "yes" if gc else "no", "batch": b,
                             "weights+grads+optimizer (GiB)": e["weights"] + e["gradients"] + e["optimizer_states"],
                             "activations (GiB)": e["activations"], "total (GiB)": e["total"],
                             "fits 80 GB": "yes" if e["total"] <= 80e9 / 2**30 else "no",
                             "fits 141 GB": "yes" if e["total"] <= 141e9 / 2**30 else "no"})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only the CPU check")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(check_child()))
        return 0
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory_model", "--child"], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    check = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{machine()}\n\nCPU check ({CHECK}, small DiT {SMALL_DIT}, full FLUX VAE, fp32, AdamW, no checkpointing):")
    print(f"step memory above the resident weights: predicted {check['predicted_gib']:.3f} GiB, "
          f"measured {check['measured_gib']:.3f} GiB (ratio {check['predicted_gib'] / check['measured_gib']:.2f})\n")
    if not args.check:
        rows = table_rows([(512, 768), (768, 768)], args.batches)
        print(markdown_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
