"""Training data of the LADDER recipes: variant rows from the Hub, a variants folder or a file (or a tree
grown on the fly), ordered by a curriculum, with TRL's conversational ``prompt`` column.

Example:
    >>> from datasets import Dataset
    >>> rows = Dataset.from_list([{"integrand": "x", "lower": "", "upper": "", "depth": 1}])
    >>> add_prompts(order_by_curriculum(rows, "depth"), "few_shot")[0]["prompt"][0]["role"]
    'system'
"""

from __future__ import annotations

import logging
import os
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


def build_train_dataset(script_args: ScriptArguments, training_args):
    """The prompt-ready training dataset described by ``script_args`` (see :class:`ScriptArguments`)."""
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
                    protect=load_eval_problems(script_args),
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
    return add_prompts(
        dataset,
        script_args.system_prompt,
        indefinite_template=script_args.indefinite_template,
        definite_template=script_args.definite_template,
    )


def load_eval_problems(script_args: ScriptArguments) -> list[Problem]:
    """The held-out problems of ``script_args.eval_set`` (empty when none), capped by ``eval_max_problems``."""
    from ladder_hf.problems import load_problems

    if not script_args.eval_set:
        return []
    problems = load_problems(script_args.eval_set)
    if script_args.eval_max_problems is not None:
        problems = problems[: script_args.eval_max_problems]
    return problems
