"""Text generation behind one interface, used by every command that samples from a model.

Variant writing (:mod:`ladder_hf.variants`), evaluation (``ladder-hf evaluate``), TTRL's answers and
the held-out evaluation during GRPO training all call::

    backend.generate(conversations, n=1, max_new_tokens=256, temperature=1.0, top_p=1.0, stop=(), seed=None)
    -> list[list[str]]   # n completions per conversation, in order

``temperature`` is one value or one per conversation (LADDER cycles temperatures across variant
prompts; one batch mixes them); ``0`` means greedy. ``stop`` strings end a completion, and the
completion keeps the stop string (an ``</answer>`` tag is part of the answer format). A backend added
here works in every command.

* :class:`TransformersBackend`: a local ``transformers`` model (Hub id, folder, the embedded default,
  or a model already in memory, e.g. the policy being trained), batched with left padding.
* :class:`VLLMBackend`: vLLM's offline ``LLM.chat`` (GPU); vllm is imported only when used.
* :class:`OpenAIBackend`: any OpenAI-compatible ``/v1/chat/completions`` server (``vllm serve``, TGI,
  SGLang, llama.cpp), over HTTP with ``requests``.

Example:
    >>> backend = load_backend("transformers")  # the embedded SmolLM2-135M-Instruct  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "Hi"}]], n=2, max_new_tokens=8)  # doctest: +SKIP
    [['Hello! How can I help', 'Hi there! What can I']]
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

BACKENDS = ("transformers", "vllm", "openai")

# Rows decoded at temperature 0 in a batch that also samples: this close to 0 the per-row processor's
# softmax is an argmax for any realistic logit gap.
_GREEDY_IN_SAMPLED_BATCH = 1e-4


class GenerationBackend(Protocol):
    """What every command needs from a model: n completions per chat conversation."""

    model_name: str

    def generate(
        self,
        conversations: Sequence[list[dict]],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | Sequence[float] = 1.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[list[str]]: ...


def per_row(value: float | Sequence[float], count: int) -> list[float]:
    """One temperature per conversation from a scalar or a sequence (checked for length)."""
    if isinstance(value, int | float):
        return [float(value)] * count
    values = [float(v) for v in value]
    if len(values) != count:
        raise ValueError(f"got {len(values)} temperatures for {count} conversations")
    return values


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to and including the first stop string (models may run past it within a token)."""
    ends = [text.find(s) + len(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


def per_row_temperature_processor(temperatures: Sequence[float]):
    """A ``LogitsProcessor`` dividing each row's logits by its own temperature.

    ``generate`` takes one temperature per call; this lets a batch mix temperatures instead of
    splitting into one small batch per temperature. Custom processors run before transformers' own
    warpers, so top-p (when enabled) sees tempered logits, as with the built-in temperature.
    """
    import torch
    from transformers import LogitsProcessor

    class PerRowTemperature(LogitsProcessor):
        def __init__(self, temps):
            self.temps = torch.tensor(temps, dtype=torch.float32).unsqueeze(1)

        def __call__(self, input_ids, scores):
            return scores / self.temps.to(device=scores.device, dtype=scores.dtype)

    return PerRowTemperature(temperatures)


def _display_name(model_name_or_path: str | None, model=None) -> str:
    from ladder_hf.models import DEFAULT_MODEL_NAME, is_default_model

    if model is not None and model_name_or_path is None and getattr(model, "name_or_path", ""):
        name = str(model.name_or_path)
    elif is_default_model(model_name_or_path):
        name = DEFAULT_MODEL_NAME
    else:
        name = str(model_name_or_path)
    # a local folder is named by its last component, a Hub id stays as is
    return os.path.basename(name.rstrip("/")) if os.path.isdir(name) else name


class TransformersBackend:
    """Batched sampling with a local causal LM: a Hub id or path, the embedded default (``None``), or a
    ``model``/``tokenizer`` pair already in memory (nothing is copied; training mode and the tokenizer's
    padding side are restored after each call). ``seed`` seeds the backend's random stream once;
    ``generate(seed=...)`` reseeds one call.

    Prompts are sorted by length and generated ``batch_size`` rows at a time with left padding; a batch
    mixes temperatures through a per-row temperature logits processor.

    Example:
        >>> backend = TransformersBackend()  # embedded SmolLM2-135M-Instruct  # doctest: +SKIP
        >>> backend.generate([[{"role": "user", "content": "2+2?"}]], temperature=0, max_new_tokens=4)  # doctest: +SKIP
        [['2 + 2 = 4']]
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        batch_size: int = 32,
        dtype: str | None = None,
        device: str | None = None,
        seed: int | None = None,
        model=None,
        tokenizer=None,
    ):
        from ladder_hf.models import load_model_and_tokenizer

        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer, or neither")
        if model is None:
            model, tokenizer = load_model_and_tokenizer(model_name_or_path, dtype=dtype, device=device)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = max(1, int(batch_size))
        self.model_name = _display_name(model_name_or_path, model)
        if seed is not None:  # once: successive calls continue one random stream
            from transformers import set_seed

            set_seed(seed)

    @contextlib.contextmanager
    def _generating(self):
        was_training, side = self.model.training, self.tokenizer.padding_side
        self.model.eval()
        self.tokenizer.padding_side = "left"
        try:
            yield
        finally:
            self.model.train(was_training)
            self.tokenizer.padding_side = side

    def generate(
        self,
        conversations: Sequence[list[dict]],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | Sequence[float] = 1.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[list[str]]:
        import torch
        from transformers import LogitsProcessorList, set_seed

        temps = per_row(temperature, len(conversations))
        texts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations
        ]
        # one row per (conversation, sample); similar lengths share a batch (less padding)
        rows = sorted(((i, j) for i in range(len(texts)) for j in range(n)), key=lambda r: len(texts[r[0]]))
        outputs: list[list[str]] = [[""] * n for _ in texts]
        if seed is not None:  # this call's samples depend on this seed alone (a resumed run repeats them)
            set_seed(seed)
        stop = [s for s in stop if s]
        with self._generating(), torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i, _ in batch], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.model.device)
                batch_temps = [temps[i] for i, _ in batch]
                options = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
                if stop:
                    options.update(stop_strings=stop, tokenizer=self.tokenizer)
                if all(t <= 0 for t in batch_temps):
                    options["do_sample"] = False
                else:
                    tempered = [t if t > 0 else _GREEDY_IN_SAMPLED_BATCH for t in batch_temps]
                    options.update(
                        do_sample=True,
                        temperature=1.0,
                        top_k=0,
                        top_p=top_p,
                        logits_processor=LogitsProcessorList([per_row_temperature_processor(tempered)]),
                    )
                out = self.model.generate(**enc, **options)
                decoded = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                for (i, j), text in zip(batch, decoded, strict=True):
                    outputs[i][j] = cut_at_stop(text, stop)
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
        self.seed = seed
        self.model_name = _display_name(model_name_or_path)
        self.llm = vllm.LLM(model=resolve_model_name_or_path(model_name_or_path), seed=seed or 0, **llm_kwargs)

    def sampling_params(self, n: int, max_new_tokens: int, temperature: float, top_p: float, stop, seed):
        """vLLM ``SamplingParams`` for one conversation (kept separate so the request can be tested)."""
        return self._vllm.SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p if temperature > 0 else 1.0,
            max_tokens=max_new_tokens,
            stop=list(stop) or None,
            include_stop_str_in_output=True,
            seed=seed,
        )

    def generate(
        self,
        conversations: Sequence[list[dict]],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | Sequence[float] = 1.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[list[str]]:
        seed = self.seed if seed is None else seed
        params = [
            self.sampling_params(n, max_new_tokens, t, top_p, stop, None if seed is None else seed + i)
            for i, t in enumerate(per_row(temperature, len(conversations)))
        ]
        outputs = self.llm.chat(list(conversations), sampling_params=params, use_tqdm=False)
        return [[choice.text for choice in output.outputs] for output in outputs]


class OpenAIBackend:
    """Any OpenAI-compatible chat completions server, e.g. ``vllm serve`` or TGI.

    Requests run concurrently (``max_workers``) so the server can batch them; transient errors
    (connection failures, 429, 5xx) are retried with backoff by urllib3's ``Retry``. Stop strings are
    sent as ``stop`` and put back at the end of the text when the server reports which one ended it
    (vLLM's ``stop_reason``), so completions look the same on every backend.

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

    def request(self, messages: list[dict], n: int, max_new_tokens: int, temperature: float, top_p: float, stop, seed):
        """The JSON body of one chat completions request."""
        payload = {
            "model": self.model_name,
            "messages": messages,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_new_tokens,
        }
        if stop:
            payload["stop"] = list(stop)
        if seed is not None:
            payload["seed"] = seed
        return payload

    def _one(self, payload: dict) -> list[str]:
        resp = self.session.post(f"{self.base_url}/chat/completions", json=payload, timeout=self.timeout)
        if resp.status_code != 200:
            raise RuntimeError(f"chat completions request failed: HTTP {resp.status_code}: {resp.text[:300]}")
        texts = []
        for choice in sorted(resp.json().get("choices") or [], key=lambda c: c.get("index", 0)):
            text = (choice.get("message") or {}).get("content") or ""
            ended_by = choice.get("stop_reason")
            if isinstance(ended_by, str) and ended_by in payload.get("stop", ()) and not text.endswith(ended_by):
                text += ended_by
            texts.append(text)
        return (texts + [""] * payload["n"])[: payload["n"]]

    def generate(
        self,
        conversations: Sequence[list[dict]],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | Sequence[float] = 1.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> list[list[str]]:
        temps = per_row(temperature, len(conversations))
        payloads = [
            self.request(c, n, max_new_tokens, t, top_p, stop, None if seed is None else seed + i)
            for i, (c, t) in enumerate(zip(conversations, temps, strict=True))
        ]
        with ThreadPoolExecutor(self.max_workers) as pool:
            return list(pool.map(self._one, payloads))


def load_backend(
    backend: str = "transformers",
    model_name_or_path: str | None = None,
    *,
    base_url: str | None = None,
    batch_size: int = 32,
    dtype: str | None = None,
    device: str | None = None,
    seed: int | None = None,
    model=None,
    tokenizer=None,
) -> GenerationBackend:
    """The backend named ``backend`` (one of :data:`BACKENDS`) for a model: how every command builds one.

    Example:
        >>> load_backend("openai", "Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1").model_name
        'Qwen/Qwen2.5-7B-Instruct'
    """
    if backend == "transformers":
        return TransformersBackend(
            model_name_or_path, batch_size, dtype=dtype, device=device, seed=seed, model=model, tokenizer=tokenizer
        )
    if backend == "vllm":
        kwargs = {"dtype": dtype} if dtype else {}
        return VLLMBackend(model_name_or_path, seed=seed, **kwargs)
    if backend == "openai":
        if not base_url or not model_name_or_path:
            raise ValueError("the openai backend needs base_url and a model name")
        return OpenAIBackend(base_url, model_name_or_path)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
