"""How much there is for GRPO to amplify: pass@k of models on a problem set, for k up to many samples.

GRPO raises the probability of answers a model already samples; a problem on which the base model never
writes a correct answer in k tries gives every group an advantage of zero. So the base model's pass@k at
large k is the share of problems where label-free RL has something to start from, and how far a trained
model's pass@1 rises towards it is what the training achieved. (Yue et al., 2025, arXiv 2504.13837, found
RL-trained models' pass@k at large k no higher than their base models' on maths and code benchmarks.)

Each model samples ``--samples`` answers per problem with ``ladder-hf evaluate`` (resumable: a folder of
the same settings is reused), then pass@k (the unbiased estimator of the metric) is reported for k = 1, 2,
4, ... with a 95% interval from a bootstrap over problems, with the problems each model ever solved, and
as a figure. ``--constant_factor`` also asks, of every wrong answer, whether it is right up to a constant
factor (an antiderivative of ``k`` times the integrand for a small rational ``k``, checked by the sandboxed
verifier): the model knew the function and missed the constant, which is what the few-shot prompt's `/2`
does to `cosh(x)`, and what GRPO on tree nodes of other coefficients can teach.

    python benchmarks/pass_at_k.py --problems outputs/run7_broad/problems/test_easy.jsonl \\
        --model base=default --model ladder_s0=outputs/run7_broad/models/ladder_level \\
        --out_dir outputs/passk --samples 64 --constant_factor --json docs/run7_pass_at_k.json \\
        --figure docs/img/run7_pass_at_k.png

(docs/results.md, "How much there is to amplify", has the measurement and the command for all four seeds.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ladder_hf.metrics.integration_bee.scoring import default_ks, pass_at_k
from ladder_hf.problems import load_problems
from ladder_hf.store import read_jsonl


def correct_counts(results_path: Path) -> dict[str, tuple[int, int]]:
    """(correct, samples) per problem id from an evaluation's ``results.jsonl``."""
    return {
        row["id"]: (sum(map(bool, row["correct"])), len(row["correct"]))
        for row in read_jsonl(str(results_path))
        if row.get("system", "model") == "model"
    }


# the factors a small model's answers are off by in practice: the prompt's /2, /3 and /5, signs, small integers
FACTORS = ("2", "1/2", "3", "1/3", "4", "1/4", "5", "1/5", "6", "1/6", "-1", "-2", "-1/2", "-3", "-1/3")


def constant_factor_misses(
    problems: dict[str, str], results_path: Path, factors: tuple[str, ...] = FACTORS, timeout: float = 5.0
) -> dict[str, int]:
    """Per problem id, how many of its wrong answers are antiderivatives of ``k * integrand`` for some ``k`` in
    ``factors`` (right up to a constant factor). Each distinct wrong answer is verified once per factor, in the
    verifier's sandbox, like any model output.
    """
    from ladder_hf.verifier import verify_batch

    wrong: dict[tuple[str, str], int] = {}
    for row in read_jsonl(str(results_path)):
        if row.get("system", "model") != "model":
            continue
        for answer, correct in zip(row["answers"], row["correct"], strict=True):
            if answer and not correct:
                wrong[(row["id"], answer)] = wrong.get((row["id"], answer), 0) + 1
    keys = list(wrong)
    items = [{"integrand": f"({k})*({problems[i]})", "candidate": a} for i, a in keys for k in factors]
    verdicts = [r.correct for r in verify_batch(items, timeout=timeout)] if items else []
    misses = dict.fromkeys(problems, 0)
    for j, key in enumerate(keys):
        if any(verdicts[j * len(factors) : (j + 1) * len(factors)]):
            misses[key[0]] += wrong[key]
    return misses


def pass_at_k_curve(counts: list[tuple[int, int]], draws: int = 10_000, seed: int = 0) -> list[dict]:
    """Mean pass@k over problems for k = 1, 2, 4, ..., n, each with a 95% percentile interval from
    ``draws`` bootstrap resamples of the problems (``counts``: (correct, samples) per problem, same n).

    Example:
        >>> [(row["k"], row["pass"]) for row in pass_at_k_curve([(0, 4), (2, 4)])]
        [(1, 0.25), (2, 0.4167), (4, 0.5)]
    """
    import numpy as np

    n = counts[0][1]
    if any(samples != n for _, samples in counts):
        raise ValueError("every problem needs the same number of samples")
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, len(counts), (draws, len(counts)))
    curve = []
    for k in default_ks(n):
        per_problem = np.array([pass_at_k(n, c, k) for c, _ in counts])
        low, high = np.percentile(per_problem[resamples].mean(axis=1), [2.5, 97.5])
        curve.append({"k": k, "pass": round(float(per_problem.mean()), 4), "ci95": [round(low, 4), round(high, 4)]})
    return curve


def plot(curves: dict[str, list[dict]], path: str, title: str, near: dict[str, list[dict]] | None = None) -> str:
    """pass@k against k (log scale), one line and interval band per model; ``near``: the same models' curves
    counting answers right up to a constant factor, dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.8))
    for name, curve in curves.items():
        ks = [row["k"] for row in curve]
        (line,) = ax.plot(ks, [100 * row["pass"] for row in curve], marker="o", label=name)
        ax.fill_between(ks, [100 * row["ci95"][0] for row in curve], [100 * row["ci95"][1] for row in curve], alpha=0.2)
        if near and name in near:
            values = [100 * row["pass"] for row in near[name]]
            ax.plot(ks, values, linestyle="--", color=line.get_color(), label=f"{name}, right up to a constant factor")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (answers sampled per problem)")
    ax.set_ylabel("pass@k, % of problems (95% bootstrap interval)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", required=True, help="a .jsonl of problems or a bundled set name")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="repeatable")
    parser.add_argument("--out_dir", default="outputs/pass_at_k", help="one evaluation folder per model here")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument("--max_new_tokens", type=int, default=40)
    parser.add_argument("--prompt", default="few_shot")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the curves and the solved problems here")
    parser.add_argument("--figure", help="write the pass@k figure here")
    parser.add_argument(
        "--constant_factor", action="store_true", help="also count wrong answers that are right up to a constant"
    )
    args = parser.parse_args(argv)

    from ladder_hf.evaluation import evaluate_model

    problems = {p["id"]: p["integrand"] for p in load_problems(args.problems)}
    report: dict = {"problems": args.problems, "samples": args.samples, "temperature": args.temperature, "models": {}}
    for spec in args.model:
        name, _, path = spec.partition("=")
        out = Path(args.out_dir) / name
        evaluate_model(
            path or name,
            problem_set=args.problems,
            output_dir=out,
            num_samples=args.samples,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            batch_size=args.batch_size,
            seed=args.seed,
            system_prompt=args.prompt,
            sympy_baseline=False,
        )
        counts = correct_counts(out / "results.jsonl")
        result = report["models"][name] = {
            "model": path or name,
            "curve": pass_at_k_curve(list(counts.values())),
            "solved": {problems[i]: f"{c}/{n}" for i, (c, n) in counts.items() if c},
        }
        if args.constant_factor:
            misses = constant_factor_misses(problems, out / "results.jsonl")
            # "right up to a constant": correct answers and answers off by a constant factor, as one count
            near_counts = [(c + misses[i], n) for i, (c, n) in counts.items()]
            result["constant_factor_misses"] = {problems[i]: f"{m}/{counts[i][1]}" for i, m in misses.items() if m}
            result["curve_up_to_a_constant"] = pass_at_k_curve(near_counts)
    print(f"{len(problems)} problems, {args.samples} answers each, temperature {args.temperature:g}\n")
    ks = [row["k"] for row in next(iter(report["models"].values()))["curve"]]
    print("| model | " + " | ".join(f"pass@{k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for name, result in report["models"].items():
        for label, key in ((name, "curve"), (f"{name}, right up to a constant factor", "curve_up_to_a_constant")):
            if key in result:
                cells = [
                    f"{100 * r['pass']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]" for r in result[key]
                ]
                print(f"| {label} | " + " | ".join(cells) + " |")
    for name, result in report["models"].items():
        solved = ", ".join(f"`{integrand}` {share}" for integrand, share in result["solved"].items()) or "none"
        print(f"\n{name}: solved at least once: {solved}")
        if "constant_factor_misses" in result:
            off = ", ".join(f"`{i}` {share}" for i, share in result["constant_factor_misses"].items()) or "none"
            print(f"{name}: off by a constant factor only: {off}")
    if args.figure:
        title = f"pass@k, {len(problems)} problems, T={args.temperature:g}"
        curves = {name: r["curve"] for name, r in report["models"].items()}
        near = {
            name: r["curve_up_to_a_constant"] for name, r in report["models"].items() if "curve_up_to_a_constant" in r
        }
        plot(curves, args.figure, title, near)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
