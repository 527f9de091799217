"""Prompt encoding (as FluxKontextPipeline does it) and the cached prompt embeddings.

A task's prompt never changes, so its embeddings are computed once and stored next to
the model (``prompt_embeds.safetensors``); training and inference then need neither the
CLIP nor the T5-XXL text encoder (about 4.7B parameters) in memory.

Shapes: ``prompt_embeds`` is ``1 x L x D`` (T5 last hidden state, padded to
``max_sequence_length`` = 512 tokens for FLUX; D = 4096), ``pooled_prompt_embeds`` is
``1 x P`` (CLIP text model pooled output, prompt padded to 77 tokens; P = 768).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

PROMPT_CACHE_FILENAME = "prompt_embeds.safetensors"
DEFAULT_MAX_SEQUENCE_LENGTH = 512


@dataclass
class PromptEmbeddings:
    """The two text conditionings of one prompt, kept together with the prompt text."""

    prompt: str
    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor

    def to(self, device=None, dtype=None) -> PromptEmbeddings:
        return PromptEmbeddings(
            self.prompt,
            self.prompt_embeds.to(device=device, dtype=dtype),
            self.pooled_prompt_embeds.to(device=device, dtype=dtype),
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write a safetensors file (tensors + the prompt text in the metadata), atomically."""
        from safetensors.torch import save_file

        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        tensors = {
            "prompt_embeds": self.prompt_embeds.detach().cpu().contiguous(),
            "pooled_prompt_embeds": self.pooled_prompt_embeds.detach().cpu().contiguous(),
        }
        save_file(tensors, tmp, metadata={"prompt": self.prompt})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PromptEmbeddings:
        from safetensors import safe_open

        from safetensors import SafetensorError

        path = os.fspath(path)
        try:
            with safe_open(path, framework="pt") as f:
                prompt = (f.metadata() or {}).get("prompt")
                keys = set(f.keys())
                tensors = {k: f.get_tensor(k) for k in keys & {"prompt_embeds", "pooled_prompt_embeds"}}
        except (OSError, SafetensorError) as err:  # missing, truncated or corrupt file
            raise ValueError(f"{path}: unreadable prompt cache ({err})") from err
        missing = {"prompt_embeds", "pooled_prompt_embeds"} - set(tensors)
        if missing or prompt is None:
            raise ValueError(f"{path}: not a prompt cache (missing {sorted(missing) or 'prompt metadata'})")
        return cls(prompt, tensors["prompt_embeds"], tensors["pooled_prompt_embeds"])


@torch.no_grad()
def encode_prompt(
    prompt: str,
    *,
    tokenizer,
    text_encoder,
    tokenizer_2,
    text_encoder_2,
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH,
) -> PromptEmbeddings:
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
    return PromptEmbeddings(prompt, embeds, pooled)
