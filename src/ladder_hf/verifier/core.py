"""Numeric verification of antiderivatives and definite integrals (the definition: docs/verifier.md).

How an indefinite answer ``F`` for an integrand ``f`` is judged (all of it inside a sandboxed worker):

1. both are compiled from the bounded grammar (:func:`compile_math`; the integrand is trusted input and
   gets the relaxed exponent bound, the answer the strict bounds);
2. ``F`` and ``F'`` are evaluated together by forward-mode automatic differentiation at a fixed pool of
   272 random real points spread over several scales (the integrand's domain is searched for when few of
   them are in it), in float64 and, where that is not real, complex128 with principal branches;
3. every point where ``f`` is real and finite counts: ``F'`` must equal ``f`` there (relative 1e-9 in
   float64, values below 1e-6 of the integrand's rounding scale counting as zero); where ``F`` is not
   finite in float64, mpmath decides, and an answer it cannot evaluate is rejected;
4. the worst disagreeing points and a typical (median) point are confirmed with mpmath at 50 digits to a
   relative 1e-25, so no relative error is too small to be caught;
5. at least :data:`MIN_CHECKS` points must be counted: never accept on zero (or few) checks;
6. ``F`` must be continuous wherever ``f`` is finite: jumps of its step functions are located and
   measured exactly, and its increments between sample points must match the integrand's integral.

So the answer is correct up to a constant on each interval of the integrand's domain: ``log(x)`` and
``log|x|`` are both accepted for ``1/x``; ``x*floor(x)`` is not one of ``floor(x)``.

Definite answers are compared with a reference value of the integral to a relative 1e-6, only when the
reference can be trusted (a dense scan finds singular points, divergence, slow tails and mass the
quadrature missed); otherwise the problem is ``no_reference``, or judged against its official value
when the row has one.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import mpmath
import numpy as np

from .numeric import NUMPY_FUNCTIONS, Program, compile_math, evaluate_node
from .parsing import MathParseError, RejectedAnswer
from .sandbox import DEFAULT_TIMEOUT, SandboxFailure, SandboxOutcome, get_pool

if hasattr(enum, "StrEnum"):
    StrEnum = enum.StrEnum
else:  # Python 3.10

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` of Python 3.11: members are their values as strings."""

        __str__ = str.__str__
        __format__ = str.__format__
        __hash__ = str.__hash__


MIN_CHECKS = 8  # agreeing sample points required to accept an antiderivative
FAST_RTOL = 1e-9  # double-precision screen: points that disagree by more are confirmed with mpmath
CONFIRM_RTOL = 1e-25  # mpmath confirmation: an exact answer agrees to rounding at CONFIRM_DPS digits
CONFIRM_DPS = (50, 100)  # a disagreement must persist at both precisions (rounding would shrink)
PROBE_POINTS = 24  # of the integrand's defined points, checked first when evaluation is point by point
GROSS_RTOL = 1e-4  # relative error that float64 rounding of a natural answer does not reach
MAX_CONFIRMATIONS = 16  # points where the answer is not finite in float64, settled by mpmath
MAX_SUSPECTS = 4  # worst disagreeing points confirmed (beyond them, disagreement is float64 rounding)
DOMAIN_SEARCH_BELOW = 64  # fewer usable sample points than this: locate the integrand's domain
# Continuity: a cell between sample points whose answer increment differs from the integrand's integral
# by more than CELL_SCREEN_RTOL (of the values involved) is re-checked with mpmath to CELL_CONFIRM_RTOL.
CELL_RTOL = 1e-9  # 6- and 12-node rules agree this well on a cell without a singularity or jump
CELL_SCREEN_RTOL = 1e-7
CELL_SCREEN_ATOL = 1e-13
CELL_CONFIRM_RTOL = 1e-12
MAX_CELL_CONFIRMATIONS = 4
JUMP_RTOL = 1e-30  # a step function's jump, relative to the answer's size, measured at 50 digits
FIRST_JUMPS_CHECKED = 1
GROSS_JUMP_CELLS = 16
GROSS_JUMP_RTOL = 1e-6  # of 1 + the size of the answer's terms: far above float64 rounding
JUMP_ZOOM = 1024
MAX_JUMPS_CHECKED = 64
# (region, grid cells) where the answer's step functions are searched for jumps, cheapest first
STEP_REGIONS = (((-10.0, 10.0), 4096), ((-100.0, 100.0), 1 << 15), ((-1.0, 1.0), 1 << 15))
DEFINITE_RTOL = 1e-6
DEFINITE_ATOL = 1e-9
MAX_ABS_VALUE = 1e150  # beyond this, float64 comparisons are meaningless
MIN_ABS_VALUE = 1e-150  # nonzero values below this are underflow territory (x**2016 near 0.7): skipped too
MAX_CANDIDATE_CHARS = 4000  # longer answers are rejected without entering the sandbox
RETRY_FACTOR = 4.0  # a timed-out answer gets one more try with this many times the limit
MAX_RETRIES = 8  # per batch: a wave of timeouts is the answers' doing, not the machine's
REFERENCE_TIMEOUT_FACTOR = 4.0  # a definite problem's reference value gets this many answer time limits
# An integrand computed by cancellation (terms of size S adding up to ~0) is only known to about
# 1e-16 * S in float64; below NOISE_RTOL * S both sides count as zero for the screens, and the mpmath
# confirmation then decides at 50 digits. For integrands without cancellation S = |f| and nothing changes.
NOISE_RTOL = 1e-6
STEP_GRID = 1 << 15  # grid that locates the jumps of floor/ceiling/sign in a definite integral
STEP_MAX_PIECES = 200_000


class Status(StrEnum):
    """What a verdict is about (:attr:`VerificationResult.status`). Members are strings, so
    ``result.status == "timeout"`` works and logs show ``timeout``.

    About the answer: ``CORRECT``, ``MISMATCH``, ``NO_ANSWER``, ``PARSE_ERROR``, ``REJECTED`` (math, but
    not an acceptable answer: an integral, infinity, an undefined constant), ``UNVERIFIABLE`` (too few
    points where it is defined, or a reference less precise than the tolerance), ``TIMEOUT``. About the
    problem or the machine, which say nothing about the answer (not scored): ``BAD_PROBLEM``,
    ``NO_REFERENCE`` (the integral's value cannot be established), ``ERROR`` (a sandbox failure).

    Example:
        >>> Status.TIMEOUT == "timeout", f"{Status.PARSE_ERROR}"
        (True, 'parse_error')
    """

    CORRECT = "correct"
    MISMATCH = "mismatch"
    NO_ANSWER = "no_answer"
    PARSE_ERROR = "parse_error"
    REJECTED = "rejected"
    UNVERIFIABLE = "unverifiable"
    TIMEOUT = "timeout"
    BAD_PROBLEM = "bad_problem"
    NO_REFERENCE = "no_reference"
    ERROR = "error"


UNSCORED_STATUSES = frozenset({Status.BAD_PROBLEM, Status.NO_REFERENCE, Status.ERROR})


@dataclass(frozen=True)
class VerificationResult:
    """Verdict on one answer.

    Attributes:
        correct: whether the answer is verified.
        reason: human-readable explanation ("verified at 212 points", "mismatch at x=1.234: ...",
            "parse error: unknown symbol 'y'", "timeout after 2s", ...).
        status: machine-readable category, a :class:`Status` (a string). About the answer: ``correct``,
            ``mismatch``, ``no_answer``, ``parse_error``, ``rejected``, ``unverifiable`` (too few points
            where it is defined) or ``timeout``. About the problem or the machine (not scored, see
            :attr:`scored`): ``bad_problem``, ``no_reference`` or ``error``.
        checks: number of independent numeric checks that agreed.
    """

    correct: bool
    reason: str
    status: Status = Status.MISMATCH
    checks: int = 0

    def __bool__(self) -> bool:
        return self.correct

    @property
    def scored(self) -> bool:
        """False when the verdict says nothing about the answer: the problem is malformed
        (``bad_problem``), its value cannot be established (``no_reference``) or the sandbox failed
        (``error``). Rewards return ``None`` for these (TRL skips them) and count them."""
        return self.status not in UNSCORED_STATUSES


def _fail(status: Status, reason: str, checks: int = 0) -> VerificationResult:
    return VerificationResult(False, reason, status, checks)


# ----------------------------------------------------------------------------- worker side


@lru_cache(maxsize=1024)
def _compiled(text: str, variable: str, trusted: bool = False) -> Program:
    return compile_math(text, variable, trusted=trusted)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _sample_points(seed: int) -> np.ndarray:
    """272 real points over several scales, fixed per integrand (so its values are computed once)."""
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
            # near 0 on a log scale: where x^(1/2), log(x) or e^{-10^6 x} behave unlike anywhere else
            rng.choice([-1.0, 1.0], 16) * 10 ** rng.uniform(-8, -2, 16),
        ]
    )


def _usable(values: np.ndarray) -> np.ndarray:
    size = np.abs(values)
    return np.isfinite(values) & (size < MAX_ABS_VALUE) & ((size == 0) | (size > MIN_ABS_VALUE))


def _domain_points(f: Program, seed: int, count: int = 272) -> np.ndarray:
    """Random points of the integrand's real domain when it lies away from the usual scales or is tiny
    (``sqrt(x - 20)``, ``log(x - 25)``, ``sqrt(1 - 10000 x^2)``): a log- and a linear grid locate it,
    then points are drawn around the grid points where the integrand is real and finite."""
    magnitudes = np.logspace(-8, 8, 2049)
    grid = np.unique(np.concatenate([-magnitudes, magnitudes, np.linspace(-1000, 1000, 4001), [0.0]]))
    usable = _usable(f.real(grid))
    if not np.any(usable):
        return np.empty(0)
    rng = np.random.default_rng(seed)
    index = np.flatnonzero(usable)
    centres = grid[index]
    lower = grid[np.maximum(index - 1, 0)]
    upper = grid[np.minimum(index + 1, len(grid) - 1)]
    pick = rng.integers(0, len(centres), 4 * count)
    candidates = np.concatenate([centres, centres[pick] + rng.uniform(-0.5, 0.5, 4 * count) * (upper - lower)[pick]])
    candidates = candidates[_usable(f.real(candidates))]
    return rng.permutation(np.unique(candidates))[:count]


@lru_cache(maxsize=256)
def _integrand_values(integrand: str, variable: str) -> tuple[Program, np.ndarray, np.ndarray]:
    # integrands are trusted (bundled data, or variant rows already parsed): relaxed exponent bounds
    f = _compiled(integrand, variable, True)
    seed = _seed(integrand)
    points = _sample_points(seed)
    values = f.real(points)
    keep = _usable(values)  # only where the integrand is real and finite
    if np.count_nonzero(keep) < DOMAIN_SEARCH_BELOW:
        extra = _domain_points(f, seed)
        points = np.concatenate([points[keep], extra])
        values = f.real(points)
        keep = _usable(values)
    return f, points[keep], values[keep]


@lru_cache(maxsize=256)
def _integrand_scale(integrand: str, variable: str) -> np.ndarray:
    """Rounding-error scale of the integrand at its sample points (only needed when a point disagrees)."""
    f, points, values = _integrand_values(integrand, variable)
    scale = f.magnitude(points)
    return np.where(np.isfinite(scale), np.maximum(scale, np.abs(values)), np.abs(values))


@lru_cache(maxsize=256)
def _cell_integrals(integrand: str, variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integrals of the integrand between consecutive sample points (sorted), for the continuity check.

    Returns the sort order of the sample points, each cell's integral, its error estimate (the 6- and
    12-node Gauss-Legendre rules' difference) and a mask of the cells whose integral is trustworthy (the
    rules agree: no singularity or jump inside).
    """
    f, points, _ = _integrand_values(integrand, variable)
    order = np.argsort(points)
    x = points[order]
    if len(x) < 2:
        return order, np.empty(0), np.empty(0), np.zeros(0, dtype=bool)
    with np.errstate(all="ignore"):
        coarse, fine, _, nodes = _gauss_pieces(f.real, x[:-1], x[1:], _CELL_RULES)
        width = x[1:] - x[:-1]
        size = width * np.nanmax(np.abs(nodes), axis=1)
        trusted = (
            np.all(np.isfinite(nodes), axis=1)
            & (np.abs(fine - coarse) <= CELL_RTOL * np.maximum(size, 1e-300))
            & (width > 0)
        )
    return order, fine, np.abs(fine - coarse), trusted


def _mp_point(program: Program, x):
    """Value and derivative of an answer at one point at the current mpmath precision; None where
    undefined (an exception or a non-finite value)."""
    try:
        value, slope = program.mp_dual(mpmath.mpf(x))
    except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
        return None
    if not (mpmath.isfinite(value) and mpmath.isfinite(slope)):
        return None
    return value, slope


@lru_cache(maxsize=4096)
def _integrand_mp(integrand: str, variable: str, point: float, dps: int):
    """The integrand at one point at ``dps`` digits; None where it has no real finite value there. Cached:
    every answer to a problem is confirmed at the same typical point."""
    f = _integrand_values(integrand, variable)[0]
    with mpmath.workdps(dps):
        try:
            fx = f.mp(mpmath.mpf(point))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
            return None
        if not mpmath.isfinite(fx) or (isinstance(fx, mpmath.mpc) and abs(fx.imag) > abs(fx.real) * 1e-30):
            return None
        return fx


def _confirm(integrand: str, answer: Program, point: float, variable: str, scale: float = 0.0) -> tuple[bool, str]:
    """High-precision check of one point: the answer must be defined there and its derivative must equal
    the integrand to CONFIRM_RTOL. Any failure to evaluate the answer is a rejection, never an agreement."""
    disagreement = None
    for dps in CONFIRM_DPS:
        fx = _integrand_mp(integrand, variable, point, dps)
        if fx is None:
            return True, ""  # the trusted integrand is undefined here at high precision: no evidence
        with mpmath.workdps(dps):
            x = mpmath.mpf(point)
            answer_at = _mp_point(answer, x)
            if answer_at is None:
                return False, f"answer is undefined at {variable}={point:.6g}, where the integrand is finite"
            dx = answer_at[1]
            allowed = CONFIRM_RTOL * max(abs(fx), abs(dx)) + _NOISE[dps] * (1 + scale)
            error = abs(dx - fx)
            if error <= allowed:
                return True, ""
            disagreement = (dx, fx)
            if error > 1e5 * allowed:
                break  # far above rounding at this precision: more digits would not change it
    # wrong at every precision (a rounding artefact would have shrunk with more digits)
    dx, fx = disagreement
    return False, (
        f"mismatch at {variable}={point:.6g}: derivative of answer = {mpmath.nstr(dx, 12)}, "
        f"integrand = {mpmath.nstr(fx, 12)}"
    )


_NOISE = {dps: mpmath.mpf(10) ** (-dps + 5) for dps in CONFIRM_DPS}  # rounding at each confirmation precision


def _answer_at(answer: Program, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The answer's values and derivatives at the points: float64 where real, principal-branch complex
    elsewhere (``log(x)`` at ``x < 0`` is ``log|x| + i pi``, with derivative ``1/x``)."""
    value, slope = answer.dual(points)
    real = np.isfinite(value) & np.isfinite(slope)
    if real.all():
        return value, slope
    value, slope = value.astype(np.complex128), slope.astype(np.complex128)
    value[~real], slope[~real] = answer.dual(points[~real], complex_values=True)
    return value, slope


def _classify(values: np.ndarray, slopes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which points count (answer and derivative finite, below MAX_ABS_VALUE, not underflowing) and which
    are undefined (not finite, or overflowing) for the answer; underflow (nonzero below MIN_ABS_VALUE,
    ``x**2016`` near 0.7) is neither."""
    size, slope_size = np.abs(values), np.abs(slopes)
    finite = np.maximum(size, slope_size) < MAX_ABS_VALUE  # False for NaN and inf too
    lowest = np.minimum(size, slope_size)
    if not (lowest < MIN_ABS_VALUE).any():  # the common case: no value near underflow
        return finite, np.flatnonzero(~finite)
    tiny = ((size < MIN_ABS_VALUE) & (size != 0)) | ((slope_size < MIN_ABS_VALUE) & (slope_size != 0))
    return finite & ~tiny, np.flatnonzero(~finite & ~tiny)


def _relative_errors(f_values: np.ndarray, derivative: np.ndarray, scale) -> np.ndarray:
    size = np.maximum(np.maximum(np.abs(f_values), np.abs(derivative)), 1e-300)
    if scale is not None:
        size = np.maximum(size, NOISE_RTOL * scale)
    return np.abs(derivative - f_values) / size


def _parse_failure(err: MathParseError) -> VerificationResult:
    if isinstance(err, RejectedAnswer):
        return _fail(Status.REJECTED, str(err))
    return _fail(Status.PARSE_ERROR, f"parse error: {err}")


def _undefined_constant(answer: Program) -> bool:
    """Does a constant part of the answer have no finite value (``tan(pi/2)``, ``1/(1-1)``, ``log(0)``)?"""
    return any(_exact_value(replace(answer, node=node)) is None for node in answer.constants)


def _singular_at(f: Program, p: float) -> bool:
    """Is the integrand undefined or unbounded near ``p``? (Then an answer may jump there: the integrand's
    domain has two intervals.)"""
    steps = np.array([1e-2, 1e-4, 1e-6, 1e-8]) * max(1.0, abs(p))
    with np.errstate(all="ignore"):
        near = np.abs(f.real(np.concatenate([p - steps, p + steps, [p]])))
    if not np.all(np.isfinite(near)) or np.any(near >= MAX_ABS_VALUE):
        return True
    left, right = near[:4], near[4:8]
    grows = [np.all(np.diff(side) > 0) and side[-1] > 1.5 * side[0] for side in (left, right)]
    return bool(any(grows))


def _jump(answer: Program, lo: float, hi: float) -> float:
    """Size of the answer's jump between two adjacent points, at 50 digits, beyond what its slope
    explains over that distance (the slope itself may jump there, as with ``floor(x)``), relative to the
    answer's size; 0 where the answer is undefined at either point."""
    with mpmath.workdps(50):
        left, right = _mp_point(answer, lo), _mp_point(answer, hi)
        if left is None or right is None:
            return 0.0
        width = mpmath.mpf(hi) - mpmath.mpf(lo)
        gap = abs(right[0] - left[0] - width * (left[1] + right[1]) / 2) - width * abs(right[1] - left[1]) / 2
        return float(max(gap, 0) / (1 + max(abs(left[0]), abs(right[0]))))


def _step_discontinuity(f: Program, answer: Program, variable: str) -> str:
    """Where a floor/ceiling/sign in the answer changes value, the answer must not jump unless the
    integrand is singular there (``x*floor(x)`` is not an antiderivative of ``floor(x)``)."""
    rng = np.random.default_rng(0)
    # a few changes first: one real jump settles it, and most step tricks jump everywhere
    passes = [(STEP_REGIONS[0], FIRST_JUMPS_CHECKED), *((region, MAX_JUMPS_CHECKED) for region in STEP_REGIONS)]
    for ((a, b), cells), max_cells in passes:
        jumps = _step_jumps(answer, a, b, max_cells=max_cells, rng=rng, grid_cells=cells)
        for p in jumps:
            lo, hi = np.nextafter(p, -np.inf), p
            if not np.all(_usable(f.real(np.array([lo, hi])))) or _singular_at(f, p):
                continue
            if _jump(answer, float(lo), float(hi)) > JUMP_RTOL:
                return f"answer jumps at {variable}={p:.6g}, where the integrand is finite: not continuous"
    return ""


def _gross_step_jump(f: Program, answer: Program, variable: str) -> str:
    """The cheap test first: on the grid cells of [-10, 10] where a step function of the answer changes
    value and the integrand is smooth (its 12- and 24-node rules agree), the answer's increment must match
    the integrand's integral up to float64 rounding of the answer's terms. A jump larger than that
    (``+ floor(x)``, ``+ sign(x)``) is settled in float64; smaller ones go to the exact check."""
    (a, b), cells = STEP_REGIONS[0]
    grid = np.linspace(a, b, cells + 1)
    steps = answer.step_values(grid)
    changed = np.flatnonzero(~np.all(_nan_equal(steps[:, 1:], steps[:, :-1]), axis=0))[:GROSS_JUMP_CELLS]
    if not len(changed):
        return ""
    lo, hi = grid[changed], grid[changed + 1]
    with np.errstate(all="ignore"):
        coarse, fine, _, nodes = _gauss_pieces(f.real, lo, hi)
        ends = np.concatenate([lo, hi])
        values = answer.real(ends)
        scale = 1 + np.abs(answer.magnitude(ends))
        n = len(lo)
        smooth = np.all(np.isfinite(nodes), axis=1) & (np.abs(fine - coarse) <= CELL_RTOL * (np.abs(fine) + 1e-300))
        increment = values[n:] - values[:n]
        gap = np.abs(increment - fine)
        jumps = smooth & np.isfinite(gap) & (gap > GROSS_JUMP_RTOL * (scale[:n] + scale[n:]))
    if np.any(jumps):
        k = int(np.flatnonzero(jumps)[0])
        return (
            f"answer jumps between {variable}={lo[k]:.6g} and {variable}={hi[k]:.6g} by about "
            f"{increment[k] - fine[k]:.6g}, where the integrand is finite: not continuous"
        )
    return ""


def _cell_discontinuity(integrand: str, variable: str, f: Program, answer: Program, index, values) -> str:
    """Between consecutive sample points the answer must grow by the integral of the integrand: a jump
    (``+ sign(x)``, ``-atan(1/x)`` for ``1/(1+x^2)``, ``x/|x|``) shows up as a cell where it does not."""
    order, integrals, errors, trusted = _cell_integrals(integrand, variable)
    _, points, _ = _integrand_values(integrand, variable)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    present = np.zeros(len(order), dtype=bool)
    sorted_values = np.zeros(len(order), dtype=np.complex128)
    present[rank[index]] = True
    sorted_values[rank[index]] = values
    cells = np.flatnonzero(present[:-1] & present[1:] & trusted)
    if not len(cells):
        return ""
    step = sorted_values[cells + 1] - sorted_values[cells]
    size = np.abs(sorted_values[cells]) + np.abs(sorted_values[cells + 1]) + np.abs(integrals[cells])
    error = np.abs(step - integrals[cells])
    # float64 rounds an answer's value relative to the terms it is computed from (log(1 + x^2) near 0 is
    # known to about 1e-16, not 1e-16 of its value): a floor of CELL_SCREEN_ATOL, then mpmath decides
    flagged = cells[error > CELL_SCREEN_RTOL * size + 100 * errors[cells] + CELL_SCREEN_ATOL]
    x = points[order]
    for cell in flagged[np.argsort(-error[np.searchsorted(cells, flagged)])][:MAX_CELL_CONFIRMATIONS]:
        a, b = float(x[cell]), float(x[cell + 1])
        with mpmath.workdps(60):
            left, right = _mp_point(answer, a), _mp_point(answer, b)
        if left is None or right is None:
            continue
        with mpmath.workdps(30):
            try:
                if f.steps:  # quadrature rules assume smoothness: integrate between the integrand's jumps
                    integral, quad_error = _step_integral(f, a, b)
                    integral, quad_error = mpmath.mpf(integral), mpmath.mpf(quad_error) + 1e-14 * abs(integral)
                else:  # the cell was chosen where the float rules agree: a 24-node rule at 30 digits suffices
                    integral, quad_error = _mp_gauss(f, a, b)
            except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
                continue
            if not mpmath.isfinite(integral):
                continue
            gap = abs(right[0] - left[0] - integral)
            scale = abs(left[0]) + abs(right[0]) + abs(integral)
            if gap > CELL_CONFIRM_RTOL * scale + 100 * quad_error + mpmath.mpf(10) ** -50 * (1 + scale):
                return (
                    f"answer is not continuous between {variable}={a:.6g} and {variable}={b:.6g}: it changes by "
                    f"{mpmath.nstr(right[0] - left[0], 8)} where the integrand integrates to {mpmath.nstr(integral, 8)}"
                )
    return ""


_MP_GAUSS_RULES: dict = {}


def _mp_gauss(f: Program, a: float, b: float):
    """12- and 24-node Gauss-Legendre on [a, b] at the current mpmath precision: value and the difference."""
    estimates = []
    for n in (12, 24):
        if (n, mpmath.mp.dps) not in _MP_GAUSS_RULES:
            _MP_GAUSS_RULES[n, mpmath.mp.dps] = _legendre_rule(n)
        nodes, weights = _MP_GAUSS_RULES[n, mpmath.mp.dps]
        half, centre = (mpmath.mpf(b) - mpmath.mpf(a)) / 2, (mpmath.mpf(b) + mpmath.mpf(a)) / 2
        estimates.append(half * mpmath.fsum(w * f.mp(centre + half * t) for t, w in zip(nodes, weights, strict=True)))
    return estimates[1], abs(estimates[1] - estimates[0])


def _legendre_rule(n: int):
    """Gauss-Legendre nodes and weights at the current precision (Newton on the Legendre polynomial)."""
    nodes, weights = [], []
    for i in range(1, n + 1):
        t = mpmath.cos(mpmath.pi * (i - mpmath.mpf(1) / 4) / (n + mpmath.mpf(1) / 2))
        for _ in range(100):
            p0, p1 = mpmath.mpf(1), t
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * t * p1 - (k - 1) * p0) / k
            dp = n * (t * p1 - p0) / (t * t - 1)
            step = p1 / dp
            t -= step
            if abs(step) < mpmath.eps * 4:
                break
        nodes.append(t)
        weights.append(2 / ((1 - t * t) * dp * dp))
    return nodes, weights


def check_antiderivative(integrand: str, candidate: str, variable: str = "x") -> VerificationResult:
    """Worker-side check of one antiderivative (runs unsandboxed: call through the public API)."""
    try:
        f, all_points, all_f_values = _integrand_values(integrand, variable)
    except MathParseError as err:
        return _fail(Status.BAD_PROBLEM, f"integrand: parse error: {err}")
    try:
        answer = _compiled(candidate, variable)
    except MathParseError as err:
        return _parse_failure(err)
    if answer.has_infinity:
        return _fail(Status.REJECTED, "rejected: answer is not finite")
    # With a special function (evaluated point by point in mpmath) probe a few points first: most
    # wrong answers are wrong everywhere and are rejected for a fraction of the cost. numpy's cost is
    # per call, not per point, so everything else is checked on the whole sample at once.
    sizes = (PROBE_POINTS, len(all_points)) if answer.special or f.special else (len(all_points),)
    for size in sizes:
        points, f_values = all_points[:size], all_f_values[:size]
        values, slopes = _answer_at(answer, points)
        defined, undefined_points = _classify(values, slopes)
        index = np.flatnonzero(defined)
        derivative, f_here = slopes[index], f_values[index]
        count, scale = len(index), None
        error = _relative_errors(f_here, derivative, None)
        if (error > FAST_RTOL).any():
            # some disagreement: judge it against the integrand's rounding scale (cancellation), lazily
            # computed since most answers never need it
            scale = _integrand_scale(integrand, variable)[:size][index]
            error = _relative_errors(f_here, derivative, scale)
        if count >= MIN_CHECKS and 2 * np.count_nonzero(error > GROSS_RTOL) > len(error):
            # wrong at most points by far more than any rounding of a natural answer: no need for mpmath
            worst = int(np.argmax(error))
            return _fail(
                Status.MISMATCH,
                f"mismatch at {variable}={points[index[worst]]:.6g}: derivative of answer = "
                f"{derivative[worst]:.8g}, integrand = {f_here[worst]:.8g}",
                checks=count,
            )
    # Where the integrand is finite but the answer is not (overflow, a pole, 0/0, a huge argument), float64
    # cannot tell an overflow of a right answer from a wrong one: mpmath decides, and an answer it cannot
    # evaluate there is rejected (``+ e^{-10^6 x}``, ``(x^{5000})^{5000}``, ``1/(x-x)``).
    for k in undefined_points[:MAX_CONFIRMATIONS]:
        agrees, reason = _confirm(integrand, answer, float(points[k]), variable)
        if not agrees:
            return _fail(Status.MISMATCH, reason, checks=count)
        count += 1
    if count < MIN_CHECKS:
        return _fail(
            Status.UNVERIFIABLE, f"unverifiable: only {count} sample points where integrand and answer are both defined"
        )
    # a constant part without a value (tan(pi/2)) does not change the derivative
    if _undefined_constant(answer):
        return _fail(
            Status.REJECTED,
            "rejected: answer contains an undefined constant (no value, or one that depends on the precision)",
        )
    # a step function that jumps by far more than rounding is settled in float64, before any mpmath work
    gross = _gross_step_jump(f, answer, variable) if answer.steps else ""
    if gross:
        return _fail(Status.MISMATCH, gross, checks=count)
    # worst disagreement first: a wrong answer is usually rejected by its first confirmation. A typical
    # point (median error) is always confirmed, so a relative error too small for float64 to see is still
    # caught (1.000000001 x^3/3, (1 + 10^-15) x^3/3)
    ranked = np.argsort(-error)
    suspects = [k for k in ranked[:MAX_SUSPECTS] if error[k] > FAST_RTOL]
    # the typical point: the first counted point that agrees in float64 (the same for most answers to
    # a problem, so the integrand's high-precision value there is computed once)
    agreeing = np.flatnonzero(error <= FAST_RTOL)
    typical = int(agreeing[0]) if len(agreeing) else int(ranked[len(ranked) // 2])
    for k in dict.fromkeys([*suspects, typical]):
        noise_scale = float(scale[k]) if scale is not None else 0.0
        agrees, reason = _confirm(integrand, answer, float(points[index[k]]), variable, noise_scale)
        if not agrees:
            return _fail(Status.MISMATCH, reason, checks=count)
    # F' = f at every counted point: F must also be continuous wherever f is finite
    # steps first: a jump of a floor/ceiling/sign in the answer is found and measured exactly, and cheaply
    jump = _step_discontinuity(f, answer, variable) if answer.steps else ""
    if not jump and answer.can_jump:
        jump = _cell_discontinuity(integrand, variable, f, answer, index, values[index])
    if jump:
        return _fail(Status.MISMATCH, jump, checks=count)
    return VerificationResult(True, f"verified at {count} points", Status.CORRECT, count)


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


def _step_jumps(
    f: Program, a: float, b: float, max_cells: int = 0, rng=None, grid_cells: int = STEP_GRID
) -> np.ndarray:
    """Points in (a, b) where a floor/ceiling/sign sub-expression of ``f`` changes value.

    Changes are found on a grid and each is located to adjacent floats by zooming into the first sub-cell
    where the values change (nested step functions work too: the zoom only asks "same values as at the
    left end?"). With
    ``max_cells``, at most that many grid cells with a change are located (a random choice of them).
    """
    grid = np.linspace(a, b, grid_cells + 1)
    values = f.step_values(grid)
    cells = np.flatnonzero(~np.all(_nan_equal(values[:, 1:], values[:, :-1]), axis=0))
    if max_cells and len(cells) > max_cells:
        cells = np.sort((rng or np.random.default_rng(0)).choice(cells, max_cells, replace=False))
    lo, hi, left = grid[cells], grid[cells + 1], values[:, cells]
    # zoom in: each round evaluates a sub-grid of every cell in one numpy pass and keeps the first
    # sub-cell where the step values change (1024 times narrower), down to adjacent floats
    fractions = np.linspace(0.0, 1.0, JUMP_ZOOM + 1)
    for _ in range(8):
        if not len(lo) or np.all(np.nextafter(lo, hi) >= hi):
            break
        points = lo[:, None] + (hi - lo)[:, None] * fractions[None, :]
        points[:, -1] = hi
        same = np.ones(points.shape, dtype=bool)
        for row, node in enumerate(f.steps):
            value = evaluate_node(node, points.ravel()).reshape(points.shape)
            reference = left[row][:, None]
            same &= (value == reference) | ((value != value) & (reference != reference))
        first = np.argmax(~same, axis=1)  # hi differs from the left end, so there is one
        first = np.maximum(first, 1)
        rows = np.arange(len(lo))
        lo, hi = points[rows, first - 1], points[rows, first]
    return hi


_GAUSS_RULES = tuple(np.polynomial.legendre.leggauss(n) for n in (12, 24))
_CELL_RULES = tuple(np.polynomial.legendre.leggauss(n) for n in (6, 12))  # cells between sample points are short
GAUSS_PIECES = 16


def _gauss_pieces(g: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, rules=None):
    """12- and 24-node Gauss-Legendre estimates of the integral of ``g`` on each piece [lo_i, hi_i], and
    the 24-node rule's points (flat) and values (pieces x nodes)."""
    half, centre = 0.5 * (hi - lo), 0.5 * (hi + lo)
    estimates = []
    for nodes, weights in rules or _GAUSS_RULES:
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


class UnverifiableReference(ValueError):
    """The integral's value cannot be established numerically (it diverges, or its error is unknown)."""


@lru_cache(maxsize=128)
def _reference_integral(
    integrand: str, lower: str, upper: str, variable: str, official: str = ""
) -> tuple[complex, float, float, str]:
    with mpmath.workdps(25):
        a, b = _bound(lower, variable), _bound(upper, variable)
    try:
        f = _compiled(integrand, variable, True)
        with mpmath.workdps(25):
            lo, hi = (a, b) if a <= b else (b, a)
            value, error = _establish(f, lo, hi)
            if a > b:  # reversed bounds keep their sign on every path (the step-function one included)
                value = -value
            atol = _absolute_tolerance(f, a, b, value)
            if not official or error <= DEFINITE_RTOL * abs(value) + atol:
                return value, error, atol, "quadrature"
    except (MathParseError, UnverifiableReference):
        if not official:
            raise
    # the numeric reference cannot be trusted (or the integrand cannot be evaluated): judge against the
    # problem's official answer, trusted data checked independently (see the bundled rows' notes)
    value = _exact_value(_compiled(official, variable, True))
    if value is None:
        raise UnverifiableReference("the official answer has no finite value")
    return value, 0.0, DEFINITE_ATOL, "official answer"


def _exact_value(program: Program) -> complex | None:
    """The value of a constant expression, computed at increasing precision until two agree to 1e-30
    (``(10^{40} + pi) - 10^{40}`` is pi, ``tan(pi/2)`` has no value); None when it has none."""
    previous = None
    for dps in (50, 120, 1100):
        with mpmath.workdps(dps):
            try:
                value = program.mp()
            except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
                return None
            if not mpmath.isfinite(value):
                return None
            if previous is not None and abs(value - previous) <= mpmath.mpf(10) ** -30 * (abs(value) + 1e-30):
                return complex(value)
            previous = value
    return None


SCAN_POINTS = 1 << 14  # trapezoid scan of a finite interval (independent check of the reference)
SCAN_LOG_POINTS = 1 << 17  # scan of an infinite range in s = log|x - a|, s in [-20, 20]
SCAN_LOG_RANGE = (-20.0, 20.0)


@lru_cache(maxsize=1)
def _log_grid() -> tuple[np.ndarray, np.ndarray]:
    """Distances r = e^s for the scan of an infinite range, s uniform on SCAN_LOG_RANGE, and dr."""
    s = np.linspace(*SCAN_LOG_RANGE, SCAN_LOG_POINTS + 1)
    r = np.exp(s)
    return r, r * (s[1] - s[0])


def _scan(f: Program, a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, weights (for a trapezoid rule) and values of a dense scan of [a, b]: uniform on a finite
    interval, logarithmic in |x - centre| on infinite ranges, so a narrow peak or mass far from the origin
    (``exp(-(x - 2024)^2/4)`` on the real line) is seen."""
    if mpmath.isfinite(a) and mpmath.isfinite(b):
        x = np.linspace(float(a), float(b), SCAN_POINTS + 1)
        weights = np.full(x.shape, (x[1] - x[0]))
        weights[[0, -1]] /= 2
    else:
        r, dr = _log_grid()
        pieces = []
        if mpmath.isfinite(a):
            pieces.append((float(a) + r, dr))
        elif mpmath.isfinite(b):
            pieces.append((float(b) - r, dr))
        else:
            pieces += [(r, dr), (-r, dr)]
        x = np.concatenate([p[0] for p in pieces])
        weights = np.concatenate([p[1] for p in pieces])
    with np.errstate(all="ignore"):
        return x, weights, f.real(x)


def _establish(f: Program, lo, hi) -> tuple[complex, float]:
    """The integral over [lo, hi] (lo <= hi) with an error estimate, or :class:`UnverifiableReference`.

    A dense scan of the interval (:func:`_scan`) finds points where the integrand is singular (they become
    quadrature endpoints) and gives an independent trapezoid estimate. The reference is refused when the
    integral diverges (``tan`` on [-pi/2, pi/2], ``x/(x^2-1)`` on [-2, 2]: the integral of |f| does not
    converge), does not converge absolutely on an infinite range (``sin(x)/x`` on [0, oo)), or disagrees
    with a scan that resolves the integrand even after the quadrature is split at the scan's mass (a narrow
    peak or mass far from the origin that the quadrature rules missed).
    """
    x, weights, values = _scan(f, lo, hi)
    finite = np.isfinite(values)
    if not np.any(finite):
        raise UnverifiableReference("the integrand is not real and finite on the interval")
    magnitude = np.abs(np.where(finite, values, 0.0))
    infinite = not (mpmath.isfinite(lo) and mpmath.isfinite(hi))
    if infinite:
        # absolute convergence at infinity: |x f(x)| must keep shrinking over the last decades
        distance = np.abs(x)
        moment = distance * magnitude
        tail = [np.max(moment[(distance > a) & (distance <= b)], initial=0.0) for a, b in TAIL_BANDS]
        if tail[-1] > 0 and not (tail[-1] < 0.5 * tail[0]):
            raise UnverifiableReference("the integrand does not decay absolutely at infinity")
    points = _singular_points(f, x, magnitude, finite)
    splits = tuple(mpmath.mpf(p) for p in points if lo < p < hi)
    width = float(hi - lo) if not infinite else 1.0
    ends = [(float(lo), 1)] if mpmath.isfinite(lo) else []
    ends += [(float(hi), -1)] if mpmath.isfinite(hi) else []
    for p, side in [*ends, *((float(p), s) for p in splits for s in (-1, 1))]:
        if _singularity_order(f, p, side, min(1.0, width)) >= NON_INTEGRABLE_ORDER:
            raise UnverifiableReference(f"the integral diverges (non-integrable singularity near {p:.6g})")
    try:
        value, error = _quadrature(f, lo, hi, splits)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
        raise UnverifiableReference("the quadrature cannot evaluate the integrand") from None
    l1 = float(np.sum(weights * magnitude))  # the scan's integral of |f|: the scale of the tolerances below
    if not np.isfinite(complex(value)) or not np.isfinite(l1):
        raise UnverifiableReference("the integral is not finite")
    # the scan's own trapezoid estimate, when it resolves the integrand (every other point gives nearly
    # the same sum)
    trapezoid = float(np.sum(weights * np.where(finite, values, 0.0)))
    coarse = 2 * float(np.sum((weights * np.where(finite, values, 0.0))[::2]))
    if abs(trapezoid - coarse) > SCAN_RESOLVED_RTOL * l1:
        return value, error
    if abs(complex(value) - trapezoid) <= SCAN_AGREE_RTOL * l1 + 10 * abs(trapezoid - coarse):
        return value, error
    # the quadrature missed mass the scan sees: split it at the scan's largest contributions and retry
    mass = magnitude * weights
    peaks = np.argsort(-mass)[:8]
    edges = sorted({*splits, *(mpmath.mpf(float(x[i])) for i in peaks if lo < x[i] < hi)})
    try:
        value, error = mpmath.quad(f.mp, [lo, *edges, hi], error=True, maxdegree=8)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
        raise UnverifiableReference("the quadrature cannot evaluate the integrand") from None
    if abs(complex(value) - trapezoid) <= SCAN_AGREE_RTOL * l1 + 10 * abs(trapezoid - coarse):
        return complex(value), float(error)
    raise UnverifiableReference("a dense scan disagrees with the quadrature (narrow peak or distant mass?)")


NON_INTEGRABLE_ORDER = 0.95  # |f| ~ distance^(-alpha) with alpha near 1 or more: the integral diverges
SPIKE_FACTOR = 100.0  # scanned values this far above the median are candidate singular points
SCAN_RESOLVED_RTOL = 1e-4  # the scan resolves the integrand when halving its points changes this little
SCAN_AGREE_RTOL = 1e-2  # a resolving scan and the quadrature must agree this well (of the integral of |f|)
TAIL_BANDS = ((1e5, 1e6), (1e7, 5e8))


def _singular_points(f: Program, x: np.ndarray, magnitude: np.ndarray, finite: np.ndarray) -> list[float]:
    """Points where the scanned integrand is undefined or spikes far above its typical size (at most 16),
    each moved to where |f| peaks between its grid neighbours (a pole between grid points)."""
    sample = magnitude[finite][:: max(1, len(x) // 8192)]  # a typical size needs no more than this
    typical = np.percentile(sample, 90) if len(sample) else 0.0
    peak = np.zeros(len(x), dtype=bool)
    peak[1:-1] = (magnitude[1:-1] >= magnitude[:-2]) & (magnitude[1:-1] >= magnitude[2:])
    spikes = np.flatnonzero(~finite | (peak & (magnitude > SPIKE_FACTOR * max(typical, 1e-300))))
    # the interval's own ends are quadrature endpoints already: skip candidates next to them
    inner = spikes[(spikes > 2) & (spikes < len(x) - 3)]
    if len(inner) > 16:
        inner = inner[np.argsort(-np.where(finite[inner], magnitude[inner], np.inf))[:16]]
    located = []
    for i in inner:
        if not finite[i]:
            located.append(float(x[i]))
            continue
        a, b = float(x[i - 1]), float(x[i + 1])
        for _ in range(80):  # ternary search for the peak of |f|
            m1, m2 = a + (b - a) / 3, b - (b - a) / 3
            v1, v2 = np.abs(f.real(np.array([m1, m2])))
            if not np.isfinite(v1) or not np.isfinite(v2):
                a = b = m1 if not np.isfinite(v1) else m2
                break
            a, b = (m1, b) if v1 < v2 else (a, m2)
        located.append(0.5 * (a + b))
    return sorted(set(located))


def _singularity_order(f: Program, p: float, side: int, scale: float) -> float:
    """How fast |f| grows approaching ``p`` from one side: about alpha for |f| ~ distance^(-alpha) (1 for
    ``1/x`` and ``tan`` at pi/2, 1/2 for ``1/sqrt(x)``, about 0 for ``log|x|`` and bounded integrands)."""
    with mpmath.workdps(40):
        try:
            near = [abs(f.mp(mpmath.mpf(p) + side * mpmath.mpf(d) * scale)) for d in (1e-6, 1e-9)]
        except (ValueError, ZeroDivisionError, OverflowError, TypeError, ArithmeticError):
            return 0.0
        if not all(mpmath.isfinite(v) for v in near) or near[0] == 0 or near[1] < 1e3:
            return 0.0
        return float(mpmath.log(near[1] / near[0]) / mpmath.log(1000))


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


def _quadrature(f: Program, a, b, splits: tuple = ()) -> tuple[complex, float]:
    """The integral over [a, b] (a < b) and an error estimate; ``splits`` are points inside where the
    integrand is singular, which mpmath's rules handle as endpoints."""
    with mpmath.workdps(25):
        if f.steps and mpmath.isfinite(a) and mpmath.isfinite(b) and a < b:
            # mpmath.quad assumes a smooth integrand: integrate between the jumps instead
            value, error = _step_integral(f, float(a), float(b))
            if np.isfinite(value):
                return complex(value), float(error)
        if not f.steps and not f.special and not splits:
            # smooth real integrands (most problems) converge in float64 Gauss-Legendre at a fraction of
            # mpmath's cost; anything it cannot settle (singular, oscillatory, complex) goes to mpmath
            fast = _gauss_legendre(f, a, b)
            if fast is not None and _converged(*fast):
                return complex(fast[0]), fast[1]
        value, error = mpmath.quad(f.mp, [a, *splits, b], error=True, maxdegree=8)
        if not _converged(value, error) and mpmath.isfinite(a) and mpmath.isfinite(b):
            # split the interval: kinks and near-singularities converge much better in pieces
            edges = sorted({*mpmath.linspace(a, b, 9), *splits})
            value, error = mpmath.quad(f.mp, edges, error=True, maxdegree=8)
            if not _converged(value, error):
                # highly oscillatory (sin(2019 x) over a few periods of 2 pi): many small Gauss-Legendre pieces
                fine, fine_error = _step_integral(f, float(a), float(b), pieces=STEP_GRID // 2)
                if np.isfinite(fine) and fine_error < error:
                    return complex(fine), float(fine_error)
        return complex(value), float(error)


def reference_integral(
    integrand: str, lower: str, upper: str, variable: str = "x", official: str = ""
) -> tuple[complex, float, float, str]:
    """Worker-side reference value, its error estimate, the absolute tolerance to judge answers with, and
    where the value comes from (``"quadrature"`` or ``"official answer"``, used when ``official`` is given
    and the quadrature cannot be trusted). Raises :class:`UnverifiableReference` or ``MathParseError``.

    Runs unsandboxed: call through :func:`verify_batch`.
    """
    return _reference_integral(integrand, lower, upper, variable, official)


def definite_answer_value(candidate: str, variable: str = "x") -> complex | VerificationResult:
    """Worker-side value of a definite-integral answer, or the failure that decides it (unparsable, depends
    on the variable, no finite value)."""
    try:
        answer = _compiled(candidate, variable)
    except MathParseError as err:
        return _parse_failure(err)
    if answer.has_variable:
        return _fail(Status.REJECTED, f"rejected: a definite integral's value cannot depend on {variable}")
    value = _exact_value(answer)
    if value is None or not (np.isfinite(value.real) and np.isfinite(value.imag)):
        return _fail(Status.MISMATCH, "answer is not a finite number")
    return value


def judge_definite_value(
    value: complex, reference: complex, error: float, atol: float = DEFINITE_ATOL, source: str = "quadrature"
) -> VerificationResult:
    """Compare an answer's value with the reference value and its error estimate (pure arithmetic)."""
    tolerance = DEFINITE_RTOL * max(abs(reference), abs(value)) + atol
    if error > tolerance:
        return _fail(Status.UNVERIFIABLE, f"unverifiable: quadrature error estimate {error:.2g} exceeds tolerance")
    if abs(value - reference) <= tolerance:
        reason = f"matches the integral {reference.real:.10g} to {DEFINITE_RTOL:g}"
        if source != "quadrature":
            reason += f" ({source})"
        return VerificationResult(True, reason, Status.CORRECT, 1)
    return _fail(Status.MISMATCH, f"mismatch: answer = {value.real:.10g}, integral = {reference.real:.10g}", 1)


def check_definite_value(
    candidate: str,
    reference: complex,
    error: float,
    variable: str = "x",
    atol: float = DEFINITE_ATOL,
    source: str = "quadrature",
) -> VerificationResult:
    """Worker-side comparison of a definite-integral answer with the reference value."""
    value = definite_answer_value(candidate, variable)
    if isinstance(value, VerificationResult):
        return value
    return judge_definite_value(value, reference, error, atol, source)


def _task(kind: str, args: tuple):
    """One worker task of :func:`verify_batch` (so one pass can mix checks and reference integrals).

    A reference integral that cannot be had comes back as the verdict for every answer to its problem."""
    if kind == "reference":
        try:
            return reference_integral(*args)
        except MathParseError as err:
            return _fail(Status.BAD_PROBLEM, f"problem: {str(err)[:300]}")
        except UnverifiableReference as err:
            return _no_reference(f"{type(err).__name__}: {str(err)[:300]}")
    if kind == "value":
        return definite_answer_value(*args)
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
        value, error, atol, source = reference_integral("exp(-x**2)", lower, upper)
        check_definite_value("1/2", value, error, "x", atol, source)
    reference_integral("sqrt(x)", "0", "1")  # mpmath's tanh-sinh


# ----------------------------------------------------------------------------- public API


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def _sandbox_failure(outcome: SandboxOutcome) -> VerificationResult:
    # a task that ran out of time is the answer's doing (0 after the retry); a dead or unstartable worker
    # is the infrastructure's (not scored)
    timed_out = outcome.failure is SandboxFailure.TIMEOUT
    return _fail(Status.TIMEOUT if timed_out else Status.ERROR, outcome.error)


def _no_reference(why: str) -> VerificationResult:
    return _fail(Status.NO_REFERENCE, f"unverifiable: the integral's value cannot be established ({why})")


def _reference_failure(outcome: SandboxOutcome) -> VerificationResult:
    # a reference that cannot be established is a verdict the task returns (see _task); here the task
    # itself did not finish
    if outcome.failure is SandboxFailure.TIMEOUT:
        return _no_reference(outcome.error)
    return _fail(Status.ERROR, f"reference integral failed: {outcome.error}")


def _run_round(items: list[dict], timeout: float) -> list[VerificationResult]:
    results: list[VerificationResult | None] = [None] * len(items)
    indefinite: list[tuple[int, tuple]] = []
    definite: list[tuple[int, tuple, str, str]] = []
    for i, item in enumerate(items):
        candidate = item.get("candidate")
        integrand = item.get("integrand")
        variable = item.get("variable") or "x"
        lower, upper = item.get("lower"), item.get("upper")
        if _is_blank(integrand):
            results[i] = _fail(Status.BAD_PROBLEM, "no integrand")
        elif _is_blank(lower) != _is_blank(upper):
            results[i] = _fail(
                Status.BAD_PROBLEM, "only one of the bounds is given (both, or neither for an indefinite integral)"
            )
        elif _is_blank(candidate):
            results[i] = _fail(Status.NO_ANSWER, "no answer")
        elif len(str(candidate)) > MAX_CANDIDATE_CHARS:
            results[i] = _fail(Status.PARSE_ERROR, "parse error: answer too long")
        elif _is_blank(lower):
            indefinite.append((i, (str(integrand), str(candidate), variable)))
        else:
            official = "" if _is_blank(item.get("answer")) else str(item["answer"])
            key = (str(integrand), str(lower), str(upper), variable, official)
            definite.append((i, key, str(candidate), variable))

    # One pass over the workers: identical answers to the same problem (common within a GRPO group)
    # are checked once; definite problems' reference values (once per distinct problem) go first, since
    # they are the slow tasks, and definite answers' values are computed beside them (the comparison is
    # arithmetic, done here), so no task waits for another.
    # Grouped by integrand, so a chunk of work mostly reuses one worker's cached integrand values.
    unique = sorted(dict.fromkeys(args for _, args in indefinite), key=lambda args: (args[2], args[0]))
    keys = list(dict.fromkeys(key for _, key, _, _ in definite))
    answers = list(dict.fromkeys((candidate, variable) for _, _, candidate, variable in definite))
    tasks = [("reference", key) for key in keys]
    tasks += [("value", args) for args in answers] + [("antiderivative", args) for args in unique]
    limits = [REFERENCE_TIMEOUT_FACTOR * timeout] * len(keys) + [timeout] * (len(answers) + len(unique))
    done = iter(get_pool().run(_task, tasks, timeout, timeouts=limits) if tasks else [])
    references = {key: next(done) for key in keys}
    values = {args: next(done) for args in answers}
    outcomes = {args: next(done) for args in unique}
    for i, args in indefinite:
        outcome = outcomes[args]
        results[i] = outcome.value if outcome.ok else _sandbox_failure(outcome)
    for i, key, candidate, variable in definite:
        ref, value = references[key], values[candidate, variable]
        if not ref.ok:
            results[i] = _reference_failure(ref)
        elif isinstance(ref.value, VerificationResult):  # the problem is malformed or has no value
            results[i] = ref.value
        elif not value.ok:
            results[i] = _sandbox_failure(value)
        elif isinstance(value.value, VerificationResult):
            results[i] = value.value
        else:
            reference, error, atol, source = ref.value
            results[i] = judge_definite_value(value.value, reference, error, atol, source)
    return results  # type: ignore[return-value]


def verify_batch(
    items: list[dict], timeout: float = DEFAULT_TIMEOUT, retry_factor: float = RETRY_FACTOR
) -> list[VerificationResult]:
    """Verify many answers in parallel in sandboxed workers; always one result per item, in order.

    Each item is a dict with ``integrand`` and ``candidate`` (strings), optional ``lower``/``upper``
    (both missing, None or "" means indefinite; only one of them is a ``bad_problem``), optional
    ``variable`` (default ``"x"``) and, for definite problems, an optional trusted ``answer`` (the
    official value, used only when the integral cannot be established numerically). ``timeout`` is the
    limit per answer in seconds (definite integrals' reference values get more, computed once per
    distinct problem). Time limits are wall-clock, so a loaded machine can time out a good answer: up to
    :data:`MAX_RETRIES` timed-out answers per batch get one more try with ``retry_factor`` times the
    limit (0 disables it). The GRPO reward and the ``integration_bee`` metric both use this policy.

    Statuses the answer is not responsible for (``bad_problem``, ``no_reference``, ``error``) have
    ``VerificationResult.scored == False``: rewards return ``None`` for them.

    Example:
        >>> results = verify_batch([  # doctest: +SKIP
        ...     {"integrand": "x**2", "candidate": "x^3/3 + C"},
        ...     {"integrand": "exp(-x**2)", "lower": "-oo", "upper": "oo", "candidate": r"\\sqrt{\\pi}"},
        ... ])
        >>> [r.correct for r in results]  # doctest: +SKIP
        [True, True]
    """
    results = _run_round(items, timeout)
    retry = [i for i, r in enumerate(results) if r.status == Status.TIMEOUT][:MAX_RETRIES] if retry_factor else []
    if retry:
        again = _run_round([items[i] for i in retry], retry_factor * timeout)
        for i, result in zip(retry, again, strict=True):
            results[i] = result
    return results


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
