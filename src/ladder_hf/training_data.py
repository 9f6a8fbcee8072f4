"""Training data of the LADDER recipes: variant rows from the Hub, a variants folder or a file (or a tree
grown on the fly), ordered by a curriculum, with TRL's conversational ``prompt`` column.

Example:
    >>> from datasets import Dataset
    >>> rows = Dataset.from_list([{"integrand": "x", "lower": "", "upper": "", "depth": 1}])
    >>> add_prompts(order_by_curriculum(rows, "depth"), "few_shot")[0]["prompt"][0]["role"]
    'system'
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from typing import Any

from ladder_hf.configs import CURRICULA, ScriptArguments
from ladder_hf.problems import Problem, Prompt, build_messages, resolve_prompt

logger = logging.getLogger(__name__)


def load_variant_dataset(
    name_or_path: str,
    config: str | None = None,
    revision: str | None = None,
    split: str = "train",
):
    """Load variant rows as a ``datasets.Dataset`` from a Hub id, a variants folder, or a file.

    Example:
        >>> ds = load_variant_dataset("out/variants")  # doctest: +SKIP
        >>> ds.column_names[:3]  # doctest: +SKIP
    """
    from datasets import load_dataset

    if os.path.isdir(name_or_path):
        if os.path.isfile(os.path.join(name_or_path, "nodes.jsonl")):
            return load_variants_folder(name_or_path, config=config or "variants")
        return load_dataset(name_or_path, name=config, revision=revision, split=split)
    if os.path.isfile(name_or_path):
        suffix = name_or_path.rsplit(".", 1)[-1].lower()
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(suffix)
        if builder is None:
            raise ValueError(f"cannot read {name_or_path!r}: expected .jsonl, .json, .parquet or .csv")
        return load_dataset(builder, data_files=name_or_path, split="train")
    return load_dataset(name_or_path, name=config, revision=revision, split=split)


def load_variants_folder(path: str, config: str = "variants"):
    """Rows of a variants folder (``nodes.jsonl``) through the project's ``LadderDataset`` builder."""
    from ladder_hf.dataset import load_ladder_dataset

    return load_ladder_dataset(path, config)


def grow_variants(
    problems: str,
    out_dir: str,
    depth: int,
    seed: int = 0,
    variants_per_node: int = 10,
    max_nodes_per_root: int | None = None,
    protect: list[dict] | None = None,
) -> str:
    """Grow a symbolic variant tree from a bundled set or JSONL of problems into ``out_dir`` (resumable).

    ``protect`` (the held-out problems) turns on the contamination guard: no variant may equal or
    nearly equal one of them.
    """
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import generate_tree, make_generator

    generate_tree(
        load_problems(problems),
        make_generator("symbolic", seed=seed),
        depth=depth,
        out_dir=out_dir,
        protect=protect or None,
        variants_per_node=variants_per_node,
        max_nodes_per_root=max_nodes_per_root,
    )
    return out_dir


def add_prompts(dataset, prompt: str | Prompt | None = "default", **overrides: Any):
    """Add TRL's conversational ``prompt`` column (built by :func:`ladder_hf.problems.build_messages` with
    ``prompt`` and any ``overrides`` of its fields); keep ``integrand``/``lower``/``upper`` for the rewards.

    Example:
        >>> from datasets import Dataset
        >>> ds = add_prompts(Dataset.from_list([{"integrand": "x", "lower": None, "upper": None}]))
        >>> ds[0]["prompt"][-1]["content"]
        'Find the indefinite integral: ∫ x dx'
    """
    missing = {"integrand", "lower", "upper"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset lacks the column(s) {sorted(missing)}; variant rows need integrand, lower, upper")
    spec = resolve_prompt(prompt)

    def _row(row: dict) -> dict:
        lower, upper = str(row["lower"] or ""), str(row["upper"] or "")
        problem = {"integrand": row["integrand"], "lower": lower, "upper": upper}
        return {"prompt": build_messages(problem, spec, **overrides), "lower": lower, "upper": upper}

    return dataset.map(_row, desc="Building prompts")


def order_by_curriculum(dataset, curriculum: str = "none"):
    """Sort rows easy to hard. Deeper variants are easier (the root problem is depth 0).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_list([{"depth": 0, "difficulty": 3.0}, {"depth": 2, "difficulty": 1.0}])
        >>> list(order_by_curriculum(ds, "depth")["depth"])
        [2, 0]
    """
    if curriculum == "none":
        return dataset
    if curriculum not in CURRICULA:
        raise ValueError(f"curriculum must be one of {CURRICULA}, got {curriculum!r}")
    keys = {"depth": ["depth"], "difficulty": ["difficulty"], "depth_difficulty": ["depth", "difficulty"]}[curriculum]
    missing = [k for k in keys if k not in dataset.column_names]
    if missing:
        raise ValueError(f"curriculum {curriculum!r} needs the column(s) {missing}")
    reverse = [k == "depth" for k in keys]
    return dataset.sort(keys, reverse=reverse, null_placement="at_end")


SOLVE_RATES_FILE = "solve_rates.jsonl"
# grow_to_model_level's store, beside the variants folder (not published with it)
LEVEL_SOLVE_RATES_FILE = "level_solve_rates.jsonl"


def problem_key(row) -> str:
    """The key a solve rate is stored under: integrand and bounds (rows of different trees share it).

    Example:
        >>> problem_key({"integrand": "x", "lower": "0", "upper": "1"}), problem_key({"integrand": "x"})
        ('x|0|1', 'x||')
    """
    return f"{row['integrand']}|{row.get('lower') or ''}|{row.get('upper') or ''}"


def measure_solve_rates(
    rows,
    backend,
    *,
    samples: int = 4,
    prompt: str | Prompt | None = "few_shot",
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    store_path: str | None = None,
    chunk: int = 32,
) -> list[float | None]:
    """The model's solve rate on each row: the share of ``samples`` sampled answers the verifier accepts.

    This is how LADDER finds the model's level (the edge between "always solved" and "never solved").
    ``None`` for a row the verifier cannot score (a problem-side failure). ``backend`` is a generation
    backend, or a function returning one, called only if some row is not measured yet. With ``store_path`` every
    measured chunk is appended to a JSONL file keyed by (integrand, bounds), and a re-run with the same
    ``samples`` reuses it, so a killed measurement resumes where it stopped.

    Example:
        >>> from ladder_hf.generation import load_backend
        >>> backend = load_backend("transformers", "default")  # doctest: +SKIP
        >>> measure_solve_rates([{"integrand": "2*x", "lower": "", "upper": ""}], backend, samples=4)  # doctest: +SKIP
        [0.75]
    """
    from tqdm.auto import tqdm

    from ladder_hf.problems import ANSWER_STOP
    from ladder_hf.rewards import extract_answer
    from ladder_hf.store import JsonlStore
    from ladder_hf.verifier import verify_batch

    key = problem_key
    rows = [dict(r) for r in rows]
    store = JsonlStore(store_path) if store_path else None
    # a rate measured with another number of samples is not this measurement: draw it again
    stored = store.read() if store is not None and store.exists() else []
    known = {r["key"]: r["solve_rate"] for r in stored if r.get("draws", r.get("samples")) == samples}
    todo = list(dict.fromkeys(key(r) for r in rows if key(r) not in known))
    by_key = {key(r): r for r in rows}
    if todo and callable(backend) and not hasattr(backend, "generate"):
        backend = backend()
    with tqdm(total=len(todo), desc="Measuring solve rates", unit="row") as bar:
        for start in range(0, len(todo), chunk):
            keys = todo[start : start + chunk]
            problems = [by_key[k] for k in keys]
            texts = backend.generate(
                [build_messages(p, prompt) for p in problems],
                n=samples,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                stop=ANSWER_STOP,
                seed=seed + start,
            )
            items = [
                {"integrand": p["integrand"], "lower": p.get("lower"), "upper": p.get("upper"), "candidate": c}
                for p, outs in zip(problems, texts, strict=True)
                for c in (extract_answer(t) for t in outs)
            ]
            results = verify_batch(items)
            measured = []
            for i, k in enumerate(keys):
                verdicts = results[i * samples : (i + 1) * samples]
                scored = [r.correct for r in verdicts if r.scored]
                rate = sum(scored) / len(scored) if scored else None
                known[k] = rate
                measured.append({"key": k, "solve_rate": rate, "samples": len(scored), "draws": samples})
            if store is not None:
                store.append(measured)
            bar.update(len(keys))
    return [known[key(r)] for r in rows]


def solve_rate_table(rows, rates: list[float | None], by: str = "depth") -> list[dict[str, Any]]:
    """Per value of ``by`` (tree depth by default): rows, mean solve rate, and how many rows are never
    solved, sometimes solved (the model's edge) and always solved.

    Example:
        >>> table = solve_rate_table([{"depth": 1}, {"depth": 1}, {"depth": 2}], [0.0, 0.5, 1.0])
        >>> table[0]
        {'depth': 1, 'rows': 2, 'mean_solve_rate': 0.25, 'never': 1, 'edge': 1, 'always': 0}
    """
    groups: dict[Any, list[float]] = {}
    for row, rate in zip(rows, rates, strict=True):
        if rate is not None:
            groups.setdefault(row.get(by), []).append(rate)
    table = []
    for value in sorted(groups, key=lambda v: (v is None, v)):
        values = groups[value]
        table.append(
            {
                by: value,
                "rows": len(values),
                "mean_solve_rate": round(sum(values) / len(values), 4),
                "never": sum(v == 0 for v in values),
                "edge": sum(0 < v < 1 for v in values),
                "always": sum(v == 1 for v in values),
            }
        )
    return table


def deepening_generator(generator):
    """The generator to grow below nodes the model never solves: a ``SymbolicGenerator`` with its easier
    mutations only (the "equivalent" ones, shifted, rescaled or with other coefficients, move sideways and
    stay as hard as their parent); any other generator as it is.

    Example:
        >>> from ladder_hf.variants import SymbolicGenerator
        >>> deepening_generator(SymbolicGenerator(seed=0)).mix
        {'easier': 1.0}
    """
    import dataclasses

    from ladder_hf.variants import SymbolicGenerator

    if isinstance(generator, SymbolicGenerator):
        return dataclasses.replace(generator, mix={"easier": 1.0})
    return generator


def grow_to_model_level(
    problems: list[dict],
    generator,
    out_dir: str,
    backend,
    *,
    rounds: int = 2,
    samples: int = 4,
    variants_per_node: int = 3,
    protect: list[dict] | None = None,
    quality=None,
    prompt: str | Prompt | None = "few_shot",
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    store_path: str | None = None,
    measure_roots: bool = True,
) -> list[dict[str, Any]]:
    """LADDER's recursion, down to the model's level: grow variants below the tree leaves the model never solves.

    A symbolic tree of fixed depth can stop well above what a small model solves (SmolLM2-135M solves
    `x` and `exp(2*x)` but almost no depth-3 node of the undergraduate trees). Each round measures the
    model's solve rate on every kept node of the trees in ``out_dir`` (:func:`measure_solve_rates`, stored
    in ``store_path`` so only new nodes are sampled), then grows one more level below each leaf that no
    sample solved and that was not grown before (or kept no child only because its tree was full, see
    ``max_nodes_per_root``), with ``generator`` and the same quality control and
    contamination guard (``protect``) as the rest of the tree (:func:`ladder_hf.variants.generate_tree`).
    Leaves the model sometimes solves are where GRPO gets a signal, so they are not grown. It stops after
    ``rounds`` rounds, or earlier when no never-solved leaf is left or a round adds nothing; the last
    round's new nodes are measured too.

    Args:
        problems: the roots of the trees in ``out_dir`` (as given to ``generate_tree``).
        generator: the variant generator (e.g. ``SymbolicGenerator``).
        out_dir: the variants folder; it is extended in place.
        backend: a generation backend, or a function returning one (called only if something is sampled).
        rounds: levels to grow at most.
        samples, prompt, max_new_tokens, temperature, seed: as in :func:`measure_solve_rates`.
        variants_per_node: candidates requested per grown leaf.
        protect: held-out problems no variant may equal (the guard of ``generate_tree``).
        quality: a ``QualityConfig``.
        store_path: JSONL store of the measured rates (default ``<out_dir>/../level_solve_rates.jsonl``,
            outside the variants folder so it is not published with it).
        measure_roots: sample the roots too (``False`` for TTRL, whose root is the test problem: only its
            variants are measured and grown).

    Returns:
        One row per round: ``depth`` (the deepest level before the round), ``nodes`` (measured), ``never``,
        ``edge`` and ``always`` (nodes never, sometimes and always solved), ``grown`` (never-solved leaves
        expanded) and ``added`` (new nodes kept); a final row with ``grown = added = 0`` describes the result.

    Example:
        >>> from ladder_hf.generation import load_backend
        >>> from ladder_hf.variants import SymbolicGenerator
        >>> rounds = grow_to_model_level(train, SymbolicGenerator(seed=0), "out/variants",
        ...                              lambda: load_backend("transformers", "default"))  # doctest: +SKIP
        >>> [(r["depth"], r["nodes"], r["edge"]) for r in rounds]  # doctest: +SKIP
        [(3, 165, 2), (4, 201, 3), (5, 212, 4), (5, 214, 4)]
    """
    from ladder_hf.dataset import read_nodes
    from ladder_hf.variants.tree import TreeState, generate_tree, regrowable

    if store_path is None:
        store_path = os.path.join(os.path.dirname(os.path.abspath(out_dir)), LEVEL_SOLVE_RATES_FILE)
    if callable(backend) and not hasattr(backend, "generate"):
        make_backend, backend = backend, None

        def lazy():
            nonlocal backend
            backend = backend or make_backend()
            return backend
    else:

        def lazy():
            return backend

    history: list[dict[str, Any]] = []
    for round_ in range(rounds + 1):
        nodes = [n for n in read_nodes(out_dir) if n.get("kept", True) and (measure_roots or int(n["depth"]) > 0)]
        if not nodes:  # a root without a single kept variant: nothing to measure or grow below
            break
        rates = measure_solve_rates(
            nodes,
            lazy,
            samples=samples,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            store_path=store_path,
        )
        # a node expanded before is not grown again (its children all failed QC), unless its tree was full then
        expansions = TreeState(out_dir).expansions
        expanded = {parent for parent, record in expansions.items() if not regrowable(record)}
        frontier = {n["id"] for n, rate in zip(nodes, rates, strict=True) if rate == 0.0 and n["id"] not in expanded}
        per_depth = solve_rate_table(nodes, rates)
        row = {
            "depth": max(n["depth"] for n in nodes),
            "nodes": len(nodes),
            **{kind: sum(t[kind] for t in per_depth) for kind in ("never", "edge", "always")},
            "grown": 0,
            "added": 0,
        }
        history.append(row)
        if round_ == rounds or not frontier:
            break
        grown = generate_tree(
            problems,
            generator,
            depth=row["depth"] + 1,
            out_dir=out_dir,
            protect=protect,
            variants_per_node=variants_per_node,
            quality=quality,
            extend=True,
            expand=lambda n, grow=frozenset(frontier): n["id"] in grow,
        )
        row["grown"], row["added"] = len(frontier), len([n for n in grown if n.get("kept", True)]) - len(nodes)
        logger.info(
            "model level, round %d: %d of %d nodes at the edge; grew %d never-solved leaves, %d new nodes",
            round_ + 1,
            row["edge"],
            row["nodes"],
            row["grown"],
            row["added"],
        )
        if row["added"] <= 0:
            history.append({**row, "grown": 0, "added": 0})
            break
    return history


def select_by_solve_rate(dataset, rates: list[float | None], low: float = 0.0, high: float = 1.0):
    """Keep the rows whose solve rate is strictly between ``low`` and ``high``: with the defaults, the
    rows the model neither always nor never solves, where GRPO's group advantages are not all zero.
    ``dataset`` is a ``datasets.Dataset`` or a list of rows (a list comes back).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_list([{"integrand": "x"}, {"integrand": "x**2"}, {"integrand": "x**3"}])
        >>> list(select_by_solve_rate(ds, [0.0, 0.5, 1.0])["integrand"])
        ['x**2']
    """
    keep = [i for i, rate in enumerate(rates) if rate is not None and low < rate < high]
    return [dataset[i] for i in keep] if isinstance(dataset, list) else dataset.select(keep)


def build_train_dataset(script_args: ScriptArguments, training_args):
    """The prompt-ready training dataset described by ``script_args`` (see :class:`ScriptArguments`).

    Check it with :func:`check_against_eval_set` before training (``ladder_hf.grpo.train`` does)."""
    if bool(script_args.dataset_name) == bool(script_args.problems):
        raise ValueError("give exactly one of --dataset_name (variant data) or --problems (grow variants on the fly)")
    if script_args.problems:
        out_dir = os.path.join(training_args.output_dir, "variants")
        # The first process of each node grows (or resumes) the tree; the others wait, then read it.
        with training_args.main_process_first(desc="growing variant tree"):
            if training_args.local_process_index == 0:
                grow_variants(
                    script_args.problems,
                    out_dir,
                    script_args.variant_depth,
                    seed=script_args.variant_seed,
                    variants_per_node=script_args.variants_per_node,
                    max_nodes_per_root=script_args.max_variants_per_root,
                    protect=protected_problems(script_args),
                )
            dataset = load_variants_folder(out_dir, script_args.dataset_config or "variants")
    else:
        dataset = load_variant_dataset(
            script_args.dataset_name,
            config=script_args.dataset_config,
            revision=script_args.dataset_revision,
            split=script_args.dataset_train_split,
        )
    from ladder_hf.problems import validate_rows

    columns = [c for c in ("id", "integrand", "lower", "upper", "variable") if c in dataset.column_names]
    validate_rows(
        dataset.select_columns(columns), what=f"training data {script_args.dataset_name or script_args.problems}"
    )
    dataset = order_by_curriculum(dataset, script_args.curriculum)
    if script_args.max_train_samples is not None:
        dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
    return add_prompts(dataset, script_args.prompt())


def protected_problems(script_args: ScriptArguments) -> list[Problem]:
    """Every problem of ``script_args.eval_set`` (not only the ``eval_max_problems`` scored): what no
    training row may equal in disguise."""
    from ladder_hf.problems import load_problems

    return load_problems(script_args.eval_set, include_overlaps=True) if script_args.eval_set else []


def guarded_when_grown(folder: str) -> frozenset[str]:
    """Ids of the problems a variants folder's tree was guarded against when it was grown (its ``run.json``);
    empty for a folder without one."""
    from ladder_hf.variants.tree import RUN_FILE

    try:
        with open(os.path.join(folder, RUN_FILE), encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError):
        return frozenset()
    # guarded_ids: what every node was judged against (an extended tree: what all its runs protected)
    return frozenset(str(i) for i in run.get("guarded_ids", run.get("protected_ids")) or [])


def check_against_eval_set(dataset, script_args: ScriptArguments, guarded: Collection[str] = ()) -> str:
    """Refuse training rows equivalent to a problem of the evaluation set (the contamination guard's rule:
    equal up to an affine change of variable, a constant factor and an added constant); returns a one-line
    report for the log and the model card ("" when there is no evaluation set).

    ``guarded``: ids the rows' tree was already guarded against when it was grown
    (:func:`guarded_when_grown`). When they cover the whole evaluation set, its variants (depth >= 1)
    were judged then and are not judged again; roots always are.
    ``allow_eval_overlap`` turns the refusal into a warning, for a deliberate experiment.
    """
    protected = protected_problems(script_args)
    if not protected:
        return ""
    from ladder_hf.variants.base import parse_problem_integrand
    from ladder_hf.variants.quality import ContaminationGuard, integration_interval

    skip_variants = "depth" in dataset.column_names and {p.id for p in protected} <= set(guarded)
    columns = [c for c in ("id", "integrand", "lower", "upper", "depth") if c in dataset.column_names]
    exprs, intervals, names, skipped = [], [], [], 0
    for index, row in enumerate(dataset.select_columns(columns)):
        if skip_variants and (row.get("depth") or 0) > 0:
            skipped += 1
            continue
        exprs.append(parse_problem_integrand(str(row["integrand"])))
        intervals.append(integration_interval(row.get("lower") or "", row.get("upper") or ""))
        names.append(row.get("id") or f"row {index}")
    verdicts = ContaminationGuard(protected).judge_batch(exprs, intervals) if exprs else []
    pairs = zip(names, verdicts, strict=True)
    found = [f"{n} ~ {v.protected_id} ({v.rule})" for n, v in pairs if v.status == "contaminated"]
    unjudged = sum(v.status == "unjudged" for v in verdicts)
    report = (
        f"{len(exprs) + skipped} training rows checked against {len(protected)} problems of "
        f"{script_args.eval_set}: {len(found)} equivalent, {unjudged} could not be judged"
    )
    if skipped:
        report += f" ({skipped} variants were judged when their tree was grown under the same protection)"
    if found:
        listed = "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
        if not script_args.allow_eval_overlap:
            raise ValueError(
                f"{len(found)} training row(s) are equivalent to problems of the evaluation set "
                f"{script_args.eval_set}: "
                f"{listed}. Drop them (grow the tree with --problems and --eval_set, which protects it), or pass "
                "--allow_eval_overlap true to train on them anyway"
            )
        logger.warning("training on rows equivalent to evaluation problems (--allow_eval_overlap): %s", listed)
    return report


def load_eval_problems(script_args: ScriptArguments) -> list[Problem]:
    """The held-out problems of ``script_args.eval_set`` (empty when none), capped by ``eval_max_problems``."""
    from ladder_hf.problems import load_problems

    if not script_args.eval_set:
        return []
    problems = load_problems(script_args.eval_set)
    if script_args.eval_max_problems is not None:
        problems = problems[: script_args.eval_max_problems]
    return problems
