"""The LADDER trainer: TRL's ``GRPOTrainer`` plus reward timing, held-out scores and a LADDER model card.

Example:
    >>> from ladder_hf.trainer import LadderGRPOTrainer
    >>> issubclass(LadderGRPOTrainer, __import__("trl").GRPOTrainer)
    True
"""

from __future__ import annotations

import contextlib
import functools
import os
import re

from huggingface_hub import ModelCard
from trl import GRPOTrainer

from ladder_hf.callbacks import RewardTimer


class LadderGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` that logs reward timing and held-out scores and writes a LADDER model card.

    Args (beyond ``GRPOTrainer``'s):
        reward_timer (:class:`~ladder_hf.callbacks.RewardTimer`, *optional*): its metrics join each log.
        card_info (`dict`, *optional*): facts of the run for the model card (:func:`ladder_card_section`).
    """

    def __init__(self, *args, reward_timer: RewardTimer | None = None, card_info: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reward_timer = reward_timer
        self.card_info = dict(card_info or {})
        self._pending_logs: dict[str, float] = {}

    def _timed(self, phase: str):
        return self.reward_timer.phase(phase) if self.reward_timer is not None else contextlib.nullcontext()

    # Timed so the log says where a step's time goes (timing/generate_seconds, timing/loss_seconds, ...).
    def _generate_single_turn(self, *args, **kwargs):
        with self._timed("generate"), self._stop_strings():
            return super()._generate_single_turn(*args, **kwargs)

    @contextlib.contextmanager
    def _stop_strings(self):
        """Make ``generation_kwargs: {stop_strings: [...]}`` work on the transformers path.

        transformers stops at ``GenerationConfig.stop_strings`` only when ``generate`` is given the
        tokenizer, which TRL does not pass; for the length of one generation call the model's
        ``generate`` gets it. Stopping at ``</answer>`` ends a completion where the reward stops reading,
        so a group is not held up by one sample that keeps writing after its answer.
        """
        config = getattr(self, "generation_config", None)
        if self.use_vllm or config is None or not getattr(config, "stop_strings", None):
            yield
            return
        model = self.accelerator.unwrap_model(self.model)
        tokenizer = getattr(self, "_tokenizer", None) or self.processing_class
        model.generate = functools.partial(type(model).generate, model, tokenizer=tokenizer)
        try:
            yield
        finally:
            del model.generate

    def _prepare_inputs(self, generation_batch):
        with self._timed("prepare"):
            return super()._prepare_inputs(generation_batch)

    def training_step(self, *args, **kwargs):
        with self._timed("training_step"):
            return super().training_step(*args, **kwargs)

    def add_pending_logs(self, metrics: dict[str, float]) -> None:
        """Metrics (e.g. held-out scores) to add to the next training log."""
        self._pending_logs.update(metrics)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training and self.reward_timer is not None:
            logs.update(self.reward_timer.flush())
        logs.update(self._pending_logs)
        self._pending_logs = {}
        super().log(logs, start_time)

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        from ladder_hf.models import hub_model_id

        # TRL links its template to hub_model_id and to a base_model it only knows for Hub ids: without a
        # push, or for the embedded model (loaded from a cache folder), it writes huggingface.co/None.
        model_id = self.hub_model_id or self.args.hub_model_id or self.args.output_dir
        model_name = model_name or str(model_id).rstrip("/").rsplit("/", 1)[-1]
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        if not self.is_world_process_zero():
            return
        path = os.path.join(self.args.output_dir, "README.md")
        card = ModelCard.load(path)
        info = dict(self.card_info, steps=self.state.global_step)
        loaded = getattr(self.model.config, "_name_or_path", None) or info.get("base_model")
        base_model = hub_model_id(loaded)
        card.data.base_model = base_model
        if base_model:
            info["base_model"] = base_model
        dataset = info.get("dataset")
        if dataset and re.fullmatch(r"[\w.-]+/[\w.-]+", str(dataset)) and not os.path.exists(str(dataset)):
            card.data.datasets = [dataset]
        base = f"[{base_model}](https://huggingface.co/{base_model})" if base_model else f"`{info.get('base_model')}`"
        text = re.sub(
            r"(?m)^This model is a fine-tuned version of .*$",
            f"This model is a fine-tuned version of {base}.",
            card.text,
        )
        quick_start = _quick_start(str(model_id), info.get("prompt") or "default")
        text = re.sub(r"(?s)## Quick start\n.*?(?=\n## )", lambda _: quick_start + "\n", text, count=1)
        # whatever else the template linked to a missing id keeps its label and loses the dead link
        text = re.sub(r"\[([^\]]*)\]\(https://huggingface\.co/(?:datasets/)?None\)", r"\1", text)
        card.text = text.rstrip() + "\n\n" + ladder_card_section(info) + "\n"
        card.save(path)


def _quick_start(model_id: str, prompt: str) -> str:
    """The card's quick start: ask the trained model an integral with the prompt it was trained on."""
    return f"""## Quick start

```python
from transformers import pipeline

from ladder_hf.problems import build_messages  # pip install ladder-hf: the prompt this model was trained with

generator = pipeline("text-generation", model={model_id!r})
messages = build_messages({{"integrand": "x*exp(x)", "lower": "", "upper": ""}}, {prompt!r})
output = generator(messages, max_new_tokens=128, return_full_text=False)[0]
print(output["generated_text"])  # the answer comes as <answer>...</answer>
```
"""


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
        ("contamination_guard", "contamination guard"),
        ("level_selection", "level selection"),
    ]
    for key, label in labels:
        if info.get(key) not in (None, "", []):
            lines.append(f"| {label} | {info[key]} |")
    scores = info.get("eval_scores") or {}
    if scores:
        lines += ["", "### Held-out scores (greedy, one answer per problem)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(scores.items())]
    return "\n".join(lines)
