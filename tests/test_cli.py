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
