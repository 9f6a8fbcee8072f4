"""The LADDER ablation (paper Figure 4) at CPU scale: base vs RL on the originals vs LADDER.

On a held-out slice of the bundled undergraduate integrals (seeded split of roots into train and
test), three systems are scored with the same prompt (the paper's ``<answer>`` format), the same
sampling settings and pass@1 over several samples per problem:

    base     the model as it is
    roots    GRPO on the training problems only ("RL without variants")
    ladder   GRPO on the variant trees of the same training problems (roots + variants)

and, as separately labelled arms that are never LADDER numbers (``--arms``): ``ladder_depth`` (easiest
first), ``ladder_level`` (GRPO on the nodes at the model's level), ``warm_start`` (SFT on the tree
nodes' sympy antiderivatives, verified; no RL), ``warm_start_roots`` (that warm start, then RL on the
original problems: the control for the two arms after it), ``warm_start_ladder`` (that warm start, then
LADDER) and ``warm_start_level`` (that warm start, then LADDER on the nodes at the warm-started model's level).

Both trained arms get the same step budget, seed, group size, completion length and rewards.
A second, easier held-out set is scored as well: the least difficult symbolic variants of the
*test* roots (never trained on; any integrand that is also a training node or a few-shot example
is removed), because a 135M model starts near zero on the real problems and the easy set shows
whether it learned anything that transfers.

Everything is checkpointed: each stage/arm writes its folder under ``--output_dir`` and is skipped
when done, so a killed run restarts where it stopped. Results: ``results.json``, ``results.md``
and PNG plots (``--img_dir``, default ``docs/img``).

    nohup python benchmarks/ladder_ablation.py --output_dir outputs/ladder_ablation > ablation.log 2>&1 &

``--quick`` runs the whole pipeline on tiny budgets (pass ``--model`` a tiny model to make it fast).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from ladder_hf.demo import (
    MODEL_LEVEL_FILE,
    DemoConfig,
    evaluate_stage,
    grow_trees,
    is_trained,
    materialise_dataset,
    plot_rewards,
    plot_tree_sizes,
    prompt_examples,
    read_reward_history,
    split_problems,
    trailing_mean,
    train_stage,
    tree_sizes,
)
from ladder_hf.evaluation import format_rate, wilson_interval
from ladder_hf.problems import load_problems
from ladder_hf.store import read_jsonl, write_jsonl

logger = logging.getLogger("ladder_ablation")
ARMS = (
    "base",
    "roots",
    "ladder",
    "ladder_depth",
    "ladder_level",
    "warm_start",
    "warm_start_roots",
    "warm_start_ladder",
    "warm_start_level",
)
ARM_LABELS = {
    "base": "base model",
    "roots": "RL on original problems",
    "ladder": "LADDER (RL on variant trees)",
    "ladder_depth": "LADDER, easiest first (depth curriculum)",
    "ladder_level": "LADDER at the model's level (solve-rate selection)",
    "warm_start": "warm start only (SFT on sympy answers; not LADDER)",
    "warm_start_roots": "warm start, then RL on original problems",
    "warm_start_ladder": "warm start, then LADDER",
    "warm_start_level": "warm start, then LADDER at its level",
}


def arm_of(key: str) -> tuple[str, int | None]:
    """``"ladder_level-seed2"`` -> ``("ladder_level", 2)``; a key without a seed suffix ran with ``--seed``.

    Example:
        >>> arm_of("roots-seed3"), arm_of("base")
        (('roots', 3), ('base', None))
    """
    arm, _, seed = key.partition("-seed")
    return arm, (int(seed) if seed else None)


def arm_label(key: str) -> str:
    arm, seed = arm_of(key)
    return ARM_LABELS[arm] + (f" (seed {seed})" if seed is not None else "")


def _arm_order(key: str) -> tuple[int, int]:
    arm, seed = arm_of(key)
    return ARMS.index(arm), -1 if seed is None else seed


@dataclass
class AblationConfig(DemoConfig):
    """Demo settings (model, budgets, prompt, rewards) plus the experiment's own."""

    output_dir: str = field(default="outputs/ladder_ablation", metadata={"help": "Checkpointed run folder."})
    img_dir: str = field(default="docs/img", metadata={"help": "Where the plots go."})
    selection: str = field(
        default="random", metadata={"help": "'random' or 'shortest' roots.", "choices": ["random", "shortest"]}
    )
    num_train_problems: int = field(default=20, metadata={"help": "Training roots."})
    num_test_problems: int = field(default=20, metadata={"help": "Held-out roots."})
    variant_depth: int = field(default=3, metadata={"help": "Variant tree depth (paper: 3)."})
    max_nodes_per_root: int | None = field(default=30, metadata={"help": "Cap on kept variants per tree."})
    max_steps: int = field(default=40, metadata={"help": "GRPO steps per trained arm (equal budgets)."})
    # The demo's defaults are LADDER at the model's level; here each arm chooses its own selection, and the
    # commands in docs/results.md rely on the settings below as they were when those runs were made.
    variants_per_node: int = field(default=5, metadata={"help": "Candidates requested per parent (before QC)."})
    variant_sympy_timeout: float = field(
        default=5.0, metadata={"help": "Seconds sympy.integrate gets per variant for `sympy_solvable` (0: skip)."}
    )
    deepen_rounds: int = field(
        default=0, metadata={"help": "Rounds of growing the trees down to the base model's level (0: off)."}
    )
    solve_rate_samples: int = field(
        default=0,
        metadata={"help": "Level selection of every arm (0: off); the level arms use --level_samples instead."},
    )
    max_completion_length: int = field(default=32, metadata={"help": "Token budget of a training completion."})
    learning_rate: float = field(default=3e-5, metadata={"help": "AdamW learning rate."})
    reward_weights: list[float] = field(
        default_factory=lambda: [1.0, 0.2], metadata={"help": "One weight per reward function."}
    )
    eval_max_new_tokens: int = field(default=32, metadata={"help": "Token budget of an evaluation completion."})
    arms: list[str] = field(default_factory=lambda: list(ARMS), metadata={"help": "Arms to run, in order."})
    train_seeds: list[int] = field(
        default_factory=list,
        metadata={
            "help": "More training seeds: every trained arm runs again per seed as `<arm>-seed<N>` (its own model "
            "folder, level selection, sampling and evaluation seed) on the same split, trees and held-out sets, which "
            "keep --seed. Results pool each arm over its seeds and show the spread between them."
        },
    )
    level_samples: int = field(
        default=4,
        metadata={
            "help": "ladder_level arm: answers sampled per tree row to measure the model's solve rate before "
            "training (rows neither always nor never solved are kept) and again after it."
        },
    )
    measure_after: bool = field(
        default=True,
        metadata={
            "help": "ladder_level arm: measure the solve rate on every tree row again after training (level_samples "
            "per row; on deepened trees of several hundred rows this costs more than the training)."
        },
    )
    shared_warm_start: bool = field(
        default=False,
        metadata={
            "help": "Every seed of the warm-start arms starts from the one warm start of --seed (models/warm_start), "
            "so the seeds measure the GRPO stage after it; the warm_start arm then runs once."
        },
    )
    warm_start_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the warm start's SFT (default: --learning_rate), so that the GRPO stage after "
            "it can use another one."
        },
    )
    prepare_only: bool = field(
        default=False, metadata={"help": "Stop after the split, the trees and the datasets (warm the run folder)."}
    )
    sympy_baseline: bool = field(default=False, metadata={"help": "Score sympy.integrate on the test sets too."})


def planned_runs(config: AblationConfig) -> list[tuple[str, int | None]]:
    """``(arm, seed)`` in run order: every arm with ``--seed`` (seed ``None``), then the trained arms again per
    extra seed. The base model runs once, and so does the warm start when every seed shares it."""
    once = {"base"} | ({"warm_start"} if config.shared_warm_start else set())
    seeds = [seed for seed in config.train_seeds if seed != config.seed]
    return [(arm, None) for arm in config.arms] + [(arm, s) for s in seeds for arm in config.arms if arm not in once]


def arm_settings(arm: str, config: AblationConfig, warm_dir: Path) -> AblationConfig:
    """The GRPO settings of a trained arm: the run's, with the arm's curriculum, level selection or start model."""
    level = config.level_samples
    plain = dataclasses.replace(config, dynamic_level=False)  # a level kept current needs a measured level
    return {
        "ladder_depth": dataclasses.replace(plain, curriculum="depth"),
        "ladder_level": dataclasses.replace(config, solve_rate_samples=level),
        "warm_start_roots": dataclasses.replace(plain, model=str(warm_dir)),
        "warm_start_ladder": dataclasses.replace(plain, model=str(warm_dir)),
        "warm_start_level": dataclasses.replace(config, model=str(warm_dir), solve_rate_samples=level),
    }.get(arm, plain)


def solve_rates_before_after(dataset_dir: str, model_dir: str, config: AblationConfig) -> dict:
    """Solve rate per tree depth of the base model (measured by the level selection before training) and of
    the trained model on the same rows, with the same prompt, samples and seed (resumable: JSONL stores)."""
    from datasets import load_dataset

    from ladder_hf.generation import load_backend
    from ladder_hf.training_data import measure_solve_rates, solve_rate_table

    rows = load_dataset(dataset_dir, split="train").select_columns(["integrand", "lower", "upper", "depth"]).to_list()
    tables = {}
    measurements = [("before", config.model, Path(model_dir) / "solve_rates.jsonl")]
    if config.measure_after:
        measurements.append(("after", model_dir, Path(model_dir) / "solve_rates_after.jsonl"))
    for when, model, store in measurements:
        rates = measure_solve_rates(
            rows,
            # built only if some row is not in the store yet ("before" was stored by the level selection)
            lambda model=model: load_backend("transformers", model, batch_size=32, seed=config.seed),
            samples=config.level_samples,
            prompt=config.prompt,
            max_new_tokens=config.max_completion_length,
            temperature=config.temperature,
            seed=config.seed,
            store_path=str(store),
        )
        tables[when] = solve_rate_table(rows, rates)
    return tables


def warm_start_stage(out: Path, config: AblationConfig, folder: str = "warm_start") -> dict:
    """SFT on the verified sympy antiderivatives of the training trees (``models/warm_start``): the same
    step budget and batch size as a GRPO arm, the same prompt."""
    from datasets import load_dataset

    from ladder_hf.sft import warm_start

    rows = load_dataset(str(out / "dataset_tree"), split="train").to_list()
    return warm_start(
        rows,
        str(out / "models" / folder),
        config.model,
        prompt=config.prompt,
        max_steps=config.max_steps,
        batch_size=config.num_generations * config.prompts_per_step,
        learning_rate=config.warm_start_learning_rate or config.learning_rate,
        seed=config.seed,
    )


def _summary(out_dir: str) -> dict | None:
    path = Path(out_dir) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _evaluate(model: str, problems_path: str, out_dir: str, config: AblationConfig) -> dict:
    done = _summary(out_dir)
    if done is not None:
        return done
    return evaluate_stage(model, problems_path, out_dir, config, config.sympy_baseline)


def _scores(summary: dict) -> dict:
    m, k = summary["model"], summary["config"]["num_samples"]
    return {
        "pass@1": m["accuracy"],
        f"pass@{k}": m.get(f"pass@{k}", m["accuracy"]),
        "answer_rate": m["answer_rate"],
        "problems": m["count"],
        "samples": k,
    }


def pooled(results: dict, set_key: str) -> dict[str, dict]:
    """Per arm, its runs' scores on one held-out set pooled over seeds: correct answers, answers, pass@1 per seed.

    Example:
        >>> r = {"arms": {"roots": {"eval": {"easy": {"pass@1": 0.5, "problems": 2, "samples": 2}}},
        ...               "roots-seed1": {"eval": {"easy": {"pass@1": 0.25, "problems": 2, "samples": 2}}}}}
        >>> pooled(r, "easy")["roots"]
        {'correct': 3.0, 'answers': 8, 'per_seed': [0.5, 0.25]}
    """
    out: dict[str, dict] = {}
    for key, info in results["arms"].items():
        score = (info.get("eval") or {}).get(set_key)
        if not score:
            continue
        answers = score["problems"] * score["samples"]
        entry = out.setdefault(arm_of(key)[0], {"correct": 0.0, "answers": 0, "per_seed": []})
        entry["correct"] += round(score["pass@1"] * answers, 6)
        entry["answers"] += answers
        entry["per_seed"].append(score["pass@1"])
    return out


def plot_arms(results: dict, path: str, sets: list[tuple[str, str]]) -> str:
    """Grouped bars: pass@1 per arm on each held-out set, pooled over seeds, with each seed's score as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_set = {key: pooled(results, key) for key, _ in sets}
    arms = [a for a in ARMS if any(a in p for p in per_set.values())]
    width = 0.8 / max(1, len(sets))
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(arms)), 4.2))
    for j, (key, label) in enumerate(sets):
        scores = [per_set[key].get(a, {"correct": 0, "answers": 0, "per_seed": []}) for a in arms]
        values = [100 * s["correct"] / s["answers"] if s["answers"] else 0.0 for s in scores]
        # 95% Wilson intervals over seeds x problems x samples: bars whose intervals overlap differ by noise
        bounds = [wilson_interval(s["correct"], s["answers"]) if s["answers"] else (0, 0) for s in scores]
        errors = [
            [v - 100 * lo for v, (lo, _) in zip(values, bounds, strict=True)],
            [100 * hi - v for v, (_, hi) in zip(values, bounds, strict=True)],
        ]
        xs = [i + (j - (len(sets) - 1) / 2) * width for i in range(len(arms))]
        bars = ax.bar(xs, values, width, label=label, yerr=errors, capsize=3)
        ax.bar_label(bars, fmt="%.1f%%", fontsize=8, padding=2)
        for x, s in zip(xs, scores, strict=True):
            if len(s["per_seed"]) > 1:
                ax.plot([x] * len(s["per_seed"]), [100 * v for v in s["per_seed"]], "k.", markersize=4)
    labels = [textwrap.fill(ARM_LABELS[a], 18) for a in arms]
    ax.set_xticks(range(len(arms)), labels, fontsize=7)
    ax.set_ylabel("pass@1 (%), 95% interval; dots: seeds")
    steps = sorted({r["step"] for info in results["arms"].values() for r in info.get("rewards", [])[-1:]})
    budget = "/".join(str(s) for s in steps) or str(results["config"]["max_steps"])
    ax.set_title(f"LADDER ablation, {results['config']['model']} model, {budget} GRPO steps per trained arm")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_reward_curves(histories: dict[str, list[dict]], path: str, window: int = 5) -> str:
    """Training reward per step, one colour per arm: each seed as a thin line, and the mean over seeds and a
    trailing ``window`` of steps as a thick one (one step is one prompt's group, so single steps jump between
    0 and 1). A dashed line adds the verified-correct rate where the reward also has other terms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    correct = "rewards/integration_reward/mean"
    by_arm: dict[str, list[list[dict]]] = {}
    for key, history in histories.items():
        if history:
            by_arm.setdefault(arm_of(key)[0], []).append(history)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, (arm, runs) in enumerate(by_arm.items()):
        colour = f"C{i}"
        for history in runs:
            ax.plot([r["step"] for r in history], [r["reward"] for r in history], color=colour, alpha=0.2, lw=0.8)
        seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
        ax.plot(*trailing_mean(runs, "reward", window), color=colour, lw=2.2, label=f"{ARM_LABELS[arm]} ({seeds})")
        if any(r.get(correct) is not None and abs(r[correct] - r["reward"]) > 1e-9 for h in runs for r in h):
            ax.plot(
                *trailing_mean(runs, correct, window),
                color=colour,
                lw=1.6,
                linestyle="--",
                label=f"{ARM_LABELS[arm]}: verified-correct rate",
            )
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward")
    ax.set_title(f"Training reward per step (thin: a seed; thick: mean of seeds, {window}-step trailing mean)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def render_results(results: dict) -> str:
    c = results["config"]
    k = c["eval_samples"]
    sets = [("test", f"held-out undergrad ({results['sizes']['test']})")]
    if results["sizes"].get("easy"):
        sets.append(("easy", f"easy held-out variants ({results['sizes']['easy']})"))
    head = (
        "| system | "
        + " | ".join(f"{label} pass@1 [95% CI] | pass@{k} | answered" for _, label in sets)
        + " | training steps |"
    )
    lines = [head, "|---|" + "---|---|---|" * len(sets) + "---|"]
    for arm, info in results["arms"].items():
        if not info.get("eval"):
            continue
        cells = []
        for key, _ in sets:
            s = info["eval"].get(key)
            if s is None:
                cells += ["–"] * 3
                continue
            n = s["problems"] * s["samples"]
            cells += [
                format_rate(s["pass@1"] * n, n),
                f"{100 * s[f'pass@{k}']:.1f}%",
                f"{100 * s['answer_rate']:.1f}%",
            ]
        steps = str(info["rewards"][-1]["step"] if info.get("rewards") else 0)
        if info.get("sft_steps"):
            steps = f"{info['sft_steps']} SFT" + (f" + {steps} GRPO" if steps != "0" else "")
        lines.append(f"| {arm_label(arm)} | " + " | ".join(cells) + f" | {steps} |")
    seeded = [a for a in ARMS if sum(arm_of(k)[0] == a and bool(v.get("eval")) for k, v in results["arms"].items()) > 1]
    if seeded:
        lines += [
            "",
            "Pooled over seeds (interval over seeds x problems x samples; spread: lowest and highest seed):",
            "",
            "| system | seeds | " + " | ".join(f"{label} pass@1 [95% CI] | spread" for _, label in sets) + " |",
            "|---|---|" + "---|---|" * len(sets),
        ]
        per_set = {key: pooled(results, key) for key, _ in sets}
        for arm in ARMS:
            if arm not in seeded and arm != "base":
                continue
            cells, count = [], 0
            for key, _ in sets:
                p = per_set[key].get(arm)
                if not p:
                    cells += ["–", "–"]
                    continue
                count = len(p["per_seed"])
                cells += [
                    format_rate(p["correct"], p["answers"]),
                    f"{100 * min(p['per_seed']):.1f}-{100 * max(p['per_seed']):.1f}%",
                ]
            lines.append(f"| {ARM_LABELS[arm]} | {count} | " + " | ".join(cells) + " |")
    for arm, info in results["arms"].items():
        if info.get("error"):
            lines.append(f"\n{arm_label(arm)}: not trained ({info['error']})")
    if results.get("model_level"):
        lines += [
            "",
            f"Trees grown down to the base model's level (`--deepen_rounds`, {c['deepen_samples']} samples per node):",
            "",
            "| round | deepest level | nodes measured | never / edge / always | leaves grown | nodes added |",
            "|---|---|---|---|---|---|",
            *(
                f"| {i} | {r['depth']} | {r['nodes']} | {r['never']} / {r['edge']} / {r['always']} | {r['grown']} "
                f"| {r['added']} |"
                for i, r in enumerate(results["model_level"])
            ),
        ]
    for arm, start in (("ladder_level", "base model"), ("warm_start_level", "warm-started model")):
        level = results["arms"].get(arm, {}).get("solve_rates")
        if not level:
            continue
        lines += [
            "",
            f"Solve rate per tree depth ({c['level_samples']} samples per row), the {start} before training and the "
            f"{arm} arm after it, on the same rows:",
            "",
            "| depth | rows | before: mean | never / edge / always | after: mean | never / edge / always |",
            "|---|---|---|---|---|---|",
        ]
        after = {t["depth"]: t for t in level.get("after", [])}
        for t in level["before"]:
            a = after.get(t["depth"], {})
            lines.append(
                f"| {t['depth']} | {t['rows']} | {100 * t['mean_solve_rate']:.1f}% | "
                f"{t['never']} / {t['edge']} / {t['always']} | "
                + (
                    f"{100 * a['mean_solve_rate']:.1f}% | {a['never']} / {a['edge']} / {a['always']} |"
                    if a
                    else "– | – |"
                )
            )
    return "\n".join(lines) + "\n"


def run(config: AblationConfig) -> dict:
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = Path(config.img_dir)
    img.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n", encoding="utf-8")
    results_path, arms_dir = out / "results.json", out / "arms"
    arms_dir.mkdir(exist_ok=True)
    results: dict = {"config": dataclasses.asdict(config), "arms": {}}

    def save(arm: str | None = None, info: dict | None = None) -> None:
        # One file per arm, so arms can run in separate processes; results.json gathers them.
        if arm is not None:
            (arms_dir / f"{arm}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        keys = sorted((p.stem for p in arms_dir.glob("*.json") if arm_of(p.stem)[0] in ARMS), key=_arm_order)
        results["arms"] = {a: json.loads((arms_dir / f"{a}.json").read_text(encoding="utf-8")) for a in keys}
        results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    # Problems: seeded split; the test roots are protected from every training tree.
    problems = out / "problems"
    train_path, test_path, easy_path = problems / "train.jsonl", problems / "test.jsonl", problems / "test_easy.jsonl"
    if not test_path.is_file():
        problems.mkdir(exist_ok=True)
        train, test = split_problems(
            load_problems(config.problem_set),
            config.num_train_problems,
            config.num_test_problems,
            config.seed,
            config.selection,
            shown=prompt_examples(config.prompt),
        )
        write_jsonl(str(train_path), train)
        write_jsonl(str(test_path), test)
    train, test = read_jsonl(str(train_path)), read_jsonl(str(test_path))

    began = time.perf_counter()
    level_path = out / MODEL_LEVEL_FILE
    easy = grow_trees(train, test, out, config)
    if level_path.is_file():  # the deepening's table, one row per round
        results["model_level"] = json.loads(level_path.read_text(encoding="utf-8"))
    results["variant_seconds"] = round(time.perf_counter() - began, 1)
    sets = {"test": str(test_path)}
    if easy:
        sets["easy"] = str(easy_path)
    results["sizes"] = {"train": len(train), "test": len(test), "easy": len(easy)}
    results["tree_sizes"] = tree_sizes(str(out / "variants"))
    for slice_ in ("tree", "roots"):
        folder = out / f"dataset_{slice_}"
        if not (folder / "info.json").is_file():
            info = materialise_dataset(str(out / "variants"), str(folder), slice_)
            (folder / "info.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
        results.setdefault("datasets", {})[slice_] = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    save()
    if config.prepare_only:
        return results

    for arm in config.arms:
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")
    for arm, seed in planned_runs(config):
        key = arm if seed is None else f"{arm}-seed{seed}"
        # every seeded run has its own sampling, level selection and evaluation seed
        run_config = config if seed is None else dataclasses.replace(config, seed=seed)
        suffix = "" if seed is None else f"-seed{seed}"
        arm_path = arms_dir / f"{key}.json"
        info = json.loads(arm_path.read_text(encoding="utf-8")) if arm_path.is_file() else {}
        model = config.model
        if arm != "base":
            model_dir = str(out / "models" / key)
            warm_dir = out / "models" / ("warm_start" if config.shared_warm_start else f"warm_start{suffix}")
            if arm.startswith("warm_start") and not is_trained(str(warm_dir)):
                # SFT only: no GRPO follows for the warm_start arm (its model folder is then trained)
                began = time.perf_counter()
                info["sft"] = warm_start_stage(out, run_config, warm_dir.name)
                info["sft_seconds"] = round(time.perf_counter() - began, 1)
            if arm.startswith("warm_start"):
                state = json.loads((warm_dir / "trainer_state.json").read_text(encoding="utf-8"))
                info["sft_steps"] = state["global_step"]
            if not is_trained(model_dir):
                logger.info("training arm %s (%d steps)", key, config.max_steps)
                began = time.perf_counter()
                data = out / ("dataset_roots" if arm in ("roots", "warm_start_roots") else "dataset_tree")
                arm_config = arm_settings(arm, run_config, warm_dir)
                try:
                    train_stage(str(data), model_dir, arm_config)
                except ValueError as err:  # e.g. level selection finds no row at the model's level
                    logger.error("arm %s cannot train: %s", key, err)
                    info["error"] = str(err)
                    save(key, info)
                    continue
                info["train_seconds"] = round(time.perf_counter() - began, 1)
            if arm in ("ladder_level", "warm_start_level") and "solve_rates" not in info:
                info["solve_rates"] = solve_rates_before_after(
                    str(out / "dataset_tree"), model_dir, arm_settings(arm, run_config, warm_dir)
                )
            info["rewards"] = read_reward_history(model_dir)
            model = model_dir
            save(key, info)
        info.setdefault("eval", {})
        for name, path in sets.items():
            logger.info("evaluating arm %s on %s", key, name)
            began = time.perf_counter()
            summary = _evaluate(model, path, str(out / "eval" / key / name), run_config)
            info["eval"][name] = _scores(summary)
            info.setdefault("eval_seconds", {})[name] = round(time.perf_counter() - began, 1)
            save(key, info)

    save()
    histories = {key: info.get("rewards", []) for key, info in results["arms"].items() if arm_of(key)[0] != "base"}

    labels = [("test", "held-out undergrad")] + ([("easy", "easy held-out variants")] if "easy" in sets else [])
    plots = {
        "accuracy": plot_arms(results, str(img / "ladder_ablation_accuracy.png"), labels),
        "tree_sizes": plot_tree_sizes(
            results["tree_sizes"],
            str(img / "ladder_ablation_tree_sizes.png"),
            title=f"Variant trees of {len(train)} training problems",
        ),
    }
    if histories:
        plots["reward"] = plot_reward_curves(histories, str(img / "ladder_ablation_reward.png"))
        for arm, history in histories.items():
            plot_rewards(history, str(out / f"reward_{arm}.png"), title=f"{arm_label(arm)}: reward per step")
    results["plots"] = plots
    save()
    (out / "results.md").write_text(render_results(results), encoding="utf-8")
    print(render_results(results))
    return results


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser(AblationConfig)
    parser.prog = "benchmarks/ladder_ablation.py"
    (config,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    if config.overwrite and os.path.isdir(config.output_dir):
        shutil.rmtree(config.output_dir)
    run(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
