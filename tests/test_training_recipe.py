"""The example training scripts: single process, two processes (DDP on CPU), streamed shards."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.training.recipe import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--model", "tiny", "--resolution", "32", "--per_device_train_batch_size", "2", "--effective_batch_size", "0", "--fit_vae_steps", "2",
         "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--logging_steps", "1"]


def test_recipe_trains_saves_and_evaluates(tmp_path):
    out = tmp_path / "out"
    assert main("matting", SMALL + ["--output_dir", str(out), "--max_steps", "2", "--num_train_examples", "8",
                                    "--num_val_examples", "2", "--eval_every", "2"]) == 0
    assert (out / "model_index.json").exists() and (out / "vae" / "config.json").exists()
    assert (out / "vae_fit.json").exists()
    pipe = Edit2PerceivePipeline.from_pretrained(out)  # self-contained: the fitted tiny VAE is saved with it
    pipe.set_progress_bar_config(disable=True)
    assert pipe.task.name == "matting"
    pred = pipe(np.zeros((32, 32, 3), np.uint8), points=[[(3, 3)]]).prediction
    assert pred.shape == (1, 32, 32)
    seen = json.loads((out / "data_seen_rank0.json").read_text())
    assert len(seen) == 4  # 2 steps x batch 2


def test_two_processes_shard_the_data(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` runs DDP over gloo on CPU (see ENVIRONMENT.md:
    `--cpu` would start a single process)."""
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with socket.socket() as sock:  # a free port, so concurrent runs cannot collide
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           str(ROOT / "examples" / "train_depth.py"), *SMALL, "--output_dir", str(out), "--max_steps", "2",
           "--num_train_examples", "8", "--dataloader_drop_last", "true"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    seen = [set(json.loads((out / f"data_seen_rank{r}.json").read_text())) for r in (0, 1)]
    assert len(seen[0]) == 4 and len(seen[1]) == 4  # 2 steps x batch 2 on each process
    assert not seen[0] & seen[1]  # disjoint: the data is sharded, not duplicated
    assert (out / "model_index.json").exists()


def test_streamed_converted_shards(tmp_path):
    """--data DIR mixes converted shard folders named after the task's sources."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(ROOT / "dataset_scripts" / "convert.py"), "synthetic", "--num-samples", "6",
                    "--size", "48", "48", "--out", str(data / "hypersim")], check=True, capture_output=True, timeout=300)
    out = tmp_path / "out"
    assert main("depth", SMALL + ["--output_dir", str(out), "--max_steps", "2", "--data", str(data),
                                  "--steps_per_epoch", "2", "--num_val_examples", "2"]) == 0
    assert (out / "model_index.json").exists()
    with pytest.raises(SystemExit, match="no converted source"):
        main("normal", SMALL + ["--output_dir", str(out), "--max_steps", "1", "--data", str(tmp_path / "empty"),
                                "--steps_per_epoch", "1"])


@pytest.fixture(scope="module")
def kontext_folder(tmp_path_factory):
    """Tiny components saved in FluxKontextPipeline layout: the real-model code path, not --model tiny."""
    from diffusers import FluxKontextPipeline

    from edit2perceive.testing import tiny_kontext_components

    folder = tmp_path_factory.mktemp("kontext")
    FluxKontextPipeline(**tiny_kontext_components(seed=0)).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_real_model_path_trains_in_bf16_checkpoints_and_resumes(tmp_path, kontext_folder, capsys):
    from safetensors import safe_open

    out = tmp_path / "out"
    argv = ["--model", str(kontext_folder), "--bf16", "true", "--resolution", "32", "--per_device_train_batch_size", "2",
            "--effective_batch_size", "4", "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true",
            "--num_train_examples", "8", "--num_val_examples", "1", "--save_strategy", "steps", "--save_steps", "2",
            "--output_dir", str(out), "--optim", "adamw_torch"]
    assert main("depth", argv + ["--max_steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "memory model, one training step at batch 2 x 32px" in printed and "MiB = weights" in printed
    ckpt = out / "checkpoint-2"
    weights = next((ckpt / "transformer").glob("*.safetensors"))
    with safe_open(str(weights), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}  # loaded and kept in bf16
    # resume to step 4 from the checkpoint: the trainer state and step counter continue
    assert main("depth", argv + ["--max_steps", "4", "--resume_from_checkpoint", str(ckpt)]) == 0
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    final = next((out / "transformer").glob("*.safetensors"))
    with safe_open(str(final), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}


def test_bare_command_picks_a_small_tiny_run_on_this_machine():
    from edit2perceive.training.recipe import machine_defaults

    extra, line = machine_defaults("depth", [], gpu_gib=None)
    chosen = dict(zip(extra[::2], extra[1::2]))
    assert chosen["--resolution"] == "32" and chosen["--max_steps"] == "300" and chosen["--use_cpu"] == "true"
    assert chosen["--fit_vae_steps"] == "100" and chosen["--num_train_examples"] == "128"
    assert "tiny model on the CPU: first training step within about 2 minutes" in line and "--resolution 32" in line
    extra, line = machine_defaults("depth", [], gpu_gib=80.0)
    assert dict(zip(extra[::2], extra[1::2]))["--resolution"] == "64" and "tiny model on a GPU" in line
    extra, _ = machine_defaults("depth", ["--resolution", "128", "--max_steps=5"], gpu_gib=None)
    assert "--resolution" not in extra and "--max_steps" not in extra  # what the user gives wins
    extra, line = machine_defaults("normal", ["--model", "some/real-model"], gpu_gib=None)
    assert "--bf16" not in extra and "without a GPU" in line


@pytest.mark.slow
def test_recipe_refuses_what_does_not_fit_and_names_what_would(kontext_folder):
    from edit2perceive.training import Edit2PerceiveTrainingArguments
    from edit2perceive.training.memory import GIB
    from edit2perceive.training.recipe import _model_configs, check_memory, memory_estimate

    configs = _model_configs(str(kontext_folder))
    args = Edit2PerceiveTrainingArguments(output_dir="x", resolution=64, per_device_train_batch_size=8,
                                          optim="adamw_torch", report_to=[], use_cpu=True)
    big = memory_estimate(configs, args).total / GIB
    small = memory_estimate(configs, args, batch_size=1, gradient_checkpointing=True, optim="adamw_bnb_8bit").total / GIB
    assert small < big
    assert "memory model" in check_memory(configs, args, gpu_gib=big * 1.01)
    with pytest.raises(SystemExit, match="does not fit the visible GPU") as info:
        check_memory(configs, args, gpu_gib=(small + big) / 2)
    assert "--per_device_train_batch_size" in str(info.value) or "--gradient_checkpointing" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_two_cpu_processes(tmp_path, stage):
    """ZeRO-2/3 through accelerate's DeepSpeed plugin (DeepSpeed's CPU accelerator, gloo), 2 processes."""
    pytest.importorskip("deepspeed")
    out = tmp_path / "ds"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--use_deepspeed", "--zero_stage", str(stage),
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(port), str(ROOT / "examples" / "train_depth.py"), *SMALL, "--output_dir",
           str(out), "--max_steps", "2", "--num_train_examples", "8", "--save_strategy", "steps", "--save_steps", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "trained with distributed type DEEPSPEED, 2 process(es)" in result.stdout
    pipe = Edit2PerceivePipeline.from_pretrained(out)  # full (gathered) weights, not ZeRO-3 partitions
    assert pipe.transformer.proj_out.weight.shape == (64, 32)
    assert (out / "checkpoint-2" / "CHECKPOINT_COMPLETE").exists()


def test_the_chosen_settings_line_comes_before_any_heavy_import():
    import subprocess
    import sys

    code = ("import sys; from edit2perceive.training.recipe import machine_defaults; "
            "machine_defaults('depth', [], gpu_gib=None); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'diffusers', 'accelerate')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr[-500:]


@pytest.mark.slow
def test_bare_accelerate_launch_trains_within_minutes_on_a_cpu(tmp_path):
    """``accelerate launch examples/train_depth.py`` with no arguments, as the README gives it:
    its own first line is the chosen settings, the first step within 2 minutes, done within 10."""
    import os
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "train_depth.py"
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # as a user runs it
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    start = time.monotonic()
    proc = subprocess.Popen([accelerate, "launch", str(example)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ours, first_step = [], None
    for line in proc.stdout:
        if line.startswith("[edit2perceive]") or ours:
            ours.append(line)
        if first_step is None and "/300 [" in line and " 1/300" in line:
            first_step = time.monotonic() - start
    proc.wait(timeout=600)
    total = time.monotonic() - start
    assert proc.returncode == 0 and ours[0].startswith("[edit2perceive] tiny model on the CPU")
    assert first_step is not None and first_step < 120, first_step
    assert total < 600 and (tmp_path / "out" / "depth-tiny" / "model_index.json").is_file(), total
