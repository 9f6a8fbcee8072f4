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

The pieces live in their own modules: options in :mod:`ladder_hf.configs`, data and prompts in
:mod:`ladder_hf.training_data`, callbacks in :mod:`ladder_hf.callbacks`, the trainer subclass in
:mod:`ladder_hf.trainer`; this module wires them into :func:`train`.

Example:
    >>> from trl import GRPOConfig, ModelConfig, TrlParser
    >>> from ladder_hf.configs import ScriptArguments
    >>> from ladder_hf.grpo import main
    >>> parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig))
    >>> args = parser.parse_args_and_config(["--config", "recipes/configs/smollm2_cpu.yaml"])  # doctest: +SKIP
    >>> main(*args)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ladder_hf.callbacks import HeldOutEvalCallback, RewardTimer, RewardTimerCallback
from ladder_hf.configs import ScriptArguments
from ladder_hf.models import register_grouped_attention
from ladder_hf.trainer import EDGE_SAMPLER_FILE, EdgeSampler, LadderGRPOTrainer
from ladder_hf.training_data import (
    build_train_dataset,
    check_against_eval_set,
    guarded_when_grown,
    load_eval_problems,
    problem_key,
)

logger = logging.getLogger(__name__)


def last_complete_checkpoint(folder: str) -> str | None:
    """The newest ``checkpoint-N`` folder in ``folder`` that the Trainer finished writing, or ``None``.

    The Trainer writes ``trainer_state.json`` after the weights, optimizer and RNG state, so a checkpoint
    without it was cut off while saving (a kill, a full disk); a resume from it would fail, so it is
    skipped with a warning and the one before is used.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> for step, done in ((5, True), (10, False)):
        ...     os.makedirs(f"{folder}/checkpoint-{step}")
        ...     if done:
        ...         open(f"{folder}/checkpoint-{step}/trainer_state.json", "w").close()
        >>> os.path.basename(last_complete_checkpoint(folder))
        'checkpoint-5'
    """
    import re

    if not os.path.isdir(folder):
        return None
    found = sorted(
        (
            (int(m.group(1)), os.path.join(folder, name))
            for name in os.listdir(folder)
            if (m := re.fullmatch(r"checkpoint-(\d+)", name))
        ),
        reverse=True,
    )
    for _, path in found:
        if os.path.isfile(os.path.join(path, "trainer_state.json")):
            return path
        if os.path.isdir(path):
            logger.warning("skipping %s: no trainer_state.json, so it was cut off while saving", path)
    return None


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


def _advise_on_cpu_bf16(bf16: bool, use_cpu: bool, native: bool) -> None:
    """Log what bf16 does to a CPU run: many times slower where it is emulated, faster where it is native."""
    if not use_cpu:
        return
    if bf16 and not native:
        logger.warning(
            "bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): PyTorch emulates it, and a step is many times "
            "slower than in float32. Set `bf16: false` (GRPOConfig turns it on by default)."
        )
    elif native and not bf16:
        logger.info(
            "This CPU multiplies bf16 natively: `bf16: true` made a GRPO step ~1.5x faster here, with training "
            "curves that match float32 within noise (docs/training.md, 'Speed on this CPU')."
        )


def _cpu_bf16_attention(bf16: bool, use_cpu: bool, attn_implementation: str | None) -> str | None:
    """The attention of a run: eager attention without key/value copies for a bf16 CPU run whose config
    names none (:func:`ladder_hf.models.grouped_eager_attention`), else the config's.

    PyTorch's SDPA kernel for CPUs is slow in bf16 at a small model's shapes: on an AVX512-BF16 CPU a bf16
    decoding step of SmolLM2-135M (8 rows, a 250-token cache) took 78 ms with it, 61 ms with eager attention
    and 54 ms with the grouped one (``benchmarks/decode_step.py``), and its backward made the loss of 8
    completions of 128 tokens ~0.6 s longer (one-off timing; docs/training.md). In float32 SDPA is as fast
    or faster, so only bf16 runs change.
    """
    if not (use_cpu and bf16 and attn_implementation is None):
        return attn_implementation
    name = register_grouped_attention()
    logger.info("bf16 on a CPU: attn_implementation=%s, faster here than SDPA (set it in the config to choose)", name)
    return name


def train(script_args: ScriptArguments, training_args, model_args, reward_funcs: list | None = None) -> dict[str, Any]:
    """Run LADDER GRPO training; return a summary (steps, output_dir, eval scores, checkpoint resumed from,
    per-step ``(step seconds, reward seconds)``).

    ``reward_funcs`` (callables in TRL's reward convention) replaces ``script_args.reward_funcs``.

    Example:
        >>> summary = train(script_args, training_args, model_args)  # doctest: +SKIP
    """
    from transformers import set_seed
    from trl import get_peft_config, get_quantization_config
    from trl.trainer.utils import get_callable_name

    from ladder_hf.models import cpu_has_native_bf16, resolve_model_name_or_path
    from ladder_hf.rewards import get_reward_funcs
    from ladder_hf.verifier import start_workers

    _setup_logging(training_args)
    set_seed(training_args.seed)
    _advise_on_cpu_bf16(training_args.bf16, training_args.use_cpu, cpu_has_native_bf16())
    model_args.attn_implementation = _cpu_bf16_attention(
        training_args.bf16, training_args.use_cpu, model_args.attn_implementation
    )

    base_model = model_args.model_name_or_path
    model_args.model_name_or_path = resolve_model_name_or_path(base_model)
    logger.info("Model: %s", model_args.model_name_or_path)

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir) and not getattr(training_args, "overwrite_output_dir", False):
        last_checkpoint = last_complete_checkpoint(training_args.output_dir)
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)

    train_dataset = build_train_dataset(script_args, training_args)
    # refuses rows equal to eval problems; a tree grown here under the same protection is not judged twice
    grown = os.path.join(training_args.output_dir, "variants") if script_args.problems else None
    guard_report = check_against_eval_set(train_dataset, script_args, guarded_when_grown(grown) if grown else ())
    if guard_report:
        logger.info("contamination guard: %s", guard_report)
    solve_rates = edge_sampler = None
    if script_args.solve_rate_samples > 0:
        train_dataset, solve_rates = select_at_model_level(train_dataset, script_args, training_args, model_args)
    if script_args.dynamic_level:
        edge_sampler = EdgeSampler(
            [problem_key(row) for row in train_dataset.select_columns(["integrand", "lower", "upper"])],
            solve_rates,
            low=script_args.solve_rate_range[0],
            high=script_args.solve_rate_range[1],
            explore=script_args.level_explore,
            seed=training_args.seed,
        )
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
        "contamination_guard": guard_report,
        "prompt": script_args.system_prompt,  # the card's quick start asks with the prompt the run trained with
    }
    if edge_sampler is not None:
        card_info["level_selection"] = (
            f"dynamic: prompts drawn from the rows with solve rate in ({script_args.solve_rate_range[0]:g}, "
            f"{script_args.solve_rate_range[1]:g}) at the time, measured on {len(train_dataset)} rows before training "
            f"({script_args.solve_rate_samples} samples each) and again by every GRPO group; "
            f"{script_args.level_explore:g} of the prompts drawn off that edge"
        )
    elif solve_rates is not None:
        card_info["level_selection"] = (
            f"{len(train_dataset)} of {len(solve_rates)} rows kept with solve rate in "
            f"({script_args.solve_rate_range[0]:g}, {script_args.solve_rate_range[1]:g}), "
            f"{script_args.solve_rate_samples} samples each"
        )
    trainer = LadderGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
        reward_timer=timer,
        card_info=card_info,
        share_prompt=script_args.share_prompt,
        edge_sampler=edge_sampler,
        # the level is the correctness reward's: the first of ours that checks the answer, else the first
        level_reward=next((i for i, name in enumerate(script_args.reward_funcs) if name == "integration"), 0),
    )
    trainer.add_callback(RewardTimerCallback(timer))

    eval_problems = load_eval_problems(script_args)
    eval_callback = None
    if eval_problems:
        eval_callback = HeldOutEvalCallback(
            trainer,
            eval_problems,
            script_args.eval_every_steps,
            script_args.prompt(),
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
        if eval_callback.last_step != trainer.state.global_step:
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
    if edge_sampler is not None and trainer.accelerator.is_main_process:
        # each row's level at the end, and how many rows joined and left the edge
        edge_sampler.save(os.path.join(training_args.output_dir, EDGE_SAMPLER_FILE))
    trainer.accelerator.wait_for_everyone()
    return {
        "output_dir": training_args.output_dir,
        "global_step": trainer.state.global_step,
        "resumed_from": checkpoint,
        "eval_scores": eval_scores,
        "step_timings": list(timer.history),
        "step_phases": list(timer.phase_history),
    }


class NoRowAtLevelError(ValueError):
    """LADDER's level selection found no training row that the model solves sometimes but not always."""


def select_at_model_level(train_dataset, script_args: ScriptArguments, training_args, model_args):
    """Measure the model's solve rate on every training row and keep the rows at its level.

    Logs and saves (``<output_dir>/solve_rates_by_depth.json``) the solve rate per tree depth, the
    measurable form of LADDER's premise that deeper variants are easier. Raises when no row is left,
    with what to change."""
    from ladder_hf.generation import load_backend
    from ladder_hf.store import write_json
    from ladder_hf.training_data import SOLVE_RATES_FILE, measure_solve_rates, select_by_solve_rate, solve_rate_table

    low, high = script_args.solve_rate_range
    columns = [c for c in ("integrand", "lower", "upper", "depth") if c in train_dataset.column_names]
    rows = train_dataset.select_columns(columns).to_list()
    store = os.path.join(training_args.output_dir, SOLVE_RATES_FILE)
    # The first process of each node measures and stores; the others then read the stored rates.
    with training_args.main_process_first(desc="measuring solve rates"):
        rates = measure_solve_rates(
            rows,
            lambda: load_backend(
                "transformers",
                model_args.model_name_or_path,
                batch_size=32,
                dtype=model_args.dtype,
                seed=training_args.seed,
            ),
            samples=script_args.solve_rate_samples,
            prompt=script_args.prompt(),
            max_new_tokens=script_args.solve_rate_max_new_tokens,
            temperature=training_args.temperature,
            seed=training_args.seed,
            store_path=store,
        )
    table = solve_rate_table(rows, rates)
    for line in table:
        logger.info("solve rate at depth %s: %s", line["depth"], line)
    write_json(os.path.join(training_args.output_dir, "solve_rates_by_depth.json"), table)
    selected = select_by_solve_rate(train_dataset, rates, low, high)
    logger.info("level selection: %d of %d rows have a solve rate in (%g, %g)", len(selected), len(rows), low, high)
    if len(selected) == 0:
        raise NoRowAtLevelError(
            f"no training row has a solve rate in ({low:g}, {high:g}) for this model "
            f"(per depth: {[(t['depth'], t['mean_solve_rate']) for t in table]}); grow deeper trees "
            "(--variant_depth), widen --solve_rate_range, or raise --solve_rate_samples"
        )
    if script_args.dynamic_level:
        # every row stays: the EdgeSampler follows the edge as it moves (and never draws an unscorable row)
        return train_dataset, rates
    return selected, rates


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
