"""Updates for pure-bf16 weights that do not silently lose small steps.

A bf16 number has 8 significant bits: a weight ``w`` cannot move by less than about
``|w| * 2**-9``. At the paper's learning rate 3e-5 an AdamW step (``lr`` times an update of
order 1) is below that for most weights of magnitude above ~0.015, so plain round-to-nearest
writes the old value back and the step vanishes. :class:`CompensatedBF16Optimizer` wraps any
optimizer (torch AdamW, bitsandbytes AdamW8bit, ...) and, parameter by parameter, runs it in
float32 on a temporary float32 copy of the bf16 weight, then writes the result back with:

- ``"stochastic_rounding"``: round up with probability equal to the remainder, so the
  expected stored weight equals the float32 result (no extra memory);
- ``"kahan"``: round to nearest and keep the rounding error in a bf16 compensation buffer
  that is added back before the next step (2 bytes per parameter);
- ``"nearest"``: plain round to nearest (what pure-bf16 training without care does).

Float32 copies exist for one parameter at a time, so the peak overhead is the largest
single tensor, not the model. Optimizer states shaped like the parameter (e.g. AdamW's
moments) are kept in the parameter's storage dtype between steps, as torch's AdamW does
for bf16 weights; 8-bit states (bitsandbytes) are left as they are.
``last_stats["vanished_fraction"]``: among elements whose float32 update is non-zero, the
fraction that round-to-nearest would have left unchanged (measured in every mode).
"""

from __future__ import annotations

import numpy as np
import torch

BF16_UPDATES = ("stochastic_rounding", "kahan", "nearest")


def stochastic_round_to_bf16(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Float32 -> bf16, rounding to one of the two neighbouring bf16 values with probabilities
    proportional to closeness (unbiased: ``E[result] = x`` for finite ``x``)."""
    if x.dtype != torch.float32:
        raise TypeError(f"stochastic rounding takes float32, got {x.dtype}")
    bits = x.contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, generator=generator, device=x.device, dtype=torch.int32)
    # adding below the kept 16 bits carries into them with probability remainder / 2**16;
    # the sign bit is untouched, so this rounds the magnitude for either sign
    rounded = ((bits + noise) & -65536).view(torch.float32)
    return torch.where(torch.isfinite(x), rounded, x).to(torch.bfloat16)


class CompensatedBF16Optimizer(torch.optim.Optimizer):
    """Wraps ``inner`` so that its updates of bf16 parameters are computed in float32 and
    written back with ``update`` (one of :data:`BF16_UPDATES`). Non-bf16 parameters are
    stepped by ``inner`` unchanged. ``seed`` makes stochastic rounding reproducible (the
    stream depends on seed, step and parameter index, so it resumes exactly).
    """

    def __init__(self, inner: torch.optim.Optimizer, update: str = "stochastic_rounding", *, seed: int = 0,
                 track_vanishing: bool = True):
        if update not in BF16_UPDATES:
            raise ValueError(f"bf16 update must be one of {BF16_UPDATES}, got {update!r}")
        params = [p for g in inner.param_groups for p in g["params"]]
        super().__init__(params, dict(inner.defaults))
        self.inner = inner
        self.param_groups = inner.param_groups  # shared: LR schedulers act on the inner optimizer
        self.state = inner.state
        self.update = update
        self.seed = int(seed)
        self.track_vanishing = track_vanishing
        self.steps = 0
        self.compensation: dict[int, torch.Tensor] = {}  # kahan: param index -> bf16 rounding error
        self.last_stats: dict[str, float] = {}

    def _index(self) -> dict[torch.Tensor, int]:
        return {p: i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}

    def _generator(self, index: int, device) -> torch.Generator:
        seed = np.random.SeedSequence([self.seed, self.steps, index]).generate_state(1)[0]
        return torch.Generator(device=device).manual_seed(int(seed))

    def _state_tensors(self, p):
        return [(k, v) for k, v in self.inner.state.get(p, {}).items()
                if isinstance(v, torch.Tensor) and v.is_floating_point() and v.shape == p.shape]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        index = self._index()
        pending = [p for p in index if p.grad is not None]
        others = [p for p in pending if p.dtype != torch.bfloat16]
        grads = {p: p.grad for p in pending}
        for p in pending:
            p.grad = None
        vanished = changed = 0
        try:
            if others:  # non-bf16 parameters: one ordinary inner step
                for p in others:
                    p.grad = grads[p]
                self.inner.step()
                for p in others:
                    p.grad = None
            for p in pending:
                if p.dtype != torch.bfloat16:
                    continue
                i = index[p]
                stored = p.data
                comp = self.compensation.get(i)
                start = stored.float() if comp is None else stored.float() + comp.float()
                states = self._state_tensors(p)
                for k, v in states:
                    self.inner.state[p][k] = v.float()
                p.data = start.clone()
                p.grad = grads[p].float()
                self.inner.step()
                new = p.data
                for k, _ in self._state_tensors(p):  # new states of a first step included
                    self.inner.state[p][k] = self.inner.state[p][k].to(torch.bfloat16)
                nearest = new.to(torch.bfloat16)
                if self.track_vanishing:
                    moved = new != start
                    changed += int(moved.sum())
                    vanished += int((moved & (nearest == stored)).sum())
                if self.update == "stochastic_rounding":
                    out = stochastic_round_to_bf16(new, self._generator(i, new.device))
                elif self.update == "kahan":
                    out = nearest
                    self.compensation[i] = (new - nearest.float()).to(torch.bfloat16)
                else:
                    out = nearest
                p.data = out
                p.grad = None
        finally:
            for p in pending:
                if p.data.dtype == torch.float32 and p in grads and grads[p].dtype == torch.bfloat16:
                    p.data = p.data.to(torch.bfloat16)  # an exception mid-step must not leave fp32 weights
                p.grad = grads[p]
        self.steps += 1
        if self.track_vanishing:
            self.last_stats = {"vanished_fraction": vanished / changed if changed else 0.0}
        return loss

    def zero_grad(self, set_to_none: bool = True):
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        state = self.inner.state_dict()
        state["e2p_bf16"] = {"update": self.update, "seed": self.seed, "steps": self.steps,
                             "compensation": dict(self.compensation)}
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        ours = state_dict.pop("e2p_bf16", None)
        self.inner.load_state_dict(state_dict)
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state
        if ours is not None:
            self.steps = int(ours["steps"])
            params = list(self._index())
            self.compensation = {int(i): t.to(params[int(i)].device, torch.bfloat16)
                                 for i, t in ours["compensation"].items()}


def vanishing_fraction(weights: torch.Tensor, update: torch.Tensor) -> float:
    """Fraction of non-zero ``update`` elements that ``bf16(w - update) == w`` throws away."""
    w = weights.to(torch.bfloat16)
    moved = update != 0
    stays = (w.float() - update.float()).to(torch.bfloat16) == w
    return float((stays & moved).sum()) / max(1, int(moved.sum()))


__all__ = ["BF16_UPDATES", "CompensatedBF16Optimizer", "stochastic_round_to_bf16", "vanishing_fraction"]
