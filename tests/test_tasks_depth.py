"""Depth task: encodings, round trips, SSI-L1 loss, masks and bad input."""

import numpy as np
import pytest
import torch

from edit2perceive.tasks import DepthTask, get_task
from edit2perceive.tasks.depth import DEPTH_ENCODINGS, scale_shift_invariant_l1


def test_prompt_exact():
    assert get_task("depth").prompt == "Transform to depth map while maintaining original composition"


def test_sqrt_encoding_hand_computed():
    depth = np.array([[1.0, 4.0, 9.0, 16.0, 25.0]])  # sqrt: 1..5
    y, mask, (lo, hi) = DepthTask().encode_depth(depth)
    # numpy's linear percentile of [1,2,3,4,5]: p2 = 1 + 0.02*4 = 1.08, p98 = 4.92
    assert (lo, hi) == pytest.approx((1.08, 4.92))
    expected = np.clip(((np.arange(1, 6) - 1.08) / 3.84 - 0.5) * 2, -1, 1)
    np.testing.assert_allclose(y[0], expected, atol=1e-6)
    assert y[0, 2] == pytest.approx(0.0, abs=1e-6)  # the median maps to the middle
    assert mask.all()


@pytest.mark.parametrize("encoding", DEPTH_ENCODINGS)
def test_roundtrip_inside_percentile_range(encoding):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 20.0, size=(32, 48))
    task = DepthTask(encoding=encoding)
    y, mask, stats = task.encode_depth(depth)
    assert y.min() >= -1 and y.max() <= 1
    back = task.decode_depth(y, stats)
    inside = np.abs(y) < 1  # pixels not clipped by the 2/98 percentiles
    assert inside.mean() > 0.9
    np.testing.assert_allclose(back[inside], depth[inside], rtol=1e-5)


def test_disparity_inverts_order_and_others_preserve_it():
    depth = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    for encoding in ("sqrt", "uniform", "log"):
        y = DepthTask(encoding=encoding).encode_depth(depth)[0][0]
        assert np.all(np.diff(y) >= 0)
    y = DepthTask(encoding="disparity").encode_depth(depth)[0][0]
    assert np.all(np.diff(y) <= 0)


def test_invalid_pixels_are_excluded_from_the_percentiles():
    rng = np.random.default_rng(1)
    depth = rng.uniform(1, 5, size=(16, 16))
    valid = rng.random((16, 16)) > 0.3
    task = DepthTask()
    ref, _, ref_stats = task.encode_depth(depth, valid)
    corrupted = depth.copy()
    corrupted[~valid] = 1e6  # garbage under the mask must not move the percentiles
    enc = task.encode_target(corrupted, valid)
    assert enc.stats["p_lo"] == ref_stats[0] and enc.stats["p_hi"] == ref_stats[1]
    assert enc.image.shape == (3, 16, 16)
    assert torch.equal(enc.mask, torch.from_numpy(valid))
    assert (enc.image[:, ~enc.mask] == 1).all()  # masked but measured (1e6 m): the clipped value, far
    np.testing.assert_allclose(enc.image[0].numpy()[valid], ref[valid])


def test_nan_inf_and_nonpositive_depth_become_invalid():
    depth = np.array([[np.nan, np.inf, -1.0, 0.0, 2.0, 3.0]])
    enc = DepthTask().encode_target(depth)
    assert enc.mask.tolist() == [[False, False, False, False, True, True]]
    assert torch.isfinite(enc.image).all()


def test_all_invalid_depth_raises_clear_error():
    with pytest.raises(ValueError, match="no valid pixel"):
        DepthTask().encode_target(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="no valid pixel"):
        DepthTask().encode_target(np.ones((4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="shape"):
        DepthTask().encode_target(np.ones((4, 4)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="encoding"):
        DepthTask(encoding="cubic")


def test_constant_depth_encodes_to_mid_range():
    enc = DepthTask().encode_target(np.full((4, 5), 3.0))
    assert torch.equal(enc.image, torch.zeros(3, 4, 5))


def test_decode_channel_mean_to_unit_range():
    pixels = torch.stack([torch.full((2, 2), v) for v in (-1.0, 0.0, 1.0)]).unsqueeze(0)  # mean 0
    assert torch.allclose(DepthTask().decode(pixels), torch.full((1, 2, 2), 0.5))
    assert DepthTask().decode(torch.full((1, 3, 1, 1), 3.0)).item() == 1.0  # clamped


def test_ssi_l1_hand_computed_against_numpy_lstsq():
    pred = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    target = torch.tensor([[[0.0, 2.0, 4.0, 7.0]]])
    a = np.stack([pred.numpy().ravel(), np.ones(4)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, target.numpy().ravel(), rcond=None)
    expected = np.abs(target.numpy().ravel() - (s * pred.numpy().ravel() + t)).mean()
    loss = scale_shift_invariant_l1(pred, target, torch.ones(1, 1, 4, dtype=torch.bool))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # by hand: s = cov/var = 11.5/5 = 2.3, t = 3.25 - 2.3 * 1.5 = -0.2; fit -0.2, 2.1, 4.4, 6.7
    # residuals 0.2, 0.1, 0.4, 0.3 -> mean 0.25
    assert loss.item() == pytest.approx(0.25, rel=1e-5)


def test_ssi_l1_invariant_to_positive_affine_change():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 16, 16, generator=g)
    target = torch.rand(3, 16, 16, generator=g)
    mask = torch.rand(3, 16, 16, generator=g) > 0.2
    ref = scale_shift_invariant_l1(pred, target, mask)
    for scale, shift in [(0.01, 0.0), (3.0, -2.0), (250.0, 40.0)]:
        got = scale_shift_invariant_l1(scale * pred + shift, target, mask)
        assert got.item() == pytest.approx(ref.item(), rel=1e-4)
    # a perfect affine copy of the target scores zero
    assert scale_shift_invariant_l1(0.5 * target + 0.1, target, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_ssi_l1_ignores_invalid_pixels():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g)
    mask = torch.rand(2, 8, 8, generator=g) > 0.5
    ref = scale_shift_invariant_l1(pred, target, mask)
    pred2 = torch.where(mask, pred, torch.full_like(pred, 1e4))
    target2 = torch.where(mask, target, torch.full_like(target, -1e4))
    assert scale_shift_invariant_l1(pred2, target2, mask).item() == pytest.approx(ref.item(), rel=1e-6)


def test_ssi_l1_constant_prediction_and_empty_masks():
    target = torch.tensor([[[1.0, 2.0, 3.0, 6.0]]])
    pred = torch.full_like(target, 0.7, requires_grad=True)
    loss = scale_shift_invariant_l1(pred, target, torch.ones_like(target, dtype=torch.bool))
    assert loss.item() == pytest.approx(np.abs(np.array([1, 2, 3, 6]) - 3.0).mean())  # s = 0, t = mean
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    # an image with no valid pixel is left out of the batch mean
    both = torch.cat([target, target * 0 + 5])
    mask = torch.tensor([[[True] * 4], [[False] * 4]])
    pred2 = torch.cat([pred.detach(), pred.detach()])
    assert scale_shift_invariant_l1(pred2, both, mask).item() == pytest.approx(loss.item())
    # nothing valid at all: zero, attached to the graph
    p = torch.rand(1, 1, 4, requires_grad=True)
    empty = scale_shift_invariant_l1(p, target, torch.zeros(1, 1, 4, dtype=torch.bool))
    assert empty.item() == 0.0
    empty.backward()
    assert torch.equal(p.grad, torch.zeros_like(p))


def test_pixel_loss_uses_three_channel_images():
    task = DepthTask()
    enc = task.encode_target(np.random.default_rng(0).uniform(1, 4, (8, 8)))
    target = enc.image.unsqueeze(0)
    assert task.pixel_loss(target * 0.3 - 0.2, target, enc.mask.unsqueeze(0)).item() == pytest.approx(0, abs=1e-5)


def test_invalid_pixels_sky_is_far_and_holes_follow_hole_fill():
    """Virtual KITTI: sky is 655.35 m, masked by the valid range (< 80 m); the reference keeps the
    clipped normalised value there (far); holes (0 / NaN) are mid-range or, like the reference, near."""
    import numpy as np

    from edit2perceive.tasks import get_task

    depth = np.array([[1.0, 4.0, 9.0, 655.35], [0.0, np.nan, np.inf, 4.0]])
    valid = np.isfinite(depth) & (depth > 0.1) & (depth < 80.0)
    lo, hi = np.percentile(np.sqrt([1.0, 4.0, 9.0, 4.0]), [2, 98])
    inside = np.clip((np.sqrt([1.0, 4.0, 9.0]) - lo) / (hi - lo) * 2 - 1, -1, 1)
    for fill, hole in (("zero", 0.0), ("near", -1.0)):
        y, mask, _ = get_task("depth", hole_fill=fill).encode_depth(depth, valid)
        np.testing.assert_allclose(y[0, :3], inside, atol=1e-6)
        assert y[0, 3] == 1.0 and y[1, 2] == 1.0  # sky and +inf: far
        assert y[1, 0] == y[1, 1] == hole
        assert mask.tolist() == valid.tolist()
    y, _, _ = get_task("depth", encoding="disparity", hole_fill="near").encode_depth(depth, valid)
    assert y[0, 3] == -1.0 and y[1, 0] == 1.0  # disparity: far is low, near is high
    assert get_task("depth").config()["hole_fill"] == "near"  # measured (docs/training.md), the reference's
    with pytest.raises(ValueError, match="hole_fill"):
        get_task("depth", hole_fill="far")


def test_task_configs_name_every_option_and_rebuild_the_task():
    import json

    from edit2perceive.tasks import get_task

    depth = get_task("depth", encoding="log", lower_percentile=5, upper_percentile=95)
    assert json.dumps(depth.config()) == ('{"name": "depth", "encoding": "log", "lower_percentile": 5.0, '
                                          '"upper_percentile": 95.0, "hole_fill": "near"}')
    matting = get_task("matting", binarize=True, max_points=3, point_threshold=0.9)
    assert matting.config() == {"name": "matting", "binarize": True, "max_points": 3, "point_threshold": 0.9}
    assert get_task("normal").config() == {"name": "normal"}
    for task in (depth, matting):
        assert get_task(task.config()).config() == task.config()
        assert repr(get_task(task.config())) == repr(task)
