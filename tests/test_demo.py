"""``ladder-hf demo``: every stage on the tiny model with tiny budgets, the report, resume."""

from __future__ import annotations

import json
import os

import pytest

from ladder_hf.demo import (
    DemoConfig,
    clean_against,
    materialise_dataset,
    pooled_solve_rate,
    run_demo,
    split_problems,
)
from ladder_hf.store import read_jsonl, write_jsonl

PROBLEMS = [
    {"id": "t-01", "integrand": "x**2 + sin(x)", "lower": "", "upper": ""},
    {"id": "t-02", "integrand": "x*exp(x)", "lower": "", "upper": ""},
    {"id": "t-03", "integrand": "3*x**2 + cos(2*x)", "lower": "", "upper": ""},
    {"id": "t-04", "integrand": "x**3 + 1/x", "lower": "", "upper": ""},
    {"id": "t-05", "integrand": "exp(2*x) + x", "lower": "", "upper": ""},
    {"id": "t-06", "integrand": "x**2", "lower": "0", "upper": "1"},
    {"id": "t-07", "integrand": "sin(x)*cos(x)", "lower": "", "upper": ""},
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("problems") / "problems.jsonl"
    write_jsonl(str(path), PROBLEMS)
    return str(path)


@pytest.fixture(scope="module")
def quick_demo(tiny_model_dir, problems_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "ladder_demo"
    config = DemoConfig(output_dir=str(out), model=tiny_model_dir, problem_set=problems_file, quick=True)
    return out, config, run_demo(config)


def test_split_is_seeded_disjoint_and_test_stable():
    train, test = split_problems(PROBLEMS, 3, 2, seed=1)
    again_train, _ = split_problems(PROBLEMS, 3, 2, seed=1)
    assert [r["id"] for r in train] == [r["id"] for r in again_train]
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    # Asking for more training problems must not move the held-out slice.
    _, test_more = split_problems(PROBLEMS, 5, 2, seed=1)
    assert [r["id"] for r in test_more] == [r["id"] for r in test]
    # The seed matters: over a few seeds the held-out pair changes.
    assert len({tuple(sorted(r["id"] for r in split_problems(PROBLEMS, 3, 2, seed=s)[1])) for s in range(5)}) > 1
    with pytest.raises(ValueError):
        split_problems(PROBLEMS, 6, 2)


def test_split_never_holds_out_a_problem_the_prompt_shows():
    rows = [{"id": f"p{i}", "integrand": f} for i, f in enumerate(["cos(3*x + 1)", "x*exp(x)", "log(x)", "tan(x)"])]
    example = [{"id": "few-shot-1", "integrand": "cos(2*x)"}]
    tests, trains = set(), set()
    for seed in range(6):
        train, test = split_problems(rows, 2, 2, seed=seed, shown=example)
        tests |= {r["integrand"] for r in test}
        trains |= {r["integrand"] for r in train}
    # the rescaled, shifted prompt example is never held out, but it may still be trained on
    assert "cos(3*x + 1)" not in tests and "cos(3*x + 1)" in trains
    assert tests == {"x*exp(x)", "log(x)", "tan(x)"}
    # without the prompt's examples it is an ordinary problem
    assert any(split_problems(rows, 2, 2, seed=s)[1][0]["integrand"] == "cos(3*x + 1)" for s in range(6))
    with pytest.raises(ValueError, match="prompt example"):
        split_problems(rows, 0, 4, shown=example)


def test_shortest_selection_draws_from_shortest_integrands():
    train, test = split_problems(PROBLEMS, 2, 1, seed=0, selection="shortest")
    shortest = sorted(PROBLEMS, key=lambda r: (len(r["integrand"]), r["id"]))[:3]
    assert {r["id"] for r in train + test} == {r["id"] for r in shortest}


def test_quick_demo_writes_every_stage_output(quick_demo):
    out, _, summary = quick_demo
    for name in (
        "problems/train.jsonl",
        "problems/test.jsonl",
        "variants/nodes.jsonl",
        "dataset/train.parquet",
        "eval_base/summary.json",
        "eval_base/completions.jsonl",
        "model/trainer_state.json",
        "eval_trained/summary.json",
        "report.md",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    for plot in ("reward", "accuracy", "tree_sizes", "solve_rate_by_depth"):
        data = (out / "plots" / f"{plot}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, plot
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "plots/reward.png" in report and "Held-out accuracy" in report
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == json.loads(json.dumps(summary))
    # --quick keeps only the final model (before: model/checkpoint-2 with optimizer state, 2.1 GB on SmolLM2)
    assert not list(out.rglob("checkpoint-*")) and not list(out.rglob("optimizer.pt"))
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.safetensors")] == ["model/model.safetensors"]


def test_quick_demo_numbers_are_consistent(quick_demo):
    out, config, summary = quick_demo
    train, test = read_jsonl(str(out / "problems/train.jsonl")), read_jsonl(str(out / "problems/test.jsonl"))
    assert (len(train), len(test)) == (config.num_train_problems, config.num_test_problems)
    assert not {r["id"] for r in train} & {r["id"] for r in test}

    nodes = read_jsonl(str(out / "variants/nodes.jsonl"))
    kept = [n for n in nodes if n.get("kept", True)]
    assert sum(summary["tree_sizes"].values()) == len(kept)
    assert summary["tree_sizes"]["0"] == len(train)
    assert max(int(d) for d in summary["tree_sizes"]) <= config.variant_depth + config.deepen_rounds
    # train_on=tree: the dataset holds every kept node of the trees.
    assert summary["dataset"]["rows"] == len(kept)
    assert summary["dataset"]["per_depth"] == summary["tree_sizes"]

    # One reward log per optimizer step, up to max_steps.
    assert summary["train"]["global_step"] == config.max_steps
    assert [r["step"] for r in summary["rewards"]] == list(range(1, config.max_steps + 1))
    for row in summary["rewards"]:
        assert 0.0 <= row["reward"] <= sum(config.reward_weights) + 1e-6

    # Scores come from the evaluation folders, over test x samples completions.
    for name, folder in (("base", "eval_base"), ("trained", "eval_trained")):
        evaluation = json.loads((out / folder / "summary.json").read_text(encoding="utf-8"))
        assert summary["scores"][name]["accuracy"] == evaluation["model"]["accuracy"]
        # A verified answer is an answer: accuracy never exceeds the tagged-answer rate.
        assert 0.0 <= summary["scores"][name]["accuracy"] <= summary["scores"][name]["answer_rate"]
        completions = read_jsonl(str(out / folder / "completions.jsonl"))
        assert len(completions) == len(test) * config.eval_samples
        assert {c["id"] for c in completions} == {r["id"] for r in test}
        # pass@1 carries its 95% interval over test x samples answers, and the report shows it
        low, high = summary["scores"][name]["accuracy_ci95"]
        assert 0.0 <= low <= summary["scores"][name]["accuracy"] <= high <= 1.0 and high - low > 0.05
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"(n={len(test) * config.eval_samples})" in report and "95% intervals" in report


def test_quick_demo_scores_easy_variants_of_the_held_out_problems_that_no_training_tree_holds(quick_demo):
    from ladder_hf.problems import FEW_SHOT_EXAMPLES

    out, config, summary = quick_demo
    easy = read_jsonl(str(out / "problems/test_easy.jsonl"))
    assert 1 <= len(easy) <= config.easy_test_problems and summary["problems"]["easy"] == len(easy)
    # drawn from the held-out problems' own trees, below their roots ...
    test_ids = {r["id"] for r in read_jsonl(str(out / "problems/test.jsonl"))}
    grown = {n["id"]: n for n in read_jsonl(str(out / "test_variants/nodes.jsonl"))}
    for row in easy:
        node = grown[row["id"].removeprefix("easy-")]
        assert node["depth"] > 0 and node["id"].split(".")[0] in test_ids and node["integrand"] == row["integrand"]

    # ... and never a training node or a few-shot example: a correct answer is transfer, not recall
    def key(text):
        return str(text).replace(" ", "")

    trained = read_jsonl(str(out / "variants/nodes.jsonl"))
    assert not {key(r["integrand"]) for r in easy} & {key(f) for f, _ in FEW_SHOT_EXAMPLES}
    # nor equivalent to one, or to a prompt example, under the contamination guard (a constant multiple, a shift)
    examples = [{"id": f"e{i}", "integrand": f} for i, (f, _) in enumerate(FEW_SHOT_EXAMPLES)]
    assert all(clean_against(easy, trained + examples))
    for name, folder in (("base", "eval_base_easy"), ("trained", "eval_trained_easy")):
        evaluation = json.loads((out / folder / "summary.json").read_text(encoding="utf-8"))
        assert summary["scores_easy"][name]["accuracy"] == evaluation["model"]["accuracy"]
        completions = read_jsonl(str(out / folder / "completions.jsonl"))
        assert len(completions) == len(easy) * config.eval_samples
    report = (out / "report.md").read_text(encoding="utf-8")
    held_out = report.split("## Variant trees")[0]
    assert f"{len(easy)} easy variants of them" in held_out and held_out.count("95% intervals") == 2


def test_quick_demo_reports_the_solve_rate_per_tree_depth_before_and_after(quick_demo):
    out, config, summary = quick_demo
    tables = summary["tree_solve_rates"]
    assert set(tables) == {"base", "trained"}
    for name, folder in (("base", "eval_base"), ("trained", "eval_trained")):
        # every node of the training trees was sampled tree_samples times, per depth as the dataset has them
        assert {str(r["depth"]): r["nodes"] for r in tables[name]} == summary["dataset"]["per_depth"]
        stored = read_jsonl(str(out / folder / "tree_solve_rates.jsonl"))
        assert sum(r["samples"] for r in stored) == sum(r["answers"] for r in tables[name])
        for row in tables[name]:
            assert row["answers"] == row["nodes"] * config.tree_samples
            assert row["never"] + row["edge"] + row["always"] == row["nodes"]
            low, high = row["ci95"]
            assert 0.0 <= low <= row["solve_rate"] <= high <= 1.0 and 0 <= row["solved"] <= row["answers"]
    # the base model's table is the deepening's measurement (same samples, prompt and budget), not a second one
    assert read_jsonl(str(out / "eval_base/tree_solve_rates.jsonl")) == read_jsonl(str(out / "level_solve_rates.jsonl"))
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Solve rate per depth" in report and "plots/solve_rate_by_depth.png" in report
    # every node pooled, with its interval, and a verdict on the change
    pooled = {name: pooled_solve_rate(table) for name, table in tables.items()}
    assert pooled["base"]["nodes"] == summary["dataset"]["rows"]
    assert f"| all | {summary['dataset']['rows']} | {pooled['base']['solved']}/{pooled['base']['answers']} = " in report
    assert "All nodes: Solve rate" in report and ("noise at this sample size" in report or "a real change" in report)


def test_demo_defaults_run_ladder_at_the_models_level_on_one_measurement():
    config = DemoConfig()
    # the deepening's measurement of the base model serves the level selection and the "before" table too
    assert config.deepen_rounds >= 1 and config.solve_rate_samples > 0
    assert config.solve_rate_samples == config.deepen_samples == config.tree_samples
    assert config.max_completion_length == config.eval_max_new_tokens
    # the format reward is logged, not optimised: an all-wrong group must not teach anything
    assert dict(zip(config.reward_funcs, config.reward_weights, strict=True)) == {"integration": 1.0, "format": 0.0}
    # --quick keeps the deepening but trains on every row: two tiny trees hold no node at any model's level
    quick = DemoConfig(quick=True)
    assert quick.solve_rate_samples == 0 and quick.deepen_samples == quick.tree_samples == 1


def test_report_says_what_the_level_selection_kept_and_how_the_reward_moved(quick_demo, tmp_path):
    from ladder_hf.demo import _level_selection, render_report

    _, _, summary = quick_demo
    model = tmp_path / "model"
    model.mkdir()
    table = [{"depth": 0, "rows": 4, "edge": 1}, {"depth": 1, "rows": 6, "edge": 2}]
    (model / "solve_rates_by_depth.json").write_text(json.dumps(table), encoding="utf-8")
    assert _level_selection(str(model), DemoConfig(solve_rate_samples=4)) == {"rows": 3, "of": 10, "samples": 4}
    assert _level_selection(str(model), DemoConfig(solve_rate_samples=0)) is None

    rewards = [
        {"step": i + 1, "reward": r, "frac_reward_zero_std": z}
        for i, (r, z) in enumerate(
            [(0.0, 1.0), (0.5, 0.0), (0.25, 0.0), (1.0, 1.0), (1.0, 1.0), (0.75, 0.0), (1.0, 1.0), (1.0, 1.0)]
        )
    ]
    report = render_report({**summary, "rewards": rewards, "level_selection": {"rows": 3, "of": 10, "samples": 4}})
    assert "Prompts came from the 3 of 10 tree nodes at the base model's level" in report
    # a quarter of the 8 steps at each end
    assert "Mean reward over steps 1-2: 0.250; over steps 7-8: 1.000" in report
    assert "teach nothing: 50.0% -> 100.0%" in report


def test_a_full_demo_checkpoints_for_resume_and_a_quick_one_does_not(tmp_path):
    from ladder_hf.demo import grpo_settings

    full = grpo_settings(str(tmp_path / "data"), str(tmp_path / "model"), DemoConfig())
    assert (full["save_strategy"], full["save_steps"], full["save_total_limit"]) == ("steps", 5, 1)
    quick = grpo_settings(str(tmp_path / "data"), str(tmp_path / "model"), DemoConfig(quick=True))
    assert quick["save_strategy"] == "no"
    assert grpo_settings("d", "m", DemoConfig(save_steps=0))["save_strategy"] == "no"
    # on a CPU no activation checkpointing (GRPOConfig's default), which only costs a forward pass
    import torch

    assert full["activation_checkpointing"] is torch.cuda.is_available() and full["bf16"] is False


def test_loss_type_and_kl_reach_the_recipe_config(tmp_path):
    from ladder_hf.demo import grpo_arguments

    _, training_args, _ = grpo_arguments(str(tmp_path / "data"), str(tmp_path), DemoConfig(loss_type="grpo", beta=0.04))
    assert (training_args.loss_type, training_args.beta) == ("grpo", 0.04)
    _, default_args, _ = grpo_arguments(str(tmp_path / "data"), str(tmp_path), DemoConfig())
    assert (default_args.loss_type, default_args.beta) == ("dapo", 0.0)


def test_trained_model_folder_is_reusable(quick_demo):
    from ladder_hf.models import load_model_and_tokenizer

    out, _, _ = quick_demo
    model, tokenizer = load_model_and_tokenizer(str(out / "model"))
    assert model.config.model_type == "llama" and tokenizer.pad_token is not None


def test_rerun_skips_finished_stages_and_refuses_other_settings(quick_demo, tiny_model_dir, problems_file):
    from ladder_hf.cli import main as cli_main

    out, _, summary = quick_demo
    weights = next((out / "model").glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns
    nodes_before = (out / "variants/nodes.jsonl").read_bytes()
    argv = ["demo", "--output_dir", str(out), "--model", tiny_model_dir, "--problem_set", problems_file, "--quick"]
    assert cli_main(argv) == 0
    assert weights.stat().st_mtime_ns == stamp  # no retraining
    assert (out / "variants/nodes.jsonl").read_bytes() == nodes_before
    again = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert again["scores"] == summary["scores"] and again["rewards"] == summary["rewards"]
    with pytest.raises(ValueError, match="different settings"):
        run_demo(DemoConfig(output_dir=str(out), model=tiny_model_dir, problem_set=problems_file, quick=True, seed=5))


def test_roots_slice_is_the_original_problems_only(quick_demo, tmp_path):
    out, config, _ = quick_demo
    info = materialise_dataset(str(out / "variants"), str(tmp_path / "roots"), train_on="roots")
    assert info["per_depth"] == {"0": config.num_train_problems}
    from datasets import load_dataset

    rows = load_dataset(str(tmp_path / "roots"), split="train")
    assert len(rows) == info["rows"] and set(rows["depth"]) == {0}
    with pytest.raises(ValueError):
        materialise_dataset(str(out / "variants"), str(tmp_path / "x"), train_on="everything")


@pytest.mark.slow
def test_quick_demo_on_the_embedded_model(tmp_path, problems_file):
    """The real SmolLM2-135M through every stage (quick budgets): about two minutes on 2 cores."""
    out = tmp_path / "demo"
    summary = run_demo(DemoConfig(output_dir=str(out), problem_set=problems_file, quick=True))
    assert summary["train"]["global_step"] == 2
    assert os.path.isfile(out / "report.md")


def test_model_generator_option_builds_a_tree_with_the_given_model(tiny_model_dir, tmp_path):
    from ladder_hf.demo import build_variants, make_generator
    from ladder_hf.variants import ModelVariantGenerator

    config = DemoConfig(model=tiny_model_dir, generator="model", quick=True, variant_sympy_timeout=0)
    generator = make_generator(config)
    assert isinstance(generator, ModelVariantGenerator)
    assert generator.name == os.path.basename(tiny_model_dir.rstrip("/"))
    nodes = build_variants(PROBLEMS[:1], PROBLEMS[1:2], str(tmp_path / "variants"), config, generator=generator)
    # A random tiny model writes garbage: the root stays, and every kept variant passed QC.
    assert [n["id"] for n in nodes if n["depth"] == 0] == ["t-01"]
    funnel = json.loads((tmp_path / "variants" / "qc.json").read_text(encoding="utf-8"))
    assert funnel["requested"] >= 1 and funnel["kept"] == sum(1 for n in nodes if n["depth"] > 0)


def test_few_shot_prompt_is_real_chat_turns(tiny_model):
    from ladder_hf.problems import FEW_SHOT_EXAMPLES, FEW_SHOT_INSTRUCTION, build_messages

    _, tokenizer = tiny_model
    problem = {"integrand": "x**2", "lower": "", "upper": ""}
    messages = build_messages(problem, "few_shot")
    assert messages[0] == {"role": "system", "content": FEW_SHOT_INSTRUCTION}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(FEW_SHOT_EXAMPLES) + ["user"]
    assert messages[2]["content"] == f"<answer>{FEW_SHOT_EXAMPLES[0][1]}</answer>"
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # every turn opens with the template's own role marker (not text inside a system prompt)
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 2 + 2 * len(FEW_SHOT_EXAMPLES) + 1


def test_quick_demo_grows_the_trees_down_to_the_models_level(tiny_model_dir, tmp_path):
    from ladder_hf.problems import FEW_SHOT_EXAMPLES

    out, problems = tmp_path / "demo", tmp_path / "rich.jsonl"
    # integrands with room below their first variants (the quick demo's trees are one level deep)
    rich = ["x**3*sin(2*x) + exp(3*x)", "x**2*cos(3*x) + 5*x**4", "x*atan(x) + cosh(2*x)", "log(x)**2 + sec(x)**2"]
    write_jsonl(str(problems), [{"id": f"r-{i}", "integrand": f, "lower": "", "upper": ""} for i, f in enumerate(rich)])
    config = DemoConfig(
        output_dir=str(out), model=tiny_model_dir, problem_set=str(problems), quick=True, deepen_rounds=1
    )
    summary = run_demo(config)
    # the random tiny model solves nothing, so every leaf of the depth-1 trees grows one more level
    level = json.loads((out / "model_level.json").read_text(encoding="utf-8"))
    assert summary["model_level"] == level and [row["depth"] for row in level] == [1, 2]
    assert level[0]["never"] == level[0]["nodes"] and level[1]["nodes"] == len(
        read_jsonl(str(out / "variants/nodes.jsonl"))
    )
    assert level[0]["added"] > 0 and level[1]["nodes"] == level[0]["nodes"] + level[0]["added"]
    assert max(int(d) for d in summary["tree_sizes"]) == 2 and summary["dataset"]["rows"] == level[1]["nodes"]
    # below a node the model never solves, only simpler variants are grown
    deeper = [n for n in read_jsonl(str(out / "variants/nodes.jsonl")) if n["depth"] == 2]
    assert deeper and {n["kind"] for n in deeper} == {"easier"}
    rates = read_jsonl(str(out / "level_solve_rates.jsonl"))
    assert len(rates) == level[1]["nodes"] and all(r["solve_rate"] == 0.0 for r in rates)

    # the held-out sets were fixed before the trees grew deeper, and the deeper nodes are guarded against them
    def key(text):
        return str(text).replace(" ", "")

    held_out = read_jsonl(str(out / "problems/test.jsonl")) + read_jsonl(str(out / "problems/test_easy.jsonl"))
    trained = read_jsonl(str(out / "variants/nodes.jsonl"))
    assert not {key(r["integrand"]) for r in held_out} & {key(n["integrand"]) for n in trained}
    assert all(clean_against(held_out, [n for n in trained if n["depth"] > 0]))
    assert not {key(f) for f, _ in FEW_SHOT_EXAMPLES} & {key(r["integrand"]) for r in held_out}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Down to the model's level" in report and f"| 1 | 2 | {level[1]['nodes']} |" in report


def test_level_selection_starts_from_the_deepening_measurement_only_when_it_is_the_same_measurement(tmp_path):
    from ladder_hf.demo import _reuse_level_measurement

    (tmp_path / "level_solve_rates.jsonl").write_text('{"key": "x||", "solve_rate": 0.5, "draws": 4}\n')
    for samples, reused in ((8, False), (4, True)):
        model_dir = tmp_path / f"model-{samples}"
        config = DemoConfig(output_dir=str(tmp_path), deepen_rounds=1, deepen_samples=4, solve_rate_samples=samples)
        _reuse_level_measurement(tmp_path, str(model_dir), config)
        assert (model_dir / "solve_rates.jsonl").is_file() is reused


def test_clean_against_names_what_the_guard_would_not_let_into_a_held_out_set():
    trained = [
        {"id": "a", "integrand": "10*x**2"},
        {"id": "b", "integrand": "cosh(x - 1)"},
        {"id": "c", "integrand": "2*x"},
    ]
    rows = [
        {"integrand": "8*x**2"},  # a constant multiple
        {"integrand": "cosh(x + 2)"},  # a shift
        {"integrand": "-x"},  # a constant multiple of 2*x
        {"integrand": "x*exp(x)"},  # a new family
        {"integrand": "sin(x)", "lower": "0", "upper": "pi"},
    ]
    assert clean_against(rows, trained) == [False, False, False, True, True]
    assert clean_against(rows, []) == [True] * 5


def test_easy_set_leaves_out_variants_whose_antiderivative_needs_a_special_function():
    from ladder_hf.demo import elementary_answer
    from ladder_hf.variants.base import parse_integrand
    from ladder_hf.variants.quality import QualityConfig, solvability_batch

    integrands = ["1/log(x)", "exp(-x**2)", "x*exp(x)", "1/(x + 3)"]
    solved = solvability_batch([parse_integrand(f) for f in integrands], QualityConfig(sympy_timeout=20))
    answers = [s.sympy_antiderivative for s in solved]
    assert all(answers), answers
    assert [elementary_answer({"sympy_antiderivative": a}) for a in answers] == [False, False, True, True]
    assert not elementary_answer({"sympy_antiderivative": ""})  # sympy found none: not easy
    assert not elementary_answer({"sympy_antiderivative": "LambertW(x)"})  # not in the answer language


def test_easy_set_integrates_variants_of_trees_grown_without_sympy():
    # trees grown with variant_sympy_timeout 0 record no antiderivative; the easy set must check them itself
    from ladder_hf.demo import elementary_variants

    nodes = [{"integrand": f, "sympy_antiderivative": ""} for f in ("1/log(x + 2)", "3*x*exp(x)", "exp(-x**2)")]
    nodes += [{"integrand": "1/(x**2 + 1)", "sympy_antiderivative": "atan(x)"}, {"integrand": "sinh(3*x)"}]
    assert [n["integrand"] for n in elementary_variants(nodes, 5, sympy_timeout=20)] == [
        "3*x*exp(x)",
        "1/(x**2 + 1)",
        "sinh(3*x)",
    ]
    assert [n["integrand"] for n in elementary_variants(nodes, 1, sympy_timeout=20)] == ["3*x*exp(x)"]
    assert nodes[1]["sympy_antiderivative"] == ""  # the caller's rows are not modified


def test_demo_trains_on_every_node_and_says_so_when_none_is_at_the_models_level(
    tiny_model_dir, problems_file, tmp_path
):
    out = tmp_path / "demo"
    config = DemoConfig(output_dir=str(out), model=tiny_model_dir, problem_set=problems_file, quick=True)
    config.solve_rate_samples = 1  # --quick turns the selection off; the random tiny model solves nothing
    summary = run_demo(config)
    assert summary["level_selection"] == {"rows": 0, "of": summary["dataset"]["rows"], "samples": 1}
    assert summary["train"]["global_step"] == config.max_steps
    # the selection started from the deepening's measurement and found nothing; the run trained on every row
    assert "solve_rate_samples: 0" in (out / "model/grpo_config.yaml").read_text(encoding="utf-8")
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"None of the {summary['dataset']['rows']} tree nodes was at the base model's level" in report
