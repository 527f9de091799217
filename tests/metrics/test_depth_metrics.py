"""Depth metrics: hand-computed values, invariances, edge cases (PROTOCOLS.md)."""

import math

import numpy as np
import pytest
import torch

from edit2perceive.metrics import DEPTH_METRIC_NAMES, depth_metrics, fit_scale_shift


def test_known_values_without_alignment():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    pred = np.array([[1.0, 1.0], [5.0, 8.0]])
    m = depth_metrics(pred, gt, alignment=None, min_depth=1e-3, max_depth=10.0)
    assert set(m) == set(DEPTH_METRIC_NAMES)
    r = np.array([0.0, -math.log(2), math.log(1.25), 0.0])
    expected = {
        "abs_rel": (0 + 0.5 + 0.25 + 0) / 4,
        "sq_rel": (0 + 1 / 2 + 1 / 4 + 0) / 4,
        "rmse": math.sqrt(2 / 4),
        "rmse_log": math.sqrt((math.log(2) ** 2 + math.log(1.25) ** 2) / 4),
        "log10": (math.log10(2) + math.log10(1.25)) / 4,
        "delta1": 0.5,  # ratios 1, 2, 1.25, 1: 1.25 is NOT < 1.25 (strict)
        "delta2": 0.75,
        "delta3": 0.75,
        "i_rmse": math.sqrt((0.5**2 + 0.05**2) / 4),
        "silog": 100 * math.sqrt(np.mean(r**2) - np.mean(r) ** 2),
    }
    for k, v in expected.items():
        assert m[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


def test_least_squares_known_fit():
    # fit of [0, 0, 1, 1] to [1, 3, 5, 5]: s = 3, t = 2 -> aligned [2, 2, 5, 5]
    pred = np.array([[0.0, 0.0, 1.0, 1.0]])
    gt = np.array([[1.0, 3.0, 5.0, 5.0]])
    assert fit_scale_shift(pred.ravel(), gt.ravel()) == pytest.approx((3.0, 2.0))
    m = depth_metrics(pred, gt, alignment="least_squares")
    assert m["abs_rel"] == pytest.approx((1 + 1 / 3) / 4)
    assert m["delta1"] == pytest.approx(0.5)  # 2 vs 1 and 2 vs 3 (ratio 1.5) fail


def test_fit_matches_numpy_lstsq_including_rank_deficient():
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=50), rng.normal(size=50) + 3
    A = np.stack([p, np.ones_like(p)], axis=1)
    assert fit_scale_shift(p, y) == pytest.approx(tuple(np.linalg.lstsq(A, y, rcond=None)[0]), rel=1e-9)
    c = np.full(50, 0.7)  # constant prediction: minimum-norm solution, like lstsq
    A = np.stack([c, np.ones_like(c)], axis=1)
    assert fit_scale_shift(c, y) == pytest.approx(tuple(np.linalg.lstsq(A, y, rcond=None)[0]), rel=1e-9)


def test_constant_prediction_gives_mean_depth():
    gt = np.array([[1.0, 2.0], [3.0, 6.0]])
    m = depth_metrics(np.full((2, 2), 0.7), gt)  # aligned = mean(gt) = 3 everywhere
    assert m["abs_rel"] == pytest.approx((2 / 1 + 1 / 2 + 0 + 3 / 6) / 4)


def test_disparity_and_sqrt_alignment_recover_exact_depth():
    gt = np.array([[1.0, 2.0, 4.0]])
    m = depth_metrics(np.array([[4.0, 2.0, 1.0]]), gt, alignment="least_squares_disparity")  # disparity * 4
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12) and m["delta1"] == 1.0
    gt = np.array([[1.0, 4.0, 9.0]])
    m = depth_metrics(2 * np.sqrt(gt) + 1, gt, alignment="least_squares_sqrt")
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    # the same sqrt-encoded prediction fitted in depth space is not exact
    assert depth_metrics(2 * np.sqrt(gt) + 1, gt, alignment="least_squares")["abs_rel"] > 1e-3


def test_clipping_to_depth_range():
    gt = np.array([[1.0, 1.0]])
    m = depth_metrics(np.array([[20.0, 1.0]]), gt, alignment=None, min_depth=1e-3, max_depth=10.0)
    assert m["abs_rel"] == pytest.approx((9.0 + 0.0) / 2)
    m = depth_metrics(np.array([[-5.0, 1.0]]), gt, alignment=None, min_depth=0.5, max_depth=10.0)
    assert m["abs_rel"] == pytest.approx((0.5 + 0.0) / 2)
    # disparity alignment producing negative disparity: clipped to 1e-3 -> 1000 m -> max_depth
    gt = np.array([[1.0, 2.0, 4.0, 4.0]])
    pred = np.array([[4.0, 2.0, 1.0, -30.0]])
    mask = np.array([[True, True, True, False]])
    m = depth_metrics(pred, gt, mask, alignment="least_squares_disparity", max_depth=10.0)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)  # masked pixel never enters


@pytest.mark.parametrize("alignment", ["least_squares", "least_squares_disparity", "least_squares_sqrt"])
@pytest.mark.parametrize("a,b", [(3.0, 0.5), (0.2, -4.0), (-1.5, 2.0)])
def test_invariant_to_affine_change_of_prediction(alignment, a, b):
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 8.0, size=(24, 32))
    pred = 1.0 / gt + rng.normal(scale=0.05, size=gt.shape) if alignment.endswith("disparity") else \
        np.sqrt(gt) + rng.normal(scale=0.1, size=gt.shape)
    mask = rng.uniform(size=gt.shape) > 0.2
    m1 = depth_metrics(pred, gt, mask, alignment=alignment)
    m2 = depth_metrics(a * pred + b, gt, mask, alignment=alignment)
    for k in DEPTH_METRIC_NAMES:
        assert m2[k] == pytest.approx(m1[k], rel=1e-8, abs=1e-12), k


def test_torch_and_numpy_agree_and_batch_dim_dropped():
    rng = np.random.default_rng(2)
    gt = rng.uniform(1, 5, size=(8, 9))
    pred = gt * 0.5 + rng.normal(scale=0.1, size=gt.shape)
    a = depth_metrics(pred, gt)
    b = depth_metrics(torch.from_numpy(pred).float()[None], torch.from_numpy(gt), torch.ones(8, 9, dtype=torch.bool))
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-5)


def test_empty_mask_is_nan_not_zero():
    gt = np.ones((4, 4))
    m = depth_metrics(np.ones((4, 4)), gt, np.zeros((4, 4), bool))
    assert all(math.isnan(v) for v in m.values())
    # gt <= 0 or non-finite pixels are never valid
    m = depth_metrics(np.ones((2, 2)), np.array([[0.0, np.nan], [-1.0, np.inf]]))
    assert all(math.isnan(v) for v in m.values())


def test_nonfinite_prediction_error_or_masked():
    gt = np.array([[1.0, 2.0, 3.0, 4.0]])
    pred = np.array([[1.0, 2.0, np.nan, 4.0]])
    with pytest.raises(ValueError, match=r"1 non-finite pixel.*\(0, 2\)"):
        depth_metrics(pred, gt)
    masked = depth_metrics(pred, gt, nonfinite="mask")
    explicit = depth_metrics(np.nan_to_num(pred), gt, np.array([[True, True, False, True]]))
    assert masked == pytest.approx(explicit)


def test_shape_mismatch_policy():
    gt = np.arange(1, 1 + 8 * 12, dtype=float).reshape(8, 12)
    with pytest.raises(ValueError, match=r"spatial size \(4, 6\).*\(8, 12\)"):
        depth_metrics(np.ones((4, 6)), gt, resize=None)
    # bilinear resize of a constant stays constant: same as the full-size constant prediction
    assert depth_metrics(np.full((4, 6), 0.3), gt) == pytest.approx(depth_metrics(np.full((8, 12), 0.3), gt))
    with pytest.raises(ValueError, match="valid_mask has shape"):
        depth_metrics(np.ones((8, 12)), gt, np.ones((4, 4), bool))


def test_fit_on_downsampled_copy_applies_at_full_resolution():
    rng = np.random.default_rng(3)
    gt = rng.uniform(1, 20, size=(300, 400))
    pred = (gt - 2.0) / 7.0  # exactly affine: any subsample recovers s, t
    m = depth_metrics(pred, gt, alignment="least_squares", max_depth=100.0, fit_max_side=64)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-10)
    noisy = pred + rng.normal(scale=0.3, size=gt.shape)
    full = depth_metrics(noisy, gt, max_depth=100.0)
    sub = depth_metrics(noisy, gt, max_depth=100.0, fit_max_side=64)
    assert sub["abs_rel"] != full["abs_rel"] and sub["abs_rel"] == pytest.approx(full["abs_rel"], rel=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="alignment must be one of"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), alignment="median")
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), min_depth=5, max_depth=1)
