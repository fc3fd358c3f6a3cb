"""How many float32 inputs a float64 core misrounds, by degree (issue 15's first measurement).

    python benchmarks/cr_probe.py [--targets exp,exp2,log] [--degrees 6 7 8 9 10 11] [--workers 2] [--write]

A mixed-precision program (``dsl.ops`` ``cvt_f32``): the float32 input widened exactly, the
project's own frame (``fitness.frames``) evaluated in float64 around a float64 core, one final
rounding to float32.  The core is a near-minimax polynomial (``mpmath.chebyfit`` at 120 bits,
coefficients rounded to float64, Horner with fma) of what the frame's core approximates
(``fitness.frames.core_reference``'s function, in mpmath), fitted on the frame's core domain
widened by 1% (a float32 ``INV_LN2`` can put r just past ln2/2).  Each program is checked on every
float32 input of the target's finite range (``fitness.fullrange.verify_full_range``,
``compute="float64"``) against the correctly rounded reference: "misrounded" counts the inputs
with a finite non-zero correct result that came out otherwise.

This is not yet a correctly rounded search: it measures how far plain accuracy goes, which is
what a correct-rounding objective has to close (the few inputs whose exact value lies nearer a
rounding midpoint than the core's error).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import mpmath
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl.program import Node, Program  # noqa: E402
from fitness.cr import rounded_once  # noqa: E402
from fitness.frames import compose, get_frame  # noqa: E402
from fitness.fullrange import verify_full_range  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import machine, write_section  # noqa: E402

# What each frame's core approximates, in mpmath (the float64 core_reference, at 120 bits).
CORE_MP = {
    "exp": mpmath.exp,
    "exp2": lambda t: mpmath.power(2, t),
    "log": lambda t: (mpmath.log1p(t) - t) / (t * t) if t != 0 else mpmath.mpf(-0.5),
}
# The finite, non-trivial range checked per target: every float32 in it.
RANGES = {"exp": (-104.0, 89.0), "exp2": (-151.0, 128.0), "log": (0.0, math.inf)}


def core_program(frame: str, degree: int) -> Program:
    """Horner with fma of the near-minimax float64 polynomial of degree ``degree``."""
    lo, hi = get_frame(frame).core_domain
    pad = 0.01 * (hi - lo)
    with mpmath.workprec(120):
        coeffs, _ = mpmath.chebyfit(CORE_MP[frame], [lo - pad, hi + pad], degree + 1, error=True)
    c = [float(v) for v in coeffs]  # highest degree first
    nodes = [Node("x"), Node("param", (), c[0])]
    acc = 1
    for v in c[1:]:
        nodes.append(Node("param", (), v))
        nodes.append(Node("fma", (acc, 0, len(nodes) - 1)))
        acc = len(nodes) - 1
    return Program(tuple(nodes), acc)


def mixed(frame: str, core: Program) -> Program:
    """The frame in float64 around ``core``, then the one rounding to float32."""
    return rounded_once(compose(frame, core, float64=True))


def probe(target: str, degree: int, workers: int) -> dict:
    core = core_program(target, degree)
    prog = mixed(target, core)
    lo, hi = RANGES[target]
    t0 = time.perf_counter()
    rep = verify_full_range(prog, target, lo, hi, workers=workers, compute="float64")
    return {"target": target, "degree": degree, "core_ops": core.n_ops, "composed_ops": prog.n_ops,
            "n_points": rep.n_points, "n_finite": rep.n_finite, "misrounded": rep.n_misrounded,
            "max_ulp": rep.max_ulp, "worst_x": rep.worst_x, "specials_ok": rep.specials_ok,
            "special_mismatches": rep.special_mismatches, "seconds": round(time.perf_counter() - t0, 1)}


def table(rows: list[dict]) -> str:
    out = ["| target | core degree | core ops | composed ops | inputs checked | misrounded | max ULP | special values |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['target']} | {r['degree']} | {r['core_ops']} | {r['composed_ops']} | {r['n_points']:,} | "
                   f"{r['misrounded']:,} | {r['max_ulp']:.4f} | "
                   f"{'all right' if r['specials_ok'] else str(r['special_mismatches']) + ' wrong'} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="exp,exp2,log")
    ap.add_argument("--degrees", type=int, nargs="+", default=[6, 7, 8, 9, 10, 11])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args(argv)
    rows = []
    for target in args.targets.split(","):
        if target not in CORE_MP:
            raise SystemExit(f"cr_probe: no core function for {target!r}; known: {', '.join(CORE_MP)}")
        for d in args.degrees:
            r = probe(target, d, args.workers)
            rows.append(r)
            print(json.dumps(r), flush=True)
    text = table(rows)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.write:
        cmd = ("python benchmarks/cr_probe.py --targets " + args.targets + " --degrees "
               + " ".join(map(str, args.degrees)) + f" --workers {args.workers} --write")
        body = "\n".join([
            f"Machine: {machine()}. Command: `{cmd}`. Mixed-precision programs (`cvt_f32`): the project's frame in "
            "float64 around a near-minimax float64 polynomial core (mpmath chebyfit, Horner with fma), one final "
            "rounding to float32; every float32 input of the range checked against the correctly rounded value "
            "(exp [-104, 89], exp2 [-151, 128], log (0, inf]). \"misrounded\": inputs with a finite non-zero "
            "correct result that came out otherwise.", "", text])
        write_section("cr_probe", "Correct rounding from plain accuracy: misrounded inputs of a float64 core (issue 15)", body)


if __name__ == "__main__":
    main()
