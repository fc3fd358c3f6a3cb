"""Record fixed-seed one-worker runs, to show that a refactor leaves the search bit-identical.

    python benchmarks/record_runs.py record OUTDIR [NAME ...]   # before and after the change
    python benchmarks/record_runs.py compare BEFORE AFTER

Each run (ulp mode on exp2, sin and log; real mode; island epochs; a run resumed halfway) is
reduced to what the search decided: the front, every island's population, front and expansion
queue, the cache's programs and errors, the counters, hit kinds, hard points, dense checks and
the front's history (without wall-clock times).  ``compare`` names every run that differs.
Record "before" from a clone of the old commit (``git worktree add``) so both use one machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.config import RunConfig  # noqa: E402
from search.run import resume, run  # noqa: E402

RUNS = {
    "exp2": dict(target="exp2", domain=(0.0, 1.0), seed=3, workers=1, budget_evals=1200),
    "sin": dict(target="sin", domain=(-1.0, 1.0), seed=1, workers=1, budget_evals=1200),
    "real": dict(target="exp2", domain=(0.0, 1.0), seed=2, workers=1, budget_evals=400, mode="real"),
    "epoch": dict(target="exp2", domain=(0.0, 1.0), seed=4, workers=1, budget_evals=600, epoch_size=32),
    "log": dict(target="log", domain=(0.7071067690849304, 1.4142135381698608), seed=5, workers=1,
                budget_evals=800),
    "resume": dict(target="exp2", domain=(0.0, 1.0), seed=3, workers=1, budget_evals=500),  # then to 1200
}


def digest(run_dir: Path) -> dict:
    """What the search decided, from its checkpoint (wall-clock times left out)."""
    st = json.loads((run_dir / "checkpoint.json").read_text())["state"]

    def entry(e: dict) -> list:
        return [e.get("id"), e["program"], e["error"], e["cost"], e.get("dense_ulp"), e.get("frame")]

    return {
        "front": [entry(e) for e in st["best_per_cost"]],
        "islands": [[[entry(m) for m in isl["population"]], [entry(e) for e in isl["best_per_cost"]],
                     [[x["program"], x["move"], x["priority"]] for x in isl["expansions"]]] for isl in st["islands"]],
        "counts": [st[k] for k in ("next_id", "n_told", "n_evaluated", "n_hits", "n_failed", "restarts")],
        "hits": st["hits"], "hard": st["hard_points"], "dense": st["dense_errors"],
        "cache": sorted([e["program"], e["error"]] for e in st["cache"]["entries"].values()),
        "keys": len(st["cache"]["keys"]),
        "history": [h[:1] + h[2:] for h in st["history"]],
    }


def record(out: Path, names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rd = Path(tmp) / name
            run(RunConfig(**RUNS[name], run_dir=str(rd)), quiet=True)
            if name == "resume":
                resume(str(rd), budget_evals=1200, quiet=True)
            (out / f"{name}.json").write_text(json.dumps(digest(rd), indent=0, sort_keys=True))
            print(f"{name}: recorded", flush=True)
            shutil.rmtree(rd, ignore_errors=True)


def compare(a: Path, b: Path) -> int:
    bad = 0
    for fa in sorted(a.glob("*.json")):
        fb = b / fa.name
        if not fb.exists():
            print(f"{fa.stem}: missing from {b}")
            bad += 1
        elif json.loads(fa.read_text()) != json.loads(fb.read_text()):
            print(f"{fa.stem}: differs")
            bad += 1
        else:
            print(f"{fa.stem}: identical")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out")
    r.add_argument("names", nargs="*")
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = ap.parse_args()
    if args.cmd == "record":
        unknown = [n for n in args.names if n not in RUNS]
        if unknown:
            sys.exit(f"error: unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}")
        record(Path(args.out), args.names or list(RUNS))
    else:
        sys.exit(1 if compare(Path(args.before), Path(args.after)) else 0)


if __name__ == "__main__":
    main()
