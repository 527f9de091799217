"""Weight memory of FLUX.1 Kontext-dev under each way of running it, from parameter counts.

    python -m benchmarks.real_model_memory

Every component is built from its real config on the meta device (no weights, no
download) and its parameters counted. Bytes: bf16 = 2 per parameter; bitsandbytes NF4
(diffusers' ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")``, no double
quantization) = 0.5 per ``nn.Linear`` weight + one float32 absmax per 64-weight block; int8
(LLM.int8) = 1 per ``nn.Linear`` weight + one float32 scale per output row; everything else
(biases, norms) stays bf16. Weights only: activations at 768 x 768 come on top.
"""

from __future__ import annotations

import torch

from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG, FLUX_VAE_CONFIG

GIB = 1024**3
#: google/t5-v1_1-xxl encoder (text_encoder_2 of FLUX.1) and openai/clip-vit-large-patch14 text model.
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              feed_forward_proj="gated-gelu", is_encoder_decoder=False)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, projection_dim=768)


def counts() -> dict:
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    with torch.device("meta"):
        dit = FluxTransformer2DModel(**FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG)
        vae = AutoencoderKL(**FLUX_VAE_CONFIG)
        t5 = T5EncoderModel(T5Config(**T5_XXL))
        clip = CLIPTextModel(CLIPTextConfig(**CLIP_L))
    linear_w = sum(m.weight.numel() for m in dit.modules() if isinstance(m, torch.nn.Linear))
    linear_rows = sum(m.out_features for m in dit.modules() if isinstance(m, torch.nn.Linear))
    total = sum(p.numel() for p in dit.parameters())
    return {"dit": total, "dit_linear": linear_w, "dit_rows": linear_rows, "dit_rest": total - linear_w,
            "vae": sum(p.numel() for p in vae.parameters()), "t5": sum(p.numel() for p in t5.parameters()),
            "clip": sum(p.numel() for p in clip.parameters())}


def table() -> str:
    c = counts()
    bf16 = {k: 2 * c[k] for k in ("dit", "vae", "t5", "clip")}
    nf4 = 0.5 * c["dit_linear"] + 4 * c["dit_linear"] / 64 + 2 * c["dit_rest"]
    int8 = 1.0 * c["dit_linear"] + 4 * c["dit_rows"] + 2 * c["dit_rest"]
    cache = 2 * (512 * 4096 + 768)
    text = bf16["t5"] + bf16["clip"]
    rows = [
        ("bf16, text encoders loaded (no prompt cache)", bf16["dit"] + bf16["vae"] + text, bf16["dit"] + bf16["vae"] + text),
        ("bf16, text encoders + `--offload`", max(bf16["dit"], bf16["vae"], bf16["t5"]), bf16["dit"] + bf16["vae"] + text),
        ("bf16, prompt cache (our saved / converted models)", bf16["dit"] + bf16["vae"] + cache, bf16["dit"] + bf16["vae"] + cache),
        ("bf16 + `--offload`", max(bf16["dit"], bf16["vae"]) + cache, bf16["dit"] + bf16["vae"] + cache),
        ("`--quantize int8`", int8 + bf16["vae"] + cache, int8 + bf16["vae"] + cache),
        ("`--quantize nf4`", nf4 + bf16["vae"] + cache, nf4 + bf16["vae"] + cache),
        ("`--quantize nf4 --offload`", max(nf4, bf16["vae"]) + cache, nf4 + bf16["vae"] + cache),
    ]
    lines = [f"Parameters: transformer {c['dit'] / 1e9:.2f} B ({c['dit_linear'] / 1e9:.2f} B in nn.Linear weights), "
             f"VAE {c['vae'] / 1e6:.1f} M, T5-XXL encoder {c['t5'] / 1e9:.2f} B, CLIP-L text {c['clip'] / 1e6:.0f} M.",
             "", "| configuration | GPU weights (GiB) | saved vs bf16 + text encoders | weights held in total (GiB) |",
             "|---|---|---|---|"]
    top = rows[0][1]
    for name, gpu, held in rows:
        lines.append(f"| {name} | {gpu / GIB:.1f} | {(top - gpu) / GIB:.1f} | {held / GIB:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
