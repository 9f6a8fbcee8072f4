"""The command line: everyday mistakes end with one line and exit code 2; --debug keeps the traceback."""

from __future__ import annotations

import pytest

from ladder_hf.cli import main


def test_a_mistyped_problem_set_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--problem_set", "mit-2052", "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("ladder-hf evaluate: error: unknown problem set 'mit-2052'; choose from")
    assert "mit-2025" in err[0] and not out.exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown problem set"):
        main(["evaluate", "--problem_set", "mit-2052", "--output_dir", str(tmp_path / "e"), "--debug"])
    monkeypatch.setenv("LADDER_HF_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown problem set"):
        main(["evaluate", "--problem_set", "mit-2052", "--output_dir", str(tmp_path / "e")])


def test_a_missing_problem_file_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["evaluate", "--problem_set", str(missing), "--output_dir", str(tmp_path / "e")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_trl_flag_names_and_dash_aliases_are_accepted():
    from transformers import HfArgumentParser

    from ladder_hf.demo import DemoConfig
    from ladder_hf.evaluation import EvaluationConfig

    (evaluation,) = HfArgumentParser(EvaluationConfig).parse_args_into_dataclasses(
        args=["--model_name_or_path", "org/model", "--output-dir", "out", "--problem-set", "mit-2024"]
    )
    assert (evaluation.model, evaluation.output_dir, evaluation.problem_set) == ("org/model", "out", "mit-2024")
    (demo,) = HfArgumentParser(DemoConfig).parse_args_into_dataclasses(args=["--model-name-or-path", "org/m"])
    assert demo.model == "org/m"


def test_grpo_recipe_without_arguments_runs_the_cpu_recipe_and_help_lists_configs():
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "grpo.py"
    spec = importlib.util.spec_from_file_location("grpo_recipe", recipe)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.resolve_argv([], has_gpu=False) == ["--config", str(module.CPU_CONFIG)]
    assert module.CPU_CONFIG.is_file()
    assert module.resolve_argv([], has_gpu=True) == [] and module.resolve_argv(["--x"], False) == ["--x"]
    help_text = subprocess.run([sys.executable, str(recipe), "--help"], capture_output=True, text=True, timeout=300)
    assert help_text.returncode == 0 and "smollm2_cpu.yaml" in help_text.stdout


@pytest.mark.parametrize(
    ("command", "shown", "required"),
    [
        ("generate", ["--output_dir OUTPUT_DIR, --output-dir OUTPUT_DIR, --out OUTPUT_DIR", "(default: 2)",
                      "(default: model)", "--model_name_or_path", "--model MODEL_NAME_OR_PATH", "(default: True)"],
         ("--problems", "--output_dir")),
        ("push", ["--repo_id REPO_ID, --repo-id REPO_ID, --repo REPO_ID", "--revision REVISION", "(default: main)",
                  "--token TOKEN", "FOLDER"], ("--tag", "--folder")),
    ],
)  # fmt: skip
def test_variants_help_names_the_subcommand_and_shows_defaults(capsys, command, shown, required):
    with pytest.raises(SystemExit) as done:
        main(["variants", command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: ladder-hf variants {command} ")
    options = " ".join(text.split("options:")[1].split())  # argparse wraps lines: compare with whitespace collapsed
    for piece in shown:
        assert piece in options, piece
    first, after = required  # a required flag has no default to show
    assert "(default:" not in options.split(first, 1)[1].split(after, 1)[0]


def test_variants_flags_new_names_and_old_spellings_parse_alike():
    from ladder_hf.variants.cli import GenerateConfig, PushConfig, build_parser, parse_config

    new = ["generate", "--problems", "x", "sin(x)", "--output_dir", "o", "--model_name_or_path", "org/m"]
    new += ["--base_url", "http://h/v1", "--variants_per_node", "3", "--no_sympy", "--no_progress", "--no_constrained"]
    old = ["generate", "--problems", "x", "sin(x)", "--out", "o", "--model", "org/m", "--base-url", "http://h/v1"]
    old += ["--variants-per-node", "3", "--no-sympy", "--no-progress", "--no-constrained"]
    dashed = ["generate", "--problems", "x", "sin(x)", "--output-dir", "o", "--model-name-or-path", "org/m"]
    dashed += ["--base-url", "http://h/v1", "--variants-per-node", "3", "--sympy", "false", "--progress", "false"]
    expected = GenerateConfig(["x", "sin(x)"], "o", model_name_or_path="org/m", base_url="http://h/v1",
                              variants_per_node=3, sympy=False, progress=False, constrained=False)  # fmt: skip
    assert parse_config(new) == parse_config(old) == expected
    assert parse_config([*dashed, "--constrained", "false"]) == expected
    defaults = parse_config(["generate", "--problems", "x", "--out", "o"])
    assert (defaults.sympy, defaults.progress, defaults.constrained, defaults.extend) == (True, True, True, False)

    push_new = ["push", "--folder", "v", "--repo_id", "org/d", "--tag", "v1", "--revision", "dev", "--token", "t"]
    push_old = ["push", "v", "--repo", "org/d", "--tag", "v1", "--revision", "dev", "--token", "t"]
    assert parse_config(push_new) == parse_config(push_old) == PushConfig("org/d", "v1", "v", "dev", token="t")
    # build_parser() is the same parser family (tests and tools read its namespace)
    assert build_parser().parse_args(push_old).repo_id == "org/d"


def test_variants_bad_command_lines_are_argparse_errors(capsys):
    bad = [
        ["variants", "push", "--repo_id", "org/d", "--tag", "v1"],  # no folder
        ["variants", "generate", "--out", "o"],  # no problems
        ["variants", "generate", "--problems", "x", "--out", "o", "--no-such-flag"],
        ["variants", "pull"],
    ]
    for argv in bad:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        err = capsys.readouterr().err
        assert "usage: ladder-hf variants" in err and "Traceback" not in err
    assert "invalid choice: 'pull'" in err and "generate" in err and "push" in err  # names the real subcommands


def test_variants_generate_runs_with_trl_flag_names(tmp_path, capsys):
    import json

    out = tmp_path / "tree"
    argv = ["variants", "generate", "--problems", "x**2*exp(x)", "--generator", "symbolic", "--depth", "1"]
    argv += ["--output_dir", str(out), "--model_name_or_path", "unused-by-symbolic", "--variants_per_node", "2"]
    assert main([*argv, "--no_sympy", "--no_progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(out) and summary["nodes"] == len((out / "nodes.jsonl").read_text().splitlines())
    assert summary["per_depth"]["0"] == 1 and summary["qc_funnel"]["kept"] >= 1
