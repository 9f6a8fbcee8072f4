"""Test-time reinforcement learning (TTRL), one problem at a time, with honest scoring.

For every problem of a chosen set, TTRL (LADDER paper, section 3.4) builds a variant tree of that
problem, runs GRPO on the variants only, answers the problem, and then puts the original weights
back before the next problem. Three numbers come out, always kept apart:

* **base pass@1** - the untouched model's answers to the problem (computed once, before any
  adaptation), fraction verified correct;
* **pass@1 after TTRL** - answers sampled from the adapted model *after* training, fraction
  verified correct;
* **solved during TTRL (verifier-selected pass@k, paper's metric)** - whether *any* answer to the
  test problem sampled while adapting (every ``eval_every`` steps, plus the final samples)
  verified. The verifier picks the winner among k answers, so this is a pass@k, not a pass@1.

The test problem is never rewarded during training: the GRPO dataset holds variants only (the
contamination guard of :func:`ladder_hf.variants.generate_tree` protects the problem, and
:func:`assert_excludes_test_problem` checks the dataset before training).

Results go to ``output_dir/results.jsonl``, one line per finished problem, appended and flushed
as soon as the problem is done, so a killed run resumes at the next unfinished problem.

Example:
    >>> from ladder_hf.ttrl import main
    >>> main(["--config", "recipes/configs/ttrl_smollm2_cpu.yaml"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ladder_hf.configs import GENERATORS, RESTORE_STRATEGIES, TTRLArguments
from ladder_hf.evaluation import format_rate, wilson_interval
from ladder_hf.problems import ANSWER_STOP, build_messages
from ladder_hf.store import JsonlStore, atomic_write, read_jsonl, write_json

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
BASE_FILE = "base.jsonl"
REPORT_DIR = "report"

# Plain names used everywhere (JSONL keys, summary table, docs).
BASE_PASS1 = "base_pass@1"
PASS1_AFTER = "pass@1_after_ttrl"
SOLVED_DURING = "solved_during_ttrl"
SCORE_LABELS = {
    BASE_PASS1: "base pass@1",
    PASS1_AFTER: "pass@1 after TTRL",
    SOLVED_DURING: "solved during TTRL (verifier-selected pass@k, paper's metric)",
}

# ---------------------------------------------------------------------------------------------
# Problems and variants


def select_problems(args: TTRLArguments) -> list[dict]:
    """The problems to adapt on, in order (set name or file, optional id list, optional cap)."""
    from ladder_hf.problems import load_problems, validate_rows

    rows = load_problems(args.problems)
    usable = []
    for row in rows:  # a row the verifier cannot use is named and skipped, not silently scored 0
        try:
            validate_rows([row], what=f"problem set {args.problems!r}")
            usable.append(row)
        except ValueError as err:
            logger.warning("skipping a problem TTRL cannot score: %s", err)
    rows = usable
    if args.problem_ids:
        by_id = {str(r["id"]): r for r in rows}
        missing = [i for i in args.problem_ids if i not in by_id]
        if missing:
            raise ValueError(f"problem ids not in {args.problems!r}: {missing}")
        rows = [by_id[i] for i in args.problem_ids]
    if args.max_problems is not None:
        rows = rows[: args.max_problems]
    return rows


def _key(problem: dict) -> tuple[str, str, str]:
    def norm(value: Any) -> str:
        return "".join(str(value or "").split())

    return norm(problem.get("integrand")), norm(problem.get("lower")), norm(problem.get("upper"))


def assert_excludes_test_problem(rows: Iterable[dict], problem: dict) -> None:
    """Raise ``ValueError`` if a training row is the test problem itself (same id, or same integrand
    and bounds up to whitespace). The variant generator's contamination guard already rejects
    equivalent and near-identical variants; this is the last check before any reward is computed.
    """
    test_key, test_id = _key(problem), problem.get("id")
    for row in rows:
        if _key(row) == test_key or (test_id is not None and row.get("id") == test_id):
            raise ValueError(f"training data contains the test problem {test_id!r}: {row.get('integrand')!r}")


def make_generators(args: TTRLArguments, model=None, tokenizer=None, cache: dict | None = None) -> list[tuple]:
    """``[(name, generator), ...]`` for ``args.generator``. The model generator reuses the loaded
    (original-weights) model unless ``variant_model`` names another one, which is loaded once
    and kept in ``cache``."""
    from ladder_hf.generation import TransformersBackend
    from ladder_hf.variants import make_generator

    if args.generator not in GENERATORS:
        raise ValueError(f"unknown generator {args.generator!r}; choose from {GENERATORS}")
    generators: list[tuple] = []
    if args.generator in ("symbolic", "both"):
        generators.append(("symbolic", make_generator("symbolic", seed=args.variant_seed)))
    if args.generator in ("model", "both"):
        if args.variant_model:
            cache = {} if cache is None else cache
            if args.variant_model not in cache:
                cache[args.variant_model] = TransformersBackend(args.variant_model, seed=args.variant_seed)
            backend = cache[args.variant_model]
        else:
            backend = TransformersBackend(model=model, tokenizer=tokenizer, seed=args.variant_seed)
        generators.append(("model", make_generator("model", seed=args.variant_seed, backend=backend)))
    return generators


def build_variants(
    problem: dict, args: TTRLArguments, out_dir: str, generators: list[tuple], backend=None
) -> list[dict]:
    """Variant tree of one problem with the contamination guard protecting it (resumable: nodes
    stream to ``out_dir/<generator>/nodes.jsonl``); returns every variant row (never the root),
    deduplicated, in a seeded order. :func:`training_variants` chooses the ones trained on.

    With ``args.deepen_rounds`` the symbolic tree then grows below the variants that the model behind
    ``backend`` never solves (:func:`ladder_hf.training_data.grow_to_model_level`, easier mutations only;
    the solve rates go to ``out_dir/level_solve_rates.jsonl``).
    """
    import random

    from ladder_hf.dataset import read_nodes
    from ladder_hf.training_data import LEVEL_SOLVE_RATES_FILE, deepening_generator, grow_to_model_level
    from ladder_hf.variants import SymbolicGenerator, generate_tree

    if args.deepen_rounds > 0 and (args.solve_rate_samples <= 0 or backend is None):
        raise ValueError("deepen_rounds needs solve_rate_samples > 0 and a model to measure")
    rows: list[dict] = []
    for name, generator in generators:
        tree_dir = os.path.join(out_dir, name)
        nodes = generate_tree(
            [problem],
            generator,
            depth=args.variant_depth,
            out_dir=tree_dir,
            protect=[problem],
            variants_per_node=args.variants_per_node,
            max_nodes_per_root=args.max_variants,
        )
        if args.deepen_rounds > 0 and isinstance(generator, SymbolicGenerator):
            grow_to_model_level(
                [problem],
                deepening_generator(generator),
                tree_dir,
                backend,
                rounds=args.deepen_rounds,
                samples=args.solve_rate_samples,
                variants_per_node=args.variants_per_node,
                protect=[problem],
                prompt=args.system_prompt,
                max_new_tokens=args.max_new_tokens,
                temperature=args.sample_temperature,
                seed=args.variant_seed,
                store_path=os.path.join(out_dir, LEVEL_SOLVE_RATES_FILE),
                measure_roots=False,  # the root is the test problem: sampled only for the three scores
            )
            nodes = [n for n in read_nodes(tree_dir) if n.get("kept", True)]
        rows.extend(n for n in nodes if int(n.get("depth") or 0) >= 1)
    # Deduplicate across generators by integrand and bounds, then a seeded order.
    unique = list({_key(r): r for r in rows if _key(r) != _key(problem)}.values())
    random.Random(args.variant_seed).shuffle(unique)
    return unique


def training_variants(
    rows: Sequence[dict], args: TTRLArguments, backend=None, store_path: str | None = None
) -> tuple[list[dict], dict | None]:
    """The variants GRPO trains on: at most ``args.max_variants`` of ``rows``, first narrowed, with
    ``args.solve_rate_samples``, to those the model behind ``backend`` sometimes solves (LADDER's level;
    :func:`ladder_hf.training_data.measure_solve_rates`, stored in ``store_path``). When no variant is at
    that level, all are kept, as without the selection. Returns the rows and what the selection saw
    (``None`` when it is off).

    Example:
        >>> rows = [{"integrand": f"{k}*x"} for k in range(1, 6)]
        >>> [r["integrand"] for r in training_variants(rows, TTRLArguments(max_variants=2))[0]]
        ['1*x', '2*x']
    """
    from ladder_hf.training_data import measure_solve_rates, select_by_solve_rate, solve_rate_table

    rows = list(rows)
    level = None
    if args.solve_rate_samples > 0 and rows:
        rates = measure_solve_rates(
            rows,
            backend,
            samples=args.solve_rate_samples,
            prompt=args.system_prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.sample_temperature,
            seed=args.variant_seed,
            store_path=store_path,
        )
        edge = select_by_solve_rate(rows, rates)
        level = {
            "samples": args.solve_rate_samples,
            "per_depth": solve_rate_table(rows, rates),
            "edge": len(edge),
            "trained_on": "edge" if edge else "all",
        }
        if edge:
            rows = edge
        else:
            logger.warning("no variant is at the model's level (sometimes solved); training on all %d", len(rows))
    return rows[: args.max_variants], level


def variants_to_dataset(rows: Sequence[dict], problem: dict, prompt: str | None = "default"):
    """A ``datasets.Dataset`` of GRPO prompts (TRL conversational format, via
    :func:`ladder_hf.training_data.add_prompts`) from variant rows, keeping the ``integrand``/``lower``/
    ``upper`` columns the reward reads. Refuses the test problem.
    """
    from datasets import Dataset

    from ladder_hf.training_data import add_prompts

    assert_excludes_test_problem(rows, problem)
    table = Dataset.from_list(
        [
            {
                "id": str(r.get("id", "")),
                "integrand": str(r["integrand"]),
                "lower": str(r.get("lower") or ""),
                "upper": str(r.get("upper") or ""),
                "depth": int(r.get("depth", 1)),
            }
            for r in rows
        ]
    )
    return add_prompts(table, prompt)


# ---------------------------------------------------------------------------------------------
# Answering the test problem


def sample_answers(
    model, tokenizer, problem: dict, n: int, max_new_tokens: int, temperature: float, prompt: str | None = "default"
) -> list[str]:
    """``n`` sampled completions of the problem's prompt (through the generation layer; they stop after
    the closing answer tag)."""
    from ladder_hf.generation import TransformersBackend

    if n <= 0:
        return []
    backend = TransformersBackend(model=model, tokenizer=tokenizer, batch_size=n)
    return backend.generate(
        [build_messages(problem, prompt)], n=n, max_new_tokens=max_new_tokens, temperature=temperature, stop=ANSWER_STOP
    )[0]


def score_answers(problem: dict, completions: Sequence[str], timeout: float = 2.0) -> list[dict]:
    """Score completions of one problem with the ``integration_bee`` metric (answers read from the
    ``<answer>`` block, as the reward reads them; verified in the verifier's sandbox); one
    ``{"answer", "correct", "reason"}`` per completion.

    Example:
        >>> [(s["answer"], s["correct"]) for s in score_answers({"integrand": "2*x"}, ["<answer>x**2</answer>", "?"])]
        [('x**2', True), (None, False)]
    """
    from ladder_hf.metrics.integration_bee.integration_bee import IntegrationBee

    if not completions:
        return []
    reference = {k: str(problem.get(k) or "") for k in ("id", "integrand", "lower", "upper")}
    scores = IntegrationBee(keep_in_memory=True).compute(
        predictions=[list(completions)], references=[reference], answer_format="tagged", timeout=timeout, k=[1]
    )
    return [
        {"answer": a, "correct": bool(c), "reason": r}
        for a, c, r in zip(scores["answers"][0], scores["correct"][0], scores["reasons"][0], strict=True)
    ]


def _sample_and_score(model, tokenizer, problem: dict, n: int, args) -> list[dict]:
    """``n`` sampled answers to ``problem``, each scored and carrying its completion text."""
    completions = sample_answers(
        model, tokenizer, problem, n, args.max_new_tokens, args.sample_temperature, args.system_prompt
    )
    scored = score_answers(problem, completions, args.verify_timeout)
    for s, c in zip(scored, completions, strict=True):
        s["completion"] = c
    return scored


def pass_at_1(scored: Sequence[dict]) -> float:
    """Fraction of answers verified correct (the unbiased pass@1 estimate from n samples)."""
    return sum(s["correct"] for s in scored) / len(scored) if scored else 0.0


# ---------------------------------------------------------------------------------------------
# Weight restoration


def _tensors(model) -> dict:
    """Every parameter and buffer by name, each shared (tied) tensor once."""
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    return named


def snapshot_weights(model) -> dict:
    """A detached copy of every parameter and buffer (tied tensors copied once).

    Example:
        >>> snap = snapshot_weights(model)  # doctest: +SKIP
        >>> restore_weights(model, snap); weights_equal(model, snap)  # doctest: +SKIP
        []
    """
    import torch

    with torch.no_grad():
        return {k: v.detach().clone() for k, v in _tensors(model).items()}


def restore_weights(model, snapshot: dict) -> None:
    """Copy ``snapshot`` back into ``model`` in place (bitwise; no re-allocation)."""
    import torch

    current = _tensors(model)
    mismatch = set(snapshot) ^ set(current)
    if mismatch:
        raise ValueError(f"snapshot and model disagree on tensors: {sorted(mismatch)[:5]}")
    with torch.no_grad():
        for name, tensor in current.items():
            tensor.copy_(snapshot[name])


def weights_equal(model, snapshot: dict) -> list[str]:
    """Names of parameters/buffers that differ (bitwise) from ``snapshot``; empty when all equal."""
    import torch

    current = _tensors(model)
    differ = sorted(set(snapshot) ^ set(current))
    differ += [k for k in snapshot if k in current and not torch.equal(current[k], snapshot[k])]
    return differ


def _state_bytes(snapshot: dict) -> int:
    seen, total = set(), 0
    for t in snapshot.values():
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


# ---------------------------------------------------------------------------------------------
# Training callback: look at the test problem every few steps


class TestProblemCallback(TrainerCallback):
    """Every ``args.eval_every`` steps, sample answers to the test problem and verify them (``on_eval(step,
    scored)``). The answers are observed only: nothing here feeds a reward or a gradient."""

    def __init__(self, problem: dict, tokenizer, args: TTRLArguments, on_eval: Callable[[int, list[dict]], None]):
        self.problem, self.tokenizer, self.args, self.on_eval = problem, tokenizer, args, on_eval

    def on_step_end(self, train_args, state, control, model=None, **kwargs):
        every = self.args.eval_every
        if every > 0 and state.global_step % every == 0 and model is not None:
            scored = _sample_and_score(model, self.tokenizer, self.problem, self.args.eval_samples, self.args)
            self.on_eval(state.global_step, scored)
        return control


def _reward_history(log_history: list[dict]) -> list[dict]:
    """Per-step reward entries from a Trainer's log history (logging_steps=1)."""
    curve = []
    for entry in log_history:
        if "reward" in entry and "step" in entry:
            curve.append({k: v for k, v in entry.items() if k == "step" or k.startswith("reward")})
    return curve


# ---------------------------------------------------------------------------------------------
# Results file (append-only, resumable)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Finished records from a results JSONL (a cut last line is not a record; see :mod:`ladder_hf.store`)."""
    return read_jsonl(path)


def append_result(path: str | os.PathLike, record: dict) -> None:
    """Append one record and force it to disk before moving on (a cut last line is removed first)."""
    JsonlStore(path).append(record)


# ---------------------------------------------------------------------------------------------
# The loop


def _load(model_path: str, model_args):
    from ladder_hf.models import load_model_and_tokenizer

    dtype = getattr(model_args, "dtype", None) if model_args is not None else None
    return load_model_and_tokenizer(model_path, dtype=dtype if dtype not in (None, "auto") else "float32")


def run_ttrl(
    ttrl_args: TTRLArguments,
    training_args,
    model_args=None,
    callbacks: Sequence | None = None,
) -> dict:
    """Run TTRL over the chosen problems; return the summary (also written to the report folder).

    ``training_args`` is a TRL ``GRPOConfig``: ``max_steps`` is the GRPO step budget per problem,
    ``output_dir`` holds ``base.jsonl``, ``results.jsonl``, ``variants/`` and ``report/``.
    Problems already in ``results.jsonl`` are skipped. ``callbacks`` are extra TrainerCallbacks
    added to every problem's trainer.

    Example:
        >>> from trl import GRPOConfig
        >>> cfg = GRPOConfig(output_dir="out", max_steps=4, use_cpu=True, bf16=False)  # doctest: +SKIP
        >>> run_ttrl(TTRLArguments(problems="undergrad", max_problems=2), cfg)  # doctest: +SKIP
    """
    import copy

    from tqdm.auto import tqdm

    from ladder_hf.generation import TransformersBackend
    from ladder_hf.models import resolve_model_name_or_path
    from ladder_hf.rewards import get_reward_funcs
    from ladder_hf.trainer import LadderGRPOTrainer
    from ladder_hf.training_data import LEVEL_SOLVE_RATES_FILE

    if ttrl_args.restore not in RESTORE_STRATEGIES:
        raise ValueError(f"restore must be one of {RESTORE_STRATEGIES}, got {ttrl_args.restore!r}")
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path, base_path = out / RESULTS_FILE, out / BASE_FILE
    report_dir = Path(ttrl_args.report_dir or out / REPORT_DIR)

    problems = select_problems(ttrl_args)
    write_json(out / "ttrl_args.json", asdict(ttrl_args))
    model_path = resolve_model_name_or_path(getattr(model_args, "model_name_or_path", None))
    model, tokenizer = _load(model_path, model_args)
    reward_funcs = get_reward_funcs(ttrl_args.reward_funcs, ttrl_args.verifier_timeout)
    backend_cache: dict = {}

    peft_config = None
    if ttrl_args.restore == "lora":
        from trl import ModelConfig, get_peft_config

        margs = copy.copy(model_args) if model_args is not None else ModelConfig()
        margs.use_peft = True
        peft_config = get_peft_config(margs)

    snapshot = None
    if ttrl_args.restore == "snapshot" or ttrl_args.check_restore:
        t0 = time.perf_counter()
        snapshot = snapshot_weights(model)
        logger.info("weight snapshot: %.2f s, %.1f MB", time.perf_counter() - t0, _state_bytes(snapshot) / 2**20)

    # Phase 1: base pass@1, once per problem before any adaptation (resumable).
    base = {r["id"]: r for r in read_results(base_path)}
    for problem in tqdm([p for p in problems if p["id"] not in base], desc="base pass@1", unit="problem"):
        t0 = time.perf_counter()
        scored = _sample_and_score(model, tokenizer, problem, ttrl_args.pass_at_1_samples, ttrl_args)
        record = {"id": problem["id"], "samples": scored, BASE_PASS1: pass_at_1(scored), "time_s": _t(t0)}
        append_result(base_path, record)
        base[problem["id"]] = record

    # Phase 2: adapt, answer, restore; one problem at a time.
    done = {r["id"] for r in read_results(results_path)}
    todo = [p for p in problems if p["id"] not in done]
    if done:
        logger.info("resuming: %d finished problem(s) skipped", len([p for p in problems if p["id"] in done]))
    overall = tqdm(total=len(problems), initial=len(problems) - len(todo), desc="TTRL problems", unit="problem")
    for problem in todo:
        overall.set_postfix_str(str(problem["id"]))
        t_start, cpu_start = time.perf_counter(), time.process_time()
        timings: dict[str, float] = {}

        t0 = time.perf_counter()
        generators = make_generators(ttrl_args, model, tokenizer, backend_cache)
        variants_dir = out / "variants" / _safe(problem["id"])
        # the original weights measure the model's level (the model is restored after every problem)
        level_backend = None
        if ttrl_args.solve_rate_samples > 0:
            level_backend = TransformersBackend(model=model, tokenizer=tokenizer, seed=ttrl_args.variant_seed)
        variant_rows = build_variants(problem, ttrl_args, str(variants_dir), generators, level_backend)
        variant_rows, level = training_variants(
            variant_rows, ttrl_args, level_backend, str(variants_dir / LEVEL_SOLVE_RATES_FILE)
        )
        del generators, level_backend
        timings["variants_s"] = _t(t0)

        during: list[dict] = []

        def on_eval(step: int, scored: list[dict], _during=during) -> None:
            _during.append({"step": step, "samples": scored, "n_correct": sum(s["correct"] for s in scored)})

        rewards: list[dict] = []
        final: list[dict] = []
        restore_info: dict[str, Any] = {"strategy": ttrl_args.restore}
        trainer = None
        try:
            if variant_rows:
                dataset = variants_to_dataset(variant_rows, problem, ttrl_args.system_prompt)
                run_args = copy.copy(training_args)
                run_args.output_dir = str(out / "runs" / _safe(problem["id"]))
                run_args.logging_steps = 1
                run_args.save_strategy = "no"
                t0 = time.perf_counter()
                trainer = LadderGRPOTrainer(
                    model=model,
                    reward_funcs=reward_funcs,
                    args=run_args,
                    train_dataset=dataset,
                    processing_class=tokenizer,
                    peft_config=peft_config,
                    callbacks=[TestProblemCallback(problem, tokenizer, ttrl_args, on_eval), *(callbacks or [])],
                )
                timings["trainer_init_s"] = _t(t0)
                t0 = time.perf_counter()
                trainer.train()
                timings["train_s"] = _t(t0)
                rewards = _reward_history(trainer.state.log_history)
                adapted = trainer.model
            else:
                logger.warning("problem %s: no variants survived; answering without training", problem["id"])
                adapted = model
            # pass@1 after TTRL: fresh samples from the adapted model once training is over.
            t0 = time.perf_counter()
            final = _sample_and_score(adapted, tokenizer, problem, ttrl_args.pass_at_1_samples, ttrl_args)
            timings["final_eval_s"] = _t(t0)
        finally:
            # Restore even when training fails or is interrupted, so in-process callers keep the originals.
            t0 = time.perf_counter()
            model = _restore(model, trainer, ttrl_args.restore, snapshot, model_path, model_args)
            timings["restore_s"] = _t(t0)
            if ttrl_args.check_restore and snapshot is not None:
                differ = weights_equal(model, snapshot)
                restore_info["weights_equal_original"] = not differ
                if differ:
                    raise RuntimeError(f"weights not restored after {problem['id']}: {differ[:5]}")
            _free(trainer)
            trainer = None

        timings["total_s"] = _t(t_start)
        # CPU seconds of this process (all its threads): on a shared machine, wall time alone says
        # more about the neighbours than about TTRL.
        timings["process_cpu_s"] = round(time.process_time() - cpu_start, 3)
        record = _record(problem, ttrl_args, training_args, variant_rows, rewards, during, final, base, timings)
        record["restore"] = restore_info
        if level is not None:
            record["level"] = level
        append_result(results_path, record)
        overall.update(1)
    overall.close()

    records = read_results(results_path)
    summary = summarize(records, problems)
    write_report(records, summary, report_dir)
    return summary


def _restore(model, trainer, strategy: str, snapshot: dict | None, model_path: str, model_args):
    if strategy == "lora":
        from peft import PeftModel

        wrapped = getattr(trainer, "model", None) if trainer is not None else None
        if isinstance(wrapped, PeftModel):
            # Discard the adapter without merging: the frozen base weights were never touched.
            model = wrapped.unload()
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if strategy == "reload":
        fresh, _ = _load(model_path, model_args)
        return fresh
    restore_weights(model, snapshot)
    return model


def _free(trainer) -> None:
    if trainer is None:
        return
    # Drop the optimizer state and buffered rollouts now, not at the next garbage collection.
    trainer.optimizer = None
    trainer.lr_scheduler = None
    import gc

    gc.collect()


def _record(problem, ttrl_args, training_args, variant_rows, rewards, during, final, base, timings) -> dict:
    seen = [s for d in during for s in d["samples"]] + list(final)
    base_rec = base.get(problem["id"], {})
    return {
        "id": problem["id"],
        "problem": {k: problem.get(k, "") for k in ("integrand", "lower", "upper")},
        "variants": {
            "count": len(variant_rows),
            "generator": ttrl_args.generator,
            "depth": ttrl_args.variant_depth,
            "rows": [
                {k: r.get(k) for k in ("id", "parent_id", "depth", "integrand", "lower", "upper", "generator")}
                for r in variant_rows
            ],
        },
        "grpo": {
            "max_steps": training_args.max_steps,
            "steps_run": rewards[-1]["step"] if rewards else 0,
            "num_generations": training_args.num_generations,
            "learning_rate": training_args.learning_rate,
        },
        "rewards": rewards,
        "during_ttrl": during,
        "final_samples": list(final),
        "base_samples": base_rec.get("samples", []),
        "scores": {
            BASE_PASS1: base_rec.get(BASE_PASS1, 0.0),
            PASS1_AFTER: pass_at_1(final),
            SOLVED_DURING: any(s["correct"] for s in seen),
        },
        "k_during_ttrl": len(seen),
        "time": timings,
    }


def _t(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


# ---------------------------------------------------------------------------------------------
# Summary, table, plots


def summarize(records: Sequence[dict], problems: Sequence[dict] | None = None) -> dict:
    """Per-problem scores and their means; the three scores under their plain names."""
    order = {p["id"]: i for i, p in enumerate(problems or [])}
    records = sorted(records, key=lambda r: order.get(r["id"], math.inf))
    rows = [
        {
            "id": r["id"],
            "integrand": r["problem"]["integrand"],
            "variants": r["variants"]["count"],
            # variants the original model sometimes solved, with the level selection on
            "at_level": r["level"]["edge"] if r.get("level") else None,
            "steps": r["grpo"]["steps_run"],
            **r["scores"],
            "k_during_ttrl": r["k_during_ttrl"],
            "minutes": round(r["time"]["total_s"] / 60, 2),
            "cpu_minutes": round(r["time"].get("process_cpu_s", 0.0) / 60, 2),
        }
        for r in records
    ]
    n = len(rows)
    means = {
        BASE_PASS1: sum(r[BASE_PASS1] for r in rows) / n if n else 0.0,
        PASS1_AFTER: sum(r[PASS1_AFTER] for r in rows) / n if n else 0.0,
        SOLVED_DURING: sum(bool(r[SOLVED_DURING]) for r in rows) / n if n else 0.0,
    }
    # pooled over problems x answers, with a 95% interval; "solved during" counts problems
    pooled = {}
    for name, key in ((BASE_PASS1, "base_samples"), (PASS1_AFTER, "final_samples")):
        samples = [s for r in records for s in r.get(key, [])]
        pooled[name] = {"correct": sum(bool(s["correct"]) for s in samples), "answers": len(samples)}
    pooled[SOLVED_DURING] = {"correct": sum(bool(r[SOLVED_DURING]) for r in rows), "answers": n}
    for cell in pooled.values():
        cell["ci95"] = list(wilson_interval(cell["correct"], cell["answers"]))
    return {
        "n_problems": n,
        "labels": SCORE_LABELS,
        "mean": means,
        "pooled": pooled,
        "minutes_per_problem": sum(r["minutes"] for r in rows) / n if n else 0.0,
        "cpu_minutes_per_problem": sum(r["cpu_minutes"] for r in rows) / n if n else 0.0,
        "problems": rows,
    }


def summary_markdown(summary: dict) -> str:
    """The summary as a markdown table (one row per problem, then the means)."""
    L = SCORE_LABELS
    head = ["problem", "integrand", "variants", "GRPO steps", L[BASE_PASS1], L[PASS1_AFTER], L[SOLVED_DURING]]
    head += ["wall min", "CPU min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["problems"]:
        cells = [
            r["id"],
            f"`{r['integrand']}`",
            r["variants"] if r.get("at_level") is None else f"{r['variants']} ({r['at_level']} at level)",
            r["steps"],
            f"{r[BASE_PASS1]:.2f}",
            f"{r[PASS1_AFTER]:.2f}",
            f"{'yes' if r[SOLVED_DURING] else 'no'} (k={r['k_during_ttrl']})",
            f"{r['minutes']:.1f}",
            f"{r['cpu_minutes']:.1f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    m = summary["mean"]
    lines.append(
        f"| **mean over {summary['n_problems']}** | | | | {m[BASE_PASS1]:.2f} | {m[PASS1_AFTER]:.2f} | "
        f"{m[SOLVED_DURING]:.2f} | {summary['minutes_per_problem']:.1f} | {summary['cpu_minutes_per_problem']:.1f} |"
    )
    if summary.get("pooled"):
        lines.append("")
        lines.append("Pooled, with 95% Wilson intervals (answers: problems x samples; solved during: problems):")
        lines.append("")
        for name, cell in summary["pooled"].items():
            lines.append(f"- {L[name]}: {format_rate(cell['correct'], cell['answers'], counts='fraction')}")
    return "\n".join(lines) + "\n"


def write_report(records: Sequence[dict], summary: dict, report_dir: str | os.PathLike) -> None:
    """``summary.md``, ``summary.json`` and reward-curve PNGs (one per problem + all together)."""
    report_dir = Path(report_dir)
    (report_dir / "plots").mkdir(parents=True, exist_ok=True)
    write_json(report_dir / "summary.json", summary)
    note = (
        "# TTRL summary\n\n"
        f"- **{SCORE_LABELS[BASE_PASS1]}**: the original model's answers, fraction verified.\n"
        f"- **{SCORE_LABELS[PASS1_AFTER]}**: answers sampled after adapting on the variants, fraction verified.\n"
        f"- **{SCORE_LABELS[SOLVED_DURING]}**: any of the k answers sampled while adapting (every few steps "
        "and after training) verified. A verifier-selected pass@k, not comparable to pass@1.\n\n"
    )
    atomic_write(report_dir / "summary.md", note + summary_markdown(summary))
    plot_reward_curves(records, report_dir / "plots")


def plot_reward_curves(records: Sequence[dict], plot_dir: str | os.PathLike) -> list[str]:
    """One PNG per problem (mean reward per GRPO step; marks where a test-problem answer verified)
    and ``all_problems.png``. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig_all, ax_all = plt.subplots(figsize=(7, 4))
    for r in records:
        steps = [e["step"] for e in r["rewards"]]
        values = [e["reward"] for e in r["rewards"]]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(steps, values, marker="o", label="mean reward on variants")
        solved = [d["step"] for d in r["during_ttrl"] if d["n_correct"] > 0]
        if solved:
            ax.scatter(solved, [max(values or [0])] * len(solved), marker="*", s=120, c="tab:green", zorder=3,
                       label="test problem answer verified")  # fmt: skip
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("reward")
        ax.set_title(f"{r['id']}: {r['problem']['integrand']}"[:80])
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path = plot_dir / f"{_safe(r['id'])}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(str(path))
        ax_all.plot(steps, values, marker=".", label=str(r["id"]))
    ax_all.set_xlabel("GRPO step")
    ax_all.set_ylabel("mean reward on variants")
    ax_all.set_title("TTRL reward curves")
    if records:
        ax_all.legend(loc="best", fontsize=7)
    fig_all.tight_layout()
    path = plot_dir / "all_problems.png"
    fig_all.savefig(path, dpi=100)
    plt.close(fig_all)
    paths.append(str(path))
    return paths


# ---------------------------------------------------------------------------------------------
# CLI


def make_parser():
    """TrlParser over (TTRLArguments, GRPOConfig, ModelConfig): one YAML file holds all three."""
    from trl import GRPOConfig, ModelConfig, TrlParser

    return TrlParser((TTRLArguments, GRPOConfig, ModelConfig))


def main(argv: list[str] | None = None) -> int:
    """``ladder-hf ttrl --config recipes/configs/ttrl_smollm2_cpu.yaml [--key value ...]``."""
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = make_parser()
    ttrl_args, training_args, model_args = parser.parse_args_and_config(sys.argv[1:] if argv is None else argv)
    summary = run_ttrl(ttrl_args, training_args, model_args)
    print(summary_markdown(summary))
    keys = ("mean", "minutes_per_problem", "cpu_minutes_per_problem")
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    return 0


__all__ = [
    "BASE_PASS1",
    "PASS1_AFTER",
    "SCORE_LABELS",
    "SOLVED_DURING",
    "TTRLArguments",
    "assert_excludes_test_problem",
    "build_variants",
    "main",
    "make_generators",
    "pass_at_1",
    "read_results",
    "restore_weights",
    "run_ttrl",
    "sample_answers",
    "score_answers",
    "snapshot_weights",
    "summarize",
    "summary_markdown",
    "training_variants",
    "variants_to_dataset",
    "weights_equal",
    "write_report",
]
