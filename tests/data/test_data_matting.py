"""Matting readers: Composition-1k, Distinctions-646 (composited), AM-2k, COCO-Matting."""

import numpy as np
import pytest
from data_fixtures import write_jpg, write_png

from edit2perceive.data import AM2kReader, CocoMattingReader, Composition1kReader, Distinctions646Reader

H, W = 8, 10


def fg_alpha():
    fg = np.zeros((H, W, 3), np.uint8)
    fg[...] = (200, 40, 10)
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, 5:] = 255
    alpha[:, 4] = 128  # soft edge
    return fg, alpha


def test_composition1k_pairs_from_name_lists_and_composites(tmp_path):
    train = tmp_path / "Combined_Dataset" / "Training_set"
    fg, alpha = fg_alpha()
    write_png(train / "Adobe-licensed images" / "fg" / "a.png", fg)
    write_png(train / "Adobe-licensed images" / "alpha" / "a.png", alpha)
    write_png(train / "Other" / "fg" / "b.png", fg)
    write_png(train / "Other" / "alpha" / "b.png", alpha)
    (train / "training_fg_names.txt").write_text("a.png\nb.png\n")
    (train / "training_bg_names.txt").write_text("bg0.jpg\nbg1.jpg\nbg2.jpg\nbg3.jpg\n")  # 2 per foreground
    bgs = tmp_path / "coco"
    for k in range(4):
        write_png(bgs / f"bg{k}.jpg", np.full((4, 5, 3), 20 * k, np.uint8))  # smaller: scaled up to cover
    reader = Composition1kReader(tmp_path, background_dir=bgs)
    examples = list(reader)
    assert [e["meta"]["id"] for e in examples] == ["composition1k/a/0", "composition1k/a/1", "composition1k/b/0", "composition1k/b/1"]
    assert [e["meta"]["background"].rsplit("/", 1)[1] for e in examples] == ["bg0.jpg", "bg1.jpg", "bg2.jpg", "bg3.jpg"]
    ex = examples[3]  # b over bg3 (uniform value 60)
    a = 128 / 255
    np.testing.assert_array_equal(ex["rgb"][0, 0], (60, 60, 60))
    np.testing.assert_array_equal(ex["rgb"][0, 9], (200, 40, 10))
    np.testing.assert_array_equal(ex["rgb"][0, 4], np.round(a * np.array([200, 40, 10]) + (1 - a) * 60))
    np.testing.assert_allclose(ex["alpha"][0, 4], a)
    assert ex["valid_mask"].all()
    assert len(Composition1kReader(tmp_path, background_dir=bgs, backgrounds_per_foreground=1)) == 2


def test_composition1k_needs_backgrounds(tmp_path):
    with pytest.raises(FileNotFoundError, match="background_dir"):
        Composition1kReader(tmp_path, background_dir=tmp_path / "nope").records()


def test_composition1k_precomposited_layout_with_the_papers_list(tmp_path):
    """The paper's comp_matting/filenames_train.txt: tab-separated merged composite + one JPEG alpha
    per foreground (``Training_set/merged/035A4301_0.png<TAB>Training_set/alpha/035A4301.jpg``)."""
    train = tmp_path / "Training_set"
    fg, alpha = fg_alpha()
    rows = []
    for k in range(3):
        write_png(train / "merged" / f"035A4301_{k}.png", np.full((H, W, 3), 10 * k, np.uint8))
        rows.append(f"Training_set/merged/035A4301_{k}.png\tTraining_set/alpha/035A4301.jpg")
    write_jpg(train / "alpha" / "035A4301.jpg", np.stack([alpha] * 3, -1))
    write_png(train / "merged" / "1-1252426161dfXY_0.png", fg)
    write_png(train / "alpha" / "1-1252426161dfXY.png", alpha)
    reader = Composition1kReader(tmp_path)  # no background_dir needed
    examples = list(reader)
    assert [e["meta"]["id"] for e in examples] == ["composition1k/035A4301/0", "composition1k/035A4301/1",
                                                   "composition1k/035A4301/2", "composition1k/1-1252426161dfXY/0"]
    assert (examples[2]["rgb"] == 20).all()
    np.testing.assert_allclose(examples[0]["alpha"], alpha / 255.0, atol=3 / 255)  # JPEG alpha
    split = tmp_path / "filenames_train.txt"
    split.write_text("\n".join(rows[:2]) + "\n")
    assert [e["meta"]["id"] for e in Composition1kReader(tmp_path, split_file=split)] == [
        "composition1k/035A4301/0", "composition1k/035A4301/1"]


def test_distinctions646_precomposited_layout_with_the_papers_list(tmp_path):
    """The paper's Distinctions_matting/filenames_train.txt: ``Train_comp/merged/<name>.png_0.png
    Train_comp/alpha/<name>.png_0.png`` (one alpha per composite)."""
    fg, alpha = fg_alpha()
    name = "004c8d27c4063952a98616dd3c8ab316"
    for k in range(2):
        write_png(tmp_path / "Train_comp" / "merged" / f"{name}.png_{k}.png", fg)
        write_png(tmp_path / "Train_comp" / "alpha" / f"{name}.png_{k}.png", np.roll(alpha, k, axis=1))
    split = tmp_path / "filenames_train.txt"
    split.write_text(f"Train_comp/merged/{name}.png_1.png Train_comp/alpha/{name}.png_1.png\n")
    (ex,) = list(Distinctions646Reader(tmp_path, split_file=split))
    assert ex["meta"]["id"] == f"distinctions646/{name}/1"
    np.testing.assert_allclose(ex["alpha"], np.roll(alpha, 1, axis=1) / 255.0)
    assert len(Distinctions646Reader(tmp_path)) == 2


def test_distinctions646_hash_pairing_is_stable_and_alpha_shape_checked(tmp_path):
    fg, alpha = fg_alpha()
    for name in ("x", "y"):
        write_png(tmp_path / "Train" / "FG" / f"{name}.png", fg)
        write_png(tmp_path / "Train" / "GT" / f"{name}.png", alpha)
    write_png(tmp_path / "Train" / "GT" / "y.png", np.zeros((3, 3), np.uint8))  # wrong shape
    bgs = tmp_path / "voc"
    for k in range(5):
        write_jpg(bgs / f"2008_{k:06d}.jpg", np.full((20, 20, 3), 100, np.uint8))
    r1 = Distinctions646Reader(tmp_path, background_dir=bgs, backgrounds_per_foreground=3, seed=1)
    r2 = Distinctions646Reader(tmp_path, background_dir=bgs, backgrounds_per_foreground=3, seed=1)
    assert [r["background"] for r in r1.records()] == [r["background"] for r in r2.records()]
    with pytest.warns(UserWarning, match=r"GT/y\.png: alpha shape \(3, 3\)"):
        examples = list(r1)
    assert len(examples) == 3 and r1.bad.num_skipped == 3


def test_am2k_real_images(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    write_jpg(tmp_path / "train" / "original" / "m_0a1b2c3d.jpg", rgb)
    _, alpha = fg_alpha()
    write_png(tmp_path / "train" / "mask" / "m_0a1b2c3d.png", alpha)
    write_jpg(tmp_path / "train" / "original" / "m_c5293d8b.jpg", rgb)
    write_png(tmp_path / "train" / "mask" / "m_c5293d8b.png", alpha)
    split = tmp_path / "filenames_train.txt"  # the paper's AM_matting list
    split.write_text("train/original/m_0a1b2c3d.jpg train/mask/m_0a1b2c3d.png\n")
    (ex,) = list(AM2kReader(tmp_path, split_file=split))
    assert len(AM2kReader(tmp_path)) == 2
    assert ex["meta"]["id"] == "am2k/m_0a1b2c3d"
    np.testing.assert_allclose(ex["alpha"], alpha / 255.0)
    assert ex["rgb"].shape == (H, W, 3)


def test_coco_matting_side_by_side_trimap_alpha(tmp_path):
    coco = tmp_path / "train2017"
    write_jpg(coco / "000000000999.jpg", np.zeros((H, W, 3), np.uint8))
    _, alpha = fg_alpha()
    trimap = np.where(alpha > 0, 255, 0).astype(np.uint8)
    write_png(tmp_path / "trimap_alpha" / "000000000999_baseball bat_00.png", np.concatenate([trimap, alpha], 1))
    write_png(tmp_path / "trimap_alpha" / "000000000999_tie_01.png", np.zeros((H, W), np.uint8))  # not side by side
    reader = CocoMattingReader(tmp_path, coco_dir=coco)
    with pytest.warns(UserWarning, match=r"tie_01\.png: trimap\|alpha shape"):
        (ex,) = list(reader)
    split = tmp_path / "filenames_train.txt"  # the paper's list: tab-separated, names with spaces
    split.write_text("COCO_Path/train2017/000000000999.jpg\talpha/000000000999_baseball bat_00.png\n")
    assert [r["id"] for r in CocoMattingReader(tmp_path, coco_dir=coco, split_file=split).records()] == [
        "000000000999_baseball bat_00"]
    np.testing.assert_allclose(ex["alpha"], alpha / 255.0)
    assert ex["meta"]["image_file"].endswith("000000000999.jpg")


@pytest.mark.parametrize(("name", "splits"), [("am2k", ("train", "validation")), ("composition1k", ("train", "test")),
                                              ("distinctions646", ("train", "test"))])
def test_split_readers_take_only_their_splits(tmp_path, name, splits):
    from edit2perceive.data import READERS

    for split in splits:
        assert READERS[name](tmp_path, split=split).split == split
    with pytest.raises(ValueError, match=rf"{name} split must be one of \('{splits[0]}', '{splits[1]}'\), got 'val'"):
        READERS[name](tmp_path, split="val")
