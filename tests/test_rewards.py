"""Rewards: answer extraction, integration/format rewards, registry, and a real GRPOTrainer run."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ladder_hf.rewards import (
    REWARD_FUNCS,
    async_integration_reward,
    extract_answer,
    format_reward,
    get_reward_funcs,
    integration_reward,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>x^2</answer>", "x^2"),
        ("<ANSWER> x**3/3 </ANSWER>", "x**3/3"),
        ("first <answer>x</answer> then <Answer>x^2/2</Answer>", "x^2/2"),
        (r"so \boxed{\frac{x^{2}}{2}} is it", r"\frac{x^{2}}{2}"),
        (r"\boxed{1} no, \boxed{\sqrt{x}}", r"\sqrt{x}"),
        (r"<answer>x</answer> and \boxed{y}", "x"),  # answer tags win over boxed
        ("<answer>\n  sin(x)\n</answer>", "sin(x)"),
        ("no answer here", None),
        ("<answer>   </answer>", None),
        ("<answer>x^2 (truncated", None),
        (r"\boxed{x^2", None),
        ([{"role": "assistant", "content": "<answer>e^x</answer>"}], "e^x"),
        (None, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_integration_reward_plain_and_conversational():
    completions = [
        "work... <answer>x^3/3 + C</answer>",
        "<answer>x^3</answer>",
        "I give up",
        r"\boxed{\frac{x^3}{3}}",
        [{"role": "assistant", "content": "<ANSWER>x**3/3</ANSWER>"}],
        [{"role": "assistant", "content": "<answer>__import__('os')</answer>"}],
    ]
    rewards = integration_reward(prompts=["p"] * 6, completions=completions, integrand=["x**2"] * 6)
    assert rewards == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_integration_reward_reads_bounds_per_row():
    rewards = integration_reward(
        prompts=["p"] * 4,
        completions=["<answer>2</answer>", "<answer>2</answer>", "<answer>-cos(x)</answer>", "<answer>1</answer>"],
        integrand=["sin(x)", "sin(x)", "sin(x)", "x*exp(-x)"],
        lower=["0", "", None, "0"],
        upper=["pi", "", None, "oo"],
    )
    # row 2 is indefinite ("" bounds): a constant is not an antiderivative of sin(x)
    assert rewards == [1.0, 0.0, 1.0, 1.0]


def test_integration_reward_needs_the_integrand_column():
    with pytest.raises(ValueError, match="integrand"):
        integration_reward(prompts=["p"], completions=["<answer>x</answer>"])


def test_integration_reward_logs_metrics_and_works_off_the_main_thread():
    metrics, extra, box = {}, {}, {}

    def target():
        box["rewards"] = integration_reward(
            prompts=["p"] * 3,
            completions=["<answer>x^2/2</answer>", "nothing", "<answer>y</answer>"],
            integrand=["x"] * 3,
            log_metric=lambda name, value: metrics.__setitem__(name, value),
            log_extra=lambda column, values: extra.__setitem__(column, values),
        )

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert box["rewards"] == [1.0, 0.0, 0.0]
    assert metrics["verifier/no_answer_frac"] == pytest.approx(1 / 3)
    assert metrics["verifier/parse_error_frac"] == pytest.approx(1 / 3)
    assert len(extra["verifier"]) == 3 and "verified" in extra["verifier"][0]


def test_async_integration_reward():
    rewards = asyncio.run(
        async_integration_reward(
            prompts=["p"] * 2, completions=["<answer>sin(x)</answer>", "x"], integrand=["cos(x)"] * 2
        )
    )
    assert rewards == [1.0, 0.0]


def test_format_reward():
    completions = [
        "<answer>x^2/2</answer>",
        r"<ANSWER>\frac{x^2}{2} + C</ANSWER>",
        "x^2/2",
        "<answer>I don't know</answer>",
        "<answer>x</answer><answer>x^2</answer>",
        [{"role": "assistant", "content": "<answer>sin(x)</answer>"}],
    ]
    assert format_reward(prompts=["p"] * 6, completions=completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_registry():
    assert set(REWARD_FUNCS) >= {"integration", "format"}
    assert get_reward_funcs(["integration", "format"]) == [integration_reward, format_reward]
    assert get_reward_funcs("format,integration") == [format_reward, integration_reward]
    with pytest.raises(ValueError, match=r"unknown reward function 'accuracy'; ours"):
        get_reward_funcs(["accuracy"])


def test_grpo_trainer_two_steps_with_our_rewards(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from ladder_hf.problems import build_messages

    rows = [
        {"integrand": "x**2", "lower": "", "upper": ""},
        {"integrand": "sin(x)", "lower": "0", "upper": "pi"},
    ]
    dataset = Dataset.from_list([{"prompt": build_messages(r), **r} for r in rows])
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=16,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-5,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=tiny_model_dir,
        reward_funcs=get_reward_funcs(["integration", "format"]),
        args=args,
        train_dataset=dataset,
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "rewards/integration_reward/mean" in entry]
    assert len(logged) == 2
    for entry in logged:
        # a random tiny model writes no valid answer: both rewards are exactly 0, and were computed
        assert entry["rewards/integration_reward/mean"] == 0.0
        assert entry["rewards/format_reward/mean"] == 0.0
        assert entry["verifier/no_answer_frac"] == 1.0


def test_answer_extraction_is_linear_in_hostile_completions():
    import time

    from ladder_hf.rewards import extract_answer, format_reward

    for text in ("<answer>" * 12_500, r"\boxed{" * 14_000, "<answer>x</answer>" * 5000 + r"\boxed{" * 8000):
        start = time.monotonic()
        extract_answer(text)
        format_reward(completions=[text])
        assert time.monotonic() - start < 2.0  # seconds to a minute before; milliseconds now
    assert extract_answer("<answer>a</answer> <ANSWER> x^2 </answer>") == "x^2"
    assert extract_answer(r"\boxed{x} then \boxed{\frac{x^2}{2}} and \boxed{unclosed") == r"\frac{x^2}{2}"


def test_problem_side_failures_are_none_not_zero():
    from ladder_hf.rewards import UNSCORED_COUNTS, get_reward_funcs, integration_reward

    before = sum(UNSCORED_COUNTS.values())
    rewards = integration_reward(
        completions=["<answer>x^3/3</answer>", "<answer>1</answer>", "<answer>0</answer>", "<answer>x</answer>"],
        integrand=["x**2", "x**", "tan(x)", "1"],
        lower=["", "", "-pi/2", "0"],
        upper=["", "", "pi/2", ""],
    )
    assert rewards == [1.0, None, None, None]  # typo'd integrand, divergent integral, half-specified bounds
    assert sum(UNSCORED_COUNTS.values()) - before == 3
    (timed,) = get_reward_funcs(["integration"], verifier_timeout=7.0)
    assert timed.keywords["timeout"] == 7.0 and timed.__name__ == "integration_reward"


def test_reward_names_ours_trls_and_import_paths():
    from ladder_hf.rewards import get_reward_funcs

    funcs = get_reward_funcs("integration, think_format_reward, ladder_hf.rewards.format_reward")
    assert [f.__name__ for f in funcs] == ["integration_reward", "think_format_reward", "format_reward"]
    with pytest.raises(ValueError, match=r"unknown reward function 'integraton'; ours: .*TRL's"):
        get_reward_funcs(["integraton"])
    with pytest.raises(ValueError, match=r"cannot import reward function 'no_such_module\.reward'"):
        get_reward_funcs(["no_such_module.reward"])
