"""Problems, problem sets and prompts: the records every command reads, and how a model is asked.

A :class:`Problem` is one integral: ``id``, ``integrand`` (sympy syntax in ``x``), ``lower`` and ``upper``
(strings; both empty for an indefinite integral), the official ``answer`` when there is one, ``source``,
``notes``, and whatever else its row carries (``year``, ``verified``, ``excluded``, ``depth`` ...) in
``meta``. It reads like the row it came from (``problem["integrand"]``, ``problem.get("year")``) so code
written against rows keeps working, and writes back with :meth:`Problem.to_row`.

Problem sets are named in one registry (:data:`PROBLEM_SETS`): the bundled MIT Integration Bee and
undergraduate sets ship in ``ladder_hf/data`` and work offline; a JSONL/JSON file, a local dataset folder
or parquet file, and a Hub dataset id are accepted wherever a set name is. A new bundled set joins with
one :func:`register_problem_set` call.

Prompts are built from a problem by :func:`build_messages`, one function for training, evaluation and
TTRL: an optional system prompt, optional few-shot examples as real user/assistant turns, then the
problem (see :data:`PROMPTS` for the named prompts: ``default`` and ``few_shot``).

Example:
    >>> from ladder_hf.problems import Problem, build_messages, load_problems
    >>> problems = load_problems("mit-2025")
    >>> problems[0].id, problems[0].is_definite
    ('mit-2025-q01', False)
    >>> build_messages(Problem("p", "x**2"))[-1]["content"]
    'Find the indefinite integral: ∫ x**2 dx'
    >>> [m["role"] for m in build_messages(Problem("p", "x**2"), prompt="few_shot")]
    ['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from typing import Any

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

# Generation stops at the closing tag: the answer is complete and the rest would be wasted compute.
ANSWER_STOP = ("</answer>", "</ANSWER>")

# SmolLM2-135M almost never uses the answer tags when only told to (0 of 48 samples), and a worked example
# written inside the system prompt did not help either (0 of 24); real few-shot turns did (most samples
# tagged). See docs/results.md, "what we tried".
FEW_SHOT_INSTRUCTION = (
    "You integrate functions. Reply with only the antiderivative in sympy syntax inside <answer></answer> tags, "
    "without + C."
)
# Chosen to be unlike the easy held-out variants (no bare x**n, sin, cos, exp), so they teach the format only.
FEW_SHOT_EXAMPLES = (("x**4", "x**5/5"), ("cos(2*x)", "sin(2*x)/2"), ("exp(3*x)", "exp(3*x)/3"))


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip()


def _text(value) -> str:
    return "" if _blank(value) else str(value).strip()


@dataclass(frozen=True)
class Problem(Mapping):
    """One integration problem (see the module docstring).

    Parameters:
        id (`str`): unique id, e.g. ``mit-2025-q01``.
        integrand (`str`): the integrand in sympy syntax, in ``x``.
        lower, upper (`str`, *optional*): bounds of a definite integral; both empty for an indefinite one.
        answer (`str`, *optional*): the official answer (sympy syntax), when known.
        source (`str`, *optional*): where the problem comes from.
        notes (`str`, *optional*): remarks on the problem or its answer.
        meta (`Mapping`, *optional*): every other field of the row (``year``, ``verified``, ``depth``, ...).
        location (`str`, *optional*): where the row was read, ``file:line`` (1-based), for messages; not
            part of the row (``to_row``, equality and hashing ignore it).

    Example:
        >>> p = Problem.from_row({"id": "q1", "integrand": "sin(x)", "lower": "0", "upper": "pi", "year": 2025})
        >>> p.is_definite, p["year"], p.to_row()["upper"]
        (True, 2025, 'pi')
    """

    id: str
    integrand: str
    lower: str = ""
    upper: str = ""
    answer: str = ""
    source: str = ""
    notes: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    location: str = field(default="", compare=False, repr=False)

    @property
    def is_definite(self) -> bool:
        return bool(self.lower and self.upper)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], index: int | None = None, location: str = "") -> Problem:
        """A problem from a row (dict, dataset row, JSONL record). Blank values (``None``, NaN, ``""``)
        become ``""``; a row without an integrand, or with only one bound, is an error naming the row: by
        ``location`` (``file:line``) and id when read from a file, else by id or 0-based ``index``.
        A row without an id gets a stable one from its integrand and bounds (``expr-<hash>``).

        Example:
            >>> Problem.from_row({"integrand": ""}, location="problems.jsonl:4")
            Traceback (most recent call last):
            ...
            ValueError: problems.jsonl:4: no integrand
            >>> Problem.from_row({"id": "q7", "integrand": ""}, index=3)
            Traceback (most recent call last):
            ...
            ValueError: q7: no integrand
            >>> Problem.from_row({"integrand": None}, index=3)
            Traceback (most recent call last):
            ...
            ValueError: row at index 3: no integrand
        """
        if isinstance(row, Problem):
            return row
        name = _text(row.get("id"))
        where = _row_name(name, index, location)
        if _blank(row.get("integrand")):
            raise ValueError(f"{where}: no integrand")
        lower, upper = _text(row.get("lower")), _text(row.get("upper"))
        if bool(lower) != bool(upper):
            raise ValueError(f"{where}: only one of the bounds is given (both, or neither)")
        known = {f.name for f in fields(cls)} - {"location"}
        return cls(
            id=name or _fallback_id(str(row["integrand"]), lower, upper),
            integrand=str(row["integrand"]).strip(),
            lower=lower,
            upper=upper,
            answer=_text(row.get("answer")),
            source=_text(row.get("source")),
            notes=_text(row.get("notes")),
            meta={k: v for k, v in row.items() if k not in known},
            location=location,
        )

    def to_row(self) -> dict[str, Any]:
        """The problem as a plain row (the core fields, then ``meta``)."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("meta", "location")}
        row.update(self.meta)
        return row

    # read-only Mapping over the row, so row-style code (problem["lower"], dict(problem)) keeps working
    def __getitem__(self, key: str) -> Any:
        if key not in ("meta", "location") and key in self.__dataclass_fields__:
            return getattr(self, key)
        return self.meta[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_row())

    def __len__(self) -> int:
        return len(self.to_row())

    def __hash__(self) -> int:
        return hash((self.id, self.integrand, self.lower, self.upper))

    def __eq__(self, other) -> bool:
        if isinstance(other, Problem):
            return self.to_row() == other.to_row()
        return isinstance(other, Mapping) and self.to_row() == dict(other)


def _fallback_id(integrand: str, lower: str, upper: str) -> str:
    import hashlib

    return "expr-" + hashlib.sha1(f"{integrand}|{lower}|{upper}".encode()).hexdigest()[:10]


def _row_name(name: str, index: int | None, location: str) -> str:
    # A file's row by file:line (what an editor jumps to), with its id when it has one; a row in memory
    # (a dataset, a list) by id, else by its 0-based index, as dataset[index] reads it.
    if location:
        return f"{location} ({name})" if name else location
    if name:
        return name
    return f"row at index {index}" if index is not None else "a row"


def _given_id(row: Mapping[str, Any]) -> str:
    """The id the row itself gave ("" for a Problem whose id was made up from its integrand)."""
    name = _text(row.get("id"))
    if isinstance(row, Problem) and name == _fallback_id(row.integrand, row.lower, row.upper):
        return ""
    return name


def as_problems(rows: Iterable[Mapping[str, Any]], locations: Iterable[str] | None = None) -> list[Problem]:
    """Rows (dicts, dataset rows, Problems) as Problems; a bad row is an error naming it (by its
    ``locations`` entry, ``file:line``, when the rows come from a file)."""
    where = iter(locations) if locations is not None else None
    return [
        Problem.from_row(row, index, next(where, "") if where is not None else "") for index, row in enumerate(rows)
    ]


def is_definite(problem: Mapping[str, Any]) -> bool:
    """True when the problem (a :class:`Problem` or a row) has both bounds."""
    return not _blank(problem.get("lower")) and not _blank(problem.get("upper"))


def validate_rows(rows: Iterable[Mapping[str, Any]], what: str = "dataset") -> None:
    """Check problem rows before training on them: every row needs an ``integrand`` that parses (as
    trusted data) and either both bounds or neither; bounds must be numbers. A row that fails would make
    every completion of it unscorable, so the first few bad rows are named in one error: a problem read
    from a file by ``file:line`` and id, any other row by id, else by its 0-based index.

    Example:
        >>> validate_rows([{"id": "a", "integrand": "x**2", "lower": "0", "upper": ""}, {"integrand": "(("}])
        Traceback (most recent call last):
        ...
        ValueError: dataset has 2 bad row(s): a: only one of the bounds is given; row at index 1: does not parse (...)
    """
    from ladder_hf.verifier import MathParseError, compile_math

    bad = []
    for index, row in enumerate(rows):
        name = _row_name(_given_id(row), index, getattr(row, "location", ""))
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


# ----------------------------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """How a model is asked: a system prompt, few-shot examples and the question templates.

    Parameters:
        system_prompt (`str` or `None`): the system turn; ``None`` for none.
        examples (`tuple[tuple[str, str], ...]`): ``(integrand, answer)`` pairs, asked and answered as
            real user/assistant turns before the problem (indefinite integrals, tagged answers).
        indefinite_template, definite_template (`str`): the user turn for a problem.
    """

    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    examples: tuple[tuple[str, str], ...] = ()
    indefinite_template: str = INDEFINITE_TEMPLATE
    definite_template: str = DEFINITE_TEMPLATE


# The few-shot prompt at a third of its length (about 60 tokens against 165 with SmolLM2's template):
# on a CPU every prompt token is paid for again in each completion's forward and backward pass.
COMPACT_INSTRUCTION = "Integrate. Reply with only <answer>antiderivative</answer> in sympy syntax."
COMPACT_EXAMPLES = (("x**4", "x**5/5"), ("cos(2*x)", "sin(2*x)/2"))

PROMPTS: dict[str, Prompt] = {
    "default": Prompt(),
    "few_shot": Prompt(FEW_SHOT_INSTRUCTION, FEW_SHOT_EXAMPLES),
    "compact": Prompt(
        COMPACT_INSTRUCTION, COMPACT_EXAMPLES, "∫ {integrand} dx", "∫_{{{lower}}}^{{{upper}}} {integrand} dx"
    ),
}


def resolve_prompt(prompt: str | Prompt | None = "default") -> Prompt:
    """A :class:`Prompt` from a name in :data:`PROMPTS`, any other text (used as the system prompt with
    no examples), ``None``/``""`` (no system prompt), or a Prompt.

    Example:
        >>> resolve_prompt("few_shot").examples[0]
        ('x**4', 'x**5/5')
    """
    if isinstance(prompt, Prompt):
        return prompt
    if not prompt:
        return Prompt(system_prompt=None)
    return PROMPTS.get(prompt) or Prompt(system_prompt=prompt)


def format_problem(
    problem: Mapping[str, Any],
    indefinite_template: str = INDEFINITE_TEMPLATE,
    definite_template: str = DEFINITE_TEMPLATE,
) -> str:
    """The user turn for one problem, in plain text (sympy syntax)."""
    if is_definite(problem):
        return definite_template.format(integrand=problem["integrand"], lower=problem["lower"], upper=problem["upper"])
    return indefinite_template.format(integrand=problem["integrand"])


def build_messages(
    problem: Mapping[str, Any], prompt: str | Prompt | None = "default", **overrides: Any
) -> list[dict[str, str]]:
    """The conversation (TRL's conversational format) asking ``problem`` with ``prompt`` (a name in
    :data:`PROMPTS`, literal system-prompt text, or a :class:`Prompt`); keyword ``overrides`` replace
    fields of the prompt (``system_prompt=``, ``examples=``, ``indefinite_template=``, ...). The one
    prompt builder of training, evaluation and TTRL.

    Example:
        >>> build_messages({"integrand": "x", "lower": "0", "upper": "1"}, system_prompt=None)
        [{'role': 'user', 'content': 'Evaluate the definite integral: ∫_{0}^{1} x dx'}]
    """
    spec = resolve_prompt(prompt)
    if overrides:
        spec = Prompt(**{**spec.__dict__, **overrides})
    messages = [{"role": "system", "content": spec.system_prompt}] if spec.system_prompt else []
    for integrand, answer in spec.examples:
        example = {"integrand": integrand, "lower": "", "upper": ""}
        messages.append({"role": "user", "content": format_problem(example, spec.indefinite_template)})
        messages.append({"role": "assistant", "content": f"<answer>{answer}</answer>"})
    messages.append(
        {"role": "user", "content": format_problem(problem, spec.indefinite_template, spec.definite_template)}
    )
    return messages


# ------------------------------------------------------------------------------------------ problem sets


@dataclass(frozen=True)
class ProblemSet:
    """A bundled problem set: rows of a file in ``ladder_hf/data`` that pass ``where``. Every row carries
    its record from ``overlaps.jsonl`` under ``overlap`` when it has one; a training set
    (``exclude_overlaps``) leaves those rows out: rows equivalent to a shipped test year, rows the guard
    could not judge, and duplicates of earlier rows (``dataset_scripts/find_overlaps.py`` finds them)."""

    name: str
    file: str
    where: Callable[[Mapping[str, Any]], bool] | None = None
    description: str = ""
    exclude_overlaps: bool = False

    def rows(self, include_overlaps: bool = False) -> list[dict]:
        rows = [_marked(r) for r in _read(self.file) if self.where is None or self.where(r)]
        if self.exclude_overlaps and not include_overlaps:
            rows = [r for r in rows if "overlap" not in r]
        return rows


PROBLEM_SETS: dict[str, ProblemSet] = {}


def register_problem_set(
    name: str,
    file: str,
    where: Callable[[Mapping[str, Any]], bool] | None = None,
    description: str = "",
    exclude_overlaps: bool = False,
) -> ProblemSet:
    """Make a bundled set loadable by name (one line per set; see the calls below).

    Example:
        >>> _ = register_problem_set("mit-2024-defs", "mit_integration_bee.jsonl",
        ...                          where=lambda r: r["year"] == 2024 and bool(r["lower"]))
        >>> all(p.is_definite for p in load_problems("mit-2024-defs"))
        True
        >>> del PROBLEM_SETS["mit-2024-defs"]
    """
    PROBLEM_SETS[name] = ProblemSet(name, file, where, description, exclude_overlaps)
    return PROBLEM_SETS[name]


# The years held out for evaluation; training sets leave out rows equivalent to their problems.
TEST_YEARS = (2025,)
_MIT, _UNDERGRAD = "mit_integration_bee.jsonl", "undergrad_integrals.jsonl"
register_problem_set("mit", _MIT, description="MIT Integration Bee qualifiers, every year bundled")
register_problem_set(
    "mit-train",
    _MIT,
    lambda r: int(r["year"]) not in TEST_YEARS,
    "qualifiers of the training years, without rows equivalent to a test-year problem",
    exclude_overlaps=True,
)
register_problem_set("undergrad", _UNDERGRAD, description="undergraduate integrals with sympy answers")
register_problem_set(
    "undergrad-train",
    _UNDERGRAD,
    description="undergraduate integrals without duplicates and rows equivalent to a test-year problem",
    exclude_overlaps=True,
)


def _marked(row: Mapping[str, Any]) -> dict:
    """A copy of a bundled row, with its ``overlaps.jsonl`` record under ``overlap`` when it has one."""
    overlap = _overlaps().get(row["id"])
    return {**row, "overlap": overlap} if overlap else dict(row)


@cache
def _overlaps() -> dict[str, dict]:
    try:
        text = resources.files("ladder_hf").joinpath("data", "overlaps.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    records = (json.loads(line) for line in text.splitlines() if line.strip())
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in records}


@cache
def _read(file: str) -> tuple[dict, ...]:
    text = resources.files("ladder_hf").joinpath("data", file).read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def _bundled_rows() -> list[dict]:
    return [dict(r) for file in dict.fromkeys(s.file for s in PROBLEM_SETS.values()) for r in _read(file)]


def _year_set(name: str) -> ProblemSet | None:
    # mit-YYYY for every year in the bundled data, without listing them by hand
    if name.startswith("mit-") and name[4:].isdigit() and any(r.get("year") == int(name[4:]) for r in _read(_MIT)):
        return ProblemSet(name, _MIT, lambda r, year=int(name[4:]): int(r["year"]) == year)
    return None


def available_sets() -> list[str]:
    """Names accepted by :func:`load_problems` (bundled sets; paths and Hub ids are accepted too)."""
    years = sorted({r["year"] for r in _read(_MIT) if r.get("year")})
    return sorted({*PROBLEM_SETS, *(f"mit-{y}" for y in years)})


def _read_rows(name: str, include_overlaps: bool = False) -> list[dict]:
    if name in PROBLEM_SETS:
        return PROBLEM_SETS[name].rows(include_overlaps)
    year = _year_set(name)
    if year is not None:
        return year.rows()
    if name.endswith((".jsonl", ".json")):
        if not os.path.isfile(name):
            raise FileNotFoundError(f"no problem file {name!r}")
        rows, _ = read_problem_file(name)
        return rows
    if os.path.exists(name) or "/" in name:
        import datasets  # a local dataset folder or parquet file, or a Hub dataset id

        if os.path.isfile(name):
            loaded = datasets.load_dataset(name.rsplit(".", 1)[-1], data_files=name)
        else:
            loaded = datasets.load_dataset(name)
        split = "test" if "test" in loaded else next(iter(loaded))
        return [dict(r) for r in loaded[split]]
    raise ValueError(
        f"unknown problem set {name!r}; choose from {', '.join(available_sets())}, "
        "or give a .jsonl path, a dataset folder or a Hub dataset id"
    )


def read_problem_file(path: str) -> tuple[list[dict], list[str]]:
    """The rows of a JSONL problem file (or a JSON file holding a list of rows) and where each one is,
    ``file:line`` (1-based; ``file:item N`` in a JSON list). Every line counts, a last line without a
    newline too: a file written by hand is not a run that was cut off. A line that is not a JSON object
    is an error naming the file and line.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "problems.jsonl")
        >>> _ = open(path, "w").write('{"integrand": "x"}\\n\\n{"integrand": "sin(x)"}')
        >>> rows, where = read_problem_file(path)
        >>> [r["integrand"] for r in rows], [w.rsplit(os.sep, 1)[-1] for w in where]
        (['x', 'sin(x)'], ['problems.jsonl:1', 'problems.jsonl:3'])
    """
    with open(path, encoding="utf-8") as file:
        text = file.read()
    if path.endswith(".json") and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        located = [(f"{path}:item {n}", item) for n, item in enumerate(items, start=1)]
    else:
        located = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                located.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not valid JSON ({err.msg}); one JSON object per line") from None
    for where, row in located:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: not a JSON object but {type(row).__name__}; {_ROW_HINT}")
    return [row for _, row in located], [where for where, _ in located]


def load_problems(name: str = "mit-2025", verified_only: bool = False, include_overlaps: bool = False) -> list[Problem]:
    """Problems of a bundled set (``mit``, ``mit-YYYY``, ``mit-train``, ``undergrad``, ``undergrad-train``,
    or any :func:`register_problem_set` name), a JSONL/JSON file of rows, a local dataset folder or parquet
    file, or a Hub dataset id (its ``test`` split, else its first). The training sets leave out the rows
    recorded in ``overlaps.jsonl`` unless ``include_overlaps``.

    Example:
        >>> len(load_problems("mit-2025"))
        20
        >>> train = load_problems("mit-train")
        >>> any(p.id == "mit-2013-q03" for p in train)  # the same function as mit-2025-q07
        False
    """
    bundled = name in PROBLEM_SETS or _year_set(name) is not None
    locations = None
    if not bundled and name.endswith((".jsonl", ".json")) and os.path.isfile(name):
        rows, locations = read_problem_file(name)  # with file:line for every message below
    else:
        rows = _read_rows(name, include_overlaps)
    try:
        problems = as_problems(rows, locations)
    except ValueError as err:
        if bundled:
            raise
        where = "" if locations is not None else f"{name}: "  # a file's rows are named by file:line already
        raise ValueError(f"{where}{err}; {_ROW_HINT}") from None
    if not problems:
        raise ValueError(f"problem set {name!r} has no problems; {_ROW_HINT}")
    if not bundled:
        _check_some_parse(name, problems)
    if verified_only:
        problems = [p for p in problems if p.get("verified", True)]
    return problems


_ROW_HINT = (
    'each row needs an "integrand" in sympy syntax, e.g. {"integrand": "x**2*exp(x)"}, '
    'and "lower"/"upper" for a definite integral'
)


def _check_some_parse(name: str, problems: list[Problem]) -> None:
    """Refuse a user's problem source in which no integrand parses: every run on it would score nothing.
    Stops at the first problem that parses, so a good file costs one parse."""
    from ladder_hf.verifier import MathParseError, compile_math

    first_error = ""
    for problem in problems:
        try:
            compile_math(problem.integrand, problem.get("variable") or "x", trusted=True)
            return
        except (MathParseError, ValueError) as err:
            first_error = first_error or f"{problem.location or problem.id}: {problem.integrand!r}: {err}"
    raise ValueError(f"no problem in {name} parses ({len(problems)} rows; first: {first_error}); {_ROW_HINT}")


def get_problem(problem_id: str) -> Problem:
    """One bundled problem by id, e.g. ``mit-2025-q01``."""
    for row in _bundled_rows():
        if row["id"] == problem_id:
            return Problem.from_row(_marked(row))
    raise KeyError(f"no bundled problem with id {problem_id!r}")


def bundled_integrands() -> frozenset[str]:
    """The integrands of every bundled problem (trusted data: parsed with the relaxed bounds)."""
    return frozenset(str(r["integrand"]) for r in _bundled_rows())


__all__ = [
    "ANSWER_STOP",
    "DEFAULT_SYSTEM_PROMPT",
    "PROBLEM_SETS",
    "PROMPTS",
    "Problem",
    "ProblemSet",
    "Prompt",
    "as_problems",
    "available_sets",
    "build_messages",
    "format_problem",
    "get_problem",
    "is_definite",
    "load_problems",
    "read_problem_file",
    "register_problem_set",
    "resolve_prompt",
    "validate_rows",
]
