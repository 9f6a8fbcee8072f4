"""Seconds per GRPO step and the reward share of a step, against a no-op-reward baseline in the same run.

Trains the model of a recipe config (default: recipes/configs/smollm2_cpu.yaml, the embedded
SmolLM2-135M-Instruct) for a few steps twice on the same variant rows, same seed:

- ``noop``: one reward that returns zeros (what a step costs without any verification);
- ``ladder``: the config's rewards (integration verifier + format).

Per step it records the step wall time and the wall time spent inside reward functions (the same
``RewardTimer`` that logs ``timing/reward_share`` during training) and prints medians over the
steps after the first (the first pays for warm-up: worker pool start, allocator). Generation
dominates a CPU step and its length varies with sampling, so compare medians, not single steps.

    python benchmarks/grpo_step.py                       # 5 steps per condition, smollm2_cpu.yaml
    python benchmarks/grpo_step.py --steps 8 --config recipes/configs/smollm2_cpu.yaml
    python benchmarks/grpo_step.py --steps 2 --max_completion_length 64   # extra options override the config
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

from ladder_hf.grpo import make_parser, train
from ladder_hf.training_data import grow_variants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noop_reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """Baseline reward: constant zero, no parsing, no verification."""
    return [0.0] * len(completions)


def run(
    config: str, steps: int, dataset: str, output_dir: str, reward_funcs=None, extra: list[str] | None = None
) -> list[tuple[float, float]]:
    overrides = [
        *(extra or []),
        "--max_steps",
        str(steps),
        "--output_dir",
        output_dir,
        "--save_strategy",
        "no",
        "--eval_set",
        "",  # held-out evaluation is not part of a training step
        "--dataset_name",
        dataset,
        "--problems",
        "",
    ]
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=["--config", config, *overrides])
    script_args.problems = None
    if reward_funcs is not None:
        training_args.reward_weights = None
    summary = train(script_args, training_args, model_args, reward_funcs=reward_funcs)
    return summary["step_timings"]


def time_answered_rewards(variants: str, batch: int, repeats: int = 5) -> list[float]:
    """Seconds the config's rewards take on one step's worth of completions that all carry an answer.

    A small model rarely writes an <answer> block in a short CPU run, so the training steps above may
    never reach the verifier; this times the verifier path itself: half the answers are the rows'
    sympy antiderivatives (correct), half are wrong.
    """
    from ladder_hf.rewards import format_reward, integration_reward
    from ladder_hf.training_data import load_variants_folder

    rows = [r for r in load_variants_folder(variants) if r.get("sympy_antiderivative") and not r["lower"]][:batch]
    rows = (rows * batch)[:batch]
    answers = [r["sympy_antiderivative"] if i % 2 == 0 else "x**2 + 1" for i, r in enumerate(rows)]
    completions = [[{"role": "assistant", "content": f"Let me think.\n<answer>{a}</answer>"}] for a in answers]
    columns = {key: [r[key] for r in rows] for key in ("integrand", "lower", "upper")}
    timings = []
    for _ in range(repeats + 1):  # the first call starts the verifier's worker pool
        start = time.perf_counter()
        correct = integration_reward(prompts=[[]] * batch, completions=completions, **columns)
        format_reward(prompts=[[]] * batch, completions=completions, **columns)
        timings.append(time.perf_counter() - start)
    verified = sum(c or 0 for c in correct)  # None: a problem-side failure, not scored
    print(f"answered-completion check: {verified:.0f}/{batch} verified correct (expected {(batch + 1) // 2})")
    return timings


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "recipes", "configs", "smollm2_cpu.yaml"))
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps per condition (first one is warm-up)")
    parser.add_argument("--problems", default="mit-2024", help="problems whose symbolic variants are trained on")
    parser.add_argument("--workdir", default=None, help="where to keep variants and outputs (default: a temp dir)")
    parser.add_argument("--answered-batch", type=int, default=8, help="completions per step for the verifier timing")
    parser.add_argument("--skip-training", action="store_true", help="only time the rewards on answered completions")
    args, extra = parser.parse_known_args(argv)  # anything else overrides the config, e.g. --max_completion_length 64

    workdir = args.workdir or tempfile.mkdtemp(prefix="grpo-bench-")
    variants = os.path.join(workdir, "variants")
    start = time.perf_counter()
    grow_variants(args.problems, variants, depth=1, variants_per_node=4, max_nodes_per_root=8)
    print(f"variants ready in {time.perf_counter() - start:.1f}s: {variants}")

    answered = time_answered_rewards(variants, args.answered_batch)
    print(
        f"rewards on {args.answered_batch} answered completions: first call {answered[0]:.3f}s (pool start), "
        f"median of the next {len(answered) - 1}: {_median(answered[1:]):.3f}s"
    )
    if args.skip_training:
        return 0

    results = {}
    for name, funcs in (("noop", [noop_reward]), ("ladder", None)):
        timings = run(args.config, args.steps, variants, os.path.join(workdir, name), reward_funcs=funcs, extra=extra)
        results[name] = timings

    import torch

    print()
    print(f"config: {os.path.relpath(args.config, ROOT)} {' '.join(extra)}  steps per condition: {args.steps}")
    print(f"load average at the end: {os.getloadavg()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    header = (
        f"{'condition':<10}{'median step s':>15}{'median reward s':>17}{'median share':>14}"
        f"{'step-1 s':>10}{'step-1 reward s':>17}"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for name, timings in results.items():
        later = timings[1:] or timings
        step_med = _median([s for s, _ in later])
        reward_med = _median([r for _, r in later])
        share_med = _median([r / s for s, r in later if s > 0])
        medians[name] = step_med
        first_step, first_reward = timings[0] if timings else (float("nan"), float("nan"))
        print(
            f"{name:<10}{step_med:>15.2f}{reward_med:>17.4f}{share_med:>13.2%}{first_step:>10.2f}{first_reward:>17.4f}"
        )
    print()
    print(f"median step time ladder / noop: {medians['ladder'] / medians['noop']:.3f}")
    print(
        f"answered-completion reward time / median noop step: {_median(answered[1:]) / medians['noop']:.2%} "
        "(the share if every completion carried an answer)"
    )
    for name, timings in results.items():
        print(f"{name} per step (step s, reward s): " + ", ".join(f"({s:.2f}, {r:.4f})" for s, r in timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
