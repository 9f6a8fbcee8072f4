"""What every variant generator returns, before quality control."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

import sympy


@dataclass
class Candidate:
    """A proposed variant of one parent problem.

    ``expr`` is a sympy expression that came either from a sympy mutation (symbolic generator) or
    from :func:`ladder_hf.verifier.parse_math` (model output); ``None`` means the text did not
    parse and ``parse_error`` says why. ``raw`` keeps the text as written, for audits.
    """

    parent_id: str
    raw: str
    expr: Any = None
    kind: str = "easier"
    transformations: list[str] = field(default_factory=list)
    persona: str = ""
    temperature: float | None = None
    generator: str = ""
    parse_error: str = ""

    @property
    def parsed(self) -> bool:
        return self.expr is not None


class VariantGenerator(Protocol):
    """Anything with a ``name`` (stored in each node's ``generator`` column) and ``propose``."""

    name: str

    def propose(self, parents: list[dict], num_variants: int) -> list[list[Candidate]]:
        """Up to ``num_variants`` candidates for each parent row (same order as ``parents``)."""
        ...


X_NAME = "x"


def parse_integrand(text: str, variable: str = X_NAME):
    """Text -> sympy expression, only ever through the verifier's bounded grammar.

    Used for model output, user input and stored node integrands alike, so nothing that came
    from outside reaches ``sympify``.
    """
    from ladder_hf.verifier import parse_math

    return parse_math(str(text), variable)


@functools.cache
def _bundled_integrands() -> frozenset[str]:
    from ladder_hf.problems import bundled_integrands

    return bundled_integrands()


def parse_problem_integrand(text: str, variable: str = X_NAME):
    """Like :func:`parse_integrand`, but trusts the integrands of the bundled problem sets.

    The safe grammar bounds sizes and magnitudes, and a few Integration Bee problems exceed them
    (exponents such as 2024). Those strings ship with the package, written by us, not by a
    model, so when the grammar refuses one *and* it is exactly a bundled integrand, sympy parses it.
    Anything else still raises :class:`~ladder_hf.verifier.MathParseError`.
    """
    try:
        return parse_integrand(text, variable)
    except ValueError:
        if str(text) not in _bundled_integrands():
            raise
    from sympy.parsing.sympy_parser import parse_expr

    return parse_expr(str(text), local_dict={variable: sympy.Symbol(variable)})
