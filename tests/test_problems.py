"""Bundled problem sets: schema, coverage, and every shipped official answer checked by our own verifier."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ladder_hf.problems import available_sets, build_messages, get_problem, is_definite, load_problems

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "dataset_scripts" / "build_integration_bee.py"
STRING_FIELDS = ("id", "problem_latex", "integrand", "lower", "upper", "answer_latex", "answer", "source", "notes")
# Verifier outcomes that mean "this answer is not confirmed" (as opposed to a crash of the test harness).
NOT_CONFIRMED = {"mismatch", "bad_problem", "unverifiable", "no_reference", "parse_error", "rejected", "timeout"}


def _load_script():
    spec = importlib.util.spec_from_file_location("build_integration_bee", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mit() -> list[dict]:
    return load_problems("mit")


@pytest.fixture(scope="module")
def undergrad() -> list[dict]:
    return load_problems("undergrad")


@pytest.fixture(scope="module")
def verdicts(mit, undergrad) -> dict:
    """One verifier call over every bundled row: id -> VerificationResult."""
    from ladder_hf.verifier import verify_batch

    rows = mit + undergrad
    items = [
        {"integrand": r["integrand"], "candidate": r["answer"], "lower": r["lower"], "upper": r["upper"]} for r in rows
    ]
    # Generous per-item limit: the suite shares a small CPU; a fast answer is unaffected by it.
    results = verify_batch(items, timeout=20.0)
    return {r["id"]: res for r, res in zip(rows, results, strict=True)}


def _check_common_schema(row: dict) -> None:
    for field in STRING_FIELDS:
        assert isinstance(row.get(field), str), f"{row.get('id')}: {field} must be a string"
    assert row["integrand"].strip() and row["answer"].strip() and row["source"].strip(), row["id"]
    assert bool(row["lower"].strip()) == bool(row["upper"].strip()), f"{row['id']}: both bounds or neither"
    assert isinstance(row["verified"], bool), row["id"]
    assert isinstance(row["verification_note"], str), row["id"]
    if not row["verified"]:
        assert len(row["verification_note"]) > 20, f"{row['id']}: an unverified row must say why"
    else:
        assert row["verification_note"] == "", f"{row['id']}: note only explains unverified rows"


def test_mit_schema_and_ids(mit):
    assert len(mit) >= 300
    for row in mit:
        _check_common_schema(row)
        assert row["round"] == "qualifier"
        assert isinstance(row["year"], int) and isinstance(row["number"], int)
        assert row["id"] == f"mit-{row['year']}-q{row['number']:02d}"
        assert "MIT Integration Bee" in row["source"], f"{row['id']}: attribution missing"
        if not row["answer_latex"]:
            # Only where the source has no official answer, and the note must say so.
            assert "missing from the source" in row["notes"], row["id"]


@pytest.mark.parametrize("year", [2023, 2024, 2025])
def test_recent_qualifiers_complete(year):
    rows = load_problems(f"mit-{year}")
    assert sorted(r["number"] for r in rows) == list(range(1, 21))
    assert all(r["answer_latex"] for r in rows), "official answers are required for 2023-2025"


def test_year_coverage(mit):
    years = {r["year"] for r in mit}
    assert set(range(2010, 2021)) | {2022, 2023, 2024, 2025} <= years
    for year in years:
        numbers = sorted(r["number"] for r in mit if r["year"] == year)
        assert numbers == list(range(1, len(numbers) + 1)), f"{year}: gap in problem numbers"
    assert {f"mit-{y}" for y in years} <= set(available_sets())
    assert {r["year"] for r in load_problems("mit-train")} == years - {2025}


def test_2025_matches_the_paper_benchmark_shape():
    rows = load_problems("mit-2025")
    assert sum(is_definite(r) for r in rows) == 10, "the 2025 qualifier has 10 definite and 10 indefinite problems"


def test_undergrad_schema(undergrad):
    assert len(undergrad) >= 100
    techniques = {r["technique"] for r in undergrad}
    for row in undergrad:
        _check_common_schema(row)
        assert re.fullmatch(r"ug-\d{3}", row["id"])
        assert not is_definite(row), "the undergraduate set is indefinite integrals"
        assert row["verified"], "every undergraduate answer is ours and must verify"
    for needed in ("substitution", "integration by parts", "partial fractions", "trigonometric identities"):
        assert needed in techniques
    assert len(techniques) >= 8


def test_ids_unique_across_sets(mit, undergrad):
    ids = [r["id"] for r in mit + undergrad]
    assert len(ids) == len(set(ids))


def test_get_problem_and_prompt():
    row = get_problem("mit-2025-q01")
    assert row["year"] == 2025 and row["number"] == 1
    assert row["integrand"] in build_messages(row)[-1]["content"]
    with pytest.raises(KeyError):
        get_problem("mit-1999-q01")


def test_verified_official_answers_pass_the_verifier(verdicts, mit, undergrad):
    failures = [
        f"{r['id']}: {verdicts[r['id']].status} {verdicts[r['id']].reason}"
        for r in mit + undergrad
        if r["verified"] and not verdicts[r["id"]].correct
    ]
    assert not failures, "\n".join(failures)


def test_unverified_rows_really_fail_the_verifier(verdicts, mit):
    unverified = [r for r in mit if not r["verified"]]
    assert unverified, "the known limitations are recorded, not hidden"
    for row in unverified:
        result = verdicts[row["id"]]
        assert not result.correct, f"{row['id']} now verifies: set verified=true and drop its note"
        assert result.status in NOT_CONFIRMED, f"{row['id']}: {result.status} {result.reason}"


def test_verifier_rejects_a_wrong_answer_for_bundled_rows():
    # Guards against a vacuous check: a perturbed official answer must not pass.
    from ladder_hf.verifier import verify_batch

    rows = [get_problem("mit-2025-q02"), get_problem("mit-2025-q04"), get_problem("ug-029")]
    items = [
        {"integrand": r["integrand"], "candidate": f"({r['answer']}) + x", "lower": r["lower"], "upper": r["upper"]}
        if not is_definite(r)
        else {
            "integrand": r["integrand"],
            "candidate": f"({r['answer']}) + 1/1000",
            "lower": r["lower"],
            "upper": r["upper"],
        }
        for r in rows
    ]
    assert not any(res.correct for res in verify_batch(items, timeout=20.0))


def test_build_script_local_layout(tmp_path):
    import datasets

    script = _load_script()
    files = script.build_local(str(tmp_path), tag="v9.9")
    assert "README.md" in files and any(f.startswith("mit/test-") for f in files)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "v9.9" in card and "MIT Integration Bee" in card and "orangeofcarl0-sys" in card
    assert "config_name: undergrad" in card
    mit = datasets.load_dataset(str(tmp_path), "mit")
    assert mit["test"].num_rows == 20 and set(mit["test"]["year"]) == {2025}
    assert mit["train"].num_rows == len(load_problems("mit")) - 20
    ug = datasets.load_dataset(str(tmp_path), "undergrad")["test"]
    assert ug.num_rows == len(load_problems("undergrad"))
    assert ug.features["verified"].dtype == "bool"


def test_build_script_publishes_a_tagged_version(hub_server, tmp_path):
    env = dict(os.environ)
    cmd = [sys.executable, str(BUILD_SCRIPT), "--repo", "bees/integration-bee", "--tag", "v1.0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    read = (
        "import datasets, json\n"
        "d = datasets.load_dataset('bees/integration-bee', 'mit', revision='v1.0')\n"
        "u = datasets.load_dataset('bees/integration-bee', 'undergrad', revision='v1.0')\n"
        "print(json.dumps([d['test'].num_rows, d['train'].num_rows, u['test'].num_rows, d['test'][0]['id']]))\n"
    )
    out = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n_test, n_train, n_ug, first = json.loads(out.stdout.strip().splitlines()[-1])
    assert (n_test, n_train, n_ug) == (20, len(load_problems("mit")) - 20, len(load_problems("undergrad")))
    assert first == "mit-2025-q01"
    # A version is immutable: publishing the same tag again is refused.
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "TagExistsError" in again.stderr


# ---------------------------------------------------------------------------------------------
# The typed Problem, the registry of sets, the one prompt builder


def test_problem_from_row_normalises_blanks_and_names_bad_rows():
    from ladder_hf.problems import Problem

    p = Problem.from_row({"id": "a", "integrand": "x", "lower": None, "upper": float("nan"), "year": 2020})
    assert (p.lower, p.upper, p.is_definite, p["year"], p.get("nope", 1)) == ("", "", False, 2020, 1)
    assert Problem.from_row(p.to_row()) == p and dict(p)["integrand"] == "x"
    assert Problem.from_row({"integrand": "x**2"}).id.startswith("expr-")  # stable id from the integrand
    with pytest.raises(ValueError, match="b: only one of the bounds"):
        Problem.from_row({"id": "b", "integrand": "x", "lower": "0", "upper": " "})
    with pytest.raises(ValueError, match="row at index 3: no integrand"):  # a row in memory: its 0-based index
        Problem.from_row({"integrand": None}, index=3)
    with pytest.raises(ValueError, match=r"^p\.jsonl:4: no integrand$"):  # a row of a file: file:line
        Problem.from_row({"integrand": None}, index=2, location="p.jsonl:4")


def test_problems_read_from_a_file_are_named_by_file_and_line_everywhere(tmp_path):
    from ladder_hf.problems import validate_rows

    path = tmp_path / "problems.jsonl"
    # line 2 is blank and the last line has no newline: line numbers, not row indices, and nothing dropped
    path.write_text('{"id": "a", "integrand": "x"}\n\n{"id": "q7", "integrand": "(("}\n{"integrand": "x**"}')
    problems = load_problems(str(path))
    assert [p.location for p in problems] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert "location" not in problems[0].to_row() and problems[0] == {"id": "a", **problems[0].to_row()}
    with pytest.raises(ValueError) as bad:  # what ttrl and training check before scoring rows
        validate_rows(problems, what=f"problem set {str(path)!r}")
    message = str(bad.value)
    assert f"has 2 bad row(s): {path}:3 (q7): does not parse" in message and f"; {path}:4: does not parse" in message
    path.write_text('{"id": "a", "integrand": "x"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=rf"^{path}:2: not a JSON object but list"):
        load_problems(str(path))
    array = tmp_path / "problems.json"  # a JSON file holding a list of rows
    array.write_text('[{"integrand": "x"}, {"integrand": "x", "lower": "0"}]')
    with pytest.raises(ValueError, match=rf"^{array}:item 2: only one of the bounds"):
        load_problems(str(array))


def test_registry_one_line_per_set_and_every_source(tmp_path):
    import datasets

    from ladder_hf.problems import PROBLEM_SETS, load_problems, register_problem_set

    register_problem_set("ug-subs", "undergrad_integrals.jsonl", lambda r: r.get("technique") == "substitution")
    try:
        subs = load_problems("ug-subs")
        assert subs and {p["technique"] for p in subs} == {"substitution"}
    finally:
        del PROBLEM_SETS["ug-subs"]
    with pytest.raises(ValueError, match=r"unknown problem set 'mit-twenty'; choose from .*mit-2025.*undergrad"):
        load_problems("mit-twenty")
    rows = [{"id": "t1", "integrand": "x", "lower": "0", "upper": "1"}]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "set.parquet"))
    assert [p.is_definite for p in load_problems(str(tmp_path / "set.parquet"))] == [True]
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        load_problems(str(tmp_path / "missing.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="has no problems"):
        load_problems(str(tmp_path / "empty.jsonl"))


def test_one_prompt_builder_for_every_command():
    from ladder_hf.problems import DEFAULT_SYSTEM_PROMPT, FEW_SHOT_EXAMPLES, Prompt, build_messages

    problem = {"integrand": "x", "lower": "0", "upper": "1"}
    assert [m["role"] for m in build_messages(problem)] == ["system", "user"]
    assert build_messages(problem)[0]["content"] == DEFAULT_SYSTEM_PROMPT
    shots = build_messages(problem, "few_shot")
    assert len(shots) == 2 + 2 * len(FEW_SHOT_EXAMPLES) and shots[-1]["content"].startswith("Evaluate the definite")
    assert build_messages(problem, "Be brief.")[0] == {"role": "system", "content": "Be brief."}
    custom = build_messages(
        problem, Prompt(None, (("x", "x**2/2"),)), definite_template="{integrand} on [{lower}, {upper}]"
    )
    assert [m["content"] for m in custom] == [
        "Find the indefinite integral: ∫ x dx",
        "<answer>x**2/2</answer>",
        "x on [0, 1]",
    ]


def test_training_sets_leave_out_rows_equivalent_to_the_test_year():
    from ladder_hf.problems import TEST_YEARS

    train = load_problems("mit-train")
    everything = load_problems("mit-train", include_overlaps=True)
    assert {p["year"] for p in everything}.isdisjoint(TEST_YEARS)
    left_out = {p.id: p["overlap"] for p in everything if "overlap" in p}
    # the audit's cases: the same function as 2025 Q7, a constant multiple of Q16, a form of Q1
    assert left_out["mit-2013-q03"]["overlaps"] == "mit-2025-q07"
    assert left_out["mit-2016-q06"]["overlaps"] == "mit-2025-q16"
    assert left_out["mit-2024-q20"]["overlaps"] == "mit-2025-q01"
    assert len(train) == len(everything) - len(left_out) and not any("overlap" in p for p in train)
    ug = {p.id: p for p in load_problems("undergrad")}  # the full set keeps every row, marked
    assert ug["ug-100"]["overlap"]["kind"] == "test_equivalent" and "overlap" not in ug["ug-001"]
    assert {"ug-017", "ug-100", "ug-101", "ug-110", "ug-102"}.isdisjoint(p.id for p in load_problems("undergrad-train"))
