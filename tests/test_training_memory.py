"""The training-step memory model: the live-bytes tracker, optimizer-state counts, the estimate's parts."""

import pytest
import torch

from edit2perceive.training.memory import LiveBytesTracker, estimate_training_memory, optimizer_state_bytes


def test_live_bytes_tracker_peak_by_hand():
    tracker = LiveBytesTracker()
    weight = torch.ones(1000)
    tracker.ignore(weight)
    with tracker:
        a = torch.zeros(1000)  # 4000 B
        b = a + 1  # 8000 B live
        view = weight.view(10, 100)  # a view of existing memory: nothing new
        del a  # 4000 B live
        c = torch.zeros(250)  # 5000 B live
    assert tracker.peak() == 8000
    assert tracker.peak(exclude={tracker.key_of(b)}) == 4000
    assert tracker.key_of(view) == -1 and c.numel() == 250


def test_optimizer_state_bytes_by_hand():
    assert optimizer_state_bytes([torch.empty(64, 128)], "adamw_bnb_8bit", torch.bfloat16) == 2 * 8192 + 8 * 32
    assert optimizer_state_bytes([100], "adamw_bnb_8bit", torch.bfloat16) == 800  # small: fp32 moments
    assert optimizer_state_bytes([10], "adamw_torch", torch.bfloat16) == 40  # moments in the weights' dtype
    assert optimizer_state_bytes([10], "adamw_torch", torch.float32) == 80


@pytest.mark.slow
def test_estimate_parts_follow_the_configuration():
    from diffusers import FluxTransformer2DModel

    from edit2perceive.testing import tiny_transformer_config, tiny_vae_config

    dit, vae = tiny_transformer_config(), tiny_vae_config()
    params = sum(p.numel() for p in FluxTransformer2DModel(**dit).parameters())

    def est(**kw):
        return estimate_training_memory(dit, vae, **{"batch_size": 1, "height": 64, "width": 64, **kw})

    one = est()
    assert one.weights == one.gradients == 2 * params  # bf16 weights and gradients
    assert one.compensation == 0 and est(bf16_update="kahan").compensation == 2 * params
    assert est(master_weights="fp32", optim="adamw_torch").optimizer_states == 8 * params
    assert one.total == sum([one.weights, one.gradients, one.optimizer_states, one.frozen, one.activations])
    four = est(batch_size=4)
    assert 3.0 < four.activations / one.activations < 4.5  # activations scale with the batch
    assert est(gradient_checkpointing=False, batch_size=4).activations > four.activations
    assert est(pixel_loss=False).activations < one.activations  # the VAE decode's backward costs memory
    with pytest.raises(ValueError, match="multiples of 16"):
        est(height=60)
