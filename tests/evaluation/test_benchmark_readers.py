"""Readers on fixtures written in each dataset's on-disk format: listing, decoding, valid
masks, crops and the protocol variants."""

import numpy as np
import pytest
from e2p_dataset_fixtures import (
    write_diode,
    write_eth3d,
    write_kitti,
    write_matting,
    write_normals,
    write_nyuv2,
    write_scannet,
)

from edit2perceive.evaluation import get_reader, make_protocol
from edit2perceive.evaluation.crops import kitti_eigen_crop


def _reader(task, dataset, root, protocol="marigold", **kw):
    return get_reader(make_protocol(task, dataset, protocol), root, **kw)


@pytest.mark.parametrize("with_split", [True, False])
def test_nyuv2_depth(tmp_path, with_split):
    gts = write_nyuv2(tmp_path, with_split=with_split)
    reader = _reader("depth", "nyuv2", tmp_path)
    assert sorted(e.sample_id for e in reader.entries) == sorted(gts)
    s = reader.load(reader.entries[0])
    gt = gts[s.sample_id]
    np.testing.assert_allclose(s.target, gt, rtol=1e-6)  # uint16 / 1000
    expected = (gt > 1e-3) & (gt < 10)
    crop = np.zeros_like(expected)
    crop[45:471, 41:601] = True
    np.testing.assert_array_equal(s.valid_mask, expected & crop)
    assert not s.valid_mask[100, 100]  # 12 m > 10 m
    assert s.load_rgb().shape == (480, 640, 3)


def test_kitti_marigold_kb_crop_then_eigen(tmp_path):
    gts = write_kitti(tmp_path, n=3, without_gt=(1,))
    reader = _reader("depth", "kitti", tmp_path)
    assert len(reader.entries) == 2 and len(reader.skipped) == 1
    assert reader.skipped[0][0].endswith("0000000001")
    s = reader.load(reader.entries[0])
    full = gts[s.sample_id]
    kb = full[23:375, 13:1229]
    assert s.target.shape == (352, 1216) and s.load_rgb().shape == (352, 1216, 3)
    np.testing.assert_allclose(s.target, kb)
    top, bottom, left, right = kitti_eigen_crop(352, 1216)
    crop = np.zeros((352, 1216), bool)
    crop[top:bottom, left:right] = True
    np.testing.assert_array_equal(s.valid_mask, crop & (kb > 1e-5) & (kb < 80))


def test_kitti_edit2perceive_full_canvas(tmp_path):
    gts = write_kitti(tmp_path, n=2, without_gt=())
    reader = _reader("depth", "kitti", tmp_path, "edit2perceive")
    s = reader.load(reader.entries[0])
    full = gts[s.sample_id]
    assert s.target.shape == (375, 1242)
    crop = np.zeros((375, 1242), bool)
    crop[124:342, 44:1197] = True
    np.testing.assert_array_equal(s.valid_mask, crop & (full > 1e-5) & (full < 80))


def test_kitti_needs_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Eigen split file"):
        _reader("depth", "kitti", tmp_path)


def test_eth3d_raw_float32(tmp_path):
    gts = write_eth3d(tmp_path)
    reader = _reader("depth", "eth3d", tmp_path)
    assert len(reader.entries) == 2
    s = reader.load(reader.entries[0])
    np.testing.assert_array_equal(s.target, gts[s.sample_id])
    assert s.target[0, 0] == 0 and not s.valid_mask[0, 0]  # inf -> 0 -> invalid
    assert s.valid_mask[5:, :].all()
    # a depth file of the wrong size names the file and the expected size
    depth_path = reader.entries[0].paths["depth"]
    depth_path.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match=r"100 bytes, expected 9600 \(float32 40 x 60"):
        reader.load(reader.entries[0])


@pytest.mark.parametrize("with_split", [True, False])
def test_scannet(tmp_path, with_split):
    gts = write_scannet(tmp_path, with_split=with_split)
    reader = _reader("depth", "scannet", tmp_path)
    assert sorted(e.sample_id for e in reader.entries) == sorted(gts)
    s = reader.load(reader.entries[1])
    np.testing.assert_allclose(s.target, gts[s.sample_id], rtol=1e-6)


def test_diode_mask_only_vs_edit2perceive_80m(tmp_path):
    data = write_diode(tmp_path)
    reader = _reader("depth", "diode", tmp_path)
    assert len(reader.entries) == 2
    by_id = {e.sample_id: e for e in reader.entries}
    stem = next(k for k in data if k.startswith("outdoor"))
    depth, mask = data[stem]
    s = reader.load(by_id[stem])
    np.testing.assert_array_equal(s.target, depth)
    np.testing.assert_array_equal(s.valid_mask, mask)  # mask only, no range (depths up to 150 m kept)
    s2 = _reader("depth", "diode", tmp_path, "edit2perceive").load(by_id[stem])
    np.testing.assert_array_equal(s2.valid_mask, mask & (depth < 80))
    assert s2.valid_mask.sum() < s.valid_mask.sum()


@pytest.mark.parametrize("dataset,split", [("nyuv2", "nyuv2_test.txt"), ("scannet", "scannet_test.txt"),
                                           ("ibims", "ibims_test.txt"), ("diode", None)])
def test_normals_layout(tmp_path, dataset, split):
    gts = write_normals(tmp_path, split)
    reader = _reader("normal", dataset, tmp_path)
    assert sorted(e.sample_id for e in reader.entries) == sorted(gts)
    s = reader.load(reader.entries[0])
    gt = gts[s.sample_id]
    np.testing.assert_array_equal(s.target, gt)
    assert not s.valid_mask[0, 0] and s.valid_mask[0, 1] and s.valid_mask.sum() == gt.shape[0] * gt.shape[1] - 1
    e = _reader("normal", dataset, tmp_path, "edit2perceive").load(reader.entries[0])
    assert not e.valid_mask[0, 1]  # ||n|| = 5e-4 <= 1e-3
    np.testing.assert_array_equal(e.target[..., 0], -gt[..., 0])  # explicit x flip
    np.testing.assert_array_equal(e.target[..., 1:], gt[..., 1:])


@pytest.mark.parametrize("dataset", ["aim500", "p3m500np", "am2k"])
def test_matting_layouts(tmp_path, dataset):
    alphas = write_matting(tmp_path, dataset)
    reader = _reader("matting", dataset, tmp_path)
    assert [e.sample_id for e in reader.entries] == sorted(alphas)
    s = reader.load(reader.entries[0])
    np.testing.assert_allclose(s.target, alphas[s.sample_id])
    assert s.trimap is not None and set(np.unique(s.trimap)) <= {0, 128, 255}
    assert s.load_rgb().shape == s.target.shape + (3,)


def test_matting_unknown_region_needs_trimap(tmp_path):
    write_matting(tmp_path, "am2k", with_trimap=False)
    reader = get_reader(make_protocol("matting", "am2k", region="unknown"), tmp_path)
    with pytest.raises(FileNotFoundError, match="needs a trimap"):
        reader.load(reader.entries[0])


def test_missing_layout_errors_are_specific(tmp_path):
    with pytest.raises(FileNotFoundError, match="no nyuv2 samples found"):
        _reader("depth", "nyuv2", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        _reader("depth", "nyuv2", tmp_path / "absent")
    write_nyuv2(tmp_path)
    reader = _reader("depth", "nyuv2", tmp_path)
    reader.entries[0].paths["depth"].unlink()
    with pytest.raises(FileNotFoundError, match="listed for nyuv2 but missing"):
        reader.load(reader.entries[0])
    with pytest.raises(FileNotFoundError, match="no p3m500np folders"):
        _reader("matting", "p3m500np", tmp_path)
