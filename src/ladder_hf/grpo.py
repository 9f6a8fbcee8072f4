"""LADDER training: GRPO on variant trees with TRL's ``GRPOTrainer`` and the integration verifier.

The same code runs from ``recipes/grpo.py`` (open-r1 style: ``TrlParser`` over
``ScriptArguments``, ``GRPOConfig`` and ``ModelConfig``, YAML config plus command-line overrides)
and from ``ladder-hf train --config ...``. What it adds to TRL:

- loading variant data from a Hub id, a local variants folder (``LadderDataset``), a parquet or
  JSONL file, or a tree grown on the fly from ``--problems`` with the symbolic generator;
- the paper's prompt (system prompt and templates configurable) and an optional easy-to-hard
  curriculum over ``depth`` / ``difficulty``;
- rewards picked by name from :data:`ladder_hf.rewards.REWARD_FUNCS`, each wrapped by a timer so
  the reward share of a step is logged (``timing/reward_share``) next to TRL's own per-function
  reward mean/std and ``frac_reward_zero_std``;
- periodic greedy evaluation on a held-out set with the Integration Bee scoring
  (``integration_bee/accuracy``), logged with the training metrics;
- resume from the last checkpoint, a model card with base model, data, rewards, steps and eval
  scores, and an optional push to the Hub.

Example:
    >>> from trl import GRPOConfig, ModelConfig, TrlParser
    >>> from ladder_hf.grpo import ScriptArguments, main
    >>> parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig))
    >>> args = parser.parse_args_and_config(["--config", "recipes/configs/smollm2_cpu.yaml"])  # doctest: +SKIP
    >>> main(*args)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ladder_hf.problems import DEFAULT_SYSTEM_PROMPT, DEFINITE_TEMPLATE, INDEFINITE_TEMPLATE, build_messages

logger = logging.getLogger(__name__)

CURRICULA = ("none", "depth", "difficulty", "depth_difficulty")


@dataclass
class ScriptArguments:
    """Data, prompt, reward, curriculum and evaluation options of the LADDER GRPO recipe.

    Model options live in TRL's ``ModelConfig`` and trainer options in ``GRPOConfig`` (including
    ``reward_weights``, ``use_vllm``/``vllm_mode``, ``push_to_hub``/``hub_model_id``).
    """

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Variant data: a Hub dataset id, a local variants folder (with nodes.jsonl, read through "
            "LadderDataset), a folder loadable by datasets.load_dataset, or a .parquet/.jsonl/.json file. Rows need "
            "`integrand`, `lower`, `upper`; `depth` and `difficulty` are used by the curriculum."
        },
    )
    dataset_config: str | None = field(
        default=None,
        metadata={
            "help": "Dataset configuration. For a variants folder or --problems: a LadderDataset config (default "
            "`variants`: every kept variant, roots excluded; also `all`, `roots`, `depth_N`)."
        },
    )
    dataset_revision: str | None = field(
        default=None, metadata={"help": "Dataset revision (branch, tag such as `v1.0`, or commit) to train on."}
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    problems: str | None = field(
        default=None,
        metadata={
            "help": "Instead of --dataset_name: a bundled problem set (e.g. `mit-train`, `undergrad`) or a .jsonl of "
            "problems; a variant tree is grown from it with the symbolic generator into <output_dir>/variants "
            "(resumable) and trained on."
        },
    )
    variant_depth: int = field(default=2, metadata={"help": "Tree depth when growing variants from --problems."})
    variant_seed: int = field(default=0, metadata={"help": "Seed of the symbolic variant generator."})
    variants_per_node: int = field(default=10, metadata={"help": "Candidates asked per parent with --problems."})
    max_variants_per_root: int | None = field(
        default=None, metadata={"help": "Cap on kept variants per tree with --problems (paper: about 500)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only this many training rows (after the curriculum ordering)."}
    )
    system_prompt: str | None = field(
        default=DEFAULT_SYSTEM_PROMPT,
        metadata={"help": "System prompt; the default asks for the paper's <answer>...</answer> format."},
    )
    indefinite_template: str = field(
        default=INDEFINITE_TEMPLATE, metadata={"help": "User turn for indefinite integrals; `{integrand}` is filled."}
    )
    definite_template: str = field(
        default=DEFINITE_TEMPLATE,
        metadata={"help": "User turn for definite integrals; `{integrand}`, `{lower}`, `{upper}` are filled."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["integration", "format"],
        metadata={
            "help": "Reward functions by name from ladder_hf.rewards.REWARD_FUNCS (e.g. `integration`, `format`). "
            "Weights go in GRPOConfig's --reward_weights, one per function."
        },
    )
    verifier_timeout: float = field(
        default=2.0,
        metadata={"help": "Seconds the verifier may spend on one answer (timed-out answers get one retry at 4x)."},
    )
    curriculum: str = field(
        default="none",
        metadata={
            "help": "Order of the training rows: `none` (shuffled, as in the paper), `depth` (deepest, i.e. easiest, "
            "variants first), `difficulty` (lowest `difficulty` first) or `depth_difficulty` (both). Any ordering "
            "turns off GRPOConfig.shuffle_dataset.",
            "choices": list(CURRICULA),
        },
    )
    eval_set: str | None = field(
        default=None,
        metadata={"help": "Held-out problems scored during training: a bundled set name (e.g. `mit-2025`) or .jsonl."},
    )
    eval_every_steps: int = field(
        default=0, metadata={"help": "Score the eval set every N optimizer steps (0: only at the end of training)."}
    )
    eval_max_problems: int | None = field(default=None, metadata={"help": "Use only the first N eval problems."})
    eval_max_new_tokens: int = field(default=256, metadata={"help": "Greedy generation budget per eval problem."})
    eval_batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call during evaluation."})
    model_card_tags: list[str] = field(
        default_factory=lambda: ["ladder", "integration"], metadata={"help": "Extra tags for the model card."}
    )

    def __post_init__(self):
        if self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum must be one of {CURRICULA}, got {self.curriculum!r}")
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [name.strip() for name in self.reward_funcs.split(",") if name.strip()]


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_variant_dataset(
    name_or_path: str,
    config: str | None = None,
    revision: str | None = None,
    split: str = "train",
):
    """Load variant rows as a ``datasets.Dataset`` from a Hub id, a variants folder, or a file.

    Example:
        >>> ds = load_variant_dataset("out/variants")  # doctest: +SKIP
        >>> ds.column_names[:3]  # doctest: +SKIP
    """
    from datasets import load_dataset

    if os.path.isdir(name_or_path):
        if os.path.isfile(os.path.join(name_or_path, "nodes.jsonl")):
            return load_variants_folder(name_or_path, config=config or "variants")
        return load_dataset(name_or_path, name=config, revision=revision, split=split)
    if os.path.isfile(name_or_path):
        suffix = name_or_path.rsplit(".", 1)[-1].lower()
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(suffix)
        if builder is None:
            raise ValueError(f"cannot read {name_or_path!r}: expected .jsonl, .json, .parquet or .csv")
        return load_dataset(builder, data_files=name_or_path, split="train")
    return load_dataset(name_or_path, name=config, revision=revision, split=split)


def load_variants_folder(path: str, config: str = "variants"):
    """Rows of a variants folder (``nodes.jsonl``) through the project's ``LadderDataset`` builder."""
    from ladder_hf.dataset import load_ladder_dataset

    return load_ladder_dataset(path, config)


def grow_variants(
    problems: str,
    out_dir: str,
    depth: int,
    seed: int = 0,
    variants_per_node: int = 10,
    max_nodes_per_root: int | None = None,
    protect: list[dict] | None = None,
) -> str:
    """Grow a symbolic variant tree from a bundled set or JSONL of problems into ``out_dir`` (resumable).

    ``protect`` (the held-out problems) turns on the contamination guard: no variant may equal or
    nearly equal one of them.
    """
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import SymbolicGenerator, generate_tree

    generate_tree(
        load_problems(problems),
        SymbolicGenerator(seed=seed),
        depth=depth,
        out_dir=out_dir,
        protect=protect or None,
        variants_per_node=variants_per_node,
        max_nodes_per_root=max_nodes_per_root,
    )
    return out_dir


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def add_prompts(
    dataset,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    indefinite_template: str = INDEFINITE_TEMPLATE,
    definite_template: str = DEFINITE_TEMPLATE,
):
    """Add TRL's conversational ``prompt`` column; keep ``integrand``/``lower``/``upper`` for the rewards.

    Example:
        >>> from datasets import Dataset
        >>> ds = add_prompts(Dataset.from_list([{"integrand": "x", "lower": None, "upper": None}]))
        >>> ds[0]["prompt"][-1]["content"]
        'Find the indefinite integral: ∫ x dx'
    """
    missing = {"integrand", "lower", "upper"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset lacks the column(s) {sorted(missing)}; variant rows need integrand, lower, upper")

    def _row(row: dict) -> dict:
        problem = {"integrand": row["integrand"], "lower": _blank(row["lower"]), "upper": _blank(row["upper"])}
        prompt = build_messages(problem, system_prompt, indefinite_template, definite_template)
        return {"prompt": prompt, "lower": problem["lower"], "upper": problem["upper"]}

    return dataset.map(_row, desc="Building prompts")


def order_by_curriculum(dataset, curriculum: str = "none"):
    """Sort rows easy to hard. Deeper variants are easier (the root problem is depth 0).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_list([{"depth": 0, "difficulty": 3.0}, {"depth": 2, "difficulty": 1.0}])
        >>> order_by_curriculum(ds, "depth")["depth"]
        [2, 0]
    """
    if curriculum == "none":
        return dataset
    if curriculum not in CURRICULA:
        raise ValueError(f"curriculum must be one of {CURRICULA}, got {curriculum!r}")
    keys = {"depth": ["depth"], "difficulty": ["difficulty"], "depth_difficulty": ["depth", "difficulty"]}[curriculum]
    missing = [k for k in keys if k not in dataset.column_names]
    if missing:
        raise ValueError(f"curriculum {curriculum!r} needs the column(s) {missing}")
    reverse = [k == "depth" for k in keys]
    return dataset.sort(keys, reverse=reverse, null_placement="at_end")


# ---------------------------------------------------------------------------------------------
# Reward timing
# ---------------------------------------------------------------------------------------------


def _merged_length(intervals: list[tuple[float, float]]) -> float:
    """Total length of a union of intervals (async rewards overlap; their wall time counts once)."""
    total, end = 0.0, -math.inf
    for start, stop in sorted(intervals):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


class RewardTimer:
    """Measures reward-function wall time and optimizer-step wall time; reports the reward share.

    Wrap each reward function with :meth:`wrap` and attach :meth:`callback` to the trainer; then
    :meth:`flush` returns the metrics accumulated since the last flush.

    Example:
        >>> timer = RewardTimer()
        >>> def my_reward(prompts, completions, **kwargs):
        ...     return [1.0 for _ in completions]
        >>> timed = timer.wrap(my_reward)
        >>> timed.__name__, timed(prompts=["p"], completions=["c"])
        ('my_reward', [1.0])
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._intervals: list[tuple[float, float]] = []
        self._per_func: dict[str, float] = defaultdict(float)
        self._step_start: float | None = None
        self._steps: list[tuple[float, float]] = []  # (step seconds, reward seconds) since last flush
        self.history: list[tuple[float, float]] = []  # every step since creation

    def _record(self, name: str, start: float, stop: float) -> None:
        with self._lock:
            self._intervals.append((start, stop))
            self._per_func[name] += stop - start

    def wrap(self, func):
        """Return ``func`` timed, with TRL's calling convention and display name; async stays async."""
        from trl.trainer.utils import get_callable_name, is_async_callable

        name = get_callable_name(func)
        if is_async_callable(func):

            async def timed(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._record(name, start, time.perf_counter())

        else:

            def timed(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    self._record(name, start, time.perf_counter())

        if inspect.isfunction(func) or inspect.ismethod(func):
            functools.update_wrapper(timed, func)
        timed.__name__ = name  # TRL names the reward columns/metrics after this
        timed.__qualname__ = name
        return timed

    def step_begin(self) -> None:
        self._step_start = time.perf_counter()

    def step_end(self) -> None:
        if self._step_start is None:
            return
        now = time.perf_counter()
        with self._lock:
            inside = [(max(a, self._step_start), min(b, now)) for a, b in self._intervals if b > self._step_start]
            reward = _merged_length([iv for iv in inside if iv[1] > iv[0]])
            self._intervals.clear()
            self._steps.append((now - self._step_start, reward))
            self.history.append((now - self._step_start, reward))
        self._step_start = None

    def flush(self) -> dict[str, float]:
        """Metrics since the last flush: mean step/reward seconds, reward share, per-function seconds per step."""
        with self._lock:
            steps, per_func = self._steps, dict(self._per_func)
            self._steps, self._per_func = [], defaultdict(float)
        if not steps:
            return {}
        step_total = sum(s for s, _ in steps)
        reward_total = sum(r for _, r in steps)
        metrics = {
            "timing/step_seconds": step_total / len(steps),
            "timing/reward_seconds": reward_total / len(steps),
            "timing/reward_share": reward_total / step_total if step_total > 0 else 0.0,
        }
        for name, seconds in per_func.items():
            metrics[f"timing/reward_seconds/{name}"] = seconds / len(steps)
        return metrics

    def callback(self):
        """A ``TrainerCallback`` that marks optimizer-step boundaries for this timer."""
        from transformers import TrainerCallback

        timer = self

        class _StepTimer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.step_begin()

            def on_step_end(self, args, state, control, **kwargs):
                timer.step_end()

        return _StepTimer()


# ---------------------------------------------------------------------------------------------
# Held-out evaluation
# ---------------------------------------------------------------------------------------------


def load_bee_metric():
    """``evaluate.load("integration_bee")``, registering the metric shipped with ladder_hf first (offline)."""
    import evaluate

    from ladder_hf.metrics import register

    register()
    return evaluate.load("integration_bee")


def score_completions(problems: list[dict], completions: list[str], metric=None) -> dict[str, float]:
    """Integration Bee scores of one completion per problem, as training-log metrics.

    Only a tagged answer counts (``answer_format="tagged"``), as in the reward.

    Example:
        >>> score_completions([{"integrand": "2*x"}], ["<answer>x**2</answer>"])  # doctest: +SKIP
        {'integration_bee/accuracy': 1.0, 'integration_bee/answer_rate': 1.0, 'integration_bee/count': 1.0}
    """
    metric = metric or load_bee_metric()
    references = [
        {"integrand": p["integrand"], "lower": _blank(p.get("lower")), "upper": _blank(p.get("upper"))}
        for p in problems
    ]
    result = metric.compute(predictions=list(completions), references=references, answer_format="tagged")
    return {
        "integration_bee/accuracy": float(result["accuracy"]),
        "integration_bee/answer_rate": float(result["answer_rate"]),
        "integration_bee/count": float(result["count"]),
    }


def generate_answers(trainer, problems: list[dict], prompt_kwargs: dict, max_new_tokens: int, batch_size: int):
    """Greedy answers from the trainer's current policy, split across processes and gathered."""
    import torch
    from accelerate.utils import gather_object
    from trl.models import unwrap_model_for_generation

    accelerator, tokenizer = trainer.accelerator, trainer.processing_class
    texts = [
        tokenizer.apply_chat_template(build_messages(p, **prompt_kwargs), tokenize=False, add_generation_prompt=True)
        for p in problems
    ]
    # Pair every prompt with its index so the gathered answers can be put back in order.
    indexed = list(enumerate(texts))
    completions: list[tuple[int, str]] = []
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    with (
        accelerator.split_between_processes(indexed) as local,
        unwrap_model_for_generation(trainer.model_wrapped, accelerator) as model,
    ):
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(local), batch_size):
                batch = local[start : start + batch_size]
                enc = tokenizer([t for _, t in batch], return_tensors="pt", padding=True, add_special_tokens=False)
                enc = enc.to(model.device)
                with torch.no_grad():
                    out = model.generate(
                        **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                    )
                decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                completions.extend((i, d) for (i, _), d in zip(batch, decoded, strict=True))
        finally:
            if was_training:
                model.train()
            tokenizer.padding_side = padding_side
    gathered = gather_object(completions)
    return [text for _, text in sorted(gathered, key=lambda pair: pair[0])]


def make_eval_callback(
    trainer, problems: list[dict], every: int, prompt_kwargs: dict, max_new_tokens: int, batch_size: int
):
    """A ``TrainerCallback`` that evaluates ``problems`` every ``every`` steps via :func:`generate_answers`."""
    from transformers import TrainerCallback

    class _IntegrationBeeCallback(TrainerCallback):
        def __init__(self):
            self.latest: dict[str, float] = {}
            self.metric = None
            self._last_step = -1

        def evaluate(self, step: int) -> dict[str, float]:
            completions = generate_answers(trainer, problems, prompt_kwargs, max_new_tokens, batch_size)
            scores: dict[str, float] = {}
            if trainer.accelerator.is_main_process:
                self.metric = self.metric or load_bee_metric()
                scores = score_completions(problems, completions, self.metric)
            self.latest, self._last_step = scores, step
            return scores

        def on_step_end(self, args, state, control, **kwargs):
            if every > 0 and state.global_step % every == 0 and state.global_step != self._last_step:
                trainer.add_pending_logs(self.evaluate(state.global_step))
                control.should_log = True

    return _IntegrationBeeCallback()


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------


def _make_trainer_class():
    from huggingface_hub import ModelCard
    from trl import GRPOTrainer

    class LadderGRPOTrainer(GRPOTrainer):
        """``GRPOTrainer`` that logs reward timing and held-out scores and writes a LADDER model card."""

        def __init__(self, *args, reward_timer: RewardTimer | None = None, card_info: dict | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.reward_timer = reward_timer
            self.card_info = dict(card_info or {})
            self._pending_logs: dict[str, float] = {}

        def add_pending_logs(self, metrics: dict[str, float]) -> None:
            self._pending_logs.update(metrics)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if self.model.training and self.reward_timer is not None:
                logs.update(self.reward_timer.flush())
            logs.update(self._pending_logs)
            self._pending_logs = {}
            super().log(logs, start_time)

        def create_model_card(self, model_name=None, dataset_name=None, tags=None):
            super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
            if not self.is_world_process_zero():
                return
            path = os.path.join(self.args.output_dir, "README.md")
            card = ModelCard.load(path)
            info = dict(self.card_info, steps=self.state.global_step)
            if info.get("base_model") and not os.path.isdir(str(info["base_model"])):
                card.data.base_model = info["base_model"]
            if info.get("dataset") and not os.path.exists(str(info["dataset"])):
                card.data.datasets = [info["dataset"]]
            card.text = card.text.rstrip() + "\n\n" + ladder_card_section(info) + "\n"
            card.save(path)

    return LadderGRPOTrainer


def ladder_card_section(info: dict) -> str:
    """Markdown section of the model card describing the LADDER run.

    Example:
        >>> print(ladder_card_section({"base_model": "m", "steps": 3}).splitlines()[0])
        ## LADDER training
    """
    lines = [
        "## LADDER training",
        "",
        "Trained with GRPO on variant trees of integration problems (LADDER, arXiv 2503.00735) using `ladder_hf`.",
        "",
        "| field | value |",
        "|---|---|",
    ]
    labels = [
        ("base_model", "base model"),
        ("dataset", "training data"),
        ("dataset_revision", "data revision"),
        ("train_rows", "training rows"),
        ("curriculum", "curriculum"),
        ("reward_funcs", "reward functions"),
        ("reward_weights", "reward weights"),
        ("steps", "optimizer steps"),
        ("beta", "KL coefficient (beta)"),
        ("num_generations", "completions per prompt"),
        ("eval_set", "held-out set"),
    ]
    for key, label in labels:
        if info.get(key) not in (None, "", []):
            lines.append(f"| {label} | {info[key]} |")
    scores = info.get("eval_scores") or {}
    if scores:
        lines += ["", "### Held-out scores (greedy, one answer per problem)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(scores.items())]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _setup_logging(training_args) -> None:
    import datasets
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def build_train_dataset(script_args: ScriptArguments, training_args):
    """The prompt-ready training dataset described by ``script_args`` (see :class:`ScriptArguments`)."""
    if bool(script_args.dataset_name) == bool(script_args.problems):
        raise ValueError("give exactly one of --dataset_name (variant data) or --problems (grow variants on the fly)")
    if script_args.problems:
        out_dir = os.path.join(training_args.output_dir, "variants")
        # The first process of each node grows (or resumes) the tree; the others wait, then read it.
        with training_args.main_process_first(desc="growing variant tree"):
            if training_args.local_process_index == 0:
                grow_variants(
                    script_args.problems,
                    out_dir,
                    script_args.variant_depth,
                    seed=script_args.variant_seed,
                    variants_per_node=script_args.variants_per_node,
                    max_nodes_per_root=script_args.max_variants_per_root,
                    protect=load_eval_problems(script_args),
                )
            dataset = load_variants_folder(out_dir, script_args.dataset_config or "variants")
    else:
        dataset = load_variant_dataset(
            script_args.dataset_name,
            config=script_args.dataset_config,
            revision=script_args.dataset_revision,
            split=script_args.dataset_train_split,
        )
    from ladder_hf.problems import validate_rows

    columns = [c for c in ("id", "integrand", "lower", "upper", "variable") if c in dataset.column_names]
    validate_rows(
        dataset.select_columns(columns), what=f"training data {script_args.dataset_name or script_args.problems}"
    )
    dataset = order_by_curriculum(dataset, script_args.curriculum)
    if script_args.max_train_samples is not None:
        dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
    return add_prompts(
        dataset, script_args.system_prompt, script_args.indefinite_template, script_args.definite_template
    )


def load_eval_problems(script_args: ScriptArguments) -> list[dict]:
    from ladder_hf.problems import load_problems

    if not script_args.eval_set:
        return []
    problems = load_problems(script_args.eval_set)
    if script_args.eval_max_problems is not None:
        problems = problems[: script_args.eval_max_problems]
    return problems


def train(script_args: ScriptArguments, training_args, model_args, reward_funcs: list | None = None) -> dict[str, Any]:
    """Run LADDER GRPO training; return a summary (steps, output_dir, eval scores, checkpoint resumed from,
    per-step ``(step seconds, reward seconds)``).

    ``reward_funcs`` (callables in TRL's reward convention) replaces ``script_args.reward_funcs``.

    Example:
        >>> summary = train(script_args, training_args, model_args)  # doctest: +SKIP
    """
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint
    from trl import get_peft_config, get_quantization_config
    from trl.trainer.utils import get_callable_name

    from ladder_hf.models import resolve_model_name_or_path
    from ladder_hf.rewards import get_reward_funcs
    from ladder_hf.verifier import start_workers

    _setup_logging(training_args)
    set_seed(training_args.seed)

    base_model = model_args.model_name_or_path
    model_args.model_name_or_path = resolve_model_name_or_path(base_model)
    logger.info("Model: %s", model_args.model_name_or_path)

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir) and not getattr(training_args, "overwrite_output_dir", False):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)

    train_dataset = build_train_dataset(script_args, training_args)
    if script_args.curriculum != "none" and training_args.shuffle_dataset:
        logger.info("curriculum=%s: turning off shuffle_dataset to keep the order", script_args.curriculum)
        training_args.shuffle_dataset = False

    timer = RewardTimer()
    if reward_funcs is None:
        reward_funcs = get_reward_funcs(script_args.reward_funcs, script_args.verifier_timeout)
    start_workers(timeout=0)  # verifier workers import and warm up while the trainer is built
    reward_names = [get_callable_name(f) for f in reward_funcs]
    reward_funcs = [timer.wrap(f) for f in reward_funcs]
    if training_args.reward_weights is not None and len(training_args.reward_weights) != len(reward_funcs):
        raise ValueError(
            f"{len(training_args.reward_weights)} reward_weights for {len(reward_funcs)} reward_funcs ({reward_names})"
        )

    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = model_init_kwargs

    card_info = {
        "base_model": base_model or "SmolLM2-135M-Instruct (embedded)",
        "dataset": script_args.dataset_name or f"symbolic variants of {script_args.problems}",
        "dataset_revision": script_args.dataset_revision,
        "train_rows": len(train_dataset),
        "curriculum": script_args.curriculum,
        "reward_funcs": ", ".join(reward_names),
        "reward_weights": training_args.reward_weights,
        "beta": training_args.beta,
        "num_generations": training_args.num_generations,
        "eval_set": script_args.eval_set,
    }
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
        reward_timer=timer,
        card_info=card_info,
    )
    trainer.add_callback(timer.callback())

    eval_problems = load_eval_problems(script_args)
    prompt_kwargs = {
        "system_prompt": script_args.system_prompt,
        "indefinite_template": script_args.indefinite_template,
        "definite_template": script_args.definite_template,
    }
    eval_callback = None
    if eval_problems:
        eval_callback = make_eval_callback(
            trainer,
            eval_problems,
            script_args.eval_every_steps,
            prompt_kwargs,
            script_args.eval_max_new_tokens,
            script_args.eval_batch_size,
        )
        trainer.add_callback(eval_callback)

    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()

    eval_scores: dict[str, float] = {}
    if eval_callback is not None:
        eval_scores = eval_callback.latest
        if eval_callback._last_step != trainer.state.global_step:
            eval_scores = eval_callback.evaluate(trainer.state.global_step)
            if trainer.accelerator.is_main_process:
                trainer.log(dict(eval_scores))
        trainer.card_info["eval_scores"] = eval_scores

    # Restore the KV cache for fast inference (training may have turned it off).
    trainer.model.config.use_cache = True
    trainer.save_model(training_args.output_dir)
    model_name = (training_args.hub_model_id or os.path.basename(os.path.normpath(training_args.output_dir))).split(
        "/"
    )[-1]
    dataset_name = (
        script_args.dataset_name if script_args.dataset_name and not os.path.exists(script_args.dataset_name) else None
    )
    if trainer.accelerator.is_main_process:
        trainer.create_model_card(model_name=model_name, dataset_name=dataset_name, tags=script_args.model_card_tags)
        trainer.model.config.save_pretrained(training_args.output_dir)
    if training_args.push_to_hub:
        logger.info("Pushing to the Hub: %s", trainer.hub_model_id)
        trainer.push_to_hub(model_name=model_name, dataset_name=dataset_name, tags=script_args.model_card_tags)
    trainer.accelerator.wait_for_everyone()
    return {
        "output_dir": training_args.output_dir,
        "global_step": trainer.state.global_step,
        "resumed_from": checkpoint,
        "eval_scores": eval_scores,
        "step_timings": list(timer.history),
    }


def make_parser():
    """``TrlParser`` over (:class:`ScriptArguments`, ``GRPOConfig``, ``ModelConfig``), as recipes/grpo.py uses."""
    from trl import GRPOConfig, ModelConfig, TrlParser

    return TrlParser((ScriptArguments, GRPOConfig, ModelConfig))


def main(script_args: ScriptArguments | list[str] | None = None, training_args=None, model_args=None) -> int:
    """Train from parsed dataclasses, or parse ``argv`` (``--config x.yaml`` plus overrides) first.

    Example:
        >>> main(["--config", "recipes/configs/smollm2_cpu.yaml", "--max_steps", "2"])  # doctest: +SKIP
        0
    """
    if not isinstance(script_args, ScriptArguments):
        argv = list(sys.argv[1:] if script_args is None else script_args)
        script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    train(script_args, training_args, model_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
