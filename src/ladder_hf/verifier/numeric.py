"""Fast numeric evaluation of parsed math, for the verifier's hot path.

The same parse that :func:`parse_math` turns into sympy is compiled here into a small expression
tree that evaluates directly with numpy (float64 for values, complex128 for complex-step
derivatives) or with mpmath (arbitrary precision, for confirmations and definite integrals). This
skips sympy's construction, ``diff`` and ``lambdify`` on every answer, which is what makes the
reward cheap enough to run on every completion of every GRPO step. Function semantics follow sympy's
(principal branches: ``x**(1/3)`` is not real for ``x < 0``, ``acot(x) = atan(1/x)``, ...).

Derivatives use the complex step ``F'(x) = Im F(x + ih) / h`` (Squire and Trapp, 1998): exact to
rounding, no subtractive cancellation, valid wherever ``F`` is real-analytic, i.e. at every point the
verifier counts (all intermediate values real and finite). ``|u|`` is evaluated as
``u * sign(Re u)`` so the step survives it.

Example:
    >>> import numpy as np
    >>> program = compile_math(r"x^2 \\sin x")
    >>> bool(program.real(np.array([2.0]))[0] == 4 * np.sin(2.0))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, partial

import mpmath
import numpy as np
from lark import Tree

from .parsing import (
    _INVERSES,
    MAX_NUMBER_DIGITS,
    MAX_TREE_DEPTH,
    STRICT,
    TRUSTED,
    Bounds,
    MathParseError,
    Token,
    _parse,
)

COMPLEX_STEP = 1e-30

# Functions numpy lacks; evaluated point by point with mpmath (slow, rare in answers).
_SPECIAL = {"erf", "erfc", "erfi", "Si", "Ci", "Shi", "Chi", "Ei", "li"}
_CANONICAL = {
    "cosec": "csc",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arccot": "acot",
    "arcsec": "asec",
    "arccsc": "acsc",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "arccoth": "acoth",
    "arsinh": "asinh",
    "arcosh": "acosh",
    "artanh": "atanh",
    "arcoth": "acoth",
    "ln": "log",
    "abs": "Abs",
    "ceil": "ceiling",
    "sgn": "sign",
}
# Piecewise-constant functions: derivative 0 where they are continuous; definite integrals over them
# are split at their jumps (see :func:`step_nodes`).
STEP_FUNCTIONS = {"floor", "ceiling", "sign"}


def _digits(q: Fraction) -> float:
    return max(math.log10(abs(q.numerator) + 1), math.log10(q.denominator + 1))


def _checked(q: Fraction, bounds: Bounds = STRICT) -> Fraction:
    if _digits(q) > bounds.max_result_digits:
        raise MathParseError("number too large")
    return q


# Expression nodes are tuples: ("num", Fraction) ("const", name) ("var",) ("add", [..]) ("mul", [..])
# ("neg", a) ("inv", a) ("pow", base, exponent) ("fn", name, a) ("logb", a, base) ("abs", a)


def _is_num(node) -> bool:
    return node[0] == "num"


def _add(terms, bounds: Bounds = STRICT):
    nums = [t[1] for t in terms if _is_num(t)]
    rest = [t for t in terms if not _is_num(t)]
    if nums:
        total = _checked(sum(nums, Fraction(0)), bounds)
        if not rest:
            return ("num", total)
        if total:
            rest.append(("num", total))
    return rest[0] if len(rest) == 1 else ("add", rest)


def _mul(factors, bounds: Bounds = STRICT):
    nums = [f[1] for f in factors if _is_num(f)]
    rest = [f for f in factors if not _is_num(f)]
    if nums:
        product = Fraction(1)
        for n in nums:
            product = _checked(product * n, bounds)
        if not rest or product == 0:
            return ("num", product)
        if product != 1:
            rest.append(("num", product))
    return rest[0] if len(rest) == 1 else ("mul", rest)


def _neg(a):
    return ("num", -a[1]) if _is_num(a) else ("neg", a)


def _inv(a):
    if _is_num(a):
        if a[1] == 0:
            raise MathParseError("not a finite expression")
        return ("num", 1 / a[1])
    return ("inv", a)


def _pow(base, exponent, bounds: Bounds = STRICT):
    # same bounds as parse_math, checked before anything is computed
    if _is_num(exponent):
        e = exponent[1]
        if abs(e) > bounds.max_exponent:
            raise MathParseError(f"exponent too large (|{e}| > {bounds.max_exponent})")
        if _is_num(base):
            b = base[1]
            if _digits(b) * float(abs(e)) > bounds.max_result_digits:
                raise MathParseError("number too large")
            if e.denominator == 1:
                if b == 0 and e < 0:
                    raise MathParseError("not a finite expression")
                return ("num", b ** int(e))
    return ("pow", base, exponent)


def _step_exact(name: str, q: Fraction) -> Fraction:
    if name == "floor":
        return Fraction(math.floor(q))
    if name == "ceiling":
        return Fraction(math.ceil(q))
    return Fraction((q > 0) - (q < 0))


class _Compiler:
    """lark tree -> expression nodes (mirrors parsing._Builder, without sympy)."""

    def __init__(self, bounds: Bounds = STRICT):
        self.bounds = bounds

    def build(self, node):
        if isinstance(node, Token):
            raise MathParseError(f"unexpected token {node!s}")
        return getattr(self, "_" + node.data)(node.children)

    def _number(self, children):
        text = str(children[0])
        mantissa, _, exponent = text.lower().partition("e")
        if len(mantissa.replace(".", "")) > MAX_NUMBER_DIGITS or len(exponent.lstrip("+-")) > 3:
            raise MathParseError(f"number literal longer than {MAX_NUMBER_DIGITS} digits")
        if exponent and abs(int(exponent)) > self.bounds.max_result_digits // 2:
            raise MathParseError("number too large")
        digits = mantissa.rstrip(".") or "0"
        value = Fraction(int(digits)) if digits.isdigit() else Fraction(digits)  # int: skips Fraction's regex
        return ("num", value * Fraction(10) ** int(exponent) if exponent else value)

    def _var(self, children):
        return ("var",)

    def _const(self, children):
        name = str(children[0])
        return ("const", "e" if name in ("e", "E") else name)

    def _sum(self, children):
        terms, negate = [], False
        for child in children:
            if isinstance(child, Token):
                negate = str(child) == "-"
                continue
            term = self.build(child)
            terms.append(_neg(term) if negate else term)
            negate = False
        return _add(terms, self.bounds)

    def _product(self, children):
        factors, invert = [], False
        for child in children:
            if isinstance(child, Token):
                invert = child.type == "DIVOP"
                continue
            value = self.build(child)
            factors.append(_inv(value) if invert else value)
            invert = False
        return _mul(factors, self.bounds)

    def _signed(self, children):
        sign, value = children
        value = self.build(value)
        return _neg(value) if str(sign) == "-" else value

    def _power(self, children):
        base, _, exponent = children
        return _pow(self.build(base), self.build(exponent), self.bounds)

    def _abs(self, children):
        a = self.build(children[1])
        return ("num", abs(a[1])) if _is_num(a) else ("abs", a)

    def _frac(self, children):
        _, num, den = children
        return _mul([self.build(num), _inv(self.build(den))], self.bounds)

    def _sqrt(self, children):
        return _pow(self.build(children[1]), ("num", Fraction(1, 2)), self.bounds)

    def _root(self, children):
        _, index, radicand = children
        index = self.build(index)
        if not (_is_num(index) and index[1].denominator == 1 and 2 <= index[1] <= self.bounds.max_exponent):
            raise MathParseError("root index must be an integer >= 2")
        return _pow(self.build(radicand), ("num", Fraction(1, int(index[1]))), self.bounds)

    def _apply(self, name, sub, fpow, args):
        exponent = self.build(fpow.children[1]) if fpow is not None else None
        if exponent is not None and exponent == ("num", Fraction(-1)) and name in _INVERSES:
            name, exponent = _INVERSES[name], None
        name = _CANONICAL.get(name, name)
        if sub is not None:
            if name != "log":
                raise MathParseError(f"subscript on {name}")
            args = [*args, self.build(sub.children[0])]
        if len(args) == 2 and name == "log":
            value = ("logb", args[0], args[1])
        elif len(args) == 1:
            if name == "sqrt":
                value = _pow(args[0], ("num", Fraction(1, 2)), self.bounds)
            elif name == "cbrt":
                value = _pow(args[0], ("num", Fraction(1, 3)), self.bounds)
            elif name == "Abs":
                value = ("abs", args[0])
            elif name in STEP_FUNCTIONS and _is_num(args[0]):
                value = ("num", _step_exact(name, args[0][1]))
            else:
                value = ("fn", name, args[0])
        else:
            raise MathParseError(f"{name} takes one argument")
        return _pow(value, exponent, self.bounds) if exponent is not None else value

    def _call(self, children):
        name, sub, fpow, *args = children
        return self._apply(str(name), sub, fpow, [self.build(a) for a in args])

    def _bare_call(self, children):
        name, sub, fpow, arg = children
        return self._apply(str(name), sub, fpow, [self.build(arg)])

    def _bare_arg(self, children):
        return _mul([self.build(c) for c in children], self.bounds)


class _PrebuiltCompiler(_Compiler):
    """_Compiler whose children arrive already compiled (tuples); ``sub``/``fpow`` stay small trees."""

    def build(self, node):
        return node if isinstance(node, tuple) else super().build(node)


@cache
def _reducer(bounds: Bounds):
    """The parser's ``reduce`` callback: compiles each rule as it is parsed (no parse tree, no second walk)."""
    compiler = _PrebuiltCompiler(bounds)
    handlers = {rule: getattr(compiler, "_" + rule) for rule in _COMPILED_RULES}
    handlers["sub"] = partial(Tree, "sub")  # small trees that _apply reads
    handlers["fpow"] = partial(Tree, "fpow")

    def reduce(rule: str, children: list):
        return handlers[rule](children)

    return reduce


_COMPILED_RULES = (
    "number", "var", "const", "sum", "product", "signed", "power", "abs", "frac", "sqrt", "root", "call",
    "bare_call", "bare_arg",
)  # fmt: skip


# ----------------------------------------------------------------------------- backends


def _ipow(z, n: int):
    """z**n by repeated squaring: exact branch behaviour for negative bases, complex-step safe."""
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
}
# Their derivatives: with a complex step, f(a + ih) = f(a) + i h f'(a) exactly to first order, which
# mpmath cannot resolve itself when h is far below its working precision.
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
}


def _mp_special(name: str, a):
    if isinstance(a, mpmath.mpc) and abs(a.imag) < mpmath.mpf(10) ** -20 * (1 + abs(a.real)):
        return mpmath.mpc(_MP_SPECIAL[name](a.real), a.imag * _SPECIAL_DERIVATIVE[name](a.real))
    return _MP_SPECIAL[name](a)


def _np_special(name: str):
    fn = _MP_SPECIAL[name]

    def scalar(value):
        try:
            return complex(fn(value))
        except (ValueError, ZeroDivisionError, OverflowError):
            return complex("nan")

    vectorised = np.frompyfunc(scalar, 1, 1)

    def scalar_derivative(value):
        try:
            result = _SPECIAL_DERIVATIVE[name](value)
        except (ValueError, ZeroDivisionError, OverflowError):
            return float("nan")
        return float(result) if isinstance(result, mpmath.mpf) else float("nan")

    derivative = np.frompyfunc(scalar_derivative, 1, 1)

    def apply(a):
        if np.iscomplexobj(a):  # complex step: value at the real part, derivative times the step
            real = apply(a.real)
            with np.errstate(all="ignore"):
                return real + 1j * a.imag * derivative(a.real).astype(np.float64)
        out = vectorised(a).astype(np.complex128)
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
_NP.update({name: _np_special(name) for name in _SPECIAL})


def _np_step(fn):
    # Of the real part: under a complex step the imaginary part is the derivative's carrier, and a
    # step function's derivative is 0 wherever it is continuous. Non-real arguments were already
    # rejected by the real pass (NaN), which runs first.
    def apply(a):
        if np.iscomplexobj(a):
            return fn(a.real) + 0j
        return fn(a)

    return apply


_NP.update({"floor": _np_step(np.floor), "ceiling": _np_step(np.ceil), "sign": _np_step(np.sign)})
NUMPY_FUNCTIONS = tuple(name for name in _NP if name not in _SPECIAL)  # evaluated by numpy, not point by point

_MP = {
    "sin": mpmath.sin,
    "cos": mpmath.cos,
    "tan": mpmath.tan,
    "cot": mpmath.cot,
    "sec": mpmath.sec,
    "csc": mpmath.csc,
    "asin": mpmath.asin,
    "acos": mpmath.acos,
    "atan": mpmath.atan,
    "acot": lambda a: mpmath.atan(1 / a),
    "asec": lambda a: mpmath.acos(1 / a),
    "acsc": lambda a: mpmath.asin(1 / a),
    "sinh": mpmath.sinh,
    "cosh": mpmath.cosh,
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
    "exp": mpmath.exp,
    "log": mpmath.log,
}
_MP.update({name: (lambda a, name=name: _mp_special(name, a)) for name in _SPECIAL})


def _mp_step(fn):
    def apply(a):
        if isinstance(a, mpmath.mpc):
            if abs(a.imag) > mpmath.mpf(10) ** -20 * (1 + abs(a.real)):
                raise ValueError("step function of a non-real number")
            return mpmath.mpc(fn(a.real), 0)
        return fn(a)

    return apply


_MP.update({"floor": _mp_step(mpmath.floor), "ceiling": _mp_step(mpmath.ceil), "sign": _mp_step(mpmath.sign)})


def _eval_np(node, x, complex_step: bool):
    kind = node[0]
    if kind == "var":
        return x
    if kind == "num":  # numpy scalars, so 1/0 gives inf instead of raising
        return np.float64(node[1])
    if kind == "const":
        return np.float64({"pi": np.pi, "e": np.e, "oo": np.inf}[node[1]])
    if kind == "add":
        total = _eval_np(node[1][0], x, complex_step)
        for term in node[1][1:]:
            total = total + _eval_np(term, x, complex_step)
        return total
    if kind == "mul":
        total = _eval_np(node[1][0], x, complex_step)
        for factor in node[1][1:]:
            total = total * _eval_np(factor, x, complex_step)
        return total
    if kind == "neg":
        return -_eval_np(node[1], x, complex_step)
    if kind == "inv":
        return 1 / _eval_np(node[1], x, complex_step)
    if kind == "pow":
        base = _eval_np(node[1], x, complex_step)
        exponent = node[2]
        if _is_num(exponent) and exponent[1].denominator == 1:
            return _ipow(base, int(exponent[1]))
        if _is_num(exponent) and exponent[1] == Fraction(1, 2):
            return np.sqrt(base)
        return np.power(base, _eval_np(exponent, x, complex_step))
    if kind == "abs":
        a = _eval_np(node[1], x, complex_step)
        return a * np.sign(a.real) if complex_step else np.abs(a)
    if kind == "logb":
        return np.log(_eval_np(node[1], x, complex_step)) / np.log(_eval_np(node[2], x, complex_step))
    return _NP[node[1]](_eval_np(node[2], x, complex_step))


def _eval_mp(node, x):
    kind = node[0]
    if kind == "var":
        return x
    if kind == "num":
        return mpmath.mpf(node[1].numerator) / node[1].denominator
    if kind == "const":
        return {"pi": +mpmath.pi, "e": +mpmath.e, "oo": mpmath.inf}[node[1]]
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
        if _is_num(exponent) and exponent[1].denominator == 1:
            return _ipow(base, int(exponent[1]))
        return mpmath.power(base, _eval_mp(exponent, x))
    if kind == "abs":
        a = _eval_mp(node[1], x)
        if isinstance(a, mpmath.mpc) and a.imag != 0:
            return a * mpmath.sign(a.real)  # complex step through |u|, as in the numpy path
        return abs(a)
    if kind == "logb":
        return mpmath.log(_eval_mp(node[1], x)) / mpmath.log(_eval_mp(node[2], x))
    return _MP[node[1]](_eval_mp(node[2], x))


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
    if kind == "pow" and _is_num(node[2]) and node[2][1].denominator == 1 and node[2][1] > 0:
        return _ipow(_eval_magnitude(node[1], x), int(node[2][1]))
    return np.abs(_eval_np(node, x, False))


@dataclass(frozen=True)
class Program:
    """A compiled expression in one variable."""

    node: tuple
    has_variable: bool
    has_infinity: bool
    special: bool  # uses a function numpy lacks (slower)
    steps: tuple = ()  # floor/ceiling/sign sub-expressions (where the value can jump)

    def real(self, x: np.ndarray) -> np.ndarray:
        """float64 values (NaN where not real or undefined)."""
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(_eval_np(self.node, x, False), dtype=np.float64), x.shape)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """Complex-step derivative at real points."""
        z = x.astype(np.complex128) + 1j * COMPLEX_STEP
        with np.errstate(all="ignore"):
            values = np.broadcast_to(np.asarray(_eval_np(self.node, z, True), dtype=np.complex128), x.shape)
        return values.imag / COMPLEX_STEP

    def magnitude(self, x: np.ndarray) -> np.ndarray:
        """Scale of the rounding error of :meth:`real` (sum of the absolute values of added terms)."""
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(_eval_magnitude(self.node, x), dtype=np.float64), x.shape)

    def step_values(self, x: np.ndarray) -> np.ndarray:
        """Values of the step sub-expressions (floor, ceiling, sign) at ``x``: shape (len(steps), len(x))."""
        with np.errstate(all="ignore"):
            rows = [np.broadcast_to(np.asarray(_eval_np(n, x, False), dtype=np.float64), x.shape) for n in self.steps]
        return np.array(rows).reshape(len(self.steps), len(x))

    def mp(self, x=None):
        """mpmath value at ``x`` (uses the current mpmath precision)."""
        return _eval_mp(self.node, x)

    def mp_derivative(self, x, step_digits: int = 40):
        """Complex-step derivative in mpmath (at the current precision)."""
        h = mpmath.mpf(10) ** (-step_digits)
        return mpmath.im(_eval_mp(self.node, mpmath.mpc(x, h))) / h


def _survey(node) -> tuple[int, list]:
    """The expression's depth and all its sub-expressions, in one iterative walk."""
    deepest, nodes, stack = 0, [], [(node, 1)]
    while stack:
        n, depth = stack.pop()
        nodes.append(n)
        deepest = max(deepest, depth)
        for child in n[1:]:
            if isinstance(child, tuple):
                stack.append((child, depth + 1))
            elif isinstance(child, list):
                stack.extend((c, depth + 1) for c in child)
    return deepest, nodes


def compile_math(text: str, variable: str = "x", *, trusted: bool = False) -> Program:
    """Parse ``text`` (same grammar and bounds as :func:`parse_math`) into a fast numeric :class:`Program`.

    ``trusted=True`` applies the relaxed exponent bounds meant for integrands from our own data.
    """
    try:
        # the parser reduces straight into expression nodes (its recursion is bounded by the parse
        # tree's depth); the expression's own depth bound is checked on the result below
        node = _parse(text, variable, _reducer(TRUSTED if trusted else STRICT))
    except MathParseError:
        raise
    except (RecursionError, OverflowError, ZeroDivisionError, TypeError, ValueError) as err:
        if isinstance(err, ValueError) and "variable" in str(err):
            raise
        raise MathParseError(f"could not build expression: {type(err).__name__}") from None
    if not isinstance(node, tuple):  # pragma: no cover - every rule is compiled
        raise MathParseError("not an expression")
    depth, kinds = _survey(node)
    if depth > MAX_TREE_DEPTH:
        raise MathParseError(f"nested too deeply (expression deeper than {MAX_TREE_DEPTH})")
    functions = {n[1] for n in kinds if n[0] == "fn"}
    return Program(
        node=node,
        has_variable=any(n[0] == "var" for n in kinds),
        has_infinity=any(n == ("const", "oo") for n in kinds),
        special=not functions.isdisjoint(_SPECIAL),
        steps=tuple({repr(n): n for n in kinds if n[0] == "fn" and n[1] in STEP_FUNCTIONS}.values()),
    )
