"""The transformation library and personas used to prompt a model for variants.

LADDER (Simonds and Yoshiyama, arXiv 2503.00735) found that a bare "write an easier integral"
prompt gives near-identical variants, so each prompt carries 3-6 transformations sampled from a
library marked easier / equivalent / harder, plus a persona. The entries below are our own
wording, written in the spirit of the paper's examples (lower an exponent, drop a term, replace a
nested function by its argument, split a fraction, remove a radical, ...); none is copied.

Example:
    >>> import random
    >>> picks = sample_transformations(random.Random(0), "easier", 3)
    >>> len(picks), {t.kind for t in picks}
    (3, {'easier'})
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("easier", "equivalent", "harder")


@dataclass(frozen=True)
class Transformation:
    """One suggestion shown to the generating model."""

    name: str
    kind: str  # "easier" | "equivalent" | "harder"
    description: str


def _t(kind: str, name: str, description: str) -> Transformation:
    return Transformation(name=name, kind=kind, description=description)


TRANSFORMATIONS: tuple[Transformation, ...] = (
    # --- easier -------------------------------------------------------------------------------
    _t("easier", "lower_exponent", "Reduce a power by one or two (x**5 becomes x**3, sin(x)**4 becomes sin(x)**2)."),
    _t("easier", "drop_term", "Delete one term of a sum, keeping the rest of the integrand."),
    _t("easier", "drop_factor", "Delete one factor of a product that makes the integral harder."),
    _t("easier", "unwrap_function", "Replace a nested function by its inner argument (sin(x**2) becomes x**2)."),
    _t("easier", "linear_argument", "Make the argument of a function linear (exp(x**2) becomes exp(2*x))."),
    _t("easier", "unit_coefficients", "Set awkward coefficients to 1 (3*x**2 + 7 becomes x**2 + 1)."),
    _t("easier", "integer_exponent", "Turn a fractional power into a whole-number power (x**(3/2) becomes x**2)."),
    _t("easier", "remove_radical", "Remove a square root, integrating the expression under it instead."),
    _t("easier", "split_fraction", "Split a fraction over a sum into separate simpler fractions and keep one."),
    _t("easier", "partial_fraction_piece", "Keep only one partial-fraction piece of a rational function."),
    _t("easier", "simpler_denominator", "Replace a complicated denominator by a linear one (x**2+2*x+5 becomes x+1)."),
    _t("easier", "remove_denominator", "Drop the denominator entirely and integrate the numerator."),
    _t("easier", "constant_in_place_of_function", "Replace one function factor by a constant."),
    _t("easier", "lower_degree_polynomial", "Lower the degree of a polynomial factor."),
    _t("easier", "single_trig_function", "Use a single trigonometric function instead of a product of several."),
    _t("easier", "trig_to_exponential_free", "Remove the exponential factor from a product like exp(x)*sin(x)."),
    _t("easier", "drop_log", "Replace log(x) by x or remove the logarithm factor."),
    _t("easier", "standard_form", "Rewrite the problem into a table integral (1/(1+x**2), exp(x), cos(x))."),
    _t("easier", "first_step_only", "Keep only what remains after the first substitution step."),
    _t("easier", "remove_inverse_trig", "Replace atan, asin or acos by its argument."),
    _t("easier", "remove_hyperbolic", "Replace sinh/cosh by exp of the same argument."),
    _t("easier", "fewer_nested_levels", "Remove one level of nesting of functions."),
    _t("easier", "drop_constant_shift", "Remove a constant added inside a function (sqrt(x+4) becomes sqrt(x))."),
    _t("easier", "square_instead_of_power", "Use a square instead of a higher power in a denominator."),
    _t("easier", "substitution_ready", "Make the integrand of the form f(g(x))*g'(x) with an obvious g."),
    _t("easier", "one_by_parts_step", "Make it need a single integration by parts instead of several."),
    _t("easier", "polynomial_only", "Keep only the polynomial part of the integrand."),
    _t("easier", "smaller_numbers", "Replace large numbers by small ones (17 becomes 2)."),
    _t("easier", "remove_absolute_value", "Drop an absolute value or a sign function."),
    _t("easier", "monomial_numerator", "Replace a polynomial numerator by a single monomial."),
    # --- equivalent ---------------------------------------------------------------------------
    _t("equivalent", "change_coefficients", "Change the numeric coefficients to other small numbers."),
    _t("equivalent", "swap_sin_cos", "Swap sin and cos (or sinh and cosh)."),
    _t("equivalent", "shift_variable", "Replace x by x + 1 (or x - 2) throughout."),
    _t("equivalent", "scale_variable", "Replace x by 2*x (or x/3) throughout."),
    _t("equivalent", "reflect_variable", "Replace x by -x throughout."),
    _t("equivalent", "change_exponent_same_type", "Change an exponent to another of the same kind (x**3 to x**5)."),
    _t("equivalent", "other_base", "Use exp(-x) instead of exp(x), or 2**x instead of exp(x)."),
    _t("equivalent", "sign_flip", "Flip the sign of one term."),
    _t(
        "equivalent",
        "same_technique_other_function",
        "Keep the technique (by parts, substitution) but change the function.",
    ),
    _t("equivalent", "reorder_factors", "Pair a different polynomial with the same transcendental function."),
    _t("equivalent", "tan_for_cot", "Exchange tan and cot, or sec and csc."),
    _t("equivalent", "different_constant", "Replace a constant like 1 inside a function by another constant like 4."),
    # --- harder (listed for completeness; LADDER drops harder variants) ------------------------
    _t("harder", "raise_exponent", "Increase a power."),
    _t("harder", "add_term", "Add another term to the integrand."),
    _t("harder", "nest_function", "Wrap the integrand, or a part of it, in another function."),
    _t("harder", "add_radical", "Put a part of the integrand under a square root."),
    _t("harder", "product_with_exponential", "Multiply by exp(x)."),
    _t("harder", "quadratic_denominator", "Replace a linear denominator by an irreducible quadratic."),
    _t("harder", "fractional_power", "Turn a whole-number power into a fractional power."),
    _t("harder", "combine_techniques", "Require both a substitution and integration by parts."),
)

PERSONAS: tuple[str, ...] = (
    "You think like Euler, fond of series and clever substitutions.",
    "You think like Gauss, looking for hidden symmetry.",
    "You are a patient calculus teacher building exercises for first-year students.",
    "You are an Integration Bee coach writing warm-up problems.",
    "You are a textbook author ordering exercises from easy to hard.",
    "You think like Riemann, paying attention to the shape of the function.",
    "You are an engineer who prefers integrals with clean closed forms.",
    "You think like Leibniz, fond of tidy substitutions.",
    "You are a physicist who simplifies until the answer is obvious.",
    "You are a computer algebra system designer testing one rule at a time.",
    "You think like Ramanujan, noticing patterns in exponents and coefficients.",
    "You are a tutor who removes one difficulty at a time.",
    "You think like Cauchy, careful about where the integrand is defined.",
    "You are a competition setter writing the first round of a contest.",
    "You think like Lagrange, preferring polynomial structure.",
    "You are a student who solves a simpler case before the real one.",
    "You think like Fourier, fond of sines and cosines.",
    "You think like Laplace, fond of exponentials.",
    "You are a minimalist who keeps only the essential part of a problem.",
    "You are a grader who writes practice problems close to an exam question.",
)


def by_kind(kind: str) -> tuple[Transformation, ...]:
    """All transformations of one kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
    return tuple(t for t in TRANSFORMATIONS if t.kind == kind)


def sample_transformations(rng: random.Random, kind: str, k: int) -> list[Transformation]:
    """``k`` distinct transformations of ``kind``, in random order (3-6 per prompt in LADDER).

    Example:
        >>> [t.kind for t in sample_transformations(random.Random(1), "equivalent", 2)]
        ['equivalent', 'equivalent']
    """
    pool = by_kind(kind)
    return rng.sample(pool, min(k, len(pool)))


def sample_kind(rng: random.Random, mix: dict[str, float]) -> str:
    """Draw a kind from a mix such as ``{"easier": 0.7, "equivalent": 0.3}``."""
    kinds = [k for k, w in mix.items() if w > 0]
    if not kinds:
        raise ValueError("the mix needs at least one kind with positive weight")
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown kind {k!r} in mix; choose from {KINDS}")
    return rng.choices(kinds, weights=[mix[k] for k in kinds], k=1)[0]
