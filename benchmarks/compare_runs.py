"""Compare ablation run folders that differ in a setting (a sweep): one arm's curves and held-out scores.

Each folder is a ``benchmarks/ladder_ablation.py`` run (its ``results.json``). The settings that differ
between the folders label them; the arm's runs in a folder (``ladder_level``, ``ladder_level-seed1``, ...)
are pooled: pass@1 over seeds x problems x samples with a 95% Wilson interval, and the verified-correct
rate per GRPO step averaged over seeds. A second table gives what training did to the arm, per folder:
seconds per step (median), the training reward and the share of groups with no GRPO signal (all rewards
equal) over the first and last 20 steps, and, for the level arms, the solve rate on all training-tree nodes
before and after. Prints markdown tables and saves a figure.
``--seeds 0`` keeps seed 0 only (the run without a ``-seed`` suffix), for folders that share its level
selection and sampling seed.

    python benchmarks/compare_runs.py outputs/ladder_level outputs/ladder_level_lr1e-4 outputs/ladder_level_lr1e-5 \\
        --arm ladder_level --out docs/img/ladder_level_lr_sweep.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ladder_ablation import ARM_LABELS, AblationConfig, arm_of, pooled, trailing_mean

from ladder_hf.evaluation import format_rate, wilson_interval

CORRECT = "rewards/integration_reward/mean"
NO_SIGNAL = "frac_reward_zero_std"  # TRL's share of groups whose rewards are all equal: no advantage, no gradient
IGNORED = {"output_dir", "img_dir", "arms", "train_seeds", "overwrite", "prepare_only"}


def labels_for(configs: list[dict]) -> list[str]:
    """A label per run: the first run (the reference) by every setting that differs between the runs, each
    other run by the settings in which it differs from the first (``learning_rate=0.0001``).

    Example:
        >>> labels_for([{"learning_rate": 3e-05, "beta": 0.0}, {"learning_rate": 1e-4, "beta": 0.0},
        ...             {"learning_rate": 3e-05, "beta": 0.04}])
        ['beta=0.0, learning_rate=3e-05', 'learning_rate=0.0001', 'beta=0.04']
    """
    # a setting added after a folder was made is read at its default there, not as a difference
    defaults = dataclasses.asdict(AblationConfig())
    configs = [{**defaults, **c} for c in configs]

    def value(c: dict, k: str) -> str:
        return json.dumps(c.get(k), sort_keys=True)

    keys = sorted({k for c in configs for k in c} - IGNORED)
    differing = [k for k in keys if len({value(c, k) for c in configs}) > 1]
    labels = []
    for i, c in enumerate(configs):
        own = [k for k in differing if i == 0 or value(c, k) != value(configs[0], k)]
        labels.append(", ".join(f"{k}={c.get(k)}" for k in own) or f"run {i}")
    return labels


def correct_rate_curve(results: dict, arm: str, window: int = 5) -> tuple[list[int], list[float]]:
    """The arm's verified-correct rate per step, averaged over its seeds, then over a trailing window of steps."""
    histories = [info.get("rewards", []) for key, info in results["arms"].items() if arm_of(key)[0] == arm]
    return trailing_mean(histories, CORRECT, window)


def restrict_seeds(results: dict, seeds: list[int] | None) -> dict:
    """``results`` with only the runs of ``seeds`` (seed 0 is the key without a suffix); all of them for None.

    Example:
        >>> r = {"arms": {"roots": {}, "roots-seed1": {}, "roots-seed2": {}}}
        >>> sorted(restrict_seeds(r, [0, 2])["arms"])
        ['roots', 'roots-seed2']
    """
    if seeds is None:
        return results
    keep = {k: v for k, v in results["arms"].items() if (arm_of(k)[1] or 0) in seeds}
    return {**results, "arms": keep}


def training_summary(results: dict, arm: str, window: int = 20) -> dict | None:
    """What training did to ``arm`` in one folder, averaged over its seeds: median seconds per step, the
    training reward (verified-correct rate) and the share of groups with no GRPO signal (all rewards equal)
    over the first and last ``window`` steps, and the solve rate on all training-tree nodes before and after
    training where it was measured (None for an arm not run).

    Example:
        >>> r = {"arms": {"a": {"rewards": [{"step_time": 2.0, CORRECT: 0.0}, {"step_time": 4.0, CORRECT: 1.0}],
        ...     "solve_rates": {"before": [{"rows": 2, "mean_solve_rate": 0.5}],
        ...                     "after": [{"rows": 2, "mean_solve_rate": 1.0}]}}}}
        >>> t = training_summary(r, "a", window=1)
        >>> t["step_seconds"], t["reward_first"], t["reward_last"], t["tree_before"], t["tree_after"]
        (3.0, 0.0, 1.0, 0.5, 1.0)
        >>> t["no_signal_last"] is None  # not logged in these rows
        True
    """
    import statistics

    runs = [info for key, info in results["arms"].items() if arm_of(key)[0] == arm and info.get("rewards")]
    if not runs:
        return None

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    def tree_rate(info: dict, when: str) -> float | None:
        table = (info.get("solve_rates") or {}).get(when)
        if not table:
            return None
        return sum(t["rows"] * t["mean_solve_rate"] for t in table) / sum(t["rows"] for t in table)

    steps = [h["step_time"] for info in runs for h in info["rewards"] if "step_time" in h]
    rewards = [[h[CORRECT] for h in info["rewards"] if CORRECT in h] for info in runs]
    no_signal = [[h[NO_SIGNAL] for h in info["rewards"] if NO_SIGNAL in h] for info in runs]
    trees = {when: [r for info in runs if (r := tree_rate(info, when)) is not None] for when in ("before", "after")}
    return {
        "seeds": len(runs),
        "step_seconds": round(statistics.median(steps), 2) if steps else None,
        "reward_first": mean([statistics.fmean(r[:window]) for r in rewards if r]),
        "reward_last": mean([statistics.fmean(r[-window:]) for r in rewards if r]),
        "no_signal_first": mean([statistics.fmean(z[:window]) for z in no_signal if z]),
        "no_signal_last": mean([statistics.fmean(z[-window:]) for z in no_signal if z]),
        "tree_before": mean(trees["before"]),
        "tree_after": mean(trees["after"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="ablation run folders (each with results.json)")
    parser.add_argument("--arm", default="ladder_level", help="the arm to compare (its seeds are pooled)")
    parser.add_argument("--out", default=None, help="where to save the figure (PNG)")
    parser.add_argument("--json", default=None, help="also write the tables' numbers here (JSON)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="keep only these seeds (default: all)")
    parser.add_argument(
        "--labels", nargs="+", default=None, help="one label per folder (default: the settings that differ)"
    )
    args = parser.parse_args(argv)

    runs = [json.loads((Path(f) / "results.json").read_text(encoding="utf-8")) for f in args.folders]
    runs = [restrict_seeds(r, args.seeds) for r in runs]
    labels = args.labels or labels_for([r["config"] for r in runs])
    if len(labels) != len(runs):
        parser.error(f"{len(labels)} labels for {len(runs)} folders")
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

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f}%"

    summaries = [training_summary(r, args.arm) for r in runs]
    print(
        "\n| run | seeds | s / step (median) | reward, first 20 steps | last 20 steps "
        "| groups without signal, first 20 steps | last 20 steps | tree solve rate before | after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, t in zip(labels, summaries, strict=True):
        if t:
            print(
                f"| {label} | {t['seeds']} | {t['step_seconds']} | {t['reward_first']:.2f} | {t['reward_last']:.2f} "
                f"| {pct(t['no_signal_first'])} | {pct(t['no_signal_last'])} "
                f"| {pct(t['tree_before'])} | {pct(t['tree_after'])} |"
            )

    if args.json:
        report = [
            {
                "folder": folder,
                "label": label,
                "held_out": {s: pooled(r, s).get(args.arm) for s in sets},
                "training": t,
            }
            for folder, label, r, t in zip(args.folders, labels, runs, summaries, strict=True)
        ]
        Path(args.json).write_text(json.dumps({"arm": args.arm, "seeds": args.seeds, "runs": report}, indent=1) + "\n")
        print(f"numbers: {args.json}")

    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with_trees = any(t and t["tree_after"] is not None for t in summaries)
        panels = 3 + with_trees
        fig, axes = plt.subplots(1, panels, figsize=(5.4 * panels, 5.5))
        curves, signal, scores = axes[0], axes[1], axes[2]
        # long labels (the reference run lists every setting that differs) wrapped under the bars
        ticks = [textwrap.fill(label.replace(", ", ",\n"), 24) for label in labels]
        for label, results in zip(labels, runs, strict=True):
            steps, rate = correct_rate_curve(results, args.arm, window=10)
            curves.plot(steps, rate, label=textwrap.shorten(label, 40, placeholder="..."), lw=1.2)
        curves.set_xlabel("GRPO step")
        curves.set_ylabel("verified-correct rate\n(mean over seeds, 10-step window)")
        curves.set_title(f"{args.arm}: training signal per step")
        curves.grid(alpha=0.3)
        curves.legend(fontsize=7)
        for label, results in zip(labels, runs, strict=True):
            histories = [i.get("rewards", []) for k, i in results["arms"].items() if arm_of(k)[0] == args.arm]
            steps, share = trailing_mean(histories, NO_SIGNAL, 10)
            signal.plot(steps, [100 * v for v in share], label=textwrap.shorten(label, 40, placeholder="..."), lw=1.2)
        signal.set_xlabel("GRPO step")
        signal.set_ylabel("groups with all rewards equal (%)\n(mean over seeds, 10-step window)")
        signal.set_title("groups that teach nothing")
        signal.grid(alpha=0.3)
        signal.legend(fontsize=7)
        width = 0.8 / max(1, len(sets))
        for j, s in enumerate(sets):
            xs = [i + (j - (len(sets) - 1) / 2) * width for i in range(len(runs))]
            values = [100 * r for r, _, _ in bars[s]]
            errors = [[100 * (r - lo) for r, lo, _ in bars[s]], [100 * (hi - r) for r, _, hi in bars[s]]]
            scores.bar_label(
                scores.bar(xs, values, width, yerr=errors, capsize=3, label=f"{s} held-out"), fmt="%.1f%%", fontsize=7
            )
        scores.set_xticks(range(len(runs)), ticks, fontsize=6, rotation=60, ha="right")
        scores.set_ylabel("pass@1 (%), 95% interval")
        scores.set_title("held-out pass@1, seeds pooled")
        scores.legend(fontsize=7)
        if with_trees:
            trees = axes[3]
            for j, when in enumerate(("before", "after")):
                values = [100 * (t[f"tree_{when}"] or 0.0) if t else 0.0 for t in summaries]
                xs = [i + (j - 0.5) * 0.4 for i in range(len(runs))]
                trees.bar_label(trees.bar(xs, values, 0.4, label=f"{when} training"), fmt="%.1f%%", fontsize=7)
            trees.set_xticks(range(len(runs)), ticks, fontsize=6, rotation=60, ha="right")
            trees.set_ylabel("solve rate on all tree nodes (%)")
            trees.set_title("training trees, mean over seeds")
            trees.legend(fontsize=7)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        fig.savefig(args.out, dpi=120)
        plt.close(fig)
        print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
