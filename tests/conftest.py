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
