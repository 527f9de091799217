"""Full-size FLUX.1 Kontext-dev transformer (random weights, bf16) on one GPU.

    python -m benchmarks.gpu.bench_full_size [--resolutions 512 768 1024] [--batches 1 4 16] [--compile]

Measures, and prints as Markdown tables with the GPU's name:

1. single-step inference latency (one DiT forward with the RGB context tokens and 512 T5
   tokens, plus the full-size FLUX VAE encode + decode) at 512, 768 and 1024 px, and the
   ratio to the FLOP-bound time of the DiT forward at the card's dense bf16 peak;
2. training step time and peak memory at 512x768 for batch 1, 4 and 16: flow-matching loss
   plus the pixel loss through the frozen VAE decoder, gradient checkpointing (diffusers'
   switch) and bitsandbytes 8-bit AdamW, full fine-tuning of the 12B DiT;
3. the largest batch that fits (doubling, then bisection, on CUDA out-of-memory);
4. the speed-up against the paper's budget: ~6000 steps of batch 16 in ~1.5 days on one
   H200, i.e. about 21.6 s per step.

Needs a CUDA GPU (H100 80 GB / H200 141 GB); nothing here runs on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys

PAPER_SECONDS_PER_STEP = 1.5 * 24 * 3600 / 6000  # 21.6 s at batch 16
#: dense bf16 tensor-core peak in FLOP/s (NVIDIA datasheets, SXM, no sparsity)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def dit_forward_flops(config: dict, image_tokens: int, text_tokens: int = 512, *, attention: bool = True) -> float:
    """Matmul FLOPs of one FluxTransformer2DModel forward (2 FLOPs per multiply-add).

    Per token, a double block has 2 streams x (QKV 3d^2 + out d^2 + MLP 8d^2) = 24 d^2
    multiply-adds on its own stream's tokens; a single block has QKV 3d^2 + MLP-in 4d^2 +
    fused out-projection (d + 4d) d = 12 d^2 on all tokens. Attention adds 2 L^2 d per block
    (QK^T and AV). Embedders and norms are negligible.
    """
    d = config["num_attention_heads"] * config["attention_head_dim"]
    total = image_tokens + text_tokens
    blocks = config["num_layers"] + config["num_single_layers"]
    linear = blocks * 12 * d * d * total
    attn = blocks * 2 * total * total * d if attention else 0
    return 2.0 * (linear + attn)


def _cuda_time(fn, repeats: int = 10, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return statistics.median(times)


def build(compile_dit: bool):
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG

    torch.manual_seed(0)
    with torch.device("cuda"):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly: 24 GB, not 48 GB of fp32 first
        try:
            transformer = FluxTransformer2DModel(**FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG)
            vae = AutoencoderKL(**FLUX_VAE_CONFIG)
        finally:
            torch.set_default_dtype(previous)
    vae.requires_grad_(False).eval()
    if compile_dit:
        transformer = torch.compile(transformer)
    return transformer, vae


def inference_rows(transformer, vae, resolutions) -> list[dict]:
    import torch

    from edit2perceive import flow, modeling
    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG

    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    prompt = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16)
    pooled = torch.randn(1, 768, device="cuda", dtype=torch.bfloat16)
    rows = []
    for res in resolutions:
        image = torch.rand(1, 3, res, res, device="cuda", dtype=torch.bfloat16) * 2 - 1
        with torch.no_grad():
            context = modeling.encode_image(vae, image)
            noise = flow.base_noise(context.shape[1:], batch_size=1, device="cuda", dtype=torch.bfloat16)

            def dit(noise=noise, context=context):
                return modeling.predict_velocity(transformer, noise, 1.0, [context], prompt, pooled)

            def full(noise=noise, image=image):
                ctx = modeling.encode_image(vae, image)
                v = modeling.predict_velocity(transformer, noise, 1.0, [ctx], prompt, pooled)
                return modeling.decode_latents(vae, flow.one_step_estimate(noise, v, 1.0))

            t_dit, t_full = _cuda_time(dit), _cuda_time(full)
        tokens = 2 * (res // 16) ** 2
        flops = dit_forward_flops(FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, tokens)
        rows.append({"resolution": f"{res}x{res}", "DiT forward (s)": t_dit, "single step incl. VAE (s)": t_full,
                     "DiT TFLOP": flops / 1e12, "FLOP-bound (s)": flops / peak if peak else float("nan"),
                     "x FLOP-bound": t_dit / (flops / peak) if peak else float("nan")})
    return rows


def train_step_fn(transformer, vae, batch: int, height: int, width: int):
    """One optimizer step closure (FM + pixel loss, GC, 8-bit AdamW) for ``batch``."""
    import bitsandbytes as bnb
    import torch

    from edit2perceive import flow, modeling
    from edit2perceive.tasks import get_task

    task = get_task("depth")
    transformer.train()
    transformer.enable_gradient_checkpointing()
    optimizer = bnb.optim.AdamW8bit([p for p in transformer.parameters() if p.requires_grad], lr=3e-5)
    rgb = torch.rand(batch, 3, height, width, device="cuda", dtype=torch.bfloat16) * 2 - 1
    target = torch.rand(batch, 3, height, width, device="cuda", dtype=torch.bfloat16) * 2 - 1
    mask = torch.ones(batch, height, width, dtype=torch.bool, device="cuda")
    prompt = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16)
    pooled = torch.randn(1, 768, device="cuda", dtype=torch.bfloat16)

    def step():
        ctx = modeling.encode_image(vae, rgb)
        z1 = modeling.encode_image(vae, target)
        eps = flow.base_noise(z1.shape[1:], batch_size=batch, device="cuda", dtype=z1.dtype)
        sigma = flow.sample_sigmas(batch).to("cuda", torch.bfloat16)
        x = flow.interpolate(z1, eps, sigma)
        v = modeling.predict_velocity(transformer, x, sigma, [ctx], prompt, pooled)
        loss_fm = (v.float() - (eps - z1).float()).pow(2).mean()
        pixels = modeling.decode_latents(vae, flow.one_step_estimate(x, v, sigma))
        loss_cons = task.pixel_loss(pixels.float(), target.float(), mask)
        loss = loss_fm + loss_fm.detach() / (loss_cons.detach() + 1e-3) * loss_cons
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def memory_model_gib(batch: int, height: int, width: int) -> float:
    """edit2perceive.training.memory's estimate for this benchmark's step (bf16 weights and
    gradients, 8-bit AdamW, gradient checkpointing, pixel loss), to compare with the measured peak."""
    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG
    from edit2perceive.training.memory import GIB, estimate_training_memory

    estimate = estimate_training_memory(FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG, batch_size=batch,
                                        height=height, width=width, gradient_checkpointing=True,
                                        vae_gradient_checkpointing=False, master_weights="bf16",
                                        optim="adamw_bnb_8bit", bf16_update="nearest")
    return estimate.total / GIB


def training_rows(transformer, vae, batches, height=512, width=768) -> list[dict]:
    import torch

    rows = []
    for batch in batches:
        try:
            step = train_step_fn(transformer, vae, batch, height, width)
            torch.cuda.reset_peak_memory_stats()
            seconds = _cuda_time(step, repeats=3, warmup=1)
            peak = torch.cuda.max_memory_allocated() / 2**30
            rows.append({"batch": batch, "s / step": seconds, "peak GiB": peak,
                         "memory model GiB": memory_model_gib(batch, height, width), "images / s": batch / seconds,
                         "x paper (21.6 s/step at batch 16)": PAPER_SECONDS_PER_STEP / (seconds * 16 / batch)})
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": batch, "s / step": "OOM"})
        torch.cuda.empty_cache()
    return rows


def largest_batch(transformer, vae, height=512, width=768, start=16, limit=256) -> int:
    import torch

    def fits(b):
        try:
            train_step_fn(transformer, vae, b, height, width)()
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            torch.cuda.empty_cache()

    lo, hi = 0, start
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[512, 768, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--compile", action="store_true", help="torch.compile the DiT")
    parser.add_argument("--skip-largest", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.common import markdown_table

    if not torch.cuda.is_available():
        print("bench_full_size needs a CUDA GPU", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    transformer, vae = build(args.compile)
    print(f"## Single-step inference, full-size Kontext DiT (random weights, bf16) on {name}, torch {torch.__version__}"
          f"{', torch.compile' if args.compile else ''}\n")
    print(markdown_table(inference_rows(transformer, vae, args.resolutions),
                         ["resolution", "DiT forward (s)", "single step incl. VAE (s)", "DiT TFLOP", "FLOP-bound (s)",
                          "x FLOP-bound"]))
    print(f"\n## Training step at 512x768 (FM + pixel loss, gradient checkpointing, 8-bit AdamW) on {name}\n")
    print(markdown_table(training_rows(transformer, vae, args.batches),
                         ["batch", "s / step", "peak GiB", "images / s", "x paper (21.6 s/step at batch 16)"]))
    if not args.skip_largest:
        print(f"\nLargest batch that fits at 512x768: {largest_batch(transformer, vae)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
