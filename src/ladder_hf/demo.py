"""``ladder-hf demo``: LADDER end to end on the embedded model, on a laptop CPU, in about 15-20 minutes.

The demo chains the package's public pieces, each stage writing an output folder that the matching
command can reuse, and skipping itself when that output already exists (rerun to resume):

1. pick problems: ``problems/train.jsonl`` and ``problems/test.jsonl`` (a seeded split); any command
   takes ``--problem_set ladder_demo/problems/test.jsonl``.
2. variant trees: ``variants/`` (``nodes.jsonl``, ``qc.json``, ...), as ``ladder-hf variants generate``
   writes it; publish it with ``ladder-hf variants push ladder_demo/variants``. Then the base model's
   solve rate on every node, and easier variants below the leaves it never solves (``--deepen_rounds``).
3. dataset: ``dataset/train.parquet``, the trees read through ``LadderDataset``;
   ``ladder-hf train --dataset_name ladder_demo/dataset`` trains on it.
4. evaluate the base model: ``eval_base/``, the files ``ladder-hf evaluate`` writes.
5. GRPO training (``ladder_hf.grpo``) on the nodes at the base model's level (``--solve_rate_samples``):
   ``model/`` (weights, ``trainer_state.json``, and the last
   checkpoint to resume from; ``--quick`` keeps only the final model);
   ``ladder-hf evaluate --model ladder_demo/model`` takes it.
6. evaluate the trained model: ``eval_trained/``.
7. report: ``report.md``, ``summary.json`` and
   ``plots/{reward,accuracy,tree_sizes,solve_rate_by_depth}.png``.

Stages 4 and 6 also sample answers to every node of the training trees (``--tree_samples``; stage 4
reuses stage 2's measurement when it is the same one), so the
report shows the model's solve rate per tree depth before and after training: LADDER's premise is that
the recursion reaches variants the model can solve, and this is where a reader sees whether it did.

The stage functions (:func:`split_problems`, :func:`build_variants`, :func:`materialise_dataset`,
:func:`evaluate_stage`, :func:`train_stage`, :func:`write_report`) are public so experiments
(``benchmarks/ladder_ablation.py``) reuse them.

Example:
    >>> from ladder_hf.demo import main
    >>> main(["--output_dir", "ladder_demo"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder_hf.problems import load_problems, resolve_prompt
from ladder_hf.store import atomic_path, atomic_write, read_jsonl, write_json, write_jsonl

logger = logging.getLogger(__name__)

STAGES = ("problems", "variants", "dataset", "eval_base", "train", "eval_trained", "report")
CONFIG_FILE = "demo_config.json"
MODEL_LEVEL_FILE = "model_level.json"
# Settings that change a stage's output; a resumed run must match them.
_OUTPUT_KEYS = (
    "model",
    "problem_set",
    "num_train_problems",
    "num_test_problems",
    "easy_test_problems",
    "easy_variants_per_root",
    "selection",
    "seed",
    "generator",
    "variant_depth",
    "variants_per_node",
    "max_nodes_per_root",
    "deepen_rounds",
    "deepen_samples",
    "train_on",
    "curriculum",
    "solve_rate_samples",
    "max_steps",
    "num_generations",
    "prompts_per_step",
    "max_completion_length",
    "learning_rate",
    "beta",
    "loss_type",
    "dynamic_level",
    "level_explore",
    "temperature",
    "reward_funcs",
    "reward_weights",
    "system_prompt",
    "eval_samples",
    "eval_max_new_tokens",
    "tree_samples",
)


@dataclass
class DemoConfig:
    """Settings of ``ladder-hf demo`` (each field is a command-line flag)."""

    output_dir: str = field(default="ladder_demo", metadata={"help": "Report folder; every stage writes under it."})
    model: str = field(
        default="default",
        metadata={
            "help": "Model to train: 'default' (embedded SmolLM2-135M-Instruct), a Hub id or a local path.",
            "aliases": ["--model_name_or_path", "--model-name-or-path"],  # TRL's name for it
        },
    )
    problem_set: str = field(
        default="undergrad", metadata={"help": "Bundled problem set (undergrad, mit-2025, ...) or a .jsonl of rows."}
    )
    num_train_problems: int = field(default=16, metadata={"help": "Root problems whose variant trees are trained on."})
    num_test_problems: int = field(default=10, metadata={"help": "Held-out problems evaluated before and after."})
    easy_test_problems: int = field(
        default=40,
        metadata={
            "help": "Size of the easy held-out set, scored before and after as well: the least difficult variants "
            "of the held-out problems, minus any the contamination guard finds equivalent to a training node or a "
            "few-shot example (0: none). "
            "A 135M model solves almost none of the real problems; this set shows whether what it learned transfers."
        },
    )
    easy_variants_per_root: int = field(
        default=10, metadata={"help": "Variants grown per held-out problem to draw the easy held-out set from."}
    )
    selection: str = field(
        default="shortest",
        metadata={
            "help": "'shortest': draw from the problems with the shortest integrands (a 135M model has a chance "
            "there); 'random': from the whole set. Either way a seeded shuffle splits train and test.",
            "choices": ["shortest", "random"],
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the split, the variant generator, training and sampling."})
    generator: str = field(
        default="symbolic",
        metadata={
            "help": "Variant writer: 'symbolic' (sympy mutations, fast, reliable) or 'model' (the paper's "
            "model-written variants, with --variant_model; SmolLM2-135M writes few usable ones).",
            "choices": ["symbolic", "model"],
        },
    )
    variant_model: str | None = field(
        default=None, metadata={"help": "Model that writes variants with --generator model (default: --model)."}
    )
    variant_depth: int = field(default=3, metadata={"help": "Levels of variants below each root."})
    variants_per_node: int = field(default=4, metadata={"help": "Candidates requested per parent (before QC)."})
    max_nodes_per_root: int | None = field(default=10, metadata={"help": "Cap on kept variants per tree."})
    variant_sympy_timeout: float = field(
        default=0.0,
        metadata={
            "help": "Seconds sympy.integrate gets per variant for the `sympy_solvable` flag (0: skip the check, "
            "the default: the demo does not need the flag, and it costs minutes on a CPU)."
        },
    )
    deepen_rounds: int = field(
        default=1,
        metadata={
            "help": "LADDER's recursion down to the model's level (ladder_hf.training_data.grow_to_model_level): "
            "after the trees are grown, measure the model's solve rate on every node and grow one more level of "
            "variants below each leaf it never solves, this many times (0: off)."
        },
    )
    deepen_samples: int = field(
        default=4, metadata={"help": "Answers sampled per node to measure the solve rate for --deepen_rounds."}
    )
    train_on: str = field(
        default="tree",
        metadata={
            "help": "'tree' (LADDER: roots and all their variants) or 'roots' (RL on the original problems only).",
            "choices": ["tree", "roots", "variants"],
        },
    )
    curriculum: str = field(
        default="none",
        metadata={
            "help": "Row order for GRPO (ladder_hf.grpo): 'none' (shuffled, as in the paper) or 'depth' / "
            "'difficulty' / 'depth_difficulty' (easiest first)."
        },
    )
    max_steps: int = field(default=40, metadata={"help": "GRPO optimizer steps."})
    num_generations: int = field(default=8, metadata={"help": "Completions per prompt (GRPO group size)."})
    prompts_per_step: int = field(default=1, metadata={"help": "Prompts per optimizer step."})
    max_completion_length: int = field(default=40, metadata={"help": "Token budget of a training completion."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate."})
    beta: float = field(
        default=0.0,
        metadata={"help": "KL coefficient (paper: 0.001). 0 skips the reference model: faster and lighter on a CPU."},
    )
    loss_type: str = field(
        default="dapo",
        metadata={
            "help": "GRPOConfig.loss_type, passed through: how token losses are aggregated ('dapo', TRL's default; "
            "'grpo', 'dr_grpo', 'bnpo' and the others TRL lists)."
        },
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature in training and evaluation."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["integration", "format"], metadata={"help": "Reward functions by name."}
    )
    reward_weights: list[float] = field(
        default_factory=lambda: [1.0, 0.0],
        metadata={
            "help": "One weight per reward function. The format reward is logged but weighs 0 by default: a group "
            "whose answers are all wrong then teaches nothing, instead of rewarding tags around a wrong answer."
        },
    )
    system_prompt: str = field(
        default="few_shot",
        metadata={
            "help": "'few_shot' (the package instruction plus three worked examples as real chat turns; default), "
            "'default' (the package prompt) or literal text."
        },
    )
    solve_rate_samples: int = field(
        default=4,
        metadata={
            "help": "LADDER's level selection: sample this many answers per training row before training and keep "
            "the rows the model neither always nor never solves (0: off, train on every row; see "
            "ladder_hf.grpo.select_at_model_level). With --deepen_rounds and as many --deepen_samples, the "
            "deepening's measurement is reused."
        },
    )
    dynamic_level: bool = field(
        default=False,
        metadata={
            "help": "Keep the level selection current while training (needs solve_rate_samples): each GRPO group "
            "re-measures its row, and prompts come from the rows on the edge now (ladder_hf.trainer.EdgeSampler)."
        },
    )
    level_explore: float = field(
        default=0.25, metadata={"help": "With dynamic_level: the share of prompts drawn from rows off the edge."}
    )
    eval_samples: int = field(default=4, metadata={"help": "Samples per held-out problem (pass@1 is their mean)."})
    tree_samples: int = field(
        default=4,
        metadata={
            "help": "Answers sampled per training-tree node with the base and with the trained model, for the "
            "solve rate per depth in the report (0: skip). With --deepen_rounds and as many --deepen_samples, the "
            "base model's table is the deepening's measurement."
        },
    )
    eval_max_new_tokens: int = field(default=40, metadata={"help": "Token budget of an evaluation completion."})
    eval_batch_size: int = field(default=16, metadata={"help": "Completions per generate() call in evaluation."})
    sympy_baseline: bool = field(default=True, metadata={"help": "Also score sympy.integrate on the held-out slice."})
    save_steps: int = field(
        default=5,
        metadata={
            "help": "Checkpoint every N steps, to resume after a crash (0: none; only the final model is saved)."
        },
    )
    quick: bool = field(
        default=False,
        metadata={
            "help": "Tiny smoke run (2+2 problems, depth 1 and one deepening round, 2 steps on every node, "
            "8-token completions); keeps only the final model (no checkpoints)."
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "Delete an earlier demo in output_dir and start over."})

    def __post_init__(self):
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [n.strip() for n in self.reward_funcs.split(",") if n.strip()]
        if self.quick:
            self.apply_quick()
        if len(self.reward_weights) != len(self.reward_funcs):
            raise ValueError(f"{len(self.reward_weights)} reward_weights for {len(self.reward_funcs)} reward_funcs")

    def apply_quick(self) -> None:
        """Shrink every budget to a smoke run (seconds with a tiny model, ~2 minutes with SmolLM2)."""
        self.num_train_problems, self.num_test_problems = 2, 2
        self.easy_test_problems, self.easy_variants_per_root = min(self.easy_test_problems, 2), 2
        self.variant_depth, self.variants_per_node, self.max_nodes_per_root = 1, 2, 4
        # the deepening still runs (one answer per node, reused for the solve-rate table), but two tiny trees
        # hold no node at the model's level, so GRPO trains on every row
        self.deepen_samples, self.solve_rate_samples, self.dynamic_level = 1, 0, False
        self.max_steps, self.num_generations, self.prompts_per_step = 2, 2, 1
        self.max_completion_length, self.eval_max_new_tokens = 8, 8
        # no checkpoints: a 2-step run restarts in seconds, and a SmolLM2 checkpoint with its optimizer
        # state is ~1.5 GB beside the final model
        self.eval_samples, self.save_steps, self.sympy_baseline, self.tree_samples = 1, 0, False, 1

    @property
    def prompt(self) -> str:
        """The prompt name or text handed to training and evaluation (``few_shot``, ``default`` or text)."""
        return self.system_prompt


# --------------------------------------------------------------------------------------------- stages


def split_problems(
    rows: list[dict],
    num_train: int,
    num_test: int,
    seed: int = 0,
    selection: str = "random",
    shown: list[dict] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Seeded, disjoint train/test split of problem rows (test first, so it does not move with ``num_train``).

    ``shown`` holds the rows the model sees in its prompt (:func:`prompt_examples`): a problem the
    contamination guard finds equivalent to one of them (``cos(3*x + 1)`` next to the example ``cos(2*x)``)
    is never held out, since a correct answer there would be the prompt copied, not transfer; it may still
    be a training root.

    Example:
        >>> rows = [{"id": str(i), "integrand": "x**" + str(i)} for i in range(10)]
        >>> train, test = split_problems(rows, 3, 2, seed=0)
        >>> len(train), len(test), set(r["id"] for r in train) & set(r["id"] for r in test)
        (3, 2, set())
    """
    import random

    if num_train < 0 or num_test < 0:
        raise ValueError("num_train and num_test must be >= 0")
    if num_train + num_test > len(rows):
        raise ValueError(f"asked for {num_train} + {num_test} problems but the set has {len(rows)}")
    pool = sorted(rows, key=lambda r: str(r["id"]))
    if selection == "shortest":
        pool = sorted(pool, key=lambda r: (len(str(r["integrand"])), str(r["id"])))[: num_train + num_test]
    elif selection != "random":
        raise ValueError(f"selection must be 'shortest' or 'random', not {selection!r}")
    random.Random(seed).shuffle(pool)
    clean = clean_against(pool, shown or [])
    test = [r for r, ok in zip(pool, clean, strict=True) if ok][:num_test]
    if len(test) < num_test:
        raise ValueError(f"only {len(test)} problems are unlike every prompt example; asked for {num_test} held out")
    held = {id(r) for r in test}
    train = [r for r in pool if id(r) not in held][:num_train]
    return [dict(r) for r in train], [dict(r) for r in test]


def prompt_examples(prompt: str) -> list[dict]:
    """The worked examples a prompt shows the model, as problem rows (none for a plain system prompt): what
    the contamination guard keeps out of every held-out set.

    Example:
        >>> [row["integrand"] for row in prompt_examples("few_shot")]
        ['x**4', 'cos(2*x)', 'exp(3*x)']
    """
    from ladder_hf.problems import resolve_prompt

    return [{"id": f"few-shot-{i}", "integrand": f} for i, (f, _) in enumerate(resolve_prompt(prompt).examples)]


def make_generator(config: DemoConfig):
    """The variant generator the config names (symbolic by default)."""
    from ladder_hf.variants import make_generator

    return make_generator(config.generator, seed=config.seed, model_name_or_path=config.variant_model or config.model)


def _quality(config: DemoConfig):
    from ladder_hf.variants import QualityConfig

    timeout = config.variant_sympy_timeout
    return QualityConfig(sympy_timeout=timeout if timeout > 0 else 5.0, check_solvable=timeout > 0)


def build_variants(train: list[dict], test: list[dict], out_dir: str, config: DemoConfig, generator=None) -> list[dict]:
    """Grow (or resume) the variant trees of ``train``; the held-out ``test`` problems are protected."""
    from ladder_hf.variants import generate_tree

    quality = _quality(config)
    return generate_tree(
        train,
        generator if generator is not None else make_generator(config),
        depth=config.variant_depth,
        out_dir=out_dir,
        protect=test or None,
        variants_per_node=config.variants_per_node,
        max_nodes_per_root=config.max_nodes_per_root,
        quality=quality,
    )


def easy_held_out_set(test: list[dict], train_nodes: list[dict], out_dir: str, config: DemoConfig) -> list[dict]:
    """The least difficult variants of the held-out problems that nothing in training is equivalent to.

    The held-out problems' own trees are grown in ``out_dir`` (never trained on). A variant is dropped
    when the contamination guard finds it equal to a node of a training tree or to a few-shot example of
    the prompt, up to the changes a variant generator makes (``c*f(a*x + b) + d``: `8*x**2` next to a
    training node `10*x**2`, `-x` next to `2*x`, `cos(6*x)` next to the example `cos(2*x)`), so a correct
    answer here is transfer to a function family the model was neither trained on nor shown. Variants without
    an elementary antiderivative (:func:`elementary_variants`) are not easy and are left out. The
    ``config.easy_test_problems`` least difficult of the rest (by the generator's difficulty score) are
    returned as problem rows with ``easy-`` ids.

    Example:
        >>> rows = easy_held_out_set(test, train_nodes, "ladder_demo/test_variants", DemoConfig())  # doctest: +SKIP
        >>> rows[0]["id"]  # doctest: +SKIP
        'easy-ug-023.2.0'
    """
    # quick=False: the config is already shrunk, and __post_init__ would shrink these two again
    grow = dataclasses.replace(
        config, variants_per_node=3, max_nodes_per_root=config.easy_variants_per_root, quick=False
    )
    nodes = build_variants(test, [], out_dir, grow)

    def key(text) -> str:
        return str(text).replace(" ", "")

    candidates = [n for n in nodes if n["depth"] > 0 and n.get("kept", True)]
    unique = list({key(n["integrand"]): n for n in sorted(candidates, key=lambda n: n["id"], reverse=True)}.values())
    unique.sort(key=lambda n: (n.get("difficulty") if n.get("difficulty") is not None else float("inf"), n["id"]))
    seen = [n for n in train_nodes if n.get("kept", True)]
    seen += prompt_examples(config.prompt)
    fresh = [n for n, clean in zip(unique, clean_against(unique, seen), strict=True) if clean]
    easy = elementary_variants(fresh, config.easy_test_problems)
    rows = [
        {
            "id": f"easy-{n['id']}",
            "integrand": n["integrand"],
            "lower": n.get("lower") or "",
            "upper": n.get("upper") or "",
            "difficulty": n.get("difficulty"),
        }
        for n in easy
    ]
    logger.info(
        "easy held-out: %d of %d held-out-tree variants (%d equivalent to a training node or a few-shot example)",
        len(rows),
        len(unique),
        len(unique) - len(fresh),
    )
    return rows


def elementary_variants(nodes: list[dict], limit: int, sympy_timeout: float = 5.0) -> list[dict]:
    """The first ``limit`` nodes, in order, whose sympy antiderivative is elementary (:func:`elementary_answer`).

    A node without a recorded antiderivative (trees grown with ``variant_sympy_timeout: 0``, or sympy gave up
    while the tree grew) gets ``sympy.integrate`` now, in the sandbox, ``sympy_timeout`` seconds; one sympy
    cannot integrate in that time is not easy either. Work goes in chunks of ``limit`` nodes, so a long list
    costs only what the kept rows need.

    Example:
        >>> nodes = [{"integrand": "1/log(x)"}, {"integrand": "x*exp(x)"}, {"integrand": "1/(x + 3)"}]
        >>> [n["integrand"] for n in elementary_variants(nodes, 5)]  # doctest: +SKIP
        ['x*exp(x)', '1/(x + 3)']
    """
    from ladder_hf.variants.quality import fill_sympy_antiderivatives

    kept: list[dict] = []
    for start in range(0, len(nodes), max(limit, 1)):
        if len(kept) >= limit:
            break
        chunk = [dict(n) for n in nodes[start : start + max(limit, 1)]]
        fill_sympy_antiderivatives(chunk, sympy_timeout)
        kept += [n for n in chunk if elementary_answer(n)]
    return kept[:limit]


def elementary_answer(node: dict) -> bool:
    """False when the node's sympy antiderivative needs a special function (``1/log(x)`` -> ``li(x)``), is not
    in the answer language at all, or was not found (none recorded); True when it is elementary.

    Example:
        >>> elementary_answer({"sympy_antiderivative": "li(x)"}), elementary_answer({"sympy_antiderivative": "x**2/2"})
        (False, True)
    """
    from ladder_hf.verifier import MathParseError
    from ladder_hf.verifier.parsing import special_functions

    answer = node.get("sympy_antiderivative") or ""
    if not answer:
        return False
    try:
        return not special_functions(answer)
    except MathParseError:
        return False


def clean_against(rows: list[dict], trained: list[dict]) -> list[bool]:
    """For each row, whether the contamination guard finds it equivalent to none of the ``trained`` rows
    (their integrands protected, the rows judged): the check a held-out problem has to pass.

    Example:
        >>> clean_against([{"integrand": "8*x**2"}, {"integrand": "x*exp(x)"}], [{"id": "n", "integrand": "10*x**2"}])
        [False, True]
    """
    from ladder_hf.variants.base import parse_problem_integrand
    from ladder_hf.variants.quality import ContaminationGuard, integration_interval

    if not rows or not trained:
        return [True] * len(rows)
    protected = [{"id": n.get("id") or str(i), "integrand": n["integrand"]} for i, n in enumerate(trained)]
    guard = ContaminationGuard(protected)
    verdicts = guard.judge_batch(
        [parse_problem_integrand(r["integrand"]) for r in rows],
        [integration_interval(r.get("lower") or "", r.get("upper") or "") for r in rows],
    )
    return [v.status == "clean" for v in verdicts]


def deepen_to_model_level(train: list[dict], protect: list[dict], variants_dir: str, config: DemoConfig) -> list[dict]:
    """Grow the trees in ``variants_dir`` below the leaves ``config.model`` never solves
    (:func:`ladder_hf.training_data.grow_to_model_level`, ``config.deepen_rounds`` rounds); no new variant
    may equal a ``protect`` problem (the held-out sets) under the contamination guard. The solve rates go
    to ``level_solve_rates.jsonl`` beside the folder and the per-round table to ``model_level.json``;
    returns that table.
    """
    from ladder_hf.generation import load_backend
    from ladder_hf.training_data import LEVEL_SOLVE_RATES_FILE, deepening_generator, grow_to_model_level

    parent = os.path.dirname(os.path.abspath(variants_dir))
    generator = make_generator(config)
    history = grow_to_model_level(
        train,
        deepening_generator(generator),
        variants_dir,
        lambda: load_backend("transformers", config.model, batch_size=config.eval_batch_size, seed=config.seed),
        rounds=config.deepen_rounds,
        samples=config.deepen_samples,
        variants_per_node=config.variants_per_node,
        protect=protect or None,
        quality=_quality(config),
        prompt=config.prompt,
        max_new_tokens=config.eval_max_new_tokens,
        temperature=config.temperature,
        seed=config.seed,
        store_path=os.path.join(parent, LEVEL_SOLVE_RATES_FILE),
    )
    write_json(os.path.join(parent, MODEL_LEVEL_FILE), history)
    return history


def grow_trees(train: list[dict], test: list[dict], out: Path, config: DemoConfig) -> list[dict]:
    """Grow (or resume) the training trees in ``out/variants``, fix the easy held-out set
    (``out/problems/test_easy.jsonl``, drawn from ``out/test_variants``), then, with ``config.deepen_rounds``,
    grow the trees down to the model's level, guarded against both held-out sets. Returns the easy rows.
    The demo's variants stage and ``benchmarks/ladder_ablation.py`` both run it.
    """
    from ladder_hf.dataset import read_nodes
    from ladder_hf.training_data import LEVEL_SOLVE_RATES_FILE

    variants_dir, easy_path = str(out / "variants"), out / "problems" / "test_easy.jsonl"
    level_done = (out / MODEL_LEVEL_FILE).is_file()
    if level_done or (out / LEVEL_SOLVE_RATES_FILE).is_file():
        # the deepening has started: the folder holds more than these settings grow, and it resumes on its own
        train_nodes = [n for n in read_nodes(variants_dir) if n.get("kept", True)]
    else:
        train_nodes = build_variants(train, test, variants_dir, config)
    if config.easy_test_problems > 0 and not easy_path.is_file():
        write_jsonl(str(easy_path), easy_held_out_set(test, train_nodes, str(out / "test_variants"), config))
    easy = read_jsonl(str(easy_path)) if config.easy_test_problems > 0 and easy_path.is_file() else []
    if config.deepen_rounds > 0 and not level_done:
        # both held-out sets are fixed first, and every deeper variant is guarded against them
        deepen_to_model_level(train, test + easy, variants_dir, config)
    return easy


_SLICES = {"tree": "all", "roots": "roots", "variants": "variants"}


def materialise_dataset(variants_dir: str, out_dir: str, train_on: str = "tree") -> dict:
    """Read a variants folder through ``LadderDataset`` and write ``out_dir/train.parquet``.

    Returns ``{"rows": n, "per_depth": {depth: count}}``. The folder loads with
    ``datasets.load_dataset(out_dir)`` and is what ``ladder-hf train --dataset_name`` takes.
    """
    from ladder_hf.dataset import load_ladder_dataset

    if train_on not in _SLICES:
        raise ValueError(f"train_on must be one of {sorted(_SLICES)}, not {train_on!r}")
    dataset = load_ladder_dataset(variants_dir, _SLICES[train_on])
    with atomic_path(os.path.join(out_dir, "train.parquet"), suffix=".parquet") as tmp:
        dataset.to_parquet(tmp)
    per_depth = Counter(int(d) for d in dataset["depth"])
    return {"rows": len(dataset), "per_depth": {str(k): per_depth[k] for k in sorted(per_depth)}}


def evaluate_stage(model: str, problems_path: str, out_dir: str, config: DemoConfig, sympy_baseline: bool) -> dict:
    """``ladder-hf evaluate`` on the held-out slice (resumable; the same files the command writes)."""
    from ladder_hf.evaluation import evaluate_model

    return evaluate_model(
        model,
        problem_set=problems_path,
        output_dir=out_dir,
        num_samples=config.eval_samples,
        max_new_tokens=config.eval_max_new_tokens,
        temperature=config.temperature if config.eval_samples > 1 else 0.0,
        batch_size=config.eval_batch_size,
        seed=config.seed,
        system_prompt=config.prompt,
        sympy_baseline=sympy_baseline,
    )


def grpo_settings(dataset_dir: str, out_dir: str, config: DemoConfig) -> dict[str, Any]:
    """The recipe settings (``ScriptArguments`` + ``GRPOConfig`` + ``ModelConfig`` keys) of a demo training run.

    Written to ``<out_dir>/grpo_config.yaml`` so ``ladder-hf train --config`` reruns or extends it.
    """
    import torch

    return {
        # ModelConfig
        "model_name_or_path": config.model,
        "dtype": "float32",
        # ladder_hf.configs.ScriptArguments
        "dataset_name": dataset_dir,
        "system_prompt": config.prompt,
        "reward_funcs": list(config.reward_funcs),
        "curriculum": config.curriculum,
        "solve_rate_samples": config.solve_rate_samples,
        "solve_rate_max_new_tokens": config.max_completion_length,
        "dynamic_level": config.dynamic_level,
        "level_explore": config.level_explore,
        # GRPOConfig
        "output_dir": out_dir,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": False,
        # GRPOConfig turns activation checkpointing on by default: for a small model on a CPU it only adds
        # a forward pass to every step
        "activation_checkpointing": torch.cuda.is_available(),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.num_generations * config.prompts_per_step,
        "gradient_accumulation_steps": 1,
        "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_length,
        "temperature": config.temperature,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": "constant",
        "beta": config.beta,
        "loss_type": config.loss_type,
        "reward_weights": list(config.reward_weights),
        "logging_steps": 1,
        # the final model is saved either way (ladder_hf.grpo.train); checkpoints only serve a resume
        "save_strategy": "steps" if config.save_steps > 0 else "no",
        "save_steps": max(config.save_steps, 1),
        "save_total_limit": 1,
        "report_to": "none",
        "seed": config.seed,
        "data_seed": config.seed,
        "dataloader_num_workers": 0,
    }


def grpo_arguments(dataset_dir: str, out_dir: str, config: DemoConfig):
    """``(ScriptArguments, GRPOConfig, ModelConfig)`` for :func:`ladder_hf.grpo.train` from a demo config."""
    import yaml

    from ladder_hf.grpo import make_parser

    settings = grpo_settings(dataset_dir, out_dir, config)
    path = os.path.join(out_dir, "grpo_config.yaml")
    header = "# Written by `ladder-hf demo`; rerun or extend with: ladder-hf train --config " + path + "\n"
    atomic_write(path, header + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    # The recipe's own parser reads it back, so the file is checked to be a valid recipe config.
    return make_parser().parse_args_and_config(args=["--config", path])


TREE_SOLVE_RATES_FILE = "tree_solve_rates.jsonl"


def tree_solve_rates(model: str, dataset_dir: str, out_dir: str, config: DemoConfig) -> list[dict]:
    """The model's solve rate per depth on the training trees: ``config.tree_samples`` answers per node,
    sampled like the held-out evaluation and judged by the verifier (stored per node in
    ``<out_dir>/tree_solve_rates.jsonl``, so a killed run resumes).

    One row per depth with the pooled count: ``solved`` of ``answers`` (``nodes`` x samples), its 95%
    Wilson interval, and how many nodes were never, sometimes (the model's edge) and always solved.
    """
    import datasets

    from ladder_hf.evaluation import wilson_interval
    from ladder_hf.generation import load_backend
    from ladder_hf.training_data import measure_solve_rates, solve_rate_table

    columns = ["integrand", "lower", "upper", "depth"]
    rows = datasets.Dataset.from_parquet(os.path.join(dataset_dir, "train.parquet")).select_columns(columns)
    rows = rows.to_list()
    rates = measure_solve_rates(
        rows,
        lambda: load_backend("transformers", model, batch_size=config.eval_batch_size, seed=config.seed),
        samples=config.tree_samples,
        prompt=config.prompt,
        max_new_tokens=config.eval_max_new_tokens,
        temperature=config.temperature,
        seed=config.seed,
        store_path=os.path.join(out_dir, TREE_SOLVE_RATES_FILE),
        chunk=max(1, config.eval_batch_size // config.tree_samples),
    )
    table = []
    for line in solve_rate_table(rows, rates):
        answers = line["rows"] * config.tree_samples
        solved = round(line["mean_solve_rate"] * answers)
        table.append(
            {
                "depth": line["depth"],
                "nodes": line["rows"],
                "answers": answers,
                "solved": solved,
                "solve_rate": line["mean_solve_rate"],
                "ci95": list(wilson_interval(solved, answers)),
                "never": line["never"],
                "edge": line["edge"],
                "always": line["always"],
            }
        )
    return table


def train_stage(dataset_dir: str, out_dir: str, config: DemoConfig) -> dict:
    """GRPO with :func:`ladder_hf.grpo.train` on the materialised dataset; resumes from its last checkpoint."""
    from ladder_hf.grpo import train

    summary = train(*grpo_arguments(dataset_dir, out_dir, config))
    return {"output_dir": summary["output_dir"], "global_step": summary["global_step"]}


def is_trained(model_dir: str) -> bool:
    """True when ``model_dir`` holds a finished training run (final weights and trainer state)."""
    path = Path(model_dir)
    has_weights = any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file()
    return has_weights and (path / "trainer_state.json").is_file()


def read_reward_history(model_dir: str) -> list[dict]:
    """Per-step training logs (``reward``, ``rewards/<func>/mean``, ...) from ``trainer_state.json``."""
    path = Path(model_dir) / "trainer_state.json"
    if not path.is_file():
        return []
    history = json.loads(path.read_text(encoding="utf-8")).get("log_history", [])
    return [row for row in history if "reward" in row and "step" in row]


def tree_sizes(variants_dir: str) -> dict[str, int]:
    """Kept nodes per depth of a variants folder (read through ``LadderDataset``)."""
    from ladder_hf.dataset import load_ladder_dataset

    depths = Counter(int(d) for d in load_ladder_dataset(variants_dir, "all")["depth"])
    return {str(k): depths[k] for k in sorted(depths)}


# --------------------------------------------------------------------------------------------- report


def _score(summary: dict) -> dict:
    model = summary.get("model", {})
    k = summary.get("config", {}).get("num_samples", 1)
    out = {
        "accuracy": model.get("accuracy"),
        "answer_rate": model.get("answer_rate"),
        f"pass@{k}": model.get(f"pass@{k}", model.get("accuracy")),
        "problems": model.get("count"),
        "samples": k,
    }
    if out["accuracy"] is not None and out["problems"]:
        from ladder_hf.evaluation import wilson_interval

        n = int(out["problems"]) * int(k)
        out["accuracy_ci95"] = list(wilson_interval(out["accuracy"] * n, n))
    if summary.get("sympy"):
        out["sympy_accuracy"] = summary["sympy"].get("accuracy")
    return out


def held_out_verdict(base: dict, trained: dict, what: str = "pass@1", where: str = "this slice") -> str:
    """One sentence on the change of ``what`` (a rate with its 95% interval, ``accuracy`` and ``accuracy_ci95``):
    the gain in points and whether the intervals separate it from noise (the project's rule: a difference
    inside overlapping intervals is called noise).

    Example:
        >>> held_out_verdict({"accuracy": 0.1, "accuracy_ci95": [0.05, 0.2]},
        ...                  {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6]})
        'pass@1 +40.0 points; the 95% intervals do not overlap: a real change on this slice.'
    """
    if base.get("accuracy") is None or trained.get("accuracy") is None:
        return f"{what} could not be compared."
    gain = 100 * (trained["accuracy"] - base["accuracy"])
    (bl, bh), (tl, th) = base.get("accuracy_ci95") or (0, 1), trained.get("accuracy_ci95") or (0, 1)
    if th < bl or tl > bh:
        return f"{what} {gain:+.1f} points; the 95% intervals do not overlap: a real change on {where}."
    return f"{what} {gain:+.1f} points; the 95% intervals overlap: noise at this sample size."


def _save_figure(fig, path: str) -> str:
    """Lay out, write (PNG, 120 dpi) and close a report figure; return its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reward_window(steps: int) -> int:
    """Steps averaged for the report's "first vs last" reward and the plot's running mean: a quarter of the
    run, at most 10.

    Example:
        >>> reward_window(40), reward_window(8), reward_window(2)
        (10, 2, 1)
    """
    return max(1, min(10, steps // 4))


def trailing_mean(histories: list[list[dict]], key: str, window: int) -> tuple[list[int], list[float]]:
    """``key`` per step, averaged over the runs' log histories (e.g. seeds), then over a trailing window of
    ``window`` steps; steps where no run logged ``key`` are left out.

    Example:
        >>> trailing_mean([[{"step": 1, "reward": 0.0}, {"step": 2, "reward": 1.0}], [{"step": 2, "reward": 0.0}]],
        ...               "reward", 2)
        ([1, 2], [0.0, 0.25])
    """
    per_step: dict[int, list[float]] = {}
    for history in histories:
        for row in history:
            if row.get(key) is not None:
                per_step.setdefault(row["step"], []).append(row[key])
    steps = sorted(per_step)
    means = [sum(per_step[s]) / len(per_step[s]) for s in steps]
    running = []
    for i in range(len(means)):
        recent = means[max(0, i - window + 1) : i + 1]
        running.append(sum(recent) / len(recent))
    return steps, running


def plot_rewards(history: list[dict], path: str, title: str = "GRPO reward per step") -> str:
    """Line plot of the total reward and each reward function's mean per optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    steps = [row["step"] for row in history]
    totals = [row["reward"] for row in history]
    ax.plot(steps, totals, marker="o", alpha=0.5, label="total (weighted)")
    window = reward_window(len(history))
    if window > 1:
        # one prompt per step makes single steps jumpy; the running mean shows the trend
        ax.plot(
            *trailing_mean([history], "reward", window),
            color="black",
            linewidth=2,
            label=f"total, mean of the last {window} steps",
        )
    for key in sorted({k for row in history for k in row if k.startswith("rewards/") and k.endswith("/mean")}):
        ax.plot(steps, [row.get(key) for row in history], marker=".", linestyle="--", label=key.split("/")[1])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("mean reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return _save_figure(fig, path)


def plot_accuracy(scores: dict[str, dict], path: str, title: str = "Held-out slice") -> str:
    """Grouped bars: pass@1 and answer rate per system (e.g. base vs trained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    metrics = [("accuracy", "pass@1 (verified)"), ("answer_rate", "answer in tags")]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, (key, label) in enumerate(metrics):
        values = [100 * (scores[n].get(key) or 0.0) for n in names]
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        errors = None
        if key == "accuracy" and all(scores[n].get("accuracy_ci95") for n in names):
            # the 95% interval as an error bar: a gain inside it is noise
            low = [v - 100 * scores[n]["accuracy_ci95"][0] for v, n in zip(values, names, strict=True)]
            high = [100 * scores[n]["accuracy_ci95"][1] - v for v, n in zip(values, names, strict=True)]
            errors = [low, high]
        bars = ax.bar(xs, values, width, label=label, yerr=errors, capsize=4 if errors else 0)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("% of samples")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save_figure(fig, path)


def plot_tree_sizes(per_depth: dict[str, int], path: str, title: str = "Variant tree sizes") -> str:
    """Bars: kept nodes per depth (depth 0 = the original problems)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = sorted(per_depth, key=int)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    bars = ax.bar(range(len(depths)), [per_depth[d] for d in depths], color="tab:green")
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.bar_label(bars, fontsize=8)
    ax.set_xlabel("depth (0 = original problem)")
    ax.set_ylabel("kept nodes")
    ax.set_title(title)
    return _save_figure(fig, path)


def pooled_solve_rate(table: list[dict]) -> dict:
    """The ``"all"`` row of a per-depth solve-rate table: every node pooled, with its 95% Wilson interval.

    Example:
        >>> row = pooled_solve_rate([
        ...     {"depth": 0, "nodes": 2, "answers": 8, "solved": 0, "never": 2, "edge": 0, "always": 0},
        ...     {"depth": 1, "nodes": 3, "answers": 12, "solved": 4, "never": 1, "edge": 2, "always": 0}])
        >>> row["depth"], row["solved"], row["answers"], row["solve_rate"], row["edge"]
        ('all', 4, 20, 0.2, 2)
    """
    from ladder_hf.evaluation import wilson_interval

    row: dict[str, Any] = {"depth": "all"}
    for key in ("nodes", "answers", "solved", "never", "edge", "always"):
        row[key] = sum(r[key] for r in table)
    row["solve_rate"] = row["solved"] / row["answers"] if row["answers"] else 0.0
    row["ci95"] = list(wilson_interval(row["solved"], row["answers"]))
    return row


def _with_all_nodes(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Each model's per-depth table with its pooled ``"all"`` row last (empty tables left out)."""
    return {name: [*table, pooled_solve_rate(table)] for name, table in tables.items() if table}


def plot_solve_rates(tables: dict[str, list[dict]], path: str, title: str = "Solve rate per tree depth") -> str:
    """Grouped bars with 95% intervals: per depth and over all nodes, the share of answers the verifier
    accepts, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = _with_all_nodes(tables)
    depths = list(dict.fromkeys(row["depth"] for table in tables.values() for row in table))
    width = 0.8 / max(1, len(tables))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for j, (name, table) in enumerate(tables.items()):
        by_depth = {row["depth"]: row for row in table}
        xs = [i + (j - (len(tables) - 1) / 2) * width for i in range(len(depths))]
        values = [100 * by_depth[d]["solve_rate"] if d in by_depth else 0.0 for d in depths]
        low = [v - 100 * by_depth[d]["ci95"][0] if d in by_depth else 0.0 for v, d in zip(values, depths, strict=True)]
        high = [100 * by_depth[d]["ci95"][1] - v if d in by_depth else 0.0 for v, d in zip(values, depths, strict=True)]
        bars = ax.bar(xs, values, width, label=name, yerr=[low, high], capsize=4)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlabel("depth (0 = original problem); all = every node")
    ax.set_ylabel("% of answers verified correct")
    # a scale that shows a few percent: a 135M model solves few nodes
    top = max(100 * row["ci95"][1] for table in tables.values() for row in table)
    ax.set_ylim(0, min(105, max(10, 1.25 * top)))
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save_figure(fig, path)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _interval(score: dict) -> str:
    if not score.get("accuracy_ci95"):
        return "–"
    low, high = score["accuracy_ci95"]
    return f"[{_pct(low)}, {_pct(high)}] (n={int(score['problems']) * int(score['samples'])})"


def _prompt_text(prompt: str) -> str:
    """The prompt as the model sees it, for the report: the system turn, then the example turns."""
    spec = resolve_prompt(prompt)
    lines = [spec.system_prompt or "(no system prompt)"]
    for integrand, answer in spec.examples:
        lines += ["", f"user: Find the indefinite integral: ∫ {integrand} dx", f"assistant: <answer>{answer}</answer>"]
    return "\n".join(lines)


def render_report(summary: dict) -> str:
    """The demo's markdown report from its ``summary.json`` content."""
    c, out = summary["config"], summary["output_dir"]
    base, trained = summary["scores"]["base"], summary["scores"]["trained"]
    k = c["eval_samples"]
    rewards = summary["rewards"]
    lines = [
        "# LADDER demo report",
        "",
        f"Model `{c['model']}` trained with GRPO on {c['generator']} variant trees of "
        f"{summary['problems']['train']} `{c['problem_set']}` problems, evaluated on "
        f"{summary['problems']['test']} held-out ones"
        + (
            f" and on {summary['problems']['easy']} easy variants of them (never trained on)"
            if summary.get("scores_easy")
            else ""
        )
        + f" ({k} samples each, temperature {c['temperature'] if k > 1 else 0}, "
        f"{c['eval_max_new_tokens']} new tokens).",
        "",
        "## Held-out accuracy",
        "",
        f"| held-out set | system | pass@1 | 95% interval (n) | pass@{k} | answered in tags |",
        "|---|---|---|---|---|---|",
    ]
    sets = [(f"{summary['problems']['test']} held-out problems", base, trained)]
    if summary.get("scores_easy"):
        easy = summary["scores_easy"]
        sets.append((f"{summary['problems']['easy']} easy variants of them", easy["base"], easy["trained"]))
    steps = summary["train"]["global_step"]
    for name, before, after in sets:
        for system, score in (("base", before), (f"after {steps} GRPO steps", after)):
            lines.append(
                f"| {name} | {system} | {_pct(score['accuracy'])} | {_interval(score)} "
                f"| {_pct(score[f'pass@{k}'])} | {_pct(score['answer_rate'])} |"
            )
    if base.get("sympy_accuracy") is not None:
        lines.append(f"| {sets[0][0]} | sympy.integrate (reference) | {_pct(base['sympy_accuracy'])} | – | – | – |")
    lines += [""]
    for name, before, after in sets:
        lines.append(f"- {name}: {held_out_verdict(before, after)}")
    lines += [
        "",
        "Samples of one problem are correlated, so the intervals (Wilson, over problems x samples) are if "
        "anything too narrow. No tree node is equivalent to a held-out problem or an easy variant of one (the "
        "contamination guard), so a gain here is transfer to other problems. GRPO can only amplify answers the "
        "model samples: `benchmarks/pass_at_k.py` measures how often it samples a right one, in many tries "
        "(docs/results.md: in 64 answers per problem, the embedded model solves 2 of 60 such easy problems).",
        "",
        "![accuracy](plots/accuracy.png)",
        "",
        "## Variant trees",
        "",
        "| depth | kept nodes |",
        "|---|---|",
        *(f"| {d} | {n} |" for d, n in summary["tree_sizes"].items()),
        "",
        f"Training rows ({c['train_on']}): {summary['dataset']['rows']}. QC funnel: "
        + ", ".join(f"{k_} {v}" for k_, v in summary.get("qc_funnel", {}).items()),
        "",
        "![tree sizes](plots/tree_sizes.png)",
        "",
        *_model_level_section(summary),
        *_solve_rate_section(summary),
        "## Training",
        "",
        f"{summary['train']['global_step']} steps, {c['prompts_per_step']} prompt(s) x {c['num_generations']} "
        f"completions of up to {c['max_completion_length']} tokens, lr {c['learning_rate']}, beta {c['beta']}, "
        f"loss {c.get('loss_type', 'dapo')}, "
        + (f"level kept current (explore {c['level_explore']:g}), " if c.get("dynamic_level") else "")
        + f"rewards {c['reward_funcs']} weighted {c['reward_weights']}.",
        "",
    ]
    level = summary.get("level_selection")
    if level and level["rows"]:
        lines += [
            f"Prompts came from the {level['rows']} of {level['of']} tree nodes at the base model's level (solved in "
            f"some but not all of {level['samples']} answers): LADDER's level selection "
            "(`--solve_rate_samples`).",
            "",
        ]
    elif level:
        lines += [
            f"None of the {level['of']} tree nodes was at the base model's level (solved in some but not all of "
            f"{level['samples']} answers), so GRPO trained on every node: a group whose answers are all wrong "
            "teaches nothing. Deeper trees (`--variant_depth`, `--deepen_rounds`) reach further down.",
            "",
        ]
    if rewards:
        window = reward_window(len(rewards))
        first, last = rewards[:window], rewards[-window:]

        def mean(rows: list[dict], key: str) -> float:
            return sum(r[key] for r in rows) / len(rows)

        sentence = (
            f"Mean reward over {_steps(first)}: {mean(first, 'reward'):.3f}; "
            f"over {_steps(last)}: {mean(last, 'reward'):.3f}"
        )
        if all("frac_reward_zero_std" in r for r in first + last):
            sentence += (
                " (groups in which every answer got the same reward, which teach nothing: "
                f"{_pct(mean(first, 'frac_reward_zero_std'))} -> {_pct(mean(last, 'frac_reward_zero_std'))})"
            )
        lines += [sentence + ".", ""]
    lines += [
        "![reward per step](plots/reward.png)",
        "",
        "<details><summary>Prompt used for training and evaluation (system turn, then the example turns)</summary>",
        "",
        "```text",
        summary.get("system_prompt", ""),
        "```",
        "",
        "</details>",
        "",
        "## Stage wall times",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {s} | {t:.0f} |" for s, t in summary["wall_time_s"].items()),
        "",
        "## Reuse the outputs",
        "",
        "```bash",
        f"ladder-hf variants push {out}/variants --repo <user>/<dataset> --tag v1.0   # publish the variant trees",
        f"ladder-hf train --config {out}/model/grpo_config.yaml --max_steps 100 --output_dir {out}/model-100",
        f"ladder-hf evaluate --model {out}/model --problem_set {out}/problems/test.jsonl   # evaluate the model",
        "```",
        "",
    ]
    return "\n".join(lines)


def _steps(rows: list[dict]) -> str:
    first, last = rows[0]["step"], rows[-1]["step"]
    return f"step {first}" if first == last else f"steps {first}-{last}"


def _model_level_section(summary: dict) -> list[str]:
    history = summary.get("model_level") or []
    if not history:
        return []
    lines = [
        "## Down to the model's level",
        "",
        f"Before training, the base model's solve rate was measured on every tree node "
        f"({summary['config']['deepen_samples']} answers each), and one more level of variants was grown below "
        "each leaf it never solved (`--deepen_rounds`): LADDER's recursion, continued until the variants reach "
        "what the model can do.",
        "",
        "| round | deepest level | nodes measured | never / edge / always | leaves grown | nodes added |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(history):
        lines.append(
            f"| {i} | {row['depth']} | {row['nodes']} | {row['never']} / {row['edge']} / {row['always']} "
            f"| {row['grown']} | {row['added']} |"
        )
    return [*lines, ""]


def _solve_rate_section(summary: dict) -> list[str]:
    tables = summary.get("tree_solve_rates") or {}
    if not any(tables.values()):
        return []
    samples = summary["config"].get("tree_samples")
    lines = [
        "## Solve rate per depth (training trees)",
        "",
        f"Every node of the training trees, {samples} answer(s) each, sampled as in the held-out evaluation. "
        "LADDER's premise is that deeper variants are easier until the model can solve some: nodes solved "
        "sometimes but not always (the edge) are where GRPO gets a signal.",
        "",
        "| depth | nodes | "
        + " | ".join(f"{name}: solved (95% interval) | never / edge / always" for name in tables)
        + " |",
        "|---|---|" + "---|---|" * len(tables),
    ]
    tables = _with_all_nodes(tables)
    depths = list(dict.fromkeys(row["depth"] for table in tables.values() for row in table))
    for d in depths:
        cells, nodes = [], "–"
        for table in tables.values():
            row = next((r for r in table if r["depth"] == d), None)
            if row is None:
                cells += ["–", "–"]
                continue
            nodes = str(row["nodes"])
            low, high = row["ci95"]
            cells += [
                f"{row['solved']}/{row['answers']} = {_pct(row['solve_rate'])} [{_pct(low)}, {_pct(high)}]",
                f"{row['never']} / {row['edge']} / {row['always']}",
            ]
        lines.append(f"| {d} | {nodes} | " + " | ".join(cells) + " |")
    if {"base", "trained"} <= set(tables):
        before, after = tables["base"][-1], tables["trained"][-1]
        verdict = held_out_verdict(
            {"accuracy": before["solve_rate"], "accuracy_ci95": before["ci95"]},
            {"accuracy": after["solve_rate"], "accuracy_ci95": after["ci95"]},
            what="Solve rate",
            where="the training trees",
        )
        lines += ["", f"All nodes: {verdict} These are the nodes GRPO trained on or beside, not held-out problems."]
    return [*lines, "", "![solve rate per depth](plots/solve_rate_by_depth.png)", ""]


def _accuracy_bars(summary: dict) -> dict[str, dict]:
    scores = {"base": summary["scores"]["base"], "trained": summary["scores"]["trained"]}
    if not summary.get("scores_easy"):
        return scores
    return {
        "base\nheld-out": scores["base"],
        "trained\nheld-out": scores["trained"],
        "base\neasy variants": summary["scores_easy"]["base"],
        "trained\neasy variants": summary["scores_easy"]["trained"],
    }


def write_report(out_dir: str, summary: dict) -> dict[str, str]:
    """Write ``summary.json``, ``report.md`` and the plots; return their paths."""
    plots = os.path.join(out_dir, "plots")
    os.makedirs(plots, exist_ok=True)
    paths = {
        "reward": plot_rewards(summary["rewards"], os.path.join(plots, "reward.png")),
        "accuracy": plot_accuracy(
            _accuracy_bars(summary), os.path.join(plots, "accuracy.png"), title="Held-out sets: base vs trained"
        ),
        "tree_sizes": plot_tree_sizes(summary["tree_sizes"], os.path.join(plots, "tree_sizes.png")),
    }
    if any((summary.get("tree_solve_rates") or {}).values()):
        paths["solve_rate_by_depth"] = plot_solve_rates(
            summary["tree_solve_rates"], os.path.join(plots, "solve_rate_by_depth.png")
        )
    paths["summary"] = os.path.join(out_dir, "summary.json")
    write_json(paths["summary"], summary)
    paths["report"] = os.path.join(out_dir, "report.md")
    atomic_write(paths["report"], render_report(summary))
    return paths


# --------------------------------------------------------------------------------------------- driver


def _check_config(out: Path, config: DemoConfig) -> None:
    from ladder_hf.evaluation import check_run_settings

    check_run_settings(out / CONFIG_FILE, {key: getattr(config, key) for key in _OUTPUT_KEYS}, what="demo")


def run_demo(config: DemoConfig) -> dict:
    """Run (or resume) every stage of the demo; return the summary written to ``summary.json``.

    Example:
        >>> summary = run_demo(DemoConfig(output_dir="ladder_demo", quick=True))  # doctest: +SKIP
        >>> sorted(summary["scores"])  # doctest: +SKIP
        ['base', 'trained']
    """
    from tqdm.auto import tqdm

    from ladder_hf.variants import read_funnel

    out = Path(config.output_dir)
    fresh = not (out / "problems" / "test.jsonl").is_file()
    # checked before anything is written: a mistyped set must not leave a folder that refuses the fix
    rows = load_problems(config.problem_set) if fresh or config.overwrite else None
    if config.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config)
    paths = {
        name: str(out / name)
        for name in (
            "problems",
            "variants",
            "dataset",
            "eval_base",
            "eval_base_easy",
            "model",
            "eval_trained",
            "eval_trained_easy",
        )
    }
    wall: dict[str, float] = {}
    bar = tqdm(total=len(STAGES), desc="demo", unit="stage", position=0)

    def stage(name: str):
        bar.set_description(f"demo: {name}")
        return time.perf_counter()

    def done(name: str, began: float) -> None:
        wall[name] = round(time.perf_counter() - began, 1)
        bar.update(1)

    began = stage("problems")
    train_path, test_path = (
        os.path.join(paths["problems"], "train.jsonl"),
        os.path.join(paths["problems"], "test.jsonl"),
    )
    if not (os.path.isfile(train_path) and os.path.isfile(test_path)):
        rows = rows if rows is not None else load_problems(config.problem_set)
        train, test = split_problems(
            rows,
            config.num_train_problems,
            config.num_test_problems,
            config.seed,
            config.selection,
            shown=prompt_examples(config.prompt),
        )
        os.makedirs(paths["problems"], exist_ok=True)
        write_jsonl(test_path, test)
        write_jsonl(train_path, train)
    train, test = read_jsonl(train_path), read_jsonl(test_path)
    done("problems", began)

    began = stage("variants")
    done_marker = os.path.join(paths["variants"], "DEMO_DONE")
    easy_path = os.path.join(paths["problems"], "test_easy.jsonl")
    if not os.path.isfile(done_marker):
        grow_trees(train, test, out, config)
        atomic_write(done_marker, "complete\n")
    easy = read_jsonl(easy_path) if config.easy_test_problems > 0 and os.path.isfile(easy_path) else []
    done("variants", began)

    began = stage("dataset")
    dataset_info_path = os.path.join(paths["dataset"], "info.json")
    if not os.path.isfile(dataset_info_path):
        info = materialise_dataset(paths["variants"], paths["dataset"], config.train_on)
        write_json(dataset_info_path, info)
    dataset_info = json.loads(Path(dataset_info_path).read_text(encoding="utf-8"))
    done("dataset", began)

    began = stage("eval_base")
    base = _evaluate_once(config.model, test_path, paths["eval_base"], config, config.sympy_baseline)
    base_easy = _evaluate_once(config.model, easy_path, paths["eval_base_easy"], config, False) if easy else None
    solve_rates = {"base": _tree_rates_once(config.model, paths, "eval_base", config)}
    done("eval_base", began)

    began = stage("train")
    if not is_trained(paths["model"]):
        from ladder_hf.grpo import NoRowAtLevelError

        _reuse_level_measurement(out, paths["model"], config)
        try:
            train_stage(paths["dataset"], paths["model"], config)
        except NoRowAtLevelError as err:
            # a demo should finish: the report says that no node was at the model's level
            logger.warning("%s; training on every row instead", err)
            train_stage(paths["dataset"], paths["model"], dataclasses.replace(config, solve_rate_samples=0))
    history = read_reward_history(paths["model"])
    done("train", began)

    began = stage("eval_trained")
    trained = _evaluate_once(paths["model"], test_path, paths["eval_trained"], config, False)
    trained_easy = None
    if easy:
        trained_easy = _evaluate_once(paths["model"], easy_path, paths["eval_trained_easy"], config, False)
    solve_rates["trained"] = _tree_rates_once(paths["model"], paths, "eval_trained", config)
    done("eval_trained", began)

    began = stage("report")
    level_path = out / MODEL_LEVEL_FILE
    summary: dict[str, Any] = {
        "config": dataclasses.asdict(config),
        "output_dir": str(out),
        "problems": {
            "train": len(train),
            "test": len(test),
            "easy": len(easy),
            "train_ids": [r["id"] for r in train],
            "test_ids": [r["id"] for r in test],
            "easy_integrands": [r["integrand"] for r in easy],
        },
        "tree_sizes": tree_sizes(paths["variants"]),
        "qc_funnel": read_funnel(paths["variants"]),
        "dataset": dataset_info,
        "train": {"global_step": history[-1]["step"] if history else 0, "steps_logged": len(history)},
        "rewards": history,
        "system_prompt": _prompt_text(config.prompt),
        "scores": {"base": _score(base), "trained": _score(trained)},
        "scores_easy": {"base": _score(base_easy), "trained": _score(trained_easy)} if easy else {},
        "tree_solve_rates": solve_rates,
        "level_selection": _level_selection(paths["model"], config),
        "model_level": json.loads(level_path.read_text(encoding="utf-8")) if level_path.is_file() else [],
        # A copy: the report stage's own time is not known until the report is written.
        "wall_time_s": dict(wall),
    }
    write_report(str(out), summary)
    done("report", began)
    bar.close()
    return summary


def _level_selection(model_dir: str, config: DemoConfig) -> dict | None:
    """How many training rows the level selection kept (``None`` without one)."""
    path = Path(model_dir) / "solve_rates_by_depth.json"
    if not config.solve_rate_samples or not path.is_file():
        return None
    table = json.loads(path.read_text(encoding="utf-8"))
    return {
        "rows": sum(r["edge"] for r in table),
        "of": sum(r["rows"] for r in table),
        "samples": config.solve_rate_samples,
    }


def _reuse_level_measurement(out: Path, model_dir: str, config: DemoConfig) -> None:
    """The deepening measured the base model on every node; the recipe's level selection
    (``solve_rate_samples``) starts from those rates instead of sampling the whole tree again."""
    from ladder_hf.training_data import SOLVE_RATES_FILE

    store = Path(model_dir) / SOLVE_RATES_FILE
    _start_from_deepening(out, store, config, config.solve_rate_samples, config.max_completion_length)


def _start_from_deepening(out: Path, store: Path, config: DemoConfig, samples: int, max_new_tokens: int) -> None:
    """Start ``store`` (a solve-rate store of the base model, ``samples`` answers of up to ``max_new_tokens``
    per node) from the deepening's measurement when that is the same measurement (the same prompt and
    temperature, as many answers, the same budget); rows it holds are not sampled again."""
    from ladder_hf.training_data import LEVEL_SOLVE_RATES_FILE

    same = samples == config.deepen_samples and max_new_tokens == config.eval_max_new_tokens
    measured = out / LEVEL_SOLVE_RATES_FILE
    if same and config.deepen_rounds and measured.is_file() and not store.is_file():
        store.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(measured, store)


def _evaluate_once(model: str, test_path: str, out_dir: str, config: DemoConfig, sympy_baseline: bool) -> dict:
    """Evaluate unless ``out_dir`` already holds a finished evaluation (its ``summary.json``)."""
    path = Path(out_dir) / "summary.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return evaluate_stage(model, test_path, out_dir, config, sympy_baseline)


def _tree_rates_once(model: str, paths: dict[str, str], stage: str, config: DemoConfig) -> list[dict]:
    """:func:`tree_solve_rates` once per stage (its table is kept beside the stage's evaluation)."""
    if config.tree_samples <= 0:
        return []
    path = Path(paths[stage]) / "tree_solve_rates_by_depth.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if stage == "eval_base":
        # the "before" table is the measurement that chose where to deepen (about 6 minutes not spent again)
        store = Path(paths[stage]) / TREE_SOLVE_RATES_FILE
        _start_from_deepening(Path(config.output_dir), store, config, config.tree_samples, config.eval_max_new_tokens)
    table = tree_solve_rates(model, paths["dataset"], paths[stage], config)
    write_json(str(path), table)
    return table


def main(argv: list[str] | None = None) -> int:
    """``ladder-hf demo [--output_dir ladder_demo] [--quick] [--generator model] ...``"""
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser(DemoConfig)
    parser.prog = "ladder-hf demo"
    (config,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    began = time.perf_counter()
    summary = run_demo(config)
    sets = [("held-out", summary["scores"])]
    if summary.get("scores_easy"):
        sets.append(("easy held-out variants", summary["scores_easy"]))
    for name, scores in sets:
        base, trained = scores["base"], scores["trained"]
        print(
            f"{name} pass@1: base {_pct(base['accuracy'])} {_interval(base)} -> trained {_pct(trained['accuracy'])} "
            f"{_interval(trained)} (answered in tags {_pct(base['answer_rate'])} -> {_pct(trained['answer_rate'])}). "
            + held_out_verdict(base, trained)
        )
    print(f"{time.perf_counter() - began:.0f} s")
    print(f"report: {os.path.join(config.output_dir, 'report.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
