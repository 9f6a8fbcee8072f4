"""Model-written variants, LADDER style.

For each parent problem the generator writes ``ceil(num_variants / variants_per_prompt)``
prompts. Each prompt:

* asks for ``variants_per_prompt`` variants of one kind, drawn from ``mix`` (paper, MIT runs:
  70% easier, 30% equivalent; harder variants are never asked for);
* suggests 3-6 transformations of that kind sampled from :data:`TRANSFORMATIONS`;
* carries a persona from :data:`PERSONAS` as the system prompt;
* is sampled at the next temperature of the cycle ``temperatures`` (paper: 0.8, 1.0, 1.2, 1.4).

Every variant the model writes is read from ``<variant>...</variant>`` tags (or, for weak models
that ignore the tags, from list-like lines) and parsed with
:func:`ladder_hf.verifier.parse_math`; text that does not parse is kept as a candidate with
``expr=None`` so the funnel counts it, then dropped.

By default (``constrained=True``) decoding is constrained to the variant grammar
(:func:`ladder_hf.variants.grammar.variant_grammar`): the model can only write up to
``variants_per_prompt`` lines ``<variant>EXPR</variant>`` in a bounded sympy-syntax subset of the
verifier's language, so what it writes parses. ``constrained=False`` samples freely (parse-and-count).

Example:
    >>> from ladder_hf.generation import TransformersBackend
    >>> from ladder_hf.variants import ModelVariantGenerator
    >>> gen = ModelVariantGenerator(TransformersBackend(), variants_per_prompt=5)  # doctest: +SKIP
    >>> cands = gen.propose([{"id": "p", "integrand": "x**2*exp(x)"}], 10)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from ladder_hf.generation import GenerationBackend
from ladder_hf.variants.base import Candidate, parse_integrand
from ladder_hf.variants.transformations import PERSONAS, sample_kind, sample_transformations

SYSTEM_TEMPLATE = "{persona} You write new integration problems for practice, in sympy syntax."

USER_TEMPLATE = """Here is an integral:
∫ {integrand} dx

Write {n} new integrals that are {goal}. Ideas you may use:
{suggestions}

Put each new integrand inside <variant></variant> tags, one per line, in sympy syntax in x \
(for example <variant>x**2*exp(x)</variant>). Write no ∫, no dx and no explanation."""

GOALS = {
    "easier": "easier than this one: simpler to integrate, yet still something to integrate",
    "equivalent": "about as hard as this one, but different from it",
    "harder": "harder than this one",
}

# A closing tag, or for an unclosed tag (weak models, or output cut at max_new_tokens) the line's end.
_TAG = re.compile(r"<variant>(.*?)(?:</variant>|\n|$)", re.IGNORECASE)
_LIST_PREFIX = re.compile(r"^\s*(?:[-*•]|\d+[.)]|variant\s*\d*\s*:)\s*", re.IGNORECASE)


def extract_variants(text: str, limit: int | None = None) -> list[str]:
    """The variant strings in a completion: ``<variant>`` tags, else list-like lines.

    Only strips decoration (``∫``, ``dx``, ``$``, backticks); the result is still untrusted text
    for :func:`~ladder_hf.verifier.parse_math`.

    Example:
        >>> extract_variants("Sure!\\n<variant>x**2</variant>\\n<variant>∫ sin(x) dx</variant>")
        ['x**2', 'sin(x)']
        >>> extract_variants("1. x*exp(x)\\n2. $\\\\int cos(x) dx$")
        ['x*exp(x)', 'cos(x)']
    """
    found = [m.group(1) for m in _TAG.finditer(text)]
    if not found:
        found = [_LIST_PREFIX.sub("", line) for line in text.splitlines() if _LIST_PREFIX.match(line)]
    cleaned = []
    for s in found:
        for _ in range(2):  # decorations nest: "$∫ x**2 dx$", "`x**3` dx"
            s = s.strip().strip("`$").strip()
            s = s.removeprefix("∫").removeprefix("\\int").strip()
            s = re.sub(r"\s*\bd\s*x\s*$", "", s)
        if s:
            cleaned.append(s)
    return cleaned[:limit] if limit is not None else cleaned


def build_variant_prompt(integrand: str, kind: str, suggestions: list, persona: str, n: int) -> list[dict[str, str]]:
    """The chat messages asking for ``n`` variants of ``kind``."""
    return [
        {"role": "system", "content": SYSTEM_TEMPLATE.format(persona=persona)},
        {
            "role": "user",
            "content": USER_TEMPLATE.format(
                integrand=integrand,
                n=n,
                goal=GOALS[kind],
                suggestions="\n".join(f"- {t.description}" for t in suggestions),
            ),
        },
    ]


@dataclass
class PromptSpec:
    parent_index: int
    kind: str
    transformations: list
    persona: str
    temperature: float
    messages: list[dict] = field(default_factory=list)


@dataclass
class ModelVariantGenerator:
    """LADDER's model-written variant generator over any :class:`GenerationBackend`.

    Example:
        >>> gen = ModelVariantGenerator(OpenAIBackend("http://127.0.0.1:8000/v1", "m"))  # doctest: +SKIP
    """

    backend: GenerationBackend
    variants_per_prompt: int = 5
    mix: dict = field(default_factory=lambda: {"easier": 0.7, "equivalent": 0.3})
    temperatures: tuple[float, ...] = (0.8, 1.0, 1.2, 1.4)
    min_transformations: int = 3
    max_transformations: int = 6
    personas: tuple[str, ...] = PERSONAS
    max_new_tokens: int = 256
    seed: int = 0
    name: str = ""
    constrained: bool = True

    @property
    def grammar(self) -> str | None:
        """The Lark grammar passed to the backend (``None`` when ``constrained`` is off)."""
        if not self.constrained:
            return None
        from ladder_hf.variants.grammar import variant_grammar

        return variant_grammar(self.variants_per_prompt)

    def __post_init__(self):
        if not self.name:
            self.name = getattr(self.backend, "model_name", "model")
        self._rng = random.Random(self.seed)
        self._prompt_counter = 0
        self.last_completions: list[str] = []

    def build_prompts(self, parents: list[dict], num_variants: int) -> list[PromptSpec]:
        """Prompt specs for a batch of parents (kinds, suggestions, personas, cycled temperatures)."""
        specs = []
        per_parent = max(1, math.ceil(num_variants / self.variants_per_prompt))
        for i, parent in enumerate(parents):
            for _ in range(per_parent):
                kind = sample_kind(self._rng, self.mix)
                k = self._rng.randint(self.min_transformations, self.max_transformations)
                suggestions = sample_transformations(self._rng, kind, k)
                persona = self._rng.choice(self.personas)
                temperature = self.temperatures[self._prompt_counter % len(self.temperatures)]
                self._prompt_counter += 1
                messages = build_variant_prompt(
                    parent["integrand"], kind, suggestions, persona, self.variants_per_prompt
                )
                specs.append(PromptSpec(i, kind, suggestions, persona, temperature, messages))
        return specs

    def propose(self, parents: list[dict], num_variants: int) -> list[list[Candidate]]:
        specs = self.build_prompts(parents, num_variants)
        options = {"grammar": self.grammar} if self.constrained else {}  # backends without grammar= still work
        samples = self.backend.generate(
            [s.messages for s in specs],
            temperature=[s.temperature for s in specs],
            max_new_tokens=self.max_new_tokens,
            **options,
        )
        completions = [texts[0] for texts in samples]
        self.last_completions = completions
        out: list[list[Candidate]] = [[] for _ in parents]
        for spec, text in zip(specs, completions, strict=True):
            parent = parents[spec.parent_index]
            bucket = out[spec.parent_index]
            strings = extract_variants(text, limit=self.variants_per_prompt)
            if not strings:
                # Nothing even looked like a variant: one unparsable candidate, so the funnel counts it.
                strings = [text.strip()[:200]]
            for s in strings:
                if len(bucket) >= num_variants:
                    break
                cand = Candidate(
                    parent_id=str(parent.get("id", "")),
                    raw=s,
                    kind=spec.kind,
                    transformations=[t.name for t in spec.transformations],
                    persona=spec.persona,
                    temperature=spec.temperature,
                    generator=self.name,
                )
                try:
                    cand.expr = parse_integrand(s)
                except Exception as err:  # MathParseError and anything else a hostile string provokes
                    cand.parse_error = f"{type(err).__name__}: {err}"[:200]
                bucket.append(cand)
        return out


GENERATOR_KINDS = ("symbolic", "model")


def make_generator(
    kind: str = "symbolic",
    *,
    seed: int = 0,
    backend: str | GenerationBackend = "transformers",
    model_name_or_path: str | None = None,
    base_url: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    model=None,
    tokenizer=None,
    variants_per_prompt: int = 5,
    max_new_tokens: int = 256,
    constrained: bool = True,
    grammar_field: str = "structured_outputs",
):
    """The variant generator every command builds: ``"symbolic"`` (no model) or ``"model"`` (LADDER's
    model-written variants through a generation backend, given by name or as an existing backend).
    ``constrained`` (default on) constrains model decoding to the variant grammar; ``grammar_field``
    is the request field an OpenAI-compatible server reads it from (see
    :class:`~ladder_hf.generation.OpenAIBackend`).

    Example:
        >>> make_generator("symbolic", seed=1).seed
        1
    """
    from ladder_hf.variants.symbolic import SymbolicGenerator

    if kind == "symbolic":
        return SymbolicGenerator(seed=seed)
    if kind != "model":
        raise ValueError(f"unknown generator {kind!r}; choose from {', '.join(GENERATOR_KINDS)}")
    if isinstance(backend, str):
        from ladder_hf.generation import load_backend

        backend = load_backend(
            backend,
            model_name_or_path,
            base_url=base_url,
            batch_size=batch_size,
            device=device,
            seed=seed,
            model=model,
            tokenizer=tokenizer,
            grammar_field=grammar_field,
        )
    return ModelVariantGenerator(
        backend,
        variants_per_prompt=variants_per_prompt,
        max_new_tokens=max_new_tokens,
        seed=seed,
        constrained=constrained,
    )
