"""Shared fixtures. Tests run offline: no Hub, no downloads."""

from __future__ import annotations

import os

import pytest

# Tests never reach the real Hub; Hub tests point HF_ENDPOINT at a local server themselves.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A folder with a tiny random Llama (2 layers, hidden 32) and SmolLM2's real tokenizer.

    Built in a few seconds from the tokenizer only (no GGUF weight dequantisation), so any test
    that needs "a model" (TRL trainer, generation, recipes) can take this path.
    """
    from ladder_hf.models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """``(model, tokenizer)`` loaded from :func:`tiny_model_dir` (left padding, pad token set)."""
    from ladder_hf.models import load_model_and_tokenizer

    return load_model_and_tokenizer(tiny_model_dir)
