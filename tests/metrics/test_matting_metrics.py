"""Matting metrics: hand-computed MSE/MAD/SAD, Grad and Conn on tiny alphas, the Python-port
compatibility mode, and a loop-based second implementation of Grad."""

import math

import numpy as np
import pytest

from edit2perceive.metrics import MATTING_METRIC_NAMES, matting_metrics
from edit2perceive.metrics.matting import gaussian_gradient_kernels

SIGMA = 1.4


def test_mse_mad_sad_whole_image_and_trimap():
    pred = np.array([[0.0, 0.5], [1.0, 1.0]])
    gt = np.array([[0.0, 1.0], [1.0, 0.0]])
    m = matting_metrics(pred, gt)
    assert set(m) == set(MATTING_METRIC_NAMES)
    assert m["mse"] == pytest.approx((0.25 + 1.0) / 4)
    assert m["mad"] == pytest.approx(1.5 / 4)
    assert m["sad"] == pytest.approx(1.5 / 1000)
    trimap = np.array([[0, 128], [255, 128]], dtype=np.uint8)
    m = matting_metrics(pred, gt, trimap)
    assert m["mse"] == pytest.approx((0.25 + 1.0) / 2)
    assert m["mad"] == pytest.approx(0.75)
    assert m["sad"] == pytest.approx(1.5 / 1000)


def test_uint8_inputs_are_divided_by_255():
    gt = np.array([[0, 255]], dtype=np.uint8)
    assert matting_metrics(np.array([[0, 51]], dtype=np.uint8), gt)["mad"] == pytest.approx((1 - 0.2) / 2)


def test_gradient_kernel_is_9x9_and_unit_norm():
    hx, hy = gaussian_gradient_kernels(SIGMA)
    # h = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert hx.shape == (9, 9) and np.allclose(hy, hx.T)
    assert np.sum(hx**2) == pytest.approx(1.0)


def _ramp_gradient_magnitude(slope):
    """|grad| of f(r, c) = slope * c away from the border, derived by hand:
    gx = slope * (sum_i G(u_i)) * (sum_j u_j^2 G(u_j) / sigma^2) / N, gy = 0,
    N = sqrt(sum_i G(u_i)^2 * sum_j (u_j G(u_j) / sigma^2)^2)."""
    u = np.arange(-4, 5, dtype=float)
    G = np.exp(-u**2 / (2 * SIGMA**2)) / (SIGMA * math.sqrt(2 * math.pi))
    dG = -u * G / SIGMA**2
    norm = math.sqrt(np.sum(G**2) * np.sum(dG**2))
    return slope * G.sum() * np.sum(u**2 * G / SIGMA**2) / norm


def test_grad_on_a_ramp_matches_hand_derivation():
    h, w, slope = 12, 30, 1 / 40
    pred = np.tile(np.arange(w) * slope, (h, 1))
    gt = np.zeros((h, w))
    trimap = np.zeros((h, w), np.uint8)
    trimap[:, 4:w - 4] = 128  # columns at least 4 px from the border (replicate padding elsewhere)
    expected = trimap.astype(bool).sum() * _ramp_gradient_magnitude(slope) ** 2 / 1000
    assert matting_metrics(pred, gt, trimap)["grad"] == pytest.approx(expected, rel=1e-10)
    # the same ramp in both: zero gradient error; a constant offset has zero gradient
    assert matting_metrics(pred, pred)["grad"] == pytest.approx(0.0, abs=1e-15)
    assert matting_metrics(np.full((5, 5), 0.3), np.full((5, 5), 0.9))["grad"] == pytest.approx(0.0, abs=1e-15)


def _grad_loops(p, g):
    """Second, straightforward implementation: explicit convolution with replicate padding."""
    hx, hy = gaussian_gradient_kernels(SIGMA)
    half = hx.shape[0] // 2

    def mag(img):
        padded = np.pad(img, half, mode="edge")
        out = np.zeros_like(img)
        for r in range(img.shape[0]):
            for c in range(img.shape[1]):
                gx = gy = 0.0
                for i in range(2 * half + 1):
                    for j in range(2 * half + 1):
                        v = padded[r + 2 * half - i, c + 2 * half - j]  # convolution flips the kernel
                        gx += hx[i, j] * v
                        gy += hy[i, j] * v
                out[r, c] = math.hypot(gx, gy)
        return out

    return float(np.sum((mag(p) - mag(g)) ** 2) / 1000)


def test_grad_matches_loop_implementation():
    rng = np.random.default_rng(0)
    p, g = rng.uniform(size=(7, 9)), rng.uniform(size=(7, 9))
    assert matting_metrics(p, g)["grad"] == pytest.approx(_grad_loops(p, g), rel=1e-10)


def test_conn_single_pixel_object():
    # 5x5 zeros, centre pixel gt 1.0, pred 0.6. Levels: centre connected up to tau 0.6 -> l = 0.6,
    # others l = 0. phi_p(centre) = 1, phi_g(centre) = 1 - 0.4 = 0.6 -> Conn = 0.4 / 1000.
    pred, gt = np.zeros((5, 5)), np.zeros((5, 5))
    pred[2, 2], gt[2, 2] = 0.6, 1.0
    assert matting_metrics(pred, gt)["conn"] == pytest.approx(0.4 / 1000)
    assert matting_metrics(pred, gt, conn_mode="python_port")["conn"] == pytest.approx(0.4 / 1000)


def test_conn_largest_foreground_component_vs_python_port():
    # 1 x 2 image, pred [1, 0.3], gt [1, 1].
    # Correct (MATLAB): pixel B is connected for tau <= 0.3 (exact 3/10), so l_B = 0.3,
    #   phi_p = 1, phi_g = 1 - 0.7 = 0.3 -> Conn = 0.7 / 1000. Pixel A stays at l = 1 -> 0.
    # Port: at tau 0.4 the foreground {A} ties the background {B}; argmax picks the background
    #   label, so A gets l = 0.3 and B ends at l = 1 -> every phi equal -> Conn = 0.
    pred, gt = np.array([[1.0, 0.3]]), np.array([[1.0, 1.0]])
    assert matting_metrics(pred, gt)["conn"] == pytest.approx(0.7 / 1000)
    assert matting_metrics(pred, gt, conn_mode="python_port")["conn"] == pytest.approx(0.0, abs=1e-15)


def test_conn_small_object_background_wins_in_port():
    # 5x5 zeros with a 2-pixel object: A (p = g = 1) and B (p = 0.6, g = 0.65) next to it.
    # Correct: l_B = 0.6 -> d_p = 0, d_g = 0.05 < 0.15 -> both phi = 1 -> Conn = 0.
    # Port: the 23-pixel background is the "largest component" -> l_B = 0 ->
    #   phi_p = 0.4, phi_g = 0.35 -> Conn = 0.05 / 1000.
    pred, gt = np.zeros((5, 5)), np.zeros((5, 5))
    pred[2, 2] = gt[2, 2] = 1.0
    pred[2, 3], gt[2, 3] = 0.6, 0.65
    assert matting_metrics(pred, gt)["conn"] == pytest.approx(0.0, abs=1e-15)
    assert matting_metrics(pred, gt, conn_mode="python_port")["conn"] == pytest.approx(0.05 / 1000)


def test_conn_counts_only_4_connectivity():
    # B is diagonal to A, so NOT connected: at tau 0.1 the components {A}, {B} tie and the
    # first label (A) wins -> l_B = 0: phi_p(B) = 1 - 0.3 = 0.7, phi_g(B) = 1 - 0.35 = 0.65
    # -> Conn = 0.05 / 1000. (With 8-connectivity l_B would be 0.3 and Conn 0.)
    pred = np.array([[1.0, 0.0], [0.0, 0.3]])
    gt = np.array([[1.0, 0.0], [0.0, 0.35]])
    assert matting_metrics(pred, gt)["conn"] == pytest.approx(0.05 / 1000)


def test_edge_cases():
    gt = np.array([[0.0, 1.0]])
    m = matting_metrics(np.array([[0.0, 1.0]]), gt, np.array([[0, 255]], np.uint8))  # no unknown pixel
    assert all(math.isnan(v) for v in m.values())
    with pytest.raises(ValueError, match=r"8-bit values\? divide by 255"):
        matting_metrics(np.array([[0.0, 200.0]]), gt)
    with pytest.raises(ValueError, match="non-finite"):
        matting_metrics(np.array([[np.nan, 1.0]]), gt)
    assert matting_metrics(np.array([[np.nan, 1.0]]), gt, nonfinite="mask")["mad"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="conn_mode"):
        matting_metrics(gt, gt, conn_mode="fast")
    with pytest.raises(ValueError, match="trimap has shape"):
        matting_metrics(gt, gt, np.zeros((3, 3), np.uint8))
    # shape mismatch: constant prediction resized stays constant
    assert matting_metrics(np.full((2, 3), 0.5), np.zeros((4, 6)))["mad"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="spatial size"):
        matting_metrics(np.full((2, 3), 0.5), np.zeros((4, 6)), resize=None)
