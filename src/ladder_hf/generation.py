"""Text generation behind one interface, used by every command that samples from a model.

Variant writing (:mod:`ladder_hf.variants`), evaluation (``ladder-hf evaluate``), TTRL's answers and
the held-out evaluation during GRPO training all call::

    backend.generate(conversations, n=1, max_new_tokens=256, temperature=1.0, top_p=1.0, stop=(), seed=None,
                     grammar=None)
    -> list[list[str]]   # n completions per conversation, in order

``temperature`` is one value or one per conversation (LADDER cycles temperatures across variant
prompts; one batch mixes them); ``0`` means greedy. ``stop`` strings end a completion, and the
completion keeps the stop string (an ``</answer>`` tag is part of the answer format). ``grammar`` (a
Lark grammar, e.g. :func:`ladder_hf.variants.grammar.variant_grammar`) constrains every completion to
its language; each backend applies it its own way (a batched llguidance logits processor, vLLM's
structured outputs, the server's structured-output request field). A backend added here works in
every command.

* :class:`TransformersBackend`: a local ``transformers`` model (Hub id, folder, the embedded default,
  or a model already in memory, e.g. the policy being trained), batched with left padding.
* :class:`VLLMBackend`: vLLM's offline ``LLM.chat`` (GPU); vllm is imported only when used.
* :class:`OpenAIBackend`: any OpenAI-compatible ``/v1/chat/completions`` server (``vllm serve``, TGI,
  SGLang, llama.cpp, ``transformers serve``), through ``huggingface_hub.InferenceClient``.

Example:
    >>> backend = load_backend("transformers")  # the embedded SmolLM2-135M-Instruct  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "Hi"}]], n=2, max_new_tokens=8)  # doctest: +SKIP
    [['Hello! How can I help', 'Hi there! What can I']]
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

BACKENDS = ("transformers", "vllm", "openai")

logger = logging.getLogger(__name__)

# Rows decoded at temperature 0 in a batch that also samples: this close to 0 the per-row processor's
# softmax is an argmax for any realistic logit gap.
_GREEDY_IN_SAMPLED_BATCH = 1e-4

CONSTRAINED_INSTALL_HINT = (
    "grammar-constrained decoding with the transformers backend needs llguidance: "
    "`pip install 'ladder-hf[constrained]'` (or `pip install llguidance`); or switch constraints off "
    "(ModelVariantGenerator(constrained=False), `ladder-hf variants generate --no-constrained`)"
)


def require_llguidance():
    """The ``llguidance`` module, or an ImportError that says how to install it or switch it off."""
    try:
        import llguidance
        import llguidance.hf
        import llguidance.torch
    except ImportError as err:
        raise ImportError(CONSTRAINED_INSTALL_HINT) from err
    return llguidance


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
        grammar: str | None = None,
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


def grammar_logits_processor(grammar: str, tokenizer, batch_size: int, prompt_length: int, lltokenizer=None):
    """A batched ``LogitsProcessor`` that only lets each row write text of the Lark ``grammar``.

    One llguidance matcher per row follows the tokens the row sampled (those after
    ``prompt_length``) and fills the row's bit of a shared token bitmask; the masks of the batch are
    computed in parallel (llguidance's executor, outside the GIL), then disallowed tokens get
    ``-inf``. Once a row's grammar is complete only end-of-sequence is allowed, so constrained rows
    stop as soon as their text is done. A row whose matcher failed (it cannot, unless a token outside
    the mask was forced in) is left to end-of-sequence as well.

    Runs before transformers' own warpers (temperature, top-p), so top-p sees only allowed tokens.

    Example:
        >>> proc = grammar_logits_processor('start: "<variant>" "x" "</variant>"', tok, 4, 12)  # doctest: +SKIP
    """
    import torch
    from transformers import LogitsProcessor

    llguidance = require_llguidance()
    if lltokenizer is None:
        lltokenizer = llguidance.hf.from_tokenizer(tokenizer)
    compiled = llguidance.LLMatcher.grammar_from_lark(grammar)
    eos = tokenizer.eos_token_id

    class GrammarConstraint(LogitsProcessor):
        def __init__(self):
            self.matchers = [llguidance.LLMatcher(lltokenizer, compiled) for _ in range(batch_size)]
            for m in self.matchers:
                if m.is_error():
                    raise ValueError(f"grammar rejected by llguidance: {m.get_error()}")
            self.executor = llguidance.LLExecutor()
            self.bitmask = llguidance.torch.allocate_token_bitmask(batch_size, lltokenizer.vocab_size)
            self.bits = torch.arange(32, dtype=torch.int32)

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] > prompt_length:  # feed each live row the token it just sampled
                for m, token in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                    if not m.is_stopped() and not m.is_error():
                        m.consume_token(token)
            live = [(m, i) for i, m in enumerate(self.matchers) if not m.is_error()]
            llguidance.torch.fill_next_token_bitmask_par(self.executor, live, self.bitmask)
            allowed = ((self.bitmask.unsqueeze(-1) >> self.bits) & 1).bool().flatten(1)
            width = min(allowed.shape[1], scores.shape[1])
            mask = torch.zeros(scores.shape, dtype=torch.bool)
            mask[:, :width] = allowed[:, :width]
            for i, m in enumerate(self.matchers):
                if m.is_error():
                    mask[i] = False
                    mask[i, eos] = True
            return scores.masked_fill(~mask.to(scores.device), float("-inf"))

    return GrammarConstraint()


def cache_argument(model) -> str:
    """The name the model's forward takes its key/value cache by: ``cache`` (recent transformers 5.x) or
    ``past_key_values`` (earlier releases).

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> cache_argument(LlamaForCausalLM(LlamaConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, num_key_value_heads=2, vocab_size=16)))
        'cache'
    """
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def output_cache(output):
    """The key/value cache of a forward pass's output, under either name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def distinct_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of a batch, and where each row's copy is: ``(first, inverse)``.

    ``first`` indexes one row per distinct (tokens, mask) pair and ``inverse`` maps every row to its entry
    in ``first``, so ``input_ids[first][inverse]`` equals ``input_ids``. The mask is part of the key: a pad
    id that is also a real token must not merge two prompts. The shared-prompt generation and loss both
    group a GRPO batch with it.

    Example:
        >>> import torch
        >>> ids = torch.tensor([[0, 5, 6], [4, 5, 6], [0, 5, 6]])
        >>> mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1]])
        >>> first, inverse = distinct_rows(ids, mask)
        >>> torch.equal(ids[first][inverse], ids), len(first)
        (True, 2)
    """
    import torch

    keys = torch.cat([input_ids, attention_mask.to(input_ids.dtype)], dim=1)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    rows = torch.arange(len(keys), device=keys.device)
    first = torch.full((int(inverse.max()) + 1,), len(keys), device=keys.device, dtype=rows.dtype)
    first = first.scatter_reduce(0, inverse, rows, reduce="amin")
    return first, inverse


@contextlib.contextmanager
def inverse_cdf_sampling():
    """While active, ``torch.multinomial(probs, 1)`` on CPU tensors draws each row by inverse CDF.

    ``generate`` samples a token with ``torch.multinomial(probs, num_samples=1)``, which on a CPU draws an
    exponential variate for every vocabulary entry: 8.2 ms per decoding step for 8 rows x 49k tokens on an
    AMD EPYC core pair, ~10% of a bf16 step of SmolLM2-135M. One uniform per row against the cumulative sum
    (in float64, so tokens of tiny probability keep their share) draws from the same distribution in 0.7 ms
    (``benchmarks/decode_step.py``).
    Anything else (more than one sample, other devices, an invalid distribution, for which
    ``torch.multinomial`` raises its own error) goes to ``torch.multinomial``.

    Example:
        >>> import torch
        >>> probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
        >>> with inverse_cdf_sampling():
        ...     draws = torch.cat([torch.multinomial(probs, 1) for _ in range(200)], 1)
        >>> draws[0].unique().tolist(), sorted(draws[1].unique().tolist())
        ([1], [0, 2])
    """
    import torch

    multinomial = torch.multinomial

    def sample(input, num_samples, replacement=False, *, generator=None, out=None):
        if num_samples != 1 or out is not None or input.device.type != "cpu" or input.dim() not in (1, 2):
            return multinomial(input, num_samples, replacement, generator=generator, out=out)
        cdf = input.to(torch.float64).cumsum(-1)
        total = cdf[..., -1:]
        if not (torch.isfinite(total).all() and (total > 0).all()) or (input < 0).any():
            return multinomial(input, num_samples, replacement, generator=generator)
        # right=True: the first index whose cumulative sum exceeds the draw, so never one of probability 0
        draw = torch.rand(total.shape, dtype=torch.float64, generator=generator) * total
        return torch.searchsorted(cdf, draw, right=True)

    torch.multinomial = sample
    try:
        yield
    finally:
        torch.multinomial = multinomial


def generate_with_shared_prefill(
    model, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs
) -> torch.Tensor:
    """``model.generate`` that runs the prefill of each distinct prompt once, however many rows repeat it.

    A GRPO batch holds every prompt ``num_generations`` times. The rows' distinct prompts (all tokens but the
    last) go through the model in one forward pass, with the position ids ``generate`` itself would use, and
    their key/value cache is indexed out to every row; ``generate`` then starts from that cache and feeds
    only the last prompt token. Sampling draws a token by inverse CDF (:func:`inverse_cdf_sampling`), from
    the distribution ``generate`` draws from; with the same seed, it draws what a plain ``generate`` call does
    under :func:`inverse_cdf_sampling`, up to float rounding.
    Anything this does not cover (no repeated prompt, multimodal inputs, a cache of the caller's, a static
    cache, any other tensor input) goes to ``generate`` without the shared prefill. Used by the LADDER
    trainer and by the transformers backend of :mod:`ladder_hf.generation` (evaluation and solve-rate
    sampling, where every problem is sampled several times).

    Example:
        >>> import torch
        >>> from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
        ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, pad_token_id=0)).eval()
        >>> ids = torch.tensor([[0, 5, 6], [0, 5, 6], [4, 5, 6]])
        >>> mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1]])
        >>> config = GenerationConfig(max_new_tokens=4, do_sample=False, pad_token_id=0)
        >>> shared = generate_with_shared_prefill(model, ids, mask, generation_config=config)
        >>> torch.equal(shared, model.generate(input_ids=ids, attention_mask=mask, generation_config=config))
        True
    """
    import torch

    def plain():
        with inverse_cdf_sampling():
            return type(model).generate(model, input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    config = kwargs.get("generation_config") or model.generation_config
    if (
        input_ids is None
        or attention_mask is None
        or input_ids.size(1) < 2
        # other model inputs (images, a cache, position ids) would have to be split and indexed as well
        or any(isinstance(v, torch.Tensor) or k in ("cache", "past_key_values") for k, v in kwargs.items())
        or (kwargs.get("cache_implementation") or getattr(config, "cache_implementation", None)) is not None
    ):
        return plain()
    first, inverse = distinct_rows(input_ids, attention_mask)
    if len(first) == len(inverse):
        return plain()
    prefix_ids, prefix_mask = input_ids[first, :-1], attention_mask[first, :-1]
    # generate numbers positions by the attention mask (padding at 0), and so must the prefill it skips
    position_ids = (prefix_mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        output = model(
            input_ids=prefix_ids,
            attention_mask=prefix_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
        )
    cache = output_cache(output)
    cache.batch_select_indices(inverse)
    kwargs[cache_argument(model)] = cache
    return plain()


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
    mixes temperatures through a per-row temperature logits processor. ``grammar`` adds
    :func:`grammar_logits_processor` (llguidance, ``pip install 'ladder-hf[constrained]'``).

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
        self._lltokenizer = None  # llguidance's view of the tokenizer, built on the first constrained call
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
        grammar: str | None = None,
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
        if grammar is not None and self._lltokenizer is None:
            self._lltokenizer = require_llguidance().hf.from_tokenizer(self.tokenizer)  # once: ~1 s for 50k tokens
        with self._generating(), torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i, _ in batch], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.model.device)
                batch_temps = [temps[i] for i, _ in batch]
                options = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
                processors = LogitsProcessorList()
                if grammar is not None:
                    processors.append(
                        grammar_logits_processor(
                            grammar, self.tokenizer, len(batch), enc["input_ids"].shape[1], self._lltokenizer
                        )
                    )
                if stop:
                    options.update(stop_strings=stop, tokenizer=self.tokenizer)
                if all(t <= 0 for t in batch_temps):
                    options["do_sample"] = False
                else:
                    tempered = [t if t > 0 else _GREEDY_IN_SAMPLED_BATCH for t in batch_temps]
                    processors.append(per_row_temperature_processor(tempered))
                    options.update(do_sample=True, temperature=1.0, top_k=0, top_p=top_p)
                if processors:
                    options["logits_processor"] = processors
                # the n samples of a conversation are adjacent rows: their prompt is prefilled once
                out = generate_with_shared_prefill(self.model, **enc, **options)
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

    def sampling_params(
        self, n: int, max_new_tokens: int, temperature: float, top_p: float, stop, seed, grammar: str | None = None
    ):
        """vLLM ``SamplingParams`` for one conversation (kept separate so the request can be tested).

        A ``grammar`` (Lark) goes through vLLM's structured outputs:
        ``SamplingParams(structured_outputs=StructuredOutputsParams(grammar=...))`` (vLLM >= 0.10.2), or
        on older versions ``SamplingParams(guided_decoding=GuidedDecodingParams(grammar=...))``. vLLM's
        xgrammar backend converts Lark to its EBNF, its guidance backend (llguidance) reads Lark as is.
        """
        options = {}
        if grammar is not None:
            sampling = getattr(self._vllm, "sampling_params", None)
            structured = getattr(sampling, "StructuredOutputsParams", None)
            if structured is not None:
                options["structured_outputs"] = structured(grammar=grammar)
            else:
                options["guided_decoding"] = sampling.GuidedDecodingParams(grammar=grammar)
        return self._vllm.SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p if temperature > 0 else 1.0,
            max_tokens=max_new_tokens,
            stop=list(stop) or None,
            include_stop_str_in_output=True,
            seed=seed,
            **options,
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
        grammar: str | None = None,
    ) -> list[list[str]]:
        seed = self.seed if seed is None else seed
        params = [
            self.sampling_params(n, max_new_tokens, t, top_p, stop, None if seed is None else seed + i, grammar)
            for i, t in enumerate(per_row(temperature, len(conversations)))
        ]
        outputs = self.llm.chat(list(conversations), sampling_params=params, use_tqdm=False)
        return [[choice.text for choice in output.outputs] for output in outputs]


class ChatCompletionsError(RuntimeError):
    """A chat completions request the server answered with an error (``status``) or never answered."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(f"chat completions request failed: {f'HTTP {status}' if status else 'no answer'}: {detail}")
        self.status = status
        self.detail = detail


class OpenAIBackend:
    """Any OpenAI-compatible chat completions server, e.g. ``vllm serve``, TGI or ``transformers serve``.

    Requests go through ``huggingface_hub.InferenceClient(base_url=...).chat_completion``, the grammar
    fields through its ``extra_body``. They run concurrently (``max_workers``) so the server can batch
    them; transient failures (connection errors, 408, 429, 5xx) are retried ``retries`` times with
    backoff (the client itself does not retry). Stop strings are sent as ``stop``; the completion keeps
    the stop string that ended it (put back when the server drops it and names it, as vLLM's
    ``stop_reason`` does; cut there when a server writes past it), so completions look the same on every
    backend. A server that returns fewer than ``n`` choices (``transformers serve`` ignores ``n``) is
    asked again for the rest, each time with a new seed.

    Where InferenceClient does not fit, a plain ``requests`` POST of the same body is used instead:
    under ``HF_HUB_OFFLINE=1`` every request of huggingface_hub's HTTP session is refused, a server on
    127.0.0.1 included (``OfflineModeIsEnabled``), and a local server is what offline machines use.

    A ``grammar`` is sent in the request field the server reads, chosen by ``grammar_field``:

    * ``"structured_outputs"`` (default): ``{"structured_outputs": {"grammar": <lark>}}``, vLLM >= 0.10.2;
    * ``"guided_grammar"``: ``{"guided_grammar": <lark>}``, older vLLM (removed in vLLM 0.12);
    * ``"ebnf"``: ``{"ebnf": <gbnf>}``, SGLang (the grammar is converted with
      :func:`ladder_hf.variants.grammar.lark_to_gbnf`, so it must be one that module wrote).

    A server that refuses it (HTTP 400/422 on a request that carried a grammar; ``transformers serve``
    answers 422 "Unexpected fields") gets the request again without it: generation goes on
    unconstrained, the first refusal is logged as a warning, later requests skip the grammar, and
    ``grammar_refusals`` counts them. Unconstrained text is then parsed and counted by the caller as usual.

    ``api_key`` (else ``$OPENAI_API_KEY``) is sent as a bearer token; with neither, no Authorization
    header is sent (InferenceClient would otherwise send the Hugging Face token to this server).

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")  # doctest: +SKIP
    """

    GRAMMAR_FIELDS = ("structured_outputs", "guided_grammar", "ebnf")
    RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
    # Fields chat_completion takes as arguments; the rest of a request body goes in its extra_body.
    CLIENT_FIELDS = ("n", "temperature", "top_p", "max_tokens", "stop", "seed")
    # Top-up requests (a server that ignored ``n``) shift the seed by this much per round, far from
    # the ``seed + i`` of the other conversations of a call.
    TOPUP_SEED_STRIDE = 1_000_003

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_workers: int = 8,
        timeout: float = 120.0,
        retries: int = 3,
        grammar_field: str = "structured_outputs",
    ):
        from huggingface_hub import InferenceClient

        if grammar_field not in self.GRAMMAR_FIELDS:
            raise ValueError(f"grammar_field must be one of {', '.join(self.GRAMMAR_FIELDS)}, got {grammar_field!r}")
        self.grammar_field = grammar_field
        self.grammar_refused: str | None = None  # the server's answer the first time it refused a grammar
        self.grammar_refusals = 0  # requests sent again (or straight away) without their grammar
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.max_workers = max(1, int(max_workers))
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        # Without a key InferenceClient sends the local Hugging Face token; a None header is left out.
        self.client = InferenceClient(
            base_url=self.base_url, api_key=key, timeout=timeout, headers=None if key else {"authorization": None}
        )
        self._key = key
        self._session = None  # requests.Session for offline mode, made on first use

    def request(
        self,
        messages: list[dict],
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop,
        seed,
        grammar: str | None = None,
    ) -> dict:
        """The JSON body of one chat completions request (``grammar`` in the field ``grammar_field`` names)."""
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
        if grammar is not None:
            if self.grammar_field == "structured_outputs":
                payload["structured_outputs"] = {"grammar": grammar}
            elif self.grammar_field == "guided_grammar":
                payload["guided_grammar"] = grammar
            else:
                from ladder_hf.variants.grammar import lark_to_gbnf

                payload["ebnf"] = lark_to_gbnf(grammar)
        return payload

    def _post_hub(self, body: dict) -> dict:
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

        args = {k: body[k] for k in self.CLIENT_FIELDS if k in body}
        extra = {k: v for k, v in body.items() if k not in args and k not in ("model", "messages")}
        try:
            out = self.client.chat_completion(body["messages"], model=body["model"], extra_body=extra or None, **args)
        except HfHubHTTPError as err:
            raise ChatCompletionsError(err.response.status_code, err.response.text[:300]) from err
        except InferenceTimeoutError as err:
            raise ChatCompletionsError(None, f"no answer within {self.timeout} s") from err
        # The choice objects keep fields the client does not know (vLLM's stop_reason); the output's own
        # dict view does not.
        return {"choices": [dict(choice) for choice in out.choices or []]}

    def _post_requests(self, body: dict) -> dict:
        import requests

        if self._session is None:
            from requests.adapters import HTTPAdapter

            self._session = requests.Session()
            self._session.mount("http://", HTTPAdapter(pool_maxsize=self.max_workers))
            self._session.mount("https://", HTTPAdapter(pool_maxsize=self.max_workers))
            if self._key:
                self._session.headers["Authorization"] = f"Bearer {self._key}"
        try:
            resp = self._session.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout)
        except requests.Timeout as err:
            raise ChatCompletionsError(None, f"no answer within {self.timeout} s") from err
        if resp.status_code != 200:
            raise ChatCompletionsError(resp.status_code, resp.text[:300])
        return resp.json()

    def _send(self, body: dict) -> dict:
        """The server's answer to one request body, retrying transient failures with backoff."""
        from huggingface_hub import is_offline_mode

        post = self._post_requests if is_offline_mode() else self._post_hub
        for attempt in range(self.retries + 1):
            try:
                return post(body)
            except ChatCompletionsError as err:
                if err.status not in self.RETRY_STATUSES or attempt == self.retries:
                    raise
            except _connection_errors():
                if attempt == self.retries:
                    raise
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _texts(self, answer: dict, stop: Sequence[str]) -> list[str]:
        texts = []
        for choice in sorted(answer.get("choices") or [], key=lambda c: c.get("index") or 0):
            text = (choice.get("message") or {}).get("content") or ""
            ended_by = choice.get("stop_reason")
            if isinstance(ended_by, str) and ended_by in stop and not text.endswith(ended_by):
                text += ended_by
            texts.append(cut_at_stop(text, stop))
        return texts

    def _one(self, payload: dict) -> list[str]:
        constrained = self.grammar_field in payload
        if constrained and self.grammar_refused is not None:  # known to refuse: don't ask twice per request
            payload = {k: v for k, v in payload.items() if k != self.grammar_field}
            self.grammar_refusals += 1
        try:
            answer = self._send(payload)
        except ChatCompletionsError as err:
            if err.status not in (400, 422) or self.grammar_field not in payload:
                raise
            # A server without structured outputs for this field (or this grammar): go on unconstrained.
            if self.grammar_refused is None:
                self.grammar_refused = f"HTTP {err.status}: {err.detail}"
                logger.warning(
                    "%s refused the grammar in %r (%s); generating unconstrained from now on",
                    self.base_url,
                    self.grammar_field,
                    self.grammar_refused,
                )
            self.grammar_refusals += 1
            payload = {k: v for k, v in payload.items() if k != self.grammar_field}
            answer = self._send(payload)
        n, stop = payload["n"], payload.get("stop", ())
        texts = self._texts(answer, stop)[:n]
        for round_ in range(1, n):  # at most n - 1 more requests, one choice each in the worst case
            if len(texts) >= n:
                break
            more = {**payload, "n": n - len(texts)}
            if "seed" in payload:
                more["seed"] = payload["seed"] + self.TOPUP_SEED_STRIDE * round_
            got = self._texts(self._send(more), stop)
            if not got:
                break
            texts += got[: n - len(texts)]
        return texts + [""] * (n - len(texts))

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
        grammar: str | None = None,
    ) -> list[list[str]]:
        temps = per_row(temperature, len(conversations))
        payloads = [
            self.request(c, n, max_new_tokens, t, top_p, stop, None if seed is None else seed + i, grammar)
            for i, (c, t) in enumerate(zip(conversations, temps, strict=True))
        ]
        with ThreadPoolExecutor(self.max_workers) as pool:
            return list(pool.map(self._one, payloads))


def _connection_errors() -> tuple[type[Exception], ...]:
    """Errors of a request that never reached the server (retried like a 503); timeouts are not among them."""
    import requests

    try:
        import httpx2 as httpx  # the HTTP client of huggingface_hub >= 2
    except ImportError:
        import httpx
    return (requests.ConnectionError, httpx.NetworkError, httpx.RemoteProtocolError)


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
    grammar_field: str = "structured_outputs",
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
        return OpenAIBackend(base_url, model_name_or_path, grammar_field=grammar_field)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
