"""Candidate evaluations per second with 1 and 2 local worker processes and a 2-worker Dask
LocalCluster, measured in one run on one fixed set of candidates.

    python benchmarks/parallel_scaling.py [--candidates 480] [--repeats 3]

Each executor is warmed up first (worker start-up, imports, reference values), then timed on the
same candidates, several times, interleaved; the median rate is reported with its ratio to one
local worker.  The candidates are what a search evaluates: random programs of 1-10 operations for
float32 2^x on [0, 1], fitted and scored by ``search.worker.evaluate_batch``.  With --write, the
table replaces the section between the markers in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl.canonical import structural_hash  # noqa: E402
from dsl.mutate import random_program  # noqa: E402
from dsl.ops import CORE_OPS  # noqa: E402
from dsl.text import format_program  # noqa: E402
from fitness.problem import Problem, ProblemSpec  # noqa: E402
from search.executors import DaskExecutor, InlineExecutor, LocalExecutor  # noqa: E402
from search.worker import evaluate_batch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import machine, write_section  # noqa: E402


def candidates(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        prog = random_program(rng, CORE_OPS, int(rng.integers(1, 11)))
        h = structural_hash(prog)
        if h in seen:
            continue
        seen.add(h)
        out.append({"id": len(out), "program": format_program(prog), "seed": len(out)})
    return out


def throughput(executor, spec_json: str, cands: list[dict], batch: int, in_flight: int) -> float:
    """Evaluations per second, keeping ``in_flight`` batches outstanding (as the driver does)."""
    batches = [cands[i : i + batch] for i in range(0, len(cands), batch)]
    t0 = time.perf_counter()
    pending = set()
    it = iter(batches)
    done_n = 0
    for b in it:
        pending.add(executor.submit(evaluate_batch, spec_json, b))
        if len(pending) >= in_flight:
            break
    while pending:
        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for f in done:
            done_n += len(f.result())
            nxt = next(it, None)
            if nxt is not None:
                pending.add(executor.submit(evaluate_batch, spec_json, nxt))
    return done_n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=480)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dask-batch", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()

    spec = ProblemSpec("exp2", 0.0, 1.0, "float32")
    Problem.build(spec)  # fill the reference cache once
    spec_json = json.dumps(spec.to_dict(), sort_keys=True)
    cands = candidates(args.candidates)
    warm = candidates(8, seed=99)
    executors = {
        "1 local worker (in-process)": (InlineExecutor(), 1, 1),
        "2 local worker processes": (LocalExecutor(2), 1, 2),
        f"2-worker Dask LocalCluster (batches of {args.dask_batch})": (DaskExecutor(local_workers=2), args.dask_batch, 2),
    }
    rates: dict[str, list[float]] = {k: [] for k in executors}
    try:
        for name, (ex, batch, infl) in executors.items():
            throughput(ex, spec_json, warm, 1, infl)  # start workers, import, build the problem
        for r in range(args.repeats):
            for name, (ex, batch, infl) in executors.items():
                rates[name].append(throughput(ex, spec_json, cands, batch, infl))
                print(f"repeat {r + 1}: {name}: {rates[name][-1]:.1f} evals/s", flush=True)
    finally:
        for ex, _, _ in executors.values():
            ex.shutdown()
    base = statistics.median(rates["1 local worker (in-process)"])
    lines = [
        f"Machine: {machine()}. Command: `python benchmarks/parallel_scaling.py --candidates {args.candidates} "
        f"--repeats {args.repeats}`. {args.candidates} distinct random candidates (1-10 ops, float32 2^x on [0, 1]), "
        f"each fitted and scored; median of {args.repeats} interleaved repeats.",
        "",
        "| executor | evaluations/s (median) | spread (min-max) | ratio to 1 worker |",
        "|---|---|---|---|",
    ]
    for name, rs in rates.items():
        med = statistics.median(rs)
        lines.append(f"| {name} | {med:.1f} | {min(rs):.1f}-{max(rs):.1f} | {med / base:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("parallel_scaling", "Parallel scaling (issue 3)", table)


if __name__ == "__main__":
    main()
