"""Versioned Hub pushes, run with the real huggingface_hub and datasets clients against tests/hub_server.py.

The clients read HF_ENDPOINT and the offline switches when they are imported, so every client
step runs in a fresh Python process with the environment the ``hub_server`` fixture set up; the
server runs in this process, so tests can inject faults and inspect its state between steps.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from huggingface_hub import DatasetCard

from ladder_hf.dataset import load_ladder_dataset, with_prompt
from ladder_hf.hub import (
    GENERATED_END,
    GENERATED_START,
    TagExistsError,
    card_metadata,
    check_tag,
    files_to_delete,
    merge_readme,
    refuse_existing_tag,
    refuse_unchanged,
    render_card,
    split_front_matter,
)
from ladder_hf.variants.card import prepare_variants, variant_statistics

REPO = "org/ladder-variants"


def run_client(code: str, timeout: float = 180) -> dict:
    """Run ``code`` in a fresh interpreter (it must set ``result``); return ``result`` as JSON."""
    script = textwrap.dedent(code) + "\nimport json as _j\nprint('RESULT:' + _j.dumps(result, default=str))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, f"client failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len("RESULT:") :])


def write_tree(folder, n_roots: int, depth: int, prefix: str = "p") -> str:
    """A full tree: ``n_roots`` roots, two variants per node down to ``depth``."""
    folder.mkdir(parents=True, exist_ok=True)
    nodes = []
    for r in range(n_roots):
        root = {"id": f"{prefix}{r}", "depth": 0, "integrand": f"x**{r + 2}*sin(x)", "generator": "root"}
        nodes.append(root)
        frontier = [root]
        for d in range(1, depth + 1):
            nxt = []
            for parent in frontier:
                for k in range(2):
                    node = {
                        "id": f"{parent['id']}.{k}",
                        "root_id": root["id"],
                        "parent_id": parent["id"],
                        "depth": d,
                        "integrand": f"x**{r + 2 - d}*sin({k + 1}*x)",
                        "kind": "easier" if k == 0 else "equivalent",
                        "transformations": ["lower_exponent"] if k == 0 else ["change_coefficient"],
                        "generator": "symbolic",
                        "difficulty": float(r + 2 - d),
                        "sympy_solvable": True,
                        "numeric_sane": True,
                    }
                    nodes.append(node)
                    nxt.append(node)
            frontier = nxt
    nodes.append({"id": f"{prefix}0.x", "root_id": f"{prefix}0", "depth": 1, "integrand": "x", "kept": False})
    with open(folder / "nodes.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(n) + "\n" for n in nodes)
    return str(folder)


def local_rows(folder: str, config: str, tmp_path) -> list[dict]:
    """What a push publishes as ``config``: the builder's rows, with TRL's ``prompt`` but in ``rejected``."""
    rows = load_ladder_dataset(folder, config, cache_dir=str(tmp_path / "local-cache"))
    return (rows if config == "rejected" else with_prompt(rows)).to_list()


# Prepended to every client script: push/load helpers and access to the server's control endpoints.
PRELUDE = f"""
import json, os, urllib.request
from datasets import load_dataset, get_dataset_config_names
from ladder_hf.hub import push_versioned, PushError, TagExistsError
from ladder_hf.variants.card import push_variants
REPO = {REPO!r}

def control(path, payload=None):
    req = urllib.request.Request(
        os.environ["HF_ENDPOINT"] + "/_test/" + path,
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
    )
    with urllib.request.urlopen(req) as response:
        return json.loads(response.read())

def state():
    snap = control("state")
    repo = snap["repos"].get("dataset:" + REPO, {{}})
    return {{**repo, "lfs_objects": snap["lfs_objects"]}}

def rows(config=None, **kwargs):
    return load_dataset(REPO, config, split="train", **kwargs).to_list()

def attempt(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return "pushed"
    except Exception as err:
        return f"{{type(err).__name__}}: {{err}}"

def cli(*args):  # `ladder-hf variants ARGS` in this process: exit code, stdout, stderr
    import contextlib, io
    from ladder_hf.variants.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return {{"rc": rc, "out": out.getvalue(), "err": err.getvalue()}}

def download(path, revision=None):
    from huggingface_hub import hf_hub_download
    with open(hf_hub_download(REPO, path, repo_type="dataset", revision=revision), encoding="utf-8") as f:
        return f.read()
"""


def client(code: str) -> dict:
    return run_client(PRELUDE + textwrap.dedent(code))


def test_push_then_load_latest_and_by_tag(hub_server, tmp_path):
    folder = write_tree(tmp_path / "v1", n_roots=2, depth=2)
    got = client(
        f"""
        from huggingface_hub import hf_hub_download
        r = push_variants({folder!r}, REPO, "v1.0")
        result = {{
            "readme": open(hf_hub_download(REPO, "README.md", repo_type="dataset", revision="v1.0")).read(),
            "oid": r.commit_oid, "rows": r.rows, "state": state(),
            "default": rows(), "tagged": rows(revision="v1.0"),
            "depth_2": rows("depth_2", revision="v1.0"), "by_commit": rows("roots", revision=r.commit_oid),
            "configs": get_dataset_config_names(REPO),
        }}
        """
    )
    assert got["state"]["tags"] == {"v1.0": got["oid"]}
    assert got["state"]["branches"]["main"] == got["oid"]
    assert got["state"]["commits"] == 2  # the repo's initial commit + exactly one for v1.0
    assert got["rows"]["all"]["train"] == 2 + 4 + 8 and "depth_3" not in got["rows"]

    expected = local_rows(folder, "all", tmp_path)
    assert got["default"] == expected
    assert got["tagged"] == expected
    assert got["depth_2"] == local_rows(folder, "depth_2", tmp_path)
    assert got["by_commit"] == local_rows(folder, "roots", tmp_path)
    assert got["configs"][0] == "all"
    assert set(got["configs"]) == {"all", "roots", "variants", "depth_1", "depth_2"}
    # the published README is a DatasetCard whose front matter lists exactly what load_dataset found
    card = DatasetCard(got["readme"])
    assert [c["config_name"] for c in card.data.configs] == got["configs"]
    assert card.data.license == "apache-2.0" and "ladder" in card.data.tags


def test_new_version_leaves_old_tag_readable(hub_server, tmp_path):
    v1 = write_tree(tmp_path / "v1", n_roots=2, depth=2, prefix="a")
    v2 = write_tree(tmp_path / "v2", n_roots=3, depth=1, prefix="b")
    got = client(
        f"""
        first = push_variants({v1!r}, REPO, "v1.0")
        second = push_variants({v2!r}, REPO, "v1.1")
        result = {{
            "first": first.commit_oid, "second": second.commit_oid, "files": second.files, "state": state(),
            "latest": rows(), "old": rows(revision="v1.0"), "new": rows(revision="v1.1"),
            "configs": get_dataset_config_names(REPO),
            "old_configs": get_dataset_config_names(REPO, revision="v1.0"),
        }}
        """
    )
    assert got["state"]["tags"] == {"v1.0": got["first"], "v1.1": got["second"]}
    assert got["first"] != got["second"] and got["state"]["branches"]["main"] == got["second"]
    assert got["state"]["commits"] == 3
    assert got["old"] == local_rows(v1, "all", tmp_path)
    assert got["new"] == got["latest"] == local_rows(v2, "all", tmp_path)
    # v1.1 has no depth-2 rows: its commit dropped v1.0's depth_2 shards instead of leaving them stale.
    assert "depth_2" not in got["configs"] and not any(f.startswith("depth_2/") for f in got["files"])
    assert "depth_2" in got["old_configs"]
    assert hub_server.server.tags(REPO) == got["state"]["tags"]  # the control endpoint tells the truth


def test_existing_tag_is_refused_and_nothing_changes(hub_server, tmp_path):
    v1 = write_tree(tmp_path / "v1", n_roots=1, depth=1)
    other = write_tree(tmp_path / "other", n_roots=2, depth=2, prefix="z")
    got = client(
        f"""
        first = push_variants({v1!r}, REPO, "v1.0")
        before = state()
        outcome = attempt(push_variants, {other!r}, REPO, "v1.0")
        result = {{"oid": first.commit_oid, "before": before, "after": state(), "outcome": outcome,
                   "rows": rows(revision="v1.0")}}
        """
    )
    assert got["outcome"].startswith("TagExistsError") and got["oid"] in got["outcome"]
    assert got["after"] == got["before"]  # same tags, head, commit count; not even an LFS upload
    assert got["rows"] == local_rows(v1, "all", tmp_path)


@pytest.mark.parametrize(("endpoint", "status"), [("commit", 500), ("lfs_upload", 403)])
def test_failed_push_leaves_previous_version_intact(hub_server, tmp_path, endpoint, status):
    v1 = write_tree(tmp_path / "v1", n_roots=1, depth=2, prefix="a")
    v2 = write_tree(tmp_path / "v2", n_roots=2, depth=1, prefix="b")
    got = client(
        f"""
        first = push_variants({v1!r}, REPO, "v1.0")
        control("faults", {{{endpoint!r}: {status}}})
        outcome = attempt(push_variants, {v2!r}, REPO, "v1.1")
        after_failure = state()
        latest, old = rows(), rows(revision="v1.0")
        control("faults", {{{endpoint!r}: None}})
        # Once the Hub works again the same push goes through as one new commit.
        second = push_variants({v2!r}, REPO, "v1.1")
        result = {{"first": first.commit_oid, "second": second.commit_oid, "outcome": outcome,
                   "after_failure": after_failure, "latest": latest, "old": old, "final": state()}}
        """
    )
    assert got["outcome"] != "pushed"
    assert got["after_failure"]["tags"] == {"v1.0": got["first"]}
    assert got["after_failure"]["branches"]["main"] == got["first"] and got["after_failure"]["commits"] == 2
    assert got["latest"] == got["old"] == local_rows(v1, "all", tmp_path)
    assert got["final"]["tags"] == {"v1.0": got["first"], "v1.1": got["second"]} and got["final"]["commits"] == 3


def test_failed_tag_is_completed_by_rerun_without_second_commit(hub_server, tmp_path):
    folder = write_tree(tmp_path / "v1", n_roots=1, depth=1)
    got = client(
        f"""
        control("faults", {{"tag": 403}})
        outcome = attempt(push_variants, {folder!r}, REPO, "v1.0")
        untagged = state()
        control("faults", {{"tag": None}})
        pushed = push_variants({folder!r}, REPO, "v1.0")
        result = {{"outcome": outcome, "untagged": untagged, "oid": pushed.commit_oid, "final": state()}}
        """
    )
    assert got["outcome"].startswith("PushError") and "run the same push again" in got["outcome"]
    head = got["untagged"]["branches"]["main"]
    assert got["untagged"]["tags"] == {} and got["untagged"]["commits"] == 2
    assert got["oid"] == head and got["final"]["commits"] == 2
    assert got["final"]["tags"] == {"v1.0": head}


def test_identical_content_cannot_become_a_second_version(hub_server, tmp_path):
    # Same rows and same card: the second push finds nothing to commit, and tagging the first
    # version's commit again would make two versions of one commit.
    got = client(
        """
        from datasets import Dataset
        data = {"all": Dataset.from_dict({"integrand": ["x", "x**2"]})}
        first = push_versioned(data, REPO, "w1", "# fixed card")
        result = {"oid": first.commit_oid, "outcome": attempt(push_versioned, data, REPO, "w2", "# fixed card"),
                  "state": state()}
        """
    )
    assert got["outcome"].startswith("TagExistsError") and "already version 'w1'" in got["outcome"]
    assert got["state"]["tags"] == {"w1": got["oid"]} and got["state"]["commits"] == 2


PUSH_LINE = re.compile(r"^pushed (\S+) (\S+) \(commit ([0-9a-f]{7})\): (\S+)$")


def test_hand_uploaded_files_and_card_edits_survive_the_next_push(hub_server, tmp_path):
    """Nothing lost: files and README text added by hand outlive `ladder-hf variants push` of a new version."""
    v1 = write_tree(tmp_path / "v1", n_roots=2, depth=2, prefix="a")
    v2 = write_tree(tmp_path / "v2", n_roots=3, depth=1, prefix="b")  # no depth 2: depth_2 is dropped
    got = client(
        f"""
        from huggingface_hub import DatasetCard, HfApi
        api = HfApi()
        from datasets import Dataset
        first = cli("push", {v1!r}, "--repo_id", REPO, "--tag", "v1.0")
        Dataset.from_dict({{"integrand": ["x**3"], "source": ["hand"]}}).to_parquet({str(tmp_path / "extra.parquet")!r})
        by_hand = [("LICENSE", b"MIT License, by hand"), ("notes/method.md", b"# How we built it"),
                   ("depth_2/NOTES.md", b"why depth 2"), ("extra/rows.parquet", {str(tmp_path / "extra.parquet")!r})]
        for path, content in by_hand:
            api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=REPO, repo_type="dataset")
        card = DatasetCard(download("README.md"))
        start, end = card.text.index("<!-- ladder_hf:generated:start -->"), card.text.index("Every version is")
        card.text = ("## Maintainers' notes\\nKept by hand.\\n\\n" + card.text[start:end] + "HAND EDIT INSIDE. "
                     + card.text[end:] + "\\n## Acknowledgements\\nThanks, Bee team.\\n")
        card.data["annotations_creators"] = ["expert-generated"]
        extra = {{"config_name": "extra", "data_files": [{{"split": "train", "path": "extra/*.parquet"}}]}}
        card.data["configs"].append(extra)
        api.upload_file(path_or_fileobj=str(card).encode(), path_in_repo="README.md", repo_id=REPO, repo_type="dataset")
        second = cli("push", {v2!r}, "--repo", REPO, "--tag", "v1.1")
        try:  # an error here is an assertion below, with its message, not a crashed client
            extra = rows("extra", revision="v1.1")
        except Exception as err:
            extra = f"{{type(err).__name__}}: {{err}}"
        result = {{
            "first": first, "second": second, "state": state(),
            "files": sorted(api.list_repo_files(REPO, repo_type="dataset", revision="v1.1")),
            "readme": download("README.md", revision="v1.1"), "old_readme": download("README.md", revision="v1.0"),
            "extra": extra, "latest": rows(revision="v1.1"),
            "configs": get_dataset_config_names(REPO, revision="v1.1"),
        }}
        """
    )
    assert got["first"]["rc"] == got["second"]["rc"] == 0, (got["first"]["err"], got["second"]["err"])
    tags = got["state"]["tags"]
    assert got["state"]["commits"] == 2 + 5 + 1  # init, v1.0, five uploads by hand, v1.1: one commit per version
    # the push prints one line: repo, tag, commit and where to browse that version
    for out, tag in ((got["first"]["out"], "v1.0"), (got["second"]["out"], "v1.1")):
        [line] = out.splitlines()
        repo, printed_tag, commit, url = PUSH_LINE.match(line).groups()
        assert (repo, printed_tag) == (REPO, tag) and tags[tag].startswith(commit)
        assert url == f"{hub_server}/datasets/{REPO}/tree/{tag}"

    files = got["files"]
    for kept in ("LICENSE", "notes/method.md", "depth_2/NOTES.md", "extra/rows.parquet"):
        assert kept in files
    assert not any(f.startswith("depth_2/train-") for f in files)  # our dropped config's shards are gone
    assert got["latest"] == local_rows(v2, "all", tmp_path)
    assert got["extra"] == [{"integrand": "x**3", "source": "hand"}]  # someone else's config still loads
    assert set(got["configs"]) == {"all", "roots", "variants", "depth_1", "extra"}

    card = DatasetCard(got["readme"])
    assert card.text.startswith("## Maintainers' notes\nKept by hand.\n\n" + GENERATED_START)
    assert card.text.endswith(GENERATED_END + "\n\n## Acknowledgements\nThanks, Bee team.\n")
    assert "HAND EDIT INSIDE" not in card.text and 'revision="v1.1"' in card.text and "v1.0" not in card.text
    assert card.data.annotations_creators == ["expert-generated"]
    assert [c["config_name"] for c in card.data.configs] == ["all", "depth_1", "roots", "variants", "extra"]
    assert "depth_2" not in {i["config_name"] for i in card.data.dataset_info}
    assert "Maintainers" not in got["old_readme"]  # v1.0 is what it was


def test_a_licence_edited_on_the_hub_survives_the_next_cli_push(hub_server, tmp_path):
    """Nothing lost: `license`/`tags` are defaults of our card; the README's own values win at every push."""
    v1 = write_tree(tmp_path / "v1", n_roots=1, depth=1, prefix="a")
    v2 = write_tree(tmp_path / "v2", n_roots=2, depth=1, prefix="b")
    got = client(
        f"""
        from huggingface_hub import DatasetCard, HfApi
        api = HfApi()
        first = cli("push", "--folder", {v1!r}, "--repo_id", REPO, "--tag", "v1.0")
        card = DatasetCard(download("README.md"))
        pushed = (card.data.license, list(card.data.tags))
        card.data.license, card.data.tags = "cc-by-sa-4.0", ["integration", "mine"]
        api.upload_file(path_or_fileobj=str(card).encode(), path_in_repo="README.md", repo_id=REPO,
                        repo_type="dataset", commit_message="licence by hand")
        second = cli("push", "--folder", {v2!r}, "--repo_id", REPO, "--tag", "v1.1")
        after = DatasetCard(download("README.md", revision="v1.1")).data
        result = {{"rc": [first["rc"], second["rc"]], "err": second["err"], "pushed": pushed,
                   "after": [after.license, after.tags, after.size_categories, after.pretty_name],
                   "configs": sorted(c["config_name"] for c in after.configs),
                   "rows": len(rows(revision="v1.1"))}}
        """
    )
    assert got["rc"] == [0, 0], got["err"]
    assert got["pushed"][0] == "apache-2.0" and "ladder" in got["pushed"][1]  # our defaults on a new repo
    license_, tags, sizes, pretty = got["after"]
    assert (license_, tags) == ("cc-by-sa-4.0", ["integration", "mine"])  # the hand edit is kept
    assert sizes == ["n<1K"] and pretty == "LADDER variant trees"  # measured key replaced; untouched default
    assert got["configs"] == ["all", "depth_1", "roots", "variants"] and got["rows"] == 2 + 4


def test_the_rejected_config_is_pushed_from_the_cli_on_request(hub_server, tmp_path):
    folder = write_tree(tmp_path / "v1", n_roots=1, depth=1, prefix="a")
    refused = {"id": "a0.r", "root_id": "a0", "parent_id": "a0", "depth": 1, "integrand": "2*x**2*sin(x)"}
    refused.update(kept=False, qc_status="duplicate", qc_reason="same values as a0.0", duplicate_of="a0.0")
    (tmp_path / "v1" / "rejected.jsonl").write_text(json.dumps(refused) + "\n", encoding="utf-8")
    got = client(
        f"""
        plain = cli("push", "--folder", {folder!r}, "--repo_id", REPO, "--tag", "v1.0")
        audit = cli("push", "--folder", {folder!r}, "--repo_id", REPO + "-audit", "--tag", "v1.0", "--include_rejected")
        result = {{"rc": [plain["rc"], audit["rc"]], "err": plain["err"] + audit["err"],
                   "plain": get_dataset_config_names(REPO, revision="v1.0"),
                   "audit": get_dataset_config_names(REPO + "-audit", revision="v1.0"),
                   "rejected": load_dataset(REPO + "-audit", "rejected", split="train", revision="v1.0").to_list()}}
        """
    )
    assert got["rc"] == [0, 0], got["err"]
    assert "rejected" not in got["plain"] and "rejected" in got["audit"]  # the README's promise, from the CLI
    [row] = got["rejected"]
    assert (row["id"], row["qc_status"], row["qc_reason"]) == ("a0.r", "duplicate", "same values as a0.0")


def test_cli_push_to_a_branch_with_trl_flag_names(hub_server, tmp_path):
    v1 = write_tree(tmp_path / "v1", n_roots=1, depth=1, prefix="a")
    v2 = write_tree(tmp_path / "v2", n_roots=2, depth=1, prefix="b")
    first = client(f'result = cli("push", "--folder", {v1!r}, "--repo_id", REPO, "--tag", "v1.0", "--token", "hf_x")')
    assert first["rc"] == 0, first["err"]
    state = hub_server.server.state
    with state.lock:  # the test server has no branch API: make the branch the way the Hub would
        repo = state.repos[("dataset", REPO)]
        repo.branches["dev"] = repo.branches["main"]
    got = client(
        f"""
        result = {{
            "dev": cli("push", {v2!r}, "--repo-id", REPO, "--tag", "v1.1", "--revision", "dev"),
            "missing": cli("push", {v2!r}, "--repo", REPO, "--tag", "v1.2", "--revision", "nope"),
            "state": state(), "main": rows(), "v1.1": rows(revision="v1.1"),
        }}
        """
    )
    assert got["dev"]["rc"] == 0, got["dev"]["err"]
    branches, tags = got["state"]["branches"], got["state"]["tags"]
    assert branches["dev"] == tags["v1.1"] and branches["main"] == tags["v1.0"]  # main did not move
    assert got["dev"]["out"].strip().endswith(f"/datasets/{REPO}/tree/v1.1")
    assert got["main"] == local_rows(v1, "all", tmp_path) and got["v1.1"] == local_rows(v2, "all", tmp_path)
    assert got["missing"]["rc"] == 1 and "v1.2" not in tags
    [line] = got["missing"]["err"].splitlines()
    assert line.startswith("ladder-hf variants push: ") and "no branch 'nope'" in line


def test_push_versioned_generic_dataset_dict_and_card(hub_server):
    got = client(
        """
        from datasets import Dataset, DatasetDict
        from huggingface_hub import hf_hub_download
        data = {
            "mit": DatasetDict({
                "train": Dataset.from_dict({"integrand": ["x", "x**2"], "year": [2011, 2012]}),
                "test": Dataset.from_dict({"integrand": ["sin(x)"], "year": [2025]}),
            }),
            "undergrad": Dataset.from_dict({"integrand": ["exp(x)"], "year": [0]}),
        }
        card = "---\\nlicense: cc-by-4.0\\n---\\n# Bee problems\\n"
        r = push_versioned(data, "org/bee", "v0.1", card, default_config="mit")
        readme = open(hf_hub_download("org/bee", "README.md", repo_type="dataset", revision="v0.1")).read()
        result = {
            "test": load_dataset("org/bee", split="test", revision="v0.1").to_list(),
            "default_train": load_dataset("org/bee", split="train").to_list(),
            "undergrad": load_dataset("org/bee", "undergrad", split="train").to_list(),
            "readme": readme,
            "files": r.files,
        }
        """
    )
    assert got["test"] == [{"integrand": "sin(x)", "year": 2025}]
    assert got["default_train"] == [{"integrand": "x", "year": 2011}, {"integrand": "x**2", "year": 2012}]
    assert got["undergrad"] == [{"integrand": "exp(x)", "year": 0}]
    assert "license: cc-by-4.0" in got["readme"] and "# Bee problems" in got["readme"]
    assert "default: true" in got["readme"]
    assert "mit/test-00000-of-00001.parquet" in got["files"]


def test_card_has_statistics_attribution_and_parsed_front_matter(tmp_path):
    """The README push_variants publishes, built in-process: nothing in it depends on the server."""
    folder = write_tree(tmp_path / "v1", n_roots=2, depth=1)
    (tmp_path / "v1" / "qc.json").write_text(json.dumps({"generated": 9, "kept": 6}))
    built, card = prepare_variants(folder, REPO, "v1.0", cache_dir=str(tmp_path / "cache"))
    readme = render_card(card, card_metadata(built, "all"), "v1.0", REPO)
    assert "| 1 | 4 |" in readme  # depth 1: 4 kept variants
    assert "| symbolic | 4 |" in readme
    assert "| rejected | 1 |" in readme
    assert "| generated | 9 |" in readme  # the QC funnel from qc.json
    assert "arXiv:2503.00735" in readme and "MIT Integration Bee" in readme
    assert 'revision="v1.0"' in readme

    parsed = DatasetCard(readme)
    configs = {c["config_name"]: c for c in parsed.data.configs}
    assert list(configs) == ["all", "depth_1", "roots", "variants"]  # the default first
    assert configs["all"]["default"] is True
    assert configs["variants"]["data_files"] == [{"split": "train", "path": "variants/train-*"}]
    assert parsed.data.license == "apache-2.0" and parsed.data.pretty_name == "LADDER variant trees"
    assert {"ladder", "ttrl", "integration"} <= set(parsed.data.tags)
    assert parsed.data.size_categories == ["n<1K"]
    info = {i["config_name"]: i for i in parsed.data.dataset_info}
    assert info["all"]["splits"] == [{"name": "train", "num_bytes": info["all"]["splits"][0]["num_bytes"],
                                      "num_examples": 2 + 4}]  # fmt: skip
    assert parsed.text.lstrip().startswith(f"# {REPO}")


def test_caller_card_keeps_its_front_matter_and_gains_configs():
    from datasets import Dataset

    meta = card_metadata({"mit": Dataset.from_dict({"x": [1]}), "undergrad": Dataset.from_dict({"x": [2]})}, "mit")
    readme = render_card("---\nlicense: cc-by-4.0\ntags: [bee]\n---\n# Bee problems\n", meta, "v0.1", "org/bee")
    card = DatasetCard(readme)
    assert (card.data.license, card.data.tags) == ("cc-by-4.0", ["bee"])
    assert [(c["config_name"], c.get("default", False)) for c in card.data.configs] == [
        ("mit", True),
        ("undergrad", False),
    ]
    assert card.text.strip() == "# Bee problems"
    # no card at all: a generic one with the version and how to load it
    generic = DatasetCard(render_card(None, meta, "v0.1", "org/bee"))
    assert generic.text.lstrip().startswith("# org/bee") and 'revision="v0.1"' in generic.text


# ------------------------------------------------------------------ push decisions (no server needed)


def test_version_tags_must_be_plain_names():
    for tag in ("v1.0", "2025-06-01", "v2_rc1"):
        assert check_tag(tag) == tag
    for tag in ("", "v1 final", "-v1", "v1/beta", "..", None):
        with pytest.raises(ValueError, match="invalid tag"):
            check_tag(tag)


def test_an_existing_tag_is_refused_naming_its_commit():
    refuse_existing_tag({"v1.0": "abc"}, "v1.1", REPO)
    with pytest.raises(TagExistsError, match=re.escape("'v1.0' (commit abc)")):
        refuse_existing_tag({"v1.0": "abc"}, "v1.0", REPO)


def test_a_version_deletes_only_stale_data_files_of_its_own_configs():
    old = [".gitattributes", "LICENSE", "README.md", "notes/method.md", "all/train-00000-of-00001.parquet",
           "depth_2/train-00000-of-00001.parquet", "depth_2/NOTES.md", "extra/rows.csv"]  # fmt: skip
    new = {"README.md", "all/train-00000-of-00002.parquet", "all/train-00001-of-00002.parquet"}
    owned = ["all/train-*", "depth_2/train-*"]  # ours now (all) and before (depth_2, dropped by this version)
    assert files_to_delete(old, new, owned) == [
        "all/train-00000-of-00001.parquet",  # the shard count changed: the old shard would be read too
        "depth_2/train-00000-of-00001.parquet",
    ]
    assert files_to_delete(old, new, owned, keep=("depth_*/*",)) == ["all/train-00000-of-00001.parquet"]
    assert files_to_delete(old, new, []) == []  # owning nothing, a push deletes nothing
    # '*' stays in its folder, as in datasets' data_files: a subfolder is not a shard of the split
    assert files_to_delete(["all/train-x/y.parquet"], new, owned) == []


def _readme(front: str, body: str) -> str:
    return f"---\n{front.strip()}\n---\n{body}"


OURS_V1 = _readme(
    """
license: apache-2.0
tags: [ladder]
configs:
- config_name: all
  default: true
  data_files: [{split: train, path: all/train-*}]
- config_name: depth_2
  data_files: [{split: train, path: depth_2/train-*}]
dataset_info:
- config_name: all
  splits: [{name: train, num_examples: 3}]
- config_name: depth_2
  splits: [{name: train, num_examples: 1}]
""",
    "# org/ladder-variants\n\nVersion **`v1.0`**.\n",
)
OURS_V2 = _readme(
    """
license: apache-2.0
tags: [ladder]
configs:
- config_name: all
  default: true
  data_files: [{split: train, path: all/train-*}]
dataset_info:
  config_name: all
  splits: [{name: train, num_examples: 5}]
""",
    "# org/ladder-variants\n\nVersion **`v1.1`**.\n",
)


def test_readme_without_markers_is_kept_whole_and_gains_our_section():
    hand = _readme(
        "license: cc-by-4.0\nthanks: Bee team\nconfigs: [{config_name: all, data_files: all/*.csv}]",
        "# Bee variants\n\nWritten by hand.\n",
    )
    merged = merge_readme(hand, OURS_V1)
    data, body = split_front_matter(merged.text)
    assert body.startswith("# Bee variants\n\nWritten by hand.\n\n" + GENERATED_START)
    assert body.count(GENERATED_START) == 1 and body.rstrip().endswith(GENERATED_END)
    assert "Version **`v1.0`**" in body
    assert data["thanks"] == "Bee team"  # a key we do not write is kept
    assert data["license"] == "cc-by-4.0"  # a licence the README has is kept: ours is only a default
    assert data["tags"] == ["ladder"]  # a key the README lacks gets our default
    # a config with our name becomes ours; the files of the one it replaces were never ours: they stay
    assert [c["config_name"] for c in data["configs"]] == ["all", "depth_2"]
    assert merged.data_files == ["all/train-*", "depth_2/train-*"]
    assert merge_readme(merged.text, OURS_V1).text == merged.text  # the same push again: the same bytes
    assert merge_readme(None, OURS_V1).text.startswith("---\nlicense: apache-2.0\n")


def test_measured_keys_are_replaced_and_defaults_never_overwrite_a_value():
    from ladder_hf.hub import merge_card_data

    old = {"license": "mit", "tags": [], "pretty_name": None, "size_categories": ["n<1K"]}
    ours = {"license": "apache-2.0", "tags": ["ladder"], "pretty_name": "Bee", "size_categories": ["1K<n<10K"]}
    merged = merge_card_data(old, ours, set())
    # an empty or null value is no choice: the default fills it; a measured key is always this version's
    assert merged == {"license": "mit", "tags": ["ladder"], "pretty_name": "Bee", "size_categories": ["1K<n<10K"]}


def test_readme_merge_replaces_our_section_and_configs_and_keeps_the_rest():
    v1 = merge_readme(None, OURS_V1).text
    data, body = split_front_matter(v1)
    start, end = body.index(GENERATED_START), body.index(GENERATED_END)
    section = body[start:end].replace("Version **`v1.0`**.", "Version **`v1.0`**. HAND EDIT INSIDE")
    body = "## Maintainers\nKept by hand.\n\n" + section + body[end:] + "\n## Thanks\nBee team.\n"
    data["annotations_creators"] = ["expert-generated"]
    data["configs"].append({"config_name": "extra", "default": True, "data_files": "extra/*.csv"})
    data["dataset_info"].append({"config_name": "extra", "splits": [{"name": "train", "num_examples": 2}]})
    edited = _readme(json.dumps(data), body)  # JSON is YAML

    merged = merge_readme(edited, OURS_V2)
    new_data, new_body = split_front_matter(merged.text)
    assert new_body.startswith("## Maintainers\nKept by hand.\n\n" + GENERATED_START)
    assert new_body.endswith(GENERATED_END + "\n\n## Thanks\nBee team.\n")
    assert "HAND EDIT INSIDE" not in new_body and "v1.0" not in new_body and "Version **`v1.1`**" in new_body
    assert new_body.count(GENERATED_START) == new_body.count(GENERATED_END) == 1
    assert new_data["annotations_creators"] == ["expert-generated"]
    # depth_2 was ours and this version has none: its entries go; someone else's config stays, and
    # stays the default they chose
    assert [(c["config_name"], c.get("default", False)) for c in new_data["configs"]] == [
        ("all", False),
        ("extra", True),
    ]
    assert [i["config_name"] for i in new_data["dataset_info"]] == ["all", "extra"]
    assert new_data["dataset_info"][0]["splits"][0]["num_examples"] == 5
    assert merged.replaced_configs == ["all", "depth_2"]
    assert merged.data_files == ["all/train-*", "depth_2/train-*"]  # never extra/*.csv


def test_readme_merge_survives_a_half_deleted_section_and_refuses_broken_yaml():
    v1 = merge_readme(None, OURS_V1).text
    # the end marker was deleted by hand: the old section is kept as text, nothing after it is eaten
    broken = v1.replace(GENERATED_END, "") + "\nMy paragraph.\n"
    merged = merge_readme(broken, OURS_V2).text
    assert "My paragraph." in merged and "Version **`v1.1`**" in merged
    again = merge_readme(merged, OURS_V2).text
    assert again == merged and again.count(GENERATED_END) == 1
    with pytest.raises(ValueError, match="not valid YAML"):
        merge_readme("---\nlicense: [mit\n---\n# x\n", OURS_V2)


def test_an_unchanged_commit_is_tagged_only_if_no_version_has_it():
    refuse_unchanged({"v1.0": "aaa"}, "bbb", "ccc", REPO)  # a new commit
    refuse_unchanged({"v1.0": "aaa"}, "bbb", "bbb", REPO)  # re-run after a failed tag: the head is untagged
    with pytest.raises(TagExistsError, match=re.escape("already version 'v1.0'")):
        refuse_unchanged({"v1.0": "aaa"}, "aaa", "aaa", REPO)


def test_variant_statistics_counts_qc_outcomes():
    nodes = [
        {"id": "r", "depth": 0, "generator": "", "kind": "root", "qc_status": "root", "contaminated_with": "r"},
        {"id": "r.0", "depth": 1, "generator": "symbolic", "kind": "easier", "sympy_solvable": True},
        {"id": "r.1", "depth": 2, "generator": "m/x", "kind": "equivalent", "sympy_solvable": False},
        {"id": None, "depth": 1, "kept": False, "qc_status": "duplicate"},
        {"id": None, "depth": 1, "kept": False, "qc_status": "not_sane"},
        {"id": None, "depth": 1, "kept": False, "qc_status": "contaminated", "contaminated_with": "t1"},
        {"id": None, "depth": 2, "kept": False, "qc_status": "unparsable"},
    ]
    stats = variant_statistics(nodes)
    assert stats["per_depth"] == {0: 1, 1: 1, 2: 1}
    assert stats["per_generator"] == {"m/x": 1, "root": 1, "symbolic": 1}
    qc = stats["qc"]
    assert (qc["nodes"], qc["kept"], qc["rejected"]) == (7, 3, 4)
    assert (qc["duplicates"], qc["numerically_insane"], qc["contaminated"], qc["unparsable"]) == (1, 1, 1, 1)
    assert (qc["sympy_solvable"], qc["sympy_unsolved"]) == (1, 1)


def test_server_errors_and_old_revisions_are_the_hubs(hub_server):
    """What load_dataset and hf_hub_download rely on beyond a push: every old commit stays readable,
    listing a tree, and Hub-style errors that the clients turn into their usual exceptions."""
    got = client(
        """
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
        api = HfApi()
        api.create_repo("org/files", repo_type="dataset")
        one = api.upload_file(path_or_fileobj=b"first", path_in_repo="notes/a.txt", repo_id="org/files",
                              repo_type="dataset")
        api.upload_file(path_or_fileobj=bytes(range(256)) * 64, path_in_repo="blob.bin", repo_id="org/files",
                        repo_type="dataset")
        api.upload_file(path_or_fileobj=b"second", path_in_repo="notes/a.txt", repo_id="org/files",
                        repo_type="dataset")
        tree = {e.path: type(e).__name__ for e in api.list_repo_tree("org/files", repo_type="dataset", recursive=True)}
        errors = []
        for call in (
            lambda: hf_hub_download("org/files", "nope.txt", repo_type="dataset"),
            lambda: hf_hub_download("org/files", "notes/a.txt", repo_type="dataset", revision="v9"),
            lambda: api.dataset_info("org/none"),
        ):
            try:
                call()
            except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError) as err:
                errors.append(type(err).__name__)
        result = {
            "tree": tree,
            "blob": list(open(hf_hub_download("org/files", "blob.bin", repo_type="dataset"), "rb").read()[1000:1005]),
            "old": open(hf_hub_download("org/files", "notes/a.txt", repo_type="dataset", revision=one.oid)).read(),
            "new": open(hf_hub_download("org/files", "notes/a.txt", repo_type="dataset")).read(),
            "errors": errors,
        }
        """
    )
    assert got["tree"] == {".gitattributes": "RepoFile", "blob.bin": "RepoFile", "notes": "RepoFolder",
                           "notes/a.txt": "RepoFile"}  # fmt: skip
    assert got["blob"] == [(1000 + i) % 256 for i in range(5)]  # an LFS file comes back byte for byte
    assert (got["old"], got["new"]) == ("first", "second")
    assert got["errors"] == ["RemoteEntryNotFoundError", "RevisionNotFoundError", "RepositoryNotFoundError"]
    assert hub_server.server.state.snapshot()["repos"]["dataset:org/files"]["commits"] == 4


# ------------------------------------------------------------------ as a user: grow, push, train with TRL


def grow_and_push(tmp_path, tag: str = "v1.0") -> None:
    """`ladder-hf variants generate` (symbolic) into ``tmp_path/tree``, then `ladder-hf variants push` of it,
    typed as a user would (``python -m ladder_hf``), against the ``hub_server`` the environment points at."""
    tree = tmp_path / "tree"
    generate = ["variants", "generate", "--problems", "x**2*exp(x)", "x*sin(x)", "--generator", "symbolic"]
    generate += ["--depth", "1", "--variants_per_node", "3", "--output_dir", str(tree), "--no_sympy", "--no_progress"]
    push = ["variants", "push", "--folder", str(tree), "--repo_id", REPO, "--tag", tag]
    for argv in (generate, push):
        done = subprocess.run([sys.executable, "-m", "ladder_hf", *argv], capture_output=True, text=True,
                              cwd=tmp_path, env=dict(os.environ), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]


def test_the_pushed_card_links_the_project_and_lists_the_funnel_in_stage_order(hub_server, tmp_path):
    from ladder_hf.variants.card import project_url
    from ladder_hf.variants.tree import FUNNEL_STAGES

    grow_and_push(tmp_path)
    on_disk = list(json.loads((tmp_path / "tree" / "qc.json").read_text()))
    assert on_disk == sorted(on_disk) != list(FUNNEL_STAGES)  # qc.json's own order is alphabetical
    readme = client('result = download("README.md", revision="v1.0")')
    built_with = readme[readme.index("Built and published with") :].split("\n\n", 1)[0]
    # before: [ladder_hf](https://arxiv.org/abs/2503.00735), the paper, where the software is named
    assert f"[ladder_hf]({project_url()})" in built_with and "arxiv.org" not in built_with
    assert "[arXiv:2503.00735](https://arxiv.org/abs/2503.00735)" in readme  # the method is still cited
    funnel = readme[readme.index("**Quality-control funnel**") :].split("\n\n", 2)[1]
    stages = [line.split("|")[1].strip() for line in funnel.splitlines()[2:]]
    assert stages == [s for s in FUNNEL_STAGES if s in on_disk] and len(stages) == len(on_disk), funnel


def test_trl_grpo_trains_on_the_pushed_variants_as_they_are(hub_server, tmp_path, tiny_model_dir):
    """The README's promise: `trl grpo --dataset_name <repo> --reward_funcs ladder_hf.rewards.integration_reward`
    on a pushed tree, no preprocessing (before: TRL stopped on the missing `prompt` column)."""
    from ladder_hf.problems import build_messages

    grow_and_push(tmp_path)
    pushed = client('result = rows(revision="v1.0")')
    assert pushed and all(row["prompt"] == build_messages(row, "default") for row in pushed)
    trl = os.path.join(os.path.dirname(sys.executable), "trl")
    argv = ["grpo", "--model_name_or_path", tiny_model_dir, "--dataset_name", REPO]
    argv += ["--reward_funcs", "ladder_hf.rewards.integration_reward", "--output_dir", str(tmp_path / "grpo")]
    argv += ["--max_steps", "1", "--per_device_train_batch_size", "2", "--num_generations", "2"]
    argv += ["--max_completion_length", "8", "--use_cpu", "true", "--bf16", "false", "--dtype", "float32"]
    argv += ["--report_to", "none", "--save_strategy", "no", "--logging_steps", "1"]
    done = subprocess.run([trl, *argv], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    # the step ran our reward on the pushed rows' integrand/lower/upper (it raises without `integrand`)
    assert "'rewards/integration_reward/mean'" in done.stdout and "Training completed" in done.stdout
    assert (tmp_path / "grpo" / "model.safetensors").is_file()
