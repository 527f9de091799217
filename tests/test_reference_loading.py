"""Loading released checkpoints and completing saved models from a base model, offline:
the base is a tiny folder written by diffusers' FluxKontextPipeline.save_pretrained."""

import copy
import json
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from reference_fixtures import diffsynth_state_dict, lora_merged_weights, random_kohya_lora, write

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main
from edit2perceive.reference import REFERENCE_CONVENTIONS

TEXT_PARTS = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")


@contextmanager
def quantized_load_spy():
    """Record the keywords of ``FluxTransformer2DModel.from_pretrained`` and load without the
    quantization config (bitsandbytes needs a GPU)."""
    from diffusers import FluxTransformer2DModel

    seen: dict = {}
    real = FluxTransformer2DModel.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        kwargs.pop("quantization_config")
        return real(*args, **kwargs)

    with mock.patch.object(FluxTransformer2DModel, "from_pretrained", side_effect=spy):
        yield seen


@pytest.fixture(scope="module")
def base_dir(tiny_components, tmp_path_factory):
    from diffusers import FluxKontextPipeline

    path = tmp_path_factory.mktemp("base") / "kontext"
    FluxKontextPipeline(**tiny_components).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def files(tiny_components, tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    t = tiny_components["transformer"]
    lora = random_kohya_lora(t, rank=4, alpha=4.0, seed=1)
    return {"full": write(root / "depth.safetensors", diffsynth_state_dict(t.state_dict())),
            "lora": write(root / "matting_lora.safetensors", lora), "lora_tensors": lora}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _reference_pipe(components, task, **over):
    pipe = Edit2PerceivePipeline(**components, task=task, **{**REFERENCE_CONVENTIONS, **over})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_full_checkpoint_pipeline(files, base_dir, tiny_components, photo):
    pipe = Edit2PerceivePipeline.from_reference_checkpoint(files["full"], base_model=str(base_dir))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.task.name == "depth"  # from the file name
    assert all(getattr(pipe, n) is None for n in TEXT_PARTS) and pipe.prompt_cache is not None
    assert pipe.conventions.to_dict() == REFERENCE_CONVENTIONS["conventions"]
    for key in ("noise_seed", "default_processing_resolution", "guidance"):
        assert pipe.config[key] == REFERENCE_CONVENTIONS[key], key
    for key, value in tiny_components["transformer"].state_dict().items():
        assert torch.equal(pipe.transformer.state_dict()[key], value), key
    want = _reference_pipe(tiny_components, "depth")(Image.open(photo), processing_resolution=64).prediction
    got = pipe(Image.open(photo), processing_resolution=64).prediction
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_lora_checkpoint_pipeline(files, base_dir, tiny_components, photo):
    pipe = Edit2PerceivePipeline.from_reference_checkpoint(files["lora"], base_model=str(base_dir))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.task.name == "matting" and "default" in pipe.transformer.peft_config
    merged = copy.deepcopy(tiny_components["transformer"])
    modules = dict(merged.named_modules())
    with torch.no_grad():
        for name, delta in lora_merged_weights(merged, files["lora_tensors"]).items():
            modules[name].weight += delta.float()
    want = _reference_pipe({**tiny_components, "transformer": merged}, "matting")
    pts = [[(10, 12), (30, 20)]]
    np.testing.assert_allclose(pipe(Image.open(photo), points=pts, processing_resolution=64).prediction,
                               want(Image.open(photo), points=pts, processing_resolution=64).prediction, atol=1e-4)


def test_components_override_and_full_rejects_transformer(files, base_dir, tiny_components):
    vae = copy.deepcopy(tiny_components["vae"])
    pipe = Edit2PerceivePipeline.from_reference_checkpoint(files["full"], task="depth", base_model=str(base_dir),
                                                           vae=vae, keep_text_encoders=True, noise_seed=7)
    assert pipe.vae is vae and pipe.text_encoder is not None and pipe.config.noise_seed == 7
    with pytest.raises(ValueError, match="do not pass transformer"):
        Edit2PerceivePipeline.from_reference_checkpoint(files["full"], base_model=str(base_dir),
                                                        transformer=tiny_components["transformer"])
    with pytest.raises(ValueError, match="convert it first"):
        Edit2PerceivePipeline.from_reference_checkpoint(files["full"], base_model=str(base_dir), quantize="nf4")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        Edit2PerceivePipeline.from_reference_checkpoint(str(base_dir / "nothing.safetensors"), base_model=str(base_dir))


@pytest.mark.parametrize("kind, task", [("full", "depth"), ("lora", "matting")])
def test_convert_command_then_from_pretrained_and_push(kind, task, files, base_dir, tmp_path, photo):
    out = tmp_path / f"e2p-{task}"
    code = main(["convert", "--task", task, "--reference-checkpoint", files[kind], "--base-model", str(base_dir),
                 "--output-dir", str(out), "--max-shard-size", "0.00004", "--text-encoder-dtype", "float32"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    ours = ["transformer", "vae"] if kind == "full" else ["transformer_lora"]  # full models are self-contained
    assert names == sorted(["README.md", "model_index.json", "prompt_cache", "scheduler", *ours])
    index = json.loads((out / "model_index.json").read_text())
    assert (index["vae"] == [None, None]) == (kind == "lora") and index["text_encoder"] == [None, None]
    assert index["base_model"] == str(base_dir)  # recorded: from_pretrained(out) alone finds the rest
    assert index["conventions"]["single_step_final_sigma"] == REFERENCE_CONVENTIONS["conventions"]["single_step_final_sigma"]
    card = (out / "README.md").read_text()
    assert "Edit2Perceive authors" in card and "single_step_final_sigma" in card and "Seq2Tri/Edit2Perceive" in card
    if kind == "full":
        assert len(list((out / "transformer").glob("*.safetensors"))) > 1  # sharded while streaming
    loaded = Edit2PerceivePipeline.from_pretrained(out, base_model=str(base_dir))
    loaded.set_progress_bar_config(disable=True)
    assert loaded.text_encoder is None  # the prompt cache suffices
    direct = Edit2PerceivePipeline.from_reference_checkpoint(files[kind], base_model=str(base_dir))
    direct.set_progress_bar_config(disable=True)
    pts = [[(10, 12)]] if task == "matting" else None
    np.testing.assert_allclose(loaded(Image.open(photo), points=pts, processing_resolution=64).prediction,
                               direct(Image.open(photo), points=pts, processing_resolution=64).prediction, atol=1e-5)
    assert main(["push", str(out), "--repo-id", "me/e2p", "--dry-run", str(tmp_path / "upload")]) == 0
    assert main(["convert", "--task", task, "--reference-checkpoint", files[kind], "--base-model", str(base_dir),
                 "--output-dir", str(out)]) == 2  # never overwrites a folder


def test_convert_refuses_a_broken_file_and_writes_nothing(base_dir, tiny_components, tmp_path, capsys):
    sd = diffsynth_state_dict(tiny_components["transformer"].state_dict())
    sd["blocks.0.ff_a.2.weight"] = sd["blocks.0.ff_a.2.weight"][:, :5].contiguous()
    bad = write(tmp_path / "depth.safetensors", sd)
    out = tmp_path / "never"
    assert main(["convert", "--reference-checkpoint", bad, "--base-model", str(base_dir), "--output-dir", str(out)]) == 2
    assert "blocks.0.ff_a.2.weight" in capsys.readouterr().err and not out.exists()


def test_predict_with_reference_checkpoint_end_to_end(files, base_dir, photo, tmp_path):
    out = tmp_path / "pred"
    code = main(["predict", "--task", "depth", "--reference-checkpoint", files["full"], "--base-model", str(base_dir),
                 str(photo), "--output-dir", str(out), "--processing-resolution", "64"])
    assert code == 0
    depth = np.load(out / "photo.jpg" / "depth.npy")
    assert depth.shape == (40, 56) and np.isfinite(depth).all()
    # the wrong task for the file is refused
    assert main(["predict", "--task", "normal", "--reference-checkpoint", files["full"], "--base-model",
                 str(base_dir), str(photo), "--output-dir", str(tmp_path / "x"), "--processing-resolution", "64"]) == 2


def test_from_pretrained_fills_only_what_is_missing(tiny_components, base_dir, tmp_path, photo):
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    pipe.set_progress_bar_config(disable=True)
    shared = tmp_path / "shared"
    pipe.push_to_hub("me/depth", dry_run_dir=str(shared))  # no text encoders, prompt cache
    import shutil

    shutil.rmtree(shared / "vae")  # a model saved without its VAE and with no base recorded
    index = json.loads((shared / "model_index.json").read_text())
    index["vae"] = [None, None]
    (shared / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="no VAE"):
        Edit2PerceivePipeline.from_pretrained(shared)(Image.open(photo))
    full = Edit2PerceivePipeline.from_pretrained(shared, base_model=str(base_dir))
    full.set_progress_bar_config(disable=True)
    assert full.vae is not None and full.text_encoder is None
    np.testing.assert_allclose(full(Image.open(photo), processing_resolution=64).prediction,
                               pipe(Image.open(photo), processing_resolution=64).prediction, atol=1e-5)
    # without a prompt cache the text encoders come from the base too
    shutil.rmtree(shared / "prompt_cache")
    index = json.loads((shared / "model_index.json").read_text())
    index["prompt_cache"] = [None, None]
    (shared / "model_index.json").write_text(json.dumps(index))
    again = Edit2PerceivePipeline.from_pretrained(shared, base_model=str(base_dir))
    assert all(getattr(again, n) is not None for n in TEXT_PARTS)


def test_lora_model_gets_the_base_transformer(tiny_components, files, base_dir, tmp_path):
    from edit2perceive.reference.export import convert_reference_checkpoint

    out = convert_reference_checkpoint(files["lora"], tmp_path / "lora", base_model=str(base_dir), progress=False)
    given = copy.deepcopy(tiny_components["transformer"])
    pipe = Edit2PerceivePipeline.from_pretrained(out, base_model=str(base_dir), transformer=given)
    assert pipe.transformer is given and "default" in given.peft_config  # a keyword wins over the base


def test_quantize_passes_bitsandbytes_config_and_explains_cpu(base_dir, tiny_components, tmp_path):
    from diffusers import BitsAndBytesConfig

    from edit2perceive.core.base_model import quantization_config

    nf4, int8 = quantization_config("nf4"), quantization_config("int8")
    assert isinstance(nf4, BitsAndBytesConfig) and nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4"
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16 and int8.load_in_8bit and not int8.load_in_4bit
    with pytest.raises(ValueError, match="quantize must be one of"):
        quantization_config("fp4")
    saved = tmp_path / "m"
    Edit2PerceivePipeline(**tiny_components, task="depth").save_pretrained(saved)
    with quantized_load_spy() as seen:
        pipe = Edit2PerceivePipeline.from_pretrained(saved, quantize="nf4")
    assert seen["subfolder"] == "transformer" and seen["quantization_config"].bnb_4bit_quant_type == "nf4"
    assert pipe.transformer is not None
    if not torch.cuda.is_available():  # what bitsandbytes-through-diffusers says on a CPU-only machine
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            Edit2PerceivePipeline.from_pretrained(saved, quantize="int8")


def test_offload_and_vae_tiling_give_the_same_map(tiny_components, tmp_path, photo):
    from edit2perceive.pipelines.loading import load_pipeline

    saved = tmp_path / "m"
    Edit2PerceivePipeline(**tiny_components, task="depth").save_pretrained(saved)
    plain = load_pipeline(str(saved), task="depth", device="cpu", base_model=None)
    offloaded = load_pipeline(str(saved), task="depth", device="cpu", base_model=None, offload=True)
    a = plain(Image.open(photo), processing_resolution=64).prediction
    np.testing.assert_allclose(offloaded(Image.open(photo), processing_resolution=64).prediction, a, atol=1e-6)
    tiled = load_pipeline(str(saved), task="depth", device="cpu", base_model=None, vae_tiling=True)
    assert tiled.vae.use_tiling
    big = Image.fromarray((np.random.default_rng(1).random((130, 140, 3)) * 255).astype(np.uint8))
    with mock.patch.object(type(tiled.vae), "tiled_decode", wraps=tiled.vae.tiled_decode) as spy:
        out = tiled(big, processing_resolution=80).prediction  # over the tiny VAE's 64 px tile
    assert spy.called and out.shape == (1, 130, 140) and np.isfinite(out).all()


def test_demo_takes_a_released_checkpoint(files, base_dir, tmp_path):
    from edit2perceive.demo.run import main as demo_main

    report = tmp_path / "report"
    assert demo_main(["--reference-checkpoint", files["full"], "--base-model", str(base_dir), "--output-dir",
                      str(report), "--processing-resolution", "32"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["tasks"] == ["depth"] and metrics["model"] == files["full"]


def test_app_takes_released_checkpoints(files, base_dir):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("e2p_app", Path(__file__).parents[1] / "examples" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    pipes = app.load_pipelines({"matting": files["lora"]}, base_model=str(base_dir))
    assert pipes["matting"].conventions.resize_mode == "stretch" and "default" in pipes["matting"].transformer.peft_config


def test_hub_file_goes_through_huggingface_hub(files, base_dir):
    import huggingface_hub

    from edit2perceive.reference import resolve_checkpoint

    with mock.patch.object(huggingface_hub, "hf_hub_download", return_value=files["full"]) as download:
        assert resolve_checkpoint("Seq2Tri/Edit2Perceive/depth.safetensors", revision="main") == files["full"]
    download.assert_called_once_with("Seq2Tri/Edit2Perceive", "depth.safetensors", cache_dir=None, token=None,
                                     revision="main")
    with pytest.raises(FileNotFoundError, match="owner/repo/filename"):
        resolve_checkpoint("depth.safetensors")


def test_quantized_base_transformer_under_a_released_lora(files, base_dir):

    with quantized_load_spy() as seen:
        pipe = Edit2PerceivePipeline.from_reference_checkpoint(files["lora"], base_model=str(base_dir), quantize="int8")
    assert seen["quantization_config"].load_in_8bit and "default" in pipe.transformer.peft_config


def test_push_keeps_the_authors_credit(files, base_dir, tmp_path):
    from edit2perceive.reference.export import convert_reference_checkpoint

    out = convert_reference_checkpoint(files["full"], tmp_path / "conv", base_model=str(base_dir), progress=False)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"task": "depth", "dataset": "nyuv2", "metrics": {"abs_rel": 0.05, "delta1": 0.97},
                                   "protocol": {"name": "edit2perceive"}}))
    assert main(["push", str(out), "--repo-id", "me/e2p-depth", "--summary", str(summary), "--dry-run",
                 str(tmp_path / "up")]) == 0
    card = (tmp_path / "up" / "README.md").read_text()
    assert "Edit2Perceive authors" in card and "single_step_final_sigma" in card and "0.05" in card
    assert "edit2perceive-reference-release" in card and f"base_model: {base_dir}" in card
