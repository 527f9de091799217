"""A memory model of one training step, computed without the hardware.

The step (the trainer's objective: VAE-encode the context image(s) and the target, the DiT
forward on the noisy target tokens, the flow-matching loss, the VAE decode of the one-step
estimate for the pixel loss, backward) runs under ``FakeTensorMode``: every tensor has a
shape, a dtype and a size in bytes but no data, so the 12B DiT at batch 16 "runs" on a laptop
in seconds. :class:`LiveBytesTracker` (a dispatch mode) logs every storage the step creates
and frees; the peak of the live bytes that are not gradients is the activation peak
(activations and temporaries, the step's inputs included). Weights and gradients are counted
from the parameters. Optimizer states and the bf16 update's
compensation buffers are added from the parameter count:

- AdamW (torch): two moments in the weights' dtype (fp32 weights: 8 B/param; bf16: 4 B/param);
- AdamW8bit (bitsandbytes, blockwise): 2 B/param plus fp32 absmax per 256 values
  (tensors under 4096 elements keep fp32 moments);
- Kahan compensation: 2 B per bf16 parameter; stochastic rounding: none.

The estimate is conservative for gradient accumulation: the gradients are counted in full
at the activation peak (with accumulation they live through the next forward).
The pixel loss is an L1 stand-in for the task losses (their masked reductions are data-
dependent and cannot run on fake tensors; their memory is a few images' worth).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

GIB = 1024**3


@dataclass
class MemoryEstimate:
    """Bytes of one training step's peak. ``total`` is the sum of the parts."""

    weights: int  # the trained DiT's parameters
    gradients: int
    optimizer_states: int
    compensation: int  # Kahan buffers (bf16 update "kahan")
    frozen: int  # VAE weights and the prompt embeddings
    activations: int  # activations + temporaries at the peak (fake-tensor measurement)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_states + self.compensation + self.frozen + self.activations

    def as_gib(self) -> dict[str, float]:
        out = {k: v / GIB for k, v in asdict(self).items()}
        out["total"] = self.total / GIB
        return out

    def summary(self) -> str:
        unit, scale = ("GiB", GIB) if self.total >= GIB else ("MiB", 2**20)
        parts = {k: v / scale for k, v in asdict(self).items()}
        return (f"{self.total / scale:.1f} {unit} = weights {parts['weights']:.1f} + gradients {parts['gradients']:.1f} "
                f"+ optimizer {parts['optimizer_states']:.1f} + compensation {parts['compensation']:.1f} + frozen "
                f"VAE/prompt {parts['frozen']:.1f} + activations {parts['activations']:.1f}")


def optimizer_state_bytes(params, optim: str, weight_dtype: torch.dtype) -> int:
    """Optimizer state bytes for ``params`` (tensors or shapes) under a TrainingArguments ``optim`` name."""
    total = 0
    for p in params:
        n = math.prod(p.shape) if hasattr(p, "shape") else int(p)
        if "8bit" in optim and n >= 4096:
            total += 2 * n + 2 * 4 * math.ceil(n / 256)
        elif "8bit" in optim:
            total += 2 * 4 * n
        elif optim.startswith("sgd"):
            total += 0
        else:
            total += 2 * n * torch.empty((), dtype=weight_dtype).element_size()
    return total


def _fake_step(transformer, vae, prompt_embeds, pooled, *, batch_size: int, height: int, width: int,
               pixel_loss: bool, num_context_images: int, dtype: torch.dtype) -> None:
    from ..core import flow, modeling

    rgb = torch.rand(batch_size, 3, height, width, dtype=dtype) * 2 - 1
    with torch.no_grad():
        contexts = [modeling.encode_image(vae, rgb) for _ in range(num_context_images)]
        z1 = modeling.encode_image(vae, rgb).float()
    eps = torch.randn_like(z1)
    sigma = torch.ones(batch_size)
    x = flow.interpolate(z1, eps, sigma)
    v = modeling.predict_velocity(transformer, x, sigma, contexts, prompt_embeds, pooled, guidance=1.0).float()
    loss = (v - flow.target_velocity(z1, eps)).pow(2).mean()
    if pixel_loss:
        pixels = modeling.decode_latents(vae, flow.one_step_estimate(x, v, sigma)).float()
        loss = loss + (pixels - rgb.float()).abs().mean()
    loss.backward()


class LiveBytesTracker(TorchDispatchMode):
    """Counts the bytes of live tensor storages created by ops run under it, with an event log,
    so the peak can be split afterwards into gradients and everything else (activations and
    temporaries). Works on real and fake tensors alike (storages are weak-referenced)."""

    def __init__(self):
        super().__init__()
        self._keys = WeakIdKeyDictionary()
        self._refs: dict[int, weakref.ref] = {}
        self.events: list[tuple[int, int]] = []  # (storage key, +bytes / -bytes)
        self._next = 0

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage in self._keys:
            return
        key = self._next
        self._next += 1
        size = storage.nbytes()
        self._keys[storage] = key
        self.events.append((key, size))

        def freed(_ref, key=key, size=size):
            self.events.append((key, -size))
            self._refs.pop(key, None)

        self._refs[key] = weakref.ref(storage, freed)

    def ignore(self, *tensors: torch.Tensor) -> None:
        """Storages that exist already (weights, inputs): views of them are not new memory."""
        for t in tensors:
            self._keys[t.untyped_storage()] = -1

    def key_of(self, t: torch.Tensor) -> int | None:
        return self._keys.get(t.untyped_storage())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def peak(self, exclude: set[int] = frozenset()) -> int:
        """Peak of the live bytes, not counting storages whose key is in ``exclude``."""
        live = peak = 0
        for key, delta in self.events:
            if key not in exclude:
                live += delta
                peak = max(peak, live)
        return peak


def estimate_training_memory(
    transformer_config: dict,
    vae_config: dict,
    *,
    batch_size: int,
    height: int,
    width: int,
    gradient_checkpointing: bool = True,
    vae_gradient_checkpointing: bool = True,
    pixel_loss: bool = True,
    master_weights: str = "bf16",
    optim: str = "adamw_bnb_8bit",
    bf16_update: str = "stochastic_rounding",
    num_context_images: int = 1,
    text_tokens: int = 512,
    fake: bool = True,
    optimizer_step: bool = False,
) -> MemoryEstimate:
    """Peak memory of one training step of a DiT built from ``transformer_config`` (and a VAE
    from ``vae_config``) at ``batch_size x 3 x height x width``; see the module docstring.

    ``fake=False`` runs the same step on real CPU tensors, and ``optimizer_step`` adds a torch
    AdamW step after it (for checking the model on a small configuration against measured memory).
    """
    from contextlib import nullcontext

    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from torch._subclasses.fake_tensor import FakeTensorMode

    if height % 16 or width % 16:
        raise ValueError(f"height and width must be multiples of 16, got {height} x {width}")
    weight_dtype = torch.bfloat16 if master_weights == "bf16" else torch.float32
    # the frozen VAE and prompt embeddings follow the recipe: bf16 with --bf16 (pure bf16), else fp32
    frozen_dtype = weight_dtype
    mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else nullcontext()
    previous = torch.get_default_dtype()
    with mode:
        torch.set_default_dtype(weight_dtype)
        try:
            transformer = FluxTransformer2DModel(**transformer_config)
            torch.set_default_dtype(frozen_dtype)
            vae = AutoencoderKL(**vae_config)
        finally:
            torch.set_default_dtype(previous)
        vae.requires_grad_(False).eval()
        transformer.train()
        if gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
            if pixel_loss and vae_gradient_checkpointing:
                vae.enable_gradient_checkpointing()
        prompt = torch.zeros(1, text_tokens, transformer_config["joint_attention_dim"], dtype=frozen_dtype)
        pooled = torch.zeros(1, transformer_config["pooled_projection_dim"], dtype=frozen_dtype)
        tracker = LiveBytesTracker()
        tracker.ignore(*transformer.parameters(), *transformer.buffers(), *vae.parameters(), *vae.buffers(),
                       prompt, pooled)
        with tracker:
            _fake_step(transformer, vae, prompt, pooled, batch_size=batch_size, height=height, width=width,
                       pixel_loss=pixel_loss, num_context_images=num_context_images, dtype=frozen_dtype)
        params = list(transformer.parameters())
        if optimizer_step:
            torch.optim.AdamW(params, lr=1e-5).step()
        grads = {tracker.key_of(p.grad) for p in params if p.grad is not None}
        activations = tracker.peak(exclude=grads)
        weights = sum(p.numel() * p.element_size() for p in params)
        frozen = sum(p.numel() * p.element_size() for p in vae.parameters()) + prompt.nbytes + pooled.nbytes
    states = optimizer_state_bytes(params, optim, weight_dtype)
    compensation = weights if (master_weights == "bf16" and bf16_update == "kahan") else 0
    return MemoryEstimate(weights=weights, gradients=weights, optimizer_states=states, compensation=compensation,
                          frozen=frozen, activations=activations)


def zero2_estimate(bf16_step: MemoryEstimate, num_gpus: int, *, offload: bool = False) -> tuple[MemoryEstimate, int]:
    """The reference's numerics: DeepSpeed ZeRO-2 with bf16 (its ``configs/accelerate_config.yaml``;
    ``accelerate_config_zero2offload.yaml`` offloads). Per GPU, with ``P`` parameters: bf16 weights
    ``2P``, bf16 gradients partitioned ``2P / N``, fp32 master weights and AdamW moments
    partitioned ``12P / N`` (the ZeRO paper's accounting, K = 12); activations and frozen parts as
    in ``bf16_step`` (a pure-bf16 estimate of the same step). With ``offload`` the master weights
    and moments live in CPU memory. Returns ``(per-GPU estimate, CPU bytes over all GPUs)``."""
    if num_gpus < 1:
        raise ValueError(f"num_gpus must be >= 1, got {num_gpus}")
    params = bf16_step.weights // 2
    states = 12 * params // num_gpus
    per_gpu = MemoryEstimate(weights=2 * params, gradients=2 * params // num_gpus,
                             optimizer_states=0 if offload else states, compensation=0, frozen=bf16_step.frozen,
                             activations=bf16_step.activations)
    return per_gpu, (12 * params if offload else 0)


def fitting_options(total_gib: float, free_gib: float, estimate_for, batch_size: int) -> list[str]:
    """Human-readable settings that fit ``free_gib``, tried in order of least change:
    gradient checkpointing, 8-bit AdamW, smaller per-device batches (the effective batch is kept
    by gradient accumulation). ``estimate_for(**overrides)`` returns a :class:`MemoryEstimate`."""
    options = []
    for overrides, text in [
        ({"gradient_checkpointing": True}, "--gradient_checkpointing true"),
        ({"gradient_checkpointing": True, "optim": "adamw_bnb_8bit"},
         "--gradient_checkpointing true --optim adamw_bnb_8bit"),
    ]:
        if estimate_for(**overrides).total / GIB <= free_gib:
            options.append(text)
    b = batch_size // 2
    while b >= 1 and len(options) < 3:
        if estimate_for(batch_size=b, gradient_checkpointing=True, optim="adamw_bnb_8bit").total / GIB <= free_gib:
            options.append(f"--per_device_train_batch_size {b} --gradient_checkpointing true --optim adamw_bnb_8bit "
                           f"(gradient accumulation keeps the effective batch)")
            break
        b //= 2
    return options


__all__ = ["GIB", "LiveBytesTracker", "MemoryEstimate", "estimate_training_memory", "fitting_options", "optimizer_state_bytes",
           "zero2_estimate"]
