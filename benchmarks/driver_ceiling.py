"""The driver's ceiling: candidates per second through the driver alone, with an instant evaluator.

    python benchmarks/driver_ceiling.py [--seconds 30] [--target exp2 --domain 0 1] [--profile] [--write]

Everything a real run does runs, in both schedulers (``search.schedulers``): breeding (mutations,
growth templates, expansions), canonical forms and the cache's hashes, the cache, the islands and
the front, checkpoints every 10 s and the event log; only the fitting is replaced by an instant
fake (a deterministic pseudo-random error from the program's text, its real cost, no dense
checks).  The driver's share is the wall time less the time inside the tasks it submits (with the
candidate scheduler the driver breeds; with island epochs the worker does).  From that rate and a
worker's measured rate (``--worker-rate``, candidates per second per worker in a real run)
follows how many workers one driver can keep busy.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import machine, write_section  # noqa: E402

import search.run as run_mod  # noqa: E402
from search import schedulers, worker  # noqa: E402
from dsl.program import cost  # noqa: E402
from dsl.text import parse_program  # noqa: E402
from search.config import RunConfig  # noqa: E402


def instant_result(cand: dict) -> dict:
    """A result at once: the candidate's own program and cost, an error from a hash of its text
    (5 to 5e6 ulps, so that the front and the expansions keep moving and no dense check runs)."""
    h = int.from_bytes(hashlib.blake2b(cand["program"].encode(), digest_size=8).digest(), "little")
    err = 5.0 * 10 ** (6 * (h % 10_000) / 10_000)
    return {"id": cand["id"], "program": cand["program"], "error": err, "cost": cost(parse_program(cand["program"])),
            "summary": None, "failed": None, "seconds": 0.0}


class Timed:
    """Wraps the task function the driver submits, adding up the time spent inside it (the
    workers' share, since with one inline worker the task runs in the driver's process)."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0


def measure(args, root: Path, epoch_size: int) -> dict:
    """One run with the instant evaluator; the driver's rate is candidates / (wall - task time)."""
    cfg = RunConfig(target=args.target, domain=tuple(args.domain), workers=1, time_limit=args.seconds,
                    checkpoint_every=10.0, seed=1, epoch_size=epoch_size, islands=args.islands,
                    run_dir=str(root / f"run{epoch_size}"))
    saved = (schedulers.evaluate_batch, schedulers.run_epoch, worker.evaluate_one)
    batch = Timed(lambda spec, cands, *rest: [instant_result(c) for c in cands])
    epoch = Timed(worker.run_epoch)
    schedulers.evaluate_batch, schedulers.run_epoch = batch, epoch
    worker.evaluate_one = lambda problem, cand, cost_model="ops": instant_result(cand)
    try:
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        res = run_mod.run(cfg, quiet=True)
        if prof:
            prof.disable()
        wall = time.perf_counter() - t0
    finally:
        schedulers.evaluate_batch, schedulers.run_epoch, worker.evaluate_one = saved
    in_tasks = batch.seconds + epoch.seconds
    driver = max(wall - in_tasks, 1e-9)
    out = {"mode": "epochs of %d" % epoch_size if epoch_size else "candidates", "candidates": res.candidates,
           "wall": wall, "in_tasks": in_tasks, "driver": driver, "rate": res.candidates / driver,
           "worker_share": res.candidates / in_tasks if in_tasks > 0 else float("inf"), "hit_rate": res.hit_rate}
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        out["profile"] = s.getvalue()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--target", default="exp2")
    ap.add_argument("--domain", type=float, nargs=2, default=[0.0, 1.0])
    ap.add_argument("--islands", type=int, default=16)
    ap.add_argument("--epoch-size", type=int, default=64)
    ap.add_argument("--worker-rate", type=float, default=22.0,
                    help="candidates per second one worker evaluates (measured in real runs)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="an-driver-"))
    try:
        rows = [measure(args, root, 0), measure(args, root, args.epoch_size)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [f"Machine: {machine()}. Command: `python benchmarks/driver_ceiling.py --seconds {args.seconds:g} "
             f"--target {args.target} --domain {args.domain[0]:g} {args.domain[1]:g} --islands {args.islands} "
             f"--epoch-size {args.epoch_size} --worker-rate {args.worker_rate:g}`. One inline worker and an instant "
             "evaluator; the driver's time is the run's wall time less the time spent inside the submitted tasks "
             "(where breeding happens in epoch mode), so the rate is what one driver process sustains whatever the "
             "number of workers. Workers fed = driver rate / the rate of one worker (real fits).", "",
             "| scheduler | candidates | wall (s) | driver (s) | driver candidates/s | workers one driver feeds |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['candidates']} | {r['wall']:.1f} | {r['driver']:.1f} | {r['rate']:.0f} "
                     f"| {r['rate'] / args.worker_rate:.0f} |")
    text = "\n".join(lines)
    print(text)
    if args.profile:
        for r in rows:
            print(r["mode"], r["profile"])
    if args.write:
        write_section("driver_ceiling", "The driver's ceiling (issue 13)", text)


if __name__ == "__main__":
    main()
