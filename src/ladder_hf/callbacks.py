"""Trainer callbacks of the LADDER recipes: reward timing and held-out evaluation during training.

* :class:`RewardTimer` wraps reward functions and, with :class:`RewardTimerCallback`, logs the reward
  share of each optimizer step (``timing/reward_share``), next to TRL's own reward statistics.
* :class:`HeldOutEvalCallback` scores a held-out problem set every N steps with the Integration Bee
  metric (``integration_bee/accuracy``): greedy answers from the current policy through the generation
  layer, split across processes and gathered.

Example:
    >>> timer = RewardTimer()
    >>> timed = timer.wrap(lambda prompts, completions, **kw: [1.0] * len(completions))
    >>> timed(prompts=["p"], completions=["c"])
    [1.0]
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback

from ladder_hf.problems import ANSWER_STOP, Prompt, as_problems, build_messages

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
        self._phases: dict[str, float] = defaultdict(float)  # seconds per phase in the current step
        self._phase_steps: list[dict[str, float]] = []  # per step since the last flush
        self.phase_history: list[dict[str, float]] = []  # per step since creation

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

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a phase of the step (the trainer times ``generate``, ``prepare`` and ``training_step``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._phases[name] += time.perf_counter() - start

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
            phases = _step_phases(now - self._step_start, reward, self._phases)
            self._phases = defaultdict(float)
            self._phase_steps.append(phases)
            self.phase_history.append(phases)
        self._step_start = None

    def flush(self) -> dict[str, float]:
        """Metrics since the last flush: mean step/reward seconds, reward share, per-function seconds per step."""
        with self._lock:
            steps, per_func, phases = self._steps, dict(self._per_func), self._phase_steps
            self._steps, self._per_func, self._phase_steps = [], defaultdict(float), []
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
        for name in STEP_PHASES:
            if any(name in p for p in phases):
                metrics[f"timing/{name}_seconds"] = sum(p.get(name, 0.0) for p in phases) / len(phases)
        return metrics


# Where an optimizer step's wall time goes, from the phases LadderGRPOTrainer times: generation,
# the rest of scoring (tokenising, log-probabilities, advantages), the rewards, the loss's forward and
# backward, and what is left (optimizer, logging, callbacks).
STEP_PHASES = ("generate", "score", "reward", "loss", "other")


def _step_phases(step: float, reward: float, timed: Mapping[str, float]) -> dict[str, float]:
    if "training_step" not in timed:
        return {}
    prepare, generate = timed.get("prepare", 0.0), timed.get("generate", 0.0)
    phases = {
        "generate": generate,
        "score": max(0.0, prepare - generate - reward),
        "reward": reward,
        "loss": max(0.0, timed["training_step"] - prepare),
    }
    phases["other"] = max(0.0, step - sum(phases.values()))
    return phases


class RewardTimerCallback(TrainerCallback):
    """Marks optimizer-step boundaries for a :class:`RewardTimer`."""

    def __init__(self, timer: RewardTimer):
        self.timer = timer

    def on_step_begin(self, args, state, control, **kwargs):
        self.timer.step_begin()

    def on_step_end(self, args, state, control, **kwargs):
        self.timer.step_end()


# ---------------------------------------------------------------------------------------------
# Held-out evaluation
# ---------------------------------------------------------------------------------------------


def load_bee_metric():
    """``evaluate.load("integration_bee")``, registering the metric shipped with ladder_hf first (offline);
    the installed class when the modules cache cannot be written."""
    from ladder_hf.metrics import load

    return load("integration_bee")


def score_completions(problems: Sequence[Mapping[str, Any]], completions: list[str], metric=None) -> dict[str, float]:
    """Integration Bee scores of one completion per problem, as training-log metrics.

    Only a tagged answer counts (``answer_format="tagged"``), as in the reward.

    Example:
        >>> score_completions([{"integrand": "2*x"}], ["<answer>x**2</answer>"])
        {'integration_bee/accuracy': 1.0, 'integration_bee/answer_rate': 1.0, 'integration_bee/count': 1.0}
    """
    metric = metric or load_bee_metric()
    references = [{"integrand": p.integrand, "lower": p.lower, "upper": p.upper} for p in as_problems(problems)]
    result = metric.compute(predictions=list(completions), references=references, answer_format="tagged")
    return {
        "integration_bee/accuracy": float(result["accuracy"]),
        "integration_bee/answer_rate": float(result["answer_rate"]),
        "integration_bee/count": float(result["count"]),
    }


def generate_answers(
    trainer, problems: Sequence[Mapping[str, Any]], prompt: Prompt | str, max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy answers from the trainer's current policy, split across processes and gathered (in order)."""
    from accelerate.utils import gather_object
    from trl.models import unwrap_model_for_generation

    from ladder_hf.generation import TransformersBackend

    accelerator = trainer.accelerator
    # every prompt travels with its index, so the gathered answers can be put back in order
    indexed = list(enumerate(problems))
    with (
        accelerator.split_between_processes(indexed) as local,
        unwrap_model_for_generation(trainer.model_wrapped, accelerator) as model,
    ):
        backend = TransformersBackend(model=model, tokenizer=trainer.processing_class, batch_size=batch_size)
        texts = backend.generate(
            [build_messages(p, prompt) for _, p in local],
            temperature=0,
            max_new_tokens=max_new_tokens,
            stop=ANSWER_STOP,
        )
    gathered = gather_object([(i, t[0]) for (i, _), t in zip(local, texts, strict=True)])
    return [text for _, text in sorted(gathered, key=lambda pair: pair[0])]


class HeldOutEvalCallback(TrainerCallback):
    """Scores ``problems`` every ``every`` optimizer steps (0: only when :meth:`evaluate` is called) and
    hands the scores to the trainer's next log (``trainer.add_pending_logs``)."""

    def __init__(
        self,
        trainer,
        problems: Sequence[Mapping[str, Any]],
        every: int = 0,
        prompt: Prompt | str = "default",
        max_new_tokens: int = 256,
        batch_size: int = 8,
    ):
        self.trainer, self.problems, self.every = trainer, list(problems), every
        self.prompt, self.max_new_tokens, self.batch_size = prompt, max_new_tokens, batch_size
        self.latest: dict[str, float] = {}
        self.last_step = -1
        self._metric = None

    def evaluate(self, step: int) -> dict[str, float]:
        completions = generate_answers(self.trainer, self.problems, self.prompt, self.max_new_tokens, self.batch_size)
        scores: dict[str, float] = {}
        if self.trainer.accelerator.is_main_process:
            self._metric = self._metric or load_bee_metric()
            scores = score_completions(self.problems, completions, self._metric)
        self.latest, self.last_step = scores, step
        return scores

    def on_step_end(self, args, state, control, **kwargs):
        if self.every > 0 and state.global_step % self.every == 0 and state.global_step != self.last_step:
            self.trainer.add_pending_logs(self.evaluate(state.global_step))
            control.should_log = True
