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
