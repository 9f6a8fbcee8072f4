"""Scoring behind the ``integration_bee`` metric: answer extraction, verification, pass@k, voting.

Kept apart from the ``evaluate.Metric`` wrapper so that it is plain, importable, picklable code:
the numeric work runs in ladder_hf.verifier's sandboxed worker processes, which must be able to
import the functions they run.

Example:
    >>> from ladder_hf.metrics.integration_bee.scoring import score
    >>> score(["<answer>x**3/3</answer>"], [{"integrand": "x**2"}])["accuracy"]
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

ANSWER_FORMATS = ("auto", "tagged", "bare")

# Probe points for answer fingerprints: irrational-looking abscissae in (0, 1) avoid the removable
# singularities and branch points that simple rationals (0, 1/2, 1) hit in integration answers.
_PROBES = ("0.3183098861837907", "0.4142135623730950", "0.5772156649015329", "0.7071067811865476", "0.8862269254527580")
_RTOL = 1e-6


def resolve_reference(reference: str | Mapping[str, Any]) -> dict:
    """Turn a reference (a bundled problem id or a problem dict) into a problem row.

    The row has ``integrand``, ``lower``, ``upper`` (``""`` when indefinite), and ``id`` and
    ``year`` when known.

    Example:
        >>> resolve_reference({"integrand": "x**2"})["upper"]
        ''
    """
    if isinstance(reference, Mapping):
        row = dict(reference)
        if not str(row.get("integrand") or "").strip():
            if row.get("id"):
                return resolve_reference(str(row["id"]))
            raise ValueError(f"reference has no integrand and no id: {reference!r}")
        if row.get("id") and not row.get("year"):
            row.update(_bundled_year(str(row["id"])))
    elif isinstance(reference, str):
        from ladder_hf.problems import get_problem

        row = dict(get_problem(reference.strip()))  # a copy: the bundled problem is read-only
    else:
        raise TypeError(f"a reference is a problem id or a dict, not {type(reference).__name__}")
    row["integrand"] = str(row["integrand"])
    row["lower"] = "" if row.get("lower") is None else str(row["lower"])
    row["upper"] = "" if row.get("upper") is None else str(row["upper"])
    return row


def _bundled_year(problem_id: str) -> dict:
    # A dict reference with a bundled id keeps its own integrand but gets the exam year for per_year.
    from ladder_hf.problems import get_problem

    try:
        year = get_problem(problem_id).get("year")
    except KeyError:
        return {}
    return {"year": year} if year else {}


def is_definite(row: Mapping[str, Any]) -> bool:
    return bool(str(row.get("lower") or "").strip()) and bool(str(row.get("upper") or "").strip())


def extract_prediction(text: str | None, answer_format: str = "auto") -> str | None:
    """The answer in a prediction, or ``None`` when there is none.

    ``tagged``: the answer the training reward reads (:func:`ladder_hf.rewards.extract_answer`: the
    last ``<answer>...</answer>`` block, else the last ``\\boxed{...}``). ``bare``: the whole text is
    the answer. ``auto`` (default): the tagged answer when there is one, else the whole text.

    Example:
        >>> extract_prediction("x**2/2")
        'x**2/2'
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, not {answer_format!r}")
    if text is None:
        return None
    if answer_format != "bare":
        from ladder_hf.rewards import extract_answer

        answer = extract_answer(text)
        if answer is not None or answer_format == "tagged":
            return answer
    return text.strip() or None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate from ``n`` samples of which ``c`` are correct (Chen et al., 2021).

    ``1 - C(n-c, k) / C(n, k)``: the probability that at least one of ``k`` samples drawn without
    replacement from the ``n`` is correct. Computed with exact integers.

    Example:
        >>> pass_at_k(4, 1, 2)
        0.5
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def default_ks(n: int) -> list[int]:
    """The k values reported for ``n`` samples per problem: 1, powers of two below ``n``, and ``n``."""
    ks = {1, n}
    k = 2
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(ks)


def answer_fingerprint(answer: str, definite: bool) -> tuple[str, tuple[complex, ...] | None]:
    """Numeric signature of an answer, used to group equivalent answers for majority voting.

    Runs inside a sandboxed worker (untrusted text, parsed only by ``parse_math``). Returns
    ``("ok", values)``; ``("symbolic", None)`` when the answer cannot be evaluated to numbers (it is
    then grouped by its text); ``("unparseable", None)`` when it is not an expression (it does not
    vote). For indefinite problems the values are differences ``F(x_i) - F(x_0)``, so antiderivatives
    that differ by a constant get the same signature.
    """
    import sympy

    from ladder_hf.verifier import parse_math

    try:
        expr = parse_math(answer)
    except ValueError:
        return ("unparseable", None)
    variables = {s for s in expr.free_symbols if s.name == "x"}
    if expr.free_symbols - variables:
        return ("symbolic", None)
    points = _PROBES[:1] if definite and not variables else _PROBES
    values = []
    for point in points:
        value = expr.subs({v: sympy.Float(point, 30) for v in variables}) if variables else expr
        try:
            number = complex(sympy.N(value, 20))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return ("symbolic", None)
        if not (math.isfinite(number.real) and math.isfinite(number.imag)):
            return ("symbolic", None)
        values.append(number)
    if not definite:
        values = [v - values[0] for v in values[1:]]
    return ("ok", tuple(values))


def _close(a: tuple[complex, ...], b: tuple[complex, ...]) -> bool:
    return len(a) == len(b) and all(abs(u - v) <= _RTOL * max(1.0, abs(u), abs(v)) for u, v in zip(a, b, strict=True))


def group_answers(answers: Sequence[str | None], fingerprints: Sequence[tuple[str, Any]]) -> list[int | None]:
    """Cluster one problem's answers; returns a group label per answer (``None``: does not vote).

    Answers with numeric fingerprints join the first group whose fingerprint agrees within a
    relative tolerance; the others are grouped by their text without whitespace.

    Example:
        >>> group_answers(["x", "x ", None], [("symbolic", None)] * 3)
        [0, 0, None]
    """
    labels: list[int | None] = []
    numeric: list[tuple[int, tuple[complex, ...]]] = []
    textual: dict[str, int] = {}
    next_label = 0
    for answer, (status, values) in zip(answers, fingerprints, strict=True):
        if answer is None or status == "unparseable":
            labels.append(None)
            continue
        if status == "ok":
            label = next((lab for lab, ref in numeric if _close(ref, values)), None)
            if label is None:
                label, next_label = next_label, next_label + 1
                numeric.append((label, values))
        else:
            key = "".join(answer.split())
            if key not in textual:
                textual[key], next_label = next_label, next_label + 1
            label = textual[key]
        labels.append(label)
    return labels


def majority_vote(labels: Sequence[int | None], correct: Sequence[bool]) -> tuple[int | None, bool]:
    """Index of the voted answer (first member of the largest group; ties go to the group seen
    first) and whether the vote is correct (most members of that group verified correct)."""
    counts: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        if label is not None:
            counts.setdefault(label, []).append(i)
    if not counts:
        return None, False
    members = max(counts.values(), key=len)  # max keeps the first of equal-sized groups
    votes = sum(bool(correct[i]) for i in members)
    return members[0], votes * 2 > len(members) or (votes * 2 == len(members) and bool(correct[members[0]]))


def _aggregate(
    indices: Sequence[int], correct: list[list[bool]], voted: list[bool], ks: list[int], multi: bool
) -> dict:
    if not indices:
        return {"count": 0, "accuracy": 0.0}
    out: dict[str, Any] = {"count": len(indices)}
    out["accuracy"] = sum(sum(correct[i]) / len(correct[i]) for i in indices) / len(indices)
    if multi:
        for k in ks:
            out[f"pass@{k}"] = sum(pass_at_k(len(correct[i]), sum(correct[i]), k) for i in indices) / len(indices)
        out["majority_vote_accuracy"] = sum(voted[i] for i in indices) / len(indices)
    return out


def score(
    predictions: Sequence[str | Sequence[str]],
    references: Sequence[str | Mapping[str, Any]],
    answer_format: str = "auto",
    timeout: float = 5.0,
    k: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Score predictions against references; what ``IntegrationBee.compute`` returns.

    ``predictions[i]`` is one prediction (a string) or several (a list of strings) for problem
    ``references[i]``. See the metric card for the returned keys.

    Example:
        >>> score([["<answer>x**3/3 + 1</answer>", "x"]], [{"integrand": "x**2"}])["pass@2"]
        1.0
    """
    from ladder_hf.verifier import run_sandboxed, verify_batch

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    multi = any(not isinstance(p, str) and p is not None for p in predictions)
    samples = [[p] if isinstance(p, str) or p is None else list(p) for p in predictions]
    if any(not s for s in samples):
        raise ValueError("every problem needs at least one prediction")
    rows = [resolve_reference(r) for r in references]
    answers = [[extract_prediction(p, answer_format) for p in s] for s in samples]

    # Verify each distinct (problem, answer) once.
    keys = sorted({(i, a) for i, row_answers in enumerate(answers) for a in row_answers if a is not None})
    # Definite rows carry their official value: the verifier falls back to it only when the integral
    # cannot be established numerically (a sum the grammar does not take, millions of kinks). Timed-out
    # answers get the verifier's retry, the same policy as the GRPO reward's.
    items = [
        {
            "integrand": rows[i]["integrand"],
            "lower": rows[i]["lower"],
            "upper": rows[i]["upper"],
            "candidate": a,
            "answer": rows[i].get("answer") if is_definite(rows[i]) else None,
        }
        for i, a in keys
    ]
    results = dict(zip(keys, verify_batch(items, timeout=timeout), strict=True)) if items else {}
    correct = [
        [a is not None and results[(i, a)].correct for a in row_answers] for i, row_answers in enumerate(answers)
    ]
    reasons = [
        ["no answer" if a is None else results[(i, a)].reason for a in row_answers]
        for i, row_answers in enumerate(answers)
    ]

    n_min = min(len(s) for s in samples)
    ks = sorted({int(v) for v in k}) if k is not None else default_ks(n_min)
    if multi and any(not 1 <= v <= n_min for v in ks):
        raise ValueError(f"pass@k needs 1 <= k <= {n_min} (the fewest samples given for a problem), got {ks}")

    voted_correct = [False] * len(rows)
    voted_answer: list[str | None] = [None] * len(rows)
    if multi:
        fp_keys = sorted({(a, is_definite(rows[i])) for i, a in keys})
        outcomes = run_sandboxed(answer_fingerprint, fp_keys, timeout=timeout) if fp_keys else []
        fingerprints = {
            key: (outcome.value if outcome.ok else ("symbolic", None))
            for key, outcome in zip(fp_keys, outcomes, strict=True)
        }
        for i, row_answers in enumerate(answers):
            definite = is_definite(rows[i])
            fps = [("unparseable", None) if a is None else fingerprints[(a, definite)] for a in row_answers]
            index, ok = majority_vote(group_answers(row_answers, fps), correct[i])
            voted_correct[i] = ok
            voted_answer[i] = None if index is None else row_answers[index]

    # rows whose problem is known to be wrong (an integrand that disagrees with its official answer) are
    # scored for the record but not counted
    counted = [i for i, row in enumerate(rows) if not row.get("excluded")]
    result = _aggregate(counted, correct, voted_correct, ks, multi)
    result["excluded"] = [rows[i].get("id", i) for i in range(len(rows)) if rows[i].get("excluded")]
    result["num_predictions"] = sum(len(s) for s in samples)
    result["answer_rate"] = sum(a is not None for s in answers for a in s) / result["num_predictions"]
    if multi:
        result["correct"] = correct
        result["num_correct"] = [sum(c) for c in correct]
        result["answers"] = answers
        result["reasons"] = reasons
        result["majority_answer"] = voted_answer
        result["majority_correct"] = voted_correct
    else:
        result["correct"] = [c[0] for c in correct]
        result["answers"] = [a[0] for a in answers]
        result["reasons"] = [r[0] for r in reasons]
    ids = [row.get("id") for row in rows]
    if any(ids):
        result["ids"] = ids
    years: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.get("year") not in (None, "") and not row.get("excluded"):
            years.setdefault(str(row["year"]), []).append(i)
    if years:
        result["per_year"] = {
            year: _aggregate(idx, correct, voted_correct, ks, multi) for year, idx in sorted(years.items())
        }
    return result
