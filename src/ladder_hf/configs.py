"""Configuration dataclasses of the training recipes (open-r1 style: one YAML file, parsed by ``TrlParser``).

* :class:`ScriptArguments` (``recipes/grpo.py``): data, prompt, rewards, curriculum and held-out
  evaluation; extends ``trl.ScriptArguments``. Trainer options come from TRL's ``GRPOConfig`` and model
  options from ``ModelConfig`` in the same file.
* :class:`TTRLArguments` (``recipes/ttrl.py``): the problems TTRL adapts on and its per-problem budget.

Example:
    >>> from trl import GRPOConfig, ModelConfig, TrlParser
    >>> parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig))
    >>> args, _, _ = parser.parse_args_and_config(["--problems", "undergrad", "--curriculum", "depth", "--bf16=0"])
    >>> args.problems, args.curriculum, args.reward_funcs
    ('undergrad', 'depth', ['integration', 'format'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import trl

from ladder_hf.problems import DEFINITE_TEMPLATE, INDEFINITE_TEMPLATE, Prompt, resolve_prompt

CURRICULA = ("none", "depth", "difficulty", "depth_difficulty")
RESTORE_STRATEGIES = ("snapshot", "reload", "lora")
GENERATORS = ("symbolic", "model", "both")


@dataclass
class ScriptArguments(trl.ScriptArguments):
    """Data, prompt, reward, curriculum and evaluation options of the LADDER GRPO recipe.

    Parameters:
        > Parameters that control the training data

        dataset_name (`str`, *optional*):
            Variant data: a Hub dataset id, a local variants folder (``nodes.jsonl``, read through
            ``LadderDataset``), a folder ``datasets.load_dataset`` can read, or a .parquet/.jsonl/.json file.
            Rows need ``integrand``, ``lower``, ``upper``; ``depth`` and ``difficulty`` feed the curriculum.
        dataset_config (`str`, *optional*):
            Dataset configuration; for a variants folder or ``problems``, a ``LadderDataset`` config
            (default ``variants``: every kept variant, roots excluded; also ``all``, ``roots``, ``depth_N``).
        dataset_revision (`str`, *optional*):
            Branch, tag (e.g. ``v1.0``) or commit of the dataset.
        problems (`str`, *optional*):
            Instead of ``dataset_name``: a problem set (``mit-train``, ``undergrad``, a .jsonl); a variant
            tree is grown from it with the symbolic generator into ``<output_dir>/variants`` (resumable).
        variant_depth, variant_seed, variants_per_node, max_variants_per_root:
            Tree depth, generator seed, candidates per parent and kept variants per tree with ``problems``.
        max_train_samples (`int`, *optional*):
            Keep only this many training rows (after the curriculum ordering).
        solve_rate_samples (`int`, *optional*, defaults to `0`):
            LADDER's level selection: sample this many answers per row with the model before training and
            keep the rows whose solve rate lies strictly inside ``solve_rate_range`` (default ``[0, 1]``:
            neither always nor never solved). 0 turns it off.
        solve_rate_range (`list[float]`), solve_rate_max_new_tokens (`int`):
            The kept interval of solve rates, and the token budget of each sampled answer.
        dynamic_level (`bool`, *optional*, defaults to `False`):
            Keep the level selection current during training (needs ``solve_rate_samples``): every measured
            row stays in the pool, each GRPO group measures its row again, and prompts come from the rows
            on the edge now (:class:`~ladder_hf.trainer.EdgeSampler`). Training stops when no row is left on it.
        level_explore (`float`, *optional*, defaults to `0.25`):
            With ``dynamic_level``, the share of prompts drawn off the edge, so newly solvable rows can join it.
        curriculum (`str`, *optional*, defaults to `"none"`):
            Row order: ``none`` (shuffled, as in the paper), ``depth`` (deepest, i.e. easiest, first),
            ``difficulty`` or ``depth_difficulty``. Any ordering turns off ``GRPOConfig.shuffle_dataset``.

        > Parameters that control the prompt and the rewards

        system_prompt (`str`, *optional*, defaults to `"default"`):
            ``default``, ``few_shot`` or literal system-prompt text (see ``ladder_hf.problems.PROMPTS``).
        indefinite_template, definite_template (`str`):
            The user turn for a problem (``{integrand}``, ``{lower}``, ``{upper}`` are filled).
        reward_funcs (`list[str]`, *optional*, defaults to `["integration", "format"]`):
            Rewards by name: ours (``ladder_hf.rewards.REWARD_FUNCS``), TRL's (``think_format_reward``, ...) or a
            dotted import path; weights go in ``GRPOConfig.reward_weights``.
        verifier_timeout (`float`, *optional*, defaults to `2.0`):
            Seconds the verifier may spend on one answer (a timed-out answer gets one retry at 4x).
        share_prompt (`bool`, *optional*, defaults to `True`):
            Run each distinct prompt of a batch through the model once, for generation and for the loss,
            instead of once per completion (exact; the largest saving of a CPU step). ``false``: TRL's paths.
            Multi-process, multimodal and activation-checkpointed runs always use TRL's.

        > Parameters that control the held-out evaluation

        eval_set (`str`, *optional*):
            Problems scored during training (``mit-2025``, a .jsonl); also protected from the grown tree.
        eval_every_steps, eval_max_problems, eval_max_new_tokens, eval_batch_size:
            How often (0: at the end only), how many problems, tokens per answer, prompts per batch.
        allow_eval_overlap (`bool`, *optional*, defaults to `False`):
            Every training row is checked against the whole ``eval_set`` with the contamination guard; rows
            equivalent to an evaluation problem stop the run unless this is set.
        model_card_tags (`list[str]`): extra tags for the model card.
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
    solve_rate_samples: int = field(
        default=0,
        metadata={
            "help": "LADDER's level selection: before training, sample this many answers per training row with the "
            "model and keep only the rows whose solve rate lies strictly inside --solve_rate_range (the model's edge: "
            "neither always nor never solved). Rates are saved in <output_dir>/solve_rates.jsonl. 0 turns it off."
        },
    )
    solve_rate_range: list[float] = field(
        default_factory=lambda: [0.0, 1.0],
        metadata={"help": "Open interval (low high) of solve rates kept by --solve_rate_samples."},
    )
    solve_rate_max_new_tokens: int = field(
        default=64, metadata={"help": "Tokens per sampled answer when measuring solve rates."}
    )
    dynamic_level: bool = field(
        default=False,
        metadata={
            "help": "Keep the level selection current (needs --solve_rate_samples): all measured rows stay in the "
            "pool, each GRPO group re-measures its row, and prompts are drawn from the rows on the edge now; a row "
            "a whole group solves, or none of it does, leaves, and --level_explore of the prompts come from off "
            "the edge so rows can join. Training stops when no row is left on the edge."
        },
    )
    level_explore: float = field(
        default=0.25, metadata={"help": "With --dynamic_level: the share of prompts drawn from rows off the edge."}
    )
    system_prompt: str | None = field(
        default="default",
        metadata={
            "help": "The prompt: `default` (system prompt asking for the paper's <answer>...</answer> format), "
            "`few_shot` (a short instruction and three worked examples as real chat turns; what small models "
            "need), or any other text as the system prompt. See ladder_hf.problems.PROMPTS."
        },
    )
    indefinite_template: str | None = field(
        default=None,
        metadata={
            "help": "User turn for indefinite integrals; `{integrand}` is filled. Default: the prompt's own "
            f"(`{INDEFINITE_TEMPLATE}` for `default` and `few_shot`)."
        },
    )
    definite_template: str | None = field(
        default=None,
        metadata={
            "help": "User turn for definite integrals; `{integrand}`, `{lower}`, `{upper}` are filled. Default: the "
            f"prompt's own (`{DEFINITE_TEMPLATE}` for `default` and `few_shot`)."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["integration", "format"],
        metadata={
            "help": "Reward functions: our names (`integration`, `format`), TRL's (`think_format_reward`, ...) or "
            "a dotted import path (`my_pkg.rewards.my_reward`). "
            "Weights go in GRPOConfig's --reward_weights, one per function."
        },
    )
    verifier_timeout: float = field(
        default=2.0,
        metadata={"help": "Seconds the verifier may spend on one answer (timed-out answers get one retry at 4x)."},
    )
    share_prompt: bool = field(
        default=True,
        metadata={
            "help": "Run each distinct prompt of a batch through the model once, for generation and for the loss "
            "(exact); false: TRL's paths, once per completion. Multi-process, multimodal and activation-checkpointed "
            "runs always use TRL's."
        },
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
    allow_eval_overlap: bool = field(
        default=False,
        metadata={
            "help": "Train even on rows the contamination guard finds equivalent to a problem of --eval_set "
            "(default: refuse, naming them). The whole eval set is protected, not only the scored problems."
        },
    )
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
        if self.dynamic_level and self.solve_rate_samples <= 0:
            raise ValueError("dynamic_level keeps a measured level current: set solve_rate_samples > 0 as well")
        if self.dynamic_level and self.curriculum != "none":
            raise ValueError("dynamic_level draws the prompts by level, so it has no room for a curriculum order")

    def prompt(self) -> Prompt:
        """The :class:`~ladder_hf.problems.Prompt` every step of the run asks with (training rows, level
        selection, held-out evaluation): ``system_prompt`` with the template overrides applied."""
        spec = resolve_prompt(self.system_prompt)
        templates = {"indefinite_template": self.indefinite_template, "definite_template": self.definite_template}
        overrides = {k: v for k, v in templates.items() if v}
        return dataclasses.replace(spec, **overrides) if overrides else spec


@dataclass
class TTRLArguments:
    """What TTRL runs on and its per-problem budget. GRPO settings (``max_steps`` = GRPO steps per
    problem, ``num_generations``, ``learning_rate``, ...) come from TRL's ``GRPOConfig`` in the same
    YAML file; the model from TRL's ``ModelConfig`` (``model_name_or_path``, ``use_peft``, ...).

    Parameters:
        problems (`str`, *optional*, defaults to `"undergrad"`): problem set name or .jsonl path.
        problem_ids (`list[str]`, *optional*): only these ids, in this order.
        max_problems (`int`, *optional*): at most this many problems.
        generator, variant_model, variant_depth, variants_per_node, max_variants, variant_seed:
            Who writes the variants (``symbolic``, ``model``, ``both``), with which model, how deep and how
            many; at most ``max_variants`` are trained on, a seeded subset when there are more.
        solve_rate_samples (`int`, *optional*, defaults to `0`): LADDER's level selection per problem: sample
            this many answers to every variant with the original weights and train only on the variants the
            model neither always nor never solves (all variants when none is; 0: off).
        deepen_rounds (`int`, *optional*, defaults to `0`): grow the symbolic tree this many levels further
            below the variants the model never solves (:func:`ladder_hf.training_data.grow_to_model_level`;
            needs ``solve_rate_samples``).
        eval_every, eval_samples: sample answers to the test problem every N steps ("solved during TTRL").
        pass_at_1_samples, max_new_tokens, sample_temperature, system_prompt:
            The answers sampled from the base and the adapted model, and their prompt.
        reward_funcs, verifier_timeout, verify_timeout: rewards by name and the verifier's time limits.
        restore (`str`, *optional*, defaults to `"snapshot"`): how the original weights come back.
        check_restore (`bool`, *optional*, defaults to `True`): check bitwise that they did.
        report_dir (`str`, *optional*): summary and plots folder (default ``output_dir/report``).
    """

    problems: str = field(
        default="undergrad",
        metadata={"help": "Bundled problem set name (see ladder_hf.problems.available_sets) or a .jsonl path."},
    )
    problem_ids: list[str] | None = field(
        default=None, metadata={"help": "Only these problem ids (in this order); default: the whole set."}
    )
    max_problems: int | None = field(default=None, metadata={"help": "Use at most this many problems."})
    generator: str = field(
        default="symbolic",
        metadata={"help": "Variant generator: 'symbolic', 'model' (model-written) or 'both'.", "choices": GENERATORS},
    )
    variant_model: str | None = field(
        default=None,
        metadata={"help": "Model that writes variants (Hub id or path); default: the model being adapted."},
    )
    variant_depth: int = field(default=2, metadata={"help": "Depth of the variant tree (paper: 2 for TTRL)."})
    variants_per_node: int = field(default=4, metadata={"help": "Variants asked for per tree node."})
    max_variants: int = field(
        default=32, metadata={"help": "Train on at most this many variants per problem (chosen with variant_seed)."}
    )
    variant_seed: int = field(default=0, metadata={"help": "Seed of the variant generator and of the subsampling."})
    solve_rate_samples: int = field(
        default=0,
        metadata={
            "help": "Level selection: answers sampled per variant with the original weights; train only on the "
            "variants the model sometimes solves (all of them when none is). 0: off."
        },
    )
    deepen_rounds: int = field(
        default=0,
        metadata={
            "help": "Grow the symbolic tree this many levels further below the variants the model never solves "
            "(needs solve_rate_samples)."
        },
    )
    eval_every: int = field(
        default=2,
        metadata={"help": "Sample answers to the test problem every N GRPO steps ('solved during TTRL'). 0: never."},
    )
    eval_samples: int = field(default=4, metadata={"help": "Answers to the test problem sampled at each eval step."})
    pass_at_1_samples: int = field(
        default=8,
        metadata={"help": "Answers sampled after training (pass@1 after TTRL) and from the base model (base pass@1)."},
    )
    max_new_tokens: int = field(default=128, metadata={"help": "Token budget of each test-problem answer."})
    system_prompt: str | None = field(
        default="default",
        metadata={"help": "Prompt of the test-problem answers and of training: `default`, `few_shot` or text."},
    )
    sample_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of test-problem answers."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["integration", "format"],
        metadata={"help": "Reward functions: our names, TRL's or dotted import paths (as in recipes/grpo.py)."},
    )
    verifier_timeout: float = field(
        default=2.0,
        metadata={"help": "Seconds the verifier may spend on one answer (timed-out answers get one retry at 4x)."},
    )
    restore: str = field(
        default="snapshot",
        metadata={
            "help": "How the original weights come back after each problem: 'snapshot' (full fine-tuning, "
            "in-memory copy of the state_dict copied back), 'reload' (full fine-tuning, weights re-read from disk) "
            "or 'lora' (train a LoRA adapter from ModelConfig's lora_* settings, then discard it).",
            "choices": RESTORE_STRATEGIES,
        },
    )
    check_restore: bool = field(
        default=True,
        metadata={"help": "After each problem, check bitwise that every parameter equals the original."},
    )
    verify_timeout: float = field(default=2.0, metadata={"help": "Verifier timeout per answer, seconds."})
    report_dir: str | None = field(
        default=None, metadata={"help": "Summary and plots folder; default output_dir/report."}
    )
