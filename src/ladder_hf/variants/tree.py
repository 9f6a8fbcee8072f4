"""Recursive variant trees, written incrementally and resumable.

``generate_tree`` expands every kept node breadth-first, depth by depth, down to ``depth``:
the generator proposes ``variants_per_node`` candidates per parent, quality control
(:mod:`ladder_hf.variants.quality`) filters them, and the kept ones become the parent's children.

Files in ``out_dir``:

``nodes.jsonl``       kept nodes: the roots (depth 0) and every kept variant
``rejected.jsonl``    rejected candidates with the stage that rejected them (an audit trail)
``expansions.jsonl``  one line per expanded parent: its child ids and its QC funnel counts
``qc.json``           funnel totals (requested, generated, parsed, sane, unique, clean, kept)
``run.json``          the settings of the run

Crash safety: a parent's children are appended to ``nodes.jsonl`` and flushed to disk *before*
its line in ``expansions.jsonl``; that line is the commit record. On restart, torn last lines are
truncated, children of uncommitted expansions are removed, and duplicates (same id) are dropped,
then generation continues with the parents not yet expanded. A run killed at any point and
restarted therefore ends with no lost and no duplicated node. Node ids are positional
(``<parent id>.<k>``), so resumed runs use the same ids.

Example:
    >>> from ladder_hf.variants import SymbolicGenerator, generate_tree
    >>> nodes = generate_tree([{"id": "p1", "integrand": "x**2*exp(x)", "lower": "", "upper": ""}],
    ...                       SymbolicGenerator(seed=0), depth=2, out_dir="variants/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict

from tqdm.auto import tqdm

from ladder_hf.store import JsonlStore, write_json
from ladder_hf.variants.base import Candidate, parse_problem_integrand
from ladder_hf.variants.quality import (
    ContaminationGuard,
    FingerprintIndex,
    QualityConfig,
    integration_interval,
    is_parent_copy,
    profile_batch,
    solvability_batch,
    unreadable_reason,
)

logger = logging.getLogger(__name__)

NODES_FILE = "nodes.jsonl"
REJECTED_FILE = "rejected.jsonl"
EXPANSIONS_FILE = "expansions.jsonl"
FUNNEL_FILE = "qc.json"
RUN_FILE = "run.json"
# "unique": neither a duplicate of a node already in the tree nor its parent up to constants (c*f + d);
# "easier": kept variants whose difficulty estimate is below their parent's.
FUNNEL_STAGES = ("requested", "generated", "parsed", "sane", "unique", "clean", "kept", "easier")


class RunMismatchError(ValueError):
    """An output folder holds a variant run with other settings or problems (see ``generate_tree(extend=)``)."""


def root_id(problem: dict) -> str:
    """The problem's ``id``, or a stable hash of its integrand and bounds."""
    if problem.get("id"):
        return str(problem["id"])
    key = f"{problem['integrand']}|{problem.get('lower', '')}|{problem.get('upper', '')}"
    return "expr-" + hashlib.sha1(key.encode()).hexdigest()[:10]


class TreeState:
    """What is on disk: committed nodes, rejected rows, expansion records."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.nodes_path = os.path.join(out_dir, NODES_FILE)
        self.rejected_path = os.path.join(out_dir, REJECTED_FILE)
        self.expansions_path = os.path.join(out_dir, EXPANSIONS_FILE)
        self._nodes = JsonlStore(self.nodes_path)
        self._rejected = JsonlStore(self.rejected_path)
        self._expansions = JsonlStore(self.expansions_path)
        self._recover()

    def _recover(self) -> None:
        expansions = {}
        raw_expansions = self._expansions.read()
        for rec in raw_expansions:
            # a parent whose first expansion kept nothing because its tree was full may be grown again
            # once the cap is raised (see regrowable): the later record, which carries both funnels, wins
            previous = expansions.get(rec["parent_id"])
            if previous is None or regrowable(previous):
                expansions[rec["parent_id"]] = rec
        raw_nodes = self._nodes.read()
        raw_rejected = self._rejected.read()
        by_id: dict[str, dict] = {}
        for n in raw_nodes:
            by_id.setdefault(n["id"], n)
        # An expansion record is valid only if every child it names is on disk (it always is when
        # the write order held; this guards against files edited or copied by hand).
        expansions = {p: r for p, r in expansions.items() if all(c in by_id for c in r["children"])}
        committed = {c for r in expansions.values() for c in r["children"]}
        nodes = [n for n in by_id.values() if n.get("depth", 0) == 0 or n["id"] in committed]
        rejected = [r for r in raw_rejected if r.get("parent_id") in expansions]
        # the run that resumes owns the folder: it drops what was never committed before appending
        if len(nodes) != len(raw_nodes):
            logger.info("recovered %s: kept %d of %d node lines", self.nodes_path, len(nodes), len(raw_nodes))
            self._nodes.rewrite(nodes)
        if len(rejected) != len(raw_rejected):
            self._rejected.rewrite(rejected)
        if len(expansions) != len(raw_expansions):
            self._expansions.rewrite(list(expansions.values()))
        self.nodes: list[dict] = nodes
        self.node_ids = {n["id"] for n in nodes}
        self.expansions: dict[str, dict] = expansions

    def add_roots(self, roots: list[dict]) -> None:
        new = [r for r in roots if r["id"] not in self.node_ids]
        self._nodes.append(new)
        self.nodes.extend(new)
        self.node_ids.update(r["id"] for r in new)

    def commit_expansion(self, parent_id: str, children: list[dict], rejected: list[dict], funnel: dict) -> None:
        if parent_id in self.expansions:  # a regrown parent: the funnel counts both attempts
            funnel = dict(Counter(self.expansions[parent_id]["funnel"]) + Counter(funnel))
        # children before the record that commits them (see the module docstring)
        self._nodes.append(children)
        self._rejected.append(rejected)
        record = {"parent_id": parent_id, "children": [c["id"] for c in children], "funnel": funnel}
        self._expansions.append(record)
        self.nodes.extend(children)
        self.node_ids.update(c["id"] for c in children)
        self.expansions[parent_id] = record

    def funnel(self) -> dict[str, int]:
        total = Counter({k: 0 for k in FUNNEL_STAGES})
        for rec in self.expansions.values():
            total.update(rec["funnel"])
        return {k: int(total[k]) for k in FUNNEL_STAGES}


def regrowable(expansion: dict) -> bool:
    """True for an expansion that kept no child only because its tree was full: candidates passed every
    check ("clean") and were turned away by ``max_nodes_per_root``. Such a parent is a leaf by accident,
    and a run with a larger cap (or none) may expand it again."""
    return not expansion["children"] and expansion["funnel"].get("clean", 0) > 0


# ----------------------------------------------------------------------------------------------
# Rows


def _node(
    node_id: str, parent: dict | None, problem: dict, expr, cand: Candidate | None, profile, solv, kind: str
) -> dict:
    depth = 0 if parent is None else parent["depth"] + 1
    diff = solv.difficulty
    return {
        "id": node_id,
        "root_id": node_id if parent is None else parent["root_id"],
        "parent_id": None if parent is None else parent["id"],
        "depth": depth,
        "integrand": str(expr),
        "lower": str(problem.get("lower") or ""),
        "upper": str(problem.get("upper") or ""),
        "kind": kind,
        "transformations": list(cand.transformations) if cand else [],
        "persona": cand.persona if cand else "",
        "temperature": cand.temperature if cand else None,
        "generator": cand.generator if cand else "",
        "difficulty": diff,
        "difficulty_delta": None
        if parent is None or parent.get("difficulty") is None
        else round(diff - parent["difficulty"], 3),
        "sympy_solvable": solv.sympy_solvable,
        "sympy_antiderivative": solv.sympy_antiderivative,
        "source_problem": problem.get("source_problem") or problem.get("id")
        if parent is None
        else parent["source_problem"],
        "raw": cand.raw if cand else str(problem["integrand"]),
        "kept": True,
        "qc_status": "root" if parent is None else "kept",
        "numeric_sane": profile.sane,
        "duplicate_of": None,
        "contaminated_with": None,
        "contamination_rule": None,
        "qc_fingerprint": profile.fingerprint,
    }


def _rejected(cand: Candidate, parent: dict, status: str, reason: str = "", **extra) -> dict:
    return {
        "id": None,
        "root_id": parent["root_id"],
        "parent_id": parent["id"],
        "depth": parent["depth"] + 1,
        "integrand": None if cand.expr is None else str(cand.expr),
        "raw": cand.raw,
        "kind": cand.kind,
        "transformations": list(cand.transformations),
        "persona": cand.persona,
        "temperature": cand.temperature,
        "generator": cand.generator,
        "kept": False,
        "qc_status": status,
        "qc_reason": reason or cand.parse_error,
        **extra,
    }


# ----------------------------------------------------------------------------------------------
# The tree


def _parse_roots(problems: list[dict]) -> tuple[list[dict], list, list[dict]]:
    """(problems that parse, their expressions, problems that do not), warning about the latter."""
    ok, exprs, skipped = [], [], []
    for p in problems:
        try:
            expr = parse_problem_integrand(p["integrand"])
        except ValueError as err:
            logger.warning("skipping problem %s: its integrand does not parse (%s)", root_id(p), err)
            skipped.append(p)
            continue
        unreadable = unreadable_reason(expr)
        if unreadable:  # no node of its tree could be rewarded
            logger.warning("skipping problem %s: %s", root_id(p), unreadable)
            skipped.append(p)
            continue
        exprs.append(expr)
        ok.append(p)
    return ok, exprs, skipped


def _make_roots(
    problems: list[dict], exprs: list, guard: ContaminationGuard | None, config: QualityConfig
) -> list[dict]:
    intervals = [integration_interval(p.get("lower", ""), p.get("upper", "")) for p in problems]
    profiles = profile_batch(exprs, intervals, config)
    solvs = solvability_batch(exprs, config)
    verdicts = guard.judge_batch(exprs, intervals) if guard is not None else [None] * len(exprs)
    roots = []
    for p, e, prof, s, verdict in zip(problems, exprs, profiles, solvs, verdicts, strict=True):
        row = _node(root_id(p), None, {**p, "source_problem": p.get("id") or root_id(p)}, e, None, prof, s, "root")
        if verdict is None or verdict.status == "clean":
            roots.append(row)
            continue
        row["qc_reason"] = verdict.reason
        if verdict.status == "unjudged":
            logger.warning("root %s: the contamination guard cannot judge it (%s)", row["id"], verdict.rule)
        elif row["id"] in guard.ids:
            # A root that is itself a protected problem (TTRL: the test problem) stays as the tree's
            # source, flagged; its variants are what the guard filters.
            row.update(contaminated_with=row["id"], contamination_rule=verdict.rule)
        else:
            # A training root equal to a test problem in disguise: nothing of its tree may reach training,
            # so it is not expanded, and LadderDataset lists it (and any old subtree) under `rejected`.
            row.update(
                kept=False,
                qc_status="contaminated",
                contaminated_with=verdict.protected_id,
                contamination_rule=verdict.rule,
            )
            logger.warning("root %s is contaminated (%s): its tree is left out", row["id"], verdict.reason)
        roots.append(row)
    return roots


def _expand_chunk(
    parents: list[dict],
    generator,
    variants_per_node: int,
    state: TreeState,
    index: FingerprintIndex,
    ids_by_fp: list[str],
    guard: ContaminationGuard | None,
    config: QualityConfig,
    budget: Counter,
    max_nodes_per_root: int | None,
) -> int:
    proposals = generator.propose(parents, variants_per_node)
    flat = [(i, c) for i, cands in enumerate(proposals) for c in cands if c.expr is not None]
    intervals = [integration_interval(parents[i].get("lower", ""), parents[i].get("upper", "")) for i, _ in flat]
    profiles = profile_batch([c.expr for _, c in flat], intervals, config)
    prof_of = {id(c): p for (_, c), p in zip(flat, profiles, strict=True)}
    verdict_of = {}
    if guard is not None:
        # One vectorised guard call for the chunk, for the candidates whose verdict is read below: a
        # duplicate of a stored node or a copy of its parent is rejected before that (about 3 in 10 sane
        # symbolic candidates), and a function seen earlier in the chunk shares the earlier verdict.
        judged, same_as = [], {}
        first: dict[tuple, int] = {}
        for (i, c), p, iv in zip(flat, profiles, intervals, strict=True):
            if not p.sane or index.find(p.fingerprint) is not None:
                continue
            if is_parent_copy(parents[i].get("qc_fingerprint"), p.fingerprint):
                continue
            key = tuple(None if v is None else round(float(v), 9) for v in p.fingerprint)
            if key in first:
                same_as[id(c)] = first[key]
                continue
            first[key] = len(judged)
            judged.append((c, iv))
        verdicts = guard.judge_batch([c.expr for c, _ in judged], [iv for _, iv in judged]) if judged else []
        verdict_of = {id(c): v for (c, _), v in zip(judged, verdicts, strict=True)}
        verdict_of.update({cid: verdicts[k] for cid, k in same_as.items()})

    # Sanity, dedup and contamination per parent, in order, so siblings dedup against each other.
    survivors: list[list[tuple[Candidate, object]]] = [[] for _ in parents]
    rejected: list[list[dict]] = [[] for _ in parents]
    funnels = [Counter({k: 0 for k in FUNNEL_STAGES}) for _ in parents]
    for i, (parent, cands) in enumerate(zip(parents, proposals, strict=True)):
        f = funnels[i]
        f["requested"] += variants_per_node
        for c in cands:
            f["generated"] += 1
            if c.expr is None:
                rejected[i].append(_rejected(c, parent, "unparsable"))
                continue
            f["parsed"] += 1
            prof = prof_of[id(c)]
            if not prof.sane:
                rejected[i].append(_rejected(c, parent, "not_sane", prof.reason))
                continue
            f["sane"] += 1
            dup = index.find(prof.fingerprint)
            if dup is not None:
                rejected[i].append(_rejected(c, parent, "duplicate", duplicate_of=ids_by_fp[dup]))
                continue
            if is_parent_copy(parent.get("qc_fingerprint"), prof.fingerprint):
                reason = "its parent up to a constant factor and an added constant"
                rejected[i].append(_rejected(c, parent, "parent_copy", reason, duplicate_of=parent["id"]))
                continue
            f["unique"] += 1
            # every candidate that gets here was judged above: a missing verdict is a KeyError, never a pass
            verdict = verdict_of[id(c)] if guard is not None else None
            if verdict is not None and verdict.status == "contaminated":
                rejected[i].append(
                    _rejected(
                        c,
                        parent,
                        "contaminated",
                        verdict.reason,
                        contaminated_with=verdict.protected_id,
                        contamination_rule=verdict.rule,
                    )
                )
                continue
            if verdict is not None and verdict.status == "unjudged":
                rejected[i].append(_rejected(c, parent, "unjudged", verdict.reason))  # reported, not kept
                continue
            f["clean"] += 1
            # Registered now so later siblings dedup against it; its id is fixed once it is kept.
            index.add(prof.fingerprint)
            ids_by_fp.append("")
            survivors[i].append((c, prof, len(ids_by_fp) - 1))

    flat_survivors = [(i, c, p, k) for i, s in enumerate(survivors) for c, p, k in s]
    solvs = solvability_batch([c.expr for _, c, _, _ in flat_survivors], config)
    children: list[list[dict]] = [[] for _ in parents]
    for (i, c, prof, k), solv in zip(flat_survivors, solvs, strict=True):
        parent = parents[i]
        if max_nodes_per_root is not None and budget[parent["root_id"]] >= max_nodes_per_root:
            rejected[i].append(_rejected(c, parent, "over_budget"))
            ids_by_fp[k] = f"(over budget, not kept: {c.expr})"
            continue
        node_id = f"{parent['id']}.{len(children[i])}"
        ids_by_fp[k] = node_id
        child = _node(node_id, parent, parent, c.expr, c, prof, solv, c.kind)
        children[i].append(child)
        budget[parent["root_id"]] += 1
        funnels[i]["kept"] += 1
        if child["difficulty_delta"] is not None and child["difficulty_delta"] < 0:
            funnels[i]["easier"] += 1
    for i, parent in enumerate(parents):
        state.commit_expansion(parent["id"], children[i], rejected[i], dict(funnels[i]))
    return sum(len(c) for c in children)


def generate_tree(
    problems: list[dict],
    generator,
    depth: int,
    out_dir: str,
    protect: list[dict] | ContaminationGuard | None = None,
    variants_per_node: int = 10,
    max_nodes_per_root: int | None = None,
    batch_parents: int = 16,
    quality: QualityConfig | None = None,
    progress: bool = True,
    extend: bool = False,
    expand: Callable[[dict], bool] | None = None,
) -> list[dict]:
    """Build (or resume) variant trees for ``problems`` down to ``depth``; return all kept nodes.

    Args:
        problems: rows with ``integrand`` (sympy syntax in ``x``), ``lower``, ``upper``, ``id``.
        generator: a :class:`SymbolicGenerator` or :class:`ModelVariantGenerator`.
        depth: levels of variants below each root (paper: 3, or 2 for the Integration Bee).
        out_dir: where ``nodes.jsonl`` and the funnel files go; an existing run there is resumed.
        protect: problems (a test set) no variant may equal or nearly equal; guard on when given (the rule:
            :class:`ContaminationGuard`). A root equivalent to a protected problem under another id is
            marked ``kept=False, qc_status="contaminated"`` and grows no tree; a root that *is* a
            protected problem (same id: test-time training) keeps its tree, every variant still guarded.
            A prebuilt :class:`ContaminationGuard` is taken as it is (building one for the 320 MIT problems
            takes seconds; its ``seconds`` then say what the guard cost the run).
        variants_per_node: candidates requested per parent (before QC).
        max_nodes_per_root: cap on kept variants per tree (paper: about 500 per problem).
        batch_parents: parents expanded per generator call (model backends batch across them).
        quality: :class:`QualityConfig` (sanity fraction, tolerances, sympy time limit).
        extend: allow growing an existing folder with other settings or other problems (the trees are
            merged and ``run.json`` records the new settings); without it such a run is refused.
        expand: which nodes may grow children in this call (default: all). A node it refuses is left
            unexpanded, so a later call can still grow it: :func:`ladder_hf.training_data.grow_to_model_level`
            grows only below the nodes the model never solves.

    Example:
        >>> nodes = generate_tree(load_problems("mit-2025")[:2], SymbolicGenerator(seed=0), 2, "out")  # doctest: +SKIP
        >>> sorted({n["depth"] for n in nodes})  # doctest: +SKIP
        [0, 1, 2]
    """
    if depth < 0:
        raise ValueError("depth must be >= 0")
    config = quality or QualityConfig()
    guard = protect if isinstance(protect, ContaminationGuard) else None
    if guard is not None:
        protect = [{"id": p.id, "integrand": p.text} for p in guard.problems]
    run_path = os.path.join(out_dir, RUN_FILE)
    settings = {
        "generator": getattr(generator, "name", type(generator).__name__),
        "depth": depth,
        "variants_per_node": variants_per_node,
        "max_nodes_per_root": max_nodes_per_root,
        "protected": len(protect or []),
        "protected_ids": [root_id(p) for p in protect or []],
        "problems": [root_id(p) for p in problems],
        "quality": asdict(config),
    }
    previous: dict = {}
    if os.path.exists(run_path):
        with open(run_path, encoding="utf-8") as f:
            previous = json.load(f)
    # What every node of the folder was judged against: a tree extended under another protection was
    # guarded, throughout, only against the problems both runs protected.
    guarded = set(settings["protected_ids"])
    if previous:
        guarded &= set(previous.get("guarded_ids", previous.get("protected_ids", [])))
    settings["guarded_ids"] = sorted(guarded)
    if previous:
        # keys a folder written by an older version lacks are not a difference
        changed = sorted(k for k in settings if k in previous and previous[k] != settings[k])
        if changed and not extend:
            # resuming is only safe with the same run: anything else would merge two trees silently
            raise RunMismatchError(
                f"{out_dir} holds a variant run with other {', '.join(changed)}; use another output folder, "
                "or pass extend=True (--extend) to grow it with these settings"
            )
    state = TreeState(out_dir)
    if "skipped_problems" in previous:
        settings["skipped_problems"] = previous["skipped_problems"]
    write_json(run_path, settings, sort_keys=True)

    if guard is None and protect:
        guard = ContaminationGuard(protect, config)
    missing = [p for p in problems if root_id(p) not in state.node_ids]
    if missing:
        parsed, exprs, skipped = _parse_roots(missing)
        if skipped:
            settings["skipped_problems"] = [root_id(p) for p in skipped]
            write_json(run_path, settings, sort_keys=True)
        state.add_roots(_make_roots(parsed, exprs, guard, config))

    index = FingerprintIndex(config.rtol)
    ids_by_fp: list[str] = []
    for n in state.nodes:
        if n.get("qc_fingerprint") is not None:
            index.add(n["qc_fingerprint"])
            ids_by_fp.append(n["id"])
    wanted_roots = {root_id(p) for p in problems}
    budget = Counter(n["root_id"] for n in state.nodes if n["depth"] > 0)

    bar = tqdm(desc="variants", unit="node", disable=not progress, initial=len(state.nodes))
    for level in range(depth):
        parents = [
            n
            for n in state.nodes
            if n["depth"] == level
            and n["root_id"] in wanted_roots
            and (n["id"] not in state.expansions or regrowable(state.expansions[n["id"]]))
            and n.get("kept", True) is not False  # a contaminated root grows no tree
            # a full tree asks the generator for nothing; its parents stay unexpanded for a larger cap
            and (max_nodes_per_root is None or budget[n["root_id"]] < max_nodes_per_root)
            and (expand is None or expand(n))
        ]
        bar.set_description(f"variants (depth {level + 1}/{depth})")
        for start in range(0, len(parents), max(1, batch_parents)):
            chunk = parents[start : start + batch_parents]
            added = _expand_chunk(
                chunk, generator, variants_per_node, state, index, ids_by_fp, guard, config, budget, max_nodes_per_root
            )
            bar.update(added)
            funnel = state.funnel()
            bar.set_postfix(kept=funnel["kept"], parsed=funnel["parsed"], generated=funnel["generated"])
            write_json(os.path.join(out_dir, FUNNEL_FILE), funnel, sort_keys=True)
    bar.close()
    funnel = state.funnel()
    write_json(os.path.join(out_dir, FUNNEL_FILE), funnel, sort_keys=True)
    if guard is not None:
        logger.info("contamination guard: %.1f s (building it and judging candidates)", guard.seconds)
    return [n for n in state.nodes if n["root_id"] in wanted_roots]


def read_funnel(out_dir: str) -> dict[str, int]:
    """The QC funnel totals of a variants folder (recomputed from ``expansions.jsonl``)."""
    return TreeState(out_dir).funnel()
