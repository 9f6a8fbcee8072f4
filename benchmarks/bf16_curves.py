"""Does bf16 train the same model as float32 on this CPU? Reward and loss curves of both, with their noise.

``benchmarks/grpo_step.py`` shows that bf16 makes a step faster where the CPU multiplies bf16 natively
(AVX512-BF16 or AMX). This checks the other half: that it learns the same. It trains the embedded model
with ``smollm2_cpu.yaml`` (the integration reward plus the format reward at weight 0.1, so the curves move
within a short run) on the same variant rows, ``--steps`` steps per run, in float32 and in bf16 (autocast
for the loss, a bf16 copy of the weights for sampling: ``LadderGRPOTrainer._bf16_sampler``), one run per
seed and precision. bf16 matches float32 "within noise" when the difference of the two precisions' mean
reward and loss over the last ``--window`` steps (pooled over seeds) has a 95% interval that contains 0.
It prints, per run, the mean reward and loss over the first and last ``--window`` steps and the median
step time, the two differences with their intervals, and saves a figure of both curves (running means).

    python benchmarks/bf16_curves.py                        # 30 steps, seeds 0 and 1, 40-token completions
    python benchmarks/bf16_curves.py --steps 60 --seeds 0 1 2 --out docs/img/bf16_curves.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from grpo_step import ROOT, run

from ladder_hf.demo import trailing_mean
from ladder_hf.models import cpu_has_native_bf16
from ladder_hf.training_data import grow_variants


def history(output_dir: str) -> list[dict]:
    """The trainer's per-step logs (those with a loss) of one run."""
    with open(os.path.join(output_dir, "trainer_state.json"), encoding="utf-8") as state:
        return [log for log in json.load(state)["log_history"] if "loss" in log and "reward" in log]


def last_window_gap(runs: dict[str, list[dict]], key: str, window: int) -> dict[str, float]:
    """bf16 minus float32 in the mean of ``key`` over each run's last ``window`` steps, with a 95% interval.

    Every logged step is one value (a step's reward is already a mean over its completions); the steps of a
    precision's seeds are pooled, and the interval is the normal one for a difference of two means with
    unequal variances. Neighbouring steps are correlated, so the true interval is somewhat wider.

    Example:
        >>> runs = {"float32-seed0": [{"r": 0.0}, {"r": 1.0}], "bf16-seed0": [{"r": 1.0}, {"r": 2.0}]}
        >>> gap = last_window_gap(runs, "r", 2)
        >>> gap["difference"], round(gap["low"], 2), round(gap["high"], 2)
        (1.0, -0.39, 2.39)
    """
    pooled = {
        precision: [log[key] for name, logs in runs.items() if name.startswith(precision) for log in logs[-window:]]
        for precision in ("float32", "bf16")
    }
    means = {precision: statistics.fmean(values) for precision, values in pooled.items()}
    error = sum(statistics.variance(values) / len(values) for values in pooled.values()) ** 0.5
    difference = means["bf16"] - means["float32"]
    return {**means, "difference": difference, "low": difference - 1.96 * error, "high": difference + 1.96 * error}


def plot_curves(runs: dict[str, list[dict]], path: str) -> None:
    """Reward and loss per step (running means of 5), float32 in blue and bf16 in orange, one line style per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({name.split("-seed")[1] for name in runs}, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, logs in runs.items():
        precision, seed = name.split("-seed")
        style = {"color": "tab:blue" if precision == "float32" else "tab:orange"}
        style["linestyle"] = ["-", "--", ":", "-."][seeds.index(seed) % 4]
        for ax, key in zip(axes, ("reward", "loss"), strict=True):
            ax.plot(*trailing_mean([logs], key, 5), label=name, **style)
    for ax, key in zip(axes, ("training reward", "GRPO loss"), strict=True):
        ax.set_xlabel("step")
        ax.set_title(f"{key} (running mean of 5 steps)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "recipes", "configs", "smollm2_cpu.yaml"))
    parser.add_argument("--steps", type=int, default=30, help="GRPO steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one float32 and one bf16 run per seed")
    parser.add_argument("--window", type=int, default=10, help="steps averaged at the start and end of a run")
    parser.add_argument("--problems", default="mit-2024", help="problems whose symbolic variants are trained on")
    parser.add_argument("--workdir", default=None, help="where to keep variants and runs (default: a temp dir)")
    parser.add_argument("--out", default=None, help="figure path (default: <workdir>/bf16_curves.png)")
    parser.add_argument("--json", default=None, help="also write the per-step curves and summary here")
    args, extra = parser.parse_known_args(argv)  # anything else overrides the config
    if not cpu_has_native_bf16():
        print("this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 would be emulated, many times slower")
        return 1
    extra = ["--max_completion_length", "40", "--learning_rate", "1e-5", *extra]

    workdir = args.workdir or tempfile.mkdtemp(prefix="bf16-curves-")
    variants = os.path.join(workdir, "variants")
    grow_variants(args.problems, variants, depth=1, variants_per_node=4, max_nodes_per_root=8)
    runs: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    for seed in args.seeds:
        for precision in ("float32", "bf16"):
            name = f"{precision}-seed{seed}"
            out = os.path.join(workdir, name)
            options = [*extra, "--seed", str(seed), "--bf16", str(precision == "bf16").lower()]
            timings, _, _ = run(args.config, args.steps, variants, out, extra=options)
            runs[name] = history(out)
            seconds[name] = statistics.median(s for s, _ in timings[1:] or timings)

    def window_mean(name: str, key: str, last: bool) -> float:
        logs = runs[name][-args.window :] if last else runs[name][: args.window]
        return statistics.fmean(log[key] for log in logs)

    summary = {}
    print(f"\n{args.steps} steps per run, {' '.join(extra)}; means over the first and last {args.window} steps")
    print(f"{'run':<16}{'reward first':>14}{'reward last':>13}{'loss first':>12}{'loss last':>11}{'step s':>9}")
    for name in runs:
        summary[name] = {
            "reward_first": window_mean(name, "reward", False),
            "reward_last": window_mean(name, "reward", True),
            "loss_first": window_mean(name, "loss", False),
            "loss_last": window_mean(name, "loss", True),
            "step_seconds": seconds[name],
        }
        row = summary[name]
        print(
            f"{name:<16}{row['reward_first']:>14.3f}{row['reward_last']:>13.3f}{row['loss_first']:>12.3f}"
            f"{row['loss_last']:>11.3f}{row['step_seconds']:>9.2f}"
        )

    def mean_of(precision: str, key: str) -> float:
        return statistics.fmean(summary[f"{precision}-seed{s}"][key] for s in args.seeds)

    gaps = {}
    for key in ("reward", "loss"):
        gaps[key] = gap = last_window_gap(runs, key, args.window)
        verdict = "within noise" if gap["low"] <= 0.0 <= gap["high"] else "outside noise"
        print(
            f"{key} over the last {args.window} steps, pooled over seeds: float32 {gap['float32']:.3f}, "
            f"bf16 {gap['bf16']:.3f}, bf16 - float32 {gap['difference']:+.3f} "
            f"[{gap['low']:+.3f}, {gap['high']:+.3f}] (95%): {verdict}"
        )
    speed = mean_of("float32", "step_seconds") / mean_of("bf16", "step_seconds")
    print(f"median step time float32 / bf16 (mean over seeds): {speed:.2f}x")

    figure = args.out or os.path.join(workdir, "bf16_curves.png")
    plot_curves(runs, figure)
    print(f"figure: {figure}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            curves = {n: [{k: log[k] for k in ("step", "reward", "loss")} for log in logs] for n, logs in runs.items()}
            json.dump({"args": sys.argv[1:], "summary": summary, "gaps": gaps, "curves": curves}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
