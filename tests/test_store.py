"""Runs on disk: the one JSONL store and atomic writer every long job uses."""

from __future__ import annotations

import os

import pytest

from ladder_hf.store import CorruptFileError, JsonlStore, atomic_path, atomic_write, read_jsonl, write_json


def test_a_cut_last_line_is_not_a_row_and_reading_never_writes(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "trunc')
    before = path.read_bytes()
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    assert [r["id"] for r in JsonlStore(path).read()] == ["a", "b"]
    assert path.read_bytes() == before  # reads never write


def test_append_cuts_the_torn_line_first_every_time(tmp_path):
    store = JsonlStore(tmp_path / "sub" / "rows.jsonl")
    store.append({"id": "a"})  # creates the folder
    for row_id in ("b", "c"):
        with open(store.path, "a") as f:
            f.write('{"id": "half')  # a killed writer, again and again
        store.append([{"id": row_id}])
    assert store.path.read_text().splitlines() == ['{"id": "a"}', '{"id": "b"}', '{"id": "c"}']


def test_a_corrupt_complete_line_names_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n\nnot json\n{"id": "b"}\n')
    with pytest.raises(CorruptFileError, match=r"rows\.jsonl, line 3"):
        read_jsonl(path)


def test_rows_may_be_any_mapping(tmp_path):
    from ladder_hf.problems import Problem

    store = JsonlStore(tmp_path / "p.jsonl")
    store.append(Problem("q1", "x**2", meta={"year": 2025}))
    store.rewrite([*store.read(), Problem("q2", "sin(x)", "0", "pi")])
    assert [(r["id"], r["upper"], r.get("year")) for r in store.read()] == [("q1", "", 2025), ("q2", "pi", None)]


def test_atomic_writes_leave_old_or_new_never_half(tmp_path):
    target = tmp_path / "summary.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write('{"v": 2, "half')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n' and os.listdir(tmp_path) == ["summary.json"]
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"


def test_atomic_path_replaces_a_folder(tmp_path):
    target = tmp_path / "model"
    for version in ("1", "2"):
        with atomic_path(target) as tmp:
            os.makedirs(tmp)
            with open(os.path.join(tmp, "weights"), "w") as f:
                f.write(version)
    assert (target / "weights").read_text() == "2" and os.listdir(tmp_path) == ["model"]
