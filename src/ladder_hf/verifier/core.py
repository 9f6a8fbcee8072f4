"""Numeric verification of antiderivatives and definite integrals.

How an indefinite answer ``F`` for an integrand ``f`` is judged (all of it inside a sandboxed worker):

1. both are parsed with :func:`parse_math` (bounded grammar; anything else is rejected);
2. ``F'`` is computed symbolically (cheap: answers are bounded in size);
3. ``f`` and ``F'`` are evaluated with numpy at a fixed pool of 256 random real points spread over
   several scales; a point counts only where the integrand, the answer and its derivative are all
   real and finite (other points are skipped, i.e. resampled from the pool, never counted);
4. every counted point must agree to a relative 1e-8; a disagreeing point is re-evaluated with
   mpmath at 30 digits (floating-point cancellation is not a wrong answer) and must agree to 1e-10;
5. at least :data:`MIN_CHECKS` points must be counted: never accept on zero (or few) checks.

Comparing derivatives makes the answer correct up to an additive constant, and also up to a
different constant on each side of a singularity or branch cut. ``log(x)`` and ``log(|x|)`` are both
accepted for ``1/x``: where ``log(x)`` is not real (``x < 0``) the point is skipped for that answer.

Definite answers are compared with ``mpmath.quad`` of the integrand (infinite bounds supported) to a
relative 1e-6, and only when the quadrature's own error estimate is below that tolerance.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np
import sympy

from .parsing import MathParseError, parse_math
from .sandbox import DEFAULT_TIMEOUT, run_sandboxed

MIN_CHECKS = 8  # agreeing sample points required to accept an antiderivative
FAST_RTOL = 1e-8  # double-precision screen
CONFIRM_RTOL = 1e-10  # mpmath confirmation of a screened-out point
CONFIRM_DPS = 30
MAX_CONFIRMATIONS = 16
DEFINITE_RTOL = 1e-6
DEFINITE_ATOL = 1e-9
MAX_ABS_VALUE = 1e150  # beyond this, float64 comparisons are meaningless
MAX_CANDIDATE_CHARS = 4000  # longer answers are rejected without entering the sandbox


@dataclass(frozen=True)
class VerificationResult:
    """Verdict on one answer.

    Attributes:
        correct: whether the answer is verified.
        reason: human-readable explanation ("verified at 212 points", "mismatch at x=1.234: ...",
            "parse error: unknown symbol 'y'", "timeout after 2s", ...).
        status: machine-readable category: ``correct``, ``mismatch``, ``no_answer``, ``parse_error``,
            ``rejected``, ``unverifiable``, ``bad_problem``, ``timeout`` or ``error``.
        checks: number of independent numeric checks that agreed.
    """

    correct: bool
    reason: str
    status: str = "mismatch"
    checks: int = 0

    def __bool__(self) -> bool:
        return self.correct


def _fail(status: str, reason: str, checks: int = 0) -> VerificationResult:
    return VerificationResult(False, reason, status, checks)


# ----------------------------------------------------------------------------- worker side


def _real_symbol(variable: str) -> sympy.Symbol:
    return sympy.Symbol(variable, real=True)


def _to_real(expr: sympy.Expr, variable: str) -> sympy.Expr:
    # A real symbol lets sympy differentiate |x| as sign(x) instead of via re()/im().
    return expr.xreplace({sympy.Symbol(variable): _real_symbol(variable)})


@lru_cache(maxsize=512)
def _parse_cached(text: str, variable: str) -> sympy.Expr:
    return _to_real(parse_math(text, variable), variable)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@lru_cache(maxsize=64)
def _sample_points(seed: int) -> np.ndarray:
    """256 real points over several scales, fixed per integrand (so its values are computed once)."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.uniform(-10, 10, 96),
            rng.uniform(-3, 3, 48),
            rng.uniform(-1, 1, 32),
            rng.uniform(0, 1, 24),
            rng.uniform(1, 10, 24),
            rng.uniform(-100, 100, 16),
            rng.uniform(-0.1, 0.1, 16),
        ]
    )


def _lambdify_numpy(expr: sympy.Expr, variable: str):
    fn = sympy.lambdify(_real_symbol(variable), expr, modules="numpy", docstring_limit=0)
    return fn


def _evaluate(fn, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as float64 and a mask of points where the value is real and finite."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(fn(points))
    values = np.broadcast_to(values, points.shape)
    if np.iscomplexobj(values):
        real, imag = values.real, values.imag
        ok = np.isfinite(real) & np.isfinite(imag) & (np.abs(imag) <= 1e-12 * np.maximum(np.abs(real), 1.0))
        values = real
    else:
        values = values.astype(np.float64, copy=False)
        ok = np.isfinite(values)
    ok &= np.abs(np.where(ok, values, 0.0)) < MAX_ABS_VALUE
    return np.where(ok, values, 0.0), ok


def _evaluate_mpmath(expr: sympy.Expr, variable: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slow path for functions numpy lacks (erf, Si, Ei, ...): mpmath point by point."""
    fn = sympy.lambdify(_real_symbol(variable), expr, modules="mpmath", docstring_limit=0)
    values = np.zeros(points.shape)
    ok = np.zeros(points.shape, dtype=bool)
    with mpmath.workdps(20):
        for i, point in enumerate(points):
            try:
                value = mpmath.mpmathify(fn(mpmath.mpf(float(point))))
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                continue
            if isinstance(value, mpmath.mpc):
                if abs(value.imag) > 1e-12 * max(abs(value.real), 1):
                    continue
                value = value.real
            if mpmath.isfinite(value) and abs(value) < MAX_ABS_VALUE:
                values[i], ok[i] = float(value), True
    return values, ok


def _values(expr: sympy.Expr, variable: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _evaluate(_lambdify_numpy(expr, variable), points)
    except Exception:  # numpy has no such function, or the printer produced something numpy rejects
        return _evaluate_mpmath(expr, variable, points[:96])  # fewer points: this path is slow


@lru_cache(maxsize=256)
def _integrand_values(integrand: str, variable: str) -> tuple[sympy.Expr, np.ndarray, np.ndarray, np.ndarray]:
    f = _parse_cached(integrand, variable)
    points = _sample_points(_seed(integrand))
    values, ok = _values(f, variable, points)
    if len(values) < len(points):  # mpmath fallback evaluated a prefix only
        points = points[: len(values)]
    return f, points, values, ok


def _confirm(f: sympy.Expr, derivative: sympy.Expr, variable: str, point: float) -> tuple[bool, str]:
    """High-precision re-check of one point that failed the float64 screen."""
    x = _real_symbol(variable)
    with mpmath.workdps(CONFIRM_DPS):
        try:
            fx = mpmath.mpmathify(sympy.lambdify(x, f, modules="mpmath", docstring_limit=0)(mpmath.mpf(point)))
            dx = mpmath.mpmathify(sympy.lambdify(x, derivative, modules="mpmath", docstring_limit=0)(mpmath.mpf(point)))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return True, ""  # undefined at high precision: the point does not count either way
        if not (mpmath.isfinite(fx) and mpmath.isfinite(dx)):
            return True, ""
        if abs(dx - fx) <= CONFIRM_RTOL * max(abs(fx), abs(dx)) + mpmath.mpf(10) ** (-CONFIRM_DPS + 5):
            return True, ""
        return False, (
            f"mismatch at {variable}={point:.6g}: derivative of answer = {mpmath.nstr(dx, 8)}, "
            f"integrand = {mpmath.nstr(fx, 8)}"
        )


def check_antiderivative(integrand: str, candidate: str, variable: str = "x") -> VerificationResult:
    """Worker-side check of one antiderivative (runs unsandboxed: call through the public API)."""
    try:
        f, points, f_values, f_ok = _integrand_values(integrand, variable)
    except MathParseError as err:
        return _fail("bad_problem", f"integrand: parse error: {err}")
    try:
        answer = _parse_cached(candidate, variable)
    except MathParseError as err:
        status = "rejected" if str(err).startswith("rejected") else "parse_error"
        return _fail(status, f"{err}" if status == "rejected" else f"parse error: {err}")
    if answer.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return _fail("rejected", "rejected: answer is not finite")
    derivative = sympy.diff(answer, _real_symbol(variable))
    if derivative.has(sympy.Derivative, sympy.Subs):
        return _fail("unverifiable", "unverifiable: derivative of the answer did not evaluate")
    answer_values, answer_ok = _values(answer, variable, points)
    deriv_values, deriv_ok = _values(derivative, variable, points)
    n = min(len(answer_values), len(deriv_values))
    usable = f_ok[:n] & answer_ok[:n] & deriv_ok[:n]
    count = int(usable.sum())
    if count < MIN_CHECKS:
        return _fail(
            "unverifiable", f"unverifiable: only {count} sample points where integrand and answer are both defined"
        )
    fv, dv = f_values[:n][usable], deriv_values[:n][usable]
    close = np.abs(dv - fv) <= FAST_RTOL * np.maximum(np.abs(fv), np.abs(dv))
    for point in points[:n][usable][~close][:MAX_CONFIRMATIONS]:
        agrees, reason = _confirm(f, derivative, variable, float(point))
        if not agrees:
            return _fail("mismatch", reason, checks=count)
    return VerificationResult(True, f"verified at {count} points", "correct", count)


@lru_cache(maxsize=128)
def _reference_integral(integrand: str, lower: str, upper: str, variable: str) -> tuple[complex, float]:
    """High-precision value of the definite integral and mpmath's error estimate."""
    f = _parse_cached(integrand, variable)
    bounds = []
    for text in (lower, upper):
        bound = parse_math(text, variable)
        if bound.free_symbols:
            raise MathParseError(f"bound {text!r} depends on {variable}")
        if bound in (sympy.oo, -sympy.oo):
            bounds.append(mpmath.inf if bound == sympy.oo else -mpmath.inf)
        else:
            value = complex(sympy.N(bound, 30))
            if value.imag or not np.isfinite(value.real):
                raise MathParseError(f"bound {text!r} is not a real number")
            bounds.append(mpmath.mpf(str(sympy.N(bound, 30))))
    fn = sympy.lambdify(_real_symbol(variable), f, modules="mpmath", docstring_limit=0)
    a, b = bounds
    with mpmath.workdps(25):
        value, error = mpmath.quad(fn, [a, b], error=True, maxdegree=8)
        if error > DEFINITE_RTOL * 1e-2 * max(abs(value), 1e-3) and mpmath.isfinite(a) and mpmath.isfinite(b):
            # split the interval: kinks and near-singularities converge much better in pieces
            value, error = mpmath.quad(fn, mpmath.linspace(a, b, 9), error=True, maxdegree=8)
        return complex(value), float(error)


def reference_integral(integrand: str, lower: str, upper: str, variable: str = "x") -> tuple[complex, float]:
    """Worker-side reference value (runs unsandboxed: call through :func:`verify_batch`)."""
    return _reference_integral(integrand, lower, upper, variable)


def check_definite_value(candidate: str, reference: complex, error: float, variable: str = "x") -> VerificationResult:
    """Worker-side comparison of a definite-integral answer with the reference value."""
    try:
        answer = parse_math(candidate, variable)
    except MathParseError as err:
        status = "rejected" if str(err).startswith("rejected") else "parse_error"
        return _fail(status, f"{err}" if status == "rejected" else f"parse error: {err}")
    if answer.free_symbols:
        return _fail("rejected", f"rejected: a definite integral's value cannot depend on {variable}")
    value = complex(sympy.N(answer, 30))
    if not (np.isfinite(value.real) and np.isfinite(value.imag)):
        return _fail("mismatch", "answer is not a finite number")
    tolerance = DEFINITE_RTOL * max(abs(reference), abs(value)) + DEFINITE_ATOL
    if error > tolerance:
        return _fail("unverifiable", f"unverifiable: quadrature error estimate {error:.2g} exceeds tolerance")
    if abs(value - reference) <= tolerance:
        return VerificationResult(
            True, f"matches the integral {reference.real:.10g} to {DEFINITE_RTOL:g}", "correct", 1
        )
    return _fail("mismatch", f"mismatch: answer = {value.real:.10g}, integral = {reference.real:.10g}", 1)


# ----------------------------------------------------------------------------- public API


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def _sandbox_failure(error: str) -> VerificationResult:
    return _fail("timeout" if error.startswith("timeout") else "error", error)


def verify_batch(items: list[dict], timeout: float = DEFAULT_TIMEOUT) -> list[VerificationResult]:
    """Verify many answers in parallel in sandboxed workers; always one result per item, in order.

    Each item is a dict with ``integrand`` and ``candidate`` (strings), optional ``lower``/``upper``
    (missing, None or "" means indefinite) and optional ``variable`` (default ``"x"``). ``timeout``
    is the hard limit per answer in seconds (definite integrals' reference values get twice that,
    computed once per distinct problem).

    Example:
        >>> results = verify_batch([  # doctest: +SKIP
        ...     {"integrand": "x**2", "candidate": "x^3/3 + C"},
        ...     {"integrand": "exp(-x**2)", "lower": "-oo", "upper": "oo", "candidate": r"\\sqrt{\\pi}"},
        ... ])
        >>> [r.correct for r in results]  # doctest: +SKIP
        [True, True]
    """
    results: list[VerificationResult | None] = [None] * len(items)
    indefinite: list[tuple[int, tuple]] = []
    definite: list[tuple[int, tuple, str, str]] = []
    for i, item in enumerate(items):
        candidate = item.get("candidate")
        integrand = item.get("integrand")
        variable = item.get("variable") or "x"
        if _is_blank(integrand):
            results[i] = _fail("bad_problem", "no integrand")
        elif _is_blank(candidate):
            results[i] = _fail("no_answer", "no answer")
        elif len(str(candidate)) > MAX_CANDIDATE_CHARS:
            results[i] = _fail("parse_error", "parse error: answer too long")
        elif _is_blank(item.get("lower")) or _is_blank(item.get("upper")):
            indefinite.append((i, (str(integrand), str(candidate), variable)))
        else:
            key = (str(integrand), str(item["lower"]), str(item["upper"]), variable)
            definite.append((i, key, str(candidate), variable))

    outcomes = run_sandboxed(check_antiderivative, [a for _, a in indefinite], timeout)
    for (i, _), outcome in zip(indefinite, outcomes, strict=True):
        results[i] = outcome.value if outcome.ok else _sandbox_failure(outcome.error)

    if definite:
        keys = list(dict.fromkeys(key for _, key, _, _ in definite))
        references = dict(zip(keys, run_sandboxed(reference_integral, keys, 2 * timeout), strict=True))
        pending = []
        for i, key, candidate, variable in definite:
            ref = references[key]
            if not ref.ok:
                error = ref.error
                if "MathParseError" in error:
                    results[i] = _fail("bad_problem", f"problem: {error}")
                else:
                    results[i] = _fail("unverifiable", f"unverifiable: reference integral failed ({error})")
            else:
                pending.append((i, (candidate, ref.value[0], ref.value[1], variable)))
        outcomes = run_sandboxed(check_definite_value, [a for _, a in pending], timeout)
        for (i, _), outcome in zip(pending, outcomes, strict=True):
            results[i] = outcome.value if outcome.ok else _sandbox_failure(outcome.error)
    return results  # type: ignore[return-value]


def verify_antiderivative(
    integrand: str, candidate: str, variable: str = "x", timeout: float = DEFAULT_TIMEOUT
) -> VerificationResult:
    """Is ``candidate`` an antiderivative of ``integrand`` (up to a constant)? Sandboxed, bounded.

    Example:
        >>> verify_antiderivative("1/x", r"\\ln|x| + C").correct  # doctest: +SKIP
        True
        >>> verify_antiderivative("x*exp(x)", "x*exp(x)").reason  # doctest: +SKIP
        'mismatch at x=...: derivative of answer = ..., integrand = ...'
    """
    return verify_batch([{"integrand": integrand, "candidate": candidate, "variable": variable}], timeout)[0]


def verify_definite(
    integrand: str, lower: str, upper: str, candidate: str, variable: str = "x", timeout: float = DEFAULT_TIMEOUT
) -> VerificationResult:
    """Is ``candidate`` the value of the definite integral (relative tolerance 1e-6)? Sandboxed.

    Example:
        >>> verify_definite("sin(x)", "0", "pi", "2").correct  # doctest: +SKIP
        True
    """
    item = {"integrand": integrand, "lower": lower, "upper": upper, "candidate": candidate, "variable": variable}
    return verify_batch([item], timeout)[0]
