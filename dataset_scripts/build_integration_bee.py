"""Build the bundled integration problem sets as Hub datasets: parquet shards, a dataset card, a version tag.

The source of truth is the JSONL shipped inside the package (``ladder_hf/data``); this script only
re-packages it, so the Hub copy and ``ladder_hf.problems.load_problems`` always agree.

Configs:
    - ``mit``: MIT Integration Bee qualifying exams with official answers; split ``train`` = 2010-2024
      (the years the LADDER paper trained on), split ``test`` = 2025 (the paper's headline benchmark).
    - ``undergrad``: undergraduate indefinite integrals written for ladder_hf (split ``test``).

Usage:
    # local build: <out>/README.md + <out>/<config>/<split>-00000-of-00001.parquet
    python dataset_scripts/build_integration_bee.py --out build/integration-bee --tag v1.0
    # publish one tagged commit to the Hub (or to HF_ENDPOINT)
    python dataset_scripts/build_integration_bee.py --repo my-org/integration-bee --tag v1.0

Example (reading it back):
    >>> import datasets  # doctest: +SKIP
    >>> datasets.load_dataset("my-org/integration-bee", "mit", revision="v1.0")["test"].num_rows  # doctest: +SKIP
    20
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Sequence

import datasets

from ladder_hf.problems import load_problems

DEFAULT_TAG = "v1.0"
TEST_YEAR = 2025

_COMMON = {
    "id": datasets.Value("string"),
    "problem_latex": datasets.Value("string"),
    "integrand": datasets.Value("string"),
    "lower": datasets.Value("string"),
    "upper": datasets.Value("string"),
    "answer_latex": datasets.Value("string"),
    "answer": datasets.Value("string"),
    "source": datasets.Value("string"),
    "notes": datasets.Value("string"),
    "verified": datasets.Value("bool"),
    "verification_note": datasets.Value("string"),
    "excluded": datasets.Value("bool"),
}
MIT_FEATURES = datasets.Features(
    {
        **_COMMON,
        "year": datasets.Value("int32"),
        "round": datasets.Value("string"),
        "number": datasets.Value("int32"),
    }
)
UNDERGRAD_FEATURES = datasets.Features({**_COMMON, "technique": datasets.Value("string")})


def _table(rows: list[dict], features: datasets.Features) -> datasets.Dataset:
    # Column order follows the features, so the parquet schema is the same in every version.
    return datasets.Dataset.from_list([{k: row.get(k) for k in features} for row in rows], features=features)


def build_datasets() -> dict[str, datasets.DatasetDict]:
    """``{"mit": DatasetDict(train, test), "undergrad": DatasetDict(test)}`` from the bundled JSONL."""
    mit = load_problems("mit")
    train = [r for r in mit if int(r["year"]) != TEST_YEAR]
    test = [r for r in mit if int(r["year"]) == TEST_YEAR]
    return {
        "mit": datasets.DatasetDict({"train": _table(train, MIT_FEATURES), "test": _table(test, MIT_FEATURES)}),
        "undergrad": datasets.DatasetDict({"test": _table(load_problems("undergrad"), UNDERGRAD_FEATURES)}),
    }


def _count_lines(configs: dict[str, datasets.DatasetDict]) -> tuple[str, str]:
    mit_rows = [r for split in configs["mit"].values() for r in split]
    per_year = collections.Counter(r["year"] for r in mit_rows)
    unverified = collections.Counter(r["year"] for r in mit_rows if not r["verified"])
    lines = ["| year | problems | answer verified by ladder_hf.verifier |", "|---|---|---|"]
    for year in sorted(per_year, reverse=True):
        lines.append(f"| {year} | {per_year[year]} | {per_year[year] - unverified[year]} |")
    ug = configs["undergrad"]["test"]
    techniques = collections.Counter(ug["technique"])
    tech_lines = ["| technique | problems |", "|---|---|"]
    tech_lines += [f"| {name} | {n} |" for name, n in sorted(techniques.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines), "\n".join(tech_lines)


def dataset_card(configs: dict[str, datasets.DatasetDict], repo_id: str, tag: str) -> str:
    """The README: what the data is, where it comes from (attribution), how it was checked, how to load it."""
    year_table, tech_table = _count_lines(configs)
    n_mit = sum(split.num_rows for split in configs["mit"].values())
    n_ug = configs["undergrad"]["test"].num_rows
    load_name = repo_id or "<this folder>"
    return f"""---
pretty_name: MIT Integration Bee qualifiers and undergraduate integrals (ladder_hf)
license: other
license_name: mixed-attribution
language:
- en
task_categories:
- text-generation
tags:
- math
- calculus
- integration
- ladder
size_categories:
- n<1K
---

# MIT Integration Bee qualifiers + undergraduate integrals (version `{tag}`)

Problem sets used by [ladder_hf](https://arxiv.org/abs/2503.00735) (LADDER / TTRL): integration
problems with a machine-readable integrand (sympy syntax in `x`), bounds (empty strings for an
indefinite integral) and the official answer, each answer checked by ladder_hf's numeric verifier.

## Configs

- `mit`: {n_mit} MIT Integration Bee qualifying-exam problems with the official answers.
  Split `test` is the 2025 qualifier (the LADDER paper's headline benchmark), split `train`
  the earlier years (2010-2024; there was no qualifier in the sources for 2021).
- `undergrad`: {n_ug} indefinite integrals of textbook difficulty (split `test`), written for
  ladder_hf because the paper's own undergraduate set is not public.

{year_table}

{tech_table}

## Columns

`id` (`mit-2025-q01`, `ug-001`), `problem_latex` (the problem as printed), `integrand`, `lower`,
`upper` (sympy syntax; `""` = indefinite; `oo` = infinity), `answer_latex` (official answer),
`answer` (machine form), `source` (where the row was transcribed from), `notes` (for example how an
infinite nested radical, a series or a floor function was rewritten as an equal integrand),
`verified` and `verification_note` (why a row's answer could not be checked by the verifier);
`mit` adds `year`, `round` (`qualifier`), `number`; `undergrad` adds `technique`.

## Sources and attribution

- Problems and official answers of the MIT Integration Bee are (c) MIT Integration Bee
  (the organisers post the qualifying exams and answer sheets yearly on
  https://math.mit.edu/~yyao1/integrationbee.html); reproduced here for research with attribution.
- 2023-2025 transcriptions were taken from
  [orangeofcarl0-sys/integration-bee-benchmark](https://github.com/orangeofcarl0-sys/integration-bee-benchmark)
  (`benchmark.json`, curation CC BY 4.0) and
  [othergandalf/Could-an-LLM-qualify-for-the-MIT-Integration-Bee-An-AI-Learning-Experiment_Repo](https://github.com/othergandalf/Could-an-LLM-qualify-for-the-MIT-Integration-Bee-An-AI-Learning-Experiment_Repo)
  (`mit_solns_LaTeX.py`, `models_prg.csv`), which also provides 2010-2022. Every row names its source.
- The undergraduate set was written for ladder_hf (Apache-2.0); its answers were computed with
  sympy (or by hand where sympy's result was a Piecewise/RootSum) and then checked.

## How the answers were checked

Each official answer was checked against its integrand by `ladder_hf.verifier` (derivative
comparison at random points for indefinite integrals, high-precision quadrature for definite
ones). Rows with `verified = false` say why in `verification_note`: the verifier's grammar has no
floor/ceiling/Sum, it bounds exponents to 1000, a few quadratures do not converge, a few official
antiderivatives are valid only on part of the real line, and two transcriptions disagree with
their official answers (2025 Q12, 2010 Q14). Those rows were checked separately where possible
(exact sums, symbolic differentiation), as the note says.

## Usage

```python
import datasets
mit = datasets.load_dataset("{load_name}", "mit", revision="{tag}")
print(mit["test"][0]["integrand"], mit["test"][0]["answer"])
```

Offline, the same rows ship inside the package: `ladder_hf.problems.load_problems("mit-2025")`.

## Citation

```bibtex
@article{{simonds2025ladder,
  title={{LADDER: Self-Improving LLMs Through Recursive Problem Decomposition}},
  author={{Simonds, Toby and Yoshiyama, Akira}},
  journal={{arXiv preprint arXiv:2503.00735}},
  year={{2025}}
}}
```
"""


def build_local(out_dir: str, tag: str = DEFAULT_TAG) -> list[str]:
    """Write the Hub layout (parquet shards + README.md with ``configs:``) to ``out_dir``; return the files."""
    from ladder_hf.hub import card_metadata, render_card, write_shards

    configs = build_datasets()
    os.makedirs(out_dir, exist_ok=True)
    paths = write_shards(configs, out_dir)
    readme = render_card(dataset_card(configs, "", tag), card_metadata(configs, default_config="mit"), tag, "")
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)
    return sorted([*paths, "README.md"])


def publish(repo_id: str, tag: str = DEFAULT_TAG, private: bool = False):
    """One commit with every config to ``repo_id`` (Hub or ``HF_ENDPOINT``), tagged ``tag``."""
    from ladder_hf.hub import push_versioned

    configs = build_datasets()
    return push_versioned(
        configs,
        repo_id,
        tag,
        card=dataset_card(configs, repo_id, tag),
        private=private,
        default_config="mit",
        commit_message=f"Integration Bee problem sets {tag}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the dataset (parquet + README.md) to this folder")
    parser.add_argument("--repo", help="publish to this dataset repo (org/name) on the Hub or HF_ENDPOINT")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="version tag, e.g. v1.0 (default %(default)s)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    args = parser.parse_args(argv)
    if not args.out and not args.repo:
        parser.error("give --out DIR and/or --repo ORG/NAME")
    if args.out:
        files = build_local(args.out, args.tag)
        print(f"wrote {len(files)} files to {args.out}")
    if args.repo:
        result = publish(args.repo, args.tag, args.private)
        print(f"published {result.repo_id}@{result.tag} (commit {result.commit_oid}): {result.rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
