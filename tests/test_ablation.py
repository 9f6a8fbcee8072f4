"""The ablation script (benchmarks/ladder_ablation.py) end to end on a tiny model: arms, seeds, results."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from ladder_hf.store import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [
    {"id": f"t-{i:02d}", "integrand": integrand, "lower": "", "upper": ""}
    for i, integrand in enumerate(["x**2", "cos(x)", "x*exp(x)", "3*x**2 + cos(2*x)", "exp(2*x) + x", "sin(x)*cos(x)"])
]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ablation():
    return _load("ladder_ablation")


def test_trained_arms_run_once_per_seed_and_results_pool_them(ablation, tiny_model_dir, tmp_path):
    problems = tmp_path / "problems.jsonl"
    write_jsonl(str(problems), PROBLEMS)
    config = ablation.AblationConfig(
        output_dir=str(tmp_path / "run"),
        img_dir=str(tmp_path / "img"),
        model=tiny_model_dir,
        problem_set=str(problems),
        num_train_problems=2,
        num_test_problems=2,
        easy_test_problems=0,
        arms=["base", "roots"],
        train_seeds=[0, 1],  # 0 is --seed: the plain "roots" arm, not a second copy of it
        variant_sympy_timeout=0,
        sympy_baseline=False,
        quick=True,
    )
    results = ablation.run(config)

    assert list(results["arms"]) == ["base", "roots", "roots-seed1"]
    out = tmp_path / "run"
    for key in ("roots", "roots-seed1"):
        assert (out / "models" / key / "model.safetensors").is_file()
        assert results["arms"][key]["eval"]["test"]["problems"] == 2
    seed0 = json.loads((out / "models" / "roots" / "trainer_state.json").read_text())
    seed1 = json.loads((out / "models" / "roots-seed1" / "trainer_state.json").read_text())
    assert seed0["global_step"] == seed1["global_step"] == config.max_steps
    assert yaml.safe_load((out / "models" / "roots-seed1" / "grpo_config.yaml").read_text())["seed"] == 1

    pooled = ablation.pooled(results, "test")
    assert len(pooled["roots"]["per_seed"]) == 2 and pooled["roots"]["answers"] == 2 * 2 * config.eval_samples
    text = (out / "results.md").read_text()
    assert "Pooled over seeds" in text and "(seed 1)" in text
    assert (tmp_path / "img" / "ladder_ablation_accuracy.png").read_bytes()[:4] == b"\x89PNG"

    # a rerun finds every arm done and trains nothing
    again = ablation.run(config)
    assert again["arms"]["roots-seed1"]["eval"] == results["arms"]["roots-seed1"]["eval"]

    # the sweep comparison pools the arm's seeds per run folder
    compare = _load("compare_runs")
    figure = tmp_path / "sweep.png"
    assert compare.main([str(out), "--arm", "roots", "--out", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
    steps, rate = compare.correct_rate_curve(results, "roots")
    summary = compare.training_summary(results, "roots")
    assert summary["seeds"] == 2 and summary["step_seconds"] > 0 and 0.0 <= summary["reward_last"] <= 1.0
    assert summary["tree_after"] is None  # only the level arms measure the trees
    assert 0.0 <= summary["no_signal_first"] <= 1.0 and 0.0 <= summary["no_signal_last"] <= 1.0
    assert compare.training_summary(compare.restrict_seeds(results, [1]), "roots")["seeds"] == 1
    numbers = tmp_path / "sweep.json"
    assert compare.main([str(out), "--arm", "roots", "--seeds", "1", "--json", str(numbers), "--labels", "mine"]) == 0
    run = json.loads(numbers.read_text())["runs"][0]
    assert run["label"] == "mine"
    assert run["training"]["seeds"] == 1 and run["held_out"]["test"]["per_seed"] == [
        results["arms"]["roots-seed1"]["eval"]["test"]["pass@1"]
    ]
    # a setting missing from an older folder's config is its default, not a difference
    assert compare.labels_for([{"seed": 0}, {"seed": 0, "loss_type": "dapo"}]) == ["run 0", "run 1"]
    assert steps == list(range(1, config.max_steps + 1)) and len(rate) == len(steps)


def test_easy_set_audit_rescores_each_arm_on_the_problems_the_guard_calls_clean(tmp_path):
    audit = _load("easy_set_audit")
    run = tmp_path / "run"
    easy = [
        {"id": "e1", "integrand": "8*x**2"},  # a constant multiple of the training node 10*x**2
        {"id": "e2", "integrand": "cos(6*x)"},  # the prompt's example cos(2*x), rescaled
        {"id": "e3", "integrand": "x*exp(x)"},  # a family neither trained on nor shown
        {"id": "e4", "integrand": "exp(-x**2)"},  # new too, but its antiderivative is erf: not elementary
    ]
    write_jsonl(str(run / "problems" / "test_easy.jsonl"), easy)
    write_jsonl(str(run / "variants" / "nodes.jsonl"), [{"id": "r", "integrand": "10*x**2", "depth": 0, "kept": True}])
    answers = {
        "base": [[True, False], [True, True], [False, False], [False, False]],
        "arm-seed1": [[True, True], [False, False], [True, False], [True, True]],
    }
    for name, correct in answers.items():
        rows = [{"id": e["id"], "correct": c} for e, c in zip(easy, correct, strict=True)]
        write_jsonl(str(run / "eval" / name / "easy" / "results.jsonl"), rows)
    result = audit.audit(run)
    assert (result["easy"], result["clean"], result["new_family"], result["elementary"]) == (4, 3, 2, 3)
    assert result["not_clean"] == ["8*x**2"] and result["prompt_family"] == ["cos(6*x)"]
    assert result["not_elementary"] == ["exp(-x**2)"]
    assert result["arms"]["base"] == {
        "seeds": 1,
        "all": [3, 8],
        "clean": [2, 6],
        "new_family": [0, 4],
        "elementary": [3, 6],
    }
    assert result["arms"]["arm"] == {
        "seeds": 1,
        "all": [5, 8],
        "clean": [3, 6],
        "new_family": [3, 4],
        "elementary": [3, 6],
    }

    # paired, "arm" minus base per problem: e1 +1, e2 -2, e3 +1, e4 +2 answers of 2 each
    assert audit.paired_difference(result, "base", "arm")["difference"] == 0.25
    paired = audit.paired_difference(result, "base", "arm", "clean", draws=2000)  # e2, e3, e4: +1 of 6
    assert paired["problems"] == 3 and paired["difference"] == 0.1667
    low, high = paired["ci95"]
    assert low <= paired["difference"] <= high and low < high
    assert audit.paired_difference(result, "base", "arm", "new_family")["difference"] == 0.75
    assert audit.paired_difference(result, "base", "arm", "elementary")["difference"] == 0.0  # e4's gain is out

    # the command line takes several pairs in one call and writes each to the JSON report
    out = tmp_path / "audit.json"
    assert audit.main([str(run), "--paired", "base", "arm", "--paired", "arm", "base", "--out", str(out)]) == 0
    paired = json.loads(out.read_text())[str(run)]["paired"]
    assert paired["arm - base"]["all"]["difference"] == 0.25 and paired["base - arm"]["all"]["difference"] == -0.25


def test_warm_start_arms_train_from_the_warm_start_and_only_the_level_arms_select(ablation, tmp_path):
    config = ablation.AblationConfig(output_dir=str(tmp_path), level_samples=6, learning_rate=1e-5)
    warm = tmp_path / "models" / "warm_start-seed1"
    settings = {arm: ablation.arm_settings(arm, config, warm) for arm in ablation.ARMS if arm != "base"}
    assert {arm: s.model for arm, s in settings.items() if s.model != config.model} == {
        "warm_start_roots": str(warm),
        "warm_start_ladder": str(warm),
        "warm_start_level": str(warm),
    }
    assert {arm for arm, s in settings.items() if s.solve_rate_samples} == {"ladder_level", "warm_start_level"}
    # the demo's defaults (deepening, level selection) are not the experiment's: its arms choose
    assert ablation.AblationConfig().deepen_rounds == 0 and ablation.AblationConfig().solve_rate_samples == 0
    assert settings["warm_start_level"].solve_rate_samples == 6
    assert settings["ladder_depth"].curriculum == "depth"
    # a level kept current needs a measured level: only the level arms keep --dynamic_level
    dynamic = dataclasses.replace(config, dynamic_level=True)
    kept = {arm for arm in settings if ablation.arm_settings(arm, dynamic, warm).dynamic_level}
    assert kept == {"ladder_level", "warm_start_level"}


def test_a_shared_warm_start_runs_once_and_every_seed_trains_from_it(ablation, tmp_path):
    arms = ["base", "warm_start", "warm_start_level"]
    own = ablation.AblationConfig(output_dir=str(tmp_path), arms=arms, train_seeds=[0, 1, 2])
    assert ablation.planned_runs(own) == [
        ("base", None),
        ("warm_start", None),
        ("warm_start_level", None),
        ("warm_start", 1),
        ("warm_start_level", 1),
        ("warm_start", 2),
        ("warm_start_level", 2),
    ]
    shared = ablation.dataclasses.replace(own, shared_warm_start=True)
    assert ablation.planned_runs(shared) == [
        ("base", None),
        ("warm_start", None),
        ("warm_start_level", None),
        ("warm_start_level", 1),
        ("warm_start_level", 2),
    ]


def test_pass_at_k_reads_each_problems_answers_and_bootstraps_the_curve_over_problems(tmp_path):
    passk = _load("pass_at_k")
    rows = [
        {"system": "model", "id": "a", "correct": [False] * 8},
        {"system": "model", "id": "b", "correct": [True] + [False] * 7},
        {"system": "model", "id": "c", "correct": [True] * 4 + [False] * 4},
        {"system": "sympy", "id": "a", "correct": [True]},  # sympy's answer is not the model's
    ]
    write_jsonl(str(tmp_path / "results.jsonl"), rows)
    counts = passk.correct_counts(tmp_path / "results.jsonl")
    assert counts == {"a": (0, 8), "b": (1, 8), "c": (4, 8)}

    curve = passk.pass_at_k_curve(list(counts.values()), draws=2000)
    assert [row["k"] for row in curve] == [1, 2, 4, 8]
    # pass@1 is the share of correct answers, pass@n the share of problems ever solved
    assert curve[0]["pass"] == round(5 / 24, 4) and curve[-1]["pass"] == round(2 / 3, 4)
    assert [row["pass"] for row in curve] == sorted(row["pass"] for row in curve)
    for row in curve:
        low, high = row["ci95"]
        assert 0 <= low <= row["pass"] <= high <= 1 and low < high
    with pytest.raises(ValueError, match="same number of samples"):
        passk.pass_at_k_curve([(0, 8), (1, 4)])


def test_pass_at_k_counts_wrong_answers_that_are_right_up_to_a_constant_factor(tmp_path):
    passk = _load("pass_at_k")
    rows = [
        {
            "system": "model",
            "id": "a",
            # the prompt's /2 on a function the model knows; twice it; the wrong function; right; no answer
            "answers": ["sinh(x)/2", "2*sinh(x)", "cosh(x)/2", "sinh(x)", None],
            "correct": [False, False, False, True, False],
        },
        {"system": "model", "id": "b", "answers": ["x**2", "1/2"], "correct": [False, False]},
    ]
    write_jsonl(str(tmp_path / "results.jsonl"), rows)
    misses = passk.constant_factor_misses({"a": "cosh(x)", "b": "x"}, tmp_path / "results.jsonl")
    assert misses == {"a": 2, "b": 1}  # x**2 is the antiderivative of 2*x
