"""Offline FLUX.1 Kontext-architecture components for tests, demos and benchmarks.

``tiny_kontext_components`` builds every component of diffusers' ``FluxKontextPipeline``
from configs: random weights, nothing downloaded, a few MB, seconds on a CPU. The
tokenizers are built in memory (a byte-level BPE alphabet for CLIP, a small unigram
vocabulary for T5), so they need no files from the Hub either.

``FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG`` is the exact transformer config of
``black-forest-labs/FLUX.1-Kontext-dev`` (about 11.9B parameters), so benchmarks can
build the real architecture with random weights.
"""

from __future__ import annotations

import torch

from .core.flow import FLUX_SCHEDULER_CONFIG  # noqa: F401 - also public here

#: Transformer config of black-forest-labs/FLUX.1-Kontext-dev (transformer/config.json).
FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG: dict = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": None,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}

#: VAE config of FLUX.1 (vae/config.json): 16 latent channels, 8x downsampling.
FLUX_VAE_CONFIG: dict = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

TINY_TEXT_DIM = 32  # T5 d_model == transformer joint_attention_dim
TINY_POOLED_DIM = 32  # CLIP hidden size == transformer pooled_projection_dim

# Words of the task prompts get whole-word pieces in the tiny T5 vocabulary; everything
# else falls back to single characters.
_T5_WORDS = (
    "Transform to depth normal matting map while maintaining original composition "
    "a an the of and photo image"
).split()
_T5_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"


def tiny_clip_tokenizer(model_max_length: int = 77):
    """CLIP tokenizer over the 256-symbol byte-level alphabet (no merges): id 512 = BOS,
    id 513 = EOS = PAD. Any text tokenizes (character by character)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    alphabet = sorted(ByteLevel.alphabet())
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def tiny_t5_tokenizer(model_max_length: int = 512):
    """T5 tokenizer with a tiny unigram vocabulary: pad 0, eos 1, unk 2, the prompt words
    as whole pieces, single characters as fall-back, plus 10 sentinel ids."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + word, -1.0) for word in dict.fromkeys(_T5_WORDS)]
    pieces += [(char, -5.0) for char in _T5_CHARS]
    return T5TokenizerFast(vocab=pieces, extra_ids=10, model_max_length=model_max_length)


def tiny_vae_config() -> dict:
    """FLUX-like VAE (16 latent channels, 8x downsampling, shift/scale factors) a few channels wide."""
    config = dict(FLUX_VAE_CONFIG)
    config.update(block_out_channels=[16, 32, 32, 32], layers_per_block=1, norm_num_groups=8, sample_size=64)
    return config


def tiny_transformer_config() -> dict:
    """FluxTransformer2DModel with the Kontext layout (64 input channels, guidance
    embedding) but one double and one single block, 2 heads x 16."""
    return {
        "patch_size": 1,
        "in_channels": 64,
        "out_channels": None,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": TINY_TEXT_DIM,
        "pooled_projection_dim": TINY_POOLED_DIM,
        "guidance_embeds": True,
        "axes_dims_rope": (4, 6, 6),
    }


def tiny_kontext_components(seed: int = 0, *, dtype: torch.dtype = torch.float32, transformer_config: dict | None = None) -> dict:
    """Every FluxKontextPipeline component, tiny and randomly initialized (deterministic by ``seed``).

    ``transformer_config``: overrides of :func:`tiny_transformer_config` (e.g. more blocks).

    Returns a dict with the keys of diffusers' ``FluxKontextPipeline``: ``transformer``,
    ``vae``, ``text_encoder`` (CLIP), ``tokenizer``, ``text_encoder_2`` (T5),
    ``tokenizer_2``, ``scheduler``. Works offline.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = tiny_clip_tokenizer()
    tokenizer_2 = tiny_t5_tokenizer()

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**{**tiny_transformer_config(), **(transformer_config or {})})

    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**tiny_vae_config())

    torch.manual_seed(seed + 2)
    clip_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TINY_POOLED_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=TINY_POOLED_DIM,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_act="gelu",
    )
    text_encoder = CLIPTextModel(clip_config)

    torch.manual_seed(seed + 3)
    t5_config = T5Config(
        vocab_size=len(tokenizer_2),
        d_model=TINY_TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer_2.pad_token_id,
        eos_token_id=tokenizer_2.eos_token_id,
        decoder_start_token_id=tokenizer_2.pad_token_id,
    )
    text_encoder_2 = T5EncoderModel(t5_config)

    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER_CONFIG)

    models = dict(transformer=transformer, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2)
    for model in models.values():
        model.eval()
        if dtype != torch.float32:
            model.to(dtype=dtype)
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        scheduler=scheduler,
    )
