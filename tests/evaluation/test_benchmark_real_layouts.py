"""Benchmark readers on fixtures named exactly as the published lists name the real files:
Marigold's ``data_split`` (prs-eth/Marigold), the paper's ``data_split`` (showlab/Edit2Perceive)
and BTS's NYUv2 test list (cleinc/bts ``train_test_inputs/nyudepthv2_test_files_with_gt.txt``)."""

from pathlib import Path

import numpy as np
import pytest
from e2p_dataset_fixtures import _save_rgb, _save_u16, depth_field, random_normals

from edit2perceive.evaluation import get_reader, make_protocol

# first rows of Marigold's data_split/diode_depth/diode_val_all_filename_list.txt (indoors) and
# data_split/diode_normals/diode_test.txt (outdoor); the paper's diode_test.txt adds "val/"
DIODE_DEPTH_ROWS = [
    "indoors/scene_00021/scan_00189/00021_00189_indoors_200_010.png "
    "indoors/scene_00021/scan_00189/00021_00189_indoors_200_010_depth.npy "
    "indoors/scene_00021/scan_00189/00021_00189_indoors_200_010_depth_mask.npy",
    "indoors/scene_00021/scan_00189/00021_00189_indoors_240_030.png "
    "indoors/scene_00021/scan_00189/00021_00189_indoors_240_030_depth.npy "
    "indoors/scene_00021/scan_00189/00021_00189_indoors_240_030_depth_mask.npy",
]
DIODE_NORMAL_ROWS = [
    "outdoor/scene_00024/scan_00201/00024_00201_outdoor_070_030.png "
    "outdoor/scene_00024/scan_00201/00024_00201_outdoor_070_030_normal.npy",
    "outdoor/scene_00024/scan_00201/00024_00201_outdoor_130_040.png "
    "outdoor/scene_00024/scan_00201/00024_00201_outdoor_130_040_normal.npy",
]
BTS_ROWS = ["bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579",
            "bathroom/rgb_00046.jpg bathroom/sync_depth_00046.png 518.8579"]
H, W = 24, 32


def reader(task, dataset, root, split_file=None, protocol="marigold"):
    return get_reader(make_protocol(task, dataset, protocol), root, split_file)


def write_diode(val: Path):
    """The DIODE val tarball's own names: <name>.png, <name>_depth.npy (H x W x 1), <name>_depth_mask.npy,
    <name>_normal.npy (no _img suffix)."""
    truth = {}
    for i, row in enumerate(DIODE_DEPTH_ROWS + DIODE_NORMAL_ROWS):
        name = row.split()[0][: -len(".png")]
        _save_rgb(val / f"{name}.png", H, W, seed=i)
        depth = depth_field(H, W, 0.7, 9.0, seed=i)
        mask = np.ones((H, W), np.float32)
        mask[:, :3] = 0
        np.save(val / f"{name}_depth.npy", depth[..., None])
        np.save(val / f"{name}_depth_mask.npy", mask)
        normal = random_normals(H, W, seed=i)
        np.save(val / f"{name}_normal.npy", normal)
        truth[name] = (depth, mask.astype(bool), normal)
    return truth


@pytest.mark.parametrize("data_dir_is_val", [False, True])
@pytest.mark.parametrize("split", [None, "marigold", "paper"])
def test_diode_depth_and_normals_real_names(tmp_path, split, data_dir_is_val):
    truth = write_diode(tmp_path / "val")
    data_dir = tmp_path / "val" if data_dir_is_val else tmp_path
    prefix = "val/" if split == "paper" else ""
    files = {}
    if split is not None:
        for name, rows in (("depth", DIODE_DEPTH_ROWS), ("normal", DIODE_NORMAL_ROWS)):
            lines = [" ".join(prefix + c for c in row.split()) for row in rows]
            files[name] = tmp_path / f"{split}_{name}.txt"
            files[name].write_text("\n".join(lines) + "\n")
    depth_reader = reader("depth", "diode", data_dir, files.get("depth"))
    normal_reader = reader("normal", "diode", data_dir, files.get("normal"))
    # ids: the RGB path relative to DATA_DIR, the same with and without a list
    id_prefix = "" if data_dir_is_val else "val/"
    expected_depth = [r.split()[0][:-4] for r in DIODE_DEPTH_ROWS] + ([] if split else [r.split()[0][:-4] for r in DIODE_NORMAL_ROWS])
    assert sorted(e.sample_id for e in depth_reader.entries) == sorted(id_prefix + n for n in expected_depth)
    expected_normal = [r.split()[0][:-4] for r in DIODE_NORMAL_ROWS] + ([] if split else [r.split()[0][:-4] for r in DIODE_DEPTH_ROWS])
    assert sorted(e.sample_id for e in normal_reader.entries) == sorted(id_prefix + n for n in expected_normal)
    entry = next(e for e in depth_reader.entries if e.sample_id.endswith("indoors_240_030"))
    s = depth_reader.load(entry)
    depth, mask, _ = truth["indoors/scene_00021/scan_00189/00021_00189_indoors_240_030"]
    np.testing.assert_array_equal(s.target, depth)
    np.testing.assert_array_equal(s.valid_mask, mask)
    assert s.load_rgb().shape == (H, W, 3)
    entry = next(e for e in normal_reader.entries if e.sample_id.endswith("outdoor_130_040"))
    n = normal_reader.load(entry)
    np.testing.assert_array_equal(n.target, truth["outdoor/scene_00024/scan_00201/00024_00201_outdoor_130_040"][2])
    assert n.meta["rgb"].endswith("00024_00201_outdoor_130_040.png")


@pytest.mark.parametrize("with_list", [False, True])
@pytest.mark.parametrize("data_dir_level", ["root", "test"])
def test_nyuv2_bts_official_splits_layout(tmp_path, with_list, data_dir_level):
    test = tmp_path / "nyu_depth_v2" / "official_splits" / "test"
    truth = {}
    for i, row in enumerate(BTS_ROWS):
        rgb, depth, _ = row.split()
        _save_rgb(test / rgb, 480, 640, seed=i)
        mm = np.round(depth_field(480, 640, 0.5, 9.0, seed=i) * 1000).astype(np.uint16)
        mm[:7] = 0  # BTS: no depth in the black border
        _save_u16(test / depth, mm)
        truth[rgb[:-4]] = mm / 1000.0
    data_dir = tmp_path if data_dir_level == "root" else test
    split = None
    if with_list:
        split = tmp_path / "nyudepthv2_test_files_with_gt.txt"
        split.write_text("\n".join(BTS_ROWS) + "\n")
    r = reader("depth", "nyuv2", data_dir, split)
    prefix = "nyu_depth_v2/official_splits/test/" if data_dir_level == "root" else ""
    assert sorted(e.sample_id for e in r.entries) == sorted(prefix + k for k in truth)
    s = r.load(r.entries[1])
    gt = truth["bathroom/rgb_00046"]
    np.testing.assert_allclose(s.target, gt, rtol=1e-6)
    crop = np.zeros((480, 640), bool)
    crop[45:471, 41:601] = True
    np.testing.assert_array_equal(s.valid_mask, crop & (gt > 1e-3) & (gt < 10))
    assert s.load_rgb().shape == (480, 640, 3)


def test_normals_lists_with_the_papers_prefixes(tmp_path):
    """The paper's nyuv2_test2.txt / ibims_test2.txt name ``test/000000_img.png`` / ``ibims/corridor_01_img.png``."""
    for folder, stem in (("test", "000000"), ("test", "000001")):
        _save_rgb(tmp_path / folder / f"{stem}_img.png", H, W)
        np.save(tmp_path / folder / f"{stem}_normal.npy", random_normals(H, W))
    paper = tmp_path / "nyuv2_test2.txt"
    paper.write_text("test/000000_img.png test/000000_normal.npy\ntest/000001_img.png test/000001_normal.npy\n")
    marigold = tmp_path / "nyuv2_test.txt"
    marigold.write_text("000000_img.png 000000_normal.npy\n000001_img.png 000001_normal.npy\n")
    ids = {str(f.name): [e.sample_id for e in reader("normal", "nyuv2", tmp_path / "test", f).entries]
           for f in (paper, marigold)}
    assert ids == {"nyuv2_test2.txt": ["000000", "000001"], "nyuv2_test.txt": ["000000", "000001"]}
    assert [e.sample_id for e in reader("normal", "nyuv2", tmp_path, marigold).entries] == ["test/000000", "test/000001"]
