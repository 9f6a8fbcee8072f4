"""The LADDER trainer: TRL's ``GRPOTrainer`` plus reward timing, held-out scores and a LADDER model card.

Example:
    >>> from ladder_hf.trainer import LadderGRPOTrainer
    >>> issubclass(LadderGRPOTrainer, __import__("trl").GRPOTrainer)
    True
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import random
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence

import torch
from huggingface_hub import ModelCard
from trl import GRPOTrainer

from ladder_hf.callbacks import RewardTimer
from ladder_hf.generation import cache_argument, distinct_rows, generate_with_shared_prefill, output_cache
from ladder_hf.models import bf16_copy
from ladder_hf.store import write_json
from ladder_hf.training_data import problem_key

# TRL's unwrap_model_for_generation reads the deprecated `is_gradient_checkpointing` alias on every
# generation, so transformers printed the same FutureWarning at every step of a run. It is TRL's call to
# update, not the user's: silence that one message only.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

logger = logging.getLogger(__name__)


EDGE_SAMPLER_FILE = "edge_sampler.json"


class EdgeSampler(torch.utils.data.Sampler):
    """GRPO's prompt sampler with LADDER's level selection kept current while the model learns.

    The pool is every row whose solve rate was measured before training. A row's level is its latest
    measurement: that solve rate, then the share of right answers in the last GRPO group that sampled it
    (:meth:`update`, which :class:`LadderGRPOTrainer` calls with every step's rewards, so the measurement
    costs nothing). Each prompt is drawn from the edge (level strictly inside ``(low, high)``, the rows
    whose group advantages are not all zero) and, with probability ``explore``, from the rest of the pool:
    a row the model has started to solve joins the edge, and one that a whole group solved (or none of it
    did) leaves. A static selection, measured once, is learned within a few passes and then trains on
    groups with no advantage left. Rows of unknown level (``None``) are never drawn. When no row is left on
    the edge, the trainer stops.

    Batches have the layout of TRL's ``RepeatSampler`` (each prompt ``mini_repeat_count`` times in a row,
    each batch of ``batch_size`` prompts ``repeat_count`` times; :meth:`set_layout`). Every process draws
    the same prompts, as GRPO needs: the draws are seeded and the updates read the rewards of all processes.

    Example:
        >>> sampler = EdgeSampler(["x||", "x**2||", "x**3||"], [0.0, 0.5, 1.0], explore=0.0)
        >>> sorted(set(sampler.draw(4)))
        [1]
        >>> sampler.update(["x**2||"] * 4, [1.0] * 4)  # a whole group right: the row leaves the edge
        >>> sampler.update(["x||"] * 4, [1.0, 0.0, 0.0, 0.0])  # one right answer: the row joins it
        >>> sorted(set(sampler.draw(4))), sampler.log_metrics()["level/edge_rows"]
        ([0], 1)
    """

    def __init__(
        self,
        keys: Sequence[str],
        rates: Sequence[float | None],
        *,
        low: float = 0.0,
        high: float = 1.0,
        explore: float = 0.25,
        seed: int = 0,
    ):
        if len(keys) != len(rates):
            raise ValueError(f"{len(keys)} keys for {len(rates)} solve rates")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore is a probability, got {explore}")
        self.keys = list(keys)
        self.levels: dict[str, float | None] = dict(zip(self.keys, rates, strict=True))
        self.low, self.high, self.explore = low, high, explore
        self.rng = random.Random(seed)
        self.joined = self.left = self.drawn = self.explored = 0
        self.mini_repeat_count = self.batch_size = self.repeat_count = 1

    def set_layout(self, mini_repeat_count: int, batch_size: int, repeat_count: int) -> EdgeSampler:
        self.mini_repeat_count, self.batch_size, self.repeat_count = mini_repeat_count, batch_size, repeat_count
        return self

    def on_edge(self, key: str) -> bool:
        level = self.levels.get(key)
        return level is not None and self.low < level < self.high

    def draw(self, n: int) -> list[int]:
        """``n`` row indices: from the edge, or with probability ``explore`` from the rest of the pool."""
        edge, rest = [], []
        for i, key in enumerate(self.keys):
            if self.levels[key] is not None:
                (edge if self.on_edge(key) else rest).append(i)
        if not edge and not rest:
            raise ValueError("no row of the pool has a measured solve rate")
        if not edge:
            explored = n
        elif not rest:
            explored = 0
        else:
            explored = sum(self.rng.random() < self.explore for _ in range(n))
        self.drawn += n
        self.explored += explored
        return self._choose(edge, n - explored) + self._choose(rest, explored)

    def _choose(self, pool: list[int], n: int) -> list[int]:
        # distinct prompts in a batch where the pool allows it
        return self.rng.sample(pool, n) if n <= len(pool) else [self.rng.choice(pool) for _ in range(n)]

    def update(self, keys: Sequence[str], scores: Sequence[float | None]) -> None:
        """Set each key's level to the mean score of its completions (0 wrong, 1 right; ``None``/NaN unscored)."""
        grouped: dict[str, list[float]] = defaultdict(list)
        for key, score in zip(keys, scores, strict=True):
            if score is not None and not math.isnan(score) and key in self.levels:
                grouped[key].append(min(max(float(score), 0.0), 1.0))
        for key, group in grouped.items():
            before = self.on_edge(key)
            self.levels[key] = sum(group) / len(group)
            after = self.on_edge(key)
            self.joined += after and not before
            self.left += before and not after

    def log_metrics(self) -> dict[str, float]:
        """``level/edge_rows`` now, and since the start ``level/joined``, ``level/left``, ``level/explored_frac``."""
        return {
            "level/edge_rows": sum(self.on_edge(k) for k in self.keys),
            "level/joined": self.joined,
            "level/left": self.left,
            "level/explored_frac": self.explored / self.drawn if self.drawn else 0.0,
        }

    def save(self, path: str) -> None:
        state = {k: getattr(self, k) for k in ("levels", "joined", "left", "drawn", "explored")}
        write_json(path, {**state, "rng": self.rng.getstate()})

    def load(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        self.levels.update({k: v for k, v in state["levels"].items() if k in self.levels})
        for name in ("joined", "left", "drawn", "explored"):
            setattr(self, name, state[name])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))

    def __iter__(self):
        for _ in range(len(self.keys) // self.batch_size):
            batch = self.draw(self.batch_size)
            for _ in range(self.repeat_count):
                for index in batch:
                    yield from [index] * self.mini_repeat_count

    def __len__(self) -> int:
        return (len(self.keys) // self.batch_size) * self.batch_size * self.mini_repeat_count * self.repeat_count


class LadderGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` that logs reward timing and held-out scores and writes a LADDER model card.

    Args (beyond ``GRPOTrainer``'s):
        reward_timer (:class:`~ladder_hf.callbacks.RewardTimer`, *optional*): its metrics join each log.
        card_info (`dict`, *optional*): facts of the run for the model card (:func:`ladder_card_section`).
        share_prompt (`bool`, *optional*, defaults to `True`): run each distinct prompt of a batch through the
            model once, for generation (:func:`generate_with_shared_prefill`) and for the loss
            (:func:`shared_prompt_logps`), instead of once per completion. Exact up to float rounding; used
            where it is safe (one process, text only, no activation checkpointing), TRL's own path elsewhere.
        edge_sampler (:class:`EdgeSampler`, *optional*): draws the training prompts instead of TRL's sampler,
            one key per ``train_dataset`` row, and is updated with column ``level_reward`` of every step's rewards
            (the correctness reward). Its state is saved with each checkpoint and restored on resume.
        level_reward (`int`, *optional*, defaults to `0`): index in ``reward_funcs`` of the correctness reward.
    """

    def __init__(
        self,
        *args,
        reward_timer: RewardTimer | None = None,
        card_info: dict | None = None,
        share_prompt: bool = True,
        edge_sampler: EdgeSampler | None = None,
        level_reward: int = 0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.edge_sampler = edge_sampler
        self.level_reward = level_reward
        self.reward_timer = reward_timer
        self.card_info = dict(card_info or {})
        self._pending_logs: dict[str, float] = {}
        # Two forward passes before one backward is not something DDP, DeepSpeed or FSDP expect, gradient
        # checkpointing turns the prompt's key/value cache off, and prompt-learning PEFT adds virtual tokens.
        peft_config = getattr(self.model, "active_peft_config", None)
        self.share_prompt = (
            share_prompt
            and self.accelerator.num_processes == 1
            and not self.args.gradient_checkpointing
            and not getattr(peft_config, "is_prompt_learning", False)
        )

    def _timed(self, phase: str):
        return self.reward_timer.phase(phase) if self.reward_timer is not None else contextlib.nullcontext()

    # Timed so the log says where a step's time goes (timing/generate_seconds, timing/loss_seconds, ...).
    def _generate_single_turn(self, *args, **kwargs):
        with self._timed("generate"), self._fast_generate():
            return super()._generate_single_turn(*args, **kwargs)

    @contextlib.contextmanager
    def _fast_generate(self):
        """For one generation call on the transformers path, the model's ``generate`` shares each prompt's prefill
        and stops at ``generation_kwargs: {stop_strings: [...]}``.

        GRPO samples a group of completions of the same prompt, and ``generate`` would run the prompt once per
        completion (on a CPU the prefill of 8 copies of a 165-token prompt costs as much as 25 decoding steps):
        :func:`generate_with_shared_prefill` runs it once per distinct prompt. transformers stops at
        ``GenerationConfig.stop_strings`` only when ``generate`` is given the tokenizer, which TRL does not
        pass; stopping at ``</answer>`` ends a completion where the reward stops reading, so a group is not held
        up by one sample that keeps writing after its answer. A ``bf16`` run on a CPU samples from a bf16 copy
        of the weights (:meth:`_bf16_sampler`).
        """
        if self.use_vllm or getattr(self, "generation_config", None) is None:
            yield
            return
        model = self.accelerator.unwrap_model(self.model)
        kwargs = {}
        if getattr(self.generation_config, "stop_strings", None):
            kwargs["tokenizer"] = getattr(self, "_tokenizer", None) or self.processing_class
        share = self.share_prompt
        sampler = self._bf16_sampler(model)
        if not kwargs and not share and sampler is model:
            yield
            return
        generate = generate_with_shared_prefill if share else type(model).generate
        sample = functools.partial(generate, sampler, **kwargs)
        if sampler is not model:
            # the copy holds bf16 weights: autocast would only add casts to ops that already run in bf16
            sample = torch.autocast("cpu", enabled=False)(sample)
        model.generate = sample
        try:
            yield
        finally:
            del model.generate

    def _bf16_sampler(self, model):
        """The model that samples completions: ``model`` itself, or on a CPU with ``bf16`` a bf16 copy of it.

        On a CPU, autocast keeps float32 weights and casts each one to bf16 at every matrix product, so a
        decoding step, which reads every weight for a handful of rows, was no faster in bf16 than in float32
        (104 vs 99 ms on an AVX512-BF16 machine; ``benchmarks/decode_step.py``). A copy whose weights are
        bf16 decodes in 78-81 ms, and in 54 ms with the attention bf16 CPU runs use
        (:func:`ladder_hf.models.grouped_eager_attention`). It is refreshed from the trained weights whenever
        an optimizer step has changed them, so it samples from the current policy at bf16 precision, as a
        bf16 vLLM server would; the loss still runs under autocast on the float32 weights.
        """
        # one process: under DeepSpeed or FSDP the parameters are shards, and a copy would be one shard
        if not (self.args.bf16 and self.accelerator.device.type == "cpu" and self.accelerator.num_processes == 1):
            return model
        sampler = getattr(self, "_sampler_copy", None)
        if sampler is None:
            # a fresh copy holds the current weights: nothing to refresh until the next optimizer step
            sampler = self._sampler_copy = bf16_copy(model)
            self._sampler_step = self.state.global_step
        elif self._sampler_step != self.state.global_step:
            with torch.no_grad():
                for target, source in zip(sampler.parameters(), model.parameters(), strict=True):
                    target.copy_(source)
            self._sampler_step = self.state.global_step
        return sampler

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **multimodal,
    ):
        if not self.share_prompt or compute_aux_loss or any(v is not None for v in multimodal.values()):
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size,
                compute_entropy,
                compute_aux_loss,
                **multimodal,
            )
        with self.accelerator.autocast():
            logps, entropies = shared_prompt_logps(
                model, input_ids, attention_mask, logits_to_keep, self.temperature, compute_entropy
            )
        return logps, entropies, None

    def _get_train_sampler(self, dataset=None):
        if self.edge_sampler is None:
            return super()._get_train_sampler(dataset)
        return self.edge_sampler.set_layout(
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
        )

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.edge_sampler is not None and self.model.training:
            from accelerate.utils import gather_object

            # the rewards are gathered from all processes, so are the keys: every process keeps the same levels
            keys = gather_object([problem_key(row) for row in inputs])
            self.edge_sampler.update(keys, rewards[:, self.level_reward].tolist())
            metrics = self.edge_sampler.log_metrics()
            self.add_pending_logs(metrics)
            if metrics["level/edge_rows"] == 0 and not self.control.should_training_stop:
                # Past this point nearly every prompt is a row the model always or never solves, and of the two
                # runs measured that far (docs/results.md) one collapsed: stop, as the selection refuses to start
                # with an empty edge.
                logger.warning(
                    "no training row is at the model's level any more (%d joined and %d left the edge): stopping "
                    "after step %d of %d; grow the trees below the rows never solved (deepen_rounds) to go on",
                    metrics["level/joined"],
                    metrics["level/left"],
                    self.state.global_step + 1,
                    self.state.max_steps,
                )
                self.control.should_training_stop = True
        return rewards

    def _save_checkpoint(self, model, trial):
        # written before the Trainer's files, so a checkpoint complete by last_complete_checkpoint's test has it
        if self.edge_sampler is not None and self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            self.edge_sampler.save(os.path.join(folder, EDGE_SAMPLER_FILE))
        super()._save_checkpoint(model, trial)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if self.edge_sampler is not None and resume_from_checkpoint:
            from transformers.trainer_utils import get_last_checkpoint

            folder = (
                get_last_checkpoint(self.args.output_dir)
                if resume_from_checkpoint is True
                else str(resume_from_checkpoint)
            )
            path = os.path.join(folder or "", EDGE_SAMPLER_FILE)
            if os.path.isfile(path):
                self.edge_sampler.load(path)
            else:
                warnings.warn(
                    f"{path} is missing: the levels restart from the solve rates measured before training", stacklevel=2
                )
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

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


def length_buckets(completion_mask: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Rows of a right-padded completion batch grouped by length: ``[(rows, length), ...]``, longest first.

    A row joins the current group unless it is at most half as long as the group's longest row, so every row
    is padded to less than twice its length and there are at most log2(columns) + 1 groups. Rows whose mask is
    all zero (nothing to score) are in no group.

    Example:
        >>> import torch
        >>> mask = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0],
        ...                      [0, 0, 0, 0, 0, 0, 0, 0]])
        >>> [(rows.tolist(), length) for rows, length in length_buckets(mask)]
        [([1, 2], 8), ([0], 2)]
    """
    width = completion_mask.size(1)
    # the last scored position + 1 (a mask with holes still counts to its last one)
    ends = torch.where(completion_mask.any(1), width - completion_mask.flip(1).int().argmax(1), 0).tolist()
    buckets: list[tuple[list[int], int]] = []
    for row in sorted(range(len(ends)), key=lambda r: -ends[r]):
        if ends[row] == 0:
            break
        if buckets and 2 * ends[row] > buckets[-1][1]:
            buckets[-1][0].append(row)
        else:
            buckets.append(([row], ends[row]))
    return [(torch.tensor(rows, device=completion_mask.device), length) for rows, length in buckets]


def shared_prompt_logps(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    temperature: float = 1.0,
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities (and entropies) of the completion tokens, running each distinct prompt once and
    no completion past its end.

    GRPO scores a group of completions of the *same* prompt. TRL runs the model over every
    ``prompt + completion`` row, so a group of 8 computes its prompt 8 times, and on a CPU its fused LM
    head projects every position, prompt included, onto the vocabulary. Here the batch's distinct prompts
    go through the model once, in one forward with a key/value cache, the cache is indexed out to every
    row, and only the completion tokens are run on top of it and projected. The completions run in groups
    of similar length (:func:`length_buckets`), each cut at its longest row: TRL pads every row to the
    longest completion of the batch, and with completions of up to 128 tokens one that runs to the cap
    while the others stop at ~40 made most of the loss's tokens padding. The cache keeps its graph, so
    gradients reach the prompt's activations as before: the result equals TRL's up to float rounding.

    Args:
        model: a causal LM whose forward takes a key/value cache and ``logits_to_keep`` (transformers').
        input_ids, attention_mask: ``(batch, prompt + completion)``, prompts left-padded, completions
            right-padded, as ``GRPOTrainer`` builds them.
        logits_to_keep: the completion length (the last ``logits_to_keep`` columns).
        temperature: the logits are divided by it, as in TRL.
        compute_entropy: also return the entropy of each next-token distribution.

    Returns:
        ``(logps, entropies)``, each ``(batch, logits_to_keep)``, zero at padded completion positions;
        ``entropies`` is ``None`` unless asked for.

    Example:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
        ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)).eval()
        >>> ids = torch.tensor([[0, 5, 6, 7, 8], [5, 6, 7, 9, 10], [0, 0, 6, 7, 8]])
        >>> mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
        >>> logps, _ = shared_prompt_logps(model, ids, mask, logits_to_keep=2)
        >>> full = torch.log_softmax(model(input_ids=ids[1:2]).logits[0, -3:-1], -1)
        >>> torch.allclose(logps[1], full.gather(-1, ids[1, -2:, None])[:, 0], atol=1e-5)
        True
    """
    from transformers import DynamicCache

    k = logits_to_keep
    prompt_ids, prompt_mask = input_ids[:, :-k], attention_mask[:, :-k]
    completion_ids, completion_mask = input_ids[:, -k:], attention_mask[:, -k:]
    prefix = None
    if prompt_ids.size(1) > 1:
        # Every prompt column but the last, once per distinct prompt; the last one goes with the completion,
        # so the first completion token is scored from the same forward as the rest. Positions count
        # columns, padding included, as in TRL's forward: rotary attention only sees their differences.
        first, inverse = distinct_rows(prompt_ids, prompt_mask)
        output = model(
            input_ids=prompt_ids[first, :-1], attention_mask=prompt_mask[first, :-1], use_cache=True, logits_to_keep=1
        )
        prefix = [(keys, values) for keys, values, *_ in output_cache(output)]
    logps = torch.zeros(completion_ids.shape, dtype=torch.float32, device=input_ids.device)
    entropies = torch.zeros_like(logps) if compute_entropy else None
    for rows, length in length_buckets(completion_mask):
        cache = None
        if prefix is not None:
            selected = [(keys[inverse[rows]], values[inverse[rows]]) for keys, values in prefix]
            cache = DynamicCache(selected, config=model.config)  # the config: sliding-window layers stay so
        tokens = torch.cat([prompt_ids[rows, -1:], completion_ids[rows, : length - 1]], dim=1)
        mask = torch.cat([prompt_mask[rows], completion_mask[rows, : length - 1]], dim=1)
        logits = model(input_ids=tokens, attention_mask=mask, use_cache=True, **{cache_argument(model): cache}).logits
        logits = logits.float()
        if temperature != 1.0:  # skipped at 1: a pass over the (tokens x vocabulary) logits, and another in backward
            logits = logits / temperature
        log_softmax = torch.log_softmax(logits, dim=-1)
        invalid = ~completion_mask[rows, :length].bool()
        targets = completion_ids[rows, :length, None]
        logps[rows, :length] = log_softmax.gather(-1, targets).squeeze(-1).masked_fill(invalid, 0.0)
        if compute_entropy:
            entropies[rows, :length] = (-(log_softmax.exp() * log_softmax).sum(-1)).masked_fill(invalid, 0.0)
    return logps, entropies


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
