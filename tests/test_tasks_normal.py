"""Normal task: unit encoding, camera convention, the atan2 angular loss."""

import math

import numpy as np
import pytest
import torch

from edit2perceive.tasks import NormalTask, get_task
from edit2perceive.tasks.normal import angular_error_atan2


def test_prompt_exact():
    assert get_task("normal").prompt == "Transform to normal map while maintaining original composition"


def test_encode_unit_normalizes_and_masks_bad_vectors():
    n = np.array([[[0.0, 0.0, 2.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [np.nan, 0.0, 1.0]]])  # 1 x 4 x 3
    enc = NormalTask().encode_target(n)
    assert enc.image.shape == (3, 1, 4)
    assert enc.mask.tolist() == [[True, True, False, False]]
    np.testing.assert_allclose(enc.image[:, 0, 0], [0, 0, 1])
    np.testing.assert_allclose(enc.image[:, 0, 1], [0.6, 0.8, 0])
    assert (enc.image[:, 0, 2:] == 0).all()
    # a user mask is honoured too
    enc = NormalTask().encode_target(n, np.array([[False, True, True, True]]))
    assert enc.mask.tolist() == [[False, True, False, False]]
    with pytest.raises(ValueError, match="H x W x 3"):
        NormalTask().encode_target(np.zeros((4, 4)))


def test_decode_roundtrip_and_channel_convention():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(6, 5, 3))
    n[..., 2] = np.abs(n[..., 2])  # facing the camera: z toward the viewer is positive
    enc = NormalTask().encode_target(n)
    dec = NormalTask().decode(enc.image.unsqueeze(0) * 0.7)  # the decoder may shrink vectors
    assert dec.shape == (1, 6, 5, 3)
    unit = n / np.linalg.norm(n, axis=-1, keepdims=True)
    np.testing.assert_allclose(dec[0].numpy(), unit, atol=1e-6)
    # R, G, B channels carry x, y, z
    pixels = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    assert NormalTask().decode(pixels)[0, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_atan2_matches_arccos_away_from_collinear():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 32, 32, generator=g), torch.randn(1, 3, 32, 32, generator=g)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    reference = torch.arccos(cos.clamp(-1, 1))
    torch.testing.assert_close(angular_error_atan2(a, b), reference, atol=1e-5, rtol=1e-5)
    x, y = torch.tensor([[1.0, 0, 0]]), torch.tensor([[0, 1.0, 0]])
    assert angular_error_atan2(x, y).item() == pytest.approx(math.pi / 2)
    assert angular_error_atan2(-x, x).item() == pytest.approx(math.pi)


def test_atan2_gradient_finite_for_collinear_where_arccos_is_not():
    target = torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    pred = (target * torch.tensor([[2.0], [0.5]])).requires_grad_(True)  # exactly collinear
    angular_error_atan2(pred, target).sum().backward()
    assert torch.isfinite(pred.grad).all()

    pred2 = (target * torch.tensor([[2.0], [0.5]])).requires_grad_(True)
    cos = (pred2 * target).sum(-1) / pred2.norm(dim=-1)
    torch.arccos(cos.clamp(-1, 1)).sum().backward()
    assert not torch.isfinite(pred2.grad).all()  # the failure atan2 avoids


def test_loss_scale_invariant_and_masked():
    g = torch.Generator().manual_seed(1)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 8, 8, generator=g), dim=1)
    pred = torch.randn(2, 3, 8, 8, generator=g)
    mask = torch.rand(2, 8, 8, generator=g) > 0.4
    task = NormalTask()
    ref = task.pixel_loss(pred, target, mask)
    assert task.pixel_loss(pred * 3.0, target, mask).item() == pytest.approx(ref.item(), rel=1e-5)
    garbage = torch.where(mask.unsqueeze(1), pred, -target)  # worst case under the mask: no effect
    assert task.pixel_loss(garbage, target, mask).item() == pytest.approx(ref.item(), rel=1e-6)
    expected = angular_error_atan2(pred, target)[mask].mean()
    assert ref.item() == pytest.approx(expected.item(), rel=1e-6)
    assert task.pixel_loss(target, target, mask).item() == pytest.approx(0.0, abs=1e-3)


def test_loss_with_no_valid_pixel_is_zero_and_differentiable():
    pred = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = NormalTask().pixel_loss(pred, torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
