"""Re-score ablation runs on the part of their easy held-out set that the contamination guard calls clean.

The easy held-out sets of runs made before 2026-11-26 16:15 were filtered against the training trees by
identical text only. The contamination guard is stricter: it also rejects a constant multiple, a shift or
a rescaling of the variable (``c*f(a*x + b) + d``), so `8*x**2` next to a training node `10*x**2` is the
same problem to it, and `cos(6*x)` is the prompt's own example `cos(2*x)` rescaled. This script judges
every easy held-out problem of each run folder against that folder's training-tree nodes, and against the
training nodes plus the few-shot examples, then reports pass@1 per arm (seeds pooled, 95% Wilson
intervals) on all problems and on each clean subset, and on the problems whose antiderivative is elementary
(sympy in the sandbox; older sets could hold `1/log(x)`). No model is run: it reads the folders' results.

``--paired A B`` (repeatable) adds the difference of arm B minus arm A in each folder, on each subset, with a 95%
interval from a bootstrap over problems (the samples of one problem are correlated, so problems, not
answers, are resampled).

    python benchmarks/easy_set_audit.py outputs/ladder_level outputs/ladder_level_lr1e-5 --out docs/easy_set_audit.json
    python benchmarks/easy_set_audit.py outputs/run5_80 --paired warm_start_roots warm_start_level \\
        --paired warm_start warm_start_level --paired base warm_start_level
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ladder_hf.dataset import read_nodes
from ladder_hf.demo import clean_against, elementary_variants, prompt_examples
from ladder_hf.evaluation import format_rate
from ladder_hf.store import read_jsonl


def audit(folder: Path) -> dict:
    """Clean flags of the folder's easy problems, and pass@1 per evaluated arm on all / clean problems."""
    easy = read_jsonl(str(folder / "problems" / "test_easy.jsonl"))
    trained = [n for n in read_nodes(str(folder / "variants")) if n.get("kept", True)]
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    examples = prompt_examples(config.get("system_prompt", "few_shot"))
    flags = clean_against(easy, trained)
    fresh_flags = clean_against(easy, trained + examples)
    subsets = {
        "clean": {row["id"] for row, ok in zip(easy, flags, strict=True) if ok},
        "new_family": {row["id"] for row, ok in zip(easy, fresh_flags, strict=True) if ok},
        # sets made before 2026-11-27 could hold variants of trees grown without sympy, whose antiderivative
        # was never checked: `1/log(x)` (li) or `exp(-x**2)` (erf) are not easy integrals
        "elementary": {row["id"] for row in elementary_variants(easy, len(easy))},
    }
    arms: dict[str, dict] = {}
    per_problem: dict[str, dict[str, list[int]]] = {}
    for results in sorted(folder.glob("eval/*/easy/results.jsonl")):
        name = results.parent.parent.name
        arm = name.split("-seed")[0]
        pooled = arms.setdefault(arm, {"seeds": 0, **{k: [0, 0] for k in ("all", *subsets)}})
        pooled["seeds"] += 1
        for row in read_jsonl(str(results)):
            counts = per_problem.setdefault(arm, {}).setdefault(row["id"], [0, 0])
            counts[0] += sum(row["correct"])
            counts[1] += len(row["correct"])
            for subset in ("all", *(name for name, ids in subsets.items() if row["id"] in ids)):
                pooled[subset][0] += sum(row["correct"])
                pooled[subset][1] += len(row["correct"])
    return {
        "easy": len(easy),
        "clean": len(subsets["clean"]),
        "new_family": len(subsets["new_family"]),
        "elementary": len(subsets["elementary"]),
        "not_elementary": sorted(r["integrand"] for r in easy if r["id"] not in subsets["elementary"]),
        "not_clean": sorted(r["integrand"] for r, ok in zip(easy, flags, strict=True) if not ok),
        "prompt_family": sorted(
            r["integrand"] for r, ok, fresh in zip(easy, flags, fresh_flags, strict=True) if ok and not fresh
        ),
        "arms": arms,
        "subsets": {"all": sorted(r["id"] for r in easy), **{k: sorted(v) for k, v in subsets.items()}},
        "per_problem": per_problem,
    }


def paired_difference(result: dict, a: str, b: str, subset: str = "all", draws: int = 10_000, seed: int = 0) -> dict:
    """pass@1 of arm ``b`` minus arm ``a`` on the problems of ``subset`` (an :func:`audit` result), each arm's
    answers pooled per problem, with a 95% percentile interval from ``draws`` bootstrap resamples of the problems.

    Example:
        >>> result = {"subsets": {"all": ["p", "q"]}, "per_problem": {"a": {"p": [0, 4], "q": [1, 4]},
        ...           "b": {"p": [2, 4], "q": [1, 4]}}}
        >>> paired_difference(result, "a", "b")["difference"]
        0.25
    """
    import numpy as np

    ids = [i for i in result["subsets"][subset] if i in result["per_problem"][a] and i in result["per_problem"][b]]
    counts = np.array([[*result["per_problem"][a][i], *result["per_problem"][b][i]] for i in ids], dtype=float)

    def diff(rows) -> float:
        return float(rows[:, 2].sum() / rows[:, 3].sum() - rows[:, 0].sum() / rows[:, 1].sum())

    rng = np.random.default_rng(seed)
    resampled = [diff(counts[rng.integers(0, len(ids), len(ids))]) for _ in range(draws)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"problems": len(ids), "difference": round(diff(counts), 4), "ci95": [round(low, 4), round(high, 4)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="ablation run folders")
    parser.add_argument("--out", help="write the audit as JSON here")
    parser.add_argument(
        "--paired",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="also report arm B minus arm A, paired (repeat for more pairs)",
    )
    args = parser.parse_args(argv)
    report = {}
    print(
        "| run folder | arm | seeds | easy held-out, all problems | not equivalent to a training node "
        "| nor to a few-shot example | elementary antiderivative |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in map(Path, args.folders):
        result = report[str(folder)] = audit(folder)
        for arm, pooled in result["arms"].items():
            every, clean, new, elementary = (
                format_rate(*pooled[k], counts="fraction") for k in ("all", "clean", "new_family", "elementary")
            )
            print(
                f"| {folder.name} | {arm} | {pooled['seeds']} | {every} ({result['easy']} problems) "
                f"| {clean} ({result['clean']}) | {new} ({result['new_family']}) "
                f"| {elementary} ({result['elementary']}) |"
            )
    for a, b in args.paired:
        print(f"\n{b} minus {a}, pass@1 difference [95% bootstrap interval over problems]:\n")
        print(
            "| run folder | all problems | not equivalent to a training node | nor to a few-shot example "
            "| elementary antiderivative |"
        )
        print("|---|---|---|---|---|")
        for folder, result in report.items():
            if not {a, b} <= set(result["per_problem"]):
                continue
            cells = []
            for subset in ("all", "clean", "new_family", "elementary"):
                d = result.setdefault("paired", {}).setdefault(f"{b} - {a}", {})[subset] = paired_difference(
                    result, a, b, subset
                )
                low, high = d["ci95"]
                cells.append(f"{100 * d['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] ({d['problems']})")
            print(f"| {Path(folder).name} | " + " | ".join(cells) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
