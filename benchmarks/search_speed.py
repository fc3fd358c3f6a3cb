"""Search speed for float32 2^x on [0, 1]: candidates per second per core, cache hit rate, and
time to a program within 1 ULP, over several seeds, with and without functional-hash caching,
all measured in one run (interleaved, one worker each, so "per core" is what is measured).

    python benchmarks/search_speed.py [--seeds 1 2 3] [--time-limit 600] [--write]

"Within 1 ULP" means on the search's fitness and validation points (2,168 + 32,768 inputs) and then
on the 2**22-input dense check that ``--target-error`` requires before it stops a search; the
exported program is confirmed again (exhaustively with ``--exhaustive``) by ``autonumerics export``.
"""

from __future__ import annotations

import argparse
import json
import concurrent.futures as cf
import multiprocessing
import shutil
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
from search.run import run  # noqa: E402


def one(seed: int, caching: bool, time_limit: float, root: Path) -> dict:
    rd = root / f"s{seed}-{'cache' if caching else 'nocache'}"
    cfg = RunConfig(target="exp2", domain=(0.0, 1.0), dtype="float32", seed=seed, workers=1,
                    target_error=1.0, time_limit=time_limit, budget_evals=10**7, caching=caching,
                    run_dir=str(rd))
    t0 = time.perf_counter()
    res = run(cfg, quiet=True)
    wall = time.perf_counter() - t0
    best = min((e for e in res.front), key=lambda e: e.error)
    events = [json.loads(line) for line in (rd / "events.jsonl").read_text().splitlines()]
    checks = [e for e in events if e.get("event") == "dense_check"]
    return {"seed": seed, "caching": caching, "reached": res.stopped == "target", "wall": wall,
            "candidates": res.candidates, "fitted": res.evaluated, "hit_rate": res.hit_rate,
            "cand_per_s": res.candidates / res.elapsed, "fits_per_s": res.evaluated / res.elapsed,
            "best_ulp": best.error, "best_cost": best.cost, "dense_checks": len(checks),
            "dense_failed": sum(not e["held"] for e in checks)}


def _one(job: tuple) -> dict:
    return one(*job)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--jobs", type=int, default=1, help="searches run at once (one core each)")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    Problem.build(RunConfig(target="exp2", domain=(0.0, 1.0)).problem_spec)  # warm the reference cache
    root = Path(tempfile.mkdtemp(prefix="an-search-speed-"))
    jobs = [(seed, caching, args.time_limit, root) for seed in args.seeds for caching in (True, False)]
    try:
        # --jobs N runs N searches at once, one per core (each search has one worker)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            rows = list(pool.map(_one, jobs))
        for r in rows:
            print(r, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        f"Machine: {machine()}. Command: `python benchmarks/search_speed.py --seeds {' '.join(map(str, args.seeds))} "
        f"--time-limit {args.time_limit:g} --jobs {args.jobs}`. One worker per run, {args.jobs} run(s) at once on "
        f"separate cores (rates are per core); runs stop at the first "
        f"program within 1 ULP on the fitness + validation points that also holds on the 2^22-input dense check, "
        f"or at the time limit. \"dense checks\" counts programs that reached 1 ULP on the search's points and were "
        f"checked, and how many of them failed (the search then went on).",
        "",
        "| seed | cache | reached <= 1 ULP | time (s) | candidates | fitted | hit rate | candidates/s/core | fits/s/core "
        "| dense checks (failed) | best (ops: ULP) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['seed']} | {'on' if r['caching'] else 'off'} | {'yes' if r['reached'] else 'no'} | "
                     f"{r['wall']:.1f} | {r['candidates']} | {r['fitted']} | {100 * r['hit_rate']:.1f}% | "
                     f"{r['cand_per_s']:.1f} | {r['fits_per_s']:.1f} | {r['dense_checks']} ({r['dense_failed']}) "
                     f"| {r['best_cost']:g}: {r['best_ulp']:.3f} |")
    lines.append("")
    for caching in (True, False):
        sub = [r for r in rows if r["caching"] == caching]
        reached = [r["wall"] for r in sub if r["reached"]]
        med = f"{statistics.median(reached):.1f} s" if reached else "n/a"
        lines.append(f"- cache {'on' if caching else 'off'}: reached 1 ULP in {len(reached)}/{len(sub)} seeds, "
                     f"median time-to-1-ULP over those {med}; median candidates/s/core "
                     f"{statistics.median(r['cand_per_s'] for r in sub):.1f}, median hit rate "
                     f"{100 * statistics.median(r['hit_rate'] for r in sub):.1f}%")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("search_speed", "Search speed and time to 1 ULP (issue 2)", table)


if __name__ == "__main__":
    main()
