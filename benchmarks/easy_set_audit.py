"""Re-score ablation runs on the part of their easy held-out set that the contamination guard calls clean.

The easy held-out sets of runs made before 2026-11-26 16:15 were filtered against the training trees by
identical text only. The contamination guard is stricter: it also rejects a constant multiple, a shift or
a rescaling of the variable (``c*f(a*x + b) + d``), so `8*x**2` next to a training node `10*x**2` is the
same problem to it, and `cos(6*x)` is the prompt's own example `cos(2*x)` rescaled. This script judges
every easy held-out problem of each run folder against that folder's training-tree nodes, and against the
training nodes plus the few-shot examples, then reports pass@1 per arm (seeds pooled, 95% Wilson
intervals) on all problems and on each clean subset. No model is run: it reads the folders' results.

    python benchmarks/easy_set_audit.py outputs/ladder_level outputs/ladder_level_lr1e-5 --out docs/easy_set_audit.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ladder_hf.dataset import read_nodes
from ladder_hf.demo import clean_against
from ladder_hf.evaluation import format_rate
from ladder_hf.problems import FEW_SHOT_EXAMPLES
from ladder_hf.store import read_jsonl


def audit(folder: Path) -> dict:
    """Clean flags of the folder's easy problems, and pass@1 per evaluated arm on all / clean problems."""
    easy = read_jsonl(str(folder / "problems" / "test_easy.jsonl"))
    trained = [n for n in read_nodes(str(folder / "variants")) if n.get("kept", True)]
    examples = [{"id": f"few-shot-{i}", "integrand": f} for i, (f, _) in enumerate(FEW_SHOT_EXAMPLES)]
    flags = clean_against(easy, trained)
    fresh_flags = clean_against(easy, trained + examples)
    subsets = {
        "clean": {row["id"] for row, ok in zip(easy, flags, strict=True) if ok},
        "new_family": {row["id"] for row, ok in zip(easy, fresh_flags, strict=True) if ok},
    }
    arms: dict[str, dict] = {}
    for results in sorted(folder.glob("eval/*/easy/results.jsonl")):
        name = results.parent.parent.name
        arm = name.split("-seed")[0]
        pooled = arms.setdefault(arm, {"seeds": 0, "all": [0, 0], "clean": [0, 0], "new_family": [0, 0]})
        pooled["seeds"] += 1
        for row in read_jsonl(str(results)):
            for subset in ("all", *(name for name, ids in subsets.items() if row["id"] in ids)):
                pooled[subset][0] += sum(row["correct"])
                pooled[subset][1] += len(row["correct"])
    return {
        "easy": len(easy),
        "clean": len(subsets["clean"]),
        "new_family": len(subsets["new_family"]),
        "not_clean": sorted(r["integrand"] for r, ok in zip(easy, flags, strict=True) if not ok),
        "prompt_family": sorted(
            r["integrand"] for r, ok, fresh in zip(easy, flags, fresh_flags, strict=True) if ok and not fresh
        ),
        "arms": arms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="ablation run folders")
    parser.add_argument("--out", help="write the audit as JSON here")
    args = parser.parse_args(argv)
    report = {}
    print(
        "| run folder | arm | seeds | easy held-out, all problems | not equivalent to a training node "
        "| nor to a few-shot example |"
    )
    print("|---|---|---|---|---|---|")
    for folder in map(Path, args.folders):
        result = report[str(folder)] = audit(folder)
        for arm, pooled in result["arms"].items():
            every, clean, new = (format_rate(*pooled[k], counts="fraction") for k in ("all", "clean", "new_family"))
            print(
                f"| {folder.name} | {arm} | {pooled['seeds']} | {every} ({result['easy']} problems) "
                f"| {clean} ({result['clean']}) | {new} ({result['new_family']}) |"
            )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
