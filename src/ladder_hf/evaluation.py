"""Integration Bee evaluation: a model (and sympy) on a problem set, scored by ``integration_bee``.

``ladder-hf evaluate`` / ``recipes/evaluate_bee.py`` run a model (the embedded default, a Hub id or a
local path; transformers, or vLLM with ``--backend vllm``) on a bundled set (``mit-2025`` by
default) with the paper's answer format, ``k`` samples per problem, and score the completions with
the ``integration_bee`` metric. A non-LLM comparator, sympy's own ``integrate`` under a time limit
in the verifier's sandbox, is scored by the same metric in the same report.

Outputs in ``--output_dir`` (completions and the sympy answers are written as they come, so an
interrupted run resumes where it stopped):

    run_config.json     the generation settings (a resumed run must match them)
    completions.jsonl   one row per (problem, sample): id, sample, completion
    sympy.jsonl         one row per problem: id, answer (or null), status, seconds
    results.jsonl       per (system, problem): answers, correctness, reasons
    summary.json        scores of the model and of sympy, settings, wall times
    summary.md          the same as markdown tables (overall and per problem)

Example:
    >>> from ladder_hf.evaluation import evaluate_model
    >>> summary = evaluate_model(problem_set="mit-2025", output_dir="outputs/eval")  # doctest: +SKIP
    >>> summary["model"]["accuracy"], summary["sympy"]["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder_hf.problems import ANSWER_STOP, as_problems, build_messages, load_problems
from ladder_hf.store import JsonlStore, atomic_write, write_json, write_jsonl

logger = logging.getLogger(__name__)
# Settings that change the completions; a resumed run must use the same ones.
_GENERATION_KEYS = (
    "model",
    "problem_set",
    "num_samples",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "system_prompt",
    "backend",
    "limit",
)


@dataclass
class EvaluationConfig:
    """Settings of ``ladder-hf evaluate`` (each field is a command-line flag)."""

    model: str = field(
        default="default",
        metadata={
            "help": "Model to evaluate: 'default' (embedded SmolLM2-135M-Instruct), a Hub id or a local path.",
            "aliases": ["--model_name_or_path", "--model-name-or-path"],  # TRL's name for it
        },
    )
    problem_set: str = field(
        default="mit-2025",
        metadata={"help": "Bundled set (mit-2025, mit-2024, ..., mit, mit-train, undergrad) or a .jsonl of rows."},
    )
    output_dir: str = field(default="outputs/evaluate", metadata={"help": "Where completions and summaries go."})
    num_samples: int = field(
        default=1, metadata={"help": "Samples per problem (k); >1 reports pass@k and majority vote."}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "Generation budget per completion."})
    temperature: float | None = field(
        default=None, metadata={"help": "Sampling temperature; default: greedy for 1 sample, 0.7 for several."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling (when sampling)."})
    batch_size: int = field(default=8, metadata={"help": "Completions generated per forward batch (transformers)."})
    backend: str = field(default="transformers", metadata={"help": "'transformers' or 'vllm' (needs vllm installed)."})
    dtype: str = field(default="auto", metadata={"help": "Model dtype: auto, float32, bfloat16, float16."})
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (default: torch's choice). Use 1 on a shared, oversubscribed CPU: "
            "measured here, 2 threads ran 13x slower than 1 when other jobs kept both cores busy."
        },
    )
    seed: int = field(default=0, metadata={"help": "Random seed for sampling."})
    system_prompt: str = field(
        default="default",
        metadata={
            "help": "The prompt: 'default' (system prompt asking for the paper's <answer> format), 'few_shot' "
            "(instruction and three worked examples as chat turns) or literal system-prompt text."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N problems of the set."})
    sympy_baseline: bool = field(default=True, metadata={"help": "Also score sympy.integrate on each problem."})
    sympy_timeout: float = field(default=10.0, metadata={"help": "Seconds sympy may spend on one problem."})
    verify_timeout: float = field(default=5.0, metadata={"help": "Seconds the verifier may spend on one answer."})
    answer_format: str = field(
        default="tagged",
        metadata={"help": "How model answers are read: 'tagged' (<answer> block, as the reward), 'auto' or 'bare'."},
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Discard earlier outputs in output_dir instead of resuming."}
    )

    def __post_init__(self):
        if self.num_samples < 1:
            raise ValueError("num_samples must be >= 1")
        if self.backend not in ("transformers", "vllm"):
            raise ValueError(f"backend must be 'transformers' or 'vllm', not {self.backend!r}")

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return float(self.temperature)
        return 0.0 if self.num_samples == 1 else 0.7


# ---------------------------------------------------------------------------------------- generation


def _backend(config: EvaluationConfig, model=None, tokenizer=None):
    from ladder_hf.generation import load_backend

    if config.backend == "transformers" and model is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else None
        return load_backend(
            "transformers", config.model, batch_size=config.batch_size, dtype=config.dtype, device=device
        )
    if config.backend == "transformers" and tokenizer is None:
        raise ValueError("pass the tokenizer with an in-memory model")
    return load_backend(
        config.backend, config.model, batch_size=config.batch_size, dtype=config.dtype, model=model, tokenizer=tokenizer
    )


def generate_completions(
    problems: Sequence[dict], config: EvaluationConfig, out_path: Path, model=None, tokenizer=None, backend=None
) -> list[dict]:
    """Generate ``config.num_samples`` completions per problem through the generation layer (``backend``,
    or the one ``config`` names), appending rows to ``out_path`` as each batch finishes.

    Rows already in ``out_path`` (same id and sample index) are kept and not generated again.
    Returns all rows, in problem then sample order.
    """
    from tqdm.auto import tqdm

    store = JsonlStore(out_path, sync=False)
    done = {(row["id"], int(row["sample"])): row for row in store.read()}
    todo = [(p, s) for p in problems for s in range(config.num_samples) if (p["id"], s) not in done]
    if not todo:
        return [done[(p["id"], s)] for p in problems for s in range(config.num_samples)]
    if config.num_threads:
        import torch

        torch.set_num_threads(config.num_threads)
    backend = backend or _backend(config, model, tokenizer)
    messages = [build_messages(p, config.system_prompt) for p, _ in todo]
    # similar prompt lengths in one batch waste less compute on padding; vLLM and servers batch themselves
    order = sorted(range(len(todo)), key=lambda i: len(messages[i][-1]["content"]))
    chunk_size = config.batch_size if config.backend == "transformers" else len(order)
    bar = tqdm(total=len(todo), desc="generating", unit="completion")
    for start in range(0, len(order), chunk_size):
        chunk = order[start : start + chunk_size]
        began = time.perf_counter()
        texts = backend.generate(
            [messages[i] for i in chunk],
            max_new_tokens=config.max_new_tokens,
            temperature=config.sampling_temperature,
            top_p=config.top_p,
            stop=ANSWER_STOP,
            # seeded per batch from its first item, so a resumed run samples the same way
            seed=config.seed + chunk[0] * 1_000 + todo[chunk[0]][1],
        )
        # seconds: this row's share of its batch's generation time, so resumed runs still report totals
        share = round((time.perf_counter() - began) / len(chunk), 3)
        rows = []
        for i, samples in zip(chunk, texts, strict=True):
            problem, sample = todo[i]
            rows.append({"id": problem["id"], "sample": sample, "completion": samples[0], "seconds": share})
            done[(problem["id"], sample)] = rows[-1]
        store.append(rows)
        bar.update(len(chunk))
    bar.close()
    return [done[(p["id"], s)] for p in problems for s in range(config.num_samples)]


# -------------------------------------------------------------------------------------- sympy baseline


def sympy_integrate(integrand: str, lower: str, upper: str) -> str | None:
    """sympy's own answer to one problem (``str`` of the result), or ``None`` when it gives up.

    Runs in a sandboxed worker; the integrand is parsed with ``parse_math`` like any other text.

    Example:
        >>> sympy_integrate("x**2", "", "")
        'x**3/3'
    """
    import sympy

    from ladder_hf.verifier import parse_math

    # Problem integrands are references, parsed with the verifier's relaxed (trusted) bounds, as the
    # verifier itself does; a bounded grammar is still the only way in.
    f = parse_math(integrand, trusted=True)
    x = next((s for s in f.free_symbols if s.name == "x"), sympy.Symbol("x"))
    if str(lower).strip() and str(upper).strip():
        result = sympy.integrate(f, (x, parse_math(lower, trusted=True), parse_math(upper, trusted=True)))
    else:
        result = sympy.integrate(f, x)
    if result.has(sympy.Integral):
        return None
    return sympy.sstr(result)


def run_sympy_baseline(problems: Sequence[dict], out_path: Path, timeout: float = 10.0) -> list[dict]:
    """sympy ``integrate`` on each problem under ``timeout`` seconds; rows appended to ``out_path``."""
    from tqdm.auto import tqdm

    from ladder_hf.verifier import run_sandboxed

    store = JsonlStore(out_path, sync=False)
    done = {row["id"]: row for row in store.read()}
    todo = [p for p in problems if p["id"] not in done]
    chunk_size = max(1, os.cpu_count() or 1)
    with tqdm(total=len(todo), desc="sympy integrate") as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            began = time.perf_counter()
            outcomes = run_sandboxed(
                sympy_integrate, [(p.integrand, p.lower, p.upper) for p in as_problems(chunk)], timeout
            )
            seconds = round((time.perf_counter() - began) / len(chunk), 3)  # this problem's share
            rows = []
            for problem, outcome in zip(chunk, outcomes, strict=True):
                answer = outcome.value if outcome.ok else None
                status = ("solved" if answer else "gave up") if outcome.ok else (outcome.error or "failed")
                rows.append({"id": problem["id"], "answer": answer, "status": status, "seconds": seconds})
                done[problem["id"]] = rows[-1]
            store.append(rows)
            bar.update(len(chunk))
    return [done[p["id"]] for p in problems]


# ---------------------------------------------------------------------------------------------- report


def _metric():
    from ladder_hf.metrics.integration_bee.integration_bee import IntegrationBee

    # the in-package class needs no registration; evaluate.load("integration_bee") after
    # `python -m ladder_hf.metrics` loads the same class

    return IntegrationBee(keep_in_memory=True)


def _reference(problem: dict) -> dict:
    # the official answer lets the metric judge definite problems whose value quadrature cannot establish;
    # excluded rows (an integrand that contradicts its answer) are scored but not counted
    reference = {k: str(problem.get(k) or "") for k in ("id", "integrand", "lower", "upper", "answer")}
    return {**reference, "excluded": bool(problem.get("excluded"))}


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% with the default ``z``); ``(0, 1)`` when ``n`` is 0.

    Samples of one problem are correlated, so over ``problems x samples`` answers this interval is a
    little narrower than the truth; results tables state both counts.

    Example:
        >>> [round(v, 3) for v in wilson_interval(12, 240)]
        [0.029, 0.085]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(successes: float, n: int, counts: str = "n") -> str:
    """A proportion as results tables print it: percent, 95% Wilson interval and the sample size
    (``counts="n"``), the successes out of it (``"fraction"``) or nothing (``""``); "–" when ``n`` is 0.

    Example:
        >>> format_rate(12, 240)
        '5.0% [2.9, 8.5] (n=240)'
        >>> format_rate(9, 68, counts="fraction")
        '13.2% [7.1, 23.3] (9/68)'
    """
    if n <= 0:
        return "–"
    low, high = wilson_interval(successes, n)
    cell = f"{100 * successes / n:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
    if counts == "n":
        return f"{cell} (n={n})"
    if counts == "fraction":
        return f"{cell} ({round(successes)}/{n})"
    return cell


def _headline(scores: dict, k: int) -> dict:
    keep = ["count", "num_predictions", "accuracy", "answer_rate", "majority_vote_accuracy", "per_year"]
    out = {key: scores[key] for key in keep if key in scores}
    n = int(scores.get("count", 0)) * k
    if "accuracy" in scores and n:
        out["accuracy_ci95"] = list(wilson_interval(scores["accuracy"] * n, n))
    out.update({key: value for key, value in scores.items() if key.startswith("pass@")})
    if k == 1:
        out["solved"] = int(sum(scores["correct"]))
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_markdown(summary: dict, problems: Sequence[dict], per_problem: dict[str, list]) -> str:
    """The report as markdown: one overall table and one row per problem."""
    k = summary["config"]["num_samples"]
    from ladder_hf.models import DEFAULT_MODEL_NAME, is_default_model

    name = summary["config"]["model"]
    name = f"{DEFAULT_MODEL_NAME} (embedded)" if is_default_model(name) else name
    systems = [("model", f"{name}, {summary['config']['backend']}")]
    if summary.get("sympy"):
        systems.append(("sympy", f"sympy integrate ({summary['config']['sympy_timeout']:g} s limit)"))
    lines = [
        f"## Integration Bee: {summary['config']['problem_set']} ({len(problems)} problems)",
        "",
        f"| system | samples/problem | accuracy [95% CI] | pass@{k} | majority vote | answered | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in systems:
        s = summary[key]
        samples = k if key == "model" else 1
        solved = f" ({s['solved']}/{s['count']})" if "solved" in s else ""
        pass_k = _pct(s.get(f"pass@{samples}", s["accuracy"]))
        majority = _pct(s.get("majority_vote_accuracy"))
        wall = summary["wall_time_s"][key]
        if s.get("accuracy_ci95"):
            low, high = s["accuracy_ci95"]
            solved += f" [{_pct(low)}, {_pct(high)}]"
        lines.append(
            f"| {label} | {samples} | {_pct(s['accuracy'])}{solved} | {pass_k} | {majority} "
            f"| {_pct(s['answer_rate'])} | {wall:.0f} s |"
        )
    lines += ["", "| problem | " + " | ".join(key for key, _ in systems) + " |", "|---|" + "---|" * len(systems)]
    for i, problem in enumerate(problems):
        cells = []
        for key, _ in systems:
            c = per_problem[key][i]
            cells.append(f"{sum(c)}/{len(c)}" if isinstance(c, list) else ("✓" if c else "✗"))
        lines.append(f"| {problem['id']} | " + " | ".join(cells) + " |")
    if summary.get("unverifiable"):
        lines += [
            "",
            "Flagged in the problem data as not verified (see their verification notes; they stay in "
            "the denominator): " + ", ".join(summary["unverifiable"]) + ".",
        ]
    if summary.get("excluded"):
        lines += [
            "",
            "Excluded from the scores (their integrand contradicts their official answer; see their notes): "
            + ", ".join(summary["excluded"])
            + ".",
        ]
    return "\n".join(lines) + "\n"


def evaluate_model(
    model: Any = "default",
    problem_set: str = "mit-2025",
    output_dir: str | os.PathLike = "outputs/evaluate",
    tokenizer: Any = None,
    **kwargs,
) -> dict:
    """Evaluate a model (and sympy) on an Integration Bee problem set; write and return the summary.

    Args:
        model: ``"default"`` (embedded SmolLM2), a Hub id or local path, or an in-memory transformers
            model (then pass ``tokenizer``).
        problem_set: a bundled set name or a ``.jsonl`` path (see :func:`ladder_hf.problems.load_problems`).
        output_dir: where outputs go; an earlier run there with the same settings is resumed.
        **kwargs: any other :class:`EvaluationConfig` field (num_samples, max_new_tokens, ...).

    Example:
        >>> s = evaluate_model("default", "mit-2025", "outputs/eval", num_samples=1)  # doctest: +SKIP
        >>> sorted(s)  # doctest: +SKIP
        ['config', 'model', 'output_dir', 'sympy', 'wall_time_s']
    """
    name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", "in-memory")
    config = EvaluationConfig(model=str(name), problem_set=problem_set, output_dir=str(output_dir), **kwargs)
    return run(config, model=None if isinstance(model, str) else model, tokenizer=tokenizer)


def run(config: EvaluationConfig, model=None, tokenizer=None) -> dict:
    """Run an evaluation described by ``config`` (what ``ladder-hf evaluate`` calls)."""
    # arguments are checked before anything is written: a mistyped set must not lock the folder
    problems = load_problems(config.problem_set)
    if model is None:
        from ladder_hf.models import check_model_available

        check_model_available(config.model)
    if config.limit:
        problems = problems[: config.limit]
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, config)
    references = [_reference(p) for p in problems]
    metric = _metric()
    wall: dict[str, float] = {}

    rows = generate_completions(problems, config, out / "completions.jsonl", model=model, tokenizer=tokenizer)
    scoring_began = time.perf_counter()
    k = config.num_samples
    by_problem = [[r["completion"] for r in rows[i * k : (i + 1) * k]] for i in range(len(problems))]
    model_scores = metric.compute(
        predictions=[c[0] for c in by_problem] if k == 1 else by_problem,
        references=references,
        answer_format=config.answer_format,
        timeout=config.verify_timeout,
    )
    # Generation time is summed from the rows, so a resumed run reports the whole job, not the resume.
    wall["model"] = sum(float(r.get("seconds", 0.0)) for r in rows) + time.perf_counter() - scoring_began
    summary: dict[str, Any] = {"config": dataclasses.asdict(config), "output_dir": str(out)}
    # Bundled rows flag problems whose official answer could not be verified; they stay in the denominator,
    # except excluded ones (an integrand that contradicts its official answer), which the metric leaves out.
    summary["unverifiable"] = [p["id"] for p in problems if p.get("verified") is False and not p.get("excluded")]
    summary["excluded"] = [p["id"] for p in problems if p.get("excluded")]
    summary["model"] = _headline(model_scores, k)
    per_problem = {"model": model_scores["correct"]}
    results = [
        {
            "system": "model",
            "id": p["id"],
            "answers": _as_list(model_scores["answers"][i]),
            "correct": _as_list(model_scores["correct"][i]),
            "reasons": _as_list(model_scores["reasons"][i]),
        }
        for i, p in enumerate(problems)
    ]

    if config.sympy_baseline:
        sympy_rows = run_sympy_baseline(problems, out / "sympy.jsonl", timeout=config.sympy_timeout)
        scoring_began = time.perf_counter()
        sympy_scores = metric.compute(
            predictions=[r["answer"] or "" for r in sympy_rows],
            references=references,
            answer_format="bare",
            timeout=config.verify_timeout,
        )
        wall["sympy"] = sum(float(r.get("seconds", 0.0)) for r in sympy_rows) + time.perf_counter() - scoring_began
        summary["sympy"] = _headline(sympy_scores, 1)
        per_problem["sympy"] = sympy_scores["correct"]
        results += [
            {
                "system": "sympy",
                "id": p["id"],
                "answers": [r["answer"]],
                "status": r["status"],
                "correct": [sympy_scores["correct"][i]],
                "reasons": [sympy_scores["reasons"][i]],
            }
            for i, (p, r) in enumerate(zip(problems, sympy_rows, strict=True))
        ]
    summary["wall_time_s"] = {key: round(value, 1) for key, value in wall.items()}

    write_jsonl(out / "results.jsonl", results)
    write_json(out / "summary.json", summary)
    atomic_write(out / "summary.md", render_markdown(summary, problems, per_problem))
    return summary


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _check_resume(out: Path, config: EvaluationConfig) -> None:
    settings = {key: getattr(config, key) for key in _GENERATION_KEYS}
    path = out / "run_config.json"
    if config.overwrite:
        for name in ("completions.jsonl", "sympy.jsonl", "results.jsonl", "summary.json", "summary.md"):
            (out / name).unlink(missing_ok=True)
    check_run_settings(path, settings, what="run", check=not config.overwrite)


def check_run_settings(path: Path, settings: dict, what: str = "run", check: bool = True) -> None:
    """Refuse to resume into a folder whose recorded settings (``path``, JSON) differ from ``settings``;
    then record ``settings``. Shared by every resumable command so a rerun never mixes two runs."""
    if check and path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in settings if before.get(key) != settings[key])
        if changed:
            raise ValueError(
                f"{path.parent} holds a {what} with different settings ({', '.join(changed)}); "
                "use another --output_dir or pass --overwrite"
            )
    write_json(path, settings)


def _setup_logging() -> None:
    """Our progress lines at INFO on stderr. Only the ``ladder_hf`` logger: a handler on the root logger
    would print every library warning a second time (huggingface_hub and datasets have their own)."""
    package = logging.getLogger("ladder_hf")
    if not any(getattr(h, "_ladder_hf", False) for h in package.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._ladder_hf = True  # one handler however often main() runs in a process
        package.addHandler(handler)
    package.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """``ladder-hf evaluate [--model M] [--problem_set mit-2025] [--num_samples K] ...``"""
    from transformers import HfArgumentParser

    from ladder_hf.metrics import register

    _setup_logging()
    register()  # the explicit step, so a later evaluate.load("integration_bee") works by name; never raises
    parser = HfArgumentParser(EvaluationConfig)
    parser.prog = "ladder-hf evaluate"
    (config,) = parser.parse_args_into_dataclasses(args=argv)
    summary = run(config)
    print((Path(config.output_dir) / "summary.md").read_text(encoding="utf-8"))
    print(f"outputs: {config.output_dir}")
    return 0 if summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
