"""FSDP2 on CPU: two gloo processes equal one process on the same global batch; sharded save/resume.

The worker (tests/fsdp_worker.py) trains the tiny DiT with the trainer's loss; see its docstring."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("fsdp_worker.py")


def _env():
    src = str(Path(__file__).resolve().parents[1] / "src")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false")


def test_fsdp_wraps_every_flux_block_as_a_unit():
    from diffusers.models.transformers.transformer_flux import (
        FluxSingleTransformerBlock,
        FluxTransformerBlock,
    )

    from edit2perceive.training.fsdp import flux_block_classes

    assert flux_block_classes() == (FluxTransformerBlock, FluxSingleTransformerBlock)


@pytest.mark.slow
def test_two_process_fsdp_equals_one_process_and_resumes(tmp_path):
    from safetensors.torch import load_file

    from edit2perceive.testing import tiny_kontext_components

    fsdp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(WORKER), "fsdp", str(tmp_path)], capture_output=True, text=True, env=_env(), timeout=900)
    assert fsdp.returncode == 0, fsdp.stderr[-4000:]
    single = subprocess.run([sys.executable, str(WORKER), "single", str(tmp_path)], capture_output=True, text=True,
                            env=_env(), timeout=900)
    assert single.returncode == 0, single.stderr[-4000:]
    one, two = load_file(tmp_path / "single.safetensors"), load_file(tmp_path / "fsdp.safetensors")
    resumed = load_file(tmp_path / "fsdp_resumed.safetensors")
    init = tiny_kontext_components(seed=0)["transformer"].state_dict()
    assert set(one) == set(two) == set(init)
    assert max((one[k] - init[k]).abs().max().item() for k in one) > 1e-3  # it trained
    for k in one:  # float32 sums in a different order (reduce-scatter): float tolerance
        torch.testing.assert_close(two[k], one[k], atol=5e-5, rtol=1e-4)
        torch.testing.assert_close(resumed[k], two[k], atol=1e-6, rtol=1e-6)
    from diffusers import FluxTransformer2DModel

    exported = FluxTransformer2DModel.from_pretrained(tmp_path / "transformer")  # rank 0's diffusers folder
    torch.testing.assert_close(exported.state_dict()["proj_out.weight"], two["proj_out.weight"])
