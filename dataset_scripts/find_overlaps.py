"""Find the bundled rows that a training set must not contain, and ship the list with the package.

Two kinds of row, written to ``src/ladder_hf/data/overlaps.jsonl`` (one record per row, with the rule):

* ``test_equivalent``: a row of a training set (the MIT qualifiers before the test year, the
  undergraduate set) that the contamination guard (:class:`ladder_hf.variants.ContaminationGuard`)
  finds equivalent to a problem of a shipped test year: the same integrand up to an affine change of
  variable, a constant factor, an added constant, or the same expression with other numbers
  (docs/contamination.md). ``unjudged`` rows are recorded too, so nobody mistakes them for clean.
* ``duplicate``: an undergraduate row numerically equal to, or a constant multiple of, an earlier one.

``load_problems("mit-train")`` and ``load_problems("undergrad-train")`` leave these rows out; every row
of every set carries its record under ``overlap`` when it has one. Run this after changing the bundled
data (about a minute on 2 cores):

    python dataset_scripts/find_overlaps.py
"""

from __future__ import annotations

import argparse
import os

from ladder_hf.problems import TEST_YEARS, load_problems
from ladder_hf.store import write_jsonl
from ladder_hf.variants.base import parse_problem_integrand
from ladder_hf.variants.quality import (
    ContaminationGuard,
    integration_interval,
    profile_batch,
    proportional,
    same_function,
)

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "ladder_hf", "data", "overlaps.jsonl")


def test_equivalents(test_sets: list[str], train_sets: list[str]) -> list[dict]:
    protected = [p for name in test_sets for p in load_problems(name, include_overlaps=True)]
    guard = ContaminationGuard([dict(p) for p in protected])
    records = []
    for name in train_sets:
        rows = load_problems(name, include_overlaps=True)
        verdicts = guard.judge_batch(
            [parse_problem_integrand(p.integrand) for p in rows], [integration_interval(p.lower, p.upper) for p in rows]
        )
        for problem, verdict in zip(rows, verdicts, strict=True):
            if verdict.status == "clean":
                continue
            records.append(
                {
                    "id": problem.id,
                    "kind": "test_equivalent" if verdict.status == "contaminated" else "unjudged",
                    "overlaps": verdict.protected_id or "",
                    "rule": verdict.reason,
                }
            )
    return records


def duplicates(name: str) -> list[dict]:
    rows = load_problems(name, include_overlaps=True)
    profiles = profile_batch([parse_problem_integrand(p.integrand) for p in rows])
    records = []
    for i, (problem, profile) in enumerate(zip(rows, profiles, strict=True)):
        for earlier, other in zip(rows[:i], profiles[:i], strict=False):
            if problem.is_definite or earlier.is_definite:
                continue
            if same_function(profile.fingerprint, other.fingerprint):
                rule = "numerically equal"
            elif proportional(profile.fingerprint, other.fingerprint):
                rule = "a constant multiple"
            else:
                continue
            records.append({"id": problem.id, "kind": "duplicate", "overlaps": earlier.id, "rule": rule})
            break
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    test_sets = [f"mit-{year}" for year in TEST_YEARS]
    train_years = sorted({int(p["year"]) for p in load_problems("mit", include_overlaps=True)} - set(TEST_YEARS))
    records = test_equivalents(test_sets, [f"mit-{y}" for y in train_years] + ["undergrad"])
    seen = {r["id"] for r in records}
    records += [r for r in duplicates("undergrad") if r["id"] not in seen]
    records.sort(key=lambda r: r["id"])
    write_jsonl(args.out, records)
    kinds = {k: sum(r["kind"] == k for r in records) for k in ("test_equivalent", "unjudged", "duplicate")}
    print(f"{len(records)} rows -> {os.path.normpath(args.out)}: {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
