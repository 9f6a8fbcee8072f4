"""What every variant generator returns, before quality control."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
