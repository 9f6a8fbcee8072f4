"""The evaluation recipe end to end on a tiny model, the sympy comparator, resume and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladder_hf.evaluation import EvaluationConfig, evaluate_model, main, run_sympy_baseline, sympy_integrate
from ladder_hf.store import read_jsonl, write_jsonl

PROBLEMS = [
    {"id": "t-q01", "integrand": "x**2", "lower": "", "upper": ""},
    {"id": "t-q02", "integrand": "sin(x)", "lower": "0", "upper": "pi"},
]


@pytest.fixture()
def problem_file(tmp_path) -> str:
    path = tmp_path / "two.jsonl"
    write_jsonl(str(path), PROBLEMS)
    return str(path)


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_recipe_end_to_end_tiny_model(tiny_model_dir, problem_file, tmp_path):
    out = tmp_path / "run"
    summary = evaluate_model(tiny_model_dir, problem_file, out, max_new_tokens=12, batch_size=2)
    for name in ("completions.jsonl", "sympy.jsonl", "results.jsonl", "summary.json", "summary.md", "run_config.json"):
        assert (out / name).is_file(), name
    completions = read_jsonl(str(out / "completions.jsonl"))
    assert [(r["id"], r["sample"]) for r in completions] == [("t-q01", 0), ("t-q02", 0)]
    assert all(isinstance(r["completion"], str) for r in completions)
    # sympy solves both easy problems, and the metric agrees
    assert summary["sympy"]["accuracy"] == 1.0
    assert summary["sympy"]["solved"] == 2
    sympy_rows = read_jsonl(str(out / "sympy.jsonl"))
    assert [r["status"] for r in sympy_rows] == ["solved", "solved"]
    # the model's scores are consistent with its per-problem results
    results = [r for r in read_jsonl(str(out / "results.jsonl")) if r["system"] == "model"]
    assert summary["model"]["count"] == 2
    assert summary["model"]["solved"] == sum(r["correct"][0] for r in results)
    assert summary["model"]["accuracy"] == pytest.approx(summary["model"]["solved"] / 2)
    assert json.loads((out / "summary.json").read_text()) == summary
    table = (out / "summary.md").read_text()
    assert "sympy integrate (10 s limit)" in table and "| t-q02 |" in table


def test_resume_skips_done_samples_and_refuses_changed_settings(tiny_model_dir, problem_file, tmp_path, monkeypatch):

    out = tmp_path / "run"
    settings = {"max_new_tokens": 8, "sympy_baseline": False, "batch_size": 1}
    evaluate_model(tiny_model_dir, problem_file, out, **settings)
    rows = (out / "completions.jsonl").read_text().splitlines()
    assert len(rows) == 2
    # simulate an interrupted run: only the first completion (and half of the second line) made it
    (out / "completions.jsonl").write_text(rows[0] + "\n" + rows[1][: len(rows[1]) // 2])

    from ladder_hf.generation import TransformersBackend

    real, prompts_seen = TransformersBackend.generate, []

    def counting(self, conversations, **kwargs):
        prompts_seen.extend(m[-1]["content"] for m in conversations)
        return real(self, conversations, **kwargs)

    monkeypatch.setattr(TransformersBackend, "generate", counting)
    evaluate_model(tiny_model_dir, problem_file, out, **settings)
    assert prompts_seen == ["Evaluate the definite integral: ∫_{0}^{pi} sin(x) dx"]
    # the cut line was dropped, not glued to the new row
    assert [r["id"] for r in read_jsonl(str(out / "completions.jsonl"))] == ["t-q01", "t-q02"]
    # a completed run resumes without generating anything
    prompts_seen.clear()
    evaluate_model(tiny_model_dir, problem_file, out, **settings)
    assert prompts_seen == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        evaluate_model(tiny_model_dir, problem_file, out, **{**settings, "max_new_tokens": 9})
    evaluate_model(tiny_model_dir, problem_file, out, **{**settings, "max_new_tokens": 9, "overwrite": True})
    assert _lines(out / "completions.jsonl") == 2


def test_several_samples_report_pass_at_k_and_majority(tiny_model_dir, problem_file, tmp_path):
    out = tmp_path / "k2"
    summary = evaluate_model(
        tiny_model_dir, problem_file, out, num_samples=2, max_new_tokens=8, sympy_baseline=False, batch_size=4
    )
    assert _lines(out / "completions.jsonl") == 4
    assert {"pass@1", "pass@2", "majority_vote_accuracy"} <= set(summary["model"])
    # the interval is over problems x samples answers and contains the estimate
    low, high = summary["model"]["accuracy_ci95"]
    assert low <= summary["model"]["accuracy"] <= high and high - low > 0.3  # 4 answers: a wide interval
    assert "[95% CI]" in (out / "report.md").read_text() if (out / "report.md").is_file() else True
    assert summary["config"]["temperature"] is None  # auto: sampling at 0.7 with several samples
    assert EvaluationConfig(num_samples=2).sampling_temperature == 0.7
    assert EvaluationConfig().sampling_temperature == 0.0


def test_cli_main_on_bundled_set(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--model", tiny_model_dir, "--limit", "2", "--max_new_tokens", "8", "--output_dir", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Integration Bee: mit-2025" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["problem_set"] == "mit-2025"
    assert summary["model"]["count"] == 2 and summary["sympy"]["count"] == 2
    assert set(summary["model"]["per_year"]) == {"2025"}


def test_sympy_integrate_answers_are_scored_and_time_limited(tmp_path):
    assert sympy_integrate("x**2", "", "") == "x**3/3"
    assert sympy_integrate("sin(x)", "0", "pi") == "2"
    hard = [{"id": "hard", "integrand": "exp(sin(x)**3 + cos(x)**5)*tan(x)**7", "lower": "", "upper": ""}]
    rows = run_sympy_baseline(hard, tmp_path / "sympy.jsonl", timeout=1.0)
    assert rows[0]["answer"] is None
    assert rows[0]["status"] != "solved"
    assert rows[0]["seconds"] < 30


def test_a_mistyped_problem_set_writes_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown problem set 'mit-2052'"):
        evaluate_model("default", "mit-2052", out)
    assert not out.exists()  # the corrected command is not refused by a half-made folder


def test_wilson_interval_against_known_values():
    from ladder_hf.evaluation import wilson_interval

    # 0 of 80: the upper bound is what a run with no success can still hide
    assert wilson_interval(0, 80) == (0.0, pytest.approx(0.0458, abs=1e-4))
    low, high = wilson_interval(120, 240)
    assert low == pytest.approx(0.437, abs=1e-3) and high == pytest.approx(0.563, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
