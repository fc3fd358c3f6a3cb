"""Frame evolution: framed full-range searches with the frame's constants fixed and evolving.

    python benchmarks/frame_evolution.py [--targets log,exp] [--seeds 1 2] [--budget-evals 2000] [--jobs 2] [--write]

Each search has the same candidate budget (so machine load changes wall time, not the result),
one worker, the ops add,sub,mul,fma,neg and max_ops 10.  For each run it records the cheapest
program within 1 ULP on the search's own points (fitness + validation), the best error at 6, 8
and 10 operations, and, with evolution on, the frame constants that program uses where they differ
from the frame's defaults.  "Within 1 ULP" here is the search's measure; exported programs are
confirmed exhaustively by ``autonumerics export --exhaustive``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import machine, write_section  # noqa: E402

from fitness.problem import Problem  # noqa: E402
from search.config import RunConfig  # noqa: E402
from search.results import load_run  # noqa: E402
from search.run import run  # noqa: E402

DOMAINS = {"exp": (-87.3, 88.7), "log": (0.25, 4.0), "log2": (0.25, 4.0)}
OPS = ("add", "sub", "mul", "fma", "neg")


def config(target: str, seed: int, evolve: bool, budget: int, run_dir: str) -> RunConfig:
    return RunConfig(target=target, domain=DOMAINS[target], frame=target, frame_evolve=evolve, ops=OPS,
                     max_ops=10, seed=seed, workers=1, budget_evals=budget, time_limit=3600.0, run_dir=run_dir)


def one(job: tuple) -> dict:
    target, seed, evolve, budget, root = job
    rd = Path(root) / f"{target}-s{seed}-{'evolve' if evolve else 'fixed'}"
    t0 = time.perf_counter()
    res = run(config(target, seed, evolve, budget, str(rd)), quiet=True)
    wall = time.perf_counter() - t0
    record = load_run(str(rd))
    front = record.front
    within = [e for e in front if e.error <= 1.0]
    first = min(within, key=lambda e: e.cost) if within else None

    def best_at(ops: int) -> float:
        errs = [e.error for e in front if e.cost <= ops]
        return min(errs) if errs else float("inf")

    return {"target": target, "seed": seed, "evolve": evolve, "wall": wall, "candidates": res.candidates,
            "fitted": res.evaluated, "best": {k: best_at(k) for k in (6, 8, 10)},
            "first_cost": first.cost if first else None, "first_error": first.error if first else None,
            "moved": record.frame_constants(first) if first else {}}


def _fmt(v: float) -> str:
    return "inf" if v == float("inf") else f"{v:.3f}"


def table(rows: list[dict], args) -> str:
    lines = [
        f"Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()} (a shared machine).",
        "",
        f"Command: `python benchmarks/frame_evolution.py --targets {args.targets} --seeds "
        f"{' '.join(map(str, args.seeds))} --budget-evals {args.budget_evals} --jobs {args.jobs} --write`",
        "",
        f"Each search: {args.budget_evals} candidates, one worker, ops {','.join(OPS)}, max_ops 10, the target's "
        "frame with its constants fixed (`fixed`) or evolving (`--frame-evolve`: low parts of split constants "
        "fitted with the core, discrete choices moved by mutations). Errors are max ULP on the search's fitness "
        "and validation points.",
        "",
        "| target | frame | seed | candidates | fitted | wall s | best ≤ 6 ops | best ≤ 8 ops | best ≤ 10 ops "
        "| cheapest ≤ 1 ULP (ops, ULP) | its frame constants that moved |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["target"], r["evolve"], r["seed"])):
        first = f"{r['first_cost']:g}, {r['first_error']:.3f}" if r["first_cost"] is not None else "none"
        moved = ", ".join(f"{k} = {v:.9g}" for k, v in sorted(r["moved"].items())) or "-"
        lines.append(f"| {r['target']} | {'evolving' if r['evolve'] else 'fixed'} | {r['seed']} | {r['candidates']} "
                     f"| {r['fitted']} | {r['wall']:.0f} | {_fmt(r['best'][6])} | {_fmt(r['best'][8])} "
                     f"| {_fmt(r['best'][10])} | {first} | {moved} |")
    lines.append("")
    for target in sorted({r["target"] for r in rows}):
        for evolve in (False, True):
            rs = [r for r in rows if r["target"] == target and r["evolve"] == evolve]
            med = {k: statistics.median(r["best"][k] for r in rs) for k in (6, 8, 10)}
            reached = sum(r["first_cost"] is not None for r in rs)
            lines.append(f"- {target}, {'evolving' if evolve else 'fixed'} frame: median best "
                         f"{_fmt(med[6])} / {_fmt(med[8])} / {_fmt(med[10])} ULP at ≤ 6 / 8 / 10 ops; "
                         f"{reached} of {len(rs)} seeds reached ≤ 1 ULP.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="log,exp")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget-evals", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        Problem.build(config(t, 0, False, 1, "").problem_spec)  # warm the reference cache once
    root = tempfile.mkdtemp(prefix="an-frame-evolution-")
    jobs = [(t, s, e, args.budget_evals, root) for t in targets for s in args.seeds for e in (False, True)]
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        rows = []
        for r in pool.map(one, jobs):
            rows.append(r)
            print(f"{r['target']} seed {r['seed']} {'evolving' if r['evolve'] else 'fixed'}: best {r['best']}, "
                  f"cheapest <= 1 ULP {r['first_cost']} ({r['wall']:.0f} s)", flush=True)
    text = table(rows, args)
    print(text)
    if args.write:
        write_section("frame_evolution", "Frame evolution: fixed against evolving frame constants", text)


if __name__ == "__main__":
    main()
