"""Grammar-based, bounded parsing of model-written math into one intermediate form.

Model output is hostile input, so it never reaches ``eval``, ``exec`` or ``sympify``. Text goes
through three bounded stages:

1. a light normalisation (strip ``$``, ``+ C``, LaTeX spacing, unicode minus/pi, ...) on text that
   is already capped in length and checked for control characters;
2. a grammar (:data:`GRAMMAR`, in lark's notation) that knows sympy syntax and the LaTeX that models
   actually write (``\\frac``, ``\\sqrt[n]{}``, ``\\ln``, ``e^{...}``, ``\\sin^2 x``, ``\\tan^{-1}``,
   ``|x|``, implicit multiplication ``3x``, ``x e^x``); any other name (``y``, ``__import__``,
   ``Integral``) is a lexing error. Tokens come from lark's terminals; the parser (:class:`Parser`) is
   a small recursive-descent one written for this grammar (lark's generic LALR driver was the largest
   single cost of judging an answer), and the tests check that it builds the trees lark's LALR parser
   builds;
3. one compiler (:class:`Compiler`) that reduces each rule, as it is parsed, into the intermediate form
   (expression tuples, see below), folding numbers exactly and checking every magnitude bound before
   anything larger is computed (``10**10**10`` is refused).

Everything downstream reads the intermediate form: :mod:`ladder_hf.verifier.numeric` evaluates it
(numpy, mpmath) and :func:`to_sympy` builds sympy from it, for :func:`parse_math`.

Example:
    >>> from ladder_hf.verifier import parse_math
    >>> parse_math(r"\\frac{1}{2}\\ln|x| + \\sin^2 x + C")
    log(Abs(x))/2 + sin(x)**2
    >>> parse_expression("2x^2").node
    ('mul', [('pow', ('var',), ('num', Fraction(2, 1))), ('num', Fraction(2, 1))])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from typing import NamedTuple

import sympy
from lark import Lark

# Bounds. Answers to integration problems are short; anything beyond these is either garbage or an attack.
MAX_LENGTH = 1000  # characters after normalisation
MAX_TOKENS = 400
MAX_NESTING = 30  # open brackets at once
MAX_TREE_DEPTH = 80  # depth of the parse (the parser recurses) and of the expression (evaluators recurse)
MAX_NUMBER_DIGITS = 40  # digits in one numeric literal
# |e| of a numeric exponent. Competition answers use exponents like 1013, 2023 or 4044
# (x**1013/1013, tan(x)**2023/2023); exact numbers stay bounded by MAX_RESULT_DIGITS whatever the exponent.
MAX_EXPONENT = 5000
MAX_RESULT_DIGITS = 1000  # digits of an exact number produced by a power, factorial or binomial (2^{2019})
# Relaxed bounds for *trusted* text only: integrands from our bundled data or from variant rows that
# were already parsed. Competition integrands have exponents like 2024 or 4036; model-written answers
# keep the strict bounds above. Still finite: the numeric evaluator handles these in float64/mpmath.
TRUSTED_MAX_EXPONENT = 10_000
TRUSTED_MAX_RESULT_DIGITS = 5_000


@dataclass(frozen=True)
class Bounds:
    """Magnitude bounds applied while building an expression (strict for answers, relaxed for trusted integrands)."""

    max_exponent: int = MAX_EXPONENT
    max_result_digits: int = MAX_RESULT_DIGITS


STRICT = Bounds()
TRUSTED = Bounds(TRUSTED_MAX_EXPONENT, TRUSTED_MAX_RESULT_DIGITS)


class Token:
    """One token: lark's terminal name, its text and where it starts (lighter than ``lark.Token``)."""

    __slots__ = ("start_pos", "type", "value")

    def __init__(self, type: str, value: str, start_pos: int = 0):
        self.type, self.value, self.start_pos = type, value, start_pos

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"


class MathParseError(ValueError):
    """Raised when text is not a bounded math expression in the expected variable."""


class RejectedAnswer(MathParseError):
    """The text is math, but not an answer: it contains an integral (``\\int x\\,dx``, ``Integral(x, x)``).

    The verifier reports it as ``rejected`` rather than a parse error. Example:
        >>> try:
        ...     parse_math(r"\\int x\\,dx")
        ... except RejectedAnswer as err:
        ...     print(err)
        rejected: contains an integral
    """


# Canonical names of the functions in the intermediate form (``("fn", name, argument)``): the numeric
# evaluators and to_sympy implement exactly these. Li2 and Li3 are the polylogarithms of order 2 and 3.
FUNCTIONS = frozenset(
    {
        "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "asec", "acsc",
        "sinh", "cosh", "tanh", "coth", "sech", "csch", "asinh", "acosh", "atanh", "acoth", "asech", "acsch",
        "exp", "log", "erf", "erfc", "erfi", "Si", "Ci", "Shi", "Chi", "Ei", "li", "gamma", "zeta", "Li2", "Li3",
        "floor", "ceiling", "sign",
    }
)  # fmt: skip
# Functions with no elementary closed form: an integral whose antiderivative needs one (li for 1/log(x),
# erf for exp(-x**2)) is not an "easy" integral, however short it is.
SPECIAL_FUNCTIONS = frozenset(
    {"erf", "erfc", "erfi", "Si", "Ci", "Shi", "Chi", "Ei", "li", "gamma", "zeta", "Li2", "Li3"}
)
# Piecewise-constant functions: derivative 0 where they are continuous, exact on numbers.
STEP_FUNCTIONS = frozenset({"floor", "ceiling", "sign"})
# Other names models write for them
_ALIASES = {
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
    "ln": "log",  # natural log, as in sympy and in Integration Bee answer keys
    "abs": "Abs",
    "ceil": "ceiling",
    "sgn": "sign",
    "Gamma": "gamma",
}
# Names the compiler turns into other nodes: powers, |u|, polylogarithms of a given order (Li_2(x),
# polylog(2, x)) and exact numbers (binomial(2020, 1010): integers only)
_FORMS = frozenset({"sqrt", "cbrt", "Abs", "Li", "polylog", "binomial"})
# every function name the lexer knows
_FUNCTION_WORDS = frozenset(FUNCTIONS - {"Li2", "Li3"}) | _ALIASES.keys() | _FORMS
# f^{-1} means the inverse function for these (\sin^{-1} x, \tan^{-1} x), a power for everything else.
_INVERSES = {
    "sin": "asin",
    "cos": "acos",
    "tan": "atan",
    "cot": "acot",
    "sec": "asec",
    "csc": "acsc",
    "cosec": "acsc",
    "sinh": "asinh",
    "cosh": "acosh",
    "tanh": "atanh",
    "coth": "acoth",
    "sech": "asech",
    "csch": "acsch",
}
# constant names in text -> canonical names in the intermediate form
_CONSTANTS = {
    "pi": "pi",
    "e": "e",
    "E": "e",
    "oo": "oo",
    "G": "catalan",  # Catalan's constant, as Integration Bee answers write it
    "Catalan": "catalan",
    "EulerGamma": "eulergamma",  # also \gamma
}
CONSTANTS = frozenset(_CONSTANTS.values())
_RESERVED = set(_FUNCTION_WORDS) | set(_CONSTANTS) | {"C", "I"}

GRAMMAR = r"""
?start: sum

sum: _signed (ADDOP product)*
_signed: product | ADDOP product
// a product is a flat list: explicit operators, divisions and implicit multiplication (3x, x e^x, 2\sin x)
product: _factor (_mulpart)*
_mulpart: MULOP _ufactor | DIVOP _ufactor | _factor
_ufactor: _factor | signed
signed: ADDOP _ufactor
_factor: power | bare_call

?power: atom | atom POWOP exponent
?exponent: power | ADDOP exponent -> signed

?atom: "(" sum ")"
     | npatom
     | atom BANG -> factorial
// atoms that do not start with "(": only these may begin a bare function argument (\sin x vs \sin(x))
?npatom: NUMBER -> number
       | VAR -> var
       | CONST -> const
       | "[" sum "]"
       | "{" sum "}"
       | LABS sum RABS -> abs
       | FRAC atom atom -> frac
       | BINOM atom atom -> binom
       | SQRT "[" sum "]" atom -> root
       | SQRT atom -> sqrt
       | FUNC [sub] [fpow] "(" sum ("," sum)* ")" -> call

// LaTeX function application without parentheses: \sin x, \sin 2x, \ln|x|, \sin^2 x, \log_2 x
bare_call: FUNC [sub] [fpow] bare_arg
bare_arg: _bare_first _bare_next*
_bare_first: bare_first_power | bare_call
?bare_first_power: npatom | npatom POWOP exponent -> power
_bare_next: bare_power
?bare_power: bare_atom | bare_atom POWOP exponent -> power
?bare_atom: NUMBER -> number
          | VAR -> var
          | CONST -> const
          | "{" sum "}"
sub: "_" atom
fpow: POWOP exponent

ADDOP: "+" | "-"
MULOP: "*"
DIVOP: "/"
POWOP: "**" | "^"
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/
PIPE: "|"
BANG: "!"
%declare LABS RABS VAR CONST FUNC FRAC SQRT BINOM

%ignore /\s+/
%ignore /\\[,;:! ]/
%ignore /\\q?quad/
%ignore /\\displaystyle/
"""

_CONTROL_RE = re.compile(r"[^\x20-\x7e]")
_LINE_BREAK_RE = re.compile(r"[\n\r\t\f\v]+|\\\\(?![a-zA-Z])")  # also LaTeX's "\\" line break
_INTEGRAL_RE = re.compile(r"\\i*int(?![a-zA-Z])|\\oint|integral|integrate|∫", re.IGNORECASE)
_PLUS_C_RE = re.compile(
    r"\s*\+\s*(?:C|K|c|\\mathcal\{C\}|C_\{?\d+\}?|C_?\d+|const(?:ant)?|\\text\{\s*const(?:ant)?\.?\s*\}|"
    r"\\(?:mathrm|textrm|text)\{\s*C\s*\})\s*$"
)
_WRAPPER_RE = re.compile(r"\\(?:operatorname|mathrm|text|mathit|textrm)\s*\{\s*([A-Za-z]+)\s*\}")
_BOXED_RE = re.compile(r"\\boxed\s*\{(.*)\}", re.DOTALL)
_FRAC_DIGITS_RE = re.compile(r"(\\[dt]?frac)\s*(\d)\s*(\d)")
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+", strict=True))
_SUPERSCRIPT_RUN_RE = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00b7": "*",
    "\u22c5": "*",
    "\u00d7": "*",
    "\u03c0": "pi",
    "\u221e": "oo",
    "\u221a": "\\sqrt ",  # √x
    "\u221b": "\\sqrt[3] ",  # ∛x
    "\u221c": "\\sqrt[4] ",  # ∜x
    "\u2009": " ",
    "\u2248": "\\approx",
    "\u00a0": " ",
}
_DELIMITERS = ("$$", "$", "\\(", "\\)", "\\[", "\\]")
_LATEX_WORDS = {
    "\\left": "",
    "\\right": "",
    "\\bigl": "",
    "\\bigr": "",
    "\\Bigl": "",
    "\\Bigr": "",
    "\\big": "",
    "\\Big": "",
    "\\displaystyle": "",
    "\\textstyle": "",
    "\\infty": "oo",
    "\\pi": "pi",
    "\\gamma": "EulerGamma",
    "\\Gamma": "Gamma",
    "\\zeta": "zeta",
    "\\lvert": "\\lvert",
    "\\rvert": "\\rvert",
}

# LaTeX commands that are operators (lexed as names, then mapped to the grammar's terminals)
_LATEX_TOKENS = {
    "frac": ("FRAC", "frac"),
    "dfrac": ("FRAC", "frac"),
    "binom": ("BINOM", "binom"),
    "dbinom": ("BINOM", "binom"),
    "tbinom": ("BINOM", "binom"),
    "tfrac": ("FRAC", "frac"),
    "sqrt": ("SQRT", "sqrt"),
    "cdot": ("MULOP", "*"),
    "times": ("MULOP", "*"),
    "div": ("DIVOP", "/"),
}

# \lfloor u \rfloor is floor(u); \lceil u \rceil is ceiling(u)
_LATEX_BRACKETS = {"lfloor": ("floor", None), "rfloor": (None, ")"), "lceil": ("ceiling", None), "rceil": (None, ")")}


@lru_cache(maxsize=1)
def _lexer() -> Lark:
    # Lexer-only mode (built once): the scanner below takes its terminals. Names are lexed as one NAME
    # token and split into known names by the token pass, so the set of allowed names (which depends on
    # the variable) needs no grammar per variable. NAME and PIPE exist only before the token pass.
    return Lark(GRAMMAR + "\nNAME: /\\\\?[A-Za-z]+/\n", parser=None, lexer="basic")


def _normalise(text: str, variable: str) -> str:
    if not text.isascii():
        text = _SUPERSCRIPT_RUN_RE.sub(lambda m: "^{" + "".join(_SUPERSCRIPTS[c] for c in m.group()) + "}", text)
        for bad, good in _UNICODE.items():
            text = text.replace(bad, good)
    text = _LINE_BREAK_RE.sub(" ", text).strip()  # answers span lines: display math, "+ C" on its own line
    if _CONTROL_RE.search(text):
        raise MathParseError("control or non-ASCII characters")
    for delim in _DELIMITERS:
        text = text.replace(delim, " ")
    text = _WRAPPER_RE.sub(r"\1", text)
    # "\int x^2\,dx = \frac{x^3}{3} + C", "F(x) = ...", "= \frac13 \approx 0.333": the answer is the
    # right-hand side of the last "=", before any "\approx"
    text = text.rpartition("=")[2].partition("\\approx")[0]
    if _INTEGRAL_RE.search(text):
        raise RejectedAnswer("rejected: contains an integral")
    boxed = _BOXED_RE.fullmatch(text.strip())
    if boxed:
        text = boxed.group(1)
    text = text.replace("\\left|", "\\lvert ").replace("\\right|", "\\rvert ")
    text = text.replace("\\left.", "").replace("\\right.", "")
    text = _FRAC_DIGITS_RE.sub(r"\1{\2}{\3}", text)
    text = text.strip().rstrip(".,;").strip()
    if variable not in {"C", "K", "c"}:
        text = _PLUS_C_RE.sub("", text)
    return text


@lru_cache(maxsize=16)
def _known_names(variable: str) -> re.Pattern:
    # longest first, so "sinh" wins over "sin" and "exp" over "e"
    names = sorted({*_FUNCTION_WORDS, *_CONSTANTS, variable}, key=len, reverse=True)
    return re.compile("|".join(re.escape(n) for n in names))


def _split_name(name: str, variable: str, pos: Token) -> list[Token]:
    """Split a run of letters into known names, longest match first (``xsinx`` -> x sin x)."""
    tokens = []
    backslash = name.startswith("\\")
    body = name[1:] if backslash else name
    if backslash:
        command = "\\" + body
        if command in _LATEX_WORDS:
            word = _LATEX_WORDS[command]
            if word == "\\lvert":
                return [Token("LABS", "|", start_pos=pos.start_pos)]
            if word == "\\rvert":
                return [Token("RABS", "|", start_pos=pos.start_pos)]
            return [] if not word else _split_name(word, variable, pos)
        if body in _LATEX_TOKENS:
            kind, value = _LATEX_TOKENS[body]
            return [Token(kind, value, start_pos=pos.start_pos)]
        if body in _LATEX_BRACKETS:
            opener, _ = _LATEX_BRACKETS[body]
            if opener:
                return [Token("FUNC", opener, start_pos=pos.start_pos), Token("LPAR", "(", start_pos=pos.start_pos)]
            return [Token("RPAR", ")", start_pos=pos.start_pos)]
        if body in ("vert", "mid"):
            return [Token("PIPE", "|", start_pos=pos.start_pos)]
        if body in _FUNCTION_WORDS:
            return [Token("FUNC", body, start_pos=pos.start_pos)]
        if body in ("pi", "e"):
            return [Token("CONST", body, start_pos=pos.start_pos)]
        raise MathParseError(f"unknown LaTeX command '\\{body[:20]}'")
    known = _known_names(variable)
    i = 0
    while i < len(body):
        match = known.match(body, i)
        if match:
            word = match.group(0)
            kind = "VAR" if word == variable else "FUNC" if word in _FUNCTION_WORDS else "CONST"
            tokens.append(Token(kind, word, start_pos=pos.start_pos + i))
            i += len(word)
        else:
            bad = re.match(r"[A-Za-z]+", body[i:]).group(0)
            if bad in ("Integral", "integrate", "int"):
                raise RejectedAnswer("rejected: contains an integral")
            raise MathParseError(f"unknown symbol '{bad[:20]}' (only the variable '{variable}' is allowed)")
    return tokens


_OPENERS = {"LPAR", "LSQB", "LBRACE", "LABS"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE", "RABS"}
# after these, a '|' opens an absolute value; after anything else it may close one
_OPEN_CONTEXT = {"ADDOP", "MULOP", "DIVOP", "POWOP", "FUNC", "FRAC", "SQRT", "BINOM", "COMMA", "UNDERSCORE", *_OPENERS}


@lru_cache(maxsize=1)
def _scanner() -> tuple[re.Pattern, frozenset]:
    """One regex over lark's own terminals, in the order lark's basic lexer tries them.

    lark's lexer does the same alternation but builds richer tokens (line/column bookkeeping); this is
    the hot path of every answer, and the parser only needs each token's type and text.
    """
    lexer = _lexer()
    terminals = sorted(
        lexer.terminals, key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name)
    )
    pattern = re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals))
    return pattern, frozenset(lexer.ignore_tokens)


def _tokens(text: str, variable: str) -> list[Token]:
    """Lex ``text`` with the scanner, split names into known ones, resolve each '|' into an opening or
    a closing bar and bound the token count and the bracket nesting, in one pass."""
    pattern, ignore = _scanner()
    stack: list[str] = []
    resolved: list[Token] = []
    pos, error = 0, None
    for match in pattern.finditer(text):
        if match.start() != pos:  # finditer skipped something no terminal matches
            break
        pos = match.end()
        kind = match.lastgroup
        if kind in ignore or error:  # after an error, only look for a bad character (reported first)
            continue
        tok = Token(kind, match.group(), match.start())
        try:
            toks = _split_name(tok.value, variable, tok) if kind == "NAME" else (tok,)
        except MathParseError as err:
            error = err
            continue
        for tok in toks:
            kind = tok.type
            if kind == "PIPE":
                prev = resolved[-1].type if resolved else None
                closes = stack and stack[-1] == "LABS" and prev is not None and prev not in _OPEN_CONTEXT
                kind = "RABS" if closes else "LABS"
                tok = Token(kind, "|", start_pos=tok.start_pos)
            if kind in _OPENERS:
                stack.append(kind)
                if len(stack) > MAX_NESTING:
                    raise MathParseError(f"nested too deeply (more than {MAX_NESTING} brackets)")
            elif kind in _CLOSERS and stack:
                stack.pop()
            resolved.append(tok)
        if len(resolved) > MAX_TOKENS:
            raise MathParseError(f"too long (more than {MAX_TOKENS} tokens)")
    if pos != len(text):
        raise MathParseError(f"unexpected character {text[pos]!r} at {pos}")
    if error:
        raise error
    if not resolved:
        raise MathParseError("empty expression")
    return resolved


# ----------------------------------------------------------------------------- the intermediate form
# Expressions are tuples (cheap to build and compare; numeric.py evaluates them directly):
#   ("num", Fraction)  ("const", name)  ("var",)  ("add", [terms])  ("mul", [factors])  ("neg", a)
#   ("inv", a)  ("pow", base, exponent)  ("fn", name, a)  ("logb", a, base)  ("abs", a)
# with names from FUNCTIONS and CONSTANTS. Numbers are folded exactly as they are built, so each
# magnitude bound is checked on an actual value before anything larger is computed.

Node = tuple
VAR: Node = ("var",)
_HALF: Node = ("num", Fraction(1, 2))
_THIRD: Node = ("num", Fraction(1, 3))
_MINUS_ONE: Node = ("num", Fraction(-1))
_INFINITY: Node = ("const", "oo")
POLYLOG_ORDERS = (2, 3)  # Li_2 (dilogarithm) and Li_3: the orders Integration Bee answers use


def is_number(node: Node) -> bool:
    """Is ``node`` an exact number (``("num", Fraction)``)? Example: ``is_number(("num", Fraction(1, 2)))`` is True."""
    return node[0] == "num"


def _digits(q: Fraction) -> float:
    return max(math.log10(abs(q.numerator) + 1), math.log10(q.denominator + 1))


def _checked(q: Fraction, bounds: Bounds) -> Fraction:
    if _digits(q) > bounds.max_result_digits:
        raise MathParseError("number too large")
    return q


def _add(terms: list, bounds: Bounds) -> Node:
    total, rest = None, []
    for term in terms:
        if term[0] == "num":
            total = term[1] if total is None else total + term[1]
        else:
            rest.append(term)
    if total is not None:
        _checked(total, bounds)
        if not rest:
            return ("num", total)
        if total:
            rest.append(("num", total))
    return rest[0] if len(rest) == 1 else ("add", rest)


def _mul(factors: list, bounds: Bounds) -> Node:
    product, rest = None, []
    for factor in factors:
        if factor[0] == "num":
            product = factor[1] if product is None else _checked(product * factor[1], bounds)
        else:
            rest.append(factor)
    if product is not None:
        if not rest or (product == 0 and _INFINITY not in rest):  # 0*oo stays undefined
            return ("num", product)
        if product != 1:
            rest.append(("num", product))
    return rest[0] if len(rest) == 1 else ("mul", rest)


def _neg(a: Node) -> Node:
    return ("num", -a[1]) if a[0] == "num" else ("neg", a)


def _inv(a: Node) -> Node:
    if a[0] == "num":
        if a[1] == 0:
            raise MathParseError("not a finite expression")
        return ("num", 1 / a[1])
    return ("inv", a)


def _pow(base: Node, exponent: Node, bounds: Bounds) -> Node:
    if exponent[0] == "num":
        e = exponent[1]
        if abs(e) > bounds.max_exponent:
            raise MathParseError(f"exponent too large (|{e}| > {bounds.max_exponent})")
        if base[0] == "num":
            b = base[1]
            if _digits(b) * float(abs(e)) > bounds.max_result_digits:
                raise MathParseError("number too large")
            if e.denominator == 1:
                if b == 0 and e < 0:
                    raise MathParseError("not a finite expression")
                return ("num", b ** int(e))
    return ("pow", base, exponent)


def exact_factorial(n, bounds: Bounds = STRICT) -> int:
    """n! for a non-negative integer ``n`` whose factorial stays within the digit bound.

    Example: ``exact_factorial(5)`` is 120; ``exact_factorial(10**6)`` raises :class:`MathParseError`.
    """
    if n != int(n) or n < 0:
        raise MathParseError("factorial needs a non-negative integer")
    n = int(n)
    if math.lgamma(n + 1) / math.log(10) > bounds.max_result_digits:
        raise MathParseError("number too large")
    return math.factorial(n)


def exact_binomial(n, k, bounds: Bounds = STRICT) -> int:
    """C(n, k) for integers ``n >= 0`` and ``k`` whose value stays within the digit bound.

    Example: ``exact_binomial(4, 2)`` is 6; ``exact_binomial(10**5, 7)`` raises :class:`MathParseError`.
    """
    if n != int(n) or k != int(k) or n < 0:
        raise MathParseError("binomial coefficients need integer arguments")
    n, k = int(n), int(k)
    if n * math.log10(2) > bounds.max_result_digits:
        raise MathParseError("number too large")
    return math.comb(n, k) if 0 <= k <= n else 0


def _step_exact(name: str, q: Fraction) -> Fraction:
    if name == "floor":
        return Fraction(math.floor(q))
    if name == "ceiling":
        return Fraction(math.ceil(q))
    return Fraction((q > 0) - (q < 0))


class Compiler:
    """Reduces each rule of :data:`GRAMMAR` into the intermediate form, as :class:`Parser` parses it.

    The parser calls one method per rule with the children lark's LALR parser would give that rule
    (tokens included), already reduced; ``sub`` and ``fpow`` reduce to their expression. Every
    magnitude bound is checked here, on exact values, before anything larger is built.

    Example:
        >>> Parser(tokenize("x^2/2"), Compiler(STRICT)).parse()
        ('mul', [('pow', ('var',), ('num', Fraction(2, 1))), ('num', Fraction(1, 2))])
    """

    __slots__ = ("bounds",)

    def __init__(self, bounds: Bounds = STRICT):
        self.bounds = bounds

    def number(self, token: Token) -> Node:
        text = token.value
        mantissa, _, exponent = text.lower().partition("e")
        if len(mantissa.replace(".", "")) > MAX_NUMBER_DIGITS or len(exponent.lstrip("+-")) > 3:
            raise MathParseError(f"number literal longer than {MAX_NUMBER_DIGITS} digits")
        if exponent and abs(int(exponent)) > self.bounds.max_result_digits // 2:
            raise MathParseError("number too large")
        digits = mantissa.rstrip(".") or "0"
        value = Fraction(int(digits)) if digits.isdigit() else Fraction(digits)  # int: skips Fraction's regex
        return ("num", value * Fraction(10) ** int(exponent) if exponent else value)

    def var(self, token: Token) -> Node:
        return VAR

    def const(self, token: Token) -> Node:
        return ("const", _CONSTANTS[token.value])

    def sum(self, children: list) -> Node:
        if len(children) == 1:  # a lone term (every bracket is a sum): already built and bounded
            return children[0]
        terms, negate = [], False
        for child in children:
            if type(child) is Token:
                negate = child.value == "-"
            else:
                terms.append(_neg(child) if negate else child)
                negate = False
        return _add(terms, self.bounds)

    def product(self, children: list) -> Node:
        if len(children) == 1:
            return children[0]
        factors, invert = [], False
        for child in children:
            if type(child) is Token:
                invert = child.type == "DIVOP"
            else:
                factors.append(_inv(child) if invert else child)
                invert = False
        return _mul(factors, self.bounds)

    def signed(self, sign: Token, value: Node) -> Node:
        return _neg(value) if sign.value == "-" else value

    def power(self, base: Node, op: Token, exponent: Node) -> Node:
        return _pow(base, exponent, self.bounds)

    def factorial(self, value: Node, bang: Token) -> Node:
        if value[0] != "num":
            raise MathParseError("factorial needs a non-negative integer")
        return ("num", Fraction(exact_factorial(value[1], self.bounds)))

    def abs(self, bar: Token, value: Node, close: Token) -> Node:
        return ("num", abs(value[1])) if value[0] == "num" else ("abs", value)

    def frac(self, token: Token, numerator: Node, denominator: Node) -> Node:
        return _mul([numerator, _inv(denominator)], self.bounds)

    def binom(self, token: Token, n: Node, k: Node) -> Node:
        if n[0] != "num" or k[0] != "num":
            raise MathParseError("binomial coefficients need integer arguments")
        return ("num", Fraction(exact_binomial(n[1], k[1], self.bounds)))

    def sqrt(self, token: Token, value: Node) -> Node:
        return _pow(value, _HALF, self.bounds)

    def root(self, token: Token, index: Node, radicand: Node) -> Node:
        if not (index[0] == "num" and index[1].denominator == 1 and 2 <= index[1] <= self.bounds.max_exponent):
            raise MathParseError("root index must be an integer >= 2")
        return _pow(radicand, ("num", Fraction(1, int(index[1]))), self.bounds)

    def sub(self, value: Node) -> Node:
        return value

    def fpow(self, op: Token, exponent: Node) -> Node:
        return exponent

    def call(self, name: Token, sub: Node | None, fpow: Node | None, args: list) -> Node:
        return self._apply(name.value, sub, fpow, args)

    def bare_call(self, name: Token, sub: Node | None, fpow: Node | None, arg: Node) -> Node:
        return self._apply(name.value, sub, fpow, [arg])

    def bare_arg(self, children: list) -> Node:
        return children[0] if len(children) == 1 else _mul(children, self.bounds)

    def _apply(self, name: str, sub: Node | None, exponent: Node | None, args: list) -> Node:
        if exponent == _MINUS_ONE and name in _INVERSES:
            name, exponent = _INVERSES[name], None
        name = _ALIASES.get(name, name)
        if sub is not None:
            if name == "Li":
                args = [sub, *args]
            elif name == "log":
                args = [*args, sub]
            else:
                raise MathParseError(f"subscript on {name}")
        if len(args) == 2 and name == "log":
            value = ("logb", args[0], args[1])
        elif name == "Li" or name == "polylog":
            if len(args) != 2 or args[0][0] != "num":
                raise MathParseError("a polylogarithm needs its order: Li_2(x) or polylog(2, x)")
            if args[0][1] not in POLYLOG_ORDERS:
                raise MathParseError(f"only the polylogarithms of order {POLYLOG_ORDERS} are supported")
            value = ("fn", f"Li{int(args[0][1])}", args[1])
        elif name == "binomial":
            if len(args) != 2 or args[0][0] != "num" or args[1][0] != "num":
                raise MathParseError("binomial coefficients need integer arguments")
            value = ("num", Fraction(exact_binomial(args[0][1], args[1][1], self.bounds)))
        elif len(args) != 1:
            raise MathParseError(f"{name} takes one argument")
        elif name == "sqrt":
            value = _pow(args[0], _HALF, self.bounds)
        elif name == "cbrt":
            value = _pow(args[0], _THIRD, self.bounds)
        elif name == "Abs":
            value = ("abs", args[0])
        elif name in STEP_FUNCTIONS and args[0][0] == "num":
            value = ("num", _step_exact(name, args[0][1]))
        else:
            value = ("fn", name, args[0])
        return value if exponent is None else _pow(value, exponent, self.bounds)


# ----------------------------------------------------------------------------- the parser
# A hand-written recursive-descent parser for GRAMMAR: for each rule it calls the builder's method of
# that name with the children lark's LALR parser (maybe_placeholders, anonymous tokens filtered, ``?``
# rules inlined) would give, and it resolves the grammar's shift/reduce conflicts the way lark does
# (shift: the longest bare argument, ``\sqrt[n]{x}`` as a root). It replaced lark's generic LALR
# driver, the largest cost of judging an answer (compiling an answer got about 2x faster); tests check
# it against lark on the grammar itself, with a builder that makes lark's trees.

_ATOM_START = frozenset({"LPAR", "NUMBER", "VAR", "CONST", "LSQB", "LBRACE", "LABS", "FRAC", "SQRT", "BINOM", "FUNC"})
_BARE_ATOM_START = frozenset({"NUMBER", "VAR", "CONST", "LBRACE"})
_CLOSING = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}


class Parser:
    """One parse of one token list into whatever ``builder`` makes of each rule (usually a :class:`Compiler`).

    The builder has one method per rule: ``number``/``var``/``const(token)``, ``sum``/``product``/
    ``bare_arg(children)``, ``signed(sign, value)``, ``power(base, op, exponent)``,
    ``factorial(value, bang)``, ``abs(bar, value, bar)``, ``frac``/``binom(token, a, b)``,
    ``sqrt(token, value)``, ``root(token, index, radicand)``, ``sub(value)``, ``fpow(op, exponent)``,
    ``call(name, sub, fpow, args)`` and ``bare_call(name, sub, fpow, arg)``. Its recursion is bounded by
    :data:`MAX_TREE_DEPTH`, so deep input is a :class:`MathParseError`, never a ``RecursionError``.

    Example:
        >>> Parser(tokenize("2x"), Compiler()).parse()
        ('mul', [('var',), ('num', Fraction(2, 1))])
    """

    __slots__ = ("builder", "depth", "pos", "tokens", "types")

    def __init__(self, tokens: list[Token], builder):
        self.tokens = tokens
        self.types = [t.type for t in tokens] + ["$END"]
        self.pos = 0
        self.builder = builder
        self.depth = 0

    def parse(self):
        value = self.sum()
        if self.pos != len(self.tokens):
            self.fail()
        return value

    def fail(self):
        where = f" near {str(self.tokens[self.pos])[:20]!r}" if self.pos < len(self.tokens) else ""
        raise MathParseError(f"syntax error{where}")

    def take(self, kind: str) -> Token:
        if self.types[self.pos] != kind:
            self.fail()
        self.pos += 1
        return self.tokens[self.pos - 1]

    def enter(self) -> None:
        # every level counted here is a node of the tree, so this bounds the recursion by the tree depth
        self.depth += 1
        if self.depth > MAX_TREE_DEPTH:
            raise MathParseError(f"nested too deeply (parse tree deeper than {MAX_TREE_DEPTH})")

    def sum(self):
        self.enter()
        children = []
        if self.types[self.pos] == "ADDOP":
            children.append(self.tokens[self.pos])
            self.pos += 1
        children.append(self.product())
        while self.types[self.pos] == "ADDOP":
            children.append(self.tokens[self.pos])
            self.pos += 1
            children.append(self.product())
        self.depth -= 1
        return self.builder.sum(children)

    def product(self):
        children = [self.factor()]
        while True:
            kind = self.types[self.pos]
            if kind == "MULOP" or kind == "DIVOP":
                children.append(self.tokens[self.pos])
                self.pos += 1
                children.append(self.ufactor())
            elif kind in _ATOM_START:
                children.append(self.factor())
            else:
                return self.builder.product(children)

    def ufactor(self):
        if self.types[self.pos] != "ADDOP":
            return self.factor()
        self.enter()
        sign = self.tokens[self.pos]
        self.pos += 1
        value = self.builder.signed(sign, self.ufactor())
        self.depth -= 1
        return value

    def factor(self, bare: bool = False):
        if self.types[self.pos] == "FUNC":
            name, sub, fpow = self.function_head()
            if self.types[self.pos] != "LPAR":
                return self.builder.bare_call(name, sub, fpow, self.bare_arg())
            return self.power_tail(self.call(name, sub, fpow))
        return self.power_tail(self.atom(bare))

    def power_tail(self, base):
        if self.types[self.pos] != "POWOP":
            return base
        op = self.tokens[self.pos]
        self.pos += 1
        return self.builder.power(base, op, self.exponent())

    def exponent(self):
        self.enter()
        if self.types[self.pos] == "ADDOP":
            sign = self.tokens[self.pos]
            self.pos += 1
            value = self.builder.signed(sign, self.exponent())
        else:
            value = self.power_tail(self.atom())
        self.depth -= 1
        return value

    def function_head(self) -> tuple:
        name = self.take("FUNC")
        sub = fpow = None
        if self.types[self.pos] == "UNDERSCORE":
            self.enter()
            self.pos += 1
            sub = self.builder.sub(self.atom())
            self.depth -= 1
        if self.types[self.pos] == "POWOP":
            op = self.tokens[self.pos]
            self.pos += 1
            fpow = self.builder.fpow(op, self.exponent())
        return name, sub, fpow

    def call(self, name: Token, sub, fpow):
        self.take("LPAR")
        args = [self.sum()]
        while self.types[self.pos] == "COMMA":
            self.pos += 1
            args.append(self.sum())
        self.take("RPAR")
        return self.builder.call(name, sub, fpow, args)

    def atom(self, bare: bool = False):
        kind = self.types[self.pos]
        value = self.group("LPAR") if kind == "LPAR" else self.npatom()
        # postfix "!" (atom BANG); never on a bare function argument's first factor, which the grammar
        # reaches through npatom, not atom
        chain = 0
        while not bare and self.types[self.pos] == "BANG":
            chain += 1
            self.enter()  # n!!! nests: each "!" is a level of the tree
            value = self.builder.factorial(value, self.tokens[self.pos])
            self.pos += 1
        self.depth -= chain
        return value

    def group(self, opener: str):
        self.take(opener)
        value = self.sum()
        self.take(_CLOSING[opener])
        return value

    def npatom(self):
        kind = self.types[self.pos]
        if kind == "VAR":
            self.pos += 1
            return self.builder.var(self.tokens[self.pos - 1])
        if kind == "NUMBER":
            self.pos += 1
            return self.builder.number(self.tokens[self.pos - 1])
        if kind == "CONST":
            self.pos += 1
            return self.builder.const(self.tokens[self.pos - 1])
        if kind == "LSQB" or kind == "LBRACE":
            return self.group(kind)
        if kind == "LABS":
            bar = self.tokens[self.pos]
            self.pos += 1
            value = self.sum()
            return self.builder.abs(bar, value, self.take("RABS"))
        if kind == "FRAC" or kind == "SQRT" or kind == "BINOM":
            token = self.tokens[self.pos]
            self.enter()
            self.pos += 1
            if kind == "SQRT":
                value = self.radical(token)
            elif kind == "FRAC":
                value = self.builder.frac(token, self.atom(), self.atom())
            else:
                value = self.builder.binom(token, self.atom(), self.atom())
            self.depth -= 1
            return value
        if kind == "FUNC":
            return self.call(*self.function_head())
        self.fail()

    def radical(self, token: Token):
        if self.types[self.pos] != "LSQB":
            return self.builder.sqrt(token, self.atom())
        index = self.group("LSQB")
        if self.types[self.pos] in _ATOM_START:  # \sqrt[n]{x}: lark shifts into the root
            return self.builder.root(token, index, self.atom())
        return self.builder.sqrt(token, index)

    def bare_arg(self):
        self.enter()
        if self.types[self.pos] == "LPAR":  # \sin(x) is a call, never a bare argument
            self.fail()
        children = [self.factor(bare=True)]  # the grammar's first bare factor: a factor without "(" or "!"
        while self.types[self.pos] in _BARE_ATOM_START:
            children.append(self.power_tail(self.npatom()))
        self.depth -= 1
        return self.builder.bare_arg(children)


# ----------------------------------------------------------------------------- public entry points


def tokenize(text: str, variable: str = "x") -> list[Token]:
    """Bound, normalise and lex ``text`` into the grammar's tokens (names split into known ones).

    Raises:
        ValueError: ``variable`` is not a plain name (``x``, ``t``) distinct from every known name.
        MathParseError: empty, too long, unknown names or characters, too many tokens or brackets;
            :class:`RejectedAnswer` for an integral.

    Example:
        >>> [t.value for t in tokenize(r"3\\sin x")]
        ['3', 'sin', 'x']
    """
    if not isinstance(text, str):
        raise MathParseError("expected a string")
    if not isinstance(variable, str) or not re.fullmatch(r"[A-Za-z]{1,8}", variable) or variable in _RESERVED:
        raise ValueError(f"invalid variable name {variable!r}")
    if len(text) > 4 * MAX_LENGTH:  # before any regex work
        raise MathParseError(f"too long ({len(text)} characters)")
    text = _normalise(text, variable)
    if not text:
        raise MathParseError("empty expression")
    if len(text) > MAX_LENGTH:
        raise MathParseError(f"too long ({len(text)} > {MAX_LENGTH} characters)")
    return _tokens(text, variable)


class Expression(NamedTuple):
    """The intermediate form of one text: its root ``node`` and all its sub-expressions (``nodes``, root first)."""

    node: Node
    nodes: list


def survey(node: Node) -> tuple[int, list]:
    """The expression's depth and all its sub-expressions, in one iterative walk.

    Example: ``survey(("neg", ("var",)))`` is ``(2, [("neg", ("var",)), ("var",)])``.
    """
    deepest, nodes, stack = 0, [], [(node, 1)]
    while stack:
        n, depth = stack.pop()
        nodes.append(n)
        if depth > deepest:
            deepest = depth
        for child in n[1:]:
            if type(child) is tuple:
                stack.append((child, depth + 1))
            elif type(child) is list:
                stack.extend((c, depth + 1) for c in child)
    return deepest, nodes


@cache
def _compiler(trusted: bool) -> Compiler:
    return Compiler(TRUSTED if trusted else STRICT)


def parse_expression(text: str, variable: str = "x", *, trusted: bool = False) -> Expression:
    """Parse ``text`` into the intermediate form, with every bound checked (the one parse behind
    :func:`parse_math` and :func:`ladder_hf.verifier.compile_math`).

    ``trusted=True`` relaxes the magnitude bounds for integrands from our own data; never for model output.

    Raises:
        MathParseError: see :func:`parse_math`.

    Example:
        >>> parse_expression(r"\\sin^{-1} x").node
        ('fn', 'asin', ('var',))
    """
    tokens = tokenize(text, variable)
    try:
        node = Parser(tokens, _compiler(trusted)).parse()
    except MathParseError:
        raise
    except RecursionError:  # a backstop: the parser bounds its own depth well below the stack limit
        raise MathParseError(f"nested too deeply (parse tree deeper than {MAX_TREE_DEPTH})") from None
    except (OverflowError, ZeroDivisionError, TypeError, ValueError) as err:
        raise MathParseError(f"could not build expression: {type(err).__name__}") from None
    depth, nodes = survey(node)
    if depth > MAX_TREE_DEPTH:
        raise MathParseError(f"nested too deeply (expression deeper than {MAX_TREE_DEPTH})")
    return Expression(node, nodes)


# sympy's function of each canonical name (they are sympy's own names), and the constants
_SYMPY_FUNCTIONS = {name: getattr(sympy, name) for name in FUNCTIONS - {"Li2", "Li3"}}
_SYMPY_CONSTANTS = {
    "pi": sympy.pi,
    "e": sympy.E,
    "oo": sympy.oo,
    "catalan": sympy.Catalan,
    "eulergamma": sympy.EulerGamma,
}


def special_functions(text: str, variable: str = "x") -> frozenset[str]:
    """The :data:`SPECIAL_FUNCTIONS` that ``text`` calls (parsed with the trusted bounds: for our own strings,
    e.g. sympy's antiderivatives; raises :class:`MathParseError` like :func:`parse_expression`).

    Example:
        >>> sorted(special_functions("x*li(x) - Ei(2*log(x))")), special_functions("x*log(x) - x")
        (['Ei', 'li'], frozenset())
    """
    _, nodes = survey(parse_expression(text, variable, trusted=True).node)
    return frozenset(n[1] for n in nodes if n[0] == "fn" and n[1] in SPECIAL_FUNCTIONS)


def _sympy_digits(n: sympy.Rational) -> float:
    return max(math.log10(abs(int(n.p)) + 1), math.log10(abs(int(n.q)) + 1))


def _sympy_checked(value: sympy.Expr, bounds: Bounds) -> sympy.Expr:
    if value.is_Rational and _sympy_digits(value) > bounds.max_result_digits:
        raise MathParseError("number too large")
    return value


def _sympy_power(base: sympy.Expr, exponent: sympy.Expr, bounds: Bounds) -> sympy.Expr:
    # sympy evaluates some parts the compiler keeps symbolic (sqrt(4), floor(pi), gamma(5)) to numbers, so
    # the bounds are checked again on what sympy made of them, before sympy computes the power
    if exponent.is_Number:
        if not exponent.is_Rational:
            raise MathParseError("non-rational numeric exponent")
        if abs(exponent) > bounds.max_exponent:
            raise MathParseError(f"exponent too large (|{exponent}| > {bounds.max_exponent})")
        if base.is_Rational and _sympy_digits(base) * float(abs(exponent)) > bounds.max_result_digits:
            raise MathParseError("number too large")
    return sympy.Pow(base, exponent)


def to_sympy(node: Node, symbol: sympy.Symbol, bounds: Bounds = STRICT) -> sympy.Expr:
    """The sympy expression of an intermediate-form ``node``.

    sympy evaluates as it builds, and it folds more than the compiler does (``sqrt(4)`` is 2), so the
    magnitude bounds are checked again on sympy's values before each power or product is built. The
    node's depth (bounded by :func:`parse_expression`) bounds this recursion.

    Example:
        >>> to_sympy(parse_expression("x^2/2").node, sympy.Symbol("x"))
        x**2/2
    """
    kind = node[0]
    if kind == "var":
        return symbol
    if kind == "num":
        return sympy.Rational(node[1].numerator, node[1].denominator)
    if kind == "const":
        return _SYMPY_CONSTANTS[node[1]]
    if kind == "add":
        return _sympy_checked(sympy.Add(*[to_sympy(term, symbol, bounds) for term in node[1]]), bounds)
    if kind == "mul":
        return _sympy_checked(sympy.Mul(*[to_sympy(factor, symbol, bounds) for factor in node[1]]), bounds)
    if kind == "neg":
        return -to_sympy(node[1], symbol, bounds)
    if kind == "inv":
        return _sympy_power(to_sympy(node[1], symbol, bounds), sympy.Integer(-1), bounds)
    if kind == "pow":
        return _sympy_power(to_sympy(node[1], symbol, bounds), to_sympy(node[2], symbol, bounds), bounds)
    if kind == "abs":
        return sympy.Abs(to_sympy(node[1], symbol, bounds))
    if kind == "logb":
        return sympy.log(to_sympy(node[1], symbol, bounds), to_sympy(node[2], symbol, bounds))
    name, argument = node[1], to_sympy(node[2], symbol, bounds)
    if name == "Li2" or name == "Li3":
        return sympy.polylog(int(name[2]), argument)
    return _SYMPY_FUNCTIONS[name](argument)


def parse_math(text: str, variable: str = "x", *, trusted: bool = False) -> sympy.Expr:
    """Parse sympy syntax or common LaTeX into a sympy expression, safely and within bounds.

    Only the given variable, the constants ``pi``/``e``/``E``/``oo`` and a fixed set of elementary and
    special functions are allowed. A trailing ``+ C`` is dropped. ``log``/``\\ln``/``\\log`` are the
    natural logarithm. The result uses a plain ``sympy.Symbol(variable)``. ``trusted=True`` relaxes the
    exponent bound (|n| <= 10000) for integrands that come from our own data; never use it on model output.

    Raises:
        MathParseError: empty, too long or too deep input, unknown names or symbols, malformed syntax, or
            numbers beyond the bounds (e.g. ``10**10**10``); :class:`RejectedAnswer` for an integral.

    Example:
        >>> parse_math("3x^2 e^{x}")
        3*x**2*exp(x)
        >>> parse_math(r"\\tan^{-1}(x) + \\sqrt[3]{x}")
        x**(1/3) + atan(x)
    """
    node = parse_expression(text, variable, trusted=trusted).node
    try:
        expr = to_sympy(node, sympy.Symbol(variable), TRUSTED if trusted else STRICT)
    except MathParseError:  # a bound, checked again on sympy's values
        raise
    except (RecursionError, MemoryError, OverflowError, ZeroDivisionError, TypeError, ValueError) as err:
        raise MathParseError(f"could not build expression: {type(err).__name__}") from None
    if not isinstance(expr, sympy.Expr) or expr.has(sympy.nan, sympy.zoo):
        raise MathParseError("not a finite expression")
    return expr
