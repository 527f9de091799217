"""Matting task: alpha encoding, point prompts, trimap regions and the two-region L1."""

import numpy as np
import pytest
import torch

from edit2perceive.tasks import MattingTask, get_task
from edit2perceive.tasks.matting import (
    point_map_image,
    point_rng,
    point_sigma,
    render_point_map,
    sample_points,
    trimap_regions,
)


def square_alpha(h=40, w=60):
    a = np.zeros((h, w), dtype=np.float32)
    a[10:30, 20:40] = 1.0
    return a


def test_prompt_and_contexts():
    task = get_task("matting")
    assert task.prompt == "Transform to matting map while maintaining original composition"
    assert task.num_context_images == 2


def test_encode_continuous_and_binarized():
    alpha = np.array([[0.0, 0.25, 0.5, 0.75, 1.0]], dtype=np.float32)
    enc = MattingTask().encode_target(alpha)
    assert enc.image.shape == (3, 1, 5)
    np.testing.assert_allclose(enc.image[1, 0], [-1, -0.5, 0, 0.5, 1])
    enc = MattingTask(binarize=True).encode_target(alpha)
    np.testing.assert_allclose(enc.image[0, 0], [-1, -1, -1, 1, 1])  # alpha > 0.5
    np.testing.assert_allclose(MattingTask().decode(enc.image.unsqueeze(0))[0, 0], [0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MattingTask().encode_target(alpha * 255)


def test_sample_points_from_confident_foreground():
    alpha = np.zeros((50, 50), dtype=np.float32)
    alpha[5:15, 5:15] = 0.9
    alpha[30:40, 30:40] = 0.7  # below the 0.8 threshold: never sampled
    counts = set()
    for epoch in range(30):
        pts = sample_points(alpha, point_rng(42, 3, epoch))
        counts.add(len(pts))
        assert 1 <= len(pts) <= 10
        assert (alpha[pts[:, 1], pts[:, 0]] > 0.8).all()  # (x, y) -> alpha[y, x]
        assert len({tuple(p) for p in pts}) == len(pts)
    assert len(counts) > 3  # the count varies
    np.random.seed(0)
    a = sample_points(alpha, point_rng(42, 3, 1))
    np.random.seed(1)  # the global RNG plays no part
    assert np.array_equal(a, sample_points(alpha, point_rng(42, 3, 1)))
    assert not np.array_equal(a, sample_points(alpha, point_rng(42, 3, 2)))  # fresh each epoch
    assert sample_points(np.zeros((5, 5)), point_rng(0, 0)).shape == (0, 2)


def test_render_point_map_values():
    pm = render_point_map([(10, 5)], 20, 30, sigma=2.0)
    assert pm.shape == (20, 30) and pm.dtype == np.float32
    assert pm[5, 10] == pytest.approx(1.0)
    assert pm[5, 12] == pytest.approx(np.exp(-0.5), rel=1e-6)  # one sigma to the right
    assert pm[7, 10] == pytest.approx(np.exp(-0.5), rel=1e-6)  # one sigma down
    two = render_point_map([(10, 5), (12, 5)], 20, 30, sigma=2.0)
    assert two[5, 12] == pytest.approx(1.0) and two[5, 11] == pytest.approx(np.exp(-1 / 8), rel=1e-6)  # max
    assert render_point_map([], 4, 4).max() == 0
    # a fraction of the side: the reference trains at 512 x 512 with sigma 20 px (3.9 %)
    assert point_sigma(512, 512) == 20.0 and point_sigma(300, 512) == 20.0
    assert point_sigma(768, 512) == 30.0 and point_sigma(96, 64) == 3.75
    with pytest.raises(ValueError, match="outside"):
        render_point_map([(30, 5)], 20, 30)
    img = point_map_image(pm)
    assert img.shape == (3, 20, 30) and img.min() >= -1 and img.max() == pytest.approx(1.0)


def test_trimap_regions_by_hand():
    alpha = torch.from_numpy(square_alpha()).unsqueeze(0)
    unknown, known = trimap_regions(alpha, radius=2)
    # foreground 20x20 eroded by 2 -> 16x16; background eroded -> outside the 24x24 dilation
    assert known.sum().item() == 16 * 16 + (40 * 60 - 24 * 24)
    assert unknown.sum().item() == 24 * 24 - 16 * 16
    assert unknown[0, 10, 20] and not unknown[0, 20, 30] and not unknown[0, 0, 0]


def test_matting_loss_regions():
    task = MattingTask()
    gt = torch.from_numpy(square_alpha(64, 64)).unsqueeze(0)
    target = (gt * 2 - 1).unsqueeze(1).expand(-1, 3, -1, -1)
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert task.pixel_loss(target, target, mask).item() == 0.0
    # an error of 0.5 (alpha units) everywhere: 0.5 from U plus 0.5 from K
    assert task.pixel_loss(target + 1.0, target, mask).item() == pytest.approx(1.0)
    # an error only inside the unknown band counts fully in the U term
    unknown, _ = trimap_regions(gt, radius=1)
    pred = torch.where(unknown.unsqueeze(1), target * 0, target)  # alpha 0.5 in U
    expected = (gt[unknown] - 0.5).abs().mean().item()
    assert task.pixel_loss(pred, target, mask).item() == pytest.approx(expected)
    # masked pixels never count
    assert task.pixel_loss(pred, target, mask & ~unknown).item() == 0.0


def test_get_task_options_and_errors():
    task = get_task("depth", encoding="log")
    assert get_task(task.config()).encoding == "log"
    assert get_task(task) is task
    with pytest.raises(ValueError, match="unknown task"):
        get_task("segmentation")
    with pytest.raises(TypeError):
        get_task("normal", encoding="sqrt")
