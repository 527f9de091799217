"""The demo end to end (quick sizes): report folder, panels, model cards; and MODEL= mode."""

import json

import numpy as np
from huggingface_hub import ModelCard
from PIL import Image

from edit2perceive.demo.run import demo_photos, main


def test_bundled_photographs_and_motorcycle_ground_truth():
    photos = {p["name"]: p for p in demo_photos()}
    assert set(photos) == {"astronaut", "coffee", "chelsea", "motorcycle"}
    moto = photos["motorcycle"]
    assert moto["rgb"].shape == (500, 741, 3) and moto["depth"].shape == (500, 741)
    depth = moto["depth"][moto["valid_mask"]]
    assert moto["valid_mask"].mean() > 0.5 and np.isfinite(depth).all()
    assert 0.5 < np.median(depth) < 10  # a table-top scene a few metres away, not garbage
    for p in photos.values():  # every matting point lies inside its photograph
        h, w = p["rgb"].shape[:2]
        assert all(0 <= x < w and 0 <= y < h for x, y in p["points"])


def test_quick_demo_writes_a_complete_report(tmp_path):
    report = tmp_path / "report"
    assert main(["--quick", "--output-dir", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["synthetic"]) == {"depth", "normal", "matting"}
    assert metrics["vae_reconstruction_mae"]["after"] < metrics["vae_reconstruction_mae"]["before"]
    for task, keys in {"depth": {"abs_rel", "delta1"}, "normal": {"mean"}, "matting": {"mad", "mse"}}.items():
        for who in ("trained", "untrained", "constant"):
            assert keys <= set(metrics["synthetic"][task][who])
    moto = metrics["photos"]["motorcycle"]
    assert 0 < moto["model"]["abs_rel"] < 5 and 0 < moto["constant"]["abs_rel"] < 5
    summary = (report / "summary.md").read_text()
    assert "| depth | abs_rel |" in summary and "panels/motorcycle_panel.png" in summary
    for name in ("astronaut", "coffee", "chelsea", "motorcycle"):
        panel = Image.open(report / "panels" / f"{name}_panel.png")
        photo_width = {"astronaut": 512, "coffee": 600, "chelsea": 451, "motorcycle": 741}[name]
        assert panel.width > 3 * photo_width  # input + depth + normal + alpha side by side
        assert np.asarray(panel).std() > 5  # not blank
    for task in ("depth", "normal", "matting"):
        assert Image.open(report / "panels" / f"synthetic_{task}.png").size[0] > 300
        card = ModelCard.load(report / "models" / task / "README.md")
        assert card.data.base_model == "black-forest-labs/FLUX.1-Kontext-dev" and card.data.library_name == "diffusers"

    # MODEL=... mode: a trained model runs on the photographs without training
    again = tmp_path / "again"
    assert main(["--model", str(report / "models" / "depth"), "--output-dir", str(again),
                 "--processing-resolution", "64"]) == 0
    metrics2 = json.loads((again / "metrics.json").read_text())
    assert metrics2["tasks"] == ["depth"] and "synthetic" not in metrics2
    np.testing.assert_allclose(metrics2["photos"]["motorcycle"]["model"]["abs_rel"], moto["model"]["abs_rel"], rtol=1e-5)
