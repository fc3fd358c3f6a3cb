"""Why x·P(x²) struggles to reach 1 ULP for float32 erf on [-2, 2]: where the error comes from.

    python benchmarks/erf_conditioning.py [--write]

For degree d fits of erf(x)/x as a polynomial in s = x² - c (c = 0: the textbook basis; c = 2, 3:
shifted to the middle of t = x² in [0, 4]), three errors on 400,000 float32 inputs of [0, 2]:
the approximation alone (float64 coefficients, float64 evaluation), with the coefficients rounded
to float32 (float64 evaluation), and the complete float32 program (fma Horner, then y = x·p).
Least-squares fits weighted to relative error stand in for minimax fits: the point is the gap
between the columns, which no choice of fit removes.  The operation count is the search's
(x² 1, the shift 1, Horner d, the final product 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import erf

TT = np.linspace(1e-9, 4.0, 20001)
G = erf(np.sqrt(TT)) / np.sqrt(TT)


def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(0, 2, 200001)[1:], rng.uniform(0, 2, 200000)]).astype(np.float32)
    return np.unique(x)


def ulp_error(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(y - ref) / 2.0 ** (np.floor(np.log2(np.abs(ref))) - 23)))


def float32_program(coef: np.ndarray, shift: float, x: np.ndarray) -> np.ndarray:
    """t = x*x, s = t - shift, p = Horner(s) with fma, y = x*p, every step rounded to float32."""
    f32 = np.float32
    t = (x * x).astype(f32)
    s = (t - f32(shift)).astype(f32) if shift else t
    acc = np.full_like(s, f32(coef[-1]))
    for c in coef[-2::-1]:  # fma: exact product and sum in float64, one rounding
        acc = (acc.astype(np.float64) * s.astype(np.float64) + float(f32(c))).astype(f32)
    return (x * acc).astype(f32).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    x = inputs()
    x64 = x.astype(np.float64)
    ref = erf(x64)
    rows = ["| basis | degree | ops | approximation | + float32 coefficients | float32 program |",
            "|---|---:|---:|---:|---:|---:|"]
    for shift in (0.0, 2.0, 3.0):
        for deg in (8, 9, 10, 11):
            coef = np.polynomial.polynomial.polyfit(TT - shift, G, deg, w=1 / G)
            s64 = x64 * x64 - shift
            approx = ulp_error(np.polynomial.polynomial.polyval(s64, coef) * x64, ref)
            rounded = ulp_error(np.polynomial.polynomial.polyval(s64, coef.astype(np.float32).astype(np.float64)) * x64,
                                ref)
            full = ulp_error(float32_program(coef, shift, x), ref)
            ops = 1 + (shift != 0) + deg + 1
            basis = "x·P(x²)" if shift == 0 else f"x·P(x² - {shift:g})"
            rows.append(f"| {basis} | {deg} | {ops} | {approx:.3f} | {rounded:.3f} | {full:.3f} |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _markdown import machine, write_section

        body = (f"Machine: {machine()}. Command: `python benchmarks/erf_conditioning.py --write`. Max ULP on 400,000 "
                "float32 inputs of [0, 2] (erf is odd: [-2, 0] is the mirror image), against scipy's float64 erf. "
                "Least-squares fits weighted to relative error stand in for minimax fits.\n\n" + table + "\n\n"
                "In the textbook basis the float32 coefficients alone cost 2 to 5 ULP (c_k 4^k is large at x = 2); "
                "shifting the variable to x² - 2 fixes that, but the float32 program still ends above 2 ULP. At x = 2 "
                "(y = 0.995) the rounding of t = x² moves y by up to a quarter of its ulp (g'(4) = -0.06), the "
                "rounding of p = P(t) = 0.498 (a binade below y/x) by up to a half, and the final product's own "
                "rounding by a half: 1.25 ULP before Horner's inner roundings. A single float32 "
                "formula of this shape within 12 operations does not reach 1 ULP on [-2, 2]; production erff "
                "kernels split the range (Arm's optimized-routines erff: x + x·P(x²) below 0.875, 1 - exp(-Q(|x|)) "
                "above, 1.09 ULP at worst), which needs abs and a select, outside the search's default ops.")
        write_section("erf_conditioning", "erf on [-2, 2]: where a float32 x·P(x²) loses its ULPs", body)


if __name__ == "__main__":
    main()
