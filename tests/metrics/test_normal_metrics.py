"""Normal metrics: known angles, invariance to vector length, edge cases."""

import math

import numpy as np
import pytest
import torch

from edit2perceive.metrics import NORMAL_METRIC_NAMES, normal_metrics

ANGLES = np.array([3.0, 6.0, 10.0, 20.0, 25.0, 40.0])


def rotated(angles_deg):
    t = np.radians(angles_deg)
    return np.stack([np.zeros_like(t), np.sin(t), np.cos(t)], axis=-1)


def test_known_angles():
    gt = rotated(ANGLES).reshape(2, 3, 3)
    pred = np.broadcast_to(np.array([0.0, 0.0, 1.0]), gt.shape)
    m = normal_metrics(pred, gt)
    assert set(m) == set(NORMAL_METRIC_NAMES)
    assert m["mean"] == pytest.approx(ANGLES.mean(), abs=1e-9)
    assert m["median"] == pytest.approx((10 + 20) / 2, abs=1e-9)
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean(ANGLES**2)), abs=1e-9)
    assert m["a5"] == pytest.approx(100 / 6)
    assert m["a7_5"] == pytest.approx(200 / 6)
    assert m["a11_25"] == pytest.approx(300 / 6)
    assert m["a22_5"] == pytest.approx(400 / 6)
    assert m["a30"] == pytest.approx(500 / 6)


def test_invariant_to_rescaling_vectors():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(10, 12, 3))
    pred = gt + rng.normal(scale=0.4, size=gt.shape)
    base = normal_metrics(pred, gt)
    scale = rng.uniform(0.1, 10, size=(10, 12, 1))
    scaled = normal_metrics(pred * scale, gt * 0.25)
    for k in NORMAL_METRIC_NAMES:
        assert scaled[k] == pytest.approx(base[k], rel=1e-9, abs=1e-9), k


def test_zero_prediction_is_ninety_degrees_and_opposite_is_180():
    gt = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    m = normal_metrics(np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, -2.0]]]), gt)
    assert m["mean"] == pytest.approx((90 + 180) / 2)


def test_mask_and_gt_norm_threshold():
    gt = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 5e-4, 0.0]]])
    pred = np.array([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert normal_metrics(pred, gt)["mean"] == pytest.approx(45.0)  # zero gt excluded, tiny gt kept
    assert normal_metrics(pred, gt, gt_min_norm=1e-3)["mean"] == pytest.approx(0.0, abs=1e-6)
    assert normal_metrics(pred, gt, np.array([[False, True, True]]))["mean"] == pytest.approx(90.0)


def test_empty_mask_nan_and_nonfinite_and_shapes():
    gt = np.zeros((2, 2, 3))
    assert all(math.isnan(v) for v in normal_metrics(np.ones((2, 2, 3)), gt).values())
    gt = rotated(np.array([0.0, 10.0])).reshape(1, 2, 3)
    pred = np.array([[[0.0, 0.0, 1.0], [np.nan, 0.0, 1.0]]])
    with pytest.raises(ValueError, match="non-finite"):
        normal_metrics(pred, gt)
    assert normal_metrics(pred, gt, nonfinite="mask")["mean"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="H x W x 3"):
        normal_metrics(np.ones((2, 2, 4)), np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="spatial size"):
        normal_metrics(np.ones((1, 1, 3)), gt, resize=None)
    assert normal_metrics(np.ones((1, 1, 3)), gt)["mean"] == pytest.approx(
        normal_metrics(np.ones((1, 2, 3)), gt)["mean"])


def test_torch_input():
    gt = rotated(ANGLES).reshape(1, 6, 3)
    pred = torch.tensor([0.0, 0.0, 1.0]).expand(1, 6, 3)
    assert normal_metrics(pred[None], torch.from_numpy(gt))["mean"] == pytest.approx(ANGLES.mean(), abs=1e-4)
