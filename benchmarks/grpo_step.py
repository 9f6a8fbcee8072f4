"""Seconds per GRPO step on this CPU: today's default configuration against the fastest one we have, in one run.

Trains the model of a recipe config (default: recipes/configs/smollm2_cpu.yaml, the embedded
SmolLM2-135M-Instruct) for a few steps per condition on the same variant rows, with the same seed,
completions per step, group size, completion budget and rewards. The learning rate is 0 unless
``--learn`` is given: a step does all its work (generation, rewards, forward, backward, optimizer) either
way, and with the weights unchanged the samples do not drift apart as the conditions train. (``trl`` draws
tokens with ``torch.multinomial``, our paths by inverse CDF: the same distribution, other draws. A step's
cost follows its longest completion, so each step's longest and mean completion lengths are printed.)
The conditions:

- ``trl``: the baseline, the recipe with TRL's own paths (``--share_prompt false``): generation prefills
  every row's copy of its prompt, the loss runs every prompt + completion row through the model, and on
  a CPU TRL's fused LM head projects every position, prompt included, onto the 49k-token vocabulary;
- ``default``: the recipe as it is (float32, the few-shot prompt: three worked examples, ~165 tokens),
  which runs each distinct prompt once, for the prefill and for the loss, and projects only completion
  positions, each completion up to its end (``ladder_hf.trainer``: ``generate_with_shared_prefill``,
  ``shared_prompt_logps``; exact up to float rounding);
- ``fast``: the default, and generation stops at ``</answer>`` (``generation_kwargs: {stop_strings: [...]}``, which the
  LADDER trainer makes work on the transformers path), and bf16 only where the CPU has native bf16
  matmuls (AVX512-BF16 or AMX; without them bf16 is emulated and ~70x slower, so it stays off): the loss
  under autocast, sampling from a bf16 copy of the weights, eager attention without key/value copies
  (``benchmarks/bf16_curves.py`` checks that it learns what float32 learns);
- ``compact``: the fast settings with the compact prompt (two examples, ~105 prompt tokens instead of
  ~165): fewer tokens per forward pass, but a small model keeps the answer format less well;
- ``noop`` (optional): the default with a reward that returns zeros (the cost of a step without verification).

Per step it records where the wall time goes (``LadderGRPOTrainer`` times each phase: generation,
scoring, rewards, the loss's forward and backward, the rest) and prints medians over the steps after
the first (the first pays for warm-up), the ratio of the medians, and what this CPU can do at best
(measured fp32 matmul throughput and memory bandwidth) so the remaining time can be judged.

    python benchmarks/grpo_step.py                       # 4 steps per condition: trl, default and fast
    python benchmarks/grpo_step.py --steps 6 --conditions trl fast noop
    python benchmarks/grpo_step.py --steps 2 --max_completion_length 64   # extra options override the config
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from ladder_hf.grpo import make_parser, train
from ladder_hf.models import cpu_has_native_bf16
from ladder_hf.problems import ANSWER_STOP
from ladder_hf.training_data import grow_variants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noop_reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """Baseline reward: constant zero, no parsing, no verification."""
    return [0.0] * len(completions)


def run(
    config: str, steps: int, dataset: str, output_dir: str, reward_funcs=None, extra: list[str] | None = None
) -> tuple[list[tuple[float, float]], list[dict[str, float]], list[float]]:
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
    # a step's cost follows its longest completion: keep it next to the time
    with open(os.path.join(output_dir, "trainer_state.json"), encoding="utf-8") as state:
        logs = json.load(state)["log_history"]
    lengths = [(log["completions/max_length"], log["completions/mean_length"]) for log in logs if "loss" in log]
    for name in os.listdir(output_dir):  # the logs are the measurement; the weights (540 MB a run) are not kept
        if name.endswith(".safetensors"):
            os.remove(os.path.join(output_dir, name))
    return summary["step_timings"], summary["step_phases"], lengths


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


def machine_limits() -> dict[str, float]:
    """Measured fp32 and bf16 matmul GFLOP/s and copy bandwidth (GB/s): the ceilings a step is judged against."""
    import torch

    out = {}
    for name, dtype in (("fp32_gflops", torch.float32), ("bf16_gflops", torch.bfloat16)):
        a, b = torch.randn(512, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
        a @ b
        start, reps = time.perf_counter(), 20 if dtype is torch.float32 else 2
        for _ in range(reps):
            a @ b
        out[name] = 2 * 512 * 576 * 1536 * reps / (time.perf_counter() - start) / 1e9
    big = torch.empty(64 * 2**20)  # 256 MB
    big.fill_(1.0)
    start = time.perf_counter()
    for _ in range(5):
        big.clone()
    out["copy_gbs"] = 5 * 2 * big.numel() * 4 / (time.perf_counter() - start) / 1e9
    return out


_STOP = ["--generation_kwargs", json.dumps({"stop_strings": list(ANSWER_STOP)})]
CONDITIONS = {
    "trl": ["--share_prompt", "false"],
    "default": [],
    "fast": _STOP,
    "compact": [*_STOP, "--system_prompt", "compact"],
    "noop": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "recipes", "configs", "smollm2_cpu.yaml"))
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps per condition (first one is warm-up)")
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=["trl", "default", "fast"],
        choices=list(CONDITIONS),
        help="the first one is the baseline of the printed ratios",
    )
    parser.add_argument("--problems", default="mit-2024", help="problems whose symbolic variants are trained on")
    parser.add_argument("--workdir", default=None, help="where to keep variants and outputs (default: a temp dir)")
    parser.add_argument("--answered-batch", type=int, default=8, help="completions per step for the verifier timing")
    parser.add_argument("--skip-training", action="store_true", help="only time the rewards on answered completions")
    parser.add_argument(
        "--learn",
        action="store_true",
        help="train with the config's learning rate (default: 0, so every condition samples the same completions "
        "and only the code path differs; a step costs the same either way)",
    )
    args, extra = parser.parse_known_args(argv)  # anything else overrides the config, e.g. --max_completion_length 64
    if not args.learn and "--learning_rate" not in extra:
        extra += ["--learning_rate", "0"]

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

    bf16 = cpu_has_native_bf16()
    results = {}
    for name in args.conditions:
        options = list(CONDITIONS[name])
        if name in ("fast", "compact") and bf16:
            options += ["--bf16", "true"]
        funcs = [noop_reward] if name == "noop" else None
        results[name] = run(
            args.config, args.steps, variants, os.path.join(workdir, name), reward_funcs=funcs, extra=[*extra, *options]
        )

    import torch

    from ladder_hf.callbacks import STEP_PHASES

    limits = machine_limits()
    print()
    print(f"config: {os.path.relpath(args.config, ROOT)} {' '.join(extra)}  steps per condition: {args.steps}")
    print(f"load average at the end: {os.getloadavg()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, native bf16: {bf16}; measured fp32 matmul {limits['fp32_gflops']:.0f} GFLOP/s, "
        f"bf16 matmul {limits['bf16_gflops']:.1f} GFLOP/s, memory copy {limits['copy_gbs']:.1f} GB/s"
    )
    header = f"{'condition':<10}{'step s':>9}" + "".join(f"{p + ' s':>12}" for p in STEP_PHASES) + f"{'step-1 s':>10}"
    print(header)
    print("-" * len(header))
    medians = {}
    for name, (timings, phases, _) in results.items():
        later, later_phases = timings[1:] or timings, phases[1:] or phases
        medians[name] = _median([s for s, _ in later])
        cells = "".join(f"{_median([p.get(k, 0.0) for p in later_phases]):>12.2f}" for k in STEP_PHASES)
        first = timings[0][0] if timings else float("nan")
        print(f"{name:<10}{medians[name]:>9.2f}{cells}{first:>10.2f}")
    print()
    baseline = args.conditions[0]
    for name in args.conditions[1:]:
        if name != "noop":
            print(f"median step time {baseline} / {name}: {medians[baseline] / medians[name]:.2f}x")
    if "default" in medians and "noop" in medians:
        print(f"median step time default / noop (the cost of verification): {medians['default'] / medians['noop']:.3f}")
    print(
        f"answered-completion reward time / median default step: "
        f"{_median(answered[1:]) / medians.get('default', float('nan')):.2%} "
        "(the share if every completion carried an answer)"
    )
    for name, (timings, _, lengths) in results.items():
        steps = ", ".join(
            f"({s:.2f}, {r:.4f}, {n:.0f}, {m:.0f})" for (s, r), (n, m) in zip(timings, lengths, strict=False)
        )
        print(f"{name} per step (step s, reward s, longest and mean completion tokens): {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
