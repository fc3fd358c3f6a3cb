"""Why chains grow in t = x - c on a domain away from 0: the same polynomial, fitted in x and in t.

    python benchmarks/shift_conditioning.py [--write]

For each target and domain, a least-squares fit weighted to relative error (on Chebyshev nodes,
float64) of degree d, once in the variable x and once in t = x - c (c the domain's middle as the
search picks it, ``fitness.properties.domain_center``); the coefficients are rounded to float32
and the polynomial is evaluated by Horner's rule with fma in float32 (``backends.numpy_backend``)
on 200,001 evenly spaced float32 inputs, against the float64 function.  The fits are the same
family of functions; only the float32 rounding differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import machine, write_section  # noqa: E402

from backends.numpy_backend import evaluate  # noqa: E402
from dsl.growth import shifted_input  # noqa: E402
from dsl.program import Node, Program  # noqa: E402
from fitness.metrics import ulp_errors  # noqa: E402
from fitness.properties import domain_center  # noqa: E402

CASES = [("exp", np.exp, 3.0, 4.0), ("exp", np.exp, 1.0, 2.0), ("log", np.log, 2.0, 4.0), ("exp2", np.exp2, 0.0, 1.0)]
DEGREES = (5, 6, 7, 8)


def horner(coeffs) -> Program:
    """sum coeffs[k] x^k by Horner's rule with fma (coefficients as trainable constants)."""
    nodes = [Node("x"), Node("param", (), float(coeffs[-1]))]
    acc = 1
    for c in reversed(coeffs[:-1]):
        nodes.append(Node("param", (), float(c)))
        nodes.append(Node("fma", (acc, 0, len(nodes) - 1)))
        acc = len(nodes) - 1
    return Program(tuple(nodes))


def max_ulp(f, lo: float, hi: float, degree: int, c: float) -> float:
    n = 2000
    nodes = np.cos(np.pi * (np.arange(n) + 0.5) / n) * (hi - lo) / 2 + (lo + hi) / 2
    y = f(nodes)
    coeffs = np.linalg.lstsq(np.vander(nodes - c, degree + 1, increasing=True) / y[:, None], np.ones(n),
                             rcond=None)[0].astype(np.float32)
    prog = horner(coeffs)
    if c != 0.0:
        prog = shifted_input(prog, c)
    x = np.linspace(lo, hi, 200_001).astype(np.float32)
    ref = f(x.astype(np.float64))
    return float(np.max(ulp_errors(evaluate(prog, x, "float32"), ref, np.zeros_like(ref), "float32")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    lines = ["| target | domain | c | degree | max ULP, in x | max ULP, in x - c |", "|---|---|---:|---:|---:|---:|"]
    for name, f, lo, hi in CASES:
        c = domain_center(lo, hi) or 0.5 * (lo + hi)
        for d in DEGREES:
            lines.append(f"| {name} | [{lo:g}, {hi:g}] | {c:g} | {d} | {max_ulp(f, lo, hi, d, 0.0):.3g} | "
                         f"{max_ulp(f, lo, hi, d, c):.3g} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        body = (f"Machine: {machine()}. Command: `python benchmarks/shift_conditioning.py --write`. "
                + __doc__.split("\n\n", 2)[2].strip().replace("\n", " ") + " exp2 on [0, 1] touches 0: "
                "the search offers no shift there (the shifted column uses the middle, 0.5, for comparison).\n\n" + table)
        write_section("shift_conditioning", "A polynomial in x against the same in x - c, in float32 (issue 12)", body)


if __name__ == "__main__":
    main()
