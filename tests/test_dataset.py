"""LadderDataset: the datasets builder over a variants folder's nodes.jsonl."""

from __future__ import annotations

import json

import datasets
import pytest

from ladder_hf.dataset import FEATURES, LadderDataset, config_names, load_ladder_dataset, node_to_row, read_nodes


def tree_nodes() -> list[dict]:
    """A small two-level tree written the way generate_tree writes nodes (some fields missing)."""
    return [
        {"id": "p1", "depth": 0, "integrand": "x**2*exp(x)", "lower": "", "upper": "", "generator": "root"},
        {"id": "p2", "root_id": "p2", "depth": 0, "integrand": "sin(x)**3", "lower": "0", "upper": "pi"},
        {
            "id": "p1.1",
            "root_id": "p1",
            "parent_id": "p1",
            "depth": 1,
            "integrand": "x*exp(x)",
            "kind": "easier",
            "transformations": ["lower_exponent"],
            "generator": "symbolic",
            "difficulty": 3.0,
            "sympy_solvable": True,
            "sympy_antiderivative": "(x - 1)*exp(x)",
            "source_problem": "p1",
            "numeric_sane": True,
            "novel_field": {"a": 1},
        },
        {
            "id": "p1.2",
            "root_id": "p1",
            "parent_id": "p1",
            "depth": 1,
            "integrand": "x*exp(x)",
            "kept": False,
            "qc_status": "duplicate",
            "duplicate_of": "p1.1",
        },
        {
            "id": "p2.1",
            "root_id": "p2",
            "parent_id": "p2",
            "depth": 1,
            "integrand": "sin(x)",
            "lower": "0",
            "upper": "pi",
            "persona": "a patient tutor",
            "temperature": 1.2,
            "generator": "HuggingFaceTB/SmolLM2-135M-Instruct",
        },
        {"id": "p1.1.1", "root_id": "p1", "parent_id": "p1.1", "depth": 2, "integrand": "exp(x)"},
    ]


def write_tree(folder, nodes, tail: str = "") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "nodes.jsonl", "w", encoding="utf-8") as f:
        for node in nodes:
            f.write(json.dumps(node) + "\n")
        f.write(tail)
    return str(folder)


def test_node_to_row_fills_defaults_and_keeps_unknown_fields():
    row = node_to_row(tree_nodes()[2])
    assert set(row) == set(FEATURES)
    assert row["transformations"] == ["lower_exponent"]
    assert row["kept"] is True and row["temperature"] is None and row["persona"] is None
    assert json.loads(row["extra"]) == {"novel_field": {"a": 1}}
    root = node_to_row(tree_nodes()[0])
    assert root["root_id"] == "p1" and root["parent_id"] is None and root["extra"] is None
    assert node_to_row(tree_nodes()[3])["kept"] is False
    assert node_to_row({"id": "q", "qc_status": "contaminated"})["kept"] is False


def test_configs_slice_the_tree(tmp_path):
    folder = write_tree(tmp_path / "tree", tree_nodes())
    cache = str(tmp_path / "cache")
    ids = {name: sorted(load_ladder_dataset(folder, name, cache_dir=cache)["id"]) for name in config_names()}
    assert config_names()[0] == "all"
    assert ids["all"] == ["p1", "p1.1", "p1.1.1", "p2", "p2.1"]  # the rejected duplicate is left out
    assert ids["roots"] == ["p1", "p2"]
    assert ids["variants"] == ["p1.1", "p1.1.1", "p2.1"]
    assert ids["depth_1"] == ["p1.1", "p2.1"]
    assert ids["depth_2"] == ["p1.1.1"]
    assert ids["depth_3"] == []


def test_builder_api_declares_features_and_types(tmp_path):
    folder = write_tree(tmp_path / "tree", tree_nodes())
    builder = LadderDataset(data_dir=folder, config_name="depth_1", cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    assert ds.features == FEATURES
    by_id = {r["id"]: r for r in ds}
    assert by_id["p2.1"]["temperature"] == pytest.approx(1.2)
    assert by_id["p2.1"]["lower"] == "0" and by_id["p2.1"]["upper"] == "pi"
    assert by_id["p1.1"]["sympy_solvable"] is True and by_id["p1.1"]["difficulty"] == 3.0
    assert by_id["p2.1"]["generator"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_rejected_rows_available_on_request(tmp_path):
    folder = write_tree(tmp_path / "tree", tree_nodes())
    ds = load_ladder_dataset(folder, "depth_1", cache_dir=str(tmp_path / "cache"), kept_only=False)
    rejected = [r for r in ds if not r["kept"]]
    assert [r["id"] for r in rejected] == ["p1.2"] and rejected[0]["duplicate_of"] == "p1.1"


def test_truncated_line_and_rewritten_node(tmp_path):
    # A run killed mid-write leaves half a line; a resumed run may rewrite a node: last record wins.
    nodes = [*tree_nodes(), {**tree_nodes()[4], "difficulty": 1.5}]
    folder = write_tree(tmp_path / "tree", nodes, tail='{"id": "p9", "integr')
    assert [n["id"] for n in read_nodes(folder)].count("p2.1") == 1
    ds = load_ladder_dataset(folder, "all", cache_dir=str(tmp_path / "cache"))
    assert "p9" not in ds["id"] and ds.num_rows == 5
    assert {r["id"]: r["difficulty"] for r in ds}["p2.1"] == 1.5


def test_grown_tree_is_not_served_from_cache(tmp_path):
    cache = str(tmp_path / "cache")
    folder = write_tree(tmp_path / "tree", tree_nodes())
    assert load_ladder_dataset(folder, "depth_2", cache_dir=cache).num_rows == 1
    extra = {"id": "p2.1.1", "root_id": "p2", "parent_id": "p2.1", "depth": 2, "integrand": "1"}
    write_tree(tmp_path / "tree", [*tree_nodes(), extra])
    assert sorted(load_ladder_dataset(folder, "depth_2", cache_dir=cache)["id"]) == ["p1.1.1", "p2.1.1"]


def test_empty_slice_has_the_schema(tmp_path):
    folder = write_tree(tmp_path / "tree", tree_nodes())
    ds = load_ladder_dataset(folder, "depth_5", cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds, datasets.Dataset) and ds.num_rows == 0 and ds.features == FEATURES


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nodes\.jsonl"):
        load_ladder_dataset(str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="data_dir"):
        LadderDataset(cache_dir=str(tmp_path / "cache")).download_and_prepare()


def test_build_variants_script_materialises_a_symbolic_tree(tmp_path):
    """End to end with the real generator: dataset_scripts/build_variants.py -> nodes.jsonl -> parquet."""
    import os
    import subprocess
    import sys

    problems = tmp_path / "problems.jsonl"
    problems.write_text(
        '{"id": "t1", "integrand": "x**3*sin(2*x) + exp(x)", "lower": "", "upper": ""}\n'
        '{"id": "t2", "integrand": "x**2*cos(x)", "lower": "0", "upper": "1"}\n'
    )
    protect = tmp_path / "test_set.jsonl"  # t2 is in the "test set": it must not become a training root
    protect.write_text('{"id": "t2", "integrand": "x**2*cos(x)", "lower": "0", "upper": "1"}\n')
    out = tmp_path / "tree"
    script = os.path.join(os.path.dirname(__file__), "..", "dataset_scripts", "build_variants.py")
    args = ["--problems", str(problems), "--protect", str(protect), "--depth", "2", "--variants_per_node", "3"]
    proc = subprocess.run(
        [sys.executable, script, *args, "--out_dir", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])

    nodes = read_nodes(str(out))
    assert {n["root_id"] for n in nodes} == {"t1"}
    assert summary["rows"]["roots"] == 1 and summary["rows"]["variants"] == len(nodes) - 1 > 0
    assert summary["qc_funnel"]["kept"] == summary["rows"]["variants"]
    ds = load_ladder_dataset(str(out), "all", cache_dir=str(tmp_path / "cache"))
    assert sorted(ds["id"]) == sorted(n["id"] for n in nodes)
    assert all(g == "symbolic" for g, d in zip(ds["generator"], ds["depth"], strict=True) if d > 0)
    for name, count in summary["rows"].items():
        path = out / "parquet" / f"{name}.parquet"
        if count:
            assert datasets.Dataset.from_parquet(str(path)).num_rows == count
        else:
            assert not path.exists()
    # Every variant is a child of a node in the tree, one level down.
    by_id = {r["id"]: r for r in ds}
    for row in ds:
        if row["depth"] > 0:
            assert by_id[row["parent_id"]]["depth"] == row["depth"] - 1
