"""Compare ablation run folders that differ in a setting (a sweep): one arm's curves and held-out scores.

Each folder is a ``benchmarks/ladder_ablation.py`` run (its ``results.json``). The settings that differ
between the folders label them; the arm's runs in a folder (``ladder_level``, ``ladder_level-seed1``, ...)
are pooled: pass@1 over seeds x problems x samples with a 95% Wilson interval, and the verified-correct
rate per GRPO step averaged over seeds. Prints a markdown table and saves a two-panel figure.

    python benchmarks/compare_runs.py outputs/ladder_level outputs/ladder_level_lr1e-4 outputs/ladder_level_lr1e-5 \\
        --arm ladder_level --out docs/img/ladder_level_lr_sweep.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ladder_ablation import ARM_LABELS, arm_of, pooled, trailing_mean

from ladder_hf.evaluation import format_rate, wilson_interval

CORRECT = "rewards/integration_reward/mean"
IGNORED = {"output_dir", "img_dir", "arms", "train_seeds", "overwrite", "prepare_only"}


def labels_for(configs: list[dict]) -> list[str]:
    """A label per run: the settings whose values differ between the runs (``learning_rate=0.0001``).

    Example:
        >>> labels_for([{"learning_rate": 3e-05, "seed": 0}, {"learning_rate": 0.0001, "seed": 0}])
        ['learning_rate=3e-05', 'learning_rate=0.0001']
    """
    keys = sorted({k for c in configs for k in c} - IGNORED)
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
    return [", ".join(f"{k}={c.get(k)}" for k in differing) or f"run {i}" for i, c in enumerate(configs)]


def correct_rate_curve(results: dict, arm: str, window: int = 5) -> tuple[list[int], list[float]]:
    """The arm's verified-correct rate per step, averaged over its seeds, then over a trailing window of steps."""
    histories = [info.get("rewards", []) for key, info in results["arms"].items() if arm_of(key)[0] == arm]
    return trailing_mean(histories, CORRECT, window)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="ablation run folders (each with results.json)")
    parser.add_argument("--arm", default="ladder_level", help="the arm to compare (its seeds are pooled)")
    parser.add_argument("--out", default=None, help="where to save the figure (PNG)")
    args = parser.parse_args(argv)

    runs = [json.loads((Path(f) / "results.json").read_text(encoding="utf-8")) for f in args.folders]
    labels = labels_for([r["config"] for r in runs])
    sets = [s for s in ("easy", "test") if all(r["sizes"].get(s) for r in runs)]

    print(
        f"| {ARM_LABELS[args.arm]} | seeds | " + " | ".join(f"{s} pass@1 [95% CI] | seed spread" for s in sets) + " |"
    )
    print("|---|---|" + "---|---|" * len(sets))
    bars = {s: [] for s in sets}
    for label, results in zip(labels, runs, strict=True):
        cells, seeds = [], 0
        for s in sets:
            p = pooled(results, s).get(args.arm)
            if not p:
                cells += ["–", "–"]
                bars[s].append((0.0, 0.0, 0.0))
                continue
            seeds = len(p["per_seed"])
            low, high = wilson_interval(p["correct"], p["answers"])
            rate = p["correct"] / p["answers"]
            bars[s].append((rate, low, high))
            cells += [
                format_rate(p["correct"], p["answers"]),
                f"{100 * min(p['per_seed']):.1f}-{100 * max(p['per_seed']):.1f}%",
            ]
        print(f"| {label} | {seeds} | " + " | ".join(cells) + " |")

    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (curves, scores) = plt.subplots(1, 2, figsize=(11, 3.8))
        for label, results in zip(labels, runs, strict=True):
            steps, rate = correct_rate_curve(results, args.arm)
            curves.plot(steps, rate, label=label)
        curves.set_xlabel("GRPO step")
        curves.set_ylabel("verified-correct rate\n(mean over seeds, 5-step window)")
        curves.set_title(f"{args.arm}: training signal per step")
        curves.grid(alpha=0.3)
        curves.legend(fontsize=7)
        width = 0.8 / max(1, len(sets))
        for j, s in enumerate(sets):
            xs = [i + (j - (len(sets) - 1) / 2) * width for i in range(len(runs))]
            values = [100 * r for r, _, _ in bars[s]]
            errors = [[100 * (r - lo) for r, lo, _ in bars[s]], [100 * (hi - r) for r, _, hi in bars[s]]]
            scores.bar_label(
                scores.bar(xs, values, width, yerr=errors, capsize=3, label=f"{s} held-out"), fmt="%.1f%%", fontsize=7
            )
        scores.set_xticks(range(len(runs)), labels, fontsize=7)
        scores.set_ylabel("pass@1 (%), 95% interval")
        scores.set_title("held-out pass@1, seeds pooled")
        scores.legend(fontsize=7)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        fig.savefig(args.out, dpi=120)
        plt.close(fig)
        print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
