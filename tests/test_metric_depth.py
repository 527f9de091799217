"""Metric depth from affine-invariant predictions: exact recovery on synthetic scenes (known
depth), robustness to outliers, measurement formats and their errors."""

import numpy as np
import pytest

from edit2perceive.data import synthetic_scenes
from edit2perceive.outputs.metric_depth import (
    align_to_metric,
    depth_from_range,
    read_measurements,
    sample_bilinear,
)
from edit2perceive.tasks import get_task


@pytest.fixture(scope="module")
def scene():
    return synthetic_scenes(1, (48, 64), seed=3)[0]


def perfect_prediction(ex, encoding):
    """What an exact model outputs: the normalized encoding of the true depth (no clipping)."""
    task = get_task("depth", encoding=encoding, lower_percentile=0.0, upper_percentile=100.0)
    y, mask, _ = task.encode_depth(ex["depth"], ex["valid_mask"])
    return (y + 1) / 2, mask


def measurements_from(ex, n, seed, mask):
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(mask)
    pick = rng.choice(len(rows), size=n, replace=False)
    return np.stack([cols[pick], rows[pick], ex["depth"][rows[pick], cols[pick]]], axis=1).astype(np.float64)


@pytest.mark.parametrize("encoding", ["sqrt", "disparity", "log", "uniform"])
def test_least_squares_recovers_metric_depth(scene, encoding):
    pred, mask = perfect_prediction(scene, encoding)
    fit = align_to_metric(pred, measurements_from(scene, 6, 0, mask), encoding=encoding)
    np.testing.assert_allclose(fit.depth[mask], scene["depth"][mask], rtol=1e-4)
    assert fit.residual_rms < 1e-4 and fit.inliers.all() and fit.valid_mask[mask].all()


def test_robust_fits_ignore_outliers(scene):
    pred, mask = perfect_prediction(scene, "sqrt")
    meas = measurements_from(scene, 40, 1, mask)
    meas[:8, 2] *= np.random.default_rng(2).uniform(2.0, 4.0, 8)  # 20 % gross outliers (wrong returns)
    truth = scene["depth"][mask]

    def abs_rel(fit):
        return float(np.mean(np.abs(fit.depth[mask] - truth) / truth))

    plain = align_to_metric(pred, meas, method="least_squares")
    huber = align_to_metric(pred, meas, method="huber")
    ransac = align_to_metric(pred, meas, method="ransac")
    assert abs_rel(plain) > 0.1
    assert abs_rel(huber) < 0.25 * abs_rel(plain)
    assert abs_rel(ransac) < 1e-4
    assert not ransac.inliers[:8].any() and ransac.inliers[8:].all()
    assert ransac.residual_rms < 1e-3 and plain.residual_rms > 0.1


def test_sparse_map_csv_and_npy_inputs(scene, tmp_path):
    pred, mask = perfect_prediction(scene, "sqrt")
    meas = measurements_from(scene, 5, 4, mask)
    sparse = np.zeros(pred.shape, np.float32)
    sparse[meas[:, 1].astype(int), meas[:, 0].astype(int)] = meas[:, 2]
    (tmp_path / "m.csv").write_text("x,y,depth\n" + "\n".join(f"{x:g},{y:g},{float(d)!r}" for x, y, d in meas) + "\n")
    np.save(tmp_path / "sparse.npy", sparse)
    for source in (sparse, tmp_path / "m.csv", tmp_path / "sparse.npy", [tuple(r) for r in meas]):
        got = read_measurements(source, pred.shape)
        order = np.lexsort((got[:, 0], got[:, 1]))
        ref = meas[np.lexsort((meas[:, 0], meas[:, 1]))]
        np.testing.assert_allclose(got[order], ref, rtol=1e-6)
        fit = align_to_metric(pred, source)
        np.testing.assert_allclose(fit.depth[mask], scene["depth"][mask], rtol=1e-3)


def test_bad_measurements_are_named(tmp_path):
    pred = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    (tmp_path / "bad.csv").write_text("x,y,depth\n1,2,3\n4,five,6\n")
    with pytest.raises(ValueError, match=r"bad.csv:3"):
        read_measurements(tmp_path / "bad.csv", pred.shape)
    with pytest.raises(ValueError, match="outside the 16x16"):
        align_to_metric(pred, [(1, 1, 2.0), (20, 3, 4.0)])
    with pytest.raises(ValueError, match="depth > 0"):
        align_to_metric(pred, [(1, 1, 2.0), (2, 3, -1.0)])
    with pytest.raises(ValueError, match="at least 2"):
        align_to_metric(pred, [(1, 1, 2.0)])
    with pytest.raises(ValueError, match="same value"):
        align_to_metric(np.full((16, 16), 0.5), [(1, 1, 2.0), (3, 3, 4.0)])
    with pytest.raises(ValueError, match="must be 16 x 16"):
        read_measurements(np.zeros((8, 8)), pred.shape)
    with pytest.raises(ValueError, match="no such measurement file"):
        read_measurements(tmp_path / "missing.csv", pred.shape)


def test_sample_bilinear_and_range_default():
    img = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(sample_bilinear(img, np.array([0.5, 1.0, 0.0]), np.array([0.5, 0.0, 1.0])),
                               [1.5, 1.0, 2.0])
    d = depth_from_range(np.array([[0.0, 1.0]]), encoding="sqrt", near=1.0, far=9.0)
    np.testing.assert_allclose(d, [[1.0, 9.0]])
    np.testing.assert_allclose(depth_from_range(np.array([[0.5]]), encoding="sqrt", near=1.0, far=9.0), [[4.0]])
    np.testing.assert_allclose(depth_from_range(np.array([[0.0, 1.0]]), encoding="disparity", near=1.0, far=9.0),
                               [[9.0, 1.0]], rtol=1e-6)  # disparity: near is high
