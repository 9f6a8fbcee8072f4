"""Build the paper-style LADDER training set: variant trees of the 2010-2024 MIT Integration Bee qualifiers.

LADDER (arXiv 2503.00735) trains on variants of problems the model cannot yet solve, written
recursively to depth 3 (2 for the Integration Bee), and tests on the 2025 qualifier. This script
runs :func:`ladder_hf.variants.generate_tree` over the bundled ``mit-train`` problems with the
contamination guard protecting the test set (``mit-2025`` by default), materialises the tree with
:class:`ladder_hf.dataset.LadderDataset` (parquet per config) and optionally publishes it as a
versioned, tagged Hub dataset with :func:`ladder_hf.variants.card.push_variants`.

The run is resumable: kill it at any point and start the same command again.

Examples (see dataset_scripts/README.md for what each costs):

    # symbolic generator, no model needed: the baseline training set
    python dataset_scripts/build_variants.py --generator symbolic --depth 2 --out_dir variants/mit-train-symbolic

    # model-written variants with the embedded SmolLM2-135M-Instruct (CPU), first 5 problems only
    python dataset_scripts/build_variants.py --generator model --limit 5 --depth 2 --out_dir variants/smoke

    # a bigger model served by vLLM (GPU) through its OpenAI-compatible endpoint, then publish v1.0
    python dataset_scripts/build_variants.py --generator model --backend openai \\
        --base_url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --depth 3 \\
        --out_dir variants/mit-train-qwen7b --push_to my-org/ladder-variants --tag v1.0
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field


@dataclass
class BuildVariantsConfig:
    problems: str = field(
        default="mit-train", metadata={"help": "Bundled set (mit-train = 2010-2024 qualifiers) or a JSONL file."}
    )
    protect: str | None = field(
        default="mit-2025",
        metadata={"help": "Test set no variant may equal or nearly equal (contamination guard); 'none' to disable."},
    )
    generator: str = field(default="symbolic", metadata={"help": "'symbolic' (sympy mutations) or 'model'."})
    model: str | None = field(
        default=None, metadata={"help": "Hub id or local path for --generator model; default: embedded SmolLM2."}
    )
    backend: str = field(default="transformers", metadata={"help": "'transformers', 'vllm' or 'openai'."})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible server URL for --backend openai."})
    depth: int = field(default=2, metadata={"help": "Variant levels below each problem (paper: 3; 2 for the Bee)."})
    variants_per_node: int = field(default=10, metadata={"help": "Candidates requested per parent, before QC."})
    variants_per_prompt: int = field(default=5, metadata={"help": "Variants asked for in one model prompt."})
    max_nodes_per_root: int | None = field(default=None, metadata={"help": "Cap per tree (paper: about 500)."})
    batch_parents: int = field(default=16, metadata={"help": "Parents expanded per generator call."})
    batch_size: int = field(default=32, metadata={"help": "Prompts per forward batch (transformers backend)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens per model completion."})
    constrained: bool = field(
        default=True,
        metadata={"help": "Constrain model decoding to the variant grammar (--no_constrained: sample freely)."},
    )
    grammar_field: str = field(
        default="structured_outputs",
        metadata={"help": "Grammar request field for --backend openai: structured_outputs, guided_grammar or ebnf."},
    )
    sympy_timeout: float = field(default=5.0, metadata={"help": "Seconds sympy.integrate gets per node."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N problems (smoke runs)."})
    seed: int = field(default=0, metadata={"help": "Seed for the generator (symbolic runs are deterministic)."})
    out_dir: str = field(default="variants/mit-train", metadata={"help": "Tree folder (nodes.jsonl); resumed."})
    parquet_dir: str | None = field(
        default=None, metadata={"help": "Write <config>.parquet files here (default: <out_dir>/parquet)."}
    )
    push_to: str | None = field(default=None, metadata={"help": "Publish to this Hub dataset repo (ORG/NAME)."})
    tag: str | None = field(default=None, metadata={"help": "Version tag for --push_to, e.g. v1.0 (never moved)."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repo private."})


def build_generator(cfg: BuildVariantsConfig):
    """The variant generator the config asks for."""
    from ladder_hf.variants import GENERATOR_KINDS, make_generator

    if cfg.generator not in GENERATOR_KINDS:
        raise SystemExit(f"--generator must be one of {GENERATOR_KINDS}, not {cfg.generator!r}")
    if cfg.generator == "model" and cfg.backend == "openai" and not (cfg.base_url and cfg.model):
        raise SystemExit("--backend openai needs --base_url and --model")
    return make_generator(
        cfg.generator,
        seed=cfg.seed,
        backend=cfg.backend,
        model_name_or_path=cfg.model,
        base_url=cfg.base_url,
        batch_size=cfg.batch_size,
        variants_per_prompt=cfg.variants_per_prompt,
        max_new_tokens=cfg.max_new_tokens,
        constrained=cfg.constrained,
        grammar_field=cfg.grammar_field,
    )


def split_parsable(problems: list[dict]) -> tuple[list[dict], list[dict]]:
    """(problems the safe parser accepts, the rest). generate_tree parses every root and every
    protected problem with the verifier's bounded grammar; a few Bee problems exceed its bounds
    (e.g. exponents of 2024), and one such row must not abort a 300-problem run."""
    from ladder_hf.variants import parse_integrand

    ok, skipped = [], []
    for p in problems:
        try:
            parse_integrand(p["integrand"])
            ok.append(p)
        except ValueError:
            skipped.append(p)
    return ok, skipped


def materialise(out_dir: str, parquet_dir: str) -> dict[str, int]:
    """Every LadderDataset config of the tree as ``<parquet_dir>/<config>.parquet``; returns row counts."""
    from ladder_hf.dataset import config_names, load_ladder_dataset

    os.makedirs(parquet_dir, exist_ok=True)
    counts = {}
    for name in config_names():
        ds = load_ladder_dataset(out_dir, name)
        if ds.num_rows:
            ds.to_parquet(os.path.join(parquet_dir, f"{name}.parquet"))
        counts[name] = ds.num_rows
    return counts


def run(cfg: BuildVariantsConfig) -> dict:
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import QualityConfig, generate_tree, read_funnel

    problems = load_problems(cfg.problems)
    if cfg.limit:
        problems = problems[: cfg.limit]
    protect = None if (cfg.protect or "none").lower() == "none" else load_problems(cfg.protect)
    if protect:
        # A training problem that is itself in the test set would be a leak, not a variant.
        test_ids = {p["id"] for p in protect}
        problems = [p for p in problems if p["id"] not in test_ids]

    problems, skipped = split_parsable(problems)
    protect, protect_skipped = split_parsable(protect) if protect else (protect, [])

    started = time.perf_counter()
    nodes = generate_tree(
        problems,
        build_generator(cfg),
        depth=cfg.depth,
        out_dir=cfg.out_dir,
        protect=protect,
        variants_per_node=cfg.variants_per_node,
        max_nodes_per_root=cfg.max_nodes_per_root,
        batch_parents=cfg.batch_parents,
        quality=QualityConfig(sympy_timeout=cfg.sympy_timeout),
    )
    generation_s = time.perf_counter() - started
    summary = {
        "out_dir": cfg.out_dir,
        "problems": len(problems),
        "protected": len(protect or []),
        "skipped_unparsable": [p["id"] for p in skipped],
        "protect_skipped_unparsable": [p["id"] for p in protect_skipped],
        "nodes": len(nodes),
        "qc_funnel": read_funnel(cfg.out_dir),
        "generation_seconds": round(generation_s, 1),
        "rows": materialise(cfg.out_dir, cfg.parquet_dir or os.path.join(cfg.out_dir, "parquet")),
    }
    if cfg.push_to:
        if not cfg.tag:
            raise SystemExit("--push_to needs --tag (e.g. v1.0)")
        from ladder_hf.variants.card import push_variants

        result = push_variants(cfg.out_dir, cfg.push_to, cfg.tag, private=cfg.private)
        summary["pushed"] = {"repo": result.repo_id, "tag": result.tag, "commit": result.commit_oid}
    return summary


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (cfg,) = HfArgumentParser(BuildVariantsConfig).parse_args_into_dataclasses(
        args=sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(run(cfg), indent=2))
    return 0


if __name__ == "__main__":  # the verifier's sandbox spawns workers: keep the entry point guarded
    sys.exit(main())
