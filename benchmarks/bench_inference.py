"""Inference: our single step vs diffusers' FluxKontextPipeline (28 and 4 steps), prompt
cache on/off, batch-size scaling. Same components, same resolution, one run.

    python -m benchmarks.bench_inference [--config tiny|small] [--resolution 256]

Times: all configurations in one process, timed in alternating rounds (median), so
background load hits them alike. Memory: each configuration in its own process; the peak RSS
during one call above the RSS before it (Linux VmHWM after clear_refs), plus weight bytes. On a shared CPU read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.common import machine, markdown_table, peak_rss_mb, reset_peak_rss, run_isolated

PROMPT = "Transform to depth map while maintaining original composition"


def components(config: str):
    import torch

    from edit2perceive.testing import tiny_kontext_components

    c = tiny_kontext_components(seed=0)
    if config == "small":  # a wider DiT so the transformer, not overhead, dominates
        from diffusers import FluxTransformer2DModel

        from edit2perceive.testing import tiny_transformer_config

        cfg = tiny_transformer_config()
        cfg.update(num_layers=4, num_single_layers=8, num_attention_heads=8, attention_head_dim=32, axes_dims_rope=(8, 12, 12))
        torch.manual_seed(0)
        c["transformer"] = FluxTransformer2DModel(**cfg).eval()
    return c


def build_runner(cfg: dict, c: dict, image):
    """A zero-argument callable running one configuration on ``image``."""
    res = cfg["resolution"]
    if cfg["kind"] == "kontext":
        from diffusers import FluxKontextPipeline

        pipe = FluxKontextPipeline(**c)
        pipe.set_progress_bar_config(disable=True)
        return lambda: pipe(image=image, prompt=PROMPT, height=res, width=res, num_inference_steps=cfg["steps"],
                            guidance_scale=1.0, output_type="np", _auto_resize=False, max_area=res * res)
    from edit2perceive import Edit2PerceivePipeline

    if cfg["cache"]:
        cache = Edit2PerceivePipeline(**c, task="depth").ensure_prompt_cache()
        pipe = Edit2PerceivePipeline(transformer=c["transformer"], vae=c["vae"], prompt_cache=cache, task="depth")
    else:
        pipe = Edit2PerceivePipeline(**c, task="depth")
    pipe.set_progress_bar_config(disable=True)
    batch = [image] * cfg.get("batch", 1)

    def run():
        if not cfg["cache"]:
            pipe.register_modules(prompt_cache=None)  # encode the prompt on every call, as without a cache
        pipe(batch, num_inference_steps=cfg["steps"], processing_resolution=0, batch_size=len(batch))

    return run


def _image(res: int):
    import numpy as np
    from PIL import Image

    return Image.fromarray((np.random.default_rng(0).random((res, res, 3)) * 255).astype(np.uint8))


def child(cfg: dict) -> dict:
    """Peak memory of one configuration in a fresh process (text encoders dropped with a cache)."""
    import torch

    c = components(cfg["config"])
    run = build_runner(cfg, c, _image(cfg["resolution"]))
    if cfg["kind"] == "ours" and cfg["cache"]:
        del c["text_encoder"], c["text_encoder_2"]
    import gc

    gc.collect()
    n_text = sum(p.numel() for k in ("text_encoder", "text_encoder_2") if k in c for p in c[k].parameters())
    weights_mb = sum(p.numel() * p.element_size() for m in c.values() if hasattr(m, "parameters")
                     for p in m.parameters()) / 2**20
    before = reset_peak_rss()
    with torch.no_grad():
        run()
    return {"run_peak_mb": peak_rss_mb() - before, "weights_mb": weights_mb, "text_encoder_params": n_text}


def interleaved_times(cfgs: list[dict], rounds: int) -> list[float]:
    """Median seconds per configuration, timed in alternating rounds (fair on a busy machine)."""
    import statistics
    import time

    import torch

    c = components(cfgs[0]["config"])
    image = _image(cfgs[0]["resolution"])
    runners = [build_runner(cfg, c, image) for cfg in cfgs]
    times = [[] for _ in cfgs]
    with torch.no_grad():
        for run in runners:
            run()  # warm-up
        for _ in range(rounds):
            for i, run in enumerate(runners):
                start = time.perf_counter()
                run()
                times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", choices=["tiny", "small"])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median reported)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    base = {"config": args.config, "resolution": args.resolution}
    runs = [
        ("ours, 1 step, prompt cache", {"kind": "ours", "steps": 1, "cache": True}),
        ("ours, 1 step, text encoders", {"kind": "ours", "steps": 1, "cache": False}),
        ("ours, 4 steps, prompt cache", {"kind": "ours", "steps": 4, "cache": True}),
        ("FluxKontextPipeline, 4 steps", {"kind": "kontext", "steps": 4}),
        ("FluxKontextPipeline, 28 steps", {"kind": "kontext", "steps": 28}),
    ]
    cfgs = [{**base, **cfg} for _, cfg in runs]
    seconds = interleaved_times(cfgs, args.rounds)
    rows = []
    for (name, _), cfg, sec in zip(runs, cfgs, seconds):
        mem = run_isolated("benchmarks.bench_inference", cfg)
        rows.append({"configuration": name, "seconds / image": sec, "x ours-1-step": sec / seconds[0],
                     "weights in memory (MiB)": mem["weights_mb"], "run peak above start (MiB)": mem["run_peak_mb"],
                     "text-encoder params": mem["text_encoder_params"]})
    print(f"## Inference ({args.config} components, {args.resolution}x{args.resolution}) on {machine()}\n")
    print(markdown_table(rows, ["configuration", "seconds / image", "x ours-1-step", "weights in memory (MiB)",
                                "run peak above start (MiB)", "text-encoder params"]))
    batches = (1, 2, 4, 8)
    bcfgs = [{**base, "kind": "ours", "steps": 1, "cache": True, "batch": b} for b in batches]
    bsec = interleaved_times(bcfgs, args.rounds)
    scaling = [{"batch size": b, "images / s": b / s,
                "run peak above start (MiB)": run_isolated("benchmarks.bench_inference", cfg)["run_peak_mb"]}
               for b, s, cfg in zip(batches, bsec, bcfgs)]
    print(f"\n## Batch-size scaling (ours, 1 step, prompt cache, {args.resolution} px)\n")
    print(markdown_table(scaling, ["batch size", "images / s", "run peak above start (MiB)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
