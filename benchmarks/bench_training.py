"""Training step: time and peak memory per optimizer step for full fine-tuning vs LoRA,
gradient checkpointing on/off, AdamW vs 8-bit AdamW, pixel loss on/off.

    python -m benchmarks.bench_training [--resolution 128] [--batch 2] [--steps 4]

Each configuration runs in its own process (peak memory is its own: the RSS high-water
mark during training, gradients and optimizer state included, above the RSS before it). The DiT is the "small" config of
bench_inference so compute, not overhead, dominates. Ratios are what carry over to GPUs;
absolute CPU seconds do not.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.common import machine, markdown_table, peak_rss_mb, reset_peak_rss, run_isolated

CONFIGS = [
    ("full, AdamW, pixel loss", {}),
    ("full, AdamW, no pixel loss", {"pixel_loss": False}),
    ("full, AdamW, pixel loss, grad. checkpointing (DiT only)",
     {"gradient_checkpointing": True, "vae_gradient_checkpointing": False}),
    ("full, AdamW, pixel loss, grad. checkpointing (DiT + VAE decoder)", {"gradient_checkpointing": True}),
    ("full, 8-bit AdamW, pixel loss", {"optim": "adamw_bnb_8bit"}),
    ("LoRA r=16, AdamW, pixel loss", {"use_lora": True}),
    ("LoRA r=16, AdamW, pixel loss, grad. checkpointing", {"use_lora": True, "gradient_checkpointing": True}),
]


def child(cfg: dict) -> dict:
    import tempfile
    import time

    import numpy as np

    from benchmarks.bench_inference import components
    from edit2perceive.core.prompts import encode_prompt
    from edit2perceive.tasks import get_task
    from edit2perceive.training import Edit2PerceiveTrainer, Edit2PerceiveTrainingArguments

    res, batch, steps = cfg["resolution"], cfg["batch"], cfg["steps"]
    c = components("small")
    task = get_task("depth")
    cache = encode_prompt(task.prompt, **{k: c[k] for k in ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")})
    del c["text_encoder"], c["text_encoder_2"]
    rng = np.random.default_rng(0)
    data = [{"rgb": (rng.random((res, res, 3)) * 255).astype(np.uint8), "depth": rng.uniform(1, 5, (res, res)),
             "valid_mask": np.ones((res, res), bool), "meta": {"id": str(i)}} for i in range(batch * (steps + 2))]
    opts = {k: v for k, v in cfg.items() if k not in ("resolution", "batch", "steps")}
    with tempfile.TemporaryDirectory() as out:
        args = Edit2PerceiveTrainingArguments(
            output_dir=out, per_device_train_batch_size=batch, max_steps=steps + 1, learning_rate=1e-5, report_to=[],
            resolution=res, use_cpu=True, disable_tqdm=True, save_strategy="no", steps_per_epoch=1, lora_rank=16,
            lora_alpha=16, logging_steps=10_000, effective_batch_size=0, **opts,
        )
        trainer = Edit2PerceiveTrainer(c["transformer"], args, vae=c["vae"], prompt_cache=cache, train_dataset=data)
        times: list[float] = []

        class Timer:  # a minimal TrainerCallback: wall time per optimizer step
            def __getattr__(self, name):
                return lambda *a, **k: None

            def on_step_begin(self, *a, **k):
                self.start = time.perf_counter()

            def on_step_end(self, *a, **k):
                times.append(time.perf_counter() - self.start)  # the first step is warm-up (not reported)

        trainer.add_callback(Timer())
        import gc

        gc.collect()
        base = reset_peak_rss()
        trainer.train()
        trainable = sum(p.numel() for p in c["transformer"].parameters() if p.requires_grad)
    return {"seconds": float(np.median(times[1:])), "peak_mb": peak_rss_mb() - base, "trainable": trainable}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up step (median)")
    parser.add_argument("--only", default=None, help="run only configurations whose name contains this text")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    base = {"resolution": args.resolution, "batch": args.batch, "steps": args.steps}
    rows = []
    for name, cfg in [c for c in CONFIGS if args.only is None or args.only in c[0]]:
        r = run_isolated("benchmarks.bench_training", {**base, **cfg})
        rows.append({"configuration": name, "seconds / step": r["seconds"], "peak above pre-training RSS (MiB)": r["peak_mb"],
                     "trainable params": r["trainable"]})
    ref = rows[0]["seconds / step"]
    for row in rows:
        row["x first row"] = row["seconds / step"] / ref
    print(f"## Training step (small DiT, batch {args.batch}, {args.resolution} px) on {machine()}\n")
    print(markdown_table(rows, ["configuration", "seconds / step", "x first row", "peak above pre-training RSS (MiB)",
                                "trainable params"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
