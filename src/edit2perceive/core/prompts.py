"""Prompt encoding (as FluxKontextPipeline does it) and the cached prompt embeddings.

A task's prompt never changes, so its embeddings are computed once and stored with the
model as a pipeline component, ``prompt_cache/`` (``config.json`` with the prompt text +
``diffusion_pytorch_model.safetensors`` with the two tensors). Training and inference then
need neither CLIP nor T5-XXL (about 4.7B parameters, 9.5 GB in bf16) in memory:
``Edit2PerceivePipeline.from_pretrained(path, text_encoder=None, text_encoder_2=None)``.

Shapes: ``prompt_embeds`` is ``1 x L x D`` (T5 last hidden state, the prompt padded to
``max_sequence_length`` = 512 tokens; D = 4096 for FLUX); ``pooled_prompt_embeds`` is
``1 x P`` (CLIP text model pooled output, prompt padded to 77 tokens; P = 768).
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin  # noqa: F401  (diffusers finds the load method through these names)
from diffusers.configuration_utils import register_to_config

DEFAULT_MAX_SEQUENCE_LENGTH = 512


class PromptCache(ModelMixin, ConfigMixin):
    """The embeddings of one fixed prompt, saved and loaded like any diffusers model.

    The tensors are frozen parameters, so ``pipe.to(device, dtype)``, offloading and
    ``torch_dtype=`` in ``from_pretrained`` treat them like the other weights.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, prompt: str, sequence_length: int, embed_dim: int, pooled_dim: int):
        super().__init__()
        self.prompt_embeds = torch.nn.Parameter(torch.zeros(1, sequence_length, embed_dim), requires_grad=False)
        self.pooled_prompt_embeds = torch.nn.Parameter(torch.zeros(1, pooled_dim), requires_grad=False)

    @property
    def prompt(self) -> str:
        return self.config.prompt

    @classmethod
    def from_tensors(cls, prompt: str, prompt_embeds: torch.Tensor, pooled_prompt_embeds: torch.Tensor) -> PromptCache:
        if prompt_embeds.ndim != 3 or pooled_prompt_embeds.ndim != 2:
            raise ValueError(
                f"expected prompt_embeds 1 x L x D and pooled 1 x P, got {tuple(prompt_embeds.shape)} "
                f"and {tuple(pooled_prompt_embeds.shape)}"
            )
        cache = cls(prompt, prompt_embeds.shape[1], prompt_embeds.shape[2], pooled_prompt_embeds.shape[1])
        cache.prompt_embeds.data = prompt_embeds[:1].detach().clone()
        cache.pooled_prompt_embeds.data = pooled_prompt_embeds[:1].detach().clone()
        return cache

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prompt_embeds 1 x L x D, pooled_prompt_embeds 1 x P)``."""
        return self.prompt_embeds, self.pooled_prompt_embeds


@torch.no_grad()
def encode_prompt(
    prompt: str,
    *,
    tokenizer,
    text_encoder,
    tokenizer_2,
    text_encoder_2,
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH,
) -> PromptCache:
    """Encode ``prompt`` exactly as diffusers' Flux pipelines do (CLIP pooled + T5 sequence)."""
    clip_ids = tokenizer(
        [prompt],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    pooled = text_encoder(clip_ids.to(text_encoder.device), output_hidden_states=False).pooler_output
    t5_ids = tokenizer_2(
        [prompt],
        padding="max_length",
        max_length=max_sequence_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    embeds = text_encoder_2(t5_ids.to(text_encoder_2.device), output_hidden_states=False)[0]
    return PromptCache.from_tensors(prompt, embeds, pooled.to(embeds.dtype))
