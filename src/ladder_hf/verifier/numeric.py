"""Fast numeric evaluation of parsed math, for the verifier's hot path.

:func:`compile_math` takes the intermediate form that :mod:`ladder_hf.verifier.parsing` builds (the same
parse :func:`parse_math` turns into sympy) and wraps it in a :class:`Program` that evaluates directly
with numpy (float64 for values, complex128 for principal branches) or with mpmath (arbitrary precision,
for confirmations and definite integrals). This skips sympy's construction, ``diff`` and ``lambdify`` on
every answer, which is what makes the reward cheap enough to run on every completion of every GRPO step.
Function semantics follow sympy's (principal branches: ``x**(1/3)`` is not real for ``x < 0``,
``acot(x) = atan(1/x)``, ...). Derivatives are forward-mode automatic differentiation over the same
expression (see :func:`_dual`).

Example:
    >>> import numpy as np
    >>> program = compile_math(r"x^2 \\sin x")
    >>> bool(program.real(np.array([2.0]))[0] == 4 * np.sin(2.0))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import mpmath
import numpy as np

from .parsing import STEP_FUNCTIONS, is_number, parse_expression

# Functions numpy lacks; evaluated point by point with mpmath (slow, rare in answers).
_SPECIAL = {"erf", "erfc", "erfi", "Si", "Ci", "Shi", "Chi", "Ei", "li", "gamma", "zeta", "Li2", "Li3"}


# ----------------------------------------------------------------------------- backends
# Values are computed with numpy (float64: NaN where not real; complex128: principal branches) or
# mpmath (any precision, principal branches). Derivatives are forward-mode automatic differentiation
# over the same nodes (value, derivative) pairs: exact to rounding like a complex step, but also valid
# where the value itself is complex (``log(x)`` for ``x < 0``), which a complex step cannot handle.


def _ipow(z, n: int):
    """z**n by repeated squaring: exact branch behaviour for negative bases."""
    if n == 0:
        return z * 0 + 1
    result, base, k = None, z, abs(n)
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return 1 / result if n < 0 else result


# Beyond these arguments an mpmath evaluation costs more than any answer is worth (sin(e^{e^{20}})
# needs 2e8 digits of pi) and a float64 one means nothing: the value is treated as undefined.
MP_MAX_TRIG_ARGUMENT = mpmath.mpf(10) ** 300
MP_MAX_EXP_ARGUMENT = mpmath.mpf(10) ** 12


def _mp_guard(fn, limit):
    def apply(a):
        if abs(a) > limit:
            raise OverflowError("argument too large to evaluate")
        return fn(a)

    return apply


def _mp_exp(a):
    # e^{-10^13} is 0 for every purpose (quadrature over infinite ranges asks for it); e^{10^13} is not a
    # number worth computing
    if isinstance(a, mpmath.mpf) and a < -MP_MAX_EXP_ARGUMENT:
        return mpmath.mpf(0)
    if abs(a) > MP_MAX_EXP_ARGUMENT:
        raise OverflowError("argument too large to evaluate")
    return mpmath.exp(a)


def _mp_power(base, exponent):
    if abs(exponent) > MP_MAX_EXP_ARGUMENT:
        raise OverflowError("exponent too large to evaluate")
    return mpmath.power(base, exponent)


_MP_SPECIAL = {
    "erf": mpmath.erf,
    "erfc": mpmath.erfc,
    "erfi": mpmath.erfi,
    "Si": mpmath.si,
    "Ci": mpmath.ci,
    "Shi": mpmath.shi,
    "Chi": mpmath.chi,
    "Ei": mpmath.ei,
    "li": mpmath.li,
    "gamma": _mp_guard(mpmath.gamma, MP_MAX_EXP_ARGUMENT),
    "zeta": _mp_guard(mpmath.zeta, MP_MAX_EXP_ARGUMENT),
    "Li2": lambda a: mpmath.polylog(2, a),
    "Li3": lambda a: mpmath.polylog(3, a),
}
_SPECIAL_DERIVATIVE = {
    "erf": lambda a: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(a**2)),
    "erfc": lambda a: -2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(a**2)),
    "erfi": lambda a: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(a**2),
    "Si": lambda a: mpmath.sin(a) / a,
    "Ci": lambda a: mpmath.cos(a) / a,
    "Shi": lambda a: mpmath.sinh(a) / a,
    "Chi": lambda a: mpmath.cosh(a) / a,
    "Ei": lambda a: mpmath.exp(a) / a,
    "li": lambda a: 1 / mpmath.log(a),
    "gamma": lambda a: mpmath.gamma(a) * mpmath.digamma(a),
    "zeta": lambda a: mpmath.zeta(a, 1, 1),
    "Li2": lambda a: -mpmath.log(1 - a) / a,
    "Li3": lambda a: mpmath.polylog(2, a) / a,
}


def _np_pointwise(fn):
    """An mpmath function applied point by point to a numpy array or scalar (slow: special functions only):
    complex128 for complex input; for real input float64, NaN where the value is not real or undefined."""

    def scalar(value):
        try:
            return complex(fn(value))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return complex("nan")

    vectorised = np.frompyfunc(scalar, 1, 1)

    def apply(a):
        out = np.asarray(vectorised(a), dtype=object).astype(np.complex128)
        if np.iscomplexobj(a):
            return out
        imag_ok = np.abs(out.imag) <= 1e-12 * np.maximum(np.abs(out.real), 1.0)
        return np.where(imag_ok, out.real, np.nan)

    return apply


_NP = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "cot": lambda a: 1 / np.tan(a),
    "sec": lambda a: 1 / np.cos(a),
    "csc": lambda a: 1 / np.sin(a),
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "acot": lambda a: np.arctan(1 / a),
    "asec": lambda a: np.arccos(1 / a),
    "acsc": lambda a: np.arcsin(1 / a),
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "coth": lambda a: 1 / np.tanh(a),
    "sech": lambda a: 1 / np.cosh(a),
    "csch": lambda a: 1 / np.sinh(a),
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "acoth": lambda a: np.arctanh(1 / a),
    "asech": lambda a: np.arccosh(1 / a),
    "acsch": lambda a: np.arcsinh(1 / a),
    "exp": np.exp,
    "log": np.log,
}
_NP.update({name: _np_pointwise(_MP_SPECIAL[name]) for name in _SPECIAL})
_NP_SPECIAL_DERIVATIVE = {name: _np_pointwise(_SPECIAL_DERIVATIVE[name]) for name in _SPECIAL}


def _np_step(fn):
    # A step function of a non-real number is undefined (NaN).
    def apply(a):
        if np.iscomplexobj(a):
            real = np.abs(a.imag) <= 1e-12 * np.maximum(np.abs(a.real), 1.0)
            return np.where(real, fn(a.real), np.nan) + 0j
        return fn(a)

    return apply


_NP.update({"floor": _np_step(np.floor), "ceiling": _np_step(np.ceil), "sign": _np_step(np.sign)})
NUMPY_FUNCTIONS = tuple(name for name in _NP if name not in _SPECIAL)  # evaluated by numpy, not point by point

_MP = {
    "sin": _mp_guard(mpmath.sin, MP_MAX_TRIG_ARGUMENT),
    "cos": _mp_guard(mpmath.cos, MP_MAX_TRIG_ARGUMENT),
    "tan": _mp_guard(mpmath.tan, MP_MAX_TRIG_ARGUMENT),
    "cot": _mp_guard(mpmath.cot, MP_MAX_TRIG_ARGUMENT),
    "sec": _mp_guard(mpmath.sec, MP_MAX_TRIG_ARGUMENT),
    "csc": _mp_guard(mpmath.csc, MP_MAX_TRIG_ARGUMENT),
    "asin": mpmath.asin,
    "acos": mpmath.acos,
    "atan": mpmath.atan,
    "acot": lambda a: mpmath.atan(1 / a),
    "asec": lambda a: mpmath.acos(1 / a),
    "acsc": lambda a: mpmath.asin(1 / a),
    "sinh": _mp_guard(mpmath.sinh, MP_MAX_EXP_ARGUMENT),
    "cosh": _mp_guard(mpmath.cosh, MP_MAX_EXP_ARGUMENT),
    "tanh": mpmath.tanh,
    "coth": mpmath.coth,
    "sech": mpmath.sech,
    "csch": mpmath.csch,
    "asinh": mpmath.asinh,
    "acosh": mpmath.acosh,
    "atanh": mpmath.atanh,
    "acoth": lambda a: mpmath.atanh(1 / a),
    "asech": lambda a: mpmath.acosh(1 / a),
    "acsch": lambda a: mpmath.asinh(1 / a),
    "exp": _mp_exp,
    "log": mpmath.log,
}
_MP.update({name: _MP_SPECIAL[name] for name in _SPECIAL})


def _mp_step(fn):
    def apply(a):
        if isinstance(a, mpmath.mpc):
            if abs(a.imag) > mpmath.mpf(10) ** -20 * (1 + abs(a.real)):
                raise ValueError("step function of a non-real number")
            return fn(a.real)
        return fn(a)

    return apply


_MP.update({"floor": _mp_step(mpmath.floor), "ceiling": _mp_step(mpmath.ceil), "sign": _mp_step(mpmath.sign)})
_CONSTANT_VALUES = {
    "pi": np.pi,
    "e": np.e,
    "oo": np.inf,
    "catalan": 0.915965594177219,
    "eulergamma": 0.5772156649015329,
}
_MP_CONSTANTS = {
    "pi": mpmath.pi,
    "e": mpmath.e,
    "oo": mpmath.inf,
    "catalan": mpmath.catalan,
    "eulergamma": mpmath.euler,
}


def _eval_np(node, x):
    """Value of ``node`` at ``x`` (float64: NaN where not real; complex128: principal branches)."""
    kind = node[0]
    if kind == "var":
        return x
    if kind == "num":  # numpy scalars, so 1/0 gives inf instead of raising
        return np.float64(node[1])
    if kind == "const":
        return np.float64(_CONSTANT_VALUES[node[1]])
    if kind == "add":
        total = _eval_np(node[1][0], x)
        for term in node[1][1:]:
            total = total + _eval_np(term, x)
        return total
    if kind == "mul":
        total = _eval_np(node[1][0], x)
        for factor in node[1][1:]:
            total = total * _eval_np(factor, x)
        return total
    if kind == "neg":
        return -_eval_np(node[1], x)
    if kind == "inv":
        return 1 / _eval_np(node[1], x)
    if kind == "pow":
        base = _eval_np(node[1], x)
        exponent = node[2]
        if is_number(exponent) and exponent[1].denominator == 1:
            return _ipow(base, int(exponent[1]))
        if is_number(exponent) and exponent[1] == Fraction(1, 2):
            return np.sqrt(base)
        return np.power(base, _eval_np(exponent, x))
    if kind == "abs":
        return np.abs(_eval_np(node[1], x))
    if kind == "logb":
        return np.log(_eval_np(node[1], x)) / np.log(_eval_np(node[2], x))
    return _NP[node[1]](_eval_np(node[2], x))


def _eval_mp(node, x):
    kind = node[0]
    if kind == "var":
        return x
    if kind == "num":
        return mpmath.mpf(node[1].numerator) / node[1].denominator
    if kind == "const":
        return +_MP_CONSTANTS[node[1]]
    if kind == "add":
        return mpmath.fsum(_eval_mp(t, x) for t in node[1])
    if kind == "mul":
        total = _eval_mp(node[1][0], x)
        for factor in node[1][1:]:
            total = total * _eval_mp(factor, x)
        return total
    if kind == "neg":
        return -_eval_mp(node[1], x)
    if kind == "inv":
        return 1 / _eval_mp(node[1], x)
    if kind == "pow":
        base = _eval_mp(node[1], x)
        exponent = node[2]
        if is_number(exponent) and exponent[1].denominator == 1:
            return _ipow(base, int(exponent[1]))
        return _mp_power(base, _eval_mp(exponent, x))
    if kind == "abs":
        return abs(_eval_mp(node[1], x))
    if kind == "logb":
        return mpmath.log(_eval_mp(node[1], x)) / mpmath.log(_eval_mp(node[2], x))
    return _MP[node[1]](_eval_mp(node[2], x))


# ----------------------------------------------------------------------------- derivatives
# d/da of each function, from the argument ``a`` and the value ``y = f(a)``; ``m`` is numpy or mpmath.
# Principal branches throughout (acosh'(a) = 1/(sqrt(a-1) sqrt(a+1)), not 1/sqrt(a^2-1)).
_DERIVATIVE = {
    "sin": lambda m, a, y: m.cos(a),
    "cos": lambda m, a, y: -m.sin(a),
    "tan": lambda m, a, y: 1 + y * y,
    "cot": lambda m, a, y: -(1 + y * y),
    "sec": lambda m, a, y: y * m.tan(a),
    "csc": lambda m, a, y: -y / m.tan(a),
    "asin": lambda m, a, y: 1 / m.sqrt(1 - a * a),
    "acos": lambda m, a, y: -1 / m.sqrt(1 - a * a),
    "atan": lambda m, a, y: 1 / (1 + a * a),
    "acot": lambda m, a, y: -1 / (1 + a * a),
    "asec": lambda m, a, y: 1 / (a * a * m.sqrt(1 - 1 / (a * a))),
    "acsc": lambda m, a, y: -1 / (a * a * m.sqrt(1 - 1 / (a * a))),
    "sinh": lambda m, a, y: m.cosh(a),
    "cosh": lambda m, a, y: m.sinh(a),
    "tanh": lambda m, a, y: 1 - y * y,
    "coth": lambda m, a, y: 1 - y * y,
    "sech": lambda m, a, y: -y * m.tanh(a),
    "csch": lambda m, a, y: -y / m.tanh(a),
    "asinh": lambda m, a, y: 1 / m.sqrt(a * a + 1),
    "acosh": lambda m, a, y: 1 / (m.sqrt(a - 1) * m.sqrt(a + 1)),
    "atanh": lambda m, a, y: 1 / (1 - a * a),
    "acoth": lambda m, a, y: 1 / (1 - a * a),
    "asech": lambda m, a, y: -1 / (a * a * m.sqrt(1 / a - 1) * m.sqrt(1 / a + 1)),
    "acsch": lambda m, a, y: -1 / (a * a * m.sqrt(1 / (a * a) + 1)),
    "exp": lambda m, a, y: y,
    "log": lambda m, a, y: 1 / a,
}


class _NumpyMath:
    """numpy as a backend of :func:`_dual` (float64 or complex128 arrays)."""

    sin, cos, tan, tanh, sinh, cosh = np.sin, np.cos, np.tan, np.tanh, np.sinh, np.cosh
    sqrt, log, power = np.sqrt, np.log, np.power
    sign, real, conj, fn = staticmethod(np.sign), staticmethod(np.real), staticmethod(np.conj), _NP
    num = staticmethod(lambda q: np.float64(q))
    const = staticmethod(lambda name: np.float64(_CONSTANT_VALUES[name]))
    special_derivative = staticmethod(lambda name, a: _NP_SPECIAL_DERIVATIVE[name](a))
    is_complex = staticmethod(np.iscomplexobj)

    @staticmethod
    def positive_zero(a):
        # -0.0 imaginary parts (from a negation or a product) would put a value on the other side of a
        # branch cut (log(-2 - 0j) = log 2 - i pi); mpmath has no signed zeros, so both backends agree
        return a + 0j if np.iscomplexobj(a) else a


class _MpMath:
    """mpmath as a backend of :func:`_dual` (scalars at the current precision)."""

    sin, cos, tan, sqrt, log = mpmath.sin, mpmath.cos, mpmath.tan, mpmath.sqrt, mpmath.log
    tanh, sinh, cosh = mpmath.tanh, mpmath.sinh, mpmath.cosh
    sign, real, conj, fn = staticmethod(mpmath.sign), staticmethod(mpmath.re), staticmethod(mpmath.conj), _MP
    num = staticmethod(lambda q: mpmath.mpf(q.numerator) / q.denominator)
    const = staticmethod(lambda name: +_MP_CONSTANTS[name])
    special_derivative = staticmethod(lambda name, a: _SPECIAL_DERIVATIVE[name](a))
    is_complex = staticmethod(lambda a: isinstance(a, mpmath.mpc))
    positive_zero = staticmethod(lambda a: a)

    power = staticmethod(lambda base, exponent: _mp_power(base, exponent))


def _dual(node, x, m):
    """(value, derivative) of ``node`` at ``x``; a derivative of ``None`` is identically zero."""
    kind = node[0]
    if kind == "var":
        return x, 1
    if kind == "num":
        return m.num(node[1]), None
    if kind == "const":
        return m.const(node[1]), None
    if kind == "add":
        value, slope = _dual(node[1][0], x, m)
        for term in node[1][1:]:
            v, d = _dual(term, x, m)
            value = value + v
            slope = d if slope is None else slope if d is None else slope + d
        return value, slope
    if kind == "mul":
        value, slope = _dual(node[1][0], x, m)
        for factor in node[1][1:]:
            v, d = _dual(factor, x, m)
            if slope is None:
                slope = None if d is None else value * d
            else:
                slope = slope * v if d is None else slope * v + value * d
            value = value * v
        return value, slope
    if kind == "neg":
        v, d = _dual(node[1], x, m)
        return -v, None if d is None else -d
    if kind == "inv":
        v, d = _dual(node[1], x, m)
        w = 1 / v
        return w, None if d is None else -d * w * w
    if kind == "pow":
        base, db = _dual(node[1], x, m)
        base = m.positive_zero(base)
        exponent = node[2]
        if is_number(exponent):
            p = exponent[1]
            if p.denominator == 1:
                n = int(p)
                value = _ipow(base, n)
                return value, None if db is None or n == 0 else n * _ipow(base, n - 1) * db
            if p == Fraction(1, 2):
                value = m.sqrt(base)
                return value, None if db is None else db / (2 * value)
            value = m.power(base, m.num(p))
            return value, None if db is None else m.num(p) * m.power(base, m.num(p - 1)) * db
        e, de = _dual(exponent, x, m)
        value = m.power(base, e)
        if de is None:
            return value, None if db is None else e * m.power(base, e - 1) * db
        slope = de * m.log(base)
        if db is not None:
            slope = slope + e * db / base
        return value, value * slope
    if kind == "abs":
        v, d = _dual(node[1], x, m)
        size = abs(v)
        if d is None:
            return size, None
        if m.is_complex(v) or m.is_complex(d):  # d|u| = Re(conj(u) du) / |u| for complex u
            return size, m.real(m.conj(v) * d) / size
        return size, d * m.sign(v)
    if kind == "logb":
        (u, du), (b, dbase) = _dual(node[1], x, m), _dual(node[2], x, m)
        lu, lb = m.log(u), m.log(b)
        value = lu / lb
        slope = None
        if du is not None:
            slope = du / (u * lb)
        if dbase is not None:
            term = -value * dbase / (b * lb)
            slope = term if slope is None else slope + term
        return value, slope
    name = node[1]
    a, da = _dual(node[2], x, m)
    y = m.fn[name](m.positive_zero(a))
    if da is None or name in STEP_FUNCTIONS:
        return y, None
    if name in _SPECIAL:
        return y, m.special_derivative(name, a) * da
    return y, _DERIVATIVE[name](m, a, y) * da


def _eval_magnitude(node, x):
    """Size of the terms that are added to get ``node``'s value: the scale of its rounding error.

    ``(1-x)**3 + (x-x**2)**3 + ...`` can be identically zero yet computed as a cancellation of terms of
    size 1e12; its float64 values are then rounding noise of that size times 1e-16, not "nonzero".
    """
    kind = node[0]
    if kind == "add":
        total = _eval_magnitude(node[1][0], x)
        for term in node[1][1:]:
            total = total + _eval_magnitude(term, x)
        return total
    if kind == "mul":
        total = _eval_magnitude(node[1][0], x)
        for factor in node[1][1:]:
            total = total * _eval_magnitude(factor, x)
        return total
    if kind == "neg":
        return _eval_magnitude(node[1], x)
    if kind == "pow" and is_number(node[2]) and node[2][1].denominator == 1 and node[2][1] > 0:
        return _ipow(_eval_magnitude(node[1], x), int(node[2][1]))
    return np.abs(_eval_np(node, x))


def _as_array(values, x: np.ndarray, dtype) -> np.ndarray:
    if type(values) is np.ndarray and values.dtype == dtype and values.shape == x.shape:
        return values  # the common case; broadcast_to costs more than the arithmetic on 272 points
    return np.broadcast_to(np.asarray(values, dtype=dtype), x.shape)


@dataclass(frozen=True)
class Program:
    """A compiled expression in one variable."""

    node: tuple
    has_variable: bool
    has_infinity: bool
    special: bool  # uses a function numpy lacks (slower)
    steps: tuple = ()  # floor/ceiling/sign sub-expressions (where the value can jump)
    can_jump: bool = True  # has a part that can be discontinuous at a real point (a pole, a branch cut, a step)

    @cached_property
    def constants(self) -> tuple:
        """Largest sub-expressions without the variable that are more than a number (``tan(pi/2)``)."""
        return tuple(_constant_parts(self.node)) if self.has_variable else ()

    def real(self, x: np.ndarray) -> np.ndarray:
        """float64 values (NaN where not real or undefined)."""
        with np.errstate(all="ignore"):
            return _as_array(_eval_np(self.node, x), x, np.float64)

    def dual(self, x: np.ndarray, complex_values: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Values and exact (automatic-differentiation) derivatives at real points ``x``.

        float64 by default (NaN where anything is not real); ``complex_values=True`` follows principal
        branches, so ``log(x)`` at ``x < 0`` has value ``log|x| + i pi`` and derivative ``1/x``.
        """
        dtype = np.complex128 if complex_values else np.float64
        with np.errstate(all="ignore"):
            value, slope = _dual(self.node, x.astype(dtype), _NumpyMath)
            return _as_array(value, x, dtype), _as_array(0.0 if slope is None else slope, x, dtype)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """float64 derivative at real points (NaN where the expression is not real)."""
        return self.dual(x)[1]

    def magnitude(self, x: np.ndarray) -> np.ndarray:
        """Scale of the rounding error of :meth:`real` (sum of the absolute values of added terms)."""
        with np.errstate(all="ignore"):
            return _as_array(_eval_magnitude(self.node, x), x, np.float64)

    def step_values(self, x: np.ndarray) -> np.ndarray:
        """Values of the step sub-expressions (floor, ceiling, sign) at ``x``: shape (len(steps), len(x))."""
        with np.errstate(all="ignore"):
            rows = [_as_array(_eval_np(n, x), x, np.float64) for n in self.steps]
        return np.array(rows).reshape(len(self.steps), len(x))

    def mp(self, x=None):
        """mpmath value at ``x`` (uses the current mpmath precision)."""
        return _eval_mp(self.node, x)

    def mp_dual(self, x):
        """mpmath value and exact derivative at ``x`` (current precision, principal branches)."""
        value, slope = _dual(self.node, mpmath.mpf(x), _MpMath)
        return value, mpmath.mpf(0) if slope is None else slope


def evaluate_node(node: tuple, x: np.ndarray) -> np.ndarray:
    """float64 values of one sub-expression of a :class:`Program` (e.g. one of its ``steps``) at ``x``."""
    with np.errstate(all="ignore"):
        return np.asarray(_eval_np(node, x), dtype=np.float64)


def _constant_parts(node) -> list:
    """Largest sub-expressions without the variable that are more than a number (``tan(pi/2)``, ``sqrt(2)``),
    in one walk that decides each node's variable-freeness from its children's."""
    parts: list = []

    def walk(n) -> bool:  # True when n contains the variable
        if n[0] == "var":
            return True
        children = [c for c in n[1:] if isinstance(c, tuple)]
        children += [c for c in n[1:] if isinstance(c, list) for c in c]
        flags = [walk(c) for c in children]
        if any(flags):
            parts.extend(
                c for c, flag in zip(children, flags, strict=True) if not flag and c[0] not in ("num", "const")
            )
            return True
        return False

    if not walk(node) and node[0] not in ("num", "const"):
        parts.append(node)
    return parts


def compile_math(text: str, variable: str = "x", *, trusted: bool = False) -> Program:
    """Parse ``text`` (same grammar and bounds as :func:`parse_math`) into a fast numeric :class:`Program`.

    ``trusted=True`` applies the relaxed exponent bounds meant for integrands from our own data.

    Example:
        >>> compile_math("1/x").can_jump, compile_math("sin(x)").can_jump
        (True, False)
    """
    node, nodes = parse_expression(text, variable, trusted=trusted)
    functions = {n[1] for n in nodes if n[0] == "fn"}
    return Program(
        node=node,
        has_variable=any(n[0] == "var" for n in nodes),
        has_infinity=any(n == ("const", "oo") for n in nodes),
        special=not functions.isdisjoint(_SPECIAL),
        steps=tuple({repr(n): n for n in nodes if n[0] == "fn" and n[1] in STEP_FUNCTIONS}.values()),
        can_jump=any(_may_jump(n) for n in nodes),
    )


# Functions continuous at every real point where their argument is real and finite: an expression built
# only from these, sums, products and positive integer powers has no jump anywhere.
_CONTINUOUS = {"sin", "cos", "exp", "sinh", "cosh", "tanh", "sech", "atan", "asinh", "erf", "erfc", "erfi", "Si", "Shi"}


def _may_jump(node) -> bool:
    kind = node[0]
    if kind in ("inv", "logb"):
        return True
    if kind == "pow":
        exponent = node[2]
        return not (is_number(exponent) and exponent[1].denominator == 1 and exponent[1] >= 0)
    return kind == "fn" and node[1] not in _CONTINUOUS
