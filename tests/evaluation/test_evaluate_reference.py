"""``e2p evaluate --reference-checkpoint FILE --base-model DIR`` on a tiny released-format file."""

import json
import sys
from pathlib import Path

from e2p_dataset_fixtures import write_nyuv2

from edit2perceive.cli import main

sys.path.insert(0, str(Path(__file__).parents[1]))
from reference_fixtures import diffsynth_state_dict, write  # noqa: E402


def test_evaluate_a_released_checkpoint(tiny_components, tmp_path):
    from diffusers import FluxKontextPipeline

    FluxKontextPipeline(**tiny_components).save_pretrained(tmp_path / "base")
    ckpt = write(tmp_path / "depth.safetensors", diffsynth_state_dict(tiny_components["transformer"].state_dict()))
    write_nyuv2(tmp_path / "nyu")
    out = tmp_path / "out"
    rc = main(["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path / "nyu"),
               "--reference-checkpoint", ckpt, "--base-model", str(tmp_path / "base"), "--output-dir", str(out),
               "--processing-resolution", "32", "--max-samples", "1", "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predictor"]["model"] == ckpt and summary["num_evaluated"] == 1
