"""Bundled problem sets and the paper's prompt format.

Problem rows are plain dicts with at least ``id``, ``integrand`` (sympy syntax in ``x``), ``lower``
and ``upper`` (strings; ``""`` means indefinite). The bundled sets live in ``ladder_hf/data``
as JSONL and work offline after ``pip install``.

Example:
    >>> from ladder_hf.problems import load_problems, build_messages
    >>> problems = load_problems("mit-2025")  # doctest: +SKIP
    >>> build_messages({"integrand": "x**2", "lower": "", "upper": ""})[-1]["content"]
    'Find the indefinite integral: ∫ x**2 dx'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources

# The paper's answer format: the final answer in <ANSWER> tags, sympy syntax, no constant.
# Lower-case tags; the reward accepts either case.
DEFAULT_SYSTEM_PROMPT = (
    "You are an expert at calculus. Solve the integral the user gives. Think briefly, then write "
    "only the final answer inside <answer></answer> tags, in sympy syntax (for example "
    "<answer>x**3/3 + sin(x)</answer>). For an indefinite integral give an antiderivative without "
    "+ C; for a definite integral give its exact value."
)

INDEFINITE_TEMPLATE = "Find the indefinite integral: ∫ {integrand} dx"
DEFINITE_TEMPLATE = "Evaluate the definite integral: ∫_{{{lower}}}^{{{upper}}} {integrand} dx"

# Bundled sets: name -> (file, filter on rows). Files are added by dataset builders in
# dataset_scripts/ and shipped as package data.
_FILES = {
    "mit": "mit_integration_bee.jsonl",
    "undergrad": "undergrad_integrals.jsonl",
}


def is_definite(problem: dict) -> bool:
    """True when the problem has both bounds."""
    return bool(str(problem.get("lower") or "").strip()) and bool(str(problem.get("upper") or "").strip())


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def validate_rows(rows: Iterable[dict], what: str = "dataset") -> None:
    """Check problem rows before training on them: every row needs an ``integrand`` that parses (as
    trusted data) and either both bounds or neither; bounds must be numbers. A row that fails would make
    every completion of it unscorable, so the first few bad rows are named (id and reason) in one error.

    Example:
        >>> validate_rows([{"id": "a", "integrand": "x**2", "lower": "0", "upper": ""}])
        Traceback (most recent call last):
        ...
        ValueError: dataset has 1 bad row(s): a: only one of the bounds is given
    """
    from ladder_hf.verifier import MathParseError, compile_math

    bad = []
    for index, row in enumerate(rows):
        name = row.get("id") or f"row {index}"
        reason = ""
        try:
            if _blank(row.get("integrand")):
                reason = "no integrand"
            else:
                compile_math(str(row["integrand"]), row.get("variable") or "x", trusted=True)
                if _blank(row.get("lower")) != _blank(row.get("upper")):
                    reason = "only one of the bounds is given"
                elif not _blank(row.get("lower")):
                    for bound in (row["lower"], row["upper"]):
                        if compile_math(str(bound), row.get("variable") or "x", trusted=True).has_variable:
                            reason = f"bound {bound!r} depends on the variable"
        except (MathParseError, ValueError) as err:
            reason = f"does not parse ({err})"
        if reason:
            bad.append(f"{name}: {reason}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"{what} has {len(bad)} bad row(s): " + "; ".join(bad[:5]) + more)


def format_problem(
    problem: dict, indefinite_template: str = INDEFINITE_TEMPLATE, definite_template: str = DEFINITE_TEMPLATE
) -> str:
    """The user turn for one problem, in plain text (sympy syntax)."""
    if is_definite(problem):
        return definite_template.format(integrand=problem["integrand"], lower=problem["lower"], upper=problem["upper"])
    return indefinite_template.format(integrand=problem["integrand"])


def build_messages(
    problem: dict,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    indefinite_template: str = INDEFINITE_TEMPLATE,
    definite_template: str = DEFINITE_TEMPLATE,
) -> list[dict[str, str]]:
    """Conversational prompt (TRL's format) asking for the paper's answer format."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": format_problem(problem, indefinite_template, definite_template)})
    return messages


@cache
def _read(file: str) -> tuple[dict, ...]:
    text = resources.files("ladder_hf").joinpath("data", file).read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def _all_rows() -> list[dict]:
    rows: list[dict] = []
    for file in _FILES.values():
        try:
            rows.extend(_read(file))
        except FileNotFoundError:
            continue
    return rows


def available_sets() -> list[str]:
    """Names accepted by :func:`load_problems`."""
    years = sorted({r["year"] for r in _all_rows() if r.get("year") and str(r["id"]).startswith("mit-")})
    return ["mit", "mit-train", *(f"mit-{y}" for y in years), "undergrad"]


def load_problems(name: str = "mit-2025", verified_only: bool = False) -> list[dict]:
    """Rows of a bundled set: ``mit`` (all qualifiers), ``mit-YYYY``, ``mit-train`` (2010-2024),
    ``undergrad``; or a path to a JSONL file of rows.

    Example:
        >>> len(load_problems("mit-2025"))  # doctest: +SKIP
        20
    """
    if name.endswith(".jsonl") or name.endswith(".json"):
        rows = read_jsonl(name)
    elif name == "undergrad":
        rows = [dict(r) for r in _read(_FILES["undergrad"])]
    elif name == "mit":
        rows = [dict(r) for r in _read(_FILES["mit"])]
    elif name == "mit-train":
        rows = [dict(r) for r in _read(_FILES["mit"]) if 2010 <= int(r["year"]) <= 2024]
    elif name.startswith("mit-") and name[4:].isdigit():
        rows = [dict(r) for r in _read(_FILES["mit"]) if int(r["year"]) == int(name[4:])]
    else:
        raise ValueError(f"unknown problem set {name!r}; choose from {available_sets()} or give a .jsonl path")
    if not rows:
        raise ValueError(f"problem set {name!r} is empty")
    if verified_only:
        rows = [r for r in rows if r.get("verified", True)]
    return rows


def get_problem(problem_id: str) -> dict:
    """One bundled problem by id, e.g. ``mit-2025-q01``."""
    for row in _all_rows():
        if row["id"] == problem_id:
            return dict(row)
    raise KeyError(f"no bundled problem with id {problem_id!r}")


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
