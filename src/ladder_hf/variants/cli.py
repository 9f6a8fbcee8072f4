"""``ladder-hf variants``: build variant trees, publish them as a versioned Hub dataset.

    ladder-hf variants generate --problems mit-2025 --generator symbolic --depth 2 --out variants/mit25
    ladder-hf variants generate --problems "x**2*exp(x)" "sin(x)**3" --generator model --depth 2 \\
        --out variants/demo --model HuggingFaceTB/SmolLM2-1.7B-Instruct --protect mit-2025
    ladder-hf variants generate ... --backend openai --base-url http://127.0.0.1:8000/v1 --model my-model
    ladder-hf variants push variants/mit25 --repo my-org/ladder-variants --tag v1.0

``--problems`` takes bundled set names (``mit-2025``, ``mit-train``, ``undergrad``), bundled
problem ids (``mit-2025-q01``), JSONL files of problem rows, or integrands in sympy syntax
(parsed with the verifier's safe parser). A run writing into an existing ``--out`` resumes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys


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
        if (item.endswith((".jsonl", ".json")) and os.path.exists(item)) or item in available_sets():
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
                f"--problems: {item!r} is not a problem set, problem id, file, or parsable integrand ({err})"
            ) from err
        text = str(expr)
        problems.append(Problem("expr-" + hashlib.sha1(text.encode()).hexdigest()[:10], text))
    return problems


def _build_generator(args):
    from ladder_hf.variants.generators import make_generator

    if args.backend == "openai" and not (args.base_url and args.model):
        raise SystemExit("--backend openai needs --base-url and --model")
    return make_generator(
        args.generator,
        seed=args.seed,
        backend=args.backend,
        model_name_or_path=args.model,
        base_url=args.base_url,
        batch_size=args.batch_size,
        device=args.device,
        variants_per_prompt=args.variants_per_prompt,
        max_new_tokens=args.max_new_tokens,
        constrained=args.constrained,
        grammar_field=args.grammar_field,
    )


def _generate(args) -> int:
    from ladder_hf.variants.quality import QualityConfig
    from ladder_hf.variants.tree import RunMismatchError, generate_tree, read_funnel

    problems = resolve_problems(args.problems)
    protect = resolve_problems(args.protect) if args.protect else None
    generator = _build_generator(args)
    quality = QualityConfig(sympy_timeout=args.sympy_timeout, check_solvable=not args.no_sympy)
    try:
        nodes = generate_tree(
            problems,
            generator,
            depth=args.depth,
            out_dir=args.out,
            protect=protect,
            variants_per_node=args.variants_per_node,
            max_nodes_per_root=args.max_nodes_per_root,
            batch_parents=args.batch_parents,
            quality=quality,
            progress=not args.no_progress,
            extend=args.extend,
        )
    except RunMismatchError as err:
        raise SystemExit(f"ladder-hf variants generate: {err}") from None
    funnel = read_funnel(args.out)
    per_depth: dict[int, int] = {}
    for n in nodes:
        per_depth[n["depth"]] = per_depth.get(n["depth"], 0) + 1
    print(json.dumps({"out": args.out, "nodes": len(nodes), "per_depth": per_depth, "qc_funnel": funnel}, indent=2))
    return 0


def _push(args) -> int:
    from ladder_hf.hub import PushError, TagExistsError
    from ladder_hf.variants.card import push_variants

    try:
        result = push_variants(args.folder, args.repo, args.tag, private=args.private, endpoint=args.endpoint)
    except (TagExistsError, PushError, ValueError) as err:
        print(f"ladder-hf variants push: {err}", file=sys.stderr)
        return 1
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladder-hf variants", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)

    g = sub.add_parser("generate", help="build (or resume) variant trees")
    g.add_argument("--problems", nargs="+", required=True, help="set names, problem ids, JSONL files or integrands")
    g.add_argument("--generator", choices=["model", "symbolic"], default="model")
    g.add_argument("--depth", type=int, default=2, help="levels of variants below each problem (paper: 2-3)")
    g.add_argument("--out", required=True, help="output folder (nodes.jsonl, qc.json); resumed when it exists")
    g.add_argument("--model", default=None, help="Hub id or local path; default: the embedded SmolLM2-135M-Instruct")
    g.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--protect", nargs="+", default=None, help="test problems no variant may (nearly) equal")
    g.add_argument("--variants-per-node", type=int, default=10, help="candidates requested per parent (paper: 10)")
    g.add_argument("--variants-per-prompt", type=int, default=5)
    g.add_argument("--max-nodes-per-root", type=int, default=None, help="cap per tree (paper: about 500)")
    g.add_argument("--batch-parents", type=int, default=16, help="parents expanded per generation call")
    g.add_argument("--batch-size", type=int, default=32, help="prompts per forward batch (transformers backend)")
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument(
        "--constrained",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="constrain model decoding to the variant grammar so every variant parses (default: on; "
        "--no-constrained samples freely and counts what does not parse)",
    )
    g.add_argument(
        "--grammar-field",
        choices=["structured_outputs", "guided_grammar", "ebnf"],
        default="structured_outputs",
        help="request field for the grammar on --backend openai: vLLM >= 0.10.2, older vLLM, SGLang",
    )
    g.add_argument("--device", default=None)
    g.add_argument("--sympy-timeout", type=float, default=5.0, help="seconds sympy.integrate gets per node")
    g.add_argument("--no-sympy", action="store_true", help="skip the sympy solvability check")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", action="store_true")
    g.add_argument(
        "--extend", action="store_true", help="grow an existing --out folder with other settings or problems"
    )

    p = sub.add_parser("push", help="publish a variants folder as a versioned, tagged Hub dataset")
    p.add_argument("folder")
    p.add_argument("--repo", required=True, help="ORG/NAME")
    p.add_argument("--tag", required=True, help="version tag, e.g. v1.0 (never moved or overwritten)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return _generate(args) if args.action == "generate" else _push(args)


if __name__ == "__main__":
    sys.exit(main())
