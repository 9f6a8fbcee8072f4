"""``ladder-hf variants``: build variant trees, publish them as a versioned Hub dataset.

    ladder-hf variants generate --problems mit-2025 --generator symbolic --depth 2 --output_dir variants/mit25
    ladder-hf variants generate --problems "x**2*exp(x)" "sin(x)**3" --generator model --depth 2 \\
        --output_dir variants/demo --model_name_or_path HuggingFaceTB/SmolLM2-1.7B-Instruct --protect mit-2025
    ladder-hf variants generate ... --backend openai --base_url http://127.0.0.1:8000/v1 --model_name_or_path my-model
    ladder-hf variants push variants/mit25 --repo_id my-org/ladder-variants --tag v1.0

Both subcommands parse with ``transformers.HfArgumentParser`` over :class:`GenerateConfig` and
:class:`PushConfig`, like every ``ladder-hf`` command: each field is a snake_case flag with a
dash-case alias (``--output_dir`` / ``--output-dir``), and the older spellings still work
(``--out``, ``--model``, ``--repo``).

``--problems`` takes bundled set names (``mit-2025``, ``mit-train``, ``undergrad``), bundled
problem ids (``mit-2025-q01``), JSONL files of problem rows, or integrands in sympy syntax
(parsed with the verifier's safe parser). A run writing into an existing ``--output_dir`` resumes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Literal

from transformers import HfArgumentParser


@dataclass
class GenerateConfig:
    """Settings of ``ladder-hf variants generate`` (each field is a command-line flag).

    Example:
        >>> (cfg,) = HfArgumentParser(GenerateConfig).parse_args_into_dataclasses(
        ...     ["--problems", "x*sin(x)", "--out", "variants/demo", "--model", "org/m", "--no-constrained"])
        >>> cfg.output_dir, cfg.model_name_or_path, cfg.constrained
        ('variants/demo', 'org/m', False)
    """

    problems: list[str] = field(
        metadata={"help": "Set names (mit-2025, mit-train, undergrad), problem ids, JSONL files or integrands."}
    )
    output_dir: str = field(
        metadata={
            "help": "Output folder (nodes.jsonl, qc.json, ...); a run into an existing one resumes it.",
            "aliases": ["--out"],
        }
    )
    generator: Literal["model", "symbolic"] = field(
        default="model", metadata={"help": "Who writes variants: a language model, or sympy mutations."}
    )
    depth: int = field(default=2, metadata={"help": "Levels of variants below each problem (paper: 2-3)."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local path of the variant-writing model; None: the embedded SmolLM2-135M-Instruct.",
            "aliases": ["--model"],
        },
    )
    backend: Literal["transformers", "vllm", "openai"] = field(
        default="transformers", metadata={"help": "How the model is run (openai: any OpenAI-compatible server)."}
    )
    base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible server for --backend openai, e.g. http://127.0.0.1:8000/v1."}
    )
    protect: list[str] | None = field(
        default=None, metadata={"help": "Test problems no variant may (nearly) equal (same forms as --problems)."}
    )
    variants_per_node: int = field(default=10, metadata={"help": "Candidates requested per parent (paper: 10)."})
    variants_per_prompt: int = field(default=5, metadata={"help": "Variants asked for in one prompt."})
    max_nodes_per_root: int | None = field(default=None, metadata={"help": "Cap per tree (paper: about 500)."})
    batch_parents: int = field(default=16, metadata={"help": "Parents expanded per generation call."})
    batch_size: int = field(default=32, metadata={"help": "Prompts per forward batch (transformers backend)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Token budget of one completion."})
    constrained: bool = field(
        default=True,
        metadata={
            "help": "Constrain model decoding to the variant grammar so every variant parses "
            "(--no_constrained samples freely and counts what does not parse)."
        },
    )
    grammar_field: Literal["structured_outputs", "guided_grammar", "ebnf"] = field(
        default="structured_outputs",
        metadata={"help": "Request field for the grammar on --backend openai: vLLM >= 0.10.2, older vLLM, SGLang."},
    )
    device: str | None = field(default=None, metadata={"help": "Torch device of the transformers backend; None: auto."})
    sympy_timeout: float = field(default=5.0, metadata={"help": "Seconds sympy.integrate gets per node."})
    # Named for its negative flag: --no_sympy / --no-sympy is the spelling people use.
    sympy: bool = field(default=True, metadata={"help": "Check each variant's solvability with sympy.integrate."})
    seed: int = field(default=0, metadata={"help": "Seed of the generator (the symbolic tree is a function of it)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    extend: bool = field(
        default=False, metadata={"help": "Grow an existing --output_dir with other settings or problems."}
    )


@dataclass
class PushConfig:
    """Settings of ``ladder-hf variants push`` (each field is a command-line flag).

    Example:
        >>> (cfg,) = HfArgumentParser(PushConfig).parse_args_into_dataclasses(
        ...     ["--folder", "variants/demo", "--repo", "org/data", "--tag", "v1.0"])
        >>> cfg.repo_id, cfg.revision
        ('org/data', 'main')
    """

    repo_id: str = field(metadata={"help": "Dataset repo, ORG/NAME (created when missing).", "aliases": ["--repo"]})
    tag: str = field(metadata={"help": "Version tag, e.g. v1.0 (never moved or overwritten)."})
    folder: str | None = field(
        default=None, metadata={"help": "The variants folder (generate's --output_dir); may also come first, bare."}
    )
    revision: str = field(
        default="main", metadata={"help": "Branch the version commit goes to; it must exist on the repo."}
    )
    private: bool = field(default=False, metadata={"help": "Create the repo private (when it does not exist yet)."})
    token: str | None = field(default=None, metadata={"help": "Hub token; None: HF_TOKEN or the saved login."})
    endpoint: str | None = field(default=None, metadata={"help": "Hub endpoint; None: HF_ENDPOINT or huggingface.co."})
    include_rejected: bool = field(
        default=False,
        metadata={"help": "Also publish the `rejected` config: the candidates QC turned down, with the reason."},
    )


SUBCOMMANDS: dict[str, tuple[type, str]] = {
    "generate": (GenerateConfig, "build (or resume) variant trees"),
    "push": (PushConfig, "publish a variants folder as a versioned, tagged Hub dataset"),
}


def resolve_problems(items: list[str]):
    """Problems from set names, ids, JSONL files or integrand expressions (in that order).

    Example:
        >>> resolve_problems(["x**2*exp(x)"])[0]["integrand"]
        'x**2*exp(x)'
    """
    from ladder_hf.problems import Problem, available_sets, get_problem, load_problems
    from ladder_hf.variants.base import parse_integrand

    problems: list[Problem] = []
    for item in items:
        if item.endswith((".jsonl", ".json")) and not os.path.exists(item):
            raise FileNotFoundError(f"--problems: no problem file {item!r}; check the path")
        if item.endswith((".jsonl", ".json")) or item in available_sets():
            problems.extend(load_problems(item))
            continue
        try:
            problems.append(get_problem(item))
            continue
        except KeyError:
            pass
        try:
            expr = parse_integrand(item)
        except ValueError as err:
            raise SystemExit(
                f"--problems: {item!r} is not a problem set, problem id, file, or parsable integrand ({err}); "
                f"sets: {', '.join(available_sets())}; ids look like mit-2025-q01"
            ) from err
        text = str(expr)
        problems.append(Problem("expr-" + hashlib.sha1(text.encode()).hexdigest()[:10], text))
    return problems


def _build_generator(config: GenerateConfig):
    from ladder_hf.variants.generators import make_generator

    if config.backend == "openai" and not (config.base_url and config.model_name_or_path):
        raise SystemExit("--backend openai needs --base_url and --model_name_or_path")
    return make_generator(
        config.generator,
        seed=config.seed,
        backend=config.backend,
        model_name_or_path=config.model_name_or_path,
        base_url=config.base_url,
        batch_size=config.batch_size,
        device=config.device,
        variants_per_prompt=config.variants_per_prompt,
        max_new_tokens=config.max_new_tokens,
        constrained=config.constrained,
        grammar_field=config.grammar_field,
    )


def generate(config: GenerateConfig) -> int:
    """Build (or resume) the trees ``config`` describes; print a JSON summary; return the exit code.

    Example:
        >>> generate(GenerateConfig(["x*sin(x)"], "variants/demo", generator="symbolic"))  # doctest: +SKIP
        {"out": "variants/demo", "nodes": 23, ...}
        0
    """
    from ladder_hf.variants.quality import QualityConfig
    from ladder_hf.variants.tree import RunMismatchError, generate_tree, read_funnel

    problems = resolve_problems(config.problems)
    protect = resolve_problems(config.protect) if config.protect else None
    generator = _build_generator(config)
    quality = QualityConfig(sympy_timeout=config.sympy_timeout, check_solvable=config.sympy)
    try:
        nodes = generate_tree(
            problems,
            generator,
            depth=config.depth,
            out_dir=config.output_dir,
            protect=protect,
            variants_per_node=config.variants_per_node,
            max_nodes_per_root=config.max_nodes_per_root,
            batch_parents=config.batch_parents,
            quality=quality,
            progress=config.progress,
            extend=config.extend,
        )
    except RunMismatchError as err:
        raise SystemExit(f"ladder-hf variants generate: {err}") from None
    funnel = read_funnel(config.output_dir)
    per_depth: dict[int, int] = {}
    for n in nodes:
        per_depth[n["depth"]] = per_depth.get(n["depth"], 0) + 1
    summary = {"out": config.output_dir, "nodes": len(nodes), "per_depth": per_depth, "qc_funnel": funnel}
    print(json.dumps(summary, indent=2))
    return 0


def push(config: PushConfig) -> int:
    """Publish ``config.folder`` as version ``config.tag``; print one line (repo, tag, commit, URL).

    Returns 1, with one line on stderr, when the Hub refuses (an existing tag, a missing branch, ...).

    Example:
        >>> push(PushConfig("org/ladder-variants", "v1.0", folder="variants/demo"))  # doctest: +SKIP
        pushed org/ladder-variants v1.0 (commit 3f5c2a1): https://huggingface.co/datasets/org/ladder-variants/tree/v1.0
        0
    """
    from huggingface_hub.errors import HfHubHTTPError

    from ladder_hf.hub import PushError, TagExistsError
    from ladder_hf.variants.card import push_variants

    try:
        result = push_variants(
            config.folder,
            config.repo_id,
            config.tag,
            private=config.private,
            endpoint=config.endpoint,
            token=config.token,
            branch=config.revision,
            include_rejected=config.include_rejected,
        )
    except (TagExistsError, PushError, ValueError, HfHubHTTPError) as err:
        # The Hub's messages can span lines; the command's answer stays one line.
        print(f"ladder-hf variants push: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """``ladder-hf variants`` with one ``HfArgumentParser`` per subcommand (``prog``: ``ladder-hf variants push``).

    Example:
        >>> build_parser().parse_args(["push", "variants/demo", "--repo", "org/data", "--tag", "v1"]).repo_id
        'org/data'
    """
    parser = argparse.ArgumentParser(prog="ladder-hf variants", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True, metavar="{generate,push}", parser_class=HfArgumentParser)
    for name, (config_class, help_) in SUBCOMMANDS.items():
        command = sub.add_parser(
            name, dataclass_types=config_class, help=help_, description=f"{help_[0].upper()}{help_[1:]}."
        )
        for action in command._actions:
            # --help shows every default; a required flag has none, and --no_x only turns --x off
            # (SUPPRESS hides "(default: ...)"; the namespace default still comes from --x, added first).
            if action.required:
                action.default = argparse.SUPPRESS
            elif isinstance(action, argparse._StoreFalseAction) and action.option_strings[0] == f"--no_{action.dest}":
                action.default, action.help = argparse.SUPPRESS, f"Turn --{action.dest} off."
    # The folder comes first, bare, as it always has; --folder is the same thing as a flag.
    # SUPPRESS: an absent positional must not overwrite --folder with None.
    sub.choices["push"].add_argument(
        "folder", nargs="?", default=argparse.SUPPRESS, metavar="FOLDER", help="the variants folder (or --folder)"
    )
    return parser


def _subcommand_parser(parser: argparse.ArgumentParser, name: str) -> HfArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def parse_config(argv: list[str]) -> GenerateConfig | PushConfig:
    """The subcommand's config from a command line (``["push", FOLDER, "--repo_id", ...]``).

    Example:
        >>> parse_config(["generate", "--problems", "x", "--output-dir", "o"]).output_dir
        'o'
    """
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv)  # prints the help, or the error naming the subcommands, and exits
        raise SystemExit(2)
    sub = _subcommand_parser(parser, argv[0])
    config, unknown = sub.parse_args_into_dataclasses(args=argv[1:], return_remaining_strings=True)
    if unknown:
        sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    if isinstance(config, GenerateConfig):
        # checked before any problem is read or model loaded, so a typo costs nothing
        checks = [
            ("depth", config.depth, 0, "0 keeps only the root problems; the paper uses 2-3"),
            ("variants_per_node", config.variants_per_node, 1, "the paper asks 10 per parent"),
        ]
        for flag, value, least, hint in checks:
            if value < least:
                raise ValueError(f"--{flag} must be >= {least}, not {value} ({hint})")
    if isinstance(config, PushConfig) and not config.folder:
        sub.error("the variants folder is required: ladder-hf variants push FOLDER --repo_id ORG/NAME --tag v1.0")
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_config(list(sys.argv[1:] if argv is None else argv))
    return generate(config) if isinstance(config, GenerateConfig) else push(config)


if __name__ == "__main__":
    sys.exit(main())
