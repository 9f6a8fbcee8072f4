"""Cost of the contamination guard, and the overlaps of the shipped training data with 2025.

Cost: symbolic tree generation with ``protect=load_problems("mit")`` (320 problems). By default one
guarded run in which the guard times itself (building it and judging every candidate), reported
against the rest of the run; ``--mode two-runs`` compares a run without the guard with one with it
(the trees differ: the guard grows nothing from contaminated roots). The issue's goal
is at most +20% on a 5,000-node tree; ``--roots``/``--depth``/``--variants`` size the tree. Timings on
a shared machine are noisy: ``--repeats`` gives medians.

    python benchmarks/contamination.py --overlaps
    python benchmarks/contamination.py --roots 40 --depth 2 --variants 10 --repeats 1
    python benchmarks/contamination.py --roots 300 --depth 2 --variants 10   # ~5,000 nodes, defaults: ~50 min
    python benchmarks/contamination.py --roots 300 --depth 2 --variants 10 --no-solvable   # without sympy
    # what the full dataset_scripts/build_variants.py build (its defaults) loses to the guard
    python benchmarks/contamination.py --roots 300 --depth 2 --variants 10 --no-solvable --protect mit-2025
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def overlaps() -> None:
    from ladder_hf.problems import load_problems
    from ladder_hf.variants.base import parse_problem_integrand
    from ladder_hf.variants.quality import ContaminationGuard, integration_interval

    guard = ContaminationGuard([dict(p) for p in load_problems("mit-2025")])
    for name in ("mit-train", "undergrad"):
        rows = [p for p in load_problems(name)]
        verdicts = guard.judge_batch(
            [parse_problem_integrand(p.integrand) for p in rows], [integration_interval(p.lower, p.upper) for p in rows]
        )
        hits = [(p.id, v) for p, v in zip(rows, verdicts, strict=True) if v.status != "clean"]
        print(f"{name}: {len(rows)} rows, {sum(v.status == 'contaminated' for _, v in hits)} equivalent to 2025")
        for pid, v in hits:
            print(f"  {pid}: {v.reason}")


def _removed(out: str, protected: list[str]) -> dict:
    """What the guard took out of the tree in ``out`` (its kept and rejected records)."""
    import os

    from ladder_hf.dataset import REJECTED_FILE, read_nodes
    from ladder_hf.variants.card import guard_statistics

    records = read_nodes(out)
    if os.path.exists(os.path.join(out, REJECTED_FILE)):
        records += read_nodes(os.path.join(out, REJECTED_FILE))
    stats = guard_statistics(records, protected)
    stats["unjudged"] = sum(r.get("qc_status") == "unjudged" for r in records)
    return stats


def cost(args) -> None:
    from ladder_hf.problems import load_problems
    from ladder_hf.variants import QualityConfig, SymbolicGenerator, generate_tree
    from ladder_hf.variants.quality import ContaminationGuard

    roots = [dict(p) for p in load_problems("mit-train")][: args.roots]
    protect = [dict(p) for p in load_problems(args.protect)]
    quality = QualityConfig(check_solvable=not args.no_solvable)
    if args.mode == "in-run":
        # One guarded run: the guard times itself (building it and every judge_batch call), so the ratio
        # compares the same tree with and without the guard's share, free of the noise between two runs.
        for _ in range(args.repeats):
            guard = ContaminationGuard(protect, quality)
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                nodes = generate_tree(
                    roots, SymbolicGenerator(seed=0), args.depth, out, protect=guard,
                    variants_per_node=args.variants, quality=quality, progress=args.progress,
                )  # fmt: skip
                total = time.perf_counter() - t0 + guard.seconds_building
                removed = _removed(out, [p["id"] for p in protect])
            rest = total - guard.seconds
            print(
                f"guarded run: {total:.1f} s for {len(nodes)} nodes ({len(roots)} roots, depth {args.depth}); "
                f"guard {guard.seconds:.1f} s (building it {guard.seconds_building:.1f} s); "
                f"everything else {rest:.1f} s"
            )
            print(f"ratio with / without the guard's time: {total / rest:.3f}")
            print(
                f"the guard against {args.protect} ({len(protect)} problems) removed {removed['roots']} roots "
                f"({removed['tree_nodes']} nodes of their trees) and {removed['variants']} variant candidates; "
                f"by rule: {removed['by_rule']}; {removed['unjudged']} candidates could not be judged"
            )
        return
    times: dict[str, list[float]] = {"baseline": [], "guard": []}
    sizes = {}
    for _ in range(args.repeats):
        for mode in ("baseline", "guard"):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                nodes = generate_tree(
                    roots, SymbolicGenerator(seed=0), args.depth, out, protect=protect if mode == "guard" else None,
                    variants_per_node=args.variants, quality=quality, progress=args.progress,
                )  # fmt: skip
                times[mode].append(time.perf_counter() - t0)
                sizes[mode] = len(nodes)
    base, guard = statistics.median(times["baseline"]), statistics.median(times["guard"])
    print(f"baseline: {base:.1f} s ({sizes['baseline']} nodes); guard: {guard:.1f} s ({sizes['guard']} nodes)")
    print(f"ratio (median): {guard / base:.3f}  (shared machine: timings are noisy)")
    print(f"per node: {guard / max(1, sizes['guard']) / (base / max(1, sizes['baseline'])):.3f}")


if __name__ == "__main__":  # the verifier's sandbox spawns workers: keep the entry point guarded
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlaps", action="store_true", help="list shipped rows equivalent to 2025 instead")
    parser.add_argument("--roots", type=int, default=40)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--variants", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-solvable", action="store_true", help="skip sympy.integrate (isolates the rest)")
    parser.add_argument(
        "--mode",
        choices=("in-run", "two-runs"),
        default="in-run",
        help="in-run: one guarded run, the guard's own time against the rest; two-runs: with and without",
    )
    parser.add_argument("--progress", action="store_true", help="show the tree's progress bar")
    parser.add_argument("--protect", default="mit", help="bundled set the guard protects (build default: mit-2025)")
    a = parser.parse_args()
    overlaps() if a.overlaps else cost(a)
