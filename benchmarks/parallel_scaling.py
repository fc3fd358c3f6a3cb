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
import subprocess
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


EXECUTORS = {
    "1 local worker (in-process)": (lambda b: InlineExecutor(), 1, 1),
    "2 local worker processes": (lambda b: LocalExecutor(2), 1, 4),
    "2-worker Dask LocalCluster": (lambda b: DaskExecutor(local_workers=2), None, 4),
}


def measure(name: str, n: int, dask_batch: int) -> float:
    """Start the executor, warm it up (workers started, imports, problem built), then time it."""
    spec = ProblemSpec("exp2", 0.0, 1.0, "float32")
    Problem.build(spec)
    spec_json = json.dumps(spec.to_dict(), sort_keys=True)
    make, batch, infl = EXECUTORS[name]
    batch = batch or dask_batch
    ex = make(batch)
    try:
        for _ in range(2):
            throughput(ex, spec_json, candidates(40, seed=99), batch, infl)
        return throughput(ex, spec_json, candidates(n), batch, infl)
    finally:
        ex.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dask-batch", type=int, default=4)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--no-dask", action="store_true", help="leave out the Dask cluster")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    if args.measure:
        print(measure(args.measure, args.candidates, args.dask_batch))
        return

    Problem.build(ProblemSpec("exp2", 0.0, 1.0, "float32"))  # fill the reference cache once
    # Each measurement runs in a fresh process with its executor alone on the machine: an idle
    # Dask cluster's event loops, or a closed client's IO thread, take a visible share of a
    # 2-core machine.  The rounds rotate through the executors.
    names = list(EXECUTORS) if not args.no_dask else list(EXECUTORS)[:2]
    rates: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.repeats):
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--measure", name, "--candidates", str(args.candidates),
                                  "--dask-batch", str(args.dask_batch)], capture_output=True, text=True, check=True)
            rates[name].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"repeat {r + 1}: {name}: {rates[name][-1]:.1f} evals/s", flush=True)
    base = statistics.median(rates["1 local worker (in-process)"])
    lines = [
        f"Machine: {machine()}. Command: `python benchmarks/parallel_scaling.py --candidates {args.candidates} "
        f"--repeats {args.repeats}`. {args.candidates} distinct random candidates (1-10 ops, float32 2^x on [0, 1]), "
        f"each fitted and scored; median of {args.repeats} rotating repeats, each in a fresh process with its "
        f"executor alone on the machine, started and warmed up first (an idle Dask cluster alongside cost "
        f"the local pool about 30% here). Two tasks in flight per worker process; Dask gets batches of "
        f"{args.dask_batch} candidates per task.",
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
