"""Shared fixtures. Tiny components are built once per session (a few seconds)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_components():
    """Tiny Kontext components (seed 0). Treat as read-only: tests share them."""
    from edit2perceive.testing import tiny_kontext_components

    return tiny_kontext_components(seed=0)


@pytest.fixture(scope="module")
def pipes(tiny_components):
    """One pipeline per task on the tiny components, progress bars off (per test module)."""
    from edit2perceive import Edit2PerceivePipeline

    out = {}
    for task in ("depth", "normal", "matting"):
        out[task] = Edit2PerceivePipeline(**tiny_components, task=task)
        out[task].set_progress_bar_config(disable=True)
    return out


@pytest.fixture(scope="module")
def model_dirs(tiny_components, tmp_path_factory):
    """Saved tiny pipelines, one folder per task (``model_dirs / "depth"``, ...), per test module."""
    from edit2perceive import Edit2PerceivePipeline

    root = tmp_path_factory.mktemp("models")
    for task in ("depth", "normal", "matting"):
        Edit2PerceivePipeline(**tiny_components, task=task).save_pretrained(root / task)
    return root
