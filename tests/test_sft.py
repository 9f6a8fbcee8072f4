"""The warm-start arm: SFT on verified sympy antiderivatives of tree nodes (never part of LADDER's numbers)."""

from __future__ import annotations

import json

ROWS = [
    {"integrand": "2*x", "lower": "", "upper": "", "sympy_antiderivative": "x**2"},
    {"integrand": "cos(x)", "lower": "", "upper": "", "sympy_antiderivative": "sin(x) + 1"},  # + constant: fine
    {"integrand": "x", "lower": "", "upper": "", "sympy_antiderivative": "x**3"},  # wrong: left out
    {"integrand": "x", "lower": "0", "upper": "1", "sympy_antiderivative": "x**2/2"},  # definite: left out
    {"integrand": "exp(x**2)", "lower": "", "upper": "", "sympy_antiderivative": ""},  # erfi: sympy finds it
    {"integrand": "x**(1/x)", "lower": "", "upper": "", "sympy_antiderivative": ""},  # sympy finds none: left out
]


def test_warm_start_rows_are_verified_indefinite_answers_in_the_training_prompt():
    from ladder_hf.problems import build_messages
    from ladder_hf.sft import warm_start_dataset

    dataset = warm_start_dataset(ROWS, prompt="few_shot", sympy_timeout=0)  # stored answers only
    assert len(dataset) == 2
    assert dataset[0]["prompt"] == build_messages(ROWS[0], "few_shot")
    assert [row["completion"] for row in dataset] == [
        [{"role": "assistant", "content": "<answer>x**2</answer>"}],
        [{"role": "assistant", "content": "<answer>sin(x) + 1</answer>"}],
    ]
    # rows without a stored answer get sympy.integrate in the sandbox, and are kept only if verified
    completions = [row["completion"][0]["content"] for row in warm_start_dataset(ROWS, prompt="few_shot")]
    assert len(completions) == 3 and "erfi" in completions[2]


def test_warm_start_trains_saves_and_resumes(tiny_model_dir, tmp_path):
    from ladder_hf.demo import is_trained
    from ladder_hf.models import load_model_and_tokenizer
    from ladder_hf.sft import warm_start

    out = tmp_path / "warm_start"
    result = warm_start(ROWS, str(out), tiny_model_dir, prompt="few_shot", max_steps=2, batch_size=2)
    assert result["rows"] == 3 and result["global_step"] == 2 and result["train_loss"] > 0
    assert is_trained(str(out))
    state = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))
    assert [row["step"] for row in state["log_history"] if "loss" in row] == [1, 2]
    model, tokenizer = load_model_and_tokenizer(str(out))
    assert model.config.model_type == "llama" and tokenizer.padding_side == "left"  # generates like any other
    again = warm_start(ROWS, str(out), tiny_model_dir, prompt="few_shot", max_steps=2, batch_size=2)
    assert again["global_step"] == 2  # finished: resumed from its checkpoint, nothing retrained
