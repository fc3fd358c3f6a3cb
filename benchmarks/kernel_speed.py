"""Evolved <= 1 ULP kernels against a Horner minimax polynomial of equal accuracy, numpy's and
JAX's own functions and the memory-copy floor: float32 exp2 on [0, 1] and exp on
[-ln2/2, ln2/2], ns/element and ratios from one process.

    python benchmarks/kernel_speed.py [--exp2-run DIR] [--exp-run DIR] [--search-time 600]
                                      [--cost ops|llvm|xla] [--sizes 16K,64K,10M] [--no-write]

For each target:

1. The evolved program: the cheapest front entry of the run directory that
   ``search.exporting.choose_and_verify(record, 1.0, None, False)`` confirms within 1 ULP on
   2**22 spread inputs.  Without a run directory the search is run here first (``search.run``,
   one worker, ``--search-time`` seconds; it does not stop at the first <= 1 ULP program, since
   the cheapest one is wanted), in ``runs/kernel-speed-TARGET-sSEED-TIME``.
2. The Horner baseline: ``fitness.baselines.minimax_polynomial`` (float64 coefficients of the
   minimax relative-error polynomial) rounded to float32, from degree 2 upward until its dense
   float32 max ULP (``fitness.verify.verify``, the same 2**22 inputs) is at most
   max(1, the evolved program's); where naive rounding misses, the float32 coefficients are
   tuned by ``fitness.fit.polish_float32`` (the search's own float32 polish) before the degree
   is raised.  Both programs are measured by the same cost model and run by the same backends.
3. Timing, per buffer size, one interleaved run (``search.bench.interleaved``: a block of calls
   per row per round, order reversed every other round) of: memory copy (``np.copyto``),
   ``np.exp2``/``np.exp``, ``jnp.exp2``/``jnp.exp`` (XLA), and each program under llvmlite (raw
   pointer calls), XLA (one dispatch per call), XLA with 64 kernel runs per dispatch (cache-
   resident sizes only: a single dispatch costs more than the kernel there) and the numpy
   evaluator.  ns/element = median over rounds; ratios = median of per-round ratios.

The tables replace the section between ``<!-- kernel_speed:start -->`` and
``<!-- kernel_speed:end -->`` in BENCHMARKS.md (``benchmarks/_markdown.write_section``: created if
missing, other sections kept), with the machine, the command and the date.
"""

from __future__ import annotations

import argparse
import datetime
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends import speed_cost  # noqa: E402
from dsl.program import Program, cost as op_cost  # noqa: E402
from fitness.baselines import minimax_polynomial  # noqa: E402
from fitness.fit import FitOptions, polish_float32  # noqa: E402
from fitness.problem import Problem, ProblemSpec  # noqa: E402
from fitness.targets import get_target  # noqa: E402
from fitness.verify import verify  # noqa: E402
from search.bench import (COPY, LARGE, _parse_sizes, copy_impl, machine, platform_impls,  # noqa: E402
                          program_impls, size_label, time_impls)
from search.config import RunConfig  # noqa: E402
from search.exporting import choose_and_verify  # noqa: E402
from search.results import load_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

SECTION, TITLE = "kernel_speed", "Kernel speed: evolved vs Horner vs platform (issue 4)"
LN2_HALF = 0.34657359027997264
TARGETS = {"exp2": (0.0, 1.0), "exp": (-LN2_HALF, LN2_HALF)}
XLA_REPEAT = 64


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the two programs --------------------------------------------------------------------------
def evolved(target: str, run_dir: str | None, args) -> tuple[dict, Program, object, str]:
    """(front entry, program, dense report, run dir) of the cheapest <= 1 ULP front entry."""
    if run_dir is None:
        from search.run import run

        lo, hi = TARGETS[target]
        run_dir = str(ROOT / "runs" / f"kernel-speed-{target}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
        log(f"{target}: searching for {args.search_time:g} s (cost model {args.cost}) in {run_dir}")
        cfg = RunConfig(target=target, domain=(lo, hi), time_limit=args.search_time, workers=1,
                        seed=args.seed, run_dir=run_dir, cost_model=args.cost)
        run(cfg, quiet=True)
    record = load_run(run_dir)
    entry, report = choose_and_verify(record, 1.0, None, False)
    return entry, record.program(entry), report, run_dir


def horner_baseline(target: str, max_ulp: float, max_degree: int = 12) -> tuple[Program, int, object, str]:
    """(program, degree, dense report, how) of the lowest-degree Horner minimax polynomial
    within ``max_ulp`` in float32: naive float32 rounding first, then float32-tuned."""
    lo, hi = TARGETS[target]
    tgt = get_target(target)
    problem = None
    for degree in range(2, max_degree + 1):
        approx = minimax_polynomial(tgt, lo, hi, degree)
        prog = approx.program.with_params(np.asarray(approx.program.params, np.float64).astype(np.float32))
        rep = verify(prog, tgt, lo, hi, "float32")
        log(f"{target}: Horner degree {degree}, float32-rounded minimax coefficients: {rep.max_ulp:.4f} ULP")
        if rep.max_ulp <= max_ulp:
            return prog, degree, rep, "minimax coefficients rounded to float32"
        if rep.max_ulp > 8 * max_ulp:
            continue  # approximation error far too large: tuning float32 rounding cannot help
        if problem is None:
            problem = Problem.build(ProblemSpec(target, lo, hi, "float32"))
        theta = polish_float32(prog, problem, np.asarray(prog.params, np.float64),
                               FitOptions(polish_rounds=40, exchange_passes=6, polish_below_ulp=64.0))
        tuned = prog.with_params(theta)
        rep = verify(tuned, tgt, lo, hi, "float32")
        log(f"{target}: Horner degree {degree}, float32-tuned coefficients: {rep.max_ulp:.4f} ULP")
        if rep.max_ulp <= max_ulp:
            return tuned, degree, rep, "minimax coefficients, float32 rounding tuned by the search's polish"
    raise SystemExit(f"{target}: no Horner polynomial up to degree {max_degree} within {max_ulp} ULP")


# --- one target -------------------------------------------------------------------------------------
def bench_target(target: str, run_dir: str | None, args) -> dict:
    lo, hi = TARGETS[target]
    entry, prog_e, rep_e, run_dir = evolved(target, run_dir, args)
    log(f"{target}: evolved program: candidate {entry['id']}, {op_cost(prog_e):g} ops, {rep_e.max_ulp:.4f} ULP dense")
    prog_h, degree, rep_h, how = horner_baseline(target, max(1.0, rep_e.max_ulp))
    costs = {}
    for model in ("llvm", "xla"):
        for name, p in (("evolved", prog_e), ("Horner", prog_h)):
            costs[(name, model)] = speed_cost.measure(p, "float32", model, (lo, hi))
    np_name = f"np.{target}"
    impls = [copy_impl(), *platform_impls(target, "float32")]
    impls += program_impls("evolved", prog_e, "float32", xla_repeat=XLA_REPEAT)
    impls += program_impls(f"Horner deg {degree}", prog_h, "float32", xla_repeat=XLA_REPEAT)
    results = time_impls(impls, args.sizes, lo, hi, "float32", rounds=args.rounds, block_s=args.block_ms / 1e3,
                         log=lambda m: log(f"{target}: {m}"))
    return dict(target=target, lo=lo, hi=hi, run_dir=run_dir, entry=entry, prog_e=prog_e, rep_e=rep_e,
                prog_h=prog_h, degree=degree, rep_h=rep_h, how=how, costs=costs, results=results,
                np_name=np_name, horner_label=f"Horner deg {degree}")


def _x(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3g}x"


def report_target(r: dict) -> tuple[str, list[str]]:
    """Markdown for one target, and the goal verdict lines."""
    t, hl = r["target"], r["horner_label"]
    lines = [
        f"### float32 {t} on [{r['lo']:.17g}, {r['hi']:.17g}]",
        "",
        f"- Evolved: candidate {r['entry']['id']} of `{Path(r['run_dir']).name}`, {op_cost(r['prog_e']):g} operations "
        f"({', '.join(f'{v} {k}' for k, v in _op_mix(r['prog_e']).items())}); dense check: "
        f"max {r['rep_e'].max_ulp:.4f} ULP, {100 * r['rep_e'].frac_correctly_rounded:.2f}% correctly rounded.",
        f"- Horner baseline: degree {r['degree']} ({op_cost(r['prog_h']):g} fma), {r['how']}; dense check: "
        f"max {r['rep_h'].max_ulp:.4f} ULP, {100 * r['rep_h'].frac_correctly_rounded:.2f}% correctly rounded.",
        "- Measured cost (`backends.speed_cost`, op-equivalents, 1-fma kernel = 1, 8-fma Horner = 8): "
        + "; ".join(f"{m}: evolved {r['costs'][('evolved', m)].raw:.2f}, Horner {r['costs'][('Horner', m)].raw:.2f}"
                    for m in ("llvm", "xla")) + ".",
        "",
        "Evolved against Horner, same backend, same buffer (median of per-round time ratios; < 1: evolved faster):",
        "",
        "| buffer | llvmlite | XLA (1 call) | XLA (64 runs/call) | numpy evaluator |",
        "|---|---|---|---|---|",
    ]
    verdict = []
    for n, res in r["results"].items():
        cells = []
        for suffix in ("llvmlite", "XLA", f"XLA x{XLA_REPEAT} per call", "numpy evaluator"):
            cells.append(_x(res.ratio(f"evolved, {suffix}", f"{hl}, {suffix}")))
        lines.append(f"| {size_label(n)} | " + " | ".join(cells) + " |")
    lines += ["", "All rows (ns/element, median over rounds; ratios: median of per-round ratios):", "",
              _table(r)]
    cache_sizes = [n for n in r["results"] if n < LARGE]
    large = [n for n in r["results"] if n >= LARGE]
    for n in cache_sizes:
        q = r["results"][n].ratio(f"{hl}, llvmlite", "evolved, llvmlite")
        if q is not None:
            verdict.append(f"{t}, {size_label(n)}: evolved is {q:.2f}x as fast as the Horner baseline under "
                           f"llvmlite (goal >= 1.5x: {'met' if q >= 1.5 else f'NOT met, {1.5 / q:.2f}x short'})")
    for n in large:
        q = r["results"][n].ratio("evolved, llvmlite", COPY)
        if q is not None:
            verdict.append(f"{t}, {size_label(n)}: evolved under llvmlite takes {q:.2f}x the memory-copy floor "
                           f"(goal <= 1.5x: {'met' if q <= 1.5 else f'NOT met, {q / 1.5:.2f}x over'})")
    return "\n".join(lines), verdict


def _op_mix(p: Program) -> dict[str, int]:
    live, dep = p.live(), p.depends_on_x()
    out: dict[str, int] = {}
    for i, node in enumerate(p.nodes):
        if live[i] and dep[i] and not node.is_leaf:
            out[node.op] = out.get(node.op, 0) + 1
    return out


def _table(r: dict) -> str:
    hl = r["horner_label"]
    head = ["buffer", "implementation", "ns/element", "spread", "/ copy floor", f"/ {r['np_name']}", "/ Horner, same backend"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, res in r["results"].items():
        for label, tm in res.timings.items():
            same = None
            if label.startswith("evolved, "):
                same = res.ratio(label, f"{hl}, " + label.split(", ", 1)[1])
            lines.append("| " + " | ".join([
                size_label(n), label, f"{tm.median_ns_per_element:.4g}", f"{100 * tm.spread:.0f}%",
                _x(res.ratio(label, COPY)), _x(res.ratio(label, r["np_name"])), _x(same)]) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp2-run", help="run directory of a float32 exp2 [0, 1] search (default: search here)")
    ap.add_argument("--exp-run", help="run directory of a float32 exp [-ln2/2, ln2/2] search (default: search here)")
    ap.add_argument("--search-time", type=float, default=600.0, help="seconds per search run here (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cost", choices=("ops", "llvm", "xla"), default="ops", help="cost axis of searches run here")
    ap.add_argument("--sizes", default="16K,64K,10M", help="buffer sizes (default 16K,64K,10M)")
    ap.add_argument("--rounds", type=int, default=21, help="interleaved rounds per buffer size (default 21)")
    ap.add_argument("--block-ms", type=float, default=4.0, help="milliseconds per timed block (default 4)")
    ap.add_argument("--targets", default="exp2,exp", help="comma-separated subset of exp2,exp")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    try:
        args.sizes = _parse_sizes(args.sizes)
    except Exception as exc:  # noqa: BLE001 - BenchError: a message for the user
        ap.error(str(getattr(exc, "message", exc)))
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets or any(t not in TARGETS for t in targets):
        ap.error("--targets: choose from exp2, exp")
    runs = {"exp2": args.exp2_run, "exp": args.exp_run}
    t0 = time.time()
    parts, verdict = [], []
    for t in targets:
        body, v = report_target(bench_target(t, runs[t], args))
        parts.append(body)
        verdict += v
    cmd = "python benchmarks/kernel_speed.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    head = [
        f"Machine: {machine()} (shared with other users: only ratios from one run mean anything). "
        f"Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}. "
        f"Command: `{cmd.strip()}` ({time.time() - t0:.0f} s). Each buffer size: every row timed in one "
        f"interleaved run ({args.rounds} rounds, blocks of ~{args.block_ms:g} ms, order reversed every other round); "
        "llvmlite kernels called through raw pointers on preallocated buffers; XLA on CPU, one dispatch per call, "
        f"and {XLA_REPEAT} kernel runs per dispatch on cache-resident buffers (time per run).",
        "",
        "Goals (issue 4):",
        "",
        *[f"- {v}" for v in verdict],
        "",
    ]
    text = "\n".join(head) + "\n" + "\n\n".join(parts) + "\n"
    print(text)
    if not args.no_write:
        write_section(SECTION, TITLE, text)
        log(f"wrote the {SECTION} section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
