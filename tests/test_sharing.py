"""A shared model just works: train from a saved base folder, convert a released checkpoint,
push to a folder standing in for the Hub, load in a fresh process with ``from_pretrained(path)``
alone, get the in-memory pipeline's prediction. Plus diffusers' push_to_hub keywords and the
error when the recorded base cannot be loaded."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reference_fixtures import diffsynth_state_dict, random_kohya_lora, write

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
LOAD_AND_PREDICT = """
import json, sys
import numpy as np
from PIL import Image
from edit2perceive import Edit2PerceivePipeline

folders, image, out = json.loads(sys.argv[1]), Image.open(sys.argv[2]), sys.argv[3]
for name, folder in folders.items():
    pipe = Edit2PerceivePipeline.from_pretrained(folder)  # nothing else: no base_model=, no vae=
    pipe.set_progress_bar_config(disable=True)
    points = [[(10, 12)]] if pipe.task.name == "matting" else None
    np.save(f"{out}/{name}.npy", pipe(image, points=points, processing_resolution=32).prediction)
"""


def predict(pipe, image):
    pipe.set_progress_bar_config(disable=True)
    points = [[(10, 12)]] if pipe.task.name == "matting" else None
    return pipe(image, points=points, processing_resolution=32).prediction


def train(base, out, **overrides):
    """A few steps of the trainer on the DiT and VAE loaded from the saved base folder."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from test_training import make_data

    from edit2perceive.core.prompts import encode_prompt
    from edit2perceive.tasks import get_task
    from edit2perceive.training import Edit2PerceiveTrainer, Edit2PerceiveTrainingArguments

    transformer = FluxTransformer2DModel.from_pretrained(base, subfolder="transformer")
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
    cache = encode_prompt(get_task("depth").prompt, **_text_parts(base))
    args = Edit2PerceiveTrainingArguments(output_dir=str(out), task="depth", resolution=32, per_device_train_batch_size=2,
                                          effective_batch_size=0, max_steps=2, learning_rate=1e-3, use_cpu=True,
                                          report_to=[], disable_tqdm=True, save_strategy="no", seed=0, **overrides)
    trainer = Edit2PerceiveTrainer(transformer, args, vae=vae, prompt_cache=cache, train_dataset=make_data(4),
                                   base_model=str(base))
    trainer.train()
    trainer.save_model(str(out))
    return trainer.build_pipeline(vae=vae)


def _text_parts(base):
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

    return dict(tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer"),
                text_encoder=CLIPTextModel.from_pretrained(base, subfolder="text_encoder"),
                tokenizer_2=T5TokenizerFast.from_pretrained(base, subfolder="tokenizer_2"),
                text_encoder_2=T5EncoderModel.from_pretrained(base, subfolder="text_encoder_2"))


@pytest.fixture(scope="module")
def shared(tiny_components, tmp_path_factory):
    """Every kind of model pushed to a local 'Hub' folder, its in-memory prediction, and the
    predictions of one fresh process that loads each with from_pretrained(path) alone."""
    from diffusers import FluxKontextPipeline

    root = tmp_path_factory.mktemp("sharing")
    base = root / "kontext"  # the saved tiny base, standing in for FLUX.1 Kontext-dev
    FluxKontextPipeline(**tiny_components).save_pretrained(base)
    image_path = root / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(image_path)
    image = Image.open(image_path)
    t = tiny_components["transformer"]
    released = {"full": write(root / "depth.safetensors", diffsynth_state_dict(t.state_dict())),
                "lora": write(root / "matting_lora.safetensors", random_kohya_lora(t, rank=4, alpha=4.0, seed=1))}

    expected, hub = {}, {}
    for name, overrides in (("trained", {}), ("trained_lora", {"use_lora": True, "lora_rank": 4})):
        expected[name] = predict(train(base, root / name, **overrides), image)
    for kind, file in released.items():
        name = f"converted_{kind}"
        assert main(["convert", "--reference-checkpoint", file, "--base-model", str(base), "--output-dir",
                     str(root / name), "--text-encoder-dtype", "float32"]) == 0
        expected[name] = predict(Edit2PerceivePipeline.from_reference_checkpoint(file, base_model=str(base)), image)
    for name in expected:
        hub[name] = root / "hub" / name
        assert main(["push", str(root / name), "--repo-id", f"me/{name}", "--dry-run", str(hub[name])]) == 0
    # pushed from Python, from memory: a LoRA pipeline uploads its adapter and names its base
    in_memory = Edit2PerceivePipeline.from_reference_checkpoint(released["lora"], base_model=str(base))
    hub["pushed_lora"] = Path(in_memory.push_to_hub("me/pushed_lora", dry_run_dir=str(root / "hub" / "pushed_lora")))
    expected["pushed_lora"] = expected["converted_lora"]

    # full models are self-contained: their base is moved away before loading them
    full = {k: str(v) for k, v in hub.items() if k in ("trained", "converted_full")}
    lora = {k: str(v) for k, v in hub.items() if k not in full}
    out = root / "fresh"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    moved = root / "moved"
    base.rename(moved)
    try:
        run = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, json.dumps(full), str(image_path), str(out)],
                             capture_output=True, text=True, env=env, timeout=600)
    finally:
        moved.rename(base)
    assert run.returncode == 0, run.stderr[-3000:]
    run = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, json.dumps(lora), str(image_path), str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got = {name: np.load(out / f"{name}.npy") for name in expected}
    return {"root": root, "base": base, "hub": hub, "expected": expected, "got": got}


@pytest.mark.parametrize("name", ["trained", "trained_lora", "converted_full", "converted_lora", "pushed_lora"])
def test_pushed_model_loads_alone_in_a_fresh_process(shared, name):
    # separately loaded float32 weights: equal up to float32 rounding
    np.testing.assert_allclose(shared["got"][name], shared["expected"][name], atol=1e-5)


@pytest.mark.parametrize("name", ["trained", "trained_lora", "converted_full", "converted_lora", "pushed_lora"])
def test_full_models_carry_their_vae_and_lora_models_name_their_base(shared, name):
    folder = shared["hub"][name]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["base_model"] == str(shared["base"])
    assert index["text_encoder"] == [None, None] and (folder / "prompt_cache").is_dir()
    if name.endswith("lora"):
        assert index["vae"] == [None, None] and index["transformer"] == [None, None]
        assert not (folder / "vae").exists() and (folder / "transformer_lora").is_dir()
        assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 1_000_000
    else:
        assert index["vae"] == ["diffusers", "AutoencoderKL"] and (folder / "vae" / "config.json").is_file()


def test_an_unreachable_base_is_named_with_what_would_do(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "lora"
    shutil.copytree(shared["hub"]["trained_lora"], folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["base_model"] = "nobody/kontext-not-in-the-cache"
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(OSError, match=r"base model 'nobody/kontext-not-in-the-cache'.*base_model="):
        Edit2PerceivePipeline.from_pretrained(folder)
    pipe = Edit2PerceivePipeline.from_pretrained(folder, base_model=str(shared["base"]))  # the keyword overrides
    assert pipe.config.base_model == str(shared["base"])
    np.testing.assert_allclose(predict(pipe, Image.open(shared["root"] / "photo.png")),
                               shared["expected"]["trained_lora"], atol=1e-5)


def test_push_to_hub_takes_diffusers_keywords(tiny_components, monkeypatch, tmp_path):
    import edit2perceive.hub as hub

    seen = {}

    def fake_upload(folder, repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id, files=sorted(p.name for p in Path(folder).iterdir()))
        return "https://huggingface.co/me/x/commit/1"

    monkeypatch.setattr(hub, "upload_folder", fake_upload)
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    url = pipe.push_to_hub("me/x", commit_message="first", private=True, token="hf_x", create_pr=True,
                           revision="dev", commit_description="tiny")
    assert url.endswith("/commit/1") and seen["repo_id"] == "me/x"
    assert {k: seen[k] for k in ("commit_message", "private", "token", "create_pr", "revision", "commit_description")} \
        == {"commit_message": "first", "private": True, "token": "hf_x", "create_pr": True, "revision": "dev",
            "commit_description": "tiny"}
    assert "vae" in seen["files"] and "text_encoder" not in seen["files"]
    with pytest.raises(ValueError, match="pickle"):
        pipe.push_to_hub("me/x", safe_serialization=False)
