"""float32 baselines: what a numerical-library engineer would write by hand, at every cost.

The engineer fits a minimax approximation (Remez, on relative error), rounds its coefficients to
float32 and evaluates it by Horner's rule with fma.  This module builds exactly that for every
configuration that fits a cost budget, and gives each one the best float32 coefficients the
project can find, so that a search is compared with the strongest hand-written program of each
shape, not the most convenient one:

- ``minimax_poly``: a polynomial in x (``fitness.baselines``; t = x - z times a polynomial when
  the target vanishes at an endpoint, 0 or 1);
- ``minimax_rational``: p(x)/q(x), every [m/n] in the budget (same zero factoring);
- on a domain away from 0 (no parity, no zero): ``shifted_poly`` and ``shifted_rational``, the
  same in t = x - c, c the domain's middle (``fitness.properties.domain_center``), where the
  polynomial in x has large terms that cancel in float32;
- for a target odd on a domain symmetric about 0: ``odd_poly`` x·P(x²) (Remez on g(s) =
  f(√s)/√s, whose relative error is f's), and ``odd_poly_unit`` x + x³·Q(x²) when f'(0) = 1 (the
  shape float32 libraries use for sin and tanh: the last operation adds the exact x);
- for an even target: ``even_poly`` P(x²) (Remez on f(√s));
- for a target with a zero z inside the domain where f'(z) = 1: ``zero_poly_unit``
  t + t²·Q(t), t = x - z (the shape of a float32 log near 1).

Each program's coefficients are rounded to float32 and polished by the search's own float32
polish (``fitness.fit.polish_float32``); where the Remez start is missing (the unit-slope shapes)
or does worse, the search's fitter (least squares, minimax refinement, polish) fits the same
structure, and the better of the two is kept.  Errors are measured by the caller (``report
--baselines`` and ``benchmarks/f32_table.py`` use the dense 2^22-input check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np

from dsl.growth import shifted_input
from dsl.program import Node, Program, cost

from .baselines import PREC_BITS, RemezError, _configs, _minimax, _Problem
from .evaluate import fit_constants, score
from .fit import FitOptions, polish_float32, refine_ulp
from .problem import Problem
from .properties import search_hints
from .targets import Target

METHODS = ("minimax_poly", "minimax_rational", "shifted_poly", "shifted_rational", "odd_poly", "odd_poly_unit",
           "even_poly", "zero_poly_unit")
_POLISH = FitOptions(polish_below_ulp=math.inf, refine_below_ulp=math.inf)


@dataclass(frozen=True)
class F32Baseline:
    """One hand-written float32 program: its shape, configuration, cost and polished program."""

    method: str
    config: str
    cost: float
    program: Program
    error: float  # max ULP on the problem's fitness and validation points

    def to_dict(self) -> dict:
        from dsl.text import format_program

        return {"method": self.method, "config": self.config, "cost": self.cost,
                "program": format_program(self.program), "error": self.error}


def _horner(nodes: list[Node], coeffs, t: int) -> int:
    """Append Horner's rule for sum coeffs[k] t^k (params, fma) and return its node."""
    nodes.append(Node("param", (), float(coeffs[-1])))
    acc = len(nodes) - 1
    for c in reversed(coeffs[:-1]):
        nodes.append(Node("param", (), float(c)))
        nodes.append(Node("fma", (acc, t, len(nodes) - 1)))
        acc = len(nodes) - 1
    return acc


def odd_program(coeffs) -> Program:
    """x·P(x²) with P's coefficients, lowest first."""
    nodes = [Node("x"), Node("mul", (0, 0))]
    p = _horner(nodes, coeffs, 1)
    nodes.append(Node("mul", (0, p)))
    return Program(tuple(nodes))


def odd_unit_program(coeffs) -> Program:
    """x + x³·Q(x²) = fma(x·x², Q(x²), x)."""
    nodes = [Node("x"), Node("mul", (0, 0)), Node("mul", (0, 1))]
    q = _horner(nodes, coeffs, 1)
    nodes.append(Node("fma", (2, q, 0)))
    return Program(tuple(nodes))


def near_identity_program(coeffs) -> Program:
    """x + x·R(x²) = fma(x, R(x²), x)."""
    nodes = [Node("x"), Node("mul", (0, 0))]
    r = _horner(nodes, coeffs, 1)
    nodes.append(Node("fma", (0, r, 0)))
    return Program(tuple(nodes))


def offset_odd_program(coeffs, c: float) -> Program:
    """c + x·P(x²) = fma(x, P(x²), c), for a target odd about (0, c)."""
    nodes = [Node("x"), Node("mul", (0, 0))]
    p = _horner(nodes, coeffs, 1)
    nodes.append(Node("param", (), float(c)))
    nodes.append(Node("fma", (0, p, len(nodes) - 1)))
    return Program(tuple(nodes))


def even_program(coeffs) -> Program:
    """P(x²)."""
    nodes = [Node("x"), Node("mul", (0, 0))]
    _horner(nodes, coeffs, 1)
    return Program(tuple(nodes))


def zero_unit_program(coeffs, hi: float, lo: float = 0.0) -> Program:
    """t + t²·Q(t) with t = (x - hi) - lo."""
    nodes = [Node("x")]
    t = 0
    for part in (hi, lo):
        if part != 0.0:
            nodes.append(Node("const", (), part))
            nodes.append(Node("sub", (t, len(nodes) - 1)))
            t = len(nodes) - 1
    nodes.append(Node("mul", (t, t)))
    t2 = len(nodes) - 1
    q = _horner(nodes, coeffs, t)
    nodes.append(Node("fma", (t2, q, t)))
    return Program(tuple(nodes))


def _square_target(target: Target, kind: str) -> Target:
    """g(s) = f(√s)/√s (odd) or f(√s) (even): a polynomial in s fitted to g on relative error
    is x·P(x²) or P(x²) fitted to f on relative error."""
    f = target.mp_fn

    def g(s):
        if kind == "even":
            return f(mpmath.sqrt(s))
        if s == 0:
            return mpmath.diff(f, mpmath.mpf(0))
        r = mpmath.sqrt(s)
        return f(r) / r

    return Target(f"{target.name}|{kind}(x^2)", g, None, (0.0, 1.0))


def _shifted_target(target: Target, c: float) -> Target:
    """g(t) = f(t + c): Remez on g over [lo - c, hi - c] is a polynomial in x - c fitted to f."""
    f = target.mp_fn
    return Target(f"{target.name}|x-{c:g}", lambda t: f(t + mpmath.mpf(c)), None, (0.0, 1.0))


def _remez_starts(problem: Problem, max_ops: int, hints) -> list[tuple[str, str, Program]]:
    """(method, config, program with float64 Remez coefficients) of every shape in the budget."""
    spec, target = problem.spec, problem.target
    out: list[tuple[str, str, Program]] = []

    def add(method: str, config: str, make: Callable[[], Program]) -> None:
        try:
            with mpmath.workprec(PREC_BITS):
                prog = make()
        except (RemezError, ValueError, ZeroDivisionError, ArithmeticError):
            return
        if cost(prog) <= max_ops:
            out.append((method, config, prog))

    def add_minimax(fitted: Target, lo: float, hi: float, prefix: str = "minimax", suffix: str = "",
                    wrap: Callable[[Program], Program] = lambda p: p, spare: int = 0) -> None:
        """The minimax polynomial and every rational [m/n] of ``fitted`` on [lo, hi], each
        program passed through ``wrap`` (which may spend ``spare`` operations)."""
        try:
            with mpmath.workprec(PREC_BITS):
                base = _Problem(fitted, lo, hi)
        except (ValueError, ZeroDivisionError):
            return  # a sign change inside the domain away from a float zero: no plain Remez
        for kind, n_max in (("minimax_poly", 0), ("minimax_rational", max_ops)):
            method = kind.replace("minimax", prefix)
            for m, n in _configs(kind, base.zero, max_ops - spare, True):
                if n <= n_max:
                    add(method, (f"degree {m}" if n == 0 else f"[{m}/{n}]") + suffix,
                        lambda m=m, n=n: wrap(_minimax(base, m, n, True).program))

    add_minimax(target, spec.lo, spec.hi)
    if hints.center != 0.0:
        c = hints.center
        add_minimax(_shifted_target(target, c), spec.lo - c, spec.hi - c, "shifted", f" in x - {c:g}",
                    lambda p: shifted_input(p, c), spare=1)
    if hints.symmetry in ("odd", "even"):
        a2 = float(max(abs(spec.lo), abs(spec.hi))) ** 2
        kind = "odd" if hints.symmetry == "odd" else "even"
        make = odd_program if kind == "odd" else even_program
        try:
            with mpmath.workprec(PREC_BITS):
                sq = _Problem(_square_target(target, kind), 0.0, a2)
        except (ValueError, ZeroDivisionError):
            sq = None
        if sq is not None and sq.zero is None:
            for d in range(0, max_ops):
                add(f"{kind}_poly", f"degree {d} in x²",
                    lambda d=d: make(list(_minimax(sq, d, 0, True).numerator)))
    return out


def _unit_shapes(problem: Problem, max_ops: int, hints) -> list[tuple[str, str, Program]]:
    """The shapes without a Remez start (unit slope, odd about (0, c)): the search's fitter fits them."""
    out = []
    if hints.symmetry == "odd" and hints.odd_unit_slope:
        for d in range(0, max_ops):
            prog = odd_unit_program([0.0] * (d + 1))
            if cost(prog) <= max_ops:
                out.append(("odd_poly_unit", f"Q degree {d} in x²", prog))
    if hints.symmetry == "odd" and hints.odd_near_identity:
        for d in range(0, max_ops):
            prog = near_identity_program([0.0] * (d + 1))
            if cost(prog) <= max_ops:
                out.append(("odd_poly_near_identity", f"R degree {d} in x²", prog))
    if hints.symmetry == "odd_offset":
        for d in range(0, max_ops):
            prog = offset_odd_program([0.0] * (d + 1), hints.offset)
            if cost(prog) <= max_ops:
                out.append(("odd_offset_poly", f"c + x·P(x²), P degree {d}", prog))
    if hints.symmetry in (None, "odd_offset"):
        for (hi, lo), unit in zip(hints.zeros, hints.unit_slope):
            if not unit:
                continue
            for d in range(0, max_ops):
                prog = zero_unit_program([0.0] * (d + 1), hi, lo)
                if cost(prog) <= max_ops:
                    out.append(("zero_poly_unit", f"Q degree {d}, z = {hi + lo:.9g}", prog))
    return out


def _best_float32(program: Program, problem: Problem, remez: bool, seed: int) -> Program:
    """The best of: Remez coefficients rounded to float32 and polished; the same after a minimax
    refinement on the ulp-weighted error (which weighs each point by its output binade, as the
    score does); the search's fitter, refining however large the error."""
    from dsl.canonical import canonicalize

    options = []
    if remez:
        theta = np.asarray(program.params, np.float64)
        options.append(program.with_params(polish_float32(program, problem, theta, _POLISH)))
        refined = refine_ulp(program, problem, theta, _POLISH)
        options.append(program.with_params(polish_float32(program, problem, refined, _POLISH)))
    fitted = fit_constants(program, problem, np.random.default_rng(seed), _POLISH)
    options.append(fitted.with_params(polish_float32(fitted, problem, np.asarray(fitted.params), _POLISH)))
    scored = [(score(canonicalize(p, "float32"), problem).error, i, p) for i, p in enumerate(options)]
    return min(scored)[2]


def f32_baselines(problem: Problem, max_ops: int, seed: int = 0) -> list[F32Baseline]:
    """Every baseline shape within ``max_ops``, with its best float32 coefficients."""
    if problem.spec.mode != "ulp" or problem.spec.dtype != "float32" or problem.spec.frame:
        raise ValueError("float32 baselines are for float32 ulp-mode problems without a frame")
    hints = search_hints(problem)
    out = []
    for remez, items in ((True, _remez_starts(problem, max_ops, hints)), (False, _unit_shapes(problem, max_ops, hints))):
        for method, config, prog in items:
            best = _best_float32(prog, problem, remez, seed)
            s = score(best, problem)
            out.append(F32Baseline(method, config, float(cost(best)), best, float(s.error)))
    return out


