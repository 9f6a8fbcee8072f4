"""Text-generation backends behind one interface.

A backend turns chat conversations into completions, one per conversation, each with its own
sampling temperature (LADDER cycles temperatures 0.8-1.4 across prompts):

    backend.generate(conversations, temperatures, max_new_tokens) -> list[str]

* :class:`TransformersBackend`: local ``transformers`` model, batched generation with left
  padding (default; runs the embedded SmolLM2-135M-Instruct on a CPU).
* :class:`VLLMBackend`: vLLM's offline ``LLM.chat`` (GPU); vllm is imported only when used.
* :class:`OpenAIBackend`: any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, TGI,
  SGLang, llama.cpp all serve one), over plain HTTP with ``requests``.

Example:
    >>> backend = TransformersBackend("default", batch_size=32)  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "Hi"}]], [1.0], max_new_tokens=8)  # doctest: +SKIP
    ['Hello! How can I help you today?']
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class GenerationBackend(Protocol):
    """The one interface :class:`~ladder_hf.variants.generators.ModelVariantGenerator` needs."""

    model_name: str

    def generate(self, conversations: list[list[dict]], temperatures: list[float], max_new_tokens: int) -> list[str]:
        """One completion per conversation, sampled at that conversation's temperature."""
        ...


def _per_row_temperature_processor(temperatures):
    """A ``LogitsProcessor`` dividing each row's logits by its own temperature.

    ``generate`` takes a single temperature per call; this lets one batch mix the cycled
    temperatures instead of splitting it into one small batch per temperature. Custom processors
    run before transformers' own warpers, so top-k/top-p (when enabled) see tempered logits, as
    with the built-in temperature.
    """
    import torch
    from transformers import LogitsProcessor

    class PerRowTemperature(LogitsProcessor):
        def __init__(self, temps):
            self.temps = torch.tensor(temps, dtype=torch.float32).unsqueeze(1)

        def __call__(self, input_ids, scores):
            return scores / self.temps.to(device=scores.device, dtype=scores.dtype)

    return PerRowTemperature(temperatures)


class TransformersBackend:
    """Batched sampling with a local causal LM (Hub id, local path, or the embedded default).

    Prompts are sorted by length and generated ``batch_size`` at a time with left padding; a
    batch mixes temperatures through a per-row temperature logits processor.

    Example:
        >>> backend = TransformersBackend()  # embedded SmolLM2-135M-Instruct  # doctest: +SKIP
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        batch_size: int = 32,
        top_p: float = 1.0,
        dtype: str | None = None,
        device: str | None = None,
        seed: int | None = None,
        model=None,
        tokenizer=None,
    ):
        from ladder_hf.models import DEFAULT_MODEL_NAME, is_default_model, load_model_and_tokenizer

        given = model is not None and tokenizer is not None
        if not given:
            model, tokenizer = load_model_and_tokenizer(model_name_or_path, dtype=dtype, device=device)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.model, self.tokenizer = model, tokenizer
        self.model.eval()
        self.batch_size = max(1, int(batch_size))
        self.top_p = top_p
        if given and model_name_or_path is None and getattr(model, "name_or_path", ""):
            name = str(model.name_or_path)
        elif is_default_model(model_name_or_path):
            name = DEFAULT_MODEL_NAME
        else:
            name = str(model_name_or_path)
        # A local folder is named by its last component, a Hub id stays as is.
        self.model_name = os.path.basename(name.rstrip("/")) if os.path.isdir(name) else name
        if seed is not None:
            import torch

            torch.manual_seed(seed)

    def generate(
        self, conversations: list[list[dict]], temperatures: list[float], max_new_tokens: int = 256
    ) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        if len(conversations) != len(temperatures):
            raise ValueError("one temperature per conversation")
        texts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations
        ]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        outputs: list[str] = [""] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.model.device)
            processors = LogitsProcessorList([_per_row_temperature_processor([temperatures[i] for i in idx])])
            with torch.no_grad():
                out = self.model.generate(
                    **enc,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=self.top_p,
                    max_new_tokens=max_new_tokens,
                    logits_processor=processors,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for i, text in zip(idx, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                outputs[i] = text
        return outputs


class VLLMBackend:
    """vLLM offline inference (GPU). ``pip install 'ladder-hf[vllm]'``.

    Example:
        >>> backend = VLLMBackend("Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=1)  # doctest: +SKIP
    """

    def __init__(self, model_name_or_path: str | None = None, seed: int | None = None, **llm_kwargs):
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "VLLMBackend needs vLLM, which is not installed. On a GPU machine run "
                "`pip install 'ladder-hf[vllm]'` (or `pip install vllm`), or use TransformersBackend / "
                "OpenAIBackend against a running `vllm serve`."
            ) from err
        from ladder_hf.models import resolve_model_name_or_path

        self._vllm = vllm
        self.model_name = str(model_name_or_path or "SmolLM2-135M-Instruct")
        self.llm = vllm.LLM(model=resolve_model_name_or_path(model_name_or_path), seed=seed or 0, **llm_kwargs)

    def generate(
        self, conversations: list[list[dict]], temperatures: list[float], max_new_tokens: int = 256
    ) -> list[str]:
        params = [self._vllm.SamplingParams(temperature=t, max_tokens=max_new_tokens) for t in temperatures]
        outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


class OpenAIBackend:
    """Any OpenAI-compatible chat completions server, e.g. ``vllm serve`` or TGI.

    Requests run concurrently (``max_workers``) so the server can batch them; transient errors
    (connection failures, 429, 5xx) are retried with backoff by urllib3's ``Retry``.

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_workers: int = 8,
        timeout: float = 120.0,
        retries: int = 3,
    ):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.timeout = timeout
        self.max_workers = max(1, int(max_workers))
        self.session = requests.Session()
        retry = Retry(
            total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504), allowed_methods=["POST"]
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=self.max_workers)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def _one(self, messages: list[dict], temperature: float, max_new_tokens: int) -> str:
        payload = {
            "model": self.model_name,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_new_tokens,
        }
        resp = self.session.post(f"{self.base_url}/chat/completions", json=payload, timeout=self.timeout)
        if resp.status_code != 200:
            raise RuntimeError(f"chat completions request failed: HTTP {resp.status_code}: {resp.text[:300]}")
        choices = resp.json().get("choices") or []
        if not choices:
            return ""
        return (choices[0].get("message") or {}).get("content") or ""

    def generate(
        self, conversations: list[list[dict]], temperatures: list[float], max_new_tokens: int = 256
    ) -> list[str]:
        if len(conversations) != len(temperatures):
            raise ValueError("one temperature per conversation")
        with ThreadPoolExecutor(self.max_workers) as pool:
            futures = [
                pool.submit(self._one, c, t, max_new_tokens) for c, t in zip(conversations, temperatures, strict=True)
            ]
            return [f.result() for f in futures]
