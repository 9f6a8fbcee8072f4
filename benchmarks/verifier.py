"""Benchmark: ladder_hf's verifier against a paper-style baseline on the same labelled batch.

The baseline follows the LADDER paper's description (arXiv 2503.00735): parse the answer with sympy,
pick 5 random points in [-10, 10], compare F(b) - F(a) with ``mpmath.quad`` of the integrand on an
interval of length 0.1 at each, relative tolerance 1e-2, resampling points where anything is
undefined; definite answers are compared with ``mpmath.quad`` over the bounds. It runs serially in
this process without timeouts (which only flatters it).

Ours is ``ladder_hf.verifier.verify_batch`` on the same completions, in its sandboxed worker pool,
restarted before each repeat (so no cached result of the benchmark batch survives between repeats)
and started with ``start_workers``, which waits until every worker has imported and run its own
warm-up, as the workers of a running trainer have.

Both wall-clock throughput (ours uses one worker per core) and CPU time summed over all processes
(ours: the caller plus its workers, from /proc) are reported: on a shared machine the wall-clock
ratio moves with the load, the CPU ratio much less.

    python benchmarks/verifier.py                 # 3 repeats, ~600 completions
    python benchmarks/verifier.py --repeats 5 --copies 2
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import mpmath
import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from ladder_hf.rewards import extract_answer
from ladder_hf.verifier import shutdown, start_workers, verify_batch
from ladder_hf.verifier.sandbox import get_pool

# (integrand, antiderivative in sympy syntax, the same in LaTeX, derivative of the integrand)
INDEFINITE = [
    ("x**2", "x**3/3", r"\frac{x^{3}}{3}", "2*x"),
    ("3*x**2 + 2*x + 1", "x**3 + x**2 + x", r"x^3 + x^2 + x", "6*x + 2"),
    ("sin(x)", "-cos(x)", r"-\cos x", "cos(x)"),
    ("cos(x)", "sin(x)", r"\sin x", "-sin(x)"),
    ("exp(x)", "exp(x)+1", r"e^{x}", "exp(x)"),
    ("x*exp(x)", "x*exp(x) - exp(x)", r"(x-1)e^x", "x*exp(x) + exp(x)"),
    ("x*cos(x)", "x*sin(x) + cos(x)", r"x\sin x + \cos x", "cos(x) - x*sin(x)"),
    ("x*sin(x)", "sin(x) - x*cos(x)", r"\sin x - x\cos x", "sin(x) + x*cos(x)"),
    ("1/x", "log(x)", r"\ln|x|", "-1/x**2"),
    ("1/(1 + x**2)", "atan(x)", r"\arctan x", "-2*x/(1 + x**2)**2"),
    ("1/sqrt(1 - x**2)", "asin(x)", r"\sin^{-1} x", "x/(1 - x**2)**(3/2)"),
    ("log(x)", "x*log(x) - x", r"x\ln x - x", "1/x"),
    ("tan(x)", "-log(cos(x))", r"-\ln|\cos x|", "1 + tan(x)**2"),
    ("sec(x)**2", "tan(x)", r"\tan x", "2*sec(x)**2*tan(x)"),
    ("sin(x)**2", "x/2 - sin(2*x)/4", r"\frac{x}{2} - \frac{\sin 2x}{4}", "2*sin(x)*cos(x)"),
    ("cos(x)**2", "x/2 + sin(2*x)/4", r"\frac{x}{2} + \frac{1}{4}\sin(2x)", "-2*sin(x)*cos(x)"),
    ("sin(x)*cos(x)", "sin(x)**2/2", r"\frac{\sin^2 x}{2}", "cos(2*x)"),
    ("exp(2*x)", "exp(2*x)/2", r"\frac{1}{2}e^{2x}", "2*exp(2*x)"),
    ("x*exp(x**2)", "exp(x**2)/2", r"\frac{e^{x^2}}{2}", "exp(x**2) + 2*x**2*exp(x**2)"),
    ("2*x/(x**2 + 1)", "log(x**2 + 1)", r"\ln(x^2+1)", "(2 - 2*x**2)/(x**2 + 1)**2"),
    (
        "1/(x**2 - 1)",
        "log(x - 1)/2 - log(x + 1)/2",
        r"\frac{1}{2}\ln\left|\frac{x-1}{x+1}\right|",
        "-2*x/(x**2 - 1)**2",
    ),
    ("sqrt(x)", "2*x**(3/2)/3", r"\frac{2}{3}x^{3/2}", "1/(2*sqrt(x))"),
    ("1/sqrt(x)", "2*sqrt(x)", r"2\sqrt{x}", "-1/(2*x**(3/2))"),
    ("x*sqrt(x**2 + 1)", "(x**2 + 1)**(3/2)/3", r"\frac{(x^2+1)^{3/2}}{3}", "sqrt(x**2+1) + x**2/sqrt(x**2+1)"),
    ("x**2*exp(x)", "(x**2 - 2*x + 2)*exp(x)", r"e^x(x^2-2x+2)", "(x**2 + 2*x)*exp(x)"),
    ("x*log(x)", "x**2*log(x)/2 - x**2/4", r"\frac{x^2\ln x}{2} - \frac{x^2}{4}", "log(x) + 1"),
    ("exp(x)*sin(x)", "exp(x)*(sin(x) - cos(x))/2", r"\frac{e^x(\sin x - \cos x)}{2}", "exp(x)*(sin(x) + cos(x))"),
    ("exp(x)*cos(x)", "exp(x)*(sin(x) + cos(x))/2", r"\frac{e^{x}}{2}(\sin x+\cos x)", "exp(x)*(cos(x) - sin(x))"),
    ("sinh(x)", "cosh(x)", r"\cosh x", "cosh(x)"),
    ("cosh(x)", "sinh(x)", r"\sinh(x)", "sinh(x)"),
    ("tanh(x)", "log(cosh(x))", r"\ln(\cosh x)", "1 - tanh(x)**2"),
    ("1/(x*log(x))", "log(log(x))", r"\ln|\ln x|", "-(log(x) + 1)/(x*log(x))**2"),
    ("atan(x)", "x*atan(x) - log(x**2 + 1)/2", r"x\arctan x - \frac{1}{2}\ln(1+x^2)", "1/(1 + x**2)"),
    ("asin(x)", "x*asin(x) + sqrt(1 - x**2)", r"x\arcsin x + \sqrt{1-x^2}", "1/sqrt(1 - x**2)"),
    ("x**3*exp(x**4)", "exp(x**4)/4", r"\frac{1}{4}e^{x^4}", "3*x**2*exp(x**4) + 4*x**6*exp(x**4)"),
    ("cos(x)**3", "sin(x) - sin(x)**3/3", r"\sin x - \frac{\sin^3 x}{3}", "-3*cos(x)**2*sin(x)"),
    ("sin(x)**3", "cos(x)**3/3 - cos(x)", r"\frac{\cos^3x}{3} - \cos x", "3*sin(x)**2*cos(x)"),
    ("1/(x**2 + 4)", "atan(x/2)/2", r"\frac{1}{2}\tan^{-1}\frac{x}{2}", "-2*x/(x**2 + 4)**2"),
    ("1/(x**2 + 2*x + 2)", "atan(x + 1)", r"\arctan(x+1)", "-(2*x + 2)/(x**2 + 2*x + 2)**2"),
    ("x/(x + 1)", "x - log(x + 1)", r"x - \ln|x+1|", "1/(x + 1)**2"),
    ("(x + 1)**5", "(x + 1)**6/6", r"\frac{(x+1)^6}{6}", "5*(x + 1)**4"),
    ("x**5", "x**6/6", r"\frac{x^6}{6}", "5*x**4"),
    ("1/x**2", "-1/x", r"-\frac{1}{x}", "-2/x**3"),
    ("exp(-x)", "-exp(-x)", r"-e^{-x}", "-exp(-x)"),
    ("2**x", "2**x/log(2)", r"\frac{2^x}{\ln 2}", "2**x*log(2)"),
    ("cos(3*x)", "sin(3*x)/3", r"\frac{\sin 3x}{3}", "-3*sin(3*x)"),
    ("x*cos(x**2)", "sin(x**2)/2", r"\frac{1}{2}\sin(x^2)", "cos(x**2) - 2*x**2*sin(x**2)"),
    ("1/(1 - x**2)", "atanh(x)", r"\frac{1}{2}\ln\left|\frac{1+x}{1-x}\right|", "2*x/(1 - x**2)**2"),
    (
        "sqrt(1 - x**2)",
        "x*sqrt(1 - x**2)/2 + asin(x)/2",
        r"\frac{x\sqrt{1-x^2}}{2} + \frac{\arcsin x}{2}",
        "-x/sqrt(1 - x**2)",
    ),
    ("exp(sqrt(x))/sqrt(x)", "2*exp(sqrt(x))", r"2e^{\sqrt{x}}", "exp(sqrt(x))/(2*x) - exp(sqrt(x))/(2*x**(3/2))"),
]

# (integrand, lower, upper, value in sympy syntax, the same in LaTeX)
DEFINITE = [
    ("sin(x)", "0", "pi", "2", "2"),
    ("x**2", "0", "1", "1/3", r"\frac{1}{3}"),
    ("exp(-x**2)", "-oo", "oo", "sqrt(pi)", r"\sqrt{\pi}"),
    ("1/(1 + x**2)", "0", "1", "pi/4", r"\frac{\pi}{4}"),
    ("log(x)", "1", "E", "1", "1"),
    ("x*exp(-x)", "0", "oo", "1", "1"),
    ("cos(x)**2", "0", "pi/2", "pi/4", r"\frac{\pi}{4}"),
    ("1/x", "1", "2", "log(2)", r"\ln 2"),
    ("sqrt(x)", "0", "4", "16/3", r"\frac{16}{3}"),
    ("1/(1 + x**2)", "-oo", "oo", "pi", r"\pi"),
]

_BASELINE_TRANSFORMS = (*standard_transformations, convert_xor)


def _is_antiderivative(integrand: str, candidate: str) -> bool:
    x = sympy.Symbol("x")
    f = parse_expr(integrand, local_dict={"x": x}, transformations=_BASELINE_TRANSFORMS)
    F = parse_expr(candidate, local_dict={"x": x}, transformations=_BASELINE_TRANSFORMS)
    return sympy.simplify(sympy.diff(F, x) - f) == 0


def build_batch(copies: int = 1, seed: int = 0, tricks: bool = True) -> list[dict]:
    """Labelled completions: correct answers in several forms, near-misses, junk and attacks."""
    rng = random.Random(seed)
    rows = []

    def add(problem: dict, answer: str | None, label: bool, kind: str) -> None:
        text = "Let me think. " + (f"<answer>{answer}</answer>" if answer is not None else "I am not sure.")
        rows.append({**problem, "completion": text, "label": label, "kind": kind})

    for _ in range(copies):
        for f, anti, latex, deriv in INDEFINITE:
            p = {"integrand": f, "lower": "", "upper": ""}
            add(p, anti, True, "correct")
            add(p, latex, True, "correct-latex")
            add(p, f"{anti} + {rng.randint(1, 9)}", True, "correct+const")
            add(p, f"-({anti})", False, "sign")
            add(p, f"2*({anti})", False, "factor")
            add(p, f"1.001*({anti})", False, "rel-1e-3")
            add(p, f"{anti} + x", False, "extra-term")
            # tricks a policy finds against a lax judge: a step added, a tiny relative error, an answer
            # that blows up where the integrand is finite
            if tricks:
                add(p, f"{anti} + floor(x)", False, "step")
                add(p, f"(1 + 10**(-9))*({anti})", False, "rel-1e-9")
                add(p, f"{anti} + exp(-10**6*x)", False, "overflow")
            # the derivative or the integrand itself is sometimes right (exp(x), sinh <-> cosh): label by sympy
            for near, kind in ((deriv, "derivative"), (f, "integrand")):
                add(p, near, _is_antiderivative(f, near), kind)
            add(p, None, False, "no-answer")
            add(p, f"Integral({f}, x)", False, "integral")
        for f, lo, hi, value, latex in DEFINITE:
            p = {"integrand": f, "lower": lo, "upper": hi}
            add(p, value, True, "definite")
            add(p, latex, True, "definite-latex")
            add(p, f"{value}*1.001", False, "definite-1e-3")
            add(p, f"-({value})", False, "definite-sign")
        attacks = [
            "__import__('os').system('true')",
            "10**10**10",
            "x" + "+x" * 600,
            "(" * 50 + "x" + ")" * 50,
            "y + 1",
        ]
        for attack in attacks:
            add({"integrand": "x", "lower": "", "upper": ""}, attack, False, "attack")
            rows[-1]["baseline_skip"] = True
    return rows


def attack_costs() -> None:
    """Cost under attack: hostile completions for answer extraction (in the trainer process), and a
    GRPO-sized batch of 256 in which 128 are distinct answers that are expensive to evaluate."""
    print("\ncost under attack:")
    for name, text in (
        ("12,500 unclosed <answer>", "<answer>" * 12_500),
        ("14,000 unclosed \\boxed{", r"\boxed{" * 14_000),
    ):
        start = time.perf_counter()
        extract_answer(text)
        print(f"  extract_answer, {name} ({len(text) // 1000} KB): {1e3 * (time.perf_counter() - start):.1f} ms")
    items = [{"integrand": "x**2", "candidate": rf"x^3/3 + \sin(e^{{e^{{20}}}}) + {k}"} for k in range(128)]
    items += [{"integrand": "x**2", "candidate": f"x^3/3 + {k}"} for k in range(128)]
    start = time.perf_counter()
    results = verify_batch(items)
    seconds = time.perf_counter() - start
    lost = sum(not r.correct for r in results[128:])
    accepted = sum(r.correct for r in results[:128])
    print(f"  256 answers, 128 distinct slow ones: {seconds:.2f} s, {accepted} slow accepted, {lost} correct lost")


# ----------------------------------------------------------------------------- paper-style baseline


def _baseline_indefinite(f: sympy.Expr, F: sympy.Expr, rng: random.Random) -> bool:
    x = sympy.Symbol("x")
    fn, Fn = sympy.lambdify(x, f, "mpmath"), sympy.lambdify(x, F, "mpmath")
    passed = 0
    for _ in range(5):
        for _attempt in range(10):  # resample near singularities / outside the domain
            a = rng.uniform(-10, 10)
            b = a + 0.1
            try:
                expected = mpmath.quad(fn, [a, b])
                got = Fn(b) - Fn(a)
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                continue
            if not (mpmath.isfinite(expected) and mpmath.isfinite(got)) or isinstance(expected, mpmath.mpc):
                continue
            if abs(got - expected) <= 1e-2 * max(abs(expected), 1e-12):
                passed += 1
            else:
                return False
            break
        else:
            return False
    return passed == 5


def baseline_verify(row: dict, answer: str | None, rng: random.Random) -> bool:
    if answer is None:
        return False
    x = sympy.Symbol("x")
    try:
        # Benchmark-generated strings only; the library never parses model text this way.
        F = parse_expr(answer, local_dict={"x": x}, transformations=_BASELINE_TRANSFORMS)
        f = parse_expr(row["integrand"], local_dict={"x": x}, transformations=_BASELINE_TRANSFORMS)
        if F.has(sympy.Integral):
            return False
        if row["lower"] and row["upper"]:
            lo, hi = sympy.sympify(row["lower"]), sympy.sympify(row["upper"])
            lo = -mpmath.inf if lo == -sympy.oo else mpmath.mpf(float(lo))
            hi = mpmath.inf if hi == sympy.oo else mpmath.mpf(float(hi))
            expected = mpmath.quad(sympy.lambdify(x, f, "mpmath"), [lo, hi])
            got = complex(F.evalf())
            return abs(got - complex(expected)) <= 1e-2 * abs(complex(expected))
        return _baseline_indefinite(f, F, rng)
    except Exception:
        return False


def _worker_cpu_seconds() -> float:
    """CPU time used so far by the verifier's worker processes (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for pid in get_pool().pids():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_baseline(rows: list[dict]) -> tuple[float, float, list[bool]]:
    rng = random.Random(1)
    cpu = time.process_time()
    start = time.perf_counter()
    # Attack rows would hang the baseline (sympy evaluates 10**10**10 in one C call that no signal
    # interrupts); they are scored 0 for it at no cost, which only flatters the baseline.
    verdicts = [
        False if row.get("baseline_skip") else baseline_verify(row, extract_answer(row["completion"]), rng)
        for row in rows
    ]
    return time.perf_counter() - start, time.process_time() - cpu, verdicts


def run_ours(rows: list[dict]) -> tuple[float, float, list[bool]]:
    shutdown()  # fresh workers: nothing cached from a previous repeat
    start_workers()
    cpu = time.process_time() + _worker_cpu_seconds()
    start = time.perf_counter()
    items = [
        {
            "integrand": r["integrand"],
            "lower": r["lower"],
            "upper": r["upper"],
            "candidate": extract_answer(r["completion"]),
        }
        for r in rows
    ]
    results = verify_batch(items)
    wall = time.perf_counter() - start
    return wall, time.process_time() + _worker_cpu_seconds() - cpu, [r.correct for r in results]


def _agreement(verdicts: list[bool], rows: list[dict]) -> tuple[float, int, int]:
    agree = sum(v == r["label"] for v, r in zip(verdicts, rows, strict=True)) / len(rows)
    false_accepts = sum(v and not r["label"] for v, r in zip(verdicts, rows, strict=True))
    false_rejects = sum(r["label"] and not v for v, r in zip(verdicts, rows, strict=True))
    return agree, false_accepts, false_rejects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="copies of the labelled set in the batch")
    parser.add_argument(
        "--no-tricks", action="store_true", help="leave out the step/tiny-error/overflow rows (the older batch)"
    )
    args = parser.parse_args(argv)
    rows = build_batch(args.copies, tricks=not args.no_tricks)
    print(f"batch: {len(rows)} labelled completions ({sum(r['label'] for r in rows)} correct)")
    times = {"baseline": [], "ours": []}
    cpu = {"baseline": [], "ours": []}
    verdicts = {}
    for repeat in range(args.repeats):
        for name, runner in (("baseline", run_baseline), ("ours", run_ours)):
            seconds, cpu_seconds, verdicts[name] = runner(rows)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
            print(f"  repeat {repeat + 1}: {name:8s} wall {seconds:7.2f} s   cpu {cpu_seconds:7.2f} s")
    print()
    print(
        "| verifier | median wall s | completions/s (wall) | median CPU s (all processes) | CPU ms/completion "
        "| agreement with labels | false accepts | false rejects |"
    )
    print("|---|---|---|---|---|---|---|---|")
    throughput, cpu_median = {}, {}
    for name in ("baseline", "ours"):
        median = statistics.median(times[name])
        throughput[name] = len(rows) / median
        cpu_median[name] = statistics.median(cpu[name])
        agree, fa, fr = _agreement(verdicts[name], rows)
        print(
            f"| {name} | {median:.2f} | {throughput[name]:.1f} | {cpu_median[name]:.2f} "
            f"| {1e3 * cpu_median[name] / len(rows):.2f} | {agree:.1%} | {fa} | {fr} |"
        )
    print(
        f"\nspeed-up, median wall-clock throughput ours / baseline: {throughput['ours'] / throughput['baseline']:.1f}x"
    )
    print(f"speed-up, median CPU time baseline / ours: {cpu_median['baseline'] / cpu_median['ours']:.1f}x")
    attack_costs()
    wrong = [(r["kind"], r["completion"][-60:]) for v, r in zip(verdicts["ours"], rows, strict=True) if v != r["label"]]
    if wrong:
        print(f"ours disagrees with the labels on {len(wrong)}:")
        for kind, text in wrong[:20]:
            print(f"  {kind}: {text}")
    shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
