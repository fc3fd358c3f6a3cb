"""Templated growth: structured moves that grow the shapes classical approximations have.

A Horner chain made one step deeper at its output or at its innermost coefficient, the output
squared (p(x)^2 with p ~ f^(1/2); repeated, the paper's 2^x = (2^(x/8))^8), the output divided
by a new Horner chain (a rational p(x)/q(x), whose denominator the innermost extension then
deepens), and a factor (x - z) at a zero z of the target.  The fitter re-fits every constant of
the child, so only the structure matters; the innermost extension and the division start their
new coefficient at 0 and so keep the parent's function (and its fitted optimum) as a start.

``symmetry`` ("odd", "even", "odd_offset" or None, detected from the target's values by
``fitness.properties``) picks the variable the chains grow in.  For a symmetric target the
variable is s = x*x (one node, shared through common-subexpression merging), so a chain grows as
a polynomial in x², and the seeds are x·P(x²) and x + x³·P(x²) (odd) or P(x²) (even): the
shapes whose float32 error a symmetric target allows, which a random draw would have to find one
node at a time.  Moves that would break the symmetry (a Horner step at the output or squaring,
for an odd target) are not offered then (``moves_for``).  A target odd about (0, c) ("odd_offset":
f = c + an odd function, the logistic sigmoid) is seeded as fma(x, P(x²), c), and the rational
move divides its odd part: fma(x, P(x²) / Q(x²), c), so the constant c is added by the last,
exactly rounded operation and the chains keep their parity.

Zeros are given as pairs (hi, lo) in the chain's variable (x, or x² for a symmetric target), so
that the factor is (v - hi) - lo: exact near the zero when hi is the zero rounded to the dtype.

On a domain away from 0 (no parity, no zero inside) a polynomial in x has large terms that
cancel, and float32 rounds each of them: exp on [3, 4] at degree 7 is 44 ULP in x and 0.89 in
t = x - 3.5 (``benchmarks/shift_conditioning.py``; Sterbenz makes t exact over most of such a
domain).  Such a target is seeded with a chain in t = x - ``Hints.center``, and a program that
holds t keeps growing in t; chains in x are still bred beside them, since a shift costs an
operation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .program import Node, Program

GROW_MOVES = ("grow_horner_out", "grow_horner_in", "grow_square", "grow_rational")
ZERO_MOVE = "grow_zero_factor"
SYMMETRIES = (None, "odd", "even", "odd_offset")
ODD = ("odd", "odd_offset")  # parities whose programs must not gain even terms at the output


def _new_param(rng: np.random.Generator) -> Node:
    return Node("param", (), float(rng.normal(0.0, 1.0)))


def moves_for(symmetry: str | None) -> tuple[str, ...]:
    """The growth moves that keep a program of the given parity in its parity."""
    if symmetry in ODD:
        return ("grow_horner_in", "grow_rational")
    return GROW_MOVES


def zero_pairs(zeros) -> tuple[tuple[float, float], ...]:
    """Zeros as (hi, lo) pairs; a bare float z is (z, 0)."""
    out = []
    for z in zeros:
        hi, lo = (float(z[0]), float(z[1])) if isinstance(z, (tuple, list)) else (float(z), 0.0)
        out.append((hi, lo))
    return tuple(out)


def _fma_or_muladd(ops: tuple[str, ...]) -> str | None:
    if "fma" in ops:
        return "fma"
    if "mul" in ops and "add" in ops:
        return "muladd"
    return None


def _append_step(nodes: list[Node], a: int, b: int, c: int, form: str) -> int:
    """Append ``a * b + c`` (one fma, or a mul then an add) and return its index."""
    if form == "fma":
        nodes.append(Node("fma", (a, b, c)))
    else:
        nodes.append(Node("mul", (a, b)))
        nodes.append(Node("add", (len(nodes) - 1, c)))
    return len(nodes) - 1


def _variable(nodes: list[Node], symmetry: str | None, zeros=(), program: Program | None = None) -> int:
    """Append the chain variable's nodes to ``nodes`` and return its index: x*x for a symmetric
    target; t = (x - hi) - lo when ``program`` already holds that factor of a zero (a chain in t
    is well conditioned near the zero, a chain in x is not: log near 1 is a polynomial in x - 1
    with small terms, in x with large ones that cancel); x (node 0, nothing appended) otherwise.
    Copies of nodes the program has already are merged by the canonical form."""
    if symmetry is not None:
        nodes.append(Node("mul", (0, 0)))
        return len(nodes) - 1
    if program is not None:
        for hi, lo in zero_pairs(zeros):
            if hi != 0.0 and _has_factor(program, hi, lo):
                return _append_factor(nodes, 0, hi, lo)
        c = shift_of(program)
        if c is not None:
            return _append_factor(nodes, 0, c, 0.0)
    return 0


def _holds_square(program: Program) -> bool:
    live = program.live()
    return any(live[i] and n.op == "mul" and n.args == (0, 0) for i, n in enumerate(program.nodes))


def shift_of(program: Program) -> float | None:
    """c when the program holds t = x - c (c a literal, not 0): the chain variable of a program
    seeded on a domain away from 0 (``Hints.center``), or one evolution shifted itself."""
    nodes, live = program.nodes, program.live()
    for i, n in enumerate(nodes):
        if (live[i] and n.op == "sub" and n.args[0] == 0 and nodes[n.args[1]].op == "const"
                and nodes[n.args[1]].value != 0.0):
            return float(nodes[n.args[1]].value)
    return None


def shifted_input(program: Program, c: float) -> Program:
    """The program with its input x replaced by t = x - c (c a literal): a polynomial in t is the
    same program family as one in x, better conditioned in float32 when the domain lies far from
    0 (exp on [3, 4]: degree 7 is 44 ULP in x, 0.89 in x - 3.5)."""
    nodes = [Node("x"), Node("const", (), float(c)), Node("sub", (0, 1))]
    remap = {0: 2}
    for i, n in enumerate(program.nodes[1:], start=1):
        remap[i] = len(nodes)
        nodes.append(replace(n, args=tuple(remap[a] for a in n.args)))
    return Program(tuple(nodes), remap[program.output])


def _has_factor(program: Program, hi: float, lo: float) -> bool:
    nodes, live = program.nodes, program.live()
    t = [i for i, n in enumerate(nodes) if live[i] and n.op == "sub" and n.args[0] == 0
         and nodes[n.args[1]].op == "const" and nodes[n.args[1]].value == hi]
    if lo == 0.0 or not t:
        return bool(t)
    return any(live[i] and n.op == "sub" and n.args[0] in t and nodes[n.args[1]].op == "const"
               and nodes[n.args[1]].value == lo for i, n in enumerate(nodes))


def _append_factor(nodes: list[Node], v: int, hi: float, lo: float) -> int:
    """Append (v - hi) - lo (the parts that are not 0) and return its index."""
    for part in (hi, lo):
        if part != 0.0:
            nodes.append(Node("const", (), part))
            nodes.append(Node("sub", (v, len(nodes) - 1)))
            v = len(nodes) - 1
    return v


def grow_horner_out(program: Program, rng: np.random.Generator, ops: tuple[str, ...],
                    symmetry: str | None = None, zeros=()) -> Program | None:
    """out' = out * v + c with c a new constant (v = x, or x² for an even target)."""
    form = _fma_or_muladd(ops)
    if form is None or symmetry in ODD or (symmetry and "mul" not in ops):
        return None
    nodes = list(program.nodes)
    v = _variable(nodes, symmetry, zeros, program)
    nodes.append(_new_param(rng))
    out = _append_step(nodes, program.output, v, len(nodes) - 1, form)
    return Program(tuple(nodes), out)


def grow_horner_in(program: Program, rng: np.random.Generator, ops: tuple[str, ...],
                   symmetry: str | None = None, zeros=()) -> Program | None:
    """Deepen a chain from the inside: one use of a constant c becomes v * c' + c, c' = 0.

    Mostly (70%) the use is one of the deepest constants in a factor slot (the innermost
    coefficient of a Horner chain, whose replacement raises the chain's degree by one); otherwise
    any use of any constant.  "Deepest" is measured from the output or, in a program that
    divides by a computed value (a rational's denominator), from one such divisor: the root is
    drawn uniformly among the output and the divisors, so a denominator's chain grows as well
    as the numerator's.  v is x, or x² for a symmetric target.
    """
    form = _fma_or_muladd(ops)
    if form is None or (symmetry and "mul" not in ops):
        return None
    live = program.live()
    nodes = program.nodes
    uses = [(j, k) for j, n in enumerate(nodes) if live[j] and not n.is_leaf
            for k, a in enumerate(n.args) if nodes[a].op == "param"]
    if not uses:
        return None
    if rng.random() < 0.7:
        roots = [program.output] + sorted({n.args[1] for j, n in enumerate(nodes)
                                           if live[j] and n.op == "div" and not nodes[n.args[1]].is_leaf})
        root = roots[int(rng.integers(len(roots)))] if len(roots) > 1 else roots[0]
        # longest path from each node below the root to the root
        depth = [-1] * len(nodes)
        depth[root] = 0
        for i in range(root, -1, -1):
            if depth[i] >= 0:
                for a in nodes[i].args:
                    depth[a] = max(depth[a], depth[i] + 1)
        below = [(j, k) for j, k in uses if depth[j] >= 0] or uses
        deepest = max(depth[nodes[j].args[k]] for j, k in below)
        inner = [(j, k) for j, k in below if depth[nodes[j].args[k]] == deepest]
        factor = [(j, k) for j, k in inner if (nodes[j].op == "fma" and k < 2) or nodes[j].op in ("mul", "div")]
        uses = factor or inner
    j, k = uses[int(rng.integers(len(uses)))]
    c = nodes[j].args[k]
    # new nodes go right after the constant; later references shift
    new = list(nodes[: c + 1])
    v = _variable(new, symmetry, zeros, program)
    new.append(Node("param", (), 0.0))
    step = _append_step(new, v, len(new) - 1, c, form)
    shift = step - c
    rest = [replace(n, args=tuple(a + shift if a > c else a for a in n.args)) for n in nodes[c + 1:]]
    jj = j + shift
    new += rest
    args = list(new[jj].args)
    args[k] = step
    new[jj] = replace(new[jj], args=tuple(args))
    out = program.output + shift if program.output > c else program.output
    return Program(tuple(new), out)


def grow_square(program: Program, rng: np.random.Generator, ops: tuple[str, ...],
                symmetry: str | None = None, zeros=()) -> Program | None:
    """out' = out * out (the fitter re-fits the inner part toward f^(1/2)); not for odd targets."""
    if "mul" not in ops or symmetry in ODD:
        return None
    nodes = list(program.nodes)
    nodes.append(Node("mul", (program.output, program.output)))
    return Program(tuple(nodes), len(nodes) - 1)


def grow_rational(program: Program, rng: np.random.Generator, ops: tuple[str, ...],
                  symmetry: str | None = None, zeros=()) -> Program | None:
    """out' = out / (v * c + 1) with c = 0 new: the same function, now a rational p/q.

    The denominator's constant term is the literal 1 (a rational's common scale is redundant;
    the numerator keeps it), so ``grow_horner_in`` deepens q from its trainable c: 1 + c v + c' v^2 ...
    For a symmetric target v = x², so q is even and the quotient keeps the numerator's parity;
    for "odd_offset" the division goes under the last fma(x, R, c), whose R is the even part.
    """
    if "div" not in ops or (symmetry and "mul" not in ops):
        return None
    form = _fma_or_muladd(ops)
    if form is None:
        return None
    nodes = list(program.nodes)
    top = nodes[program.output]
    if symmetry == "odd_offset":  # divide the odd part's even factor: fma(x, R, c) -> fma(x, R / q, c)
        if top.op != "fma" or 0 not in top.args[:2] or nodes[top.args[2]].op != "param":
            return None
        num = top.args[1] if top.args[0] == 0 else top.args[0]
    else:
        num = program.output
    v = _variable(nodes, symmetry, zeros, program)
    nodes.append(Node("param", (), 0.0))
    nodes.append(Node("const", (), 1.0))
    den = _append_step(nodes, v, len(nodes) - 2, len(nodes) - 1, form)
    nodes.append(Node("div", (num, den)))
    if symmetry == "odd_offset":
        nodes.append(Node("fma", (0, len(nodes) - 1, top.args[2])))
    return Program(tuple(nodes), len(nodes) - 1)


def grow_zero_factor(program: Program, rng: np.random.Generator, ops: tuple[str, ...], zeros,
                     symmetry: str | None = None) -> Program | None:
    """out' = out * ((v - hi) - lo) for a zero (hi, lo) of the target in the variable v (x, or x²
    for a symmetric target); out * v when the zero is 0.  hi and lo are exact literals."""
    pairs = zero_pairs(zeros)
    if not pairs or "mul" not in ops or ("sub" not in ops and any(p != (0.0, 0.0) for p in pairs)):
        return None
    hi, lo = pairs[int(rng.integers(len(pairs)))]
    nodes = list(program.nodes)
    factor = _append_factor(nodes, _variable(nodes, symmetry), hi, lo)
    nodes.append(Node("mul", (program.output, factor)))
    return Program(tuple(nodes), len(nodes) - 1)


GROWERS = {"grow_horner_out": grow_horner_out, "grow_horner_in": grow_horner_in, "grow_square": grow_square,
           "grow_rational": grow_rational}


def apply_growth(program: Program, move: str, rng: np.random.Generator, ops: tuple[str, ...], zeros=(),
                 symmetry: str | None = None) -> Program | None:
    """Grow ``program`` by one named move.  For a target odd about (0, c), a program that does not
    hold x² (bred from a random start) grows in x, without parity: c + x·P(x²) adds two numbers
    that cancel where f is small next to c (the sigmoid at -4: 0.018 = 0.5 - 0.482, an error of
    ulp(0.5) is 16 ulps of the result), where a rational in x keeps its relative accuracy."""
    if symmetry == "odd_offset" and not _holds_square(program):
        symmetry = None
    if move == ZERO_MOVE:
        return grow_zero_factor(program, rng, ops, zeros, symmetry)
    if move not in GROWERS:
        raise ValueError(f"unknown growth move {move!r}")
    return GROWERS[move](program, rng, ops, symmetry, zeros)


@dataclass(frozen=True)
class Hints:
    """What the templates know of the target, detected from its values (``fitness.properties``).

    ``zeros`` are (hi, lo) pairs in the chain variable; ``unit_slope[i]`` says f' = 1 at zero i
    (for an odd target, ``odd_unit_slope`` says f'(0) = 1, and ``odd_near_identity`` that f(x)/x
    stays within [3/4, 5/4] on the domain, so that x + x·R(x²) adds the exact x to a correction
    whose rounding hardly shows: erf near 0).
    """

    symmetry: str | None = None
    zeros: tuple[tuple[float, float], ...] = ()
    unit_slope: tuple[bool, ...] = ()
    odd_unit_slope: bool = False
    odd_near_identity: bool = False
    offset: float = 0.0  # f(0), for symmetry "odd_offset"
    center: float = 0.0  # a domain away from 0 (no parity, no zero): chains may grow in x - center

    @property
    def any(self) -> bool:
        return self.symmetry is not None or bool(self.zeros) or self.center != 0.0


def seed_program(rng: np.random.Generator, ops: tuple[str, ...], hints: Hints) -> Program | None:
    """A small templated start for a target with a property evolution rarely stumbles on, or None.

    odd: x·(c1 s + c0), or x + x s·c1 when f'(0) = 1 (s = x²; its last operation adds the exact
    x), or x + x·(c1 s + c0) when f(x)/x stays near 1; even: c1 s + c0; odd about (0, c):
    fma(x, c1 s + c0, c); a zero z: t·(c1 t + c0)
    with t = x - z, or t + t²·c1 when f'(z) = 1; a domain away from 0: c1 t + c0 with t = x - center
    (the growth moves then deepen the chain in t).
    The constants are drawn; the fitter sets them.
    """
    form = _fma_or_muladd(ops)
    if form is None or "mul" not in ops:
        return None
    nodes = [Node("x")]
    if hints.symmetry == "odd_offset":
        if form != "fma":
            return None
        nodes += [Node("mul", (0, 0)), _new_param(rng), _new_param(rng)]  # s, c1, c0
        poly = _append_step(nodes, 1, 2, 3, form)
        nodes.append(Node("param", (), hints.offset))  # c = f(0), which the fitter refines
        nodes.append(Node("fma", (0, poly, len(nodes) - 1)))
        return Program(tuple(nodes), len(nodes) - 1)
    if hints.symmetry is not None:
        nodes.append(Node("mul", (0, 0)))  # s
        c1 = len(nodes)
        nodes.append(_new_param(rng))
        if hints.symmetry == "odd" and hints.odd_unit_slope and form == "fma" and rng.random() < 0.75:
            nodes.append(Node("mul", (0, 1)))  # x s
            nodes.append(Node("fma", (len(nodes) - 1, c1, 0)))
            return Program(tuple(nodes), len(nodes) - 1)
        nodes.append(_new_param(rng))
        poly = _append_step(nodes, 1, c1, len(nodes) - 1, form)
        if hints.symmetry == "odd" and hints.odd_near_identity and form == "fma" and rng.random() < 0.75:
            nodes.append(Node("fma", (0, poly, 0)))  # x + x·R(s)
        elif hints.symmetry == "odd":
            nodes.append(Node("mul", (0, poly)))
        return Program(tuple(nodes), len(nodes) - 1)
    if hints.center != 0.0 and not hints.zeros:
        if "sub" not in ops:
            return None
        t = _append_factor(nodes, 0, hints.center, 0.0)  # c1 t + c0, t = x - center
        nodes += [_new_param(rng), _new_param(rng)]
        _append_step(nodes, t, len(nodes) - 2, len(nodes) - 1, form)
        return Program(tuple(nodes), len(nodes) - 1)
    if not hints.zeros or ("sub" not in ops and any(z != (0.0, 0.0) for z in hints.zeros)):
        return None
    i = int(rng.integers(len(hints.zeros)))
    t = _append_factor(nodes, 0, *hints.zeros[i])
    unit = i < len(hints.unit_slope) and hints.unit_slope[i]
    if unit and form == "fma" and rng.random() < 0.5:
        nodes.append(Node("mul", (t, t)))
        nodes.append(_new_param(rng))
        nodes.append(Node("fma", (len(nodes) - 2, len(nodes) - 1, t)))
        return Program(tuple(nodes), len(nodes) - 1)
    nodes += [_new_param(rng), _new_param(rng)]
    poly = _append_step(nodes, t, len(nodes) - 2, len(nodes) - 1, form)
    nodes.append(Node("mul", (poly, t)))
    return Program(tuple(nodes), len(nodes) - 1)
