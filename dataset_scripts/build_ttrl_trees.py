"""Build per-problem TTRL variant trees for a test set (default: the 2025 MIT Integration Bee qualifier).

Test-time RL (TTRL, LADDER section 3.3) trains, for each test problem on its own, on variants of
that problem, then restores the weights. The risk is training on the test problem itself under
another name: this script builds one tree per test problem in ``<out_dir>/<problem id>/`` with
the contamination guard on, protecting the whole test set (so also that problem): a variant
numerically equivalent or nearly identical to any test problem is rejected and recorded in
``rejected.jsonl`` with ``qc_status`` ``contaminated``. The root itself stays as the tree's source,
flagged ``contaminated_with`` = its own id: train on the ``variants`` config (depth >= 1) only.

Each tree is resumable (kill and rerun). ``--push_to`` publishes every tree as one config (named
after the problem id) of one versioned Hub dataset.

Examples (costs in dataset_scripts/README.md):

    python dataset_scripts/build_ttrl_trees.py --generator symbolic --out_dir variants/ttrl-mit-2025
    python dataset_scripts/build_ttrl_trees.py --generator model --problem_ids mit-2025-q01 --depth 2
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

from build_variants import BuildVariantsConfig, build_generator, split_parsable


@dataclass
class BuildTTRLConfig(BuildVariantsConfig):
    problems: str = field(default="mit-2025", metadata={"help": "The test set: bundled name or JSONL file."})
    protect: str | None = field(
        default=None, metadata={"help": "Extra problems to protect besides the test set itself (bundled name/JSONL)."}
    )
    problem_ids: list[str] | None = field(
        default=None, metadata={"help": "Only these test problems (ids); default: all of the test set."}
    )
    depth: int = field(default=2, metadata={"help": "Variant levels below each test problem."})
    out_dir: str = field(default="variants/ttrl-mit-2025", metadata={"help": "One sub-folder per test problem."})


def folder_name(problem_id: str) -> str:
    """A filesystem- and config-safe name for a problem id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", problem_id)


def run(cfg: BuildTTRLConfig) -> dict:
    from ladder_hf.dataset import load_ladder_dataset
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import QualityConfig, generate_tree, read_funnel

    tests = load_problems(cfg.problems)
    protect = list(tests) + (load_problems(cfg.protect) if cfg.protect and cfg.protect.lower() != "none" else [])
    chosen = [p for p in tests if not cfg.problem_ids or p["id"] in set(cfg.problem_ids)]
    if cfg.limit:
        chosen = chosen[: cfg.limit]
    if not chosen:
        raise SystemExit(f"no test problem matched {cfg.problem_ids}")
    chosen, skipped = split_parsable(chosen)
    protect, protect_skipped = split_parsable(protect)
    generator = build_generator(cfg)  # one generator (one loaded model) for all trees

    summary: dict = {
        "out_dir": cfg.out_dir,
        "skipped_unparsable": [p["id"] for p in skipped],
        "protect_skipped_unparsable": [p["id"] for p in protect_skipped],
        "trees": {},
    }
    started = time.perf_counter()
    for problem in chosen:
        tree_dir = os.path.join(cfg.out_dir, folder_name(problem["id"]))
        t0 = time.perf_counter()
        nodes = generate_tree(
            [problem],
            generator,
            depth=cfg.depth,
            out_dir=tree_dir,
            protect=protect,
            variants_per_node=cfg.variants_per_node,
            max_nodes_per_root=cfg.max_nodes_per_root,
            batch_parents=cfg.batch_parents,
            quality=QualityConfig(sympy_timeout=cfg.sympy_timeout),
        )
        funnel = read_funnel(tree_dir)
        summary["trees"][problem["id"]] = {
            "folder": tree_dir,
            "variants": sum(n["depth"] > 0 for n in nodes),
            "qc_funnel": funnel,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    summary["generation_seconds"] = round(time.perf_counter() - started, 1)

    if cfg.push_to:
        if not cfg.tag:
            raise SystemExit("--push_to needs --tag (e.g. v1.0)")
        from ladder_hf.hub import push_versioned

        configs = {
            folder_name(pid): load_ladder_dataset(info["folder"], "all") for pid, info in summary["trees"].items()
        }
        card = (
            f"# TTRL variant trees for {cfg.problems}\n\nOne config per test problem: the problem (depth 0, "
            "flagged `contaminated_with` = itself) and its variants, none of which is numerically equivalent "
            "or nearly identical to any test problem (contamination guard). Train on depth >= 1 only.\n\n"
            "Method: LADDER / TTRL, Simonds & Yoshiyama, arXiv:2503.00735. MIT Integration Bee problems are "
            "(c) MIT Integration Bee, reproduced for research with attribution.\n"
        )
        result = push_versioned(configs, cfg.push_to, cfg.tag, card, private=cfg.private)
        summary["pushed"] = {"repo": result.repo_id, "tag": result.tag, "commit": result.commit_oid}
    return summary


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (cfg,) = HfArgumentParser(BuildTTRLConfig).parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    print(json.dumps(run(cfg), indent=2))
    return 0


if __name__ == "__main__":  # the verifier's sandbox spawns workers: keep the entry point guarded
    sys.exit(main())
