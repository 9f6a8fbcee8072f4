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
import logging
import re
from collections import Counter
from collections.abc import Callable
from functools import partial, update_wrapper

from ladder_hf.verifier import MathParseError, verify_batch
from ladder_hf.verifier.numeric import compile_math
from ladder_hf.verifier.sandbox import DEFAULT_TIMEOUT

logger = logging.getLogger(__name__)

_BOXED_RE = re.compile(r"\\boxed\s*\{")
MAX_COMPLETION_CHARS = 100_000  # only the last this many characters of a completion are read


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
    """Content of the last ``\\boxed{...}`` whose brace closes; one pass over the text (no rescans, so
    thousands of unclosed ``\\boxed{`` cost linear time)."""
    closing: dict[int, int] = {}  # position of each "{" -> its matching "}"
    stack: list[int] = []
    for match in re.finditer(r"[{}]", text):
        if match.group() == "{":
            stack.append(match.start())
        elif stack:
            closing[stack.pop()] = match.start()
    for match in reversed(list(_BOXED_RE.finditer(text))):
        end = closing.get(match.end() - 1)
        if end is not None:
            return text[match.end() : end]
    return None


def _answer_blocks(text: str) -> tuple[str | None, int]:
    """The last complete ``<answer>...</answer>`` block (any case) and how many complete blocks there
    are, in linear time: an opening tag pairs with the first closing tag after it."""
    lower = text.lower()
    last, count, pos = None, 0, 0
    while True:
        start = lower.find("<answer>", pos)
        if start < 0:
            return last, count
        end = lower.find("</answer>", start + 8)
        if end < 0:
            return last, count
        # the block runs from the last opening tag before this closing tag
        start = lower.rfind("<answer>", start, end)
        last, count, pos = text[start + 8 : end], count + 1, end + 9


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
    answer, _ = _answer_blocks(text)
    if answer is None:
        answer = _last_boxed(text)
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


UNSCORED_COUNTS: Counter = Counter()  # problem-side and sandbox failures seen by this process, by status


def _log(kwargs: dict, results) -> None:
    """Report verifier outcome rates through TRL's ``log_metric`` / ``log_extra`` hooks when present."""
    unscored = Counter(r.status for r in results if not r.scored)
    UNSCORED_COUNTS.update(unscored)
    if unscored:
        logger.warning(
            "integration_reward: %d of %d completions not scored (reward None): %s",
            sum(unscored.values()),
            len(results),
            ", ".join(f"{status} x{n}" for status, n in sorted(unscored.items())),
        )
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and results:
        n = len(results)
        for status in ("no_answer", "parse_error", "timeout", "unverifiable", "bad_problem", "no_reference", "error"):
            log_metric(f"verifier/{status}_frac", sum(r.status == status for r in results) / n)
    log_extra = kwargs.get("log_extra")
    if callable(log_extra):
        log_extra("verifier", [r.reason[:120] for r in results])


def integration_reward(
    prompts=None, completions=None, completion_ids=None, *, timeout: float = DEFAULT_TIMEOUT, **kwargs
) -> list[float | None]:
    """1.0 when the verifier accepts the completion's answer for the row's integral, 0.0 when it does
    not, and ``None`` (TRL skips it) when the verdict says nothing about the answer: a malformed row, an
    integral whose value cannot be established, a sandbox failure. Those are counted in
    :data:`UNSCORED_COUNTS`, logged as a warning and reported as ``verifier/<status>_frac``.

    Works for plain-text and conversational completions; checks run in parallel in sandboxed worker
    processes with a per-answer ``timeout`` and the retry policy of :func:`~ladder_hf.verifier.verify_batch`
    (the same as the ``integration_bee`` metric's). Set the timeout with :func:`make_integration_reward`.

    Example:
        >>> integration_reward(completions=["<answer>x^3/3</answer>", "<answer>x^3</answer>"],
        ...                    integrand=["x**2", "x**2"])
        [1.0, 0.0]
    """
    completions = list(completions or [])
    items, _ = _items(completions, kwargs)
    results = verify_batch(items, timeout=float(kwargs.get("verifier_timeout") or timeout))
    _log(kwargs, results)
    return [None if not r.scored else 1.0 if r.correct else 0.0 for r in results]


def make_integration_reward(timeout: float = DEFAULT_TIMEOUT) -> Callable:
    """:func:`integration_reward` with another per-answer time limit (open-r1 style ``functools.partial``),
    named so that TRL logs it as ``integration_reward``.

    Example:
        >>> make_integration_reward(timeout=5.0).__name__
        'integration_reward'
    """
    return _with_timeout(integration_reward, timeout)


async def async_integration_reward(
    prompts=None, completions=None, completion_ids=None, *, timeout: float = DEFAULT_TIMEOUT, **kwargs
) -> list[float | None]:
    """Async :func:`integration_reward`: TRL awaits it concurrently with other async rewards.

    The verification itself already runs in worker processes; this variant only frees TRL's event
    loop while waiting for them.
    """
    return await asyncio.to_thread(
        integration_reward,
        prompts=prompts,
        completions=completions,
        completion_ids=completion_ids,
        timeout=timeout,
        **kwargs,
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
        block, count = _answer_blocks(text)
        score = 0.0
        if count == 1 and block.strip():
            try:
                compile_math(block, variable or "x")
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


_TIMED = (integration_reward, async_integration_reward)


# TRL's own reward functions by name, as `trl grpo --reward_funcs` accepts them (factories excluded: they
# need arguments)
_TRL_REWARDS = ("accuracy_reward", "reasoning_accuracy_reward", "think_format_reward")


def _resolve(name: str) -> Callable:
    if name in REWARD_FUNCS:
        return REWARD_FUNCS[name]
    if name in _TRL_REWARDS:
        import trl.rewards

        return getattr(trl.rewards, name)
    module, _, attr = name.rpartition(".")
    if module:
        import importlib

        try:
            func = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import reward function {name!r}: {err}") from None
        if not callable(func):
            raise ValueError(f"reward function {name!r} is not callable")
        return func
    raise ValueError(
        f"unknown reward function {name!r}; ours: {sorted(REWARD_FUNCS)}, TRL's: {list(_TRL_REWARDS)}, "
        "or a dotted import path (my_module.my_reward)"
    )


def get_reward_funcs(names: list[str], verifier_timeout: float = DEFAULT_TIMEOUT) -> list[Callable]:
    """Reward functions by name, in order: ours (:data:`REWARD_FUNCS`), TRL's built-in ones
    (``think_format_reward``, ...) or a dotted import path (``my_pkg.rewards.length_reward``), as
    ``trl grpo --reward_funcs`` accepts them. The integration rewards get ``verifier_timeout`` seconds per
    answer (the recipes' ``--verifier_timeout``).

    Example:
        >>> [f.__name__ for f in get_reward_funcs(["integration", "format"], verifier_timeout=5.0)]
        ['integration_reward', 'format_reward']
        >>> [f.__name__ for f in get_reward_funcs(["think_format_reward", "ladder_hf.rewards.format_reward"])]
        ['think_format_reward', 'format_reward']
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    funcs = [_resolve(n) for n in names]
    if verifier_timeout != DEFAULT_TIMEOUT:
        funcs = [_with_timeout(f, verifier_timeout) if f in _TIMED else f for f in funcs]
    return funcs


def _with_timeout(func: Callable, timeout: float) -> Callable:
    reward = partial(func, timeout=timeout)
    update_wrapper(reward, func)
    return reward
