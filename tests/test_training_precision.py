"""bf16 master weights: stochastic rounding, Kahan compensation, the optimizer wrapper, resume."""

import pytest
import torch

from edit2perceive.training.precision import (
    CompensatedBF16Optimizer,
    stochastic_round_to_bf16,
    vanishing_fraction,
)


def test_stochastic_rounding_is_unbiased_and_stays_on_the_neighbours():
    # 1 + 2**-10 lies an eighth of the way from bf16's 1.0 to its next value 1 + 2**-7
    x = torch.full((200_000,), 1.0 + 2.0**-10)
    out = stochastic_round_to_bf16(x, torch.Generator().manual_seed(0)).float()
    assert set(out.unique().tolist()) == {1.0, 1.0 + 2.0**-7}
    assert (out == 1.0 + 2.0**-7).float().mean().item() == pytest.approx(1 / 8, abs=0.005)
    assert out.mean().item() == pytest.approx(1.0 + 2.0**-10, abs=2e-5)
    neg = stochastic_round_to_bf16(-x, torch.Generator().manual_seed(0)).float()
    assert neg.mean().item() == pytest.approx(-(1.0 + 2.0**-10), abs=2e-5)  # symmetric for negatives
    exact = torch.tensor([0.0, 1.5, -2.0, float("inf"), -float("inf")])  # representable: unchanged
    assert torch.equal(stochastic_round_to_bf16(exact).float(), exact)
    assert torch.isnan(stochastic_round_to_bf16(torch.tensor([float("nan")]))).all()
    with pytest.raises(TypeError, match="float32"):
        stochastic_round_to_bf16(torch.zeros(2, dtype=torch.float64))


def test_vanishing_fraction_by_hand():
    w = torch.ones(4)
    # below 1 the bf16 spacing is 2**-8: a step down by less than half of it (2**-9 ~ 2e-3) vanishes
    update = torch.tensor([1e-4, 1e-3, 0.0, 0.1])
    assert vanishing_fraction(w, update) == pytest.approx(2 / 3)


def _sgd_run(update, steps=300, lr=3e-4):
    """Weight 1.0 pulled by a constant gradient 1 with SGD: the float32 answer is 1 - steps * lr."""
    p = torch.nn.Parameter(torch.ones(1024, dtype=torch.bfloat16))
    opt = CompensatedBF16Optimizer(torch.optim.SGD([p], lr=lr), update, seed=0)
    for _ in range(steps):
        p.grad = torch.ones_like(p)
        opt.step()
    return p, opt


def test_small_steps_vanish_with_nearest_and_survive_with_compensation():
    expected = 1.0 - 300 * 3e-4  # 0.91
    p, opt = _sgd_run("nearest")
    assert torch.all(p == 1.0)  # every step of 3e-4 (< half the spacing 2**-8 below 1) rounds back to 1.0
    assert opt.last_stats["vanished_fraction"] == 1.0
    p, opt = _sgd_run("kahan")
    assert p.dtype == torch.bfloat16
    assert (p.float() - expected).abs().max().item() <= 2.0**-8  # within half a bf16 spacing near 0.91
    p, opt = _sgd_run("stochastic_rounding")
    assert p.float().mean().item() == pytest.approx(expected, abs=2e-3)  # unbiased on average over weights
    assert opt.last_stats["vanished_fraction"] > 0.9  # the same steps would vanish under plain rounding


def test_wrapped_adamw_tracks_fp32_master_weights():
    torch.manual_seed(0)
    w0 = torch.randn(64, 64).to(torch.bfloat16).float()  # representable start: only the updates differ
    grads = [torch.randn(64, 64) for _ in range(50)]

    def run(update=None):
        dtype = torch.float32 if update is None else torch.bfloat16
        p = torch.nn.Parameter(w0.clone().to(dtype))
        inner = torch.optim.AdamW([p], lr=3e-5, weight_decay=0.01)
        opt = inner if update is None else CompensatedBF16Optimizer(inner, update, seed=1)
        for g in grads:
            p.grad = g.to(dtype)
            opt.step()
        return p.detach().float(), opt

    ref, _ = run()
    motion = ref - w0

    def share_of_motion(w):  # least-squares share of the fp32 motion that the bf16 weights made
        return float(((w - w0) * motion).sum() / motion.pow(2).sum())

    nearest, opt = run("nearest")
    assert share_of_motion(nearest) < 0.3  # most steps of 3e-5 vanish
    assert opt.last_stats["vanished_fraction"] > 0.5
    kahan, opt = run("kahan")
    compensation = next(iter(opt.compensation.values())).float()
    assert (kahan + compensation - ref).abs().mean() < 0.02 * motion.abs().mean()  # high + low part = fp32 result
    assert (kahan == ref.to(torch.bfloat16).float()).float().mean() > 0.9  # stored: the nearest bf16 of it
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["exp_avg"].dtype == torch.bfloat16 and state["exp_avg_sq"].dtype == torch.bfloat16
    stochastic, _ = run("stochastic_rounding")
    assert share_of_motion(stochastic) == pytest.approx(1.0, abs=0.15)  # unbiased: the motion is kept on average


def test_state_dict_round_trip_resumes_exactly():
    torch.manual_seed(0)
    grads = [torch.randn(32, 8) for _ in range(6)]

    def make():
        p = torch.nn.Parameter(torch.linspace(-1, 1, 256).view(32, 8).to(torch.bfloat16))
        return p, CompensatedBF16Optimizer(torch.optim.AdamW([p], lr=1e-3), "kahan" if kahan else "stochastic_rounding")

    for kahan in (True, False):
        p_full, full = make()
        for g in grads:
            p_full.grad = g.to(torch.bfloat16)
            full.step()
        p_a, a = make()
        for g in grads[:3]:
            p_a.grad = g.to(torch.bfloat16)
            a.step()
        saved, weights = a.state_dict(), p_a.detach().clone()
        p_b, b = make()
        with torch.no_grad():
            p_b.copy_(weights)
        b.load_state_dict(saved)
        for g in grads[3:]:
            p_b.grad = g.to(torch.bfloat16)
            b.step()
        assert torch.equal(p_b, p_full), kahan  # same operations on the same tensors: bit-exact


def test_fp32_parameters_pass_through_unchanged():
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    plain = torch.optim.SGD([a], lr=0.1)
    wrapped = CompensatedBF16Optimizer(torch.optim.SGD([b], lr=0.1), "stochastic_rounding")
    for opt, p in ((plain, a), (wrapped, b)):
        p.grad = torch.tensor([1.0, 2.0, 3.0])
        opt.step()
    assert torch.equal(a, b) and b.dtype == torch.float32
    with pytest.raises(ValueError, match="bf16 update must be one of"):
        CompensatedBF16Optimizer(torch.optim.SGD([b], lr=0.1), "round")


def test_wraps_bitsandbytes_8bit_adamw_keeping_8bit_states():
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    w0 = torch.randn(64, 128).to(torch.bfloat16)  # 8192 elements: real 8-bit (blockwise) states
    grads = [torch.randn(64, 128) for _ in range(20)]
    results = {}
    for update in ("nearest", "stochastic_rounding"):
        p = torch.nn.Parameter(w0.clone())
        opt = CompensatedBF16Optimizer(bnb.optim.AdamW8bit([p], lr=3e-5), update, seed=0)
        for g in grads:
            p.grad = g.to(torch.bfloat16)
            opt.step()
        assert p.dtype == torch.bfloat16
        state = opt.state[p]
        assert any(v.dtype == torch.uint8 for v in state.values() if isinstance(v, torch.Tensor))
        results[update] = (p.detach().float() - w0.float()).abs().mean().item()
    assert results["stochastic_rounding"] > 3 * results["nearest"]  # the small steps survive only with rounding
