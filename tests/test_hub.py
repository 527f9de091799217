"""Model cards (metadata round trip with huggingface_hub) and sharing only what is ours."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main
from edit2perceive.hub import model_card

sys.path.insert(0, str(Path(__file__).parent / "evaluation"))
from e2p_dataset_fixtures import write_nyuv2  # noqa: E402  (real NYUv2 layout)


@pytest.fixture(scope="module")
def nyu_summary(tmp_path_factory):
    """A real `e2p evaluate` summary: the runner on an NYUv2 fixture with a simple predictor."""
    from edit2perceive.evaluation import evaluate_benchmark

    root = tmp_path_factory.mktemp("nyu")
    write_nyuv2(root)
    result = evaluate_benchmark("depth", "nyuv2", root, lambda rgb, points: rgb.mean(axis=-1) / 255.0 + 0.1,
                                output_dir=root / "eval", method="toy", progress=False)
    return result.summary, root / "eval"


def test_card_metadata_round_trip(nyu_summary, tmp_path):
    summary, _ = nyu_summary
    card = model_card("depth", repo_id="me/e2p-depth", summaries=[summary], training={"max_steps": 6000})
    path = tmp_path / "README.md"
    card.save(path)
    loaded = ModelCard.load(path)
    data = loaded.data.to_dict()
    assert data["base_model"] == "black-forest-labs/FLUX.1-Kontext-dev"
    assert data["library_name"] == "diffusers" and data["pipeline_tag"] == "depth-estimation"
    assert data["license"] == "other" and data["license_name"] == "flux-1-dev-non-commercial-license"
    assert "edit2perceive" in data["tags"] and "Hypersim" in data["datasets"]
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "e2p-depth"
    by_metric = {r.metric_type: r for r in results}
    assert by_metric["abs_rel"].metric_value == pytest.approx(summary["metrics"]["abs_rel"])
    assert by_metric["delta1"].metric_value == pytest.approx(summary["metrics"]["delta1"])
    assert by_metric["abs_rel"].dataset_type == "nyuv2"
    assert "name=marigold" in by_metric["abs_rel"].metric_config  # the protocol is recorded
    assert "from_pretrained(\"me/e2p-depth\")" in loaded.text and "Limitations" in loaded.text


def test_card_rejects_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        model_card("segmentation")


def _saved_pipeline(tiny_components, tmp_path, task="depth"):
    pipe = Edit2PerceivePipeline(**tiny_components, task=task)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "model")
    return pipe


def test_push_dry_run_uploads_only_ours_and_reproduces(tiny_components, nyu_summary, tmp_path):
    pipe = _saved_pipeline(tiny_components, tmp_path)
    _, eval_dir = nyu_summary
    out = tmp_path / "upload"
    assert main(["push", str(tmp_path / "model"), "--repo-id", "me/e2p-depth", "--summary", str(eval_dir),
                 "--dry-run", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model_index.json", "prompt_cache", "scheduler",
                                                      "transformer", "vae"]  # a full model is self-contained
    index = json.loads((out / "model_index.json").read_text())
    for base in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        assert index[base] == [None, None]
    assert ModelCard.load(out / "README.md").data.to_dict()["model-index"]
    shared = Edit2PerceivePipeline.from_pretrained(out)
    shared.set_progress_bar_config(disable=True)
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    # separately loaded weights: equal to float32 rounding (torch's dtype tolerances), not bit for bit
    torch.testing.assert_close(shared(image, processing_resolution=64).prediction,
                               pipe(image, processing_resolution=64).prediction)
    # a second export into the same (non-empty) folder is refused, nothing else changes
    assert main(["push", str(tmp_path / "model"), "--repo-id", "me/x", "--dry-run", str(out)]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".export-", ".e2p-staging-"))]


def test_pipeline_push_to_hub_dry_run(tiny_components, tmp_path):
    pipe = Edit2PerceivePipeline(**tiny_components, task="normal")
    folder = pipe.push_to_hub("me/e2p-normal", dry_run_dir=str(tmp_path / "dry"))
    names = sorted(p.name for p in Path(folder).iterdir())
    assert names == ["README.md", "model_index.json", "prompt_cache", "scheduler", "transformer", "vae"]
    assert pipe.vae is tiny_components["vae"] and pipe.text_encoder is not None  # the pipeline is left intact
    assert ModelCard.load(Path(folder) / "README.md").data.pipeline_tag == "image-to-image"


def test_card_command_writes_readme(tiny_components, tmp_path):
    _saved_pipeline(tiny_components, tmp_path, task="matting")
    assert main(["card", str(tmp_path / "model"), "--repo-id", "me/e2p-matting"]) == 0
    card = ModelCard.load(tmp_path / "model" / "README.md")
    assert card.data.pipeline_tag == "image-segmentation" and "points=[[(120, 80)]]" in card.text
