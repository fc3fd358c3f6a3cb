"""How much of a search's fitting went to small programs, read from its checkpointed cache.

    python benchmarks/small_programs.py RUN_DIR [RUN_DIR ...] [--cost 3]

For each run: the number of distinct fitted programs in its equivalence cache, how many of them
cost exactly ``--cost`` operations, and how many of those are one division with two additions or
subtractions (the shape of the AutoNumerics-Zero paper's 3-op 2^x, c1/(x + c2) + c3, in any
wiring).  Section ``paper_domain`` of BENCHMARKS.md quotes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsl.program import cost  # noqa: E402
from dsl.text import parse_program  # noqa: E402
from search import checkpoint  # noqa: E402


def count(run_dir: Path, n_ops: int) -> tuple[int, int, int]:
    state = checkpoint.load(run_dir, warn=lambda m: None)["state"]
    entries = state["cache"]["entries"].values()
    small = shaped = 0
    for e in entries:
        program = parse_program(e["program"])
        if cost(program) != n_ops:
            continue
        small += 1
        live = program.live()
        ops = [n.op for i, n in enumerate(program.nodes) if live[i] and not n.is_leaf]
        shaped += ops.count("div") == 1 and sum(o in ("add", "sub") for o in ops) == 2
    return len(entries), small, shaped


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+", type=Path)
    p.add_argument("--cost", type=int, default=3)
    args = p.parse_args()
    print(f"| run | fitted programs | cost {args.cost} | of those, one div and two add/sub |")
    print("|---|---:|---:|---:|")
    for rd in args.run_dirs:
        total, small, shaped = count(rd, args.cost)
        print(f"| {rd} | {total} | {small} | {shaped} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
