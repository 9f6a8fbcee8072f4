"""Numeric verification of antiderivatives and definite integrals.

How an indefinite answer ``F`` for an integrand ``f`` is judged (all of it inside a sandboxed worker):

1. both are compiled from the bounded grammar (:func:`compile_math`; the integrand is trusted input and
   gets the relaxed exponent bound, the answer the strict bounds);
2. ``F'`` is computed by the complex step, exact to rounding;
3. ``f`` and ``F'`` are evaluated with numpy at a fixed pool of 256 random real points spread over
   several scales; a point counts only where the integrand, the answer and its derivative are all
   real and finite (other points are skipped, i.e. resampled from the pool, never counted);
4. every counted point must agree to a relative 1e-8 (values below 1e-6 of the integrand's rounding
   scale count as zero, for integrands computed by cancellation); a disagreeing point is re-evaluated
   with mpmath at 50 digits (floating-point cancellation is not a wrong answer) and must agree to 1e-10;
5. at least :data:`MIN_CHECKS` points must be counted: never accept on zero (or few) checks.

Comparing derivatives makes the answer correct up to an additive constant, and also up to a
different constant on each side of a singularity or branch cut. ``log(x)`` and ``log(|x|)`` are both
accepted for ``1/x``: where ``log(x)`` is not real (``x < 0``) the point is skipped for that answer.

Definite answers are compared with a reference value of the integral (``mpmath.quad``, infinite bounds
supported; integrands with floor/ceiling/sign are split at their jumps) to a relative 1e-6, and only
when the reference's own error estimate is below that tolerance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import mpmath
import numpy as np

from .numeric import NUMPY_FUNCTIONS, Program, compile_math
from .parsing import MathParseError
from .sandbox import DEFAULT_TIMEOUT, get_pool, run_sandboxed

MIN_CHECKS = 8  # agreeing sample points required to accept an antiderivative
FAST_RTOL = 1e-8  # double-precision screen
CONFIRM_RTOL = 1e-10  # mpmath confirmation of a screened-out point
PROBE_POINTS = 24  # of the integrand's defined points, checked first when evaluation is point by point
GROSS_RTOL = 1e-4  # relative error that float64 rounding of a natural answer does not reach
CONFIRM_DPS = 50
MAX_CONFIRMATIONS = 16
DEFINITE_RTOL = 1e-6
DEFINITE_ATOL = 1e-9
MAX_ABS_VALUE = 1e150  # beyond this, float64 comparisons are meaningless
MIN_ABS_VALUE = 1e-150  # nonzero values below this are underflow territory (x**2016 near 0.7): skipped too
MAX_CANDIDATE_CHARS = 4000  # longer answers are rejected without entering the sandbox
# An integrand computed by cancellation (terms of size S adding up to ~0) is only known to about
# 1e-16 * S in float64; below NOISE_RTOL * S both sides count as zero for the screens, and the mpmath
# confirmation then decides at 50 digits. For integrands without cancellation S = |f| and nothing changes.
NOISE_RTOL = 1e-6
STEP_GRID = 1 << 15  # grid that locates the jumps of floor/ceiling/sign in a definite integral
STEP_MAX_PIECES = 200_000


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


@lru_cache(maxsize=1024)
def _compiled(text: str, variable: str, trusted: bool = False) -> Program:
    return compile_math(text, variable, trusted=trusted)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


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


def _usable(values: np.ndarray) -> np.ndarray:
    size = np.abs(values)
    return np.isfinite(values) & (size < MAX_ABS_VALUE) & ((size == 0) | (size > MIN_ABS_VALUE))


@lru_cache(maxsize=256)
def _integrand_values(integrand: str, variable: str) -> tuple[Program, np.ndarray, np.ndarray]:
    # integrands are trusted (bundled data, or variant rows already parsed): relaxed exponent bounds
    f = _compiled(integrand, variable, True)
    points = _sample_points(_seed(integrand))
    values = f.real(points)
    keep = _usable(values)  # only where the integrand is real and finite
    return f, points[keep], values[keep]


@lru_cache(maxsize=256)
def _integrand_scale(integrand: str, variable: str) -> np.ndarray:
    """Rounding-error scale of the integrand at its sample points (only needed when a point disagrees)."""
    f, points, values = _integrand_values(integrand, variable)
    scale = f.magnitude(points)
    return np.where(np.isfinite(scale), np.maximum(scale, np.abs(values)), np.abs(values))


def _confirm(f: Program, answer: Program, point: float, variable: str, scale: float = 0.0) -> tuple[bool, str]:
    """High-precision re-check of one point that failed the float64 screen."""
    with mpmath.workdps(CONFIRM_DPS):
        x = mpmath.mpf(point)
        try:
            fx = f.mp(x)
            dx = answer.mp_derivative(x)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return True, ""  # undefined at high precision: the point does not count either way
        if not (mpmath.isfinite(fx) and mpmath.isfinite(dx)):
            return True, ""
        noise = mpmath.mpf(10) ** (-CONFIRM_DPS + 5) * (1 + mpmath.mpf(scale))
        if abs(dx - fx) <= CONFIRM_RTOL * max(abs(fx), abs(dx)) + noise:
            return True, ""
        return False, (
            f"mismatch at {variable}={point:.6g}: derivative of answer = {mpmath.nstr(dx, 8)}, "
            f"integrand = {mpmath.nstr(fx, 8)}"
        )


def _counted_points(answer: Program, points: np.ndarray, f_values: np.ndarray):
    """Points where the answer and its derivative are real and finite too: their indices, both sides' values."""
    index = np.flatnonzero(_usable(answer.real(points)))
    derivative = answer.derivative(points[index])
    keep = _usable(derivative)
    index = index[keep]
    return index, f_values[index], derivative[keep]


def _relative_errors(f_values: np.ndarray, derivative: np.ndarray, scale) -> np.ndarray:
    size = np.maximum(np.maximum(np.abs(f_values), np.abs(derivative)), 1e-300)
    if scale is not None:
        size = np.maximum(size, NOISE_RTOL * scale)
    return np.abs(derivative - f_values) / size


def _parse_failure(err: MathParseError) -> VerificationResult:
    if str(err).startswith("rejected"):
        return _fail("rejected", str(err))
    return _fail("parse_error", f"parse error: {err}")


def check_antiderivative(integrand: str, candidate: str, variable: str = "x") -> VerificationResult:
    """Worker-side check of one antiderivative (runs unsandboxed: call through the public API)."""
    try:
        f, all_points, all_f_values = _integrand_values(integrand, variable)
    except MathParseError as err:
        return _fail("bad_problem", f"integrand: parse error: {err}")
    try:
        answer = _compiled(candidate, variable)
    except MathParseError as err:
        return _parse_failure(err)
    if answer.has_infinity:
        return _fail("rejected", "rejected: answer is not finite")
    # With a special function (evaluated point by point in mpmath) probe a few points first: most
    # wrong answers are wrong everywhere and are rejected for a fraction of the cost. numpy's cost is
    # per call, not per point, so everything else is checked on the whole sample at once.
    sizes = (PROBE_POINTS, len(all_points)) if answer.special or f.special else (len(all_points),)
    for size in sizes:
        index, f_values, derivative = _counted_points(answer, all_points[:size], all_f_values[:size])
        count, scale = len(index), None
        error = _relative_errors(f_values, derivative, None)
        if np.any(error > FAST_RTOL):
            # some disagreement: judge it against the integrand's rounding scale (cancellation), lazily
            # computed since most answers never need it
            scale = _integrand_scale(integrand, variable)[index]
            error = _relative_errors(f_values, derivative, scale)
        if count >= MIN_CHECKS and np.mean(error > GROSS_RTOL) > 0.5:
            # wrong at most points by far more than any rounding of a natural answer: no need for mpmath
            worst = int(np.argmax(error))
            return _fail(
                "mismatch",
                f"mismatch at {variable}={all_points[index[worst]]:.6g}: derivative of answer = "
                f"{derivative[worst]:.8g}, integrand = {f_values[worst]:.8g}",
                checks=count,
            )
    if count < MIN_CHECKS:
        return _fail(
            "unverifiable", f"unverifiable: only {count} sample points where integrand and answer are both defined"
        )
    suspects = np.flatnonzero(error > FAST_RTOL)
    # worst disagreement first: a wrong answer is usually rejected by its first confirmation
    for k in suspects[np.argsort(-error[suspects])][:MAX_CONFIRMATIONS]:
        agrees, reason = _confirm(f, answer, float(all_points[index[k]]), variable, float(scale[k]))
        if not agrees:
            return _fail("mismatch", reason, checks=count)
    return VerificationResult(True, f"verified at {count} points", "correct", count)


def _bound(text: str, variable: str):
    bound = _compiled(text, variable, True)
    if bound.has_variable:
        raise MathParseError(f"bound {text!r} depends on {variable}")
    value = bound.mp()
    if isinstance(value, mpmath.mpc) or mpmath.isnan(value):
        raise MathParseError(f"bound {text!r} is not a real number")
    return value


def _nan_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _same_steps(f: Program, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.all(_nan_equal(f.step_values(x), reference), axis=0)


def _step_jumps(f: Program, a: float, b: float) -> np.ndarray:
    """Points in (a, b) where a floor/ceiling/sign sub-expression of ``f`` changes value.

    Changes are found on a fine grid and each is located by vectorised bisection to float64 resolution
    (nested step functions work too: bisection only asks "same values as at the left end?").
    """
    grid = np.linspace(a, b, STEP_GRID + 1)
    values = f.step_values(grid)
    cells = np.flatnonzero(~np.all(_nan_equal(values[:, 1:], values[:, :-1]), axis=0))
    lo, hi, left = grid[cells], grid[cells + 1], values[:, cells]
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        same = _same_steps(f, mid, left)
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return hi


_GAUSS_RULES = tuple(np.polynomial.legendre.leggauss(n) for n in (12, 24))
GAUSS_PIECES = 16


def _gauss_pieces(g: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray):
    """12- and 24-node Gauss-Legendre estimates of the integral of ``g`` on each piece [lo_i, hi_i], and
    the 24-node rule's points (flat) and values (pieces x nodes)."""
    half, centre = 0.5 * (hi - lo), 0.5 * (hi + lo)
    estimates = []
    for nodes, weights in _GAUSS_RULES:
        x = (centre[:, None] + half[:, None] * nodes[None, :]).ravel()
        values = g(x).reshape(len(lo), len(nodes))
        estimates.append(half * (values @ weights))
    return estimates[0], estimates[1], x, values


def _step_integral(f: Program, a: float, b: float, pieces: int = 0) -> tuple[float, float]:
    """Integral of a piecewise-smooth integrand over [a, b] split at its jumps (Gauss-Legendre per piece).

    With ``pieces`` the interval is also cut into that many equal parts (for highly oscillatory
    integrands, where one adaptive rule over the whole interval does not converge).

    Error estimate: the difference of 12- and 24-node rules summed over pieces, plus, for any piece
    where the step values are still not constant after a few subdivisions, its width times the largest
    value seen (so an unresolved jump makes the reference ``unverifiable``, never wrong).
    """
    jumps = _step_jumps(f, a, b) if f.steps else np.empty(0)
    edges = np.unique(np.concatenate([np.linspace(a, b, max(pieces, 1) + 1), jumps]))
    lo, hi = edges[:-1], edges[1:]
    total, error = 0.0, 0.0
    for round_ in range(6):
        if len(lo) > STEP_MAX_PIECES:
            return float("nan"), float("inf")
        coarse, fine, x, values = _gauss_pieces(f.real, lo, hi)
        steps = f.step_values(x).reshape(len(f.steps), *values.shape)
        constant = np.all(_nan_equal(steps, steps[:, :, :1]), axis=(0, 2))
        if not np.all(np.isfinite(values[constant])):
            return float("nan"), float("inf")
        total += float(np.sum(fine[constant]))
        error += float(np.sum(np.abs(fine[constant] - coarse[constant])))
        if np.all(constant):
            return total, error + 1e-14 * abs(total)
        # pieces that still contain a jump: split each in 16 and try again
        lo, hi = lo[~constant], hi[~constant]
        if round_ == 5:
            break
        cuts = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 17)[None, :]
        lo, hi = cuts[:, :-1].ravel(), cuts[:, 1:].ravel()
    with np.errstate(all="ignore"):
        biggest = np.nanmax(np.abs(values[~constant]), axis=1)
    return total, error + float(np.sum((hi - lo) * np.where(np.isfinite(biggest), biggest, np.inf)))


@lru_cache(maxsize=128)
def _reference_integral(integrand: str, lower: str, upper: str, variable: str) -> tuple[complex, float, float]:
    f = _compiled(integrand, variable, True)
    with mpmath.workdps(25):
        a, b = _bound(lower, variable), _bound(upper, variable)
        value, error = _quadrature(f, a, b)
        return value, error, _absolute_tolerance(f, a, b, value)


def _absolute_tolerance(f: Program, a, b, value: complex) -> float:
    """Absolute part of the definite tolerance: DEFINITE_ATOL, scaled down for integrals of small functions.

    It only matters when the integral is near 0 (|value| < DEFINITE_ATOL / DEFINITE_RTOL). A fixed 1e-9
    would then accept 1/(2025*2027) for 1/(2025*2026) (both about 2.4e-7), so it is capped at
    DEFINITE_ATOL times the integral of |f| (cancellation to 0 of large values keeps the full 1e-9).
    """
    if abs(value) >= DEFINITE_ATOL / DEFINITE_RTOL:
        return DEFINITE_ATOL
    magnitude = replace(f, node=("abs", f.node))
    try:
        if mpmath.isfinite(a) and mpmath.isfinite(b):
            l1, _ = _step_integral(magnitude, float(min(a, b)), float(max(a, b)), pieces=64)
        else:
            l1 = float(mpmath.quad(magnitude.mp, [a, b], maxdegree=6))
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return DEFINITE_ATOL
    if not np.isfinite(l1):
        return DEFINITE_ATOL
    return DEFINITE_ATOL * min(1.0, abs(l1))


def _mapped_interval(a, b) -> tuple[float, float, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] | None:
    """[a, b] as a finite t-interval and the map t -> (x, dx/dt); None for bounds it does not handle."""
    if mpmath.isfinite(a) and mpmath.isfinite(b):
        return float(a), float(b), lambda t: (t, np.ones_like(t))
    if mpmath.isfinite(a) and b == mpmath.inf:  # x = a + t / (1 - t), t in [0, 1)
        a = float(a)
        return 0.0, 1.0, lambda t: (a + t / (1 - t), 1 / (1 - t) ** 2)
    if a == -mpmath.inf and mpmath.isfinite(b):  # x = b - t / (1 - t)
        b = float(b)
        return -1.0, 0.0, lambda t: (b + t / (1 + t), 1 / (1 + t) ** 2)
    if a == -mpmath.inf and b == mpmath.inf:  # x = t / (1 - t^2), t in (-1, 1)
        return -1.0, 1.0, lambda t: (t / (1 - t * t), (1 + t * t) / (1 - t * t) ** 2)
    return None


def _gauss_legendre(f: Program, a, b) -> tuple[float, float] | None:
    """float64 composite Gauss-Legendre (12 and 24 nodes on 16 pieces; infinite bounds mapped to finite).

    The difference of the two rules is the error estimate. Returns None when the integrand is not real
    and finite at every node, so complex, singular and other hard integrals go to mpmath.
    """
    mapped = _mapped_interval(a, b)
    if mapped is None:
        return None
    lo, hi, to_x = mapped
    edges = np.linspace(lo, hi, GAUSS_PIECES + 1)

    def integrand(t: np.ndarray) -> np.ndarray:
        x, dx = to_x(t)
        return f.real(x) * dx

    with np.errstate(all="ignore"):
        coarse, fine, _, _ = _gauss_pieces(integrand, edges[:-1], edges[1:])
    if not (np.all(np.isfinite(coarse)) and np.all(np.isfinite(fine))):
        return None
    return float(np.sum(fine)), float(np.sum(np.abs(fine - coarse)))


def _converged(value, error) -> bool:
    return error <= DEFINITE_RTOL * 1e-2 * max(abs(value), 1e-3)


def _quadrature(f: Program, a, b) -> tuple[complex, float]:
    with mpmath.workdps(25):
        if f.steps and mpmath.isfinite(a) and mpmath.isfinite(b) and a < b:
            # mpmath.quad assumes a smooth integrand: integrate between the jumps instead
            value, error = _step_integral(f, float(a), float(b))
            if np.isfinite(value):
                return complex(value), float(error)
        if not f.steps and not f.special:
            # smooth real integrands (most problems) converge in float64 Gauss-Legendre at a fraction of
            # mpmath's cost; anything it cannot settle (singular, oscillatory, complex) goes to mpmath
            fast = _gauss_legendre(f, a, b)
            if fast is not None and _converged(*fast):
                return complex(fast[0]), fast[1]
        value, error = mpmath.quad(f.mp, [a, b], error=True, maxdegree=8)
        if not _converged(value, error) and mpmath.isfinite(a) and mpmath.isfinite(b):
            # split the interval: kinks and near-singularities converge much better in pieces
            value, error = mpmath.quad(f.mp, mpmath.linspace(a, b, 9), error=True, maxdegree=8)
            if not _converged(value, error):
                # highly oscillatory (sin(2019 x) over a few periods of 2 pi): many small Gauss-Legendre pieces
                fine, fine_error = _step_integral(f, float(a), float(b), pieces=STEP_GRID // 2)
                if np.isfinite(fine) and fine_error < error:
                    return complex(fine), float(fine_error)
        return complex(value), float(error)


def reference_integral(integrand: str, lower: str, upper: str, variable: str = "x") -> tuple[complex, float, float]:
    """Worker-side reference value, its error estimate and the absolute tolerance to judge answers with.

    Runs unsandboxed: call through :func:`verify_batch`.
    """
    return _reference_integral(integrand, lower, upper, variable)


def check_definite_value(
    candidate: str, reference: complex, error: float, variable: str = "x", atol: float = DEFINITE_ATOL
) -> VerificationResult:
    """Worker-side comparison of a definite-integral answer with the reference value."""
    try:
        answer = _compiled(candidate, variable)
    except MathParseError as err:
        return _parse_failure(err)
    if answer.has_variable:
        return _fail("rejected", f"rejected: a definite integral's value cannot depend on {variable}")
    with mpmath.workdps(30):
        try:
            value = complex(answer.mp())
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return _fail("mismatch", "answer is not a finite number")
    if not (np.isfinite(value.real) and np.isfinite(value.imag)):
        return _fail("mismatch", "answer is not a finite number")
    tolerance = DEFINITE_RTOL * max(abs(reference), abs(value)) + atol
    if error > tolerance:
        return _fail("unverifiable", f"unverifiable: quadrature error estimate {error:.2g} exceeds tolerance")
    if abs(value - reference) <= tolerance:
        reason = f"matches the integral {reference.real:.10g} to {DEFINITE_RTOL:g}"
        return VerificationResult(True, reason, "correct", 1)
    return _fail("mismatch", f"mismatch: answer = {value.real:.10g}, integral = {reference.real:.10g}", 1)


def _task(kind: str, args: tuple):
    """One worker task of :func:`verify_batch` (so one pass can mix checks and reference integrals)."""
    if kind == "reference":
        return reference_integral(*args)
    return check_antiderivative(*args)


def warm_up() -> None:
    """Run every hot path once: numpy's loops for each function (real and complex), the LaTeX scanner,
    mpmath's constants at confirmation precision, both quadratures. A fresh worker calls this at startup,
    so its first batch runs at the speed of a long-lived one (about a third faster)."""
    for name in NUMPY_FUNCTIONS:
        check_antiderivative(f"{name}(x)", f"{name}(x)**2")
    check_antiderivative("x**2", r"\frac{x^{3}}{3} + \sin^2 x - \ln|x| + \sqrt[3]{x} + e^{2x} + C")
    check_antiderivative("cos(x)", "sin(x) + 1e-12*x")  # one mpmath confirmation
    for lower, upper in (("0", "1"), ("-oo", "oo"), ("1", "oo")):
        reference = reference_integral("exp(-x**2)", lower, upper)
        check_definite_value("1/2", *reference)
    reference_integral("sqrt(x)", "0", "1")  # mpmath's tanh-sinh


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

    # identical answers to the same problem (common within a GRPO group) are checked once; definite
    # problems' reference values (once per distinct problem) are computed in the same pass, first,
    # since they are the slow tasks
    # grouped by integrand, so a chunk of work mostly reuses one worker's cached integrand values
    unique = sorted(dict.fromkeys(args for _, args in indefinite), key=lambda args: (args[2], args[0]))
    keys = list(dict.fromkeys(key for _, key, _, _ in definite))
    tasks = [("reference", key) for key in keys] + [("antiderivative", args) for args in unique]
    limits = [2 * timeout] * len(keys) + [timeout] * len(unique)
    done = get_pool().run(_task, tasks, timeout, timeouts=limits) if tasks else []
    references = dict(zip(keys, done[: len(keys)], strict=True))
    outcomes = dict(zip(unique, done[len(keys) :], strict=True))
    for i, args in indefinite:
        outcome = outcomes[args]
        results[i] = outcome.value if outcome.ok else _sandbox_failure(outcome.error)

    if definite:
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
                pending.append((i, (candidate, ref.value[0], ref.value[1], variable, ref.value[2])))
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
