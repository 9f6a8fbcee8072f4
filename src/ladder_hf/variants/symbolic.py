"""A model-free variant generator: mutations of the sympy expression tree.

Each mutation rewrites one node of the parent's integrand: drop a summand, lower an exponent,
remove a radical, unwrap a composition (``f(g(x)) -> g(x)``) or linearise its argument
(``f(g(x)) -> f(x)``), drop a factor, simplify a coefficient (all "easier"); or change a
coefficient, swap sin/cos, shift or scale the variable (all "equivalent"). The output is always a
valid sympy expression in ``x`` that differs from its parent, and the same seed gives the same
variants. It needs no model, so it is a baseline, a fallback for weak models, and a way to build
large trees on a CPU.

Example:
    >>> gen = SymbolicGenerator(seed=0)
    >>> [c] = gen.propose([{"id": "p", "integrand": "x**3*sin(2*x)"}], 1)[0]
    >>> c.kind in ("easier", "equivalent"), c.expr.has(sympy.Symbol("x"))
    (True, True)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import sympy

from ladder_hf.variants.base import Candidate, parse_problem_integrand

x = sympy.Symbol("x")

_TRIG_SWAP = {
    sympy.sin: sympy.cos,
    sympy.cos: sympy.sin,
    sympy.tan: sympy.cot,
    sympy.cot: sympy.tan,
    sympy.sinh: sympy.cosh,
    sympy.cosh: sympy.sinh,
    sympy.sec: sympy.csc,
    sympy.csc: sympy.sec,
}


def _subterms(expr: sympy.Expr) -> list[sympy.Expr]:
    """Every distinct node of the tree, in a deterministic (pre-order) order."""
    seen: dict = {}
    for node in sympy.preorder_traversal(expr):
        seen.setdefault(node, None)
    return list(seen)


def _depends(e) -> bool:
    return isinstance(e, sympy.Basic) and e.has(x)


def _replace(expr, old, new):
    return expr.xreplace({old: new})


# Each mutation: (expr, rng) -> list of candidate results (possibly empty). The caller picks one.


def drop_summand(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Add) and len(node.args) >= 2:
            for i in range(len(node.args)):
                out.append(_replace(expr, node, sympy.Add(*(a for j, a in enumerate(node.args) if j != i))))
    return out


def drop_factor(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Mul):
            deps = [i for i, a in enumerate(node.args) if _depends(a)]
            if len(deps) >= 2:
                for i in deps:
                    out.append(_replace(expr, node, sympy.Mul(*(a for j, a in enumerate(node.args) if j != i))))
    return out


def lower_exponent(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Pow) and _depends(node.base) and node.exp.is_Rational:
            e = node.exp
            # Integer powers down to 1, fractional powers down while above 1 in size (x**(5/2) -> x**(3/2)).
            if abs(e) >= 2 if e.is_Integer else abs(e) > 1:
                new_exp = e - 1 if e > 0 else e + 1
            else:
                continue
            out.append(_replace(expr, node, sympy.Pow(node.base, new_exp)))
        elif isinstance(node, sympy.exp) and isinstance(node.args[0], sympy.Mul | sympy.Pow):
            # exp(x**3) -> exp(x**2): lower the power inside an exponential.
            inner = node.args[0]
            for p in _subterms(inner):
                if isinstance(p, sympy.Pow) and p.base == x and p.exp.is_Integer and p.exp >= 2:
                    out.append(_replace(expr, node, sympy.exp(_replace(inner, p, x ** (p.exp - 1)))))
    return out


def remove_radical(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Pow) and _depends(node.base) and node.exp.is_Rational and not node.exp.is_Integer:
            sign = 1 if node.exp > 0 else -1
            out.append(_replace(expr, node, node.base**sign))
    return out


def unwrap_composition(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Function) and len(node.args) == 1 and _depends(node.args[0]):
            arg = node.args[0]
            out.append(_replace(expr, node, arg))  # f(g(x)) -> g(x)
            if arg != x:
                out.append(_replace(expr, node, node.func(x)))  # f(g(x)) -> f(x)
    return out


def simplify_coefficient(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Mul | sympy.Add):
            for a in node.args:
                if a.is_Number and a not in (sympy.S.One, sympy.S.NegativeOne, sympy.S.Zero):
                    new = sympy.S.One if a > 0 else sympy.S.NegativeOne
                    if isinstance(node, sympy.Add):
                        new = sympy.S.One
                    out.append(_replace(expr, node, node.func(*(new if b is a else b for b in node.args))))
    return out


def change_coefficient(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Mul | sympy.Add):
            for a in node.args:
                if a.is_Integer and a != 0:
                    step = rng.choice([1, 2]) * (1 if a > 0 else -1)
                    out.append(_replace(expr, node, node.func(*(a + step if b is a else b for b in node.args))))
    if not out:
        # No integer coefficient anywhere: introduce one on the variable, x -> 2*x.
        out.append(expr.xreplace({x: 2 * x}))
    return out


def swap_trig(expr, rng):
    out = []
    for node in _subterms(expr):
        if isinstance(node, sympy.Function) and node.func in _TRIG_SWAP:
            out.append(_replace(expr, node, _TRIG_SWAP[node.func](*node.args)))
    return out


def shift_variable(expr, rng):
    return [expr.xreplace({x: x + rng.choice([1, 2, -1])})]


def scale_variable(expr, rng):
    return [expr.xreplace({x: rng.choice([2, 3]) * x})]


@dataclass(frozen=True)
class Mutation:
    name: str
    kind: str
    fn: Callable


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("drop_summand", "easier", drop_summand),
    Mutation("lower_exponent", "easier", lower_exponent),
    Mutation("remove_radical", "easier", remove_radical),
    Mutation("unwrap_composition", "easier", unwrap_composition),
    Mutation("drop_factor", "easier", drop_factor),
    Mutation("simplify_coefficient", "easier", simplify_coefficient),
    Mutation("change_coefficient", "equivalent", change_coefficient),
    Mutation("swap_trig", "equivalent", swap_trig),
    Mutation("shift_variable", "equivalent", shift_variable),
    Mutation("scale_variable", "equivalent", scale_variable),
)


def _valid(new, parent, seen: set) -> bool:
    return (
        isinstance(new, sympy.Expr)
        and new.has(x)
        and new.is_finite is not False
        and new != parent
        and new not in seen
        and sympy.count_ops(new) <= 4 * sympy.count_ops(parent) + 8
    )


@dataclass
class SymbolicGenerator:
    """Variants by sympy tree mutations; deterministic given ``seed``.

    Each candidate draws its kind from ``mix`` (LADDER's 70% easier / 30% equivalent), then tries
    that kind's mutations in random order; when none applies it falls back to the other kind. A
    parent that admits no mutation (``x``) yields fewer candidates.

    Example:
        >>> gen = SymbolicGenerator(seed=3)
        >>> rows = gen.propose([{"id": "a", "integrand": "exp(x)*x**2 + 1/x"}], 4)[0]
        >>> len(rows)
        4
    """

    seed: int = 0
    mix: dict | None = None
    name: str = "symbolic"

    def __post_init__(self):
        if self.mix is None:
            self.mix = {"easier": 0.7, "equivalent": 0.3}

    def propose(self, parents: list[dict], num_variants: int) -> list[list[Candidate]]:
        return [self._propose_one(p, num_variants) for p in parents]

    def _propose_one(self, parent: dict, num_variants: int) -> list[Candidate]:
        try:
            expr = parse_problem_integrand(parent["integrand"])
        except ValueError:
            # Beyond the safe grammar's bounds (a child of a bundled x**2024 problem): no variants.
            return []
        # Seeded by (seed, parent integrand): the same parent always gets the same variants.
        rng = random.Random(f"{self.seed}|{parent['integrand']}")
        seen: set = set()
        out: list[Candidate] = []
        for _ in range(num_variants):
            cand = self._one(expr, rng, seen)
            if cand is None:
                break
            new, mutation = cand
            seen.add(new)
            out.append(
                Candidate(
                    parent_id=str(parent.get("id", "")),
                    raw=str(new),
                    expr=new,
                    kind=mutation.kind,
                    transformations=[mutation.name],
                    generator=self.name,
                )
            )
        return out

    def _one(self, expr, rng: random.Random, seen: set):
        kinds = list(self.mix)
        first = rng.choices(kinds, weights=[self.mix[k] for k in kinds], k=1)[0]
        order = [first, *(k for k in kinds if k != first)]
        for kind in order:
            muts = [m for m in MUTATIONS if m.kind == kind]
            rng.shuffle(muts)
            for m in muts:
                options = [o for o in m.fn(expr, rng) if _valid(o, expr, seen)]
                if options:
                    return rng.choice(options), m
        return None
