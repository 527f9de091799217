"""Oracle foreground points for point-prompted matting evaluation.

Protocol (recorded in every matting summary as :data:`POINT_PROTOCOL`): ``num_points``
pixels drawn uniformly without replacement from the ground-truth pixels with alpha >
``threshold``, by ``numpy.random.default_rng(seed)`` created afresh for every image (so a
sample's points do not depend on dataset order or on how the set is split over processes),
candidates in row-major order, at the image's original resolution, as ``(x, y)`` = (column,
row). Fewer candidates than ``num_points``: all of them. None: the single pixel of largest
alpha (flagged as a fallback in the per-image row).

Models with the reference conventions (``benchmark_points="reference"``) are scored with the
authors' own prompt instead (:func:`reference_point_map`, :data:`REFERENCE_POINT_PROTOCOL`).
"""

from __future__ import annotations

import numpy as np

POINT_PROTOCOL = ("{n} points uniformly without replacement from GT alpha > {t}, numpy default_rng({seed}) per image, "
                  "row-major candidates, (x, y) pixels at original resolution; none above threshold: argmax alpha")


REFERENCE_POINT_PROTOCOL = (
    "the authors' gen_points (utils/eval_multiple_datasets.py): {n} points from GT alpha > {t} by numpy "
    "RandomState({seed}) (their np.random.seed), row-major candidates, fewer than {n}: none (empty map); "
    "gaussian_filter'ed unit deltas of sigma 20 px on the original image, max-combined, then stretched bilinearly "
    "(no antialiasing, as cv2 INTER_LINEAR) to the processing size")


def reference_point_map(alpha: np.ndarray, num_points: int = 10, threshold: float = 0.8, seed: int = 42,
                        sigma: float = 20.0) -> tuple[np.ndarray, list[tuple[int, int]], bool]:
    """The authors' benchmark prompt for one ground-truth alpha ``H x W`` in [0, 1]:
    ``(point map H x W on the original image, [(x, y), ...], no_points)``; the pipeline
    stretches the map to its processing size (``pipe(image, point_maps=[map])``)."""
    from ..tasks.matting import gen_points_sample, render_reference_point_map

    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"alpha must be H x W, got shape {a.shape}")
    pts = gen_points_sample(a, num_points, threshold, seed)
    return render_reference_point_map(pts, *a.shape, sigma=sigma), [(int(x), int(y)) for x, y in pts], len(pts) == 0


def oracle_points(alpha: np.ndarray, num_points: int = 10, threshold: float = 0.8, seed: int = 42
                  ) -> tuple[list[tuple[int, int]], bool]:
    """``([(x, y), ...], fallback)`` for one ground-truth alpha ``H x W`` in [0, 1]."""
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"alpha must be H x W, got shape {a.shape}")
    ys, xs = np.nonzero(a > threshold)
    if len(xs) == 0:
        y, x = np.unravel_index(int(np.argmax(a)), a.shape)
        return [(int(x), int(y))], True
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(xs), size=min(num_points, len(xs)), replace=False)
    return [(int(xs[i]), int(ys[i])) for i in pick], False
