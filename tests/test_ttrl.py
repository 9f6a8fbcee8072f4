"""TTRL: per-problem adaptation on variants only, bitwise weight restoration, resumable results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladder_hf.store import write_jsonl

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "recipes" / "configs" / "ttrl_tiny.yaml"
PROBLEMS = [
    {"id": "t-poly", "integrand": "x**3 + 2*x", "lower": "", "upper": ""},
    {"id": "t-trig", "integrand": "x*cos(x) + sin(x)", "lower": "", "upper": ""},
]


class Interrupted(Exception):
    """Raised by a test callback to kill a run in the middle of a problem."""


def _args(tmp_path: Path, tiny_model_dir: str, *overrides: str):
    from ladder_hf.ttrl import make_parser

    problems = tmp_path / "problems.jsonl"
    write_jsonl(str(problems), PROBLEMS)
    argv = [
        "--config",
        str(TINY_CONFIG),
        "--model_name_or_path",
        tiny_model_dir,
        "--problems",
        str(problems),
        "--output_dir",
        str(tmp_path / "out"),
        *overrides,
    ]
    return make_parser().parse_args_and_config(argv)


def _callbacks(original: dict, log: list, interrupt_problem: int | None = None):
    """Record, for each problem's trainer, whether the weights moved during training; optionally
    raise in the middle of the N-th problem (0-based) of this run."""
    from transformers import TrainerCallback

    from ladder_hf.ttrl import weights_equal

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            log.append({"begin": True})

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if interrupt_problem is not None and len(log) - 1 == interrupt_problem and state.global_step == 1:
                raise Interrupted

        def on_train_end(self, args, state, control, model=None, **kwargs):
            log[-1]["changed"] = bool(weights_equal(model, original))

    return [Probe()]


@pytest.fixture(scope="module")
def original_weights(tiny_model_dir):
    from ladder_hf.models import load_model_and_tokenizer
    from ladder_hf.ttrl import snapshot_weights

    model, _ = load_model_and_tokenizer(tiny_model_dir, dtype="float32")
    return snapshot_weights(model)


def test_exclusion_guard_refuses_the_test_problem():
    from ladder_hf.ttrl import assert_excludes_test_problem, variants_to_dataset

    problem = {"id": "p", "integrand": "x**2 + 1", "lower": "", "upper": ""}
    ok = [{"id": "v1", "integrand": "x**2", "lower": "", "upper": ""}]
    assert_excludes_test_problem(ok, problem)
    ds = variants_to_dataset(ok, problem)
    assert ds[0]["prompt"][-1]["content"].endswith("x**2 dx")
    with pytest.raises(ValueError, match="test problem"):
        assert_excludes_test_problem([*ok, {"id": "v2", "integrand": " x**2 +  1", "lower": "", "upper": ""}], problem)
    with pytest.raises(ValueError, match="test problem"):
        variants_to_dataset([{"id": "p", "integrand": "x", "lower": "", "upper": ""}], problem)
    # Same integrand with bounds is a different problem.
    assert_excludes_test_problem([{"id": "v3", "integrand": "x**2 + 1", "lower": "0", "upper": "1"}], problem)


def test_read_results_cuts_a_torn_last_line(tmp_path):
    from ladder_hf.ttrl import append_result, read_results

    path = tmp_path / "r.jsonl"
    append_result(path, {"id": "a"})
    with open(path, "a") as f:
        f.write('{"id": "b", "trunc')
    assert [r["id"] for r in read_results(path)] == ["a"]
    append_result(path, {"id": "c"})
    assert [r["id"] for r in read_results(path)] == ["a", "c"]


def test_snapshot_restore_is_bitwise(tiny_model):
    import torch

    from ladder_hf.ttrl import restore_weights, snapshot_weights, weights_equal

    model, _ = tiny_model
    snap = snapshot_weights(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3)
    assert weights_equal(model, snap)
    restore_weights(model, snap)
    assert weights_equal(model, snap) == []


def test_ttrl_two_problems_restores_weights_and_resumes(tmp_path, tiny_model_dir, original_weights):
    from ladder_hf.ttrl import BASE_PASS1, PASS1_AFTER, SOLVED_DURING, read_results, run_ttrl

    ttrl_args, training_args, model_args = _args(tmp_path, tiny_model_dir)
    out = Path(training_args.output_dir)

    # Run 1: killed in the middle of the second problem.
    log: list = []
    with pytest.raises(Interrupted):
        run_ttrl(ttrl_args, training_args, model_args, callbacks=_callbacks(original_weights, log, interrupt_problem=1))
    first = read_results(out / "results.jsonl")
    assert [r["id"] for r in first] == ["t-poly"]
    assert len(read_results(out / "base.jsonl")) == 2  # base pass@1 is computed once, before any adaptation
    assert log[0]["changed"], "training did not move the weights: the restore check would be vacuous"

    rec = first[0]
    assert rec["restore"] == {"strategy": "snapshot", "weights_equal_original": True}
    assert 0 < rec["variants"]["count"] <= ttrl_args.max_variants
    integrands = {"".join(v["integrand"].split()) for v in rec["variants"]["rows"]}
    assert "x**3+2*x" not in integrands
    assert all(v["depth"] >= 1 for v in rec["variants"]["rows"])
    assert [e["step"] for e in rec["rewards"]] == [1, 2]
    # eval_every=1: the test problem was sampled at steps 1 and 2, eval_samples answers each.
    assert [d["step"] for d in rec["during_ttrl"]] == [1, 2]
    assert all(len(d["samples"]) == ttrl_args.eval_samples for d in rec["during_ttrl"])
    assert len(rec["final_samples"]) == ttrl_args.pass_at_1_samples
    assert rec["k_during_ttrl"] == 2 * ttrl_args.eval_samples + ttrl_args.pass_at_1_samples
    assert set(rec["scores"]) == {BASE_PASS1, PASS1_AFTER, SOLVED_DURING}
    assert rec["scores"][PASS1_AFTER] == sum(s["correct"] for s in rec["final_samples"]) / len(rec["final_samples"])

    # Run 2: resumes; the finished problem is neither redone nor lost.
    log2: list = []
    summary = run_ttrl(ttrl_args, training_args, model_args, callbacks=_callbacks(original_weights, log2))
    assert len(log2) == 1, "only the unfinished problem may be trained on resume"
    assert log2[0]["changed"]
    records = read_results(out / "results.jsonl")
    assert [r["id"] for r in records] == ["t-poly", "t-trig"]
    assert records[0] == first[0]
    assert records[1]["restore"]["weights_equal_original"] is True
    assert len(read_results(out / "base.jsonl")) == 2

    # Run 3: nothing left to do.
    log3: list = []
    run_ttrl(ttrl_args, training_args, model_args, callbacks=_callbacks(original_weights, log3))
    assert log3 == []
    assert len(read_results(out / "results.jsonl")) == 2

    # Report: summary (markdown + JSON) and reward-curve plots.
    report = out / "report"
    data = json.loads((report / "summary.json").read_text())
    assert data == json.loads(json.dumps(summary))
    assert data["n_problems"] == 2 and [r["id"] for r in data["problems"]] == ["t-poly", "t-trig"]
    md = (report / "summary.md").read_text()
    for label in ("base pass@1", "pass@1 after TTRL", "solved during TTRL (verifier-selected pass@k, paper's metric)"):
        assert label in md
    for name in ("t-poly.png", "t-trig.png", "all_problems.png"):
        assert (report / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("restore", ["lora", "reload"])
def test_other_restore_strategies_give_back_the_originals(tmp_path, tiny_model_dir, original_weights, restore):
    from ladder_hf.ttrl import read_results, run_ttrl

    ttrl_args, training_args, model_args = _args(
        tmp_path, tiny_model_dir, "--restore", restore, "--max_problems", "1", "--max_steps", "1", "--eval_every", "0"
    )
    if restore == "lora":
        model_args.lora_r, model_args.lora_alpha = 4, 8
    log: list = []
    run_ttrl(ttrl_args, training_args, model_args, callbacks=_callbacks(original_weights, log))
    (rec,) = read_results(Path(training_args.output_dir) / "results.jsonl")
    assert rec["restore"] == {"strategy": restore, "weights_equal_original": True}
    assert rec["during_ttrl"] == [] and rec["k_during_ttrl"] == ttrl_args.pass_at_1_samples
    if restore == "reload":
        assert log[0]["changed"]


@pytest.mark.slow
def test_cli_main(tmp_path, tiny_model_dir, capsys):
    from ladder_hf.cli import main

    problems = tmp_path / "problems.jsonl"
    write_jsonl(str(problems), PROBLEMS[:1])
    argv = ["ttrl", "--config", str(TINY_CONFIG), "--model_name_or_path", tiny_model_dir]
    argv += ["--problems", str(problems), "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]
    assert main(argv) == 0
    assert "pass@1 after TTRL" in capsys.readouterr().out
    assert (tmp_path / "out" / "report" / "summary.md").is_file()


class SolvesSome:
    """A backend that answers each integrand it knows correctly in ``share`` of the samples and 0 otherwise."""

    def __init__(self, share: dict[str, float]):
        self.share, self.asked = share, []

    def generate(self, conversations, *, n=1, **kwargs):
        import re

        import sympy

        out = []
        for conversation in conversations:
            integrand = re.search(r"∫\S* (.+) dx$", conversation[-1]["content"]).group(1)
            self.asked.append(integrand)
            right = round(n * self.share.get(integrand, 0.0))
            answer = sympy.integrate(sympy.sympify(integrand), sympy.Symbol("x"))  # our own strings, not a model's
            out.append([f"<answer>{answer}</answer>"] * right + ["<answer>0</answer>"] * (n - right))
        return out


def test_level_selection_trains_on_the_variants_the_model_sometimes_solves(tmp_path):
    from ladder_hf.configs import TTRLArguments
    from ladder_hf.ttrl import training_variants

    rows = [{"id": f"v{i}", "integrand": f, "depth": 1} for i, f in enumerate(["2*x", "cos(x)", "exp(x)", "x**2"])]
    args = TTRLArguments(solve_rate_samples=4, max_variants=8, system_prompt="default")
    backend = SolvesSome({"2*x": 1.0, "cos(x)": 0.5, "x**2": 0.25})
    store = str(tmp_path / "rates.jsonl")
    kept, level = training_variants(rows, args, backend, store)
    assert [r["integrand"] for r in kept] == ["cos(x)", "x**2"]  # not the always-solved 2*x, not exp(x)
    assert level["edge"] == 2 and level["trained_on"] == "edge" and level["samples"] == 4
    assert level["per_depth"][0]["always"] == 1 and level["per_depth"][0]["never"] == 1

    # the rates are stored: a rerun (a resumed problem) samples nothing again
    again = SolvesSome({})
    assert training_variants(rows, args, again, store)[0] == kept and again.asked == []

    # nothing at the model's level: every variant is kept, as without the selection, and the record says so
    none_kept, level = training_variants(rows, args, SolvesSome({}), str(tmp_path / "other.jsonl"))
    assert none_kept == rows and level["trained_on"] == "all" and level["edge"] == 0
    # off: no measurement, the first max_variants rows
    assert training_variants(rows, TTRLArguments(max_variants=3), None) == (rows[:3], None)


def test_deepening_grows_the_problem_tree_below_variants_the_model_never_solves(tmp_path):
    from ladder_hf.configs import TTRLArguments
    from ladder_hf.ttrl import build_variants, make_generators

    problem = {"id": "p", "integrand": "x*cos(x) + sin(x)", "lower": "", "upper": ""}
    flat_args = TTRLArguments(variant_depth=1, variants_per_node=3, max_variants=8)
    flat = build_variants(problem, flat_args, str(tmp_path / "flat"), make_generators(flat_args))
    deep_args = TTRLArguments(
        variant_depth=1, variants_per_node=3, max_variants=8, solve_rate_samples=2, deepen_rounds=2
    )
    backend = SolvesSome({})  # solves nothing: every leaf is grown
    deep = build_variants(problem, deep_args, str(tmp_path / "deep"), make_generators(deep_args), backend)
    assert max(r["depth"] for r in flat) == 1
    assert max(r["depth"] for r in deep) >= 2 and len(deep) > len(flat)
    assert problem["integrand"] not in backend.asked  # the test problem is never sampled as a variant
    assert (tmp_path / "deep" / "level_solve_rates.jsonl").is_file()
    with pytest.raises(ValueError, match="solve_rate_samples"):
        build_variants(problem, TTRLArguments(deepen_rounds=1), str(tmp_path / "x"), make_generators(flat_args))


def test_ttrl_with_level_selection_records_the_level_and_pooled_intervals(tmp_path, tiny_model_dir):
    from ladder_hf.ttrl import BASE_PASS1, PASS1_AFTER, read_results, run_ttrl

    overrides = ["--max_problems", "1", "--max_steps", "1", "--solve_rate_samples", "2"]
    ttrl_args, training_args, model_args = _args(tmp_path, tiny_model_dir, *overrides)
    summary = run_ttrl(ttrl_args, training_args, model_args)
    (rec,) = read_results(Path(training_args.output_dir) / "results.jsonl")
    # a random tiny model solves no variant: the selection falls back to all of them and says so
    assert rec["level"]["trained_on"] == "all" and rec["level"]["edge"] == 0
    assert sum(t["rows"] for t in rec["level"]["per_depth"]) >= rec["variants"]["count"] > 0
    pooled = summary["pooled"]
    assert pooled[BASE_PASS1]["answers"] == pooled[PASS1_AFTER]["answers"] == ttrl_args.pass_at_1_samples
    assert pooled[BASE_PASS1]["ci95"][1] > 0  # an interval, not a point
    text = (Path(training_args.output_dir) / "report" / "summary.md").read_text()
    assert "(0 at level)" in text and "95% Wilson" in text


@pytest.mark.slow
def test_model_generator_path_restores_weights(tmp_path, tiny_model_dir, original_weights):
    """generator=model: the adapted model itself writes variants (a random tiny model writes few or
    none that parse; then the problem is answered without training). Either way the record is
    complete and the weights come back."""
    from ladder_hf.ttrl import read_results, run_ttrl

    overrides = ["--generator", "model", "--max_problems", "1", "--max_steps", "1", "--variant_depth", "1"]
    ttrl_args, training_args, model_args = _args(tmp_path, tiny_model_dir, *overrides)
    run_ttrl(ttrl_args, training_args, model_args, callbacks=_callbacks(original_weights, []))
    (rec,) = read_results(Path(training_args.output_dir) / "results.jsonl")
    assert rec["variants"]["generator"] == "model"
    assert rec["restore"]["weights_equal_original"] is True
    assert len(rec["final_samples"]) == ttrl_args.pass_at_1_samples
    assert (Path(training_args.output_dir) / "variants" / "t-poly" / "model" / "nodes.jsonl").is_file()


@pytest.mark.parametrize("name", ["ttrl_tiny.yaml", "ttrl_smollm2_cpu.yaml", "ttrl_level_cpu.yaml"])
def test_shipped_ttrl_configs_parse_and_their_problems_load(name):
    from ladder_hf.rewards import REWARD_FUNCS
    from ladder_hf.ttrl import make_parser, select_problems

    ttrl_args, training_args, _ = make_parser().parse_args_and_config(
        ["--config", str(REPO / "recipes" / "configs" / name)]
    )
    assert set(ttrl_args.reward_funcs) <= set(REWARD_FUNCS)
    assert len(training_args.reward_weights or ttrl_args.reward_funcs) == len(ttrl_args.reward_funcs)
    assert select_problems(ttrl_args)  # relative problem paths are read from the working directory (the repo root)
    assert not ttrl_args.deepen_rounds or ttrl_args.solve_rate_samples > 0
