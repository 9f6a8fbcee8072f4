"""Tests for ladder_hf.variants: generators, backends, quality control, trees, resumability, CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sympy

from ladder_hf.generation import OpenAIBackend, TransformersBackend
from ladder_hf.variants import (
    PERSONAS,
    TRANSFORMATIONS,
    ContaminationGuard,
    FingerprintIndex,
    ModelVariantGenerator,
    QualityConfig,
    SymbolicGenerator,
    difficulty,
    extract_variants,
    generate_tree,
    profile_batch,
    read_funnel,
    sample_transformations,
    solvability_batch,
)
from ladder_hf.variants.quality import same_function, structure_key
from ladder_hf.variants.symbolic import drop_factor, drop_summand, lower_exponent, unwrap_composition
from ladder_hf.variants.tree import FUNNEL_STAGES, NODES_FILE, TreeState

x = sympy.Symbol("x")
FAST_QC = QualityConfig(sympy_timeout=2.0)

PROBLEMS = [
    {"id": "p1", "integrand": "x**3*sin(2*x)", "lower": "", "upper": ""},
    {"id": "p2", "integrand": "exp(x)/(exp(2*x) + 1)", "lower": "0", "upper": "1"},
    {"id": "p3", "integrand": "x**2*log(x) + sqrt(x + 4)", "lower": "", "upper": ""},
]


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------
# Transformation library


def test_library_has_all_kinds_and_sampling_respects_kind():
    kinds = {t.kind for t in TRANSFORMATIONS}
    assert kinds == {"easier", "equivalent", "harder"}
    assert len({t.name for t in TRANSFORMATIONS}) == len(TRANSFORMATIONS)
    assert sum(t.kind == "easier" for t in TRANSFORMATIONS) >= 25
    assert len(PERSONAS) >= 15
    rng = random.Random(0)
    for k in range(3, 7):
        picks = sample_transformations(rng, "easier", k)
        assert len(picks) == k and len({p.name for p in picks}) == k
        assert all(p.kind == "easier" for p in picks)


# ---------------------------------------------------------------------------------------------
# Symbolic generator


def test_mutations_do_what_they_say():
    e = sympy.sympify("x**3*sin(2*x) + exp(x)/(x**2 + 1)")
    rng = random.Random(0)
    assert sympy.sympify("exp(x)/(x**2 + 1)") in drop_summand(e, rng)
    assert sympy.sympify("x**2*sin(2*x) + exp(x)/(x**2 + 1)") in lower_exponent(e, rng)
    assert sympy.sympify("x**3*sin(x) + exp(x)/(x**2 + 1)") in unwrap_composition(e, rng)
    assert sympy.sympify("x**3 + exp(x)/(x**2 + 1)") in drop_factor(e, rng)


def test_symbolic_generator_is_deterministic_and_valid():
    parents = [{"id": p["id"], "integrand": p["integrand"]} for p in PROBLEMS]
    a = SymbolicGenerator(seed=7).propose(parents, 6)
    b = SymbolicGenerator(seed=7).propose(parents, 6)
    c = SymbolicGenerator(seed=8).propose(parents, 6)
    strings = lambda out: [[cand.raw for cand in cands] for cands in out]  # noqa: E731
    assert strings(a) == strings(b)
    assert strings(a) != strings(c)
    for parent, cands in zip(parents, a, strict=True):
        assert len(cands) == 6
        parent_expr = sympy.sympify(parent["integrand"])
        assert len({cand.raw for cand in cands}) == 6
        for cand in cands:
            assert cand.expr.has(x) and cand.expr != parent_expr
            assert cand.kind in ("easier", "equivalent") and cand.generator == "symbolic"
            assert len(cand.transformations) == 1
            # What we store must round-trip through the verifier's safe parser.
            from ladder_hf.verifier import parse_math

            assert sympy.simplify(parse_math(cand.raw) - cand.expr) == 0


def test_symbolic_mix_is_mostly_easier():
    gen = SymbolicGenerator(seed=1)
    cands = [c for cs in gen.propose([{"id": "p", "integrand": "x**4*exp(3*x) + cos(x)**3"}], 12) for c in cs]
    kinds = [c.kind for c in cands]
    assert kinds.count("easier") > kinds.count("equivalent") > 0


# ---------------------------------------------------------------------------------------------
# Model generator, prompts, parsing


class ScriptedBackend:
    """A backend that returns scripted completions and records what it was asked."""

    model_name = "scripted"

    def __init__(self, replies):
        self.replies = replies
        self.calls = []

    def generate(self, conversations, *, n=1, max_new_tokens=256, temperature=1.0, **kwargs):
        self.calls.append((conversations, temperature))
        return [[self.replies[i % len(self.replies)]] * n for i in range(len(conversations))]


def test_extract_variants_tags_lists_and_garbage():
    assert extract_variants("<variant>x**2</variant> and <VARIANT> ∫ sin(x) dx </VARIANT>") == ["x**2", "sin(x)"]
    assert extract_variants("Here:\n1. x*exp(x)\n2) `cos(x)`\n- $x**3$ dx") == ["x*exp(x)", "cos(x)", "x**3"]
    assert extract_variants("I cannot help with that.") == []
    assert extract_variants("Sure!\n<variant>x*sin(x) + 2\n\nThis is it.\n<variant>cos(x)") == [
        "x*sin(x) + 2",
        "cos(x)",
    ]
    assert extract_variants("<variant>a</variant><variant>b</variant><variant>c</variant>", limit=2) == ["a", "b"]


def test_model_generator_prompts_mix_temperatures_and_parse_counts():
    backend = ScriptedBackend(
        ["<variant>x**2</variant>\n<variant>import os; os.system('rm')</variant>\n<variant>sin(x)</variant>"]
    )
    gen = ModelVariantGenerator(backend, variants_per_prompt=3, seed=0)
    parents = [{"id": f"p{i}", "integrand": "x**3*exp(x)"} for i in range(40)]
    out = gen.propose(parents, 6)  # 2 prompts per parent
    conversations, temperatures = backend.calls[0]
    assert len(conversations) == 80
    assert temperatures[:8] == [0.8, 1.0, 1.2, 1.4, 0.8, 1.0, 1.2, 1.4]
    kinds = []
    for conv in conversations:
        system, user = conv[0]["content"], conv[1]["content"]
        assert any(p in system for p in PERSONAS)
        assert "x**3*exp(x)" in user and "<variant>" in user
        n_suggestions = sum(line.startswith("- ") for line in user.splitlines())
        assert 3 <= n_suggestions <= 6
        kinds.append("easier" if "easier than this one" in user else "equivalent")
    harder = [t.description for t in TRANSFORMATIONS if t.kind == "harder"]
    users = [c[1]["content"] for c in conversations]
    assert not any(h in u for h in harder for u in users) and not any("harder than this" in u for u in users)
    share_easier = kinds.count("easier") / len(kinds)
    assert 0.55 <= share_easier <= 0.85  # target mix 70/30 over 80 prompts
    for cands in out:
        assert len(cands) == 6
        parsed = [c for c in cands if c.parsed]
        assert [str(c.expr) for c in parsed] == ["x**2", "sin(x)", "x**2", "sin(x)"]
        bad = [c for c in cands if not c.parsed]
        assert len(bad) == 2 and all(c.parse_error for c in bad)
        assert all(c.temperature in (0.8, 1.0, 1.2, 1.4) and c.generator == "scripted" for c in cands)


def test_model_generator_counts_output_with_no_variants_as_unparsable():
    gen = ModelVariantGenerator(ScriptedBackend(["Sorry, I can't do that."]), variants_per_prompt=5)
    [cands] = gen.propose([{"id": "p", "integrand": "x"}], 5)
    assert len(cands) == 1 and not cands[0].parsed


def test_model_tree_through_an_openai_server(tmp_path):
    from test_generation import ChatServer

    with ChatServer(fail_first=1) as server:
        backend = OpenAIBackend(server.url, "local-model", max_workers=4)
        gen = ModelVariantGenerator(backend, variants_per_prompt=3, seed=0)
        nodes = generate_tree(PROBLEMS[:1], gen, depth=1, out_dir=str(tmp_path), variants_per_node=6, quality=FAST_QC)
    reqs = server.requests
    assert len(reqs) == 1 + 2  # one 503 retried, then two prompts
    assert all(r["model"] == "local-model" and r["max_tokens"] == 256 for r in reqs)
    assert {r["temperature"] for r in reqs} <= {0.8, 1.0, 1.2, 1.4}
    assert reqs[-1]["messages"][0]["role"] == "system" and "x**3*sin(2*x)" in reqs[-1]["messages"][1]["content"]
    funnel = read_funnel(str(tmp_path))
    assert funnel["generated"] == 6 and funnel["parsed"] == 4  # the "?? bad" lines are counted, then dropped
    children = [n for n in nodes if n["depth"] == 1]
    assert len(children) == funnel["kept"] >= 2
    assert all(n["generator"] == "local-model" and n["temperature"] in (0.8, 1.0, 1.2, 1.4) for n in children)


# ---------------------------------------------------------------------------------------------
# Quality control


def test_numeric_sanity():
    exprs = [sympy.log(x), sympy.sqrt(-1 - x**2), sympy.Integer(3), x - x + sympy.sin(x) * 0, 1 / x, sympy.exp(x) * x]
    intervals = [None, None, None, None, (-1.0, 1.0), (0.0, 1.0)]
    profiles = profile_batch(exprs, intervals, FAST_QC)
    assert [p.sane for p in profiles] == [True, False, False, False, True, True]
    assert "constant" in profiles[2].reason and "constant" in profiles[3].reason
    assert "real" in profiles[1].reason
    # log(x) is real only for x > 0: undefined points are None in its fingerprint.
    assert profiles[0].fingerprint[0] is None and profiles[0].fingerprint[-1] == pytest.approx(1.2835, abs=1e-3)


def test_numeric_sanity_rejects_nonreal_interval():
    [p] = profile_batch([sympy.sqrt(x)], [(-2.0, -1.0)], FAST_QC)
    assert not p.sane and "interval" in p.reason


def test_numeric_dedup_beyond_strings():
    a, b, c = sympy.sin(2 * x), 2 * sympy.sin(x) * sympy.cos(x), sympy.sin(2 * x) + 1e-3
    pa, pb, pc = (p.fingerprint for p in profile_batch([a, b, c], config=FAST_QC))
    assert same_function(pa, pb) and not same_function(pa, pc)
    index = FingerprintIndex()
    index.add(pa)
    assert index.find(pb) == 0 and index.find(pc) is None


def test_contamination_guard():
    guard = ContaminationGuard(
        [{"id": "t1", "integrand": "x**3*sin(2*x)"}, {"id": "t2", "integrand": "exp(x)/(1 + exp(2*x))"}]
    )
    candidates = {
        "x**3*sin(2*x)": "identical",
        "x**3*(2*sin(x)*cos(x))": "numerically equivalent",
        "5*x**3*sin(2*x)": "constant multiple",
        "x**3*sin(7*x) + 2": "different numbers",
        "exp(x)/(exp(2*x) + 3)": "different numbers",
        "x**2*sin(x)": "",
        "x*exp(x)": "",
    }
    exprs = [sympy.sympify(s) for s in candidates]
    profiles = profile_batch(exprs, config=FAST_QC)
    for (text, expected), e, p in zip(candidates.items(), exprs, profiles, strict=True):
        verdict = guard.check(e, p.fingerprint)
        if expected:
            assert expected in verdict, (text, verdict)
        else:
            assert verdict == "", (text, verdict)


def test_structure_key_keeps_exponents():
    k = lambda s: structure_key(sympy.sympify(s))  # noqa: E731
    assert k("8*x**3*sin(4*x)") == k("x**3*sin(3*x)")
    assert k("x**3*sin(3*x)") != k("x**2*sin(3*x)")


def test_solvability_and_difficulty():
    exprs = [x**2, x * sympy.exp(x), sympy.exp(x**2) * sympy.sin(x) / (x + sympy.exp(x))]
    results = solvability_batch(exprs, QualityConfig(sympy_timeout=3.0))
    assert results[0].sympy_solvable and results[1].sympy_solvable and not results[2].sympy_solvable
    anti = sympy.sympify(results[1].sympy_antiderivative)
    assert sympy.simplify(sympy.diff(anti, x) - exprs[1]) == 0
    assert results[0].difficulty < results[1].difficulty < results[2].difficulty
    assert difficulty(1, 2) == pytest.approx(1 + 1.585, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Trees


def _tree_summary(nodes):
    return sorted((n["id"], n["integrand"], n["parent_id"] or "") for n in nodes)


def test_generate_tree_structure_and_funnel(tmp_path):
    out = str(tmp_path / "tree")
    nodes = generate_tree(
        PROBLEMS, SymbolicGenerator(seed=0), depth=2, out_dir=out, variants_per_node=3, quality=FAST_QC
    )
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids))
    by_id = {n["id"]: n for n in nodes}
    assert {n["depth"] for n in nodes} == {0, 1, 2}
    for n in nodes:
        if n["depth"] == 0:
            assert n["parent_id"] is None and n["root_id"] == n["id"] and n["source_problem"] == n["id"]
        else:
            parent = by_id[n["parent_id"]]
            assert n["depth"] == parent["depth"] + 1 and n["root_id"] == parent["root_id"]
            assert n["lower"] == parent["lower"] and n["upper"] == parent["upper"]
            assert n["generator"] == "symbolic" and n["kind"] in ("easier", "equivalent")
            assert n["kept"] and n["numeric_sane"]
            assert n["difficulty_delta"] == pytest.approx(n["difficulty"] - parent["difficulty"], abs=1e-3)
            if n["sympy_solvable"]:
                anti = sympy.sympify(n["sympy_antiderivative"])
                assert sympy.simplify(sympy.diff(anti, x) - sympy.sympify(n["integrand"])) == 0
    # No two kept nodes are numerically the same function.
    fps = [n["qc_fingerprint"] for n in nodes]
    assert not any(same_function(fps[i], fps[j]) for i in range(len(fps)) for j in range(i))
    funnel = _json(os.path.join(out, "qc.json"))
    assert list(funnel) == sorted(FUNNEL_STAGES) or set(funnel) == set(FUNNEL_STAGES)
    counts = [funnel[s] for s in FUNNEL_STAGES]
    assert counts == sorted(counts, reverse=True)
    assert funnel["kept"] == sum(n["depth"] > 0 for n in nodes)
    rejected = _lines(os.path.join(out, "rejected.jsonl"))
    assert len(rejected) == funnel["generated"] - funnel["kept"]
    # Rerunning a finished tree changes nothing.
    again = generate_tree(
        PROBLEMS, SymbolicGenerator(seed=0), depth=2, out_dir=out, variants_per_node=3, quality=FAST_QC
    )
    assert _tree_summary(again) == _tree_summary(nodes)
    assert len(_lines(os.path.join(out, NODES_FILE))) == len(nodes)


def test_generate_tree_contamination_guard(tmp_path):
    # The root *is* the protected problem (same id: test-time training), so its tree grows and every
    # variant is guarded. (A root equal to a protected problem under another id grows no tree: see
    # tests/test_contamination.py.)
    protect = [{"id": "p1", "integrand": "x**3*sin(2*x)"}]
    nodes = generate_tree(
        PROBLEMS[:1], SymbolicGenerator(seed=0), 2, str(tmp_path), protect=protect, variants_per_node=5, quality=FAST_QC
    )
    guard = ContaminationGuard(protect)
    variants = [n for n in nodes if n["depth"] > 0]
    assert variants
    for n in variants:
        assert guard.check(sympy.sympify(n["integrand"]), n["qc_fingerprint"]) == ""
    root = nodes[0]
    assert root["contaminated_with"] == "p1" and root["kept"]
    rejected = _lines(tmp_path / "rejected.jsonl")
    assert any(r["qc_status"] == "contaminated" for r in rejected)
    assert read_funnel(str(tmp_path))["clean"] < read_funnel(str(tmp_path))["unique"]


def test_max_nodes_per_root(tmp_path):
    nodes = generate_tree(
        PROBLEMS[:2],
        SymbolicGenerator(seed=0),
        2,
        str(tmp_path),
        variants_per_node=4,
        max_nodes_per_root=5,
        quality=QualityConfig(check_solvable=False),
    )
    for root in ("p1", "p2"):
        assert sum(n["root_id"] == root and n["depth"] > 0 for n in nodes) == 5


def test_a_parent_cut_by_the_cap_stays_growable_and_a_larger_cap_grows_it(tmp_path):
    from ladder_hf.variants.tree import TreeState, regrowable

    cfg = {"variants_per_node": 4, "quality": QualityConfig(check_solvable=False), "progress": False}
    capped = generate_tree(PROBLEMS[:1], SymbolicGenerator(seed=0), 2, str(tmp_path), max_nodes_per_root=3, **cfg)
    assert sum(n["depth"] > 0 for n in capped) == 3
    state = TreeState(str(tmp_path))
    cut = [n for n in capped if n["depth"] == 1 and n["id"] not in state.expansions]
    cut += [n for n in capped if n["id"] in state.expansions and regrowable(state.expansions[n["id"]])]
    assert cut and all(n["depth"] == 1 for n in cut)  # leaves by accident: the tree was full, not QC
    # the same run again changes nothing; a run without the cap grows exactly those leaves
    again = generate_tree(PROBLEMS[:1], SymbolicGenerator(seed=0), 2, str(tmp_path), max_nodes_per_root=3, **cfg)
    assert [n["id"] for n in again] == [n["id"] for n in capped]
    grown = generate_tree(
        PROBLEMS[:1], SymbolicGenerator(seed=0), 2, str(tmp_path), max_nodes_per_root=None, extend=True, **cfg
    )
    new = [n for n in grown if n["id"] not in {c["id"] for c in capped}]
    assert new and {n["parent_id"] for n in new} <= {n["id"] for n in cut}
    assert len({n["id"] for n in grown}) == len(grown)
    # what a restart reads back: every regrown child stays committed, and the funnel counts both attempts
    reread = TreeState(str(tmp_path))
    assert sorted(n["id"] for n in reread.nodes) == sorted(n["id"] for n in grown)
    assert read_funnel(str(tmp_path))["kept"] == len(grown) - 1


def test_resume_repairs_torn_and_uncommitted_writes(tmp_path):
    ref_dir, dir_ = str(tmp_path / "ref"), str(tmp_path / "crashed")
    cfg = {"depth": 2, "variants_per_node": 3, "quality": FAST_QC, "progress": False}
    reference = generate_tree(PROBLEMS[:2], SymbolicGenerator(seed=3), out_dir=ref_dir, **cfg)
    # A run that got through depth 1 and crashed while writing the children of a depth-1 node:
    # those children are on disk but their expansion record is not, and the last line is torn.
    ref_nodes = _lines(os.path.join(ref_dir, NODES_FILE))
    ref_exp = _lines(os.path.join(ref_dir, "expansions.jsonl"))
    os.makedirs(dir_)
    committed = ref_exp[:3]
    committed_ids = {c for r in committed for c in r["children"]}
    orphan_parent = ref_exp[3]["parent_id"]
    keep = [n for n in ref_nodes if n["depth"] == 0 or n["id"] in committed_ids]
    orphans = [n for n in ref_nodes if n["parent_id"] == orphan_parent]
    with open(os.path.join(dir_, NODES_FILE), "w") as f:
        for n in keep + orphans:
            f.write(json.dumps(n) + "\n")
        f.write(json.dumps(ref_nodes[-1])[:25])  # torn line
    with open(os.path.join(dir_, "expansions.jsonl"), "w") as f:
        for r in committed:
            f.write(json.dumps(r) + "\n")
    state = TreeState(dir_)
    assert {n["id"] for n in state.nodes} == {n["id"] for n in keep}
    resumed = generate_tree(PROBLEMS[:2], SymbolicGenerator(seed=3), out_dir=dir_, **cfg)
    assert _tree_summary(resumed) == _tree_summary(reference)
    on_disk = _lines(os.path.join(dir_, NODES_FILE))
    assert len(on_disk) == len({n["id"] for n in on_disk}) == len(reference)
    assert read_funnel(dir_) == read_funnel(ref_dir)


def _cli(*args):
    return [sys.executable, "-m", "ladder_hf.cli", "variants", *args]


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    """Kill a real generation subprocess (SIGKILL) at several points; the restarted run matches."""
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    common = ["--problems", str(problems), "--generator", "symbolic", "--depth", "3", "--variants-per-node", "3"]
    common += ["--batch-parents", "1", "--sympy-timeout", "1", "--seed", "5", "--no-progress"]
    ref_dir, dir_ = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli("generate", *common, "--out", str(ref_dir)), check=True, capture_output=True, timeout=600)
    reference = _lines(ref_dir / NODES_FILE)
    assert len(reference) > 30
    kills = 0
    for threshold in (len(PROBLEMS) + 1, len(reference) // 3, (2 * len(reference)) // 3):
        proc = subprocess.Popen(
            _cli("generate", *common, "--out", str(dir_)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            path = dir_ / NODES_FILE
            if path.exists() and path.read_bytes().count(b"\n") >= threshold:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2  # the run really was interrupted mid-way
    subprocess.run(_cli("generate", *common, "--out", str(dir_)), check=True, capture_output=True, timeout=600)
    final = _lines(dir_ / NODES_FILE)
    assert len(final) == len({n["id"] for n in final})  # nothing duplicated
    assert _tree_summary(final) == _tree_summary(reference)  # nothing lost
    assert read_funnel(str(dir_)) == read_funnel(str(ref_dir))


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_generate_with_expressions_and_protect(tmp_path):
    from ladder_hf.variants.cli import main

    out = tmp_path / "out"
    args = ["generate", "--problems", "x**2*exp(x)", "cos(x)**3", "--generator", "symbolic", "--depth", "1"]
    args += ["--out", str(out), "--protect", "x**2*exp(3*x)", "--variants-per-node", "4", "--no-progress"]
    rc = main([*args, "--sympy-timeout", "2"])
    assert rc == 0
    nodes = _lines(out / NODES_FILE)
    roots = [n for n in nodes if n["depth"] == 0]
    assert sorted(r["integrand"] for r in roots) == ["x**2*exp(x)", "cos(x)**3"] or len(roots) == 2
    assert all(r["id"].startswith("expr-") for r in roots)
    assert _json(out / "run.json")["protected"] == 1
    assert _json(out / "qc.json")["kept"] == len(nodes) - 2


def test_cli_rejects_unparsable_problem(tmp_path):
    from ladder_hf.variants.cli import main

    with pytest.raises(SystemExit, match="not a problem set"):
        main(["generate", "--problems", "__import__('os')", "--generator", "symbolic", "--out", str(tmp_path)])


@pytest.mark.slow
def test_model_tree_with_embedded_smollm2(tmp_path):
    """The default path end to end: SmolLM2-135M-Instruct writes variants, QC accounts for all of them."""
    backend = TransformersBackend(batch_size=8, seed=0)
    gen = ModelVariantGenerator(backend, variants_per_prompt=3, max_new_tokens=48)
    nodes = generate_tree(PROBLEMS[:2], gen, depth=1, out_dir=str(tmp_path), variants_per_node=6, quality=FAST_QC)
    funnel = read_funnel(str(tmp_path))
    assert funnel["requested"] == 12
    counts = [funnel[s] for s in FUNNEL_STAGES]
    assert counts[1:] == sorted(counts[1:], reverse=True)
    rejected = _lines(tmp_path / "rejected.jsonl")
    assert len(rejected) + funnel["kept"] == funnel["generated"]
    assert sum(r["qc_status"] == "unparsable" for r in rejected) == funnel["generated"] - funnel["parsed"]
    from ladder_hf.verifier import parse_math

    for n in nodes:
        if n["depth"] == 1:
            parse_math(n["integrand"])
            assert n["generator"] == "SmolLM2-135M-Instruct" and n["persona"] in PERSONAS


@pytest.mark.slow
def test_cli_generate_then_push_to_local_hub(hub_server, tmp_path):
    """generate -> push (the real huggingface_hub/datasets clients, a Hub server on 127.0.0.1) -> load by tag."""
    out = tmp_path / "tree"
    generate_tree(PROBLEMS[:2], SymbolicGenerator(seed=0), 1, str(out), variants_per_node=3, quality=FAST_QC)
    nodes = _lines(out / NODES_FILE)
    env = dict(os.environ)
    push = subprocess.run(
        _cli("push", str(out), "--repo", "org/ladder-variants", "--tag", "v1.0"),
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr[-3000:]
    script = (
        "import json; from datasets import load_dataset\n"
        "ds = load_dataset('org/ladder-variants', 'variants', revision='v1.0', split='train')\n"
        "print('IDS:' + json.dumps(sorted(zip(ds['id'], ds['integrand']))))\n"
    )
    load = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert load.returncode == 0, load.stderr[-3000:]
    [line] = [ln for ln in load.stdout.splitlines() if ln.startswith("IDS:")]
    expected = sorted((n["id"], n["integrand"]) for n in nodes if n["depth"] > 0)
    assert [tuple(r) for r in json.loads(line[4:])] == expected
    # A tag is never moved: pushing v1.0 again fails and says so.
    again = subprocess.run(
        _cli("push", str(out), "--repo", "org/ladder-variants", "--tag", "v1.0"),
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert again.returncode == 1 and "v1.0" in again.stderr and "Traceback" not in again.stderr


def test_bundled_problems_beyond_parser_bounds_are_trusted_user_text_is_not(tmp_path):
    from ladder_hf.problems import bundled_integrands, get_problem
    from ladder_hf.variants.base import parse_integrand, parse_problem_integrand
    from ladder_hf.verifier import MathParseError

    beyond = []
    for integrand in bundled_integrands():
        try:
            parse_integrand(integrand)
        except MathParseError:
            beyond.append(integrand)
    for text in beyond:  # bundled strings the grammar refuses (e.g. a Sum) still parse: they are ours
        assert parse_problem_integrand(text) is not None
    with pytest.raises(MathParseError):
        parse_problem_integrand("x**60000*sin(x)")  # not a bundled string: the grammar's bounds apply
    big = get_problem("mit-2025-q09")
    user = {"id": "user-1", "integrand": "__import__('os').getcwd()", "lower": "", "upper": ""}
    nodes = generate_tree(
        [big, user], SymbolicGenerator(seed=0), 1, str(tmp_path), variants_per_node=3,
        quality=QualityConfig(check_solvable=False),
    )  # fmt: skip
    assert [n["id"] for n in nodes if n["depth"] == 0] == ["mit-2025-q09"]
    assert _json(tmp_path / "run.json")["skipped_problems"] == ["user-1"]
    assert all(n["root_id"] == "mit-2025-q09" for n in nodes)
    with pytest.raises(ValueError, match="protected problem 'user-1' does not parse"):
        ContaminationGuard([user])


def test_a_variant_folder_is_not_merged_with_another_run(tmp_path):
    out = str(tmp_path / "tree")
    qc = QualityConfig(check_solvable=False)
    first = generate_tree(PROBLEMS[:1], SymbolicGenerator(seed=0), 1, out, variants_per_node=2, quality=qc)
    # the same run resumes (nothing to do, same nodes)
    again = generate_tree(PROBLEMS[:1], SymbolicGenerator(seed=0), 1, out, variants_per_node=2, quality=qc)
    assert [n["id"] for n in again] == [n["id"] for n in first]
    with pytest.raises(ValueError, match="other depth, problems"):
        generate_tree(PROBLEMS[:2], SymbolicGenerator(seed=0), 2, out, variants_per_node=2, quality=qc)
    after = generate_tree(PROBLEMS[:1], SymbolicGenerator(seed=0), 1, out, variants_per_node=2, quality=qc)
    assert [n["id"] for n in after] == [n["id"] for n in first]  # the refused run changed nothing
    grown = generate_tree(PROBLEMS[:2], SymbolicGenerator(seed=0), 1, out, variants_per_node=2, quality=qc, extend=True)
    assert {n["root_id"] for n in grown} == {p["id"] for p in PROBLEMS[:2]}


def test_cli_refuses_to_merge_runs_in_one_folder(tmp_path):
    from ladder_hf.variants.cli import main

    out = str(tmp_path / "tree")
    base = ["generate", "--generator", "symbolic", "--no-sympy", "--no-progress", "--out", out]
    assert main([*base, "--problems", "x**2*exp(x)", "--depth", "1", "--variants-per-node", "2"]) == 0
    with pytest.raises(SystemExit, match=r"other depth, problems.*--extend"):
        main([*base, "--problems", "x**3*sin(x)", "--depth", "2", "--variants-per-node", "2"])
    assert main([*base, "--problems", "x**3*sin(x)", "--depth", "1", "--variants-per-node", "2", "--extend"]) == 0


def test_a_variant_the_verifier_cannot_read_is_not_sane():
    # sympy holds Sum(...) (a bundled 2024 root is one); the verifier's grammar does not, so such a node
    # could never be rewarded and must not reach training
    n = sympy.Symbol("n")
    x = sympy.Symbol("x")
    profiles = profile_batch([sympy.Sum(x**n, (n, 0, 3)), x**2], config=FAST_QC)
    assert not profiles[0].sane and "verifier cannot read" in profiles[0].reason
    assert profiles[1].sane


def test_a_variant_equal_to_its_parent_up_to_constants_is_a_parent_copy(tmp_path):
    # 3*f + 1 is not easier than f: the funnel rejects it as a copy, and counts easier kept variants
    from ladder_hf.variants.quality import is_parent_copy

    x = sympy.Symbol("x")
    [parent, copy, easier] = profile_batch([x**2 * sympy.exp(x), 3 * x**2 * sympy.exp(x) + 1, x * sympy.exp(x)])
    assert is_parent_copy(parent.fingerprint, copy.fingerprint)
    assert not is_parent_copy(parent.fingerprint, easier.fingerprint)
    assert not is_parent_copy(None, copy.fingerprint)  # a root row written before fingerprints were kept
