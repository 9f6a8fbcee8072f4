"""The integration_bee metric: scoring, pass@k, majority vote, and how evaluate finds it."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ladder_hf.metrics import main as metrics_main
from ladder_hf.metrics import metric_path, modules_cache, register, shim_path, shim_source
from ladder_hf.metrics.integration_bee.scoring import (
    answer_fingerprint,
    default_ks,
    extract_prediction,
    group_answers,
    majority_vote,
    pass_at_k,
    resolve_reference,
    score,
)

X2 = {"integrand": "x**2", "lower": "", "upper": ""}
SIN_0_PI = {"integrand": "sin(x)", "lower": "0", "upper": "pi"}


@pytest.fixture(scope="module")
def bee():
    from ladder_hf.metrics.integration_bee.integration_bee import IntegrationBee

    return IntegrationBee(keep_in_memory=True)


# ------------------------------------------------------------------------------------------ pass@k


def _pass_at_k_by_enumeration(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in draw) for draw in draws) / len(draws)


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_pass_at_k_matches_enumeration_of_all_draws(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_by_enumeration(n, c, k))


def test_pass_at_k_rejects_impossible_arguments():
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(6) == [1, 2, 4, 6]


# -------------------------------------------------------------------------------- answers, references


def test_extract_prediction_modes():
    completion = "Using the power rule. <answer>x**3/3</answer>"
    assert extract_prediction(completion) == "x**3/3"
    assert extract_prediction(completion, "tagged") == "x**3/3"
    assert extract_prediction("x**3/3") == "x**3/3"
    assert extract_prediction("x**3/3", "tagged") is None
    assert extract_prediction("  ", "bare") is None
    with pytest.raises(ValueError):
        extract_prediction("x", "loose")


def test_resolve_reference_fills_bounds_and_rejects_garbage():
    assert resolve_reference({"integrand": "x"}) == {"integrand": "x", "lower": "", "upper": ""}
    with pytest.raises(TypeError):
        resolve_reference(3)
    with pytest.raises(ValueError):
        resolve_reference({"lower": "0"})
    with pytest.raises(KeyError):
        resolve_reference("no-such-problem-id")


# -------------------------------------------------------------------------------- scoring, one sample


def test_single_predictions_correct_and_incorrect(bee):
    predictions = [
        "The power rule gives <answer>x**3/3</answer>",  # correct antiderivative
        "<answer>x**3/3 + 7</answer>",  # correct: differs by a constant
        "<answer>x**3</answer>",  # wrong
        "I am not sure.",  # no answer at all
        "2",  # bare answer, correct definite value
        "<answer>-2</answer>",  # wrong sign
    ]
    references = [X2, X2, X2, X2, SIN_0_PI, SIN_0_PI]
    out = bee.compute(predictions=predictions, references=references)
    assert out["correct"] == [True, True, False, False, True, False]
    assert out["accuracy"] == pytest.approx(3 / 6)
    assert out["count"] == 6
    assert out["answers"][0] == "x**3/3"
    assert out["answers"][3] == "I am not sure."  # auto mode: untagged text is taken as a bare answer
    assert "per_year" not in out and "pass@1" not in out


def test_tagged_format_ignores_untagged_text(bee):
    out = bee.compute(predictions=["x**3/3", "<answer>x**3/3</answer>"], references=[X2, X2], answer_format="tagged")
    assert out["correct"] == [False, True]
    assert out["answers"][0] is None
    assert out["answer_rate"] == pytest.approx(0.5)


def test_hostile_answers_are_rejected_not_executed(bee, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"__import__('os').system('touch {marker}')"
    out = bee.compute(predictions=[hostile, "x" * 50_000], references=[X2, X2])
    assert out["correct"] == [False, False]
    assert not marker.exists()


def test_references_must_be_ids_or_dicts(bee):
    with pytest.raises((TypeError, ValueError)):
        bee.compute(predictions=["x"], references=[3])
    with pytest.raises(ValueError):
        bee.compute(predictions=["x"], references=[{"integrand": "x", "bounds": "0,1"}])


# -------------------------------------------------------------------------------- several samples


def test_fingerprints_identify_equivalent_answers():
    a = answer_fingerprint("x**3/3", definite=False)
    b = answer_fingerprint("(x**3 + 3)/3", definite=False)  # differs by a constant: same antiderivative
    c = answer_fingerprint("x**3", definite=False)
    assert a[0] == b[0] == c[0] == "ok"
    assert group_answers(["x**3/3", "(x**3 + 3)/3", "x**3"], [a, b, c]) == [0, 0, 1]
    d1 = answer_fingerprint("2", definite=True)
    d2 = answer_fingerprint("4*sin(pi/6)", definite=True)
    assert group_answers(["2", "4*sin(pi/6)"], [d1, d2]) == [0, 0]
    assert answer_fingerprint("x +* 2", definite=False)[0] == "unparseable"


def test_majority_vote_prefers_largest_group_then_first():
    assert majority_vote([0, 1, 1, None], [True, False, False, False]) == (1, False)
    assert majority_vote([0, 1, 0, 1], [True, False, True, False]) == (0, True)
    assert majority_vote([None, None], [False, False]) == (None, False)


def test_pass_at_k_and_numerically_grouped_majority_vote(bee):
    predictions = [
        # three different spellings of one correct antiderivative outvote two identical wrong ones;
        # grouping by identical strings would pick the wrong "x**3".
        ["<answer>x**3</answer>", "<answer>x**3/3</answer>", "<answer>x**3</answer>", "x**3/3 + 5", "(x**3+3)/3"],
        ["<answer>0</answer>", "<answer>0</answer>", "<answer>0</answer>", "2", "<answer>1</answer>"],
    ]
    out = bee.compute(predictions=predictions, references=[X2, SIN_0_PI])
    assert out["num_correct"] == [3, 1]
    assert out["correct"][0] == [False, True, False, True, True]
    assert out["accuracy"] == pytest.approx((3 / 5 + 1 / 5) / 2)
    assert out["pass@1"] == pytest.approx(out["accuracy"])
    assert out["pass@2"] == pytest.approx((pass_at_k(5, 3, 2) + pass_at_k(5, 1, 2)) / 2)
    assert out["pass@5"] == pytest.approx(1.0)
    assert out["majority_correct"] == [True, False]
    assert out["majority_vote_accuracy"] == pytest.approx(0.5)
    assert out["majority_answer"] == ["x**3/3", "0"]


def test_custom_k_and_invalid_k(bee):
    out = bee.compute(predictions=[["x**3/3", "x"]], references=[X2], k=[2])
    assert "pass@2" in out and "pass@1" not in out
    with pytest.raises(ValueError):
        bee.compute(predictions=[["x**3/3", "x"]], references=[X2], k=[3])


def test_score_function_matches_metric(bee):
    predictions, references = ["<answer>x**3/3</answer>", "1"], [X2, SIN_0_PI]
    direct = score(predictions, references)
    via_metric = bee.compute(predictions=predictions, references=references)
    assert direct["correct"] == via_metric["correct"] == [True, False]


# -------------------------------------------------------------------------------- bundled problems


def _official_answer(row: dict) -> str | None:
    for key in ("answer", "answer_sympy", "answer_machine", "solution"):
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key]
    return None


def test_bundled_ids_official_answers_and_per_year(bee):
    from ladder_hf.problems import load_problems

    try:
        rows = load_problems("mit-2025")[:3] + load_problems("mit-2024")[:2]
    except (ValueError, FileNotFoundError) as err:
        pytest.fail(f"bundled MIT data missing: {err}")
    rows = [r for r in rows if r.get("verified", True) and _official_answer(r)]
    assert rows, "no verified official answers in the bundled data"
    predictions = [f"<answer>{_official_answer(r)}</answer>" for r in rows]
    predictions[0] = "<answer>x + 12345</answer>"  # one deliberately wrong answer
    out = bee.compute(predictions=predictions, references=[r["id"] for r in rows], timeout=5.0)
    assert out["correct"] == [False] + [True] * (len(rows) - 1)
    assert out["ids"] == [r["id"] for r in rows]
    years = {str(r["year"]) for r in rows}
    assert set(out["per_year"]) == years
    assert sum(v["count"] for v in out["per_year"].values()) == len(rows)
    first_year = str(rows[0]["year"])
    n_first = sum(str(r["year"]) == first_year for r in rows)
    assert out["per_year"][first_year]["accuracy"] == pytest.approx((n_first - 1) / n_first)


# -------------------------------------------------------------------------------- registration with evaluate


def _env(modules_cache_dir: Path, tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(
        HF_EVALUATE_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_MODULES_CACHE=str(modules_cache_dir),
        HF_EVALUATE_CACHE=str(tmp_path / "evaluate-cache"),
        HF_HOME=str(tmp_path / "hf-home"),
    )
    return env


def _python(code: str, cwd: Path, env: dict, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


_LOAD_BY_NAME = """
    import json, sys
    import evaluate
    assert "ladder_hf" not in sys.modules
    bee = evaluate.load("integration_bee")
    out = bee.compute(predictions=["<answer>x**3/3</answer>", "<answer>x**3</answer>"],
                      references=[{"integrand": "x**2"}, {"integrand": "x**2"}])
    print(json.dumps({"cls": type(bee).__name__, "correct": out["correct"], "reasons": out["reasons"]}))
"""


def test_bare_name_after_explicit_registration_offline_other_cwd(tmp_path):
    """The documented path: `python -m ladder_hf.metrics` once, then any process, any cwd, offline,
    without importing ladder_hf, loads the metric by bare name from a fresh modules cache."""
    cache, cwd = tmp_path / "modules", tmp_path / "elsewhere"
    cwd.mkdir()
    env = _env(cache, tmp_path)
    reg = subprocess.run(
        [sys.executable, "-m", "ladder_hf.metrics"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert reg.returncode == 0, reg.stderr
    assert str(cache) in reg.stdout
    proc = _python(_LOAD_BY_NAME, cwd, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["cls"], result["correct"]) == ("IntegrationBee", [True, False]), result


_LOAD_OR_SAY_WHY = """
    import evaluate
    try:
        print("loaded", type(evaluate.load("integration_bee")).__name__)
    except FileNotFoundError as err:
        print("not found:", err)
"""


def test_bare_name_fails_without_registration(tmp_path):
    """Right after install (a fresh cache nothing registered into) the bare name is not found, with evaluate's
    own message; the README and the metric card quote that message beside the fix, and the fix works."""
    cache, cwd = tmp_path / "modules", tmp_path / "elsewhere"
    cwd.mkdir()
    env = _env(cache, tmp_path)
    proc = _python(_LOAD_OR_SAY_WHY, cwd, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    # evaluate looks in a local folder, on the Hub and in its modules cache, with no hook for a package to add
    # the fix to this message: the docs say what registers the name, next to the message a user searches for
    said = "Module 'integration_bee' doesn't exist on the Hugging Face Hub either."
    assert last.startswith("not found:") and said in last, last
    root = Path(__file__).resolve().parents[1]
    for doc in (root / "README.md", Path(metric_path()) / "README.md"):
        text = " ".join(doc.read_text(encoding="utf-8").split())
        assert said in text, doc  # before: neither quoted the failure, so searching for it found nothing
        after = text[text.index(said) :][:600]
        assert "ladder-hf register-metric" in after, doc  # ... and the fix follows it
    fix = subprocess.run([sys.executable, "-m", "ladder_hf", "register-metric"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert fix.returncode == 0, fix.stderr
    again = _python(_LOAD_OR_SAY_WHY, cwd, env)
    assert again.stdout.strip().splitlines()[-1] == "loaded IntegrationBee", again.stdout + again.stderr[-3000:]


_IMPORT_EVERYTHING = """
    import os, sys, threading
    import ladder_hf, ladder_hf.verifier, ladder_hf.rewards, ladder_hf.metrics, ladder_hf.cli, ladder_hf.evaluation

    def children():
        tasks = os.listdir("/proc/self/task")
        return [c for t in tasks for c in open(f"/proc/self/task/{t}/children").read().split()]

    print("THREADS", threading.active_count(), "CHILDREN", len(children()))
    # The verifier's sandbox workers import ladder_hf too: checking answers must not register either.
    from ladder_hf.verifier import verify_antiderivative
    print("VERIFIED", verify_antiderivative("x**2", "x**3/3").correct)
"""


def test_importing_ladder_hf_writes_nothing_and_starts_nothing(tmp_path):
    """Imports (here and in the verifier's sandbox workers) leave evaluate's cache, HF_HOME and the
    working directory empty, and start no thread or process; only the explicit step registers."""
    cache, cwd, home = tmp_path / "modules", tmp_path / "elsewhere", tmp_path / "hf-home"
    for folder in (cache, cwd, home):
        folder.mkdir()
    env = {**_env(cache, tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = _python(_IMPORT_EVERYTHING, cwd, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "THREADS 1 CHILDREN 0" in proc.stdout, proc.stdout
    assert "VERIFIED True" in proc.stdout, proc.stdout  # the workers did run
    assert [list(d.rglob("*")) for d in (cache, cwd, home)] == [[], [], []]
    assert not (tmp_path / "xdg").exists()


def test_register_metric_command_writes_the_shim(tmp_path):
    cache = tmp_path / "modules"
    proc = subprocess.run(
        [sys.executable, "-m", "ladder_hf.cli", "register-metric", "--cache", str(cache)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path = shim_path(cache=cache)
    assert f"integration_bee: {path}" in proc.stdout
    assert path.read_text(encoding="utf-8") == shim_source()


def test_registration_failure_warns_and_never_raises(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level("WARNING", logger="ladder_hf.metrics"):
        assert register(cache=blocker / "modules") is None
    assert "could not register evaluate metric 'integration_bee'" in caplog.text
    assert metrics_main(["--cache", str(blocker / "modules")]) == 1  # the explicit step says it failed
    with pytest.raises(ValueError, match="unknown ladder_hf metric"):
        register("no_such_metric", cache=tmp_path)


def test_load_scores_even_when_the_modules_cache_is_not_writable(tmp_path):
    """What a scoring command does: register at run time, and score anyway when that cannot be written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = _python(
        """
        from ladder_hf.metrics import load
        bee = load("integration_bee", keep_in_memory=True)
        out = bee.compute(predictions=["<answer>x**3/3</answer>"], references=[{"integrand": "x**2"}])
        print("CORRECT", type(bee).__name__, out["correct"])
        """,
        cwd,
        _env(blocker / "modules", tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CORRECT IntegrationBee [True]" in proc.stdout
    assert "could not register evaluate metric" in proc.stderr


def test_register_layout_is_idempotent_and_newest(tmp_path):
    path = register(cache=tmp_path)
    assert path == shim_path(cache=tmp_path)
    assert len(path.parent.name) == 64
    for level in (path.parent, path.parents[1], path.parents[2], path.parents[3]):
        assert (level / "__init__.py").is_file()
    # an older shim version with a newer mtime must not shadow this one
    stale = path.parents[1] / ("0" * 64) / "integration_bee.py"
    stale.parent.mkdir()
    stale.write_text("raise ImportError('stale')\n")
    os.utime(stale, (path.stat().st_mtime + 100, path.stat().st_mtime + 100))
    assert register(cache=tmp_path) == path
    assert path.stat().st_mtime > stale.stat().st_mtime
    assert "from ladder_hf.metrics.integration_bee.integration_bee import IntegrationBee" in path.read_text()


def test_modules_cache_agrees_with_evaluate_config(tmp_path):
    env = dict(os.environ, HF_HOME=str(tmp_path / "home"))
    env.pop("HF_MODULES_CACHE", None)
    proc = _python(
        """
        from ladder_hf.metrics import modules_cache
        before = modules_cache()
        import evaluate.config
        print(before == evaluate.config.HF_MODULES_CACHE, before)
        """,
        tmp_path,
        env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "True"
    assert str(tmp_path / "home") in proc.stdout
    assert isinstance(modules_cache(), Path)


def test_load_by_path(tmp_path):
    import evaluate

    bee = evaluate.load(metric_path(), keep_in_memory=True)
    assert type(bee).__name__ == "IntegrationBee"
    out = bee.compute(predictions=["-cos(x)"], references=[{"integrand": "sin(x)"}])
    assert out["correct"] == [True]
    assert "2503.00735" in bee.citation


# Definite rows whose value quadrature cannot establish: the metric judges them against the official value.
OFFICIAL_VALUE_ROWS = ("mit-2024-q13", "mit-2023-q11", "mit-2018-q03", "mit-2024-q18", "mit-2020-q09")


def test_every_bundled_official_answer_is_graded_correct_and_wrong_answers_wrong():
    from ladder_hf.metrics.integration_bee.scoring import score
    from ladder_hf.problems import load_problems

    rows = load_problems("mit") + load_problems("undergrad")
    predictions = [f"<answer>{r['answer']}</answer>" for r in rows]
    out = score(predictions, [r["id"] for r in rows], timeout=20.0)
    graded = dict(zip(out["ids"], out["correct"], strict=True))
    assert sorted(out["excluded"]) == ["mit-2010-q14", "mit-2025-q12"]  # integrands that contradict their answers
    # rows flagged unverified (other than the official-value ones) document an official answer that breaks
    # the convention (valid on part of the domain only, or with jumps where the integrand is finite)
    flagged = {r["id"] for r in rows if not r["verified"]} - set(OFFICIAL_VALUE_ROWS) - set(out["excluded"])
    assert {"mit-2013-q07", "mit-2022-q20", "mit-2011-q13"} <= flagged
    wrong = [i for i, ok in graded.items() if not ok and i not in flagged | set(out["excluded"])]
    assert not wrong, [(i, out["reasons"][out["ids"].index(i)]) for i in wrong]
    assert all(not graded[i] for i in flagged)
    for problem_id in OFFICIAL_VALUE_ROWS:
        assert graded[problem_id], problem_id
    # and a wrong answer to each of them is wrong (0 for the 2024 Gaussian was once graded correct)
    wrong_answers = ["0", "2022", "4035", "1012", r"\binom{2020}{1010}\pi/2^{2018}"]
    out = score([f"<answer>{a}</answer>" for a in wrong_answers], list(OFFICIAL_VALUE_ROWS), timeout=20.0)
    assert out["correct"] == [False] * 5, out["reasons"]
    out = score(
        [r"<answer>2\sqrt{\pi}</answer>", r"<answer>\binom{2020}{1010}\pi/2^{2019}</answer>"],
        ["mit-2024-q13", "mit-2020-q09"],
        timeout=20.0,
    )
    assert out["correct"] == [True, True], out["reasons"]
