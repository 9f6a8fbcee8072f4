"""The language a model-written variant must be written in, as a decoding constraint.

The verifier's grammar (:data:`ladder_hf.verifier.parsing.GRAMMAR`) accepts sympy syntax *and* the
LaTeX models write, and resolves names and ``|x|`` bars in a hand-written token pass (its ``VAR``,
``FUNC``, ``CONST`` terminals are ``%declare``-d, with no pattern). That is the right judge of
hostile text, but not a generation grammar: a decoder needs every terminal spelled out, and a
generation grammar should be small and bounded. So this module writes the **sympy-syntax subset**
of that language, bounded, and checks it against the verifier:

* one to ``max_variants`` lines ``<variant>EXPR</variant>`` (what
  :func:`~ladder_hf.variants.generators.extract_variants` reads), then end of text;
* ``EXPR``: sums and products of powers of ``x``, integers of at most ``max_digits`` digits, ``pi``,
  ``E``, and calls of the verifier's elementary functions (``sin(...)``, ``sqrt(...)``, ...), with
  ``max_terms`` terms per sum, ``max_factors`` factors per product, ``max_depth`` levels of
  brackets and calls, and small exponents (``**2``, ``**(1/2)``, ``**(-1)``): a finite language,
  so numbers stay far below the verifier's magnitude bounds;
* the function names are the ones the verifier parses (each is checked with
  :func:`~ladder_hf.variants.base.parse_integrand` when the grammar is built).

The grammar is syntax only: a string that folds to a non-finite number, e.g. ``(1 - 1)**(-1)`` or
``x/(2 - 2)``, is refused by the verifier ("not a finite expression") and counted as unparsable;
so is the rare maximal string over the verifier's 400-token bound (the grammar is finite, but its
longest strings are long).
``tests/test_constrained.py`` samples the grammar at random and checks that everything else parses.

The grammar is rendered in two notations from one
definition: Lark (llguidance, vLLM ``structured_outputs.grammar``) and GBNF/EBNF (xgrammar, SGLang's
``ebnf``). Both use only quoted literals, rule references, ``|``, ``( )`` and ``?``, the subset every
engine reads the same way.

Example:
    >>> g = variant_grammar(max_variants=2)
    >>> g.splitlines()[:2]
    ['start: START', 'START: VARIANT ("\\\\n" VARIANT)?']
    >>> variant_grammar(max_variants=1, notation="gbnf").splitlines()[0]
    'root ::= variant'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

# Elementary functions a variant of an undergraduate or Integration Bee integrand uses. Names the
# verifier does not parse are dropped when the grammar is built (see _accepted_functions).
DEFAULT_FUNCTIONS = (
    "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "exp", "log", "sqrt",
)  # fmt: skip
CONSTANTS = ("pi", "E")
# Exponents a generated power may carry: one digit, or a bracketed negative/fractional one. Small on
# purpose: with max_digits=2 and max_depth=3 no folded number comes near the verifier's digit bound.
_EXPONENTS = ("digit", '"(" "-" nzdigit ")"', '"(" digit "/" nzdigit ")"', '"(" "-" digit "/" nzdigit ")"')
NOTATIONS = ("lark", "gbnf")


@functools.cache
def _accepted_functions(names: tuple[str, ...]) -> tuple[str, ...]:
    from ladder_hf.variants.base import parse_integrand

    accepted = []
    for name in names:
        try:
            parse_integrand(f"{name}(x)")
        except ValueError:
            continue
        accepted.append(name)
    return tuple(accepted)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _chain(first: str, then: str, count: int) -> str:
    """``first (then (then)?)?`` with ``count`` parts at most: bounded repetition in plain EBNF."""
    tail = ""
    for _ in range(count - 1):
        tail = f"({then}{(' ' + tail) if tail else ''})?"
    return f"{first} {tail}".strip()


def variant_rules(
    max_variants: int = 5,
    *,
    max_depth: int = 2,
    max_terms: int = 3,
    max_factors: int = 3,
    max_digits: int = 2,
    functions: Sequence[str] = DEFAULT_FUNCTIONS,
) -> dict[str, list[str]]:
    """The grammar as ``{rule: [alternative, ...]}`` (first rule is the start rule), notation-neutral.

    Example:
        >>> variant_rules(1)["variant"]
        ['"<variant>" sum0 "</variant>"']
    """
    if min(max_variants, max_depth, max_terms, max_factors, max_digits) < 1:
        raise ValueError("grammar bounds must be >= 1")
    names = _accepted_functions(tuple(functions))
    if not names:
        raise ValueError(f"none of the functions {list(functions)} is accepted by the verifier")
    rules: dict[str, list[str]] = {
        "start": [_chain("variant", '"\\n" variant', max_variants)],
        "variant": ['"<variant>" sum0 "</variant>"'],
    }
    for d in range(max_depth + 1):
        inner = d < max_depth  # brackets and calls open the next level; the deepest level has none
        rules[f"sum{d}"] = [f'"-"? {_chain(f"term{d}", f"addop term{d}", max_terms)}']
        rules[f"term{d}"] = [_chain(f"power{d}", f"mulpart{d}", max_factors)]
        # no literal division by zero ("x/0" is not finite; "x/(x - x)" stays possible, and rare)
        rules[f"mulpart{d}"] = [f'"*" power{d}', f'"/" base{d} ("**" exponent)?', '"/" num']
        # numbers are not raised to powers (2**99 would be folded into a 30-digit number)
        rules[f"power{d}"] = [f'base{d} ("**" exponent)?', "num"]
        base = ['"x"', *(_quote(c) for c in CONSTANTS)]
        if inner:
            base += [f'"(" sum{d + 1} ")"', f'fn "(" sum{d + 1} ")"']
        rules[f"base{d}"] = base
    rules["fn"] = [_quote(n) for n in names]
    rules["exponent"] = list(_EXPONENTS)
    # no literal 0 (a term 0 is useless, and (0)**(-1) is not finite): 1 to 99 with max_digits=2
    rules["num"] = [_chain("nzdigit", "digit", max_digits)]
    rules["digit"] = ['"0"', "nzdigit"]
    rules["nzdigit"] = [_quote(str(i)) for i in range(1, 10)]
    rules["addop"] = ['" + "', '" - "', '"+"', '"-"']
    return rules


_NAME = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z][A-Za-z0-9]*')


def _rename(body: str, names: dict[str, str]) -> str:
    return _NAME.sub(lambda m: names.get(m.group(0), m.group(0)), body)


def render(rules: dict[str, list[str]], notation: str = "lark") -> str:
    """Write rules from :func:`variant_rules` as a Lark grammar or as GBNF (xgrammar's and llama.cpp's
    EBNF, start rule ``root``).

    In Lark every rule but ``start`` becomes a *terminal* (upper case): the language is finite, so the
    whole text is one regular lexeme and llguidance computes token masks with its lexer alone. With
    lower-case rules its Earley parser runs at every character, about 9x slower per token on
    SmolLM2's tokenizer (8 ms vs 0.9 ms per row and step, 2-core CPU).
    """
    if notation not in NOTATIONS:
        raise ValueError(f"unknown notation {notation!r}; choose from {', '.join(NOTATIONS)}")
    start = next(iter(rules))
    if notation == "lark":
        names = {name: name.upper() for name in rules}
        lines = [f"start: {names[start]}"]
        lines += [f"{names[name]}: {_rename(' | '.join(alts), names)}" for name, alts in rules.items()]
    else:
        names = {name: "root" if name == start else name.lower() for name in rules}
        lines = [f"{names[name]} ::= {_rename(' | '.join(alts), names)}" for name, alts in rules.items()]
    return "\n".join(lines) + "\n"


def variant_grammar(max_variants: int = 5, *, notation: str = "lark", **bounds) -> str:
    """The variant-output grammar: up to ``max_variants`` lines ``<variant>EXPR</variant>``.

    ``bounds`` go to :func:`variant_rules` (``max_depth``, ``max_terms``, ``max_factors``,
    ``max_digits``, ``functions``).

    Example:
        >>> variant_grammar(3).splitlines()[2]
        'VARIANT: "<variant>" SUM0 "</variant>"'
    """
    return render(variant_rules(max_variants, **bounds), notation)


def lark_to_gbnf(grammar: str) -> str:
    """A Lark grammar written by :func:`render` in GBNF (for servers that take ``ebnf``, e.g. SGLang).

    Only the notation-neutral subset :func:`render` writes is supported: ``name: body`` lines whose
    bodies use quoted literals, rule and terminal names, ``|``, ``( )`` and ``?``.

    Example:
        >>> lark_to_gbnf('start: A\\nA: "a" B?\\nB: "c"\\n')
        'root ::= a\\na ::= "a" b?\\nb ::= "c"\\n'
    """
    rules: dict[str, list[str]] = {}
    for line in grammar.splitlines():
        if not line.strip():
            continue
        name, sep, body = line.partition(": ")
        if not sep or not name.isidentifier():
            raise ValueError(f"not a rule written by ladder_hf.variants.grammar.render: {line[:80]!r}")
        rules[name] = [body]
    return render(rules, "gbnf")
