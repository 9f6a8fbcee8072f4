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


class HubServerURL(str):
    """The test Hub's endpoint URL (a ``str``), with the running server at ``.server``."""

    server = None


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A fresh Hub-compatible server on 127.0.0.1 (tests/hub_server.py); yields its URL.

    Sets HF_ENDPOINT/HF_TOKEN/HF_HUB_DISABLE_XET, turns the offline switches off and gives the
    clients an empty HF_HOME, for this test only. ``huggingface_hub`` and ``datasets`` read these
    at import time, so run client code in a subprocess (it inherits them); ``hub_server.server``
    is the live :class:`tests.hub_server.HubServer` for fault injection and state checks.
    """
    from hub_server import HubServer

    server = HubServer().start()
    env = {
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": "hf_test_token",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_EVALUATE_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    url = HubServerURL(server.url)
    url.server = server
    try:
        yield url
    finally:
        server.stop()
