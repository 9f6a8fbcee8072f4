"""Reward functions for ``trl.GRPOTrainer`` (TRL 1.x calling convention), open-r1 style registry.

``integration_reward`` scores 1.0 for an answer the verifier accepts and 0.0 otherwise; it reads the
dataset columns ``integrand`` and optional ``lower``/``upper`` (missing, None or "" = indefinite)
from the keyword arguments TRL passes. ``format_reward`` scores the answer format on its own, so the
two can be weighted with ``GRPOConfig(reward_weights=[...])``.

Example:
    >>> from trl import GRPOConfig, GRPOTrainer  # doctest: +SKIP
    >>> from ladder_hf.rewards import get_reward_funcs
    >>> trainer = GRPOTrainer(model=..., reward_funcs=get_reward_funcs(["integration", "format"]),  # doctest: +SKIP
    ...                       train_dataset=dataset, args=GRPOConfig(...))
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from ladder_hf.verifier import MathParseError, verify_batch
from ladder_hf.verifier.numeric import compile_math
from ladder_hf.verifier.sandbox import DEFAULT_TIMEOUT

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_BOXED_RE = re.compile(r"\\boxed\s*\{")
MAX_COMPLETION_CHARS = 100_000  # regex work on a completion is bounded by this


def _completion_text(completion) -> str:
    """Plain text of a completion: a string, or TRL's conversational ``[{"role", "content"}, ...]``."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content", "")
        if isinstance(content, list):  # multimodal parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content or "")
    if isinstance(completion, list):
        assistant = [m for m in completion if not isinstance(m, dict) or m.get("role", "assistant") == "assistant"]
        return "\n".join(_completion_text(m) for m in assistant)
    return str(completion)


def _last_boxed(text: str) -> str | None:
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i]
    return None


def extract_answer(text) -> str | None:
    """The final answer of a completion: the last ``<answer>...</answer>`` (any case), else the last
    ``\\boxed{...}``; ``None`` when there is nothing (or only whitespace) to extract.

    Example:
        >>> extract_answer("I think <ANSWER>x^2</ANSWER>, no: <answer> x**3/3 </answer>")
        'x**3/3'
        >>> extract_answer(r"so the result is \\boxed{\\frac{x^2}{2}}")
        '\\\\frac{x^2}{2}'
        >>> extract_answer("no idea") is None
        True
    """
    text = _completion_text(text)[-MAX_COMPLETION_CHARS:]
    matches = _ANSWER_RE.findall(text)
    answer = matches[-1] if matches else _last_boxed(text)
    if answer is None or not answer.strip():
        return None
    return answer.strip()


def _column(kwargs: dict, name: str, n: int) -> list:
    values = kwargs.get(name)
    if values is None:
        return [None] * n
    if isinstance(values, str) or not hasattr(values, "__len__"):
        return [values] * n
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)


def _items(completions: list, kwargs: dict) -> tuple[list[dict], list[str | None]]:
    n = len(completions)
    if kwargs.get("integrand") is None:
        raise ValueError("integration_reward needs the dataset column 'integrand' (passed by TRL as a keyword)")
    integrands = _column(kwargs, "integrand", n)
    lowers, uppers = _column(kwargs, "lower", n), _column(kwargs, "upper", n)
    variables = _column(kwargs, "variable", n)
    answers = [extract_answer(c) for c in completions]
    items = [
        {"integrand": f, "candidate": a, "lower": lo, "upper": up, "variable": v or "x"}
        for f, a, lo, up, v in zip(integrands, answers, lowers, uppers, variables, strict=True)
    ]
    return items, answers


def _log(kwargs: dict, results) -> None:
    """Report verifier outcome rates through TRL's ``log_metric`` / ``log_extra`` hooks when present."""
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and results:
        n = len(results)
        for status in ("no_answer", "parse_error", "timeout", "unverifiable"):
            log_metric(f"verifier/{status}_frac", sum(r.status == status for r in results) / n)
    log_extra = kwargs.get("log_extra")
    if callable(log_extra):
        log_extra("verifier", [r.reason[:120] for r in results])


def integration_reward(prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
    """1.0 when the verifier accepts the completion's answer for the row's integral, else 0.0.

    Works for plain-text and conversational completions; checks run in parallel in sandboxed
    worker processes (hard per-answer timeout ``kwargs.get("verifier_timeout", 2.0)``).

    Example:
        >>> integration_reward(completions=["<answer>x^3/3</answer>", "<answer>x^3</answer>"],  # doctest: +SKIP
        ...                    integrand=["x**2", "x**2"])
        [1.0, 0.0]
    """
    completions = list(completions or [])
    items, _ = _items(completions, kwargs)
    timeout = float(kwargs.get("verifier_timeout") or DEFAULT_TIMEOUT)
    results = verify_batch(items, timeout=timeout)
    _log(kwargs, results)
    return [1.0 if r.correct else 0.0 for r in results]


async def async_integration_reward(prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
    """Async :func:`integration_reward`: TRL awaits it concurrently with other async rewards.

    The verification itself already runs in worker processes; this variant only frees TRL's event
    loop while waiting for them.
    """
    return await asyncio.to_thread(
        integration_reward, prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs
    )


def format_reward(prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
    """1.0 when the completion ends its work with one ``<answer>...</answer>`` block whose content is a
    parseable expression (sympy syntax or LaTeX; the grammar and bounds of :func:`parse_math`, without
    building sympy), else 0.0.

    Example:
        >>> format_reward(completions=["<answer>x^2/2</answer>", "x^2/2", "<answer>dunno</answer>"])
        [1.0, 0.0, 0.0]
    """
    completions = list(completions or [])
    variables = _column(kwargs, "variable", len(completions))
    rewards = []
    for completion, variable in zip(completions, variables, strict=True):
        text = _completion_text(completion)[-MAX_COMPLETION_CHARS:]
        blocks = _ANSWER_RE.findall(text)
        score = 0.0
        if len(blocks) == 1 and blocks[0].strip():
            try:
                compile_math(blocks[0], variable or "x")
                score = 1.0
            except (MathParseError, ValueError):
                score = 0.0
        rewards.append(score)
    return rewards


REWARD_FUNCS: dict[str, Callable] = {
    "integration": integration_reward,
    "integration_async": async_integration_reward,
    "format": format_reward,
}


def get_reward_funcs(names: list[str]) -> list[Callable]:
    """Reward functions by registry name (see :data:`REWARD_FUNCS`), in order.

    Example:
        >>> [f.__name__ for f in get_reward_funcs(["integration", "format"])]
        ['integration_reward', 'format_reward']
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward function(s) {unknown}; available: {sorted(REWARD_FUNCS)}")
    return [REWARD_FUNCS[n] for n in names]
