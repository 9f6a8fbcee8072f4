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


@pytest.mark.parametrize("command", ["evaluate", "demo", "train", "ttrl"])
def test_every_subcommand_usage_names_it_and_shows_trl_flags_with_defaults(capsys, command):
    import sys

    argv0 = sys.argv[0]
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and sys.argv[0] == argv0  # the dispatcher restores what it borrowed
    text = capsys.readouterr().out
    assert text.startswith(f"usage: ladder-hf {command} ")  # train/ttrl (TRL's parser) said "usage: ladder-hf"
    options = " ".join(text.split())
    assert "--model_name_or_path" in options and "--model-name-or-path" in options and "(default:" in options
    assert "--output_dir" in options


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


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines() if " error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"ladder-hf {command}: error: "), lines[0]
    return lines[0]


def test_a_problem_file_in_which_nothing_parses_exits_2_naming_the_file(tmp_path, capsys):
    unparsable = tmp_path / "typos.jsonl"
    unparsable.write_text('{"integrand": "((("}\n{"integrand": "x**"}\n', encoding="utf-8")
    no_integrand = tmp_path / "questions.jsonl"
    no_integrand.write_text('{"question": "1+1"}\n', encoding="utf-8")
    for path, says in ((unparsable, "parses"), (no_integrand, f"{no_integrand}:1: no integrand")):
        out = tmp_path / f"eval-{path.stem}"
        assert main(["evaluate", "--problem_set", str(path), "--output_dir", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err, "evaluate")
        assert str(path) in line and says in line and '"integrand"' in line and not out.exists()
    # variant trees skip unreadable roots; a file of nothing but those is an error, not an empty tree
    out = tmp_path / "tree"
    argv = ["variants", "generate", "--problems", str(unparsable), "--generator", "symbolic", "--output_dir", str(out)]
    assert main([*argv, "--no_progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, "variants")
    assert f"no problem in {unparsable} parses" in line and not out.exists()


def test_a_bad_row_of_a_problem_file_is_named_by_file_and_line(tmp_path):
    problems = tmp_path / "problems.jsonl"
    good = '{"id": "a", "integrand": "x*exp(x)"}\n'
    cases = [  # the file's text, what the one line says; blank lines count, as in an editor
        (good + "\n" + '{"id": "b", "integrand": "x"}\n{"question": "1+1"}\n', f"{problems}:4: no integrand"),
        (good + '{"id": "q7", "integrand": "x", "lower": "0"}\n', f"{problems}:2 (q7): only one of the bounds"),
        (good + '{"id": "c", "integrand": "x"\n', f"{problems}:2: not valid JSON"),
        (good + '{"id": "last", "integrand": ""}', f"{problems}:2 (last): no integrand"),  # no final newline
    ]
    for text, says in cases:
        problems.write_text(text, encoding="utf-8")
        out = tmp_path / "eval"
        done = _cli(["evaluate", "--problem_set", str(problems), "--output_dir", str(out)], tmp_path)
        assert done.returncode == 2, done.stderr
        line = _one_error_line(done.stderr, "evaluate")
        assert says in line and not out.exists(), (says, line)
        assert "row 0" not in line and "row 1" not in line  # no 0-based row indices for a file


def test_unknown_sets_ids_missing_and_empty_files_are_one_line_naming_what_exists(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    tree = ["variants", "generate", "--generator", "symbolic", "--no_progress", "--output_dir"]
    cases = [  # argv, the command, what the line says
        ([*tree, str(tmp_path / "t1"), "--problems", "mit-2025-q99"], "variants", "sets: mit, mit-2010"),
        ([*tree, str(tmp_path / "t2"), "--problems", str(tmp_path / "nope.jsonl")], "variants",
         f"no problem file '{tmp_path / 'nope.jsonl'}'"),
        (["evaluate", "--output_dir", str(tmp_path / "e"), "--problem_set", str(empty)], "evaluate",
         f"problem set '{empty}' has no problems"),
        (["evaluate", "--output_dir", str(tmp_path / "e"), "--problem_set", "mit-2052", "--model_name_or_path",
          "org/m"], "evaluate", "unknown problem set 'mit-2052'; choose from"),
    ]  # fmt: skip
    for argv, command, says in cases:
        done = _cli(argv, tmp_path)
        assert done.returncode == 2, done.stderr  # the variants cases exited 1, without the one-line form
        line = _one_error_line(done.stderr, command)
        assert says in line and "is empty" not in line, line
    assert not any((tmp_path / name).exists() for name in ("t1", "t2", "e"))


def test_negative_depth_is_refused_before_any_model_loads(tmp_path, capsys):
    out = tmp_path / "tree"
    argv = ["variants", "generate", "--problems", "x*exp(x)", "--generator", "model", "--depth", "-1"]
    argv += ["--model_name_or_path", "org/never-loaded", "--output_dir", str(out)]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, "variants")
    assert "--depth must be >= 0, not -1" in line and not out.exists()


@pytest.mark.parametrize("command", ["train", "ttrl"])
def test_a_missing_config_file_is_named(tmp_path, capsys, command):
    missing = tmp_path / "cofnig.yaml"
    assert main([command, "--config", str(missing)]) == 2
    line = _one_error_line(capsys.readouterr().err, command)
    assert f"config file '{missing}' not found" in line and "recipes/configs/" in line


def test_an_unknown_reward_is_refused_up_front_listing_the_known_ones(tmp_path, capsys):
    import yaml

    config = tmp_path / "config.yaml"
    # grows variants of a bundled set and loads a model that does not exist: reached only if the check is late
    settings = {"model_name_or_path": str(tmp_path / "no-model"), "problems": "mit-2025", "use_cpu": True}
    config.write_text(yaml.safe_dump({**settings, "reward_funcs": ["integration", "acuracy"]}))
    assert main(["train", "--config", str(config), "--output_dir", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert "unknown reward function 'acuracy'" in line and "integration" in line and "think_format_reward" in line
    config.write_text(yaml.safe_dump(settings))
    assert main(["ttrl", "--config", str(config), "--reward_funcs", "format", "nope"]) == 2
    assert "unknown reward function 'nope'" in _one_error_line(capsys.readouterr().err, "ttrl")
    assert not (tmp_path / "out").exists()


def _cli(args: list[str], tmp_path, **env: str):
    import os
    import subprocess
    import sys

    # a fresh Hub cache, so nothing the machine has downloaded answers for the Hub
    environ = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), **env}
    code = "import sys; from ladder_hf.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ, timeout=300)


def test_offline_with_a_model_that_is_not_cached_says_so_before_loading(tmp_path):
    out = tmp_path / "eval"
    done = _cli(["evaluate", "--model_name_or_path", "org/not-cached", "--output_dir", str(out)], tmp_path,
                HF_HUB_OFFLINE="1")  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done.stderr, "evaluate")
    assert "offline (HF_HUB_OFFLINE=1)" in line and "'org/not-cached'" in line and "hf download" in line
    assert not out.exists()


def _closed_port() -> str:
    import socket

    # a port that was just free on 127.0.0.1: nothing listens there, so a connection is refused at once
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


HUB_DOWN_ENV = {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_EVALUATE_OFFLINE": "0", "LADDER_HF_DEBUG": "0"}


def test_a_hub_endpoint_that_is_down_is_one_line_naming_it_within_seconds(tmp_path):
    import time

    down = _closed_port()
    start = time.monotonic()
    done = _cli(["evaluate", "--problem_set", "org/name", "--output_dir", str(tmp_path / "e")], tmp_path,
                HF_ENDPOINT=down, **HUB_DOWN_ENV)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    # the whole of stderr is the one line: no retry warnings from the client, no second copy via our logging
    [line] = done.stderr.strip().splitlines()
    assert _one_error_line(line, "evaluate") == line
    assert f"cannot reach the Hub at {down}" in line and "'org/name'" in line and "HF_ENDPOINT" in line
    assert took < 15, f"{took:.1f} s: the client's retries were not skipped"  # ~30 s of retries before
    assert not (tmp_path / "e").exists()


def test_train_from_a_hub_dataset_with_the_endpoint_down_writes_nothing(tmp_path, tiny_model_dir):
    import time

    down, out = _closed_port(), tmp_path / "run"
    argv = ["train", "--dataset_name", "org/ladder-variants", "--model_name_or_path", tiny_model_dir]
    start = time.monotonic()
    done = _cli([*argv, "--output_dir", str(out), "--use_cpu", "true"], tmp_path, HF_ENDPOINT=down, **HUB_DOWN_ENV)
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done.stderr, "train")
    assert f"cannot reach the Hub at {down} for 'org/ladder-variants'" in line
    assert "check the network or HF_ENDPOINT" in line and "HF_HUB_OFFLINE=1" in line
    assert not out.exists() and took < 60  # no run folder, no run files; no retries (imports take most of it)


def test_a_push_with_the_endpoint_down_is_refused_before_anything_runs(tmp_path):
    down, tree = _closed_port(), tmp_path / "tree"
    tree.mkdir()  # never read: the push is refused on the endpoint alone
    done = _cli(["variants", "push", "--folder", str(tree), "--repo_id", "org/d", "--tag", "v1"], tmp_path,
                HF_ENDPOINT=down, **HUB_DOWN_ENV)  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"cannot reach the Hub at {down} to push to 'org/d'" in _one_error_line(line, "variants")


def test_the_model_card_quick_start_asks_with_the_prompt_the_run_trained_with(tmp_path, tiny_model_dir):
    import json
    from pathlib import Path

    data = tmp_path / "variants.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"v{i}", "integrand": f"x**{i}", "lower": "", "upper": ""}) + "\n" for i in range(1, 5)
        )
    )
    config = Path(__file__).resolve().parents[1] / "recipes" / "configs" / "grpo_tiny.yaml"
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--model_name_or_path", tiny_model_dir, "--dataset_name", str(data)]
    argv += ["--output_dir", str(out), "--max_steps", "1", "--save_strategy", "no", "--system_prompt", "few_shot"]
    done = _cli(argv, tmp_path, OMP_NUM_THREADS="1")
    assert done.returncode == 0, done.stderr[-4000:]
    quick_start = (out / "README.md").read_text().split("## Quick start", 1)[1].split("```", 2)[1]
    # before: build_messages(..., 'default') whatever the run trained with
    assert "build_messages(" in quick_start and "'few_shot')" in quick_start and "'default'" not in quick_start


def test_dir_lists_the_lazy_public_api_and_python_m_ladder_hf_is_the_cli(tmp_path):
    import subprocess
    import sys

    # a fresh interpreter: dir() must list the lazy names before anything resolved them
    listed = subprocess.run([sys.executable, "-c", "import ladder_hf, sys; print(' '.join(dir(ladder_hf)))"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    names = set(listed.stdout.split())
    assert {"LadderDataset", "integration_reward", "load_problems", "verify_antiderivative", "__version__"} <= names
    import ladder_hf

    assert set(ladder_hf.__all__) <= names  # before: only the eager globals (no LadderDataset, no rewards)
    for args, code, shown in (
        (["--version"], 0, f"ladder-hf {ladder_hf.__version__}"),
        (["--help"], 0, "usage: ladder-hf [-h] [--version] command"),
        (["register-metric", "--help"], 0, "usage: ladder-hf register-metric"),
        (["nope"], 2, "unknown command 'nope'"),
    ):
        done = subprocess.run([sys.executable, "-m", "ladder_hf", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)  # fmt: skip
        assert done.returncode == code, done.stderr  # before: "No module named ladder_hf.__main__"
        assert shown in done.stdout + done.stderr


def test_the_grpo_recipe_with_the_endpoint_down_is_one_line_within_seconds(tmp_path, tiny_model_dir):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "grpo.py"
    down, out = _closed_port(), tmp_path / "run"
    argv = ["--dataset_name", "org/x", "--model_name_or_path", tiny_model_dir, "--output_dir", str(out)]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_ENDPOINT": down, **HUB_DOWN_ENV}
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(recipe), *argv, "--use_cpu", "true"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if " error: " in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert errors[0].startswith(f"recipes/grpo.py: error: cannot reach the Hub at {down} for 'org/x'")
    assert "check the network or HF_ENDPOINT" in errors[0]
    # before: a traceback after ~30 s of huggingface_hub retries on top of the imports (~10 s on 2 busy cores);
    # now the one probe, so the imports are nearly all of it
    assert took < 25, f"{took:.1f} s: the client's retries were not skipped"
    assert not out.exists() and not (tmp_path / "hf-home").exists()  # nothing written, not even a cache
