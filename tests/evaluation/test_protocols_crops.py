"""Protocol tables, crop indices (computed by hand), the KITTI GT rule and oracle points."""

import numpy as np
import pytest
from e2p_dataset_fixtures import kitti_line

from edit2perceive.evaluation import make_protocol, oracle_points, resolve_alignment
from edit2perceive.evaluation.crops import eval_crop_mask, kb_crop_box, kitti_eigen_crop
from edit2perceive.evaluation.depth_kitti import kitti_split_entries


def test_kitti_crops_for_a_375x1242_image():
    # KB crop: top = 375 - 352 = 23, left = (1242 - 1216) // 2 = 13
    assert kb_crop_box(375, 1242) == (23, 375, 13, 1229)
    # Eigen crop on the KB-cropped 352 x 1216 canvas (Marigold):
    # int(0.3324324*352)=int(117.016)=117, int(0.91351351*352)=int(321.557)=321,
    # int(0.0359477*1216)=int(43.712)=43, int(0.96405229*1216)=int(1172.29)=1172
    assert kitti_eigen_crop(352, 1216) == (117, 321, 43, 1172)
    # ... on the full 375 x 1242 canvas (Edit2Perceive):
    # int(124.66)=124, int(342.57)=342, int(44.65)=44, int(1197.35)=1197
    assert kitti_eigen_crop(375, 1242) == (124, 342, 44, 1197)
    m = eval_crop_mask("kitti_eigen", (352, 1216))
    assert m.sum() == (321 - 117) * (1172 - 43) and m[117, 43] and not m[116, 43] and not m[117, 1172]


def test_nyu_eigen_crop():
    m = eval_crop_mask("nyu_eigen", (480, 640))
    assert m.sum() == (471 - 45) * (601 - 41) and m[45, 41] and m[470, 600] and not m[471, 600] and not m[44, 41]
    with pytest.raises(ValueError, match="480 x 640"):
        eval_crop_mask("nyu_eigen", (240, 320), "x.png")


def test_kitti_652_of_697_rule():
    lines = [kitti_line(i, with_gt=(i % 15 != 7 or i >= 45 * 15)) for i in range(697)]
    assert sum(d == "None" for _, d in lines) == 45
    keep, skipped = kitti_split_entries([[r, d, "721.5377"] for r, d in lines])
    assert len(keep) == 652 and len(skipped) == 45
    assert all(reason.startswith("no ground truth") for _, reason in skipped)
    assert keep[0][2] == pytest.approx(721.5377)


def test_protocol_variants():
    m = make_protocol("depth", "kitti")
    e = make_protocol("depth", "kitti", "edit2perceive")
    assert m.kb_crop and not e.kb_crop and m.eval_crop == e.eval_crop == "kitti_eigen"
    assert (m.valid_min, m.valid_max, m.min_valid_pixels, e.min_valid_pixels) == (1e-5, 80.0, 0, 100)
    d, de = make_protocol("depth", "diode"), make_protocol("depth", "diode", "edit2perceive")
    assert (d.min_depth, d.max_depth, d.use_dataset_mask, d.valid_max) == (0.6, 350.0, True, None)
    assert (de.max_depth, de.valid_max) == (80.0, 80.0)
    assert make_protocol("depth", "eth3d").fit_max_side == 1024
    n, ne = make_protocol("normal", "ibims"), make_protocol("normal", "ibims-1", "edit2perceive")
    assert (n.gt_min_norm, n.flip_gt_x, n.aggregation) == (0.0, False, "pooled")
    assert (ne.gt_min_norm, ne.flip_gt_x, ne.aggregation) == (1e-3, True, "per_image")
    mt = make_protocol("matting", "p3m")
    assert (mt.dataset, mt.region, mt.num_points, mt.point_seed, mt.point_threshold) == ("p3m500np", "image", 10, 42, 0.8)
    assert make_protocol("normal", "nyu", aggregation="per_image").aggregation == "per_image"
    with pytest.raises(ValueError, match="unknown depth dataset"):
        make_protocol("depth", "ibims")
    with pytest.raises(ValueError, match="protocol must be one of"):
        make_protocol("depth", "nyuv2", "midas")
    with pytest.raises(ValueError, match="unknown protocol field"):
        make_protocol("depth", "nyuv2", crop="x")
    with pytest.raises(ValueError, match="aggregation must be one of"):
        make_protocol("normal", "nyuv2", aggregation="median")
    assert make_protocol("depth", "eth3d").to_dict()["max_depth"] == "inf"


def test_alignment_follows_the_model_encoding():
    p = make_protocol("depth", "nyuv2")
    assert resolve_alignment(p, "sqrt") == "least_squares_sqrt"
    assert resolve_alignment(p, "disparity") == "least_squares_disparity"
    assert resolve_alignment(p, "uniform") == "least_squares"
    assert resolve_alignment(p, None) == "least_squares"
    with pytest.raises(ValueError, match="no automatic alignment for depth encoding 'log'"):
        resolve_alignment(p, "log")
    assert resolve_alignment(make_protocol("depth", "nyuv2", alignment="least_squares"), "sqrt") == "least_squares"
    assert resolve_alignment(make_protocol("depth", "nyuv2", alignment="none"), "sqrt") is None


def test_oracle_points():
    alpha = np.zeros((30, 40))
    alpha[5:15, 10:30] = 0.9
    alpha[20, 5] = 0.8  # not > 0.8
    pts, fallback = oracle_points(alpha)
    assert len(pts) == 10 and len(set(pts)) == 10 and not fallback
    assert all(alpha[y, x] > 0.8 for x, y in pts)
    assert oracle_points(alpha) == (pts, False)  # seed 42 per image: reproducible
    assert oracle_points(alpha, seed=7)[0] != pts
    small = np.zeros((4, 4))
    small[1, 2], small[3, 0] = 1.0, 0.9
    assert sorted(oracle_points(small)[0]) == [(0, 3), (2, 1)]  # fewer candidates than 10: all
    low = np.zeros((4, 4))
    low[2, 3] = 0.5
    assert oracle_points(low) == ([(3, 2)], True)  # none above 0.8: argmax, flagged
