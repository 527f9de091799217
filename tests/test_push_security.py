"""`e2p card` / `e2p push` never unpickle anything from a model folder (issue 15, defect 1)."""

import json

import torch

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main


class _Payload:
    """Unpickling this object creates a file: what a crafted training_args.bin could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_card_and_push_do_not_run_code_from_a_model_folder(tiny_components, tmp_path, capsys):
    model = tmp_path / "model"
    Edit2PerceivePipeline(**tiny_components, task="depth").save_pretrained(model)
    marker = tmp_path / "pwned"
    torch.save(_Payload(marker), model / "training_args.bin")
    assert main(["card", str(model), "--output", str(tmp_path / "card.md")]) == 0
    assert main(["push", str(model), "--repo-id", "me/x", "--dry-run", str(tmp_path / "upload")]) == 0
    assert not marker.exists()  # the pickle was never loaded
    assert "not recorded" in (tmp_path / "card.md").read_text()
    # the settings the card shows come from the trainer's JSON copy
    (model / "training_args.json").write_text(json.dumps({"task": "depth", "max_steps": 6000, "learning_rate": 3e-5,
                                                          "output_dir": "/private/path"}))
    assert main(["card", str(model), "--output", str(tmp_path / "card2.md")]) == 0
    text = (tmp_path / "card2.md").read_text()
    assert "**max_steps**: 6000" in text and "**learning_rate**: 3e-05" in text and "/private/path" not in text
    (model / "training_args.json").write_text("{not json")
    assert main(["card", str(model), "--output", str(tmp_path / "card3.md")]) == 2
    assert "training_args.json: not valid JSON" in capsys.readouterr().err
