"""Quality control for variants: numeric sanity, numeric dedup, contamination guard, difficulty.

Every CPU-heavy sympy/mpmath call on a variant goes through
:func:`ladder_hf.verifier.run_sandboxed` (worker processes with hard time limits), because
variants may be model-written. The functions that run inside workers are the module-level
``_profile_worker`` and ``_integrate_worker``.

The checks, in funnel order:

1. **sane**: the integrand depends on ``x`` and is finite and real on enough of a fixed set of
   sample points (``min_real_fraction``; for a definite problem, also on points inside the
   interval). The values at the fixed points are the node's numeric *fingerprint*.
2. **unique**: two integrands are duplicates when their fingerprints agree (same points defined,
   values equal within ``rtol``), whatever their strings: ``2*sin(x)*cos(x)`` duplicates
   ``sin(2*x)``.
3. **clean** (contamination guard, on when protected problems are given): reject a variant that
   is numerically equal to a protected integrand, a constant multiple of one (its answer is the
   protected answer times a number), the same expression tree with different numbers, or a
   near-identical string (``difflib`` ratio ≥ ``near_identical_ratio``).
4. **difficulty / sympy_solvable**: ``sympy.integrate`` under ``sympy_timeout`` seconds; the
   antiderivative is kept when found. The difficulty estimate is explained in :func:`difficulty`.

Example:
    >>> import sympy
    >>> fp1 = [1.0, 2.0, 4.0, None]  # values at the sample points (None: undefined there)
    >>> same_function(fp1, [1.0, 2.0 + 1e-12, 4.0, None]), proportional(fp1, [3.0, 6.0, 12.0, None])
    (True, True)
"""

from __future__ import annotations

import difflib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import sympy

X = sympy.Symbol("x")
logger = logging.getLogger(__name__)

# Fixed, irregular sample points (no integers or simple fractions, where removable singularities
# and special values sit). Eight positive points so log/sqrt integrands pass the sanity check.
FINGERPRINT_POINTS: tuple[float, ...] = (
    -3.713,
    -2.291,
    -1.447,
    -0.613,
    -0.271,
    -0.0917,
    0.0731,
    0.1937,
    0.4321,
    0.8813,
    1.3719,
    2.1137,
    2.9317,
    3.6091,
)
# Relative positions inside [lower, upper] for definite problems.
INTERVAL_FRACTIONS: tuple[float, ...] = (0.0173, 0.1291, 0.2377, 0.3613, 0.4931, 0.6127, 0.7411, 0.8569, 0.9817)
MAX_MAGNITUDE = 1e100


@dataclass
class QualityConfig:
    """Knobs of the QC funnel."""

    min_real_fraction: float = field(
        default=0.4, metadata={"help": "fraction of fingerprint points where the integrand must be finite and real"}
    )
    interval_real_fraction: float = field(
        default=0.9, metadata={"help": "for definite problems: fraction of points inside [lower, upper] that must be"}
    )
    rtol: float = field(default=1e-7, metadata={"help": "relative tolerance for numeric equality of integrands"})
    near_identical_ratio: float = field(
        default=0.9, metadata={"help": "difflib similarity above which a variant is near-identical to a protected one"}
    )
    numeric_timeout: float = field(default=5.0, metadata={"help": "seconds per integrand for numeric sampling"})
    sympy_timeout: float = field(default=5.0, metadata={"help": "seconds sympy.integrate gets per node (paper: 5)"})
    check_solvable: bool = field(default=True, metadata={"help": "run sympy.integrate for the solvability flag"})


# ----------------------------------------------------------------------------------------------
# Sandboxed workers (module level so they pickle).


def _to_real(value) -> float | None:
    try:
        c = complex(value)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(c.real) and math.isfinite(c.imag)):
        return None
    if abs(c.imag) > 1e-9 * max(1.0, abs(c.real)) or abs(c.real) > MAX_MAGNITUDE:
        return None
    return c.real


def _profile_worker(expr, points: tuple[float, ...]) -> list[float | None]:
    """Values of ``expr`` at ``points`` (``None`` where not finite and real)."""
    out: list[float | None] = []
    for p in points:
        try:
            v = expr.evalf(18, subs={X: sympy.Float(p, 20)})
        except Exception:
            out.append(None)
            continue
        out.append(_to_real(v) if v.is_number else None)
    return out


def _integrate_worker(expr) -> tuple[str | None, int, int | None]:
    """``(antiderivative or None, ops(integrand), ops(antiderivative) or None)``."""
    ops_f = int(sympy.count_ops(expr))
    result = sympy.integrate(expr, X)
    if result.has(sympy.Integral):
        return None, ops_f, None
    return str(result), ops_f, int(sympy.count_ops(result))


# ----------------------------------------------------------------------------------------------
# Numeric profiles


def integration_interval(lower: str, upper: str) -> tuple[float, float] | None:
    """Numeric bounds of a definite problem, or None (indefinite or non-numeric bounds)."""
    if not str(lower or "").strip() or not str(upper or "").strip():
        return None
    from ladder_hf.variants.base import parse_integrand

    try:
        a = _to_real(parse_integrand(lower).evalf())
        b = _to_real(parse_integrand(upper).evalf())
    except Exception:
        return None
    if a is None or b is None or a == b:
        return None
    return (a, b)


@dataclass
class Profile:
    """A sanity verdict and the fingerprint it is based on."""

    fingerprint: list[float | None]
    sane: bool
    reason: str = ""


def profile_batch(
    exprs: list, intervals: list[tuple[float, float] | None] | None = None, config: QualityConfig | None = None
) -> list[Profile]:
    """Sample every expression in the sandbox and decide numeric sanity.

    Example:
        >>> [p.sane for p in profile_batch([sympy.log(X), sympy.sqrt(-1 - X**2)])]  # doctest: +SKIP
        [True, False]
    """
    from ladder_hf.verifier import run_sandboxed

    config = config or QualityConfig()
    intervals = intervals or [None] * len(exprs)
    args = []
    for expr, iv in zip(exprs, intervals, strict=True):
        extra = () if iv is None else tuple(iv[0] + f * (iv[1] - iv[0]) for f in INTERVAL_FRACTIONS)
        args.append((expr, FINGERPRINT_POINTS + extra))
    outcomes = run_sandboxed(_profile_worker, args, timeout=config.numeric_timeout) if args else []
    profiles = []
    n = len(FINGERPRINT_POINTS)
    for expr, iv, out in zip(exprs, intervals, outcomes, strict=True):
        unreadable = unreadable_reason(expr)
        if unreadable:
            # sympy can hold what the verifier's bounded grammar refuses (a drop_summand variant of a
            # bundled Sum(...) root); such a row could never be rewarded, so it is not sane
            profiles.append(Profile([None] * n, False, unreadable))
            continue
        if not out.ok:
            profiles.append(Profile([None] * n, False, f"numeric evaluation failed: {out.error}"[:200]))
            continue
        values = list(out.value)
        fp, inside = values[:n], values[n:]
        if not expr.has(X):
            profiles.append(Profile(fp, False, "constant integrand"))
        elif sum(v is not None for v in fp) < config.min_real_fraction * n:
            profiles.append(Profile(fp, False, "not finite and real on enough sample points"))
        elif all(v == 0 for v in fp if v is not None):
            profiles.append(Profile(fp, False, "integrand is zero"))
        elif iv is not None and sum(v is not None for v in inside) < config.interval_real_fraction * len(inside):
            profiles.append(Profile(fp, False, "not finite and real inside the integration interval"))
        else:
            profiles.append(Profile(fp, True))
    return profiles


def unreadable_reason(expr) -> str:
    """Why the verifier cannot read the expression as a (trusted) integrand; "" when it can."""
    from ladder_hf.verifier import MathParseError, compile_math

    try:
        compile_math(str(expr), trusted=True)
    except (MathParseError, ValueError) as err:
        return f"the verifier cannot read it ({err})"[:200]
    return ""


def is_parent_copy(parent_fp: list[float | None] | None, child_fp: list[float | None], rtol: float = 1e-7) -> bool:
    """Whether a variant is its parent up to a constant factor and an added constant (``c*f + d``), from
    their fingerprints: the same real domain and an exact affine fit. Such a "variant" is no easier.

    Example:
        >>> is_parent_copy([1.0, 4.0, 9.0, 16.0, None], [3.0, 12.0, 27.0, 48.0, None])
        True
        >>> is_parent_copy([1.0, 4.0, 9.0, 16.0, None], [1.0, 2.0, 3.0, 4.0, None])
        False
    """
    if not parent_fp:
        return False
    a, b = _arr(parent_fp), _arr(child_fp)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    both = ~np.isnan(a)
    if both.sum() < 4 or np.ptp(a[both]) == 0:
        return False
    design = np.vstack([a[both], np.ones(both.sum())]).T
    coef, *_ = np.linalg.lstsq(design, b[both], rcond=None)
    residual = np.max(np.abs(b[both] - design @ coef))
    return bool(coef[0] != 0 and residual <= rtol * max(1.0, float(np.max(np.abs(b[both])))))


def _arr(fp: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in fp], dtype=float)


def same_function(a: list[float | None], b: list[float | None], rtol: float = 1e-7) -> bool:
    """Numerically equal fingerprints: same points defined, values equal within ``rtol``."""
    fa, fb = _arr(a), _arr(b)
    na, nb = np.isnan(fa), np.isnan(fb)
    if not np.array_equal(na, nb) or (~na).sum() < 3:
        return False
    return bool(np.allclose(fa[~na], fb[~nb], rtol=rtol, atol=rtol))


def proportional(a: list[float | None], b: list[float | None], rtol: float = 1e-7) -> bool:
    """``a = c * b`` for one nonzero constant ``c`` on every defined point."""
    fa, fb = _arr(a), _arr(b)
    both = ~np.isnan(fa) & ~np.isnan(fb)
    if not np.array_equal(np.isnan(fa), np.isnan(fb)) or both.sum() < 3:
        return False
    fa, fb = fa[both], fb[both]
    zero_a, zero_b = np.isclose(fa, 0, atol=1e-12), np.isclose(fb, 0, atol=1e-12)
    if not np.array_equal(zero_a, zero_b) or zero_a.all():
        return False
    ratio = fa[~zero_a] / fb[~zero_b]
    return bool(np.allclose(ratio, ratio[0], rtol=1e-6, atol=0))


class FingerprintIndex:
    """Fingerprints seen so far, for numeric dedup (vectorised: fine for tens of thousands)."""

    def __init__(self, rtol: float = 1e-7):
        self.rtol = rtol
        self._rows: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, fp: list[float | None]) -> None:
        self._rows.append(_arr(fp))
        self._matrix = None

    def find(self, fp: list[float | None]) -> int | None:
        """Position of the first stored fingerprint numerically equal to ``fp``, else None."""
        if not self._rows:
            return None
        if self._matrix is None:
            self._matrix = np.vstack(self._rows)
        m, f = self._matrix, _arr(fp)
        nan_m, nan_f = np.isnan(m), np.isnan(f)
        same_domain = (nan_m == nan_f).all(axis=1)
        close = np.isclose(m, f, rtol=self.rtol, atol=self.rtol) | (nan_m & nan_f)
        hits = np.flatnonzero(same_domain & close.all(axis=1))
        return int(hits[0]) if hits.size else None

    def contains(self, fp: list[float | None]) -> bool:
        return self.find(fp) is not None


# ----------------------------------------------------------------------------------------------
# Contamination guard


def structure_key(expr) -> str:
    """The expression's shape with numeric coefficients and constants erased, exponents kept.

    ``8*x**3*sin(4*x)`` and ``x**3*sin(3*x)`` share the key ``Mul(Pow(x,3),sin(x))``: the same
    problem with other numbers, solved by the same steps. ``x**2*sin(x)`` (one power lower) does
    not. Exponents are kept because lowering one is a genuine simplification in LADDER.

    Example:
        >>> structure_key(sympy.sympify("8*x**3*sin(4*x) + 2")) == structure_key(sympy.sympify("x**3*sin(3*x)"))
        True
    """
    if expr.is_Number or (expr.is_number and not expr.has(X)):
        return "N"
    if isinstance(expr, sympy.Symbol):
        return expr.name
    if isinstance(expr, sympy.Pow):
        exp = str(expr.exp) if expr.exp.is_Number else structure_key(expr.exp)
        return f"Pow({structure_key(expr.base)},{exp})"
    parts = sorted(structure_key(a) for a in expr.args if not (a.is_number and not a.has(X)))
    if isinstance(expr, sympy.Add | sympy.Mul) and len(parts) == 1:
        return parts[0]
    return f"{type(expr).__name__}({','.join(parts)})"


MAX_EXPANDED_POWER = 6  # (a + b)**n is multiplied out for canonical keys only up to this n
MAX_CANONICAL_OPS = 80  # larger expressions keep their written form (expansion could blow up)


def _multiplies_out(expr) -> bool:
    """Whether ``sympy.expand(mul, multinomial)`` could change ``expr``: a product with a sum (or a power
    of one) among its factors, or a sum raised to a rational power above 1 in size. Half of all variants
    have neither, and this walk costs a fraction of the expansion it saves."""

    def power_of_sum(e) -> bool:
        return e.is_Pow and e.base.is_Add and e.exp.is_Rational

    return any(
        (e.is_Mul and any(a.is_Add or power_of_sum(a) for a in e.args)) or (power_of_sum(e) and abs(e.exp) > 1)
        for e in sympy.preorder_traversal(expr)
    )


def canonical_form(expr):
    """The expression with products and small integer powers of sums multiplied out, so that its
    :func:`structure_key` does not depend on how it happens to be written: ``(x + 1)**2*sin(2*x)`` and
    ``(x**2 + 2*x + 5)*sin(3*x)`` get the same key. Bounded: larger expressions, and powers of sums
    above :data:`MAX_EXPANDED_POWER`, are returned as written.

    Example:
        >>> canonical_form(sympy.sympify("(x + 1)**2*exp(x)"))
        x**2*exp(x) + 2*x*exp(x) + exp(x)
    """
    if not _multiplies_out(expr) or sympy.count_ops(expr) > MAX_CANONICAL_OPS:
        return expr
    for p in expr.atoms(sympy.Pow):
        if p.base.is_Add and p.exp.is_Integer and abs(int(p.exp)) > MAX_EXPANDED_POWER:
            return expr
    return sympy.expand(expr, deep=True, mul=True, multinomial=True, power_exp=False, power_base=False, log=False)


def structure_keys(expr) -> frozenset[str]:
    """:func:`structure_key` of the expression as written and of its :func:`canonical_form` (polynomials:
    as written only).

    Example:
        >>> a, b = sympy.sympify("(x + 1)**2*sin(2*x)"), sympy.sympify("(x**2 + 2*x + 5)*sin(3*x)")
        >>> structure_key(a) == structure_key(b), bool(structure_keys(a) & structure_keys(b))
        (False, True)
    """
    if expr.is_polynomial(X):
        # every cubic would share the key of its expanded form: polynomials are judged by the numeric rule
        return frozenset({structure_key(expr)})
    return frozenset({structure_key(expr), structure_key(canonical_form(expr))})


@dataclass
class ProtectedProblem:
    id: str
    text: str
    structure: frozenset[str]  # structure_keys: as written and canonical
    fingerprint: list[float | None]
    interval: tuple[float, float] | None = None


# The rule (docs/contamination.md states it for readers): a candidate g is contaminated by a protected
# integrand f when g(x) = c * f(a*x + b) + d on the points where both sides are real and finite, for
# numbers a != 0, b, c != 0, d. A change of variable with its chain factor (a * f(a*x + b)) or without
# it, a constant factor, an added constant and any algebraic or trigonometric rewriting are all of that
# form. Maps are searched on the grid below (what generators and people write: shifts by small integers
# and halves, scalings by small integers, their inverses and reflections) and, for two definite
# problems, by the map that carries one interval onto the other.
AFFINE_SCALES: tuple[float, ...] = (1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5, 1 / 3, -1 / 3, 4.0, -4.0)
AFFINE_SHIFTS: tuple[float, ...] = (*tuple(float(k) for k in range(-6, 7)), -1.5, -0.5, 0.5, 1.5)
# Probe points of candidates: irregular, a dozen inside (0, 1) where definite problems live.
PROBE_POINTS = np.array(
    [-3.713, -3.187, -2.731, -2.291, -1.817, -1.447, -1.129, -0.8713, -0.613, -0.4419, -0.271, -0.1627,
     -0.0917, 0.0311, 0.0731, 0.1379, 0.1937, 0.2717, 0.3541, 0.4321, 0.5219, 0.6037, 0.6911, 0.7793,
     0.8813, 0.9519, 1.1173, 1.3719, 1.7071, 2.1137, 2.5179, 2.9317, 3.2891, 3.6091]
)  # fmt: skip
# Confirmation points (many, over several scales) and relative positions inside intervals.
_CONFIRM_RNG = np.random.default_rng(20250216)
CONFIRM_POINTS = np.concatenate(
    [
        _CONFIRM_RNG.uniform(-6, 6, 160),
        _CONFIRM_RNG.uniform(-1, 1, 60),
        _CONFIRM_RNG.uniform(0, 1, 60),
        _CONFIRM_RNG.uniform(-12, 12, 40),
        PROBE_POINTS,
    ]
)
SCREEN_FRACTIONS = np.linspace(0.013, 0.987, 24)
CONFIRM_FRACTIONS = np.concatenate([np.linspace(0.0031, 0.9969, 160), _CONFIRM_RNG.uniform(0, 1, 40)])
MIN_POINTS = 8  # fewer common informative points than this: the pair is not judged on that probe
# Adaptive probes (a function the fixed probe cannot see) screen all problems and maps on this many of
# their points, then confirm on all of them: the screen evaluates functions at (maps x points) each.
ADAPTIVE_SCREEN_POINTS = 12
SCREEN_TOL = 1e-6  # 1 - r^2 below this: a candidate match, then confirmed on many points
CONFIRM_RTOL = 1e-6  # max |g - (c f + d)| relative to max |g| on the confirmation points
_USABLE_MAX = 1e150  # the verifier's bounds: beyond them float64 comparisons mean nothing
_INFORMATIVE = 1e-12  # a value below this fraction of the row's largest is "zero" for fitting


def _usable(values: np.ndarray) -> np.ndarray:
    """``values`` with NaN wherever they are not finite, real and within float64's meaningful range."""
    values = np.asarray(values, dtype=np.float64)
    size = np.abs(values)
    return np.where(np.isfinite(values) & (size < _USABLE_MAX) & ((size == 0) | (size > 1e-150)), values, np.nan)


def _normalise(rows: np.ndarray) -> np.ndarray:
    """Each row divided by its largest finite magnitude (c and d absorb the scale), NaN kept."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row stays NaN: nothing to compare
        top = np.nanmax(np.abs(rows), axis=-1, keepdims=True) if rows.size else rows
        top = np.where(np.isfinite(top) & (top > 0), top, np.nan)
        return rows / top


def _informative(rows: np.ndarray) -> np.ndarray:
    """How many entries of each (normalised) row are finite and not negligible."""
    return (np.abs(np.nan_to_num(rows, nan=0.0)) > _INFORMATIVE).sum(axis=-1)


def _one_minus_r2(n, sf, sg, sff, sgg, sfg) -> np.ndarray:
    """``1 - r^2`` of the least-squares fit ``g = c f + d`` from the sums over common points (count, sums of
    f, g, f^2, g^2 and f g); ``inf`` where there are too few points or no variation."""
    with np.errstate(all="ignore"):
        var_f, var_g = sff - sf * sf / n, sgg - sg * sg / n
        cov = sfg - sf * sg / n
        out = 1.0 - cov * cov / (var_f * var_g)
    ok = (n >= MIN_POINTS) & (var_f > 1e-12 * n) & (var_g > 1e-12 * n)
    return np.where(ok & np.isfinite(out), np.abs(out), np.inf)


def _screen(f_rows: np.ndarray, g_rows: np.ndarray) -> np.ndarray:
    """``1 - r^2`` of the best fit ``g = c f + d`` for every (f row, g row) on their common finite points.

    Closed-form least squares as six matrix products, so thousands of (protected problem, affine map)
    rows meet a batch of candidates in one BLAS call each. Pairs with too few common points or no
    variation get ``inf``. Rows must be normalised (magnitudes <= 1).
    """
    mf, mg = ~np.isnan(f_rows), ~np.isnan(g_rows)
    f0, g0 = np.where(mf, f_rows, 0.0), np.where(mg, g_rows, 0.0)
    m, mgt = mf.astype(np.float64), mg.astype(np.float64).T
    n = m @ mgt
    sf, sff = f0 @ mgt, (f0 * f0) @ mgt
    sg, sgg, sfg = m @ g0.T, m @ (g0 * g0).T, f0 @ g0.T
    return _one_minus_r2(n, sf, sg, sff, sgg, sfg)


class _ScreenRows:
    """Fixed rows (protected problems under maps) prepared once for :func:`_screen` against many batches.

    Rows finite at every probe point meet candidates finite at every probe point (most pairs) in one
    matrix product of centred unit vectors: there ``1 - r^2`` needs no per-pair masks or sums, which
    was most of the screen's time. All other pairs take the general path.
    """

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.full = ~np.isnan(rows).any(axis=1)
        self.partial = np.flatnonzero(~self.full)
        # the two halves, sliced once here rather than copied again for every batch of candidates
        self.full_rows, self.partial_rows = rows[self.full], rows[self.partial]
        self.unit, self.flat = _centred_unit(self.full_rows)

    def __len__(self) -> int:
        return len(self.rows)

    def scores(self, g_rows: np.ndarray) -> np.ndarray:
        """``1 - r^2`` for every (row, candidate), as :func:`_screen` computes it."""
        out = np.empty((len(self.rows), len(g_rows)))
        g_full = ~np.isnan(g_rows).any(axis=1)
        if self.partial.size:
            out[self.partial] = _screen(self.partial_rows, g_rows)
        if (~g_full).any():
            out[np.ix_(self.full, ~g_full)] = _screen(self.full_rows, g_rows[~g_full])
        if g_full.any():
            unit, flat = _centred_unit(g_rows[g_full])
            r = self.unit @ unit.T
            block = np.abs(1.0 - r * r)
            block[self.flat] = np.inf
            block[:, flat] = np.inf
            out[np.ix_(self.full, g_full)] = block
        return out


def _centred_unit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows centred and scaled to unit length, and which rows have (almost) no variation to scale."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred * centred).sum(axis=1))
    flat = (norm * norm <= 1e-12 * rows.shape[1]) | (rows.shape[1] < MIN_POINTS)
    return centred / np.where(flat, 1.0, norm)[:, None], flat


def _paired_screen(f_rows: np.ndarray, g_rows: np.ndarray) -> np.ndarray:
    """:func:`_screen` for rows paired by position instead of all against all: ``f_rows`` and ``g_rows``
    broadcast against each other (e.g. ``(problems, 1, points)`` and ``(problems, maps, points)``) and
    the fit runs along the last axis. Same validity rules as :func:`_screen`."""
    f_rows, g_rows = np.broadcast_arrays(f_rows, g_rows)
    both = ~np.isnan(f_rows) & ~np.isnan(g_rows)
    f0, g0 = np.where(both, f_rows, 0.0), np.where(both, g_rows, 0.0)
    n = both.sum(axis=-1).astype(np.float64)
    sf, sg = f0.sum(axis=-1), g0.sum(axis=-1)
    sff, sgg, sfg = (f0 * f0).sum(axis=-1), (g0 * g0).sum(axis=-1), (f0 * g0).sum(axis=-1)
    return _one_minus_r2(n, sf, sg, sff, sgg, sfg)


def _fit(g: np.ndarray, f: np.ndarray) -> tuple[float, float] | None:
    """``(c, d)`` with ``g = c f + d`` to ``CONFIRM_RTOL`` on the common finite points, else None."""
    both = ~np.isnan(g) & ~np.isnan(f)
    if both.sum() < 2 * MIN_POINTS:
        return None
    g, f = g[both], f[both]
    scale_g, scale_f = np.abs(g).max(), np.abs(f).max()
    if scale_g == 0 or scale_f == 0:
        return None
    fn, gn = f / scale_f, g / scale_g
    if (np.abs(fn) > _INFORMATIVE).sum() < MIN_POINTS or np.ptp(fn) < 1e-6 or np.ptp(gn) < 1e-6:
        return None  # (nearly) constant or zero on the common points: nothing to judge by
    design = np.stack([fn, np.ones_like(fn)], axis=1)
    (c, d), *_ = np.linalg.lstsq(design, gn, rcond=None)
    if abs(d) < 1e-9:  # rounding, not an added constant: refit the factor alone
        c, d = float(fn @ gn / (fn @ fn)), 0.0
    # pointwise relative error: a shared pole (1/x**2 against asin(x)/x**3) must not hide the rest
    error = np.abs(gn - (c * fn + d)) - CONFIRM_RTOL * (np.abs(gn) + np.abs(c * fn) + abs(d))
    if abs(c) < 1e-9 or error.max() > 1e-12:
        return None
    return float(c * scale_g / scale_f), float(d * scale_g)


def _maps() -> np.ndarray:
    """Every (a, b) of the search grid, simplest first (identity, then smaller shifts): of several maps
    that fit, the first is the one reported."""
    shifts = sorted(set(AFFINE_SHIFTS) | {0.0}, key=lambda b: (abs(b), b < 0))
    return np.array([(a, b) for a in AFFINE_SCALES for b in shifts])


def _number(v: float) -> str:
    for den in (1, 2, 3, 4, 6):
        if abs(v * den - round(v * den)) < 1e-9:
            k = round(v * den)
            return str(k) if den == 1 else f"{k}/{den}"
    return f"{v:.6g}"


def describe_match(a: float, b: float, c: float, d: float, interval_map: bool = False) -> str:
    """The rule that matched, in words (``a, b``: the map ``x -> a*x + b``; ``g = c f(a x + b) + d``).

    Example:
        >>> describe_match(1, 0, 1, 0), describe_match(1, 0, 4, 0), describe_match(1, 1, 1, 0)
        ('numerically equivalent', 'constant multiple (4)', 'affine change of variable x -> x + 1')
    """
    same_scale, no_constant = abs(c - 1) < 1e-6, abs(d) < 1e-6 * max(1.0, abs(c))
    parts = []
    if abs(a - 1) > 1e-12 or abs(b) > 1e-12:
        where = "mapping the integration interval onto the protected one" if interval_map else ""
        sign = "+" if b >= 0 else "-"
        ax = "x" if abs(a - 1) < 1e-12 else ("-x" if abs(a + 1) < 1e-12 else f"{_number(a)}*x")
        text = f"affine change of variable x -> {ax}" + ("" if abs(b) < 1e-12 else f" {sign} {_number(abs(b))}")
        parts.append(text + (f" ({where})" if where else ""))
    if not same_scale:
        parts.append(f"constant multiple ({_number(c)})")
    if not no_constant:
        parts.append(f"added constant ({_number(d)})")
    return ", ".join(parts) or "numerically equivalent"


@dataclass
class Verdict:
    """What the guard decided about one candidate.

    ``status`` is ``"clean"``, ``"contaminated"`` (``protected_id`` and ``rule`` say which problem
    and how) or ``"unjudged"`` (``rule`` says why: the candidate could not be evaluated, or has too few
    usable points even after the adaptive probe). Callers report unjudged candidates, never keep
    them silently.
    """

    status: str = "clean"
    protected_id: str = ""
    rule: str = ""

    @property
    def reason(self) -> str:
        if self.status == "clean":
            return ""
        return f"{self.protected_id}: {self.rule}" if self.protected_id else f"cannot judge: {self.rule}"


def _domain_probe(program, interval: tuple[float, float] | None, count: int = 32) -> np.ndarray:
    """Points where ``program`` is real and not negligible, located on a fine grid (the verifier's way).

    Used for integrands the fixed probe misses (``x**2024*(1 - x**2025)**2025`` is zero to float64
    precision at every fixed point of [0, 1] except a narrow band below 1).
    """
    if interval is not None:
        lo, hi = sorted(interval)
        t = np.linspace(0, 1, 4097)[1:-1]
        edges = np.concatenate([t, 1 - np.logspace(-12, -1, 400), np.logspace(-12, -1, 400)])
        grid = np.unique(lo + (hi - lo) * edges)
    else:
        mags = np.logspace(-6, 6, 1600)
        near_one = np.concatenate([1 - np.logspace(-9, -1, 300), 1 + np.logspace(-9, -1, 300)])
        grid = np.unique(
            np.concatenate(
                [-mags, mags, np.linspace(-20, 20, 4001), np.linspace(-3000, 3000, 24001), near_one, -near_one]
            )
        )
    for attempt in range(4):
        values = _normalise(_usable(program.real(grid))[None, :])[0]
        keep = np.flatnonzero(np.abs(np.nan_to_num(values, nan=0.0)) > _INFORMATIVE)
        if keep.size == 0:
            return np.empty(0)
        if keep.size >= count or attempt == 3:  # keep indexes this grid: never refine after the last look
            break
        # a narrow band (x**2000 is within 12 decades of its largest usable value only near 1.18): refine it
        lo, hi = grid[np.maximum(keep - 1, 0)], grid[np.minimum(keep + 1, grid.size - 1)]
        grid = np.unique(np.concatenate([grid[keep], np.linspace(lo, hi, 17).ravel()]))
    if keep.size > count:
        keep = keep[np.linspace(0, keep.size - 1, count).round().astype(int)]
    return grid[keep]


def _spread(size: int, count: int) -> np.ndarray:
    """Indices of ``count`` positions spread evenly over ``range(size)`` (all of them if fewer)."""
    return np.unique(np.linspace(0, size - 1, min(size, count)).round().astype(int))


def _compile(text: str):
    from ladder_hf.verifier import compile_math

    # trusted: only the relaxed exponent bounds; the grammar still parses it (nothing is eval'd)
    return compile_math(text, "x", trusted=True)


class ContaminationGuard:
    """Rejects variants equal to a protected (test) problem up to the changes a variant generator makes.

    A candidate ``g`` is contaminated by a protected integrand ``f`` when ``g(x) = c*f(a*x + b) + d`` on
    their common real domain (and, for a definite protected problem, also when this holds on its
    integration interval alone), for an affine change of variable ``x -> a*x + b`` (with or without
    the chain factor ``a``), a constant factor ``c`` and an added constant ``d``. Algebraic and
    trigonometric rewriting is covered because the comparison is numeric. Maps are searched on a grid
    (:data:`AFFINE_SCALES` x :data:`AFFINE_SHIFTS`; for two definite problems also the map between their
    intervals): a cheap least-squares screen over fixed probe points for every (problem, map) at once,
    then a confirmation on hundreds of points. Identical text, the same expression tree with other
    numbers (:func:`structure_key`) and near-identical text are rejected too. Easier variants (a summand
    dropped, an exponent lowered) are not of that form and pass.

    Integrands are evaluated with the verifier's compiled evaluator
    (:func:`ladder_hf.verifier.compile_math`): text only ever goes through its grammar.

    Example:
        >>> guard = ContaminationGuard([{"id": "t1", "integrand": "x**2*exp(x)"}])
        >>> guard.check(sympy.sympify("(x**2 + 2*x + 1)*exp(x + 1)"))
        't1: affine change of variable x -> x + 1'
        >>> guard.check(sympy.sympify("x*exp(x)"))  # an exponent lowered: a genuine easier variant
        ''
    """

    def __init__(self, protected: list[dict], config: QualityConfig | None = None):
        from ladder_hf.variants.base import parse_problem_integrand

        started = time.perf_counter()
        self.config = config or QualityConfig()
        self.problems: list[ProtectedProblem] = []
        programs = []
        for row in protected:
            pid = str(row.get("id") or row["integrand"])
            try:
                expr = parse_problem_integrand(row["integrand"])
            except ValueError as err:
                # Never protect silently less than asked for.
                raise ValueError(f"protected problem {pid!r} does not parse: {err}") from err
            program = None
            for text in (str(row["integrand"]), str(expr)):
                try:
                    program = _compile(text)
                    break
                except ValueError:
                    continue  # a bundled problem beyond the fast evaluator (an infinite Sum): see below
            interval = integration_interval(row.get("lower", ""), row.get("upper", ""))
            self.problems.append(ProtectedProblem(pid, str(expr), structure_keys(expr), [], interval))
            programs.append(program)
        self.ids = frozenset(p.id for p in self.problems)
        self._programs = programs
        self._maps = _maps()
        self._matchers = [difflib.SequenceMatcher(None, "", p.text, autojunk=False) for p in self.problems]
        self._build_screen()
        # Wall time spent building the guard and judging, so a run can report what the guard cost it.
        self.seconds_building = self.seconds = time.perf_counter() - started

    def __len__(self) -> int:
        return len(self.problems)

    # -- precomputation, once per guard ------------------------------------------------------------

    def _build_screen(self) -> None:
        a, b = self._maps[:, 0], self._maps[:, 1]
        mapped = a[:, None] * PROBE_POINTS[None, :] + b[:, None]  # (maps, points)
        rows, owners, sparse = [], [], []
        for k, (p, f) in enumerate(zip(self.problems, self._programs, strict=True)):
            if f is None:
                sparse.append(k)
                continue
            values = _usable(f.real(mapped.ravel())).reshape(mapped.shape)
            rows.append(values)
            owners.append(np.stack([np.full(len(a), k), np.arange(len(a)), np.zeros(len(a))], axis=1))
            if p.interval is not None:
                # the same map, compared on the integration interval only
                lo, hi = sorted(p.interval)
                rows.append(np.where((mapped > lo) & (mapped < hi), values, np.nan))
                owners.append(np.stack([np.full(len(a), k), np.arange(len(a)), np.ones(len(a))], axis=1))
            if _informative(_normalise(values[:1]))[0] < MIN_POINTS:
                sparse.append(k)
        matrix = _normalise(np.vstack(rows)) if rows else np.empty((0, len(PROBE_POINTS)))
        owner = np.vstack(owners).astype(int) if owners else np.empty((0, 3), int)
        useful = _informative(matrix) >= MIN_POINTS
        self._rows, self._owner = _ScreenRows(matrix[useful]), owner[useful]
        # Problems the fixed probe cannot see: an adaptive probe where each one is non-negligible.
        self._sparse: dict[int, np.ndarray] = {}
        for k in sparse:
            if self._programs[k] is None:
                continue
            points = _domain_probe(self._programs[k], self.problems[k].interval)
            if points.size >= MIN_POINTS:
                self._sparse[k] = points
        # Their points under every inverse map, padded with NaN to one length: one array for all of them.
        self._sparse_ids = list(self._sparse)
        self._sparse_points = self._sparse_values = None
        if self._sparse_ids:
            a, b = self._maps[:, 0], self._maps[:, 1]
            # screened on ADAPTIVE_SCREEN_POINTS of each problem's points, confirmed on all of them
            padded = np.full((len(self._sparse_ids), ADAPTIVE_SCREEN_POINTS), np.nan)
            values = np.full_like(padded, np.nan)
            for j, k in enumerate(self._sparse_ids):
                points = self._sparse[k][_spread(len(self._sparse[k]), ADAPTIVE_SCREEN_POINTS)]
                padded[j, : len(points)] = points
                values[j, : len(points)] = _usable(self._programs[k].real(points))
            self._sparse_points = (padded[:, None, :] - b[None, :, None]) / a[None, :, None]
            self._sparse_values = _normalise(values)
        # Reported, never hidden: these are protected by the text and structure rules only.
        self.unjudgeable = [self.problems[k].id for k in sparse if k not in self._sparse]
        if self.unjudgeable:
            logger.warning(
                "contamination guard: %d protected problem(s) cannot be evaluated numerically (%s); only the "
                "text and structure rules protect them",
                len(self.unjudgeable),
                ", ".join(self.unjudgeable),
            )
        # Definite problems: values at fixed fractions of the interval, forwards and backwards.
        self._definite = [
            k for k, p in enumerate(self.problems) if p.interval is not None and self._programs[k] is not None
        ]
        rows = []
        for k in self._definite:
            lo, hi = self.problems[k].interval
            rows.append(_usable(self._programs[k].real(lo + SCREEN_FRACTIONS * (hi - lo))))
            rows.append(_usable(self._programs[k].real(hi - SCREEN_FRACTIONS * (hi - lo))))
        self._interval_rows = _ScreenRows(_normalise(np.array(rows)) if rows else np.empty((0, len(SCREEN_FRACTIONS))))

    # -- checks --------------------------------------------------------------------------------------

    def _confirm(self, g, k: int, a: float, b: float, restrict: bool) -> tuple[float, float] | None:
        p, f = self.problems[k], self._programs[k]
        if restrict:
            lo, hi = sorted(p.interval)
            x = (lo + CONFIRM_FRACTIONS * (hi - lo) - b) / a
        else:
            x = CONFIRM_POINTS
        return _fit(_usable(g.real(x)), _usable(f.real(a * x + b)))

    def _first_match(self, g, scores: np.ndarray, owner: np.ndarray) -> Verdict | None:
        hits = np.flatnonzero(scores < SCREEN_TOL)  # usually none: sort only those, not every row
        # Exact fits (rounding-level scores) in row order, so the simplest map of the first problem listed
        # is the one reported, whatever the rounding; then near fits by score.
        order = np.lexsort((np.where(scores[hits] < 1e-12, 0.0, scores[hits]), scores[hits] >= 1e-12))
        for r in hits[order][:8]:
            k, m, restrict = owner[r]
            a, b = self._maps[m]
            fit = self._confirm(g, int(k), float(a), float(b), bool(restrict))
            if fit is not None:
                rule = describe_match(a, b, *fit)
                if restrict:
                    rule += " on the integration interval"
                return Verdict("contaminated", self.problems[k].id, rule)
        return None

    def _interval_match(self, g, interval: tuple[float, float], scores: np.ndarray) -> Verdict | None:
        lo, hi = interval
        for r in np.argsort(scores)[:4]:
            if not scores[r] < SCREEN_TOL:
                break
            k = self._definite[r // 2]
            plo, phi = self.problems[k].interval
            a = (phi - plo) / (hi - lo) if r % 2 == 0 else (plo - phi) / (hi - lo)
            b = (plo if r % 2 == 0 else phi) - a * lo
            x = lo + CONFIRM_FRACTIONS * (hi - lo)
            fit = _fit(_usable(g.real(x)), _usable(self._programs[k].real(a * x + b)))
            if fit is not None:
                return Verdict("contaminated", self.problems[k].id, describe_match(a, b, *fit, interval_map=True))
        return None

    def _adaptive(self, g, interval: tuple[float, float] | None) -> Verdict | None:
        """Candidates the fixed probe cannot see: compare on points of their own domain."""
        points = _domain_probe(g, interval)
        if points.size < MIN_POINTS:
            return Verdict("unjudged", "", "no sample points where the candidate is real and non-negligible")
        points = points[_spread(points.size, ADAPTIVE_SCREEN_POINTS)]
        gz = _normalise(_usable(g.real(points))[None, :])[0]
        a, b = self._maps[:, 0], self._maps[:, 1]
        mapped = (a[:, None] * points[None, :] + b[:, None]).ravel()
        judged = [k for k, f in enumerate(self._programs) if f is not None]
        rows = np.stack([_usable(self._programs[k].real(mapped)).reshape(len(a), -1) for k in judged])
        scores = _paired_screen(_normalise(rows), gz)  # (problems, maps), in one pass
        for j in np.flatnonzero((scores < SCREEN_TOL).any(axis=1)):  # problems in order, as listed
            k = judged[j]
            owner = np.stack([np.full(len(a), k), np.arange(len(a)), np.zeros(len(a), int)], axis=1)
            found = self._first_match(g, scores[j], owner)
            if found is not None:
                return found
        return None

    def _sparse_match(self, g) -> Verdict | None:
        """Protected problems the fixed probe cannot see, on their own adaptive points."""
        if self._sparse_points is None:
            return None
        a, b = self._maps[:, 0], self._maps[:, 1]
        xs, fz = self._sparse_points, self._sparse_values  # (problems, maps, points), (problems, points)
        gz = _normalise(_usable(g.real(xs.ravel())).reshape(xs.shape))
        scores = _paired_screen(fz[:, None, :], gz)  # (problems, maps)
        for j in np.flatnonzero((scores < SCREEN_TOL).any(axis=1)):
            k = self._sparse_ids[j]
            for m in np.argsort(scores[j])[:4]:
                if not scores[j, m] < SCREEN_TOL:
                    break
                x = np.concatenate([(self._sparse[k] - b[m]) / a[m], CONFIRM_POINTS])
                fit = _fit(_usable(g.real(x)), _usable(self._programs[k].real(a[m] * x + b[m])))
                if fit is not None:
                    return Verdict("contaminated", self.problems[k].id, describe_match(a[m], b[m], *fit))
        return None

    def judge_batch(self, exprs: list, intervals: list[tuple[float, float] | None] | None = None) -> list[Verdict]:
        """One :class:`Verdict` per candidate expression (``intervals``: their integration intervals).

        Example:
            >>> guard = ContaminationGuard([{"id": "q15", "integrand": "sqrt(x*(1 - x))", "lower": "0", "upper": "1"}])
            >>> [v.status for v in guard.judge_batch([sympy.sympify("sqrt(Abs(x*(1 - x)))"), sympy.sqrt(X)])]
            ['contaminated', 'clean']
        """
        started = time.perf_counter()
        try:
            return self._judge_batch(exprs, intervals)
        finally:
            self.seconds += time.perf_counter() - started

    def _judge_batch(self, exprs: list, intervals: list[tuple[float, float] | None] | None) -> list[Verdict]:
        intervals = intervals or [None] * len(exprs)
        verdicts: list[Verdict | None] = [None] * len(exprs)
        programs: list = [None] * len(exprs)
        texts = {p.text: p.id for p in self.problems}
        written = [str(e) for e in exprs]  # printed once: sympy's printer is slow
        for i, text in enumerate(written):
            if text in texts:
                verdicts[i] = Verdict("contaminated", texts[text], "identical")
                continue
            try:
                programs[i] = _compile(text)
            except (ValueError, RecursionError) as err:
                verdicts[i] = Verdict("unjudged", "", f"the verifier cannot evaluate it ({err})"[:200])
        todo = [i for i in range(len(exprs)) if verdicts[i] is None]
        if todo and len(self._rows):
            values = _normalise(np.vstack([_usable(programs[i].real(PROBE_POINTS)) for i in todo]))
            seen = _informative(values) >= MIN_POINTS
            for start in range(0, len(todo), 32):
                part = [j for j in range(start, min(start + 32, len(todo))) if seen[j]]
                if not part:
                    continue
                scores = self._rows.scores(values[part])
                for col, j in enumerate(part):
                    verdicts[todo[j]] = self._first_match(programs[todo[j]], scores[:, col], self._owner)
            for j, i in enumerate(todo):
                if verdicts[i] is None and not seen[j]:
                    verdicts[i] = self._adaptive(programs[i], intervals[i])
        for i in todo:
            g, iv = programs[i], intervals[i]
            if verdicts[i] is None and iv is not None and len(self._interval_rows):
                gi = _normalise(_usable(g.real(iv[0] + SCREEN_FRACTIONS * (iv[1] - iv[0])))[None, :])
                verdicts[i] = self._interval_match(g, iv, self._interval_rows.scores(gi)[:, 0])
            if verdicts[i] is None and self._sparse:
                verdicts[i] = self._sparse_match(g)
        out = []
        for e, text, v in zip(exprs, written, verdicts, strict=True):
            if v is None or v.status == "unjudged":
                rule = self._structural(e, text, text_rule=v is not None)
                v = rule or v or Verdict()
            out.append(v)
        return out

    def _structural(self, expr, text: str, text_rule: bool) -> Verdict | None:
        """Same expression tree with other numbers; near-identical text only where numbers cannot judge.

        Text similarity is a fallback: ``1/sqrt(x*(1 - x))`` reads almost like ``sqrt(x*(1 - x))`` and is
        a different integral, which the numeric rule knows.
        """
        structure = structure_keys(expr)
        limit = self.config.near_identical_ratio
        for p, matcher in zip(self.problems, self._matchers, strict=True):
            if structure & p.structure:
                return Verdict("contaminated", p.id, "same expression with different numbers")
            if not text_rule:
                continue
            matcher.set_seq1(text)  # seq2 (the protected text) is indexed once per guard
            if matcher.real_quick_ratio() >= limit and matcher.quick_ratio() >= limit and matcher.ratio() >= limit:
                return Verdict("contaminated", p.id, "near-identical text")
        return None

    def judge(self, expr, interval: tuple[float, float] | None = None) -> Verdict:
        """:meth:`judge_batch` for one expression."""
        return self.judge_batch([expr], [interval])[0]

    def check(self, expr, fingerprint: list[float | None] | None = None, interval=None) -> str:
        """Empty string when clean, else the reason (``"<protected id>: <rule>"``, or ``"cannot judge: ..."``).

        ``fingerprint`` is accepted for callers of the earlier API and not needed.
        """
        return self.judge(expr, interval).reason


# ----------------------------------------------------------------------------------------------
# Difficulty and sympy solvability


@dataclass
class Solvability:
    sympy_solvable: bool
    sympy_antiderivative: str
    difficulty: float
    reason: str = ""


UNSOLVED_BITS = 10.0


def difficulty(ops_integrand: int, ops_antiderivative: int | None) -> float:
    """Difficulty estimate in "bits": ``log2(1 + ops(f)) + log2(1 + ops(F))``.

    ``ops`` is ``sympy.count_ops``. The first term measures how much integrand there is to work
    through, the second how much answer has to be produced: ``x**2`` scores about 3, ``x*exp(x)``
    about 4.6, ``exp(x)*sin(x)`` about 6.2. When sympy finds no antiderivative within the time limit
    the second term is ``UNSOLVED_BITS`` (10, an answer of about 1000 operations): such nodes rank
    as hard, which is what the paper saw (about 8% of its variants needed more than 5 s of CAS
    time and earned no reward). It is cheap, monotone in both sizes, and comparable between
    parent and child, so ``difficulty_delta`` tells whether an "easier" variant really is.

    Example:
        >>> difficulty(1, 2)
        2.585
    """
    second = UNSOLVED_BITS if ops_antiderivative is None else math.log2(1 + ops_antiderivative)
    return round(math.log2(1 + ops_integrand) + second, 3)


def fill_sympy_antiderivatives(rows: list[dict], sympy_timeout: float = 5.0) -> None:
    """Give each row without a ``sympy_antiderivative`` the one ``sympy.integrate`` finds in the sandbox within
    ``sympy_timeout`` seconds (``""`` when it finds none, or the integrand does not parse), in place. Rows
    from trees grown without the solvability check (``variant_sympy_timeout: 0``) have none recorded.

    Example:
        >>> rows = [{"integrand": "2*x", "sympy_antiderivative": ""}]
        >>> fill_sympy_antiderivatives(rows)
        >>> rows[0]["sympy_antiderivative"]
        'x**2'
    """
    from ladder_hf.variants.base import parse_problem_integrand

    missing = []
    for row in rows:
        if not row.get("sympy_antiderivative"):
            row["sympy_antiderivative"] = ""
            try:
                missing.append((row, parse_problem_integrand(row["integrand"])))
            except ValueError:
                continue  # not a readable integrand: stays without an answer
    if missing and sympy_timeout > 0:
        found = solvability_batch([e for _, e in missing], QualityConfig(sympy_timeout=sympy_timeout))
        for (row, _), result in zip(missing, found, strict=True):
            row["sympy_antiderivative"] = result.sympy_antiderivative


def solvability_batch(exprs: list, config: QualityConfig | None = None) -> list[Solvability]:
    """sympy.integrate each expression in the sandbox under ``config.sympy_timeout``."""
    from ladder_hf.verifier import run_sandboxed

    config = config or QualityConfig()
    if not config.check_solvable:
        return [Solvability(False, "", difficulty(int(sympy.count_ops(e)), None), "not checked") for e in exprs]
    outcomes = run_sandboxed(_integrate_worker, [(e,) for e in exprs], timeout=config.sympy_timeout) if exprs else []
    results = []
    for e, out in zip(exprs, outcomes, strict=True):
        if out.ok and out.value[0] is not None:
            anti, ops_f, ops_F = out.value
            results.append(Solvability(True, anti, difficulty(ops_f, ops_F)))
        else:
            reason = "sympy returned an unevaluated integral" if out.ok else (out.error or "failed")[:200]
            results.append(Solvability(False, "", difficulty(int(sympy.count_ops(e)), None), reason))
    return results
