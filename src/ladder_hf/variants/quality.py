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
import math
from dataclasses import dataclass, field

import numpy as np
import sympy

X = sympy.Symbol("x")

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


@dataclass
class ProtectedProblem:
    id: str
    text: str
    structure: str
    fingerprint: list[float | None]


class ContaminationGuard:
    """Rejects variants that are, or nearly are, one of the protected (test) problems.

    Example:
        >>> guard = ContaminationGuard([{"id": "t1", "integrand": "x**3*sin(2*x)"}])  # doctest: +SKIP
        >>> guard.check(sympy.sympify("2*x**3*sin(5*x)"), fp)  # doctest: +SKIP
        't1: same expression with different numbers'
    """

    def __init__(self, protected: list[dict], config: QualityConfig | None = None):
        from ladder_hf.variants.base import parse_problem_integrand

        self.config = config or QualityConfig()
        exprs, ids = [], []
        for row in protected:
            try:
                exprs.append(parse_problem_integrand(row["integrand"]))
            except ValueError as err:
                # Never protect silently less than asked for.
                raise ValueError(
                    f"protected problem {row.get('id', row['integrand'])!r} does not parse: {err}"
                ) from err
            ids.append(str(row.get("id", row["integrand"])))
        profiles = profile_batch(exprs, config=self.config)
        self.problems = [
            ProtectedProblem(i, str(e), structure_key(e), p.fingerprint)
            for i, e, p in zip(ids, exprs, profiles, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.problems)

    def check(self, expr, fingerprint: list[float | None]) -> str:
        """Empty string when clean, else the reason naming the protected problem."""
        text, structure = str(expr), structure_key(expr)
        rtol = self.config.rtol
        for p in self.problems:
            if text == p.text:
                return f"{p.id}: identical"
            if same_function(fingerprint, p.fingerprint, rtol):
                return f"{p.id}: numerically equivalent"
            if proportional(fingerprint, p.fingerprint, rtol):
                return f"{p.id}: constant multiple"
            if structure == p.structure:
                return f"{p.id}: same expression with different numbers"
            if difflib.SequenceMatcher(None, text, p.text).ratio() >= self.config.near_identical_ratio:
                return f"{p.id}: near-identical text"
        return ""


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
