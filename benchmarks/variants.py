"""Variant generation throughput: batched vs one prompt at a time, plus the QC funnel.

Same model, same prompts, same temperatures, same ``max_new_tokens``, in one run:

* **batched**: ``TransformersBackend(batch_size=B)`` generates all prompts B at a time
  (left padding, per-row temperatures);
* **sequential**: ``TransformersBackend(batch_size=1)``, one prompt after another.

It prints variants/second (variant strings written, and of those, parsed by the verifier's safe
parser) and new tokens/second pooled over ``--repeats`` rounds, the median seconds per round, and
the ratios. Then it builds depth-1 trees for a
few problems with the model generator and with the symbolic generator and prints both QC funnels
(requested, generated, parsed, sane, unique, clean, kept).

Default run (embedded SmolLM2-135M-Instruct, CPU): 32 prompts (about 190 prompt tokens each) and
the generator's 256 new tokens, batch 32 (the backend's default) vs batch 1, 1 round; about 11
minutes on an idle 2-core CPU, most of it the sequential mode. Prefill is compute-bound and costs
the same in both modes, so the ratio grows with ``--max-new-tokens`` and ``--prompts``/``--batch-size``
(decode steps are what batching saves). A weak model writes few variant strings, so their count per
round is noisy; wall time for the same prompts and new tokens/s are the robust ratios.

    python benchmarks/variants.py
    python benchmarks/variants.py --repeats 3
    python benchmarks/variants.py --prompts 8 --batch-size 8 --max-new-tokens 64   # 2 minutes, lower ratio
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

PROBLEMS = [
    {"id": "b1", "integrand": "x**3*sin(2*x)", "lower": "", "upper": ""},
    {"id": "b2", "integrand": "exp(x)/(exp(2*x) + 1)", "lower": "", "upper": ""},
    {"id": "b3", "integrand": "x**2*log(x)", "lower": "", "upper": ""},
    {"id": "b4", "integrand": "sqrt(x + 4)/(x**2 + 1)", "lower": "", "upper": ""},
]


def _round(backend, specs, max_new_tokens):
    from ladder_hf.variants.base import parse_integrand
    from ladder_hf.variants.generators import extract_variants

    t0 = time.perf_counter()
    texts = [
        t[0]
        for t in backend.generate(
            [s.messages for s in specs], temperature=[s.temperature for s in specs], max_new_tokens=max_new_tokens
        )
    ]
    seconds = time.perf_counter() - t0
    strings = [v for t in texts for v in extract_variants(t, limit=5)]
    parsed = 0
    for s in strings:
        try:
            parse_integrand(s)
            parsed += 1
        except Exception:
            pass
    tokens = sum(len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    tagged = sum("<variant>" in t.lower() for t in texts)
    return {"seconds": seconds, "variants": len(strings), "parsed": parsed, "tokens": tokens, "tagged": tagged}, texts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--variants-per-prompt", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--funnel-problems", type=int, default=2)
    parser.add_argument("--funnel-variants", type=int, default=6, help="variants requested per problem (funnel)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--funnel-only", action="store_true", help="skip the throughput comparison")
    parser.add_argument(
        "--funnel-set", default=None, help="take the funnel's problems from a bundled set (e.g. undergrad-train)"
    )
    args = parser.parse_args(argv)

    import torch

    from ladder_hf.generation import TransformersBackend
    from ladder_hf.models import load_model_and_tokenizer
    from ladder_hf.variants import ModelVariantGenerator

    torch.manual_seed(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model)
    batched = TransformersBackend(args.model, batch_size=args.batch_size, model=model, tokenizer=tokenizer)
    single = TransformersBackend(args.model, batch_size=1, model=model, tokenizer=tokenizer)
    gen = ModelVariantGenerator(batched, variants_per_prompt=args.variants_per_prompt, seed=args.seed)
    parents = [PROBLEMS[i % len(PROBLEMS)] for i in range(args.prompts)]
    specs = gen.build_prompts(parents, args.variants_per_prompt)  # one prompt per parent
    print(
        f"model={batched.model_name} torch_threads={torch.get_num_threads()} prompts={len(specs)} "
        f"batch_size={args.batch_size} max_new_tokens={args.max_new_tokens} "
        f"variants_per_prompt={args.variants_per_prompt} repeats={args.repeats}"
    )

    if not args.funnel_only:
        _throughput(args, batched, single, specs)
    _funnel(args, batched)


def _throughput(args, batched, single, specs) -> None:
    # Warm-up (first-call overheads) on two prompts, not timed.
    batched.generate([s.messages for s in specs[:2]], max_new_tokens=4)

    results = {"batched": [], "sequential": []}
    samples = []
    for r in range(args.repeats):
        # Alternate the order so neither mode always runs on a warmer or quieter machine.
        for mode in ("batched", "sequential") if r % 2 == 0 else ("sequential", "batched"):
            backend = batched if mode == "batched" else single
            res, texts = _round(backend, specs, args.max_new_tokens)
            results[mode].append(res)
            samples.extend(texts[:2])
            counts = f"variants={res['variants']:3d} parsed={res['parsed']:3d}"
            print(f"  round {r + 1} {mode:<10} {res['seconds']:7.1f}s  {counts}")

    def med(mode, key):
        return statistics.median(x[key] for x in results[mode])

    def rate(mode, key):
        # pooled over rounds: per-round variant counts are small, a median of their rates is noisier
        return sum(x[key] for x in results[mode]) / sum(x["seconds"] for x in results[mode])

    print("\n| mode | median s/round | variants/s | parsed variants/s | new tokens/s |")
    print("|---|---:|---:|---:|---:|")
    for mode in ("sequential", "batched"):
        print(
            f"| {mode} (batch {1 if mode == 'sequential' else args.batch_size}) | {med(mode, 'seconds'):.1f} | "
            f"{rate(mode, 'variants'):.2f} | {rate(mode, 'parsed'):.2f} | {rate(mode, 'tokens'):.1f} |"
        )
    ratio_time = med("sequential", "seconds") / med("batched", "seconds")
    ratio_tok = rate("batched", "tokens") / max(rate("sequential", "tokens"), 1e-9)
    seq_var = rate("sequential", "variants")
    # A weak model writes few variant strings, so their count per round is noisy (even zero):
    # wall time for the same prompts and new tokens/s are the robust throughput ratios.
    ratio_var = (
        f"{rate('batched', 'variants') / seq_var:.2f}x" if seq_var > 0 else "n/a (no variants written sequentially)"
    )
    print(
        f"\nspeed-up batched / sequential: {ratio_time:.2f}x wall time for the same prompts, "
        f"{ratio_tok:.2f}x new tokens/s, variants/s: {ratio_var}"
    )

    allr = results["batched"] + results["sequential"]
    n_prompts = len(specs) * len(allr)
    written, parsed, tagged = (
        sum(x["variants"] for x in allr),
        sum(x["parsed"] for x in allr),
        sum(x["tagged"] for x in allr),
    )
    asked = n_prompts * args.variants_per_prompt
    print(
        f"\nparse rate of {batched.model_name} as a variant writer: {tagged}/{n_prompts} completions used <variant> "
        f"tags; {written} variant strings for {asked} asked; {parsed} parsed "
        f"({parsed / max(written, 1):.0%} of written, {parsed / max(asked, 1):.0%} of asked)"
    )
    print("sample completions:")
    for t in samples[:3]:
        print("  ---", json.dumps(t[:240]))


def _funnel(args, batched) -> None:
    """Depth-1 trees from the same problems with the model constrained to the variant grammar, the same
    model unconstrained, and the symbolic generator: the QC funnel, how many kept variants are easier
    than their parent (difficulty estimate below the parent's), how many are numerically the parent
    itself (rejected as its duplicate), kept variants/s and the wall-time ratio."""
    from ladder_hf.variants import ModelVariantGenerator, QualityConfig, SymbolicGenerator
    from ladder_hf.variants.tree import generate_tree, read_funnel

    print(
        "\nQC funnel, depth-1 trees for",
        args.funnel_problems,
        "problems,",
        args.funnel_variants,
        "variants requested each",
    )
    quality = QualityConfig(sympy_timeout=3.0)

    def model(constrained: bool):
        return ModelVariantGenerator(
            batched,
            variants_per_prompt=args.variants_per_prompt,
            seed=args.seed,
            max_new_tokens=args.max_new_tokens,
            constrained=constrained,
        )

    problems = PROBLEMS[: args.funnel_problems]
    if args.funnel_set:
        from ladder_hf.problems import load_problems

        problems = [dict(p) for p in load_problems(args.funnel_set)][: args.funnel_problems]
    # generation time alone (the same backend for both model runs): QC work differs between the trees
    generate = batched.generate
    clock = {"seconds": 0.0}

    def timed_generate(*a, **k):
        t0 = time.perf_counter()
        try:
            return generate(*a, **k)
        finally:
            clock["seconds"] += time.perf_counter() - t0

    batched.generate = timed_generate
    rows = []
    for name, generator in (
        ("model, constrained", model(True)),
        ("model, unconstrained", model(False)),
        ("symbolic", SymbolicGenerator(seed=args.seed)),
    ):
        clock["seconds"] = 0.0
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            nodes = generate_tree(
                problems,
                generator,
                1,
                out,
                variants_per_node=args.funnel_variants,
                quality=quality,
                progress=False,
            )
            seconds = time.perf_counter() - t0
            funnel = read_funnel(out)
            kept = [n for n in nodes if n["depth"] == 1]
            easier = sum(1 for n in kept if n.get("difficulty_delta") is not None and n["difficulty_delta"] < 0)
            with open(f"{out}/rejected.jsonl", encoding="utf-8") as f:
                rejected = [json.loads(line) for line in f if line.strip()]
            copies = sum(1 for r in rejected if r.get("duplicate_of") and r.get("duplicate_of") == r.get("parent_id"))
            rows.append((name, funnel, easier, copies, seconds, clock["seconds"]))
    stages = list(rows[0][1])
    print("| generator | " + " | ".join(stages) + " | kept and easier | copies of parent | seconds | kept/s |")
    print("|---|" + "---:|" * (len(stages) + 4))
    for name, funnel, easier, copies, secs, _ in rows:
        cells = " | ".join(str(funnel[s]) for s in stages)
        print(f"| {name} | {cells} | {easier} | {copies} | {secs:.1f} | {funnel['kept'] / secs:.3f} |")
    for name, funnel, easier, _, _, gen_s in rows[:2]:
        generated = max(funnel["generated"], 1)
        print(
            f"{name}: parse rate {funnel['parsed']}/{funnel['generated']} = {funnel['parsed'] / generated:.0%}, "
            f"kept-easier rate {easier}/{funnel['requested']} requested = {easier / max(funnel['requested'], 1):.0%}, "
            f"generation {gen_s:.1f} s, {funnel['generated'] / max(gen_s, 1e-9):.2f} variants written/s, "
            f"{funnel['parsed'] / max(gen_s, 1e-9):.2f} parsed/s"
        )
    constrained_s, free_s = rows[0][4], rows[1][4]
    print(
        f"wall time constrained / unconstrained for the same prompts: {constrained_s / free_s:.2f}x "
        "(the trees differ after generation: QC work grows with what parses)"
    )
    print(
        f"generation time alone, constrained / unconstrained: {rows[0][5] / max(rows[1][5], 1e-9):.2f}x "
        "(the budget: at most 1.30x)"
    )


def study(argv: list[str] | None = None) -> int:
    """The paper's prompt devices for a small model, constrained decoding on: personas (one neutral
    persona vs the cycled set), temperature cycling (0.8-1.4 vs a fixed 1.0) and transformation
    suggestions (3-6 per prompt vs none), each arm a depth-1 tree of the same problems.

        python benchmarks/variants.py --study --funnel-set undergrad-train --funnel-problems 24
    """
    parser = argparse.ArgumentParser(description=study.__doc__.splitlines()[0])
    parser.add_argument("--study", action="store_true")
    parser.add_argument("--model", default=None)
    parser.add_argument("--funnel-set", default="undergrad-train")
    parser.add_argument("--funnel-problems", type=int, default=24)
    parser.add_argument("--funnel-variants", type=int, default=6)
    parser.add_argument("--variants-per-prompt", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from ladder_hf.generation import TransformersBackend
    from ladder_hf.models import load_model_and_tokenizer
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import ModelVariantGenerator, QualityConfig
    from ladder_hf.variants.generators import PERSONAS
    from ladder_hf.variants.tree import generate_tree, read_funnel

    torch.manual_seed(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model)
    backend = TransformersBackend(args.model, batch_size=32, model=model, tokenizer=tokenizer)
    problems = [dict(p) for p in load_problems(args.funnel_set)][: args.funnel_problems]
    neutral = ("You are a helpful mathematics teacher.",)
    arms = {
        "default (cycled personas, temperatures 0.8-1.4, 3-6 suggestions)": {},
        "one neutral persona": {"personas": neutral},
        "fixed temperature 1.0": {"temperatures": (1.0,)},
        "no transformation suggestions": {"min_transformations": 0, "max_transformations": 0},
    }
    print(f"{len(problems)} problems of {args.funnel_set}, {args.funnel_variants} variants each")
    print(f"personas in the cycled set: {len(PERSONAS)}")
    print("| arm | requested | generated | parsed | sane | unique | kept | kept and easier | parent copies | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, options in arms.items():
        generator = ModelVariantGenerator(
            backend,
            variants_per_prompt=args.variants_per_prompt,
            seed=args.seed,
            max_new_tokens=args.max_new_tokens,
            **options,
        )
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            generate_tree(
                problems, generator, 1, out, variants_per_node=args.funnel_variants,
                quality=QualityConfig(sympy_timeout=3.0), progress=False,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            f = read_funnel(out)
            with open(f"{out}/rejected.jsonl", encoding="utf-8") as fh:
                rejected = [json.loads(line) for line in fh if line.strip()]
        copies = sum(1 for r in rejected if r.get("qc_status") == "parent_copy")
        print(
            f"| {name} | {f['requested']} | {f['generated']} | {f['parsed']} | {f['sane']} | {f['unique']} | "
            f"{f['kept']} | {f['easier']} | {copies} | {seconds:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    import sys

    if "--study" in sys.argv[1:]:
        raise SystemExit(study(sys.argv[1:]))
    main()
