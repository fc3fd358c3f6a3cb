"""Can the real-mode growth templates and the fitter reach the minimax-rational digits at all?

    python benchmarks/template_path.py [--children 6] [--write]

Not a search: a scripted walk.  From a small start it applies ``grow_rational`` once, then
``grow_horner_in`` step after step; each step fits ``--children`` children (different random
draws of the move and of the fitter's starts) and keeps the most accurate.  Digits are measured as
in ``benchmarks/paper_table.py`` (``fitness.real_error.max_relative_error``) and set beside the
minimax rational of the same operation count (``fitness.baselines``, fma = 1 op).  If the walk
reaches the rational's digits, the DSL, the moves and the fitter can represent and fit these
programs, and what a search misses is search, not representation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import machine, write_section  # noqa: E402

from dsl.canonical import canonicalize  # noqa: E402
from dsl.mutate import _grow_horner_in, _grow_rational  # noqa: E402
from dsl.program import cost  # noqa: E402
from dsl.text import parse_program  # noqa: E402
from fitness.evaluate import fit_and_score  # noqa: E402
from fitness.problem import Problem, ProblemSpec  # noqa: E402
from fitness.real_error import digits_of, max_relative_error  # noqa: E402

OPS = ("add", "sub", "mul", "div", "fma", "neg")
# erf: x (c0 + c1 x) vanishes at the zero x = 0; log: (x - 1)(c0 + c1 x) at x = 1
STARTS = {
    "erf": ((0.0, 1.0), "v1 = param 1.1\nv2 = param 0.1\nv3 = fma x v2 v1\nv4 = mul v3 x\nreturn v4\n"),
    "log": ((0.5, 1.0), "v1 = const 1\nv2 = sub x v1\nv3 = param 1.0\nv4 = param -0.3\nv5 = fma x v4 v3\n"
                        "v6 = mul v5 v2\nreturn v6\n"),
}


def walk(target: str, steps: int, children: int) -> list[tuple[int, float]]:
    (lo, hi), start = STARTS[target]
    problem = Problem.build(ProblemSpec(target, lo, hi, "float64", "real"))
    cur = fit_and_score(canonicalize(parse_program(start), "float64"), problem, seed=0)
    path = []
    for step in range(steps):
        move = _grow_rational if step == 0 else _grow_horner_in
        best = None
        for j in range(children):
            child = move(cur.program, np.random.default_rng([step, j]), OPS)
            if child is None:
                continue
            scored = fit_and_score(canonicalize(child, "float64"), problem, seed=1000 * step + j)
            if best is None or scored.error < best.error:
                best = scored
        cur = best
        err = max_relative_error(cur.program, target, lo, hi).max_rel_error
        path.append((int(cost(cur.program)), digits_of(err)))
        print(f"{target}: {path[-1][0]} ops, {path[-1][1]:.2f} digits", flush=True)
    return path


def minimax_rational_digits(target: str, max_ops: int) -> dict[int, float]:
    from fitness.baselines import baseline_table

    (lo, hi), _ = STARTS[target]
    return {r.ops: r.digits for r in baseline_table(target, lo, hi, max_ops, methods=("minimax_rational",))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="erf,log")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--children", type=int, default=6)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = [f"Machine: {machine()}. Command: `python benchmarks/template_path.py --targets {args.targets} "
             f"--steps {args.steps} --children {args.children}`.", "",
             "| target | ops | scripted walk (digits) | minimax rational (digits) |", "|---|---:|---:|---:|"]
    for target in args.targets.split(","):
        path = walk(target, args.steps, args.children)
        rational = minimax_rational_digits(target, max(ops for ops, _ in path))
        for ops, digits in path:
            mr = rational.get(ops)
            lines.append(f"| {target} | {ops} | {digits:.2f} | {'-' if mr is None else f'{mr:.2f}'} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("template_path", "Real mode: a scripted walk with the growth templates (issue 5)",
                      __doc__.split("\n\n")[2].strip() + "\n\n" + text)


if __name__ == "__main__":
    main()
