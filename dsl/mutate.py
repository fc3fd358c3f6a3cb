"""Mutations for regularized evolution.

Each mutation takes a program and a numpy ``Generator`` and returns a new program (never
modifying the old one); the result is canonicalized so that the population only holds canonical
programs.  The random draws depend on nothing but the generator, so a run is reproducible from
its seed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .canonical import canonicalize
from .ops import OPS
from .program import Node, Program, cost

MUTATIONS = ("insert", "remove", "rewire", "change_op", "perturb", "redraw", "identity")
WEIGHTS = np.array([0.40, 0.12, 0.15, 0.13, 0.10, 0.04, 0.06])

_NEUTRAL = {"add": 0.0, "sub": 0.0, "mul": 1.0, "div": 1.0}


def _new_param(rng: np.random.Generator) -> Node:
    return Node("param", (), float(rng.normal(0.0, 1.0)))


def _insert_at(nodes: list[Node], pos: int, node: Node) -> list[Node]:
    """Insert ``node`` at index ``pos``; later references shift by one."""
    shifted = [replace(n, args=tuple(a + 1 if a >= pos else a for a in n.args)) for n in nodes[pos:]]
    return nodes[:pos] + [node] + shifted


def _ops_nodes(program: Program) -> list[int]:
    live = program.live()
    return [i for i, n in enumerate(program.nodes) if live[i] and not n.is_leaf]


def _insert(program: Program, rng: np.random.Generator, ops: tuple[str, ...], at_output: bool = False) -> Program:
    """Wrap a value ``s`` in a new operation ``op(..., s, ...)`` and redirect its later uses."""
    live = program.live()
    sites = [i for i in range(len(program.nodes)) if live[i] and program.nodes[i].op != "param"]
    if at_output or rng.random() < 0.5:
        site = program.output
    else:
        site = int(rng.choice(sites))
    name = str(rng.choice(ops))
    arity = OPS[name].arity
    nodes = list(program.nodes)
    slot = int(rng.integers(arity))
    args: list[int] = []
    extra: list[Node] = []
    for j in range(arity):
        if j == slot:
            args.append(site)
            continue
        r = rng.random()
        if name == "fma" and slot < 2 and j < 2:
            r = 0.5 if r < 0.6 else r  # the other factor: x more often (a Horner step)
        elif name == "fma" and j == 2:
            r = 0.0 if r < 0.7 else r  # the addend: a new constant more often
        if r < 0.45:
            extra.append(_new_param(rng))
            if name in _NEUTRAL and rng.random() < 0.5:
                extra[-1] = Node("param", (), _NEUTRAL[name])
            args.append(-len(extra))  # placeholder for a new parameter
        elif r < 0.75:
            args.append(0)
        else:
            args.append(int(rng.integers(site + 1)))
    # place new parameters and the new op right after the site
    pos = site + 1
    for k, p in enumerate(extra):
        nodes = _insert_at(nodes, pos + k, p)
    fixed_args = tuple(pos + (-a - 1) if a < 0 else a for a in args)
    new_index = pos + len(extra)
    nodes = _insert_at(nodes, new_index, Node(name, fixed_args))
    # redirect later uses of the site (and the output) to the new node
    out = program.output
    out = out + len(extra) + 1 if out > site else out
    for i in range(new_index + 1, len(nodes)):
        n = nodes[i]
        if site in n.args:
            nodes[i] = replace(n, args=tuple(new_index if a == site else a for a in n.args))
    if out == site:
        out = new_index
    return Program(tuple(nodes), out)


def _remove(program: Program, rng: np.random.Generator) -> Program | None:
    cands = _ops_nodes(program)
    if not cands:
        return None
    victim = int(rng.choice(cands))
    node = program.nodes[victim]
    replacement = int(rng.choice(node.args))
    nodes = [
        replace(n, args=tuple(replacement if a == victim else a for a in n.args)) for n in program.nodes
    ]
    out = replacement if program.output == victim else program.output
    return Program(tuple(nodes), out)


def _rewire(program: Program, rng: np.random.Generator) -> Program | None:
    cands = _ops_nodes(program)
    if not cands:
        return None
    i = int(rng.choice(cands))
    node = program.nodes[i]
    j = int(rng.integers(len(node.args)))
    nodes = list(program.nodes)
    out = program.output
    if rng.random() < 0.3:
        nodes = _insert_at(nodes, i, _new_param(rng))
        new_arg = i
        out = out + 1 if out >= i else out
        i += 1
    else:
        new_arg = int(rng.integers(i))
    args = list(node.args)
    args[j] = new_arg
    nodes[i] = replace(nodes[i], args=tuple(args))
    return Program(tuple(nodes), out)


def _change_op(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    cands = _ops_nodes(program)
    if not cands:
        return None
    i = int(rng.choice(cands))
    node = program.nodes[i]
    same = [o for o in ops if OPS[o].arity == len(node.args) and o != node.op]
    if not same:
        return None
    nodes = list(program.nodes)
    nodes[i] = replace(node, op=str(rng.choice(same)))
    return Program(tuple(nodes), program.output)


def _perturb(program: Program, rng: np.random.Generator, redraw: bool) -> Program | None:
    idx = program.param_indices
    if not idx:
        return None
    i = int(rng.choice(idx))
    nodes = list(program.nodes)
    v = nodes[i].value
    if redraw or not np.isfinite(v):
        v = float(rng.normal(0.0, 1.0))
    else:
        v = float(v * (1.0 + rng.normal(0.0, 0.1)) + rng.normal(0.0, 1e-3))
    nodes[i] = replace(nodes[i], value=v)
    return Program(tuple(nodes), program.output)


# --- templated growth (real-number mode) -------------------------------------------------------
# Structured insertions that grow the shapes classical approximations have: a Horner chain made
# one step deeper at its output or at its innermost coefficient, the output squared
# (p(x)^2 with p ~ f^(1/2); repeated, the paper's 2^x = (2^(x/8))^8), and the output divided by
# a new Horner chain (a rational p(x)/q(x), whose denominator the innermost extension then
# deepens).  The fitter re-fits every constant of the child, so only the structure matters; the
# innermost extension and the division start their new coefficient at 0 and so keep the
# parent's function (and its fitted optimum) as a start.
GROW_MOVES = ("grow_horner_out", "grow_horner_in", "grow_square", "grow_rational")
GROW_SPLIT = np.array([0.30, 0.35, 0.20, 0.15])
GROW_WEIGHT = 0.15


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


def _grow_horner_out(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    """out' = out * x + c with c a new constant."""
    form = _fma_or_muladd(ops)
    if form is None:
        return None
    nodes = list(program.nodes)
    nodes.append(_new_param(rng))
    out = _append_step(nodes, program.output, 0, len(nodes) - 1, form)
    return Program(tuple(nodes), out)


def _grow_horner_in(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    """Deepen a chain from the inside: one use of a constant c becomes x * c' + c, c' = 0.

    Mostly (70%) the use is one of the deepest constants in a factor slot (the innermost
    coefficient of a Horner chain, whose replacement raises the chain's degree by one); otherwise
    any use of any constant.  "Deepest" is measured from the output or, in a program that
    divides by a computed value (a rational's denominator), from one such divisor: the root is
    drawn uniformly among the output and the divisors, so a denominator's chain grows as well
    as the numerator's.  Programs without such a division draw exactly what they drew before.
    """
    form = _fma_or_muladd(ops)
    if form is None:
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
    new.append(Node("param", (), 0.0))
    step = _append_step(new, 0, len(new) - 1, c, form)
    shift = step - c
    rest = [replace(n, args=tuple(a + shift if a > c else a for a in n.args)) for n in nodes[c + 1:]]
    jj = j + shift
    new += rest
    args = list(new[jj].args)
    args[k] = step
    new[jj] = replace(new[jj], args=tuple(args))
    out = program.output + shift if program.output > c else program.output
    return Program(tuple(new), out)


def _grow_square(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    """out' = out * out (the fitter re-fits the inner part toward f^(1/2))."""
    if "mul" not in ops:
        return None
    nodes = list(program.nodes)
    nodes.append(Node("mul", (program.output, program.output)))
    return Program(tuple(nodes), len(nodes) - 1)


def _grow_rational(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    """out' = out / (x * c + 1) with c = 0 new: the same function, now a rational p(x)/q(x).

    The denominator's constant term is the literal 1 (a rational's common scale is redundant;
    the numerator keeps it), so ``grow_horner_in`` deepens q from its trainable c: 1 + c x + c' x^2 ...
    """
    if "div" not in ops:
        return None
    form = _fma_or_muladd(ops)
    if form is None:
        return None
    nodes = list(program.nodes)
    nodes.append(Node("param", (), 0.0))
    nodes.append(Node("const", (), 1.0))
    den = _append_step(nodes, 0, len(nodes) - 2, len(nodes) - 1, form)
    nodes.append(Node("div", (program.output, den)))
    return Program(tuple(nodes), len(nodes) - 1)


_GROW = {"grow_horner_out": _grow_horner_out, "grow_horner_in": _grow_horner_in, "grow_square": _grow_square,
         "grow_rational": _grow_rational}
_TEMPLATE_KINDS = MUTATIONS + GROW_MOVES
_TEMPLATE_P = np.concatenate([(1.0 - GROW_WEIGHT) * WEIGHTS / WEIGHTS.sum(), GROW_WEIGHT * GROW_SPLIT / GROW_SPLIT.sum()])
# where the target is exactly 0 (log at 1, erf at 0), real mode needs the program to vanish exactly:
# a factor (x - z) is a structure evolution rarely stumbles on, so it gets its own template
ZERO_FACTOR_SHARE = 0.15  # of the template mass, when the problem names zeros
_ZERO_KINDS = _TEMPLATE_KINDS + ("grow_zero_factor",)
_ZERO_P = np.concatenate([(1.0 - GROW_WEIGHT) * WEIGHTS / WEIGHTS.sum(),
                          GROW_WEIGHT * (1.0 - ZERO_FACTOR_SHARE) * GROW_SPLIT / GROW_SPLIT.sum(),
                          [GROW_WEIGHT * ZERO_FACTOR_SHARE]])


def _grow_zero_factor(program: Program, rng: np.random.Generator, ops: tuple[str, ...],
                      zeros: tuple[float, ...]) -> Program | None:
    """out' = out * (x - z) for a zero z of the target (out * x when z = 0), z an exact literal."""
    if not zeros or "mul" not in ops or ("sub" not in ops and any(z != 0 for z in zeros)):
        return None
    z = float(zeros[int(rng.integers(len(zeros)))])
    nodes = list(program.nodes)
    factor = 0
    if z != 0.0:
        nodes.append(Node("const", (), z))
        nodes.append(Node("sub", (0, len(nodes) - 1)))
        factor = len(nodes) - 1
    nodes.append(Node("mul", (program.output, factor)))
    return Program(tuple(nodes), len(nodes) - 1)


def _apply_growth(program: Program, move: str, rng: np.random.Generator, ops: tuple[str, ...],
                  zeros: tuple[float, ...]) -> Program | None:
    if move == "grow_zero_factor":
        return _grow_zero_factor(program, rng, ops, zeros)
    return _GROW[move](program, rng, ops)


def grow(
    program: Program,
    move: str,
    rng: np.random.Generator,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float64",
    zeros: tuple[float, ...] = (),
) -> Program | None:
    """One named growth move (``GROW_MOVES`` or ``grow_zero_factor``), canonical, or None when the
    move does not apply to ``program`` or its result would cost more than ``max_ops``.

    The engine uses it to expand a program that just did well at its cost by each template in
    turn, rather than waiting for a random draw to pick both that parent and that move.
    """
    if move not in _GROW and move != "grow_zero_factor":
        raise ValueError(f"unknown growth move {move!r}")
    child = _apply_growth(program, move, rng, ops, zeros)
    if child is None:
        return None
    child = canonicalize(child, dtype)
    return child if cost(child) <= max_ops else None


def mutate(
    program: Program,
    rng: np.random.Generator,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float32",
    tries: int = 20,
    templates: bool = False,
    zeros: tuple[float, ...] = (),
) -> tuple[Program, str]:
    """One random mutation whose result costs at most ``max_ops``; returns (child, kind).

    With ``templates`` (real-number mode), ``GROW_WEIGHT`` of the probability mass goes to the
    structured growth moves of ``GROW_MOVES`` (taken proportionally from the other kinds); without
    it the draws, and so the children, are exactly those of the plain mutation.  ``zeros`` (points
    where the target is exactly 0) add ``grow_zero_factor``, which multiplies the output by (x - z).
    """
    if templates and zeros:
        kinds, p = _ZERO_KINDS, _ZERO_P
    elif templates:
        kinds, p = _TEMPLATE_KINDS, _TEMPLATE_P
    else:
        kinds, p = MUTATIONS, WEIGHTS / WEIGHTS.sum()
    for _ in range(tries):
        kind = str(rng.choice(kinds, p=p))
        if kind == "insert":
            child = _insert(program, rng, ops)
        elif kind == "remove":
            child = _remove(program, rng)
        elif kind == "rewire":
            child = _rewire(program, rng)
        elif kind == "change_op":
            child = _change_op(program, rng, ops)
        elif kind in ("perturb", "redraw"):
            child = _perturb(program, rng, redraw=kind == "redraw")
        elif kind in GROW_MOVES or kind == "grow_zero_factor":
            child = _apply_growth(program, kind, rng, ops, zeros)
        else:
            child = program
        if child is None:
            continue
        child = canonicalize(child, dtype)
        if cost(child) <= max_ops:
            return child, kind
    return canonicalize(program, dtype), "identity"


def random_program(rng: np.random.Generator, ops: tuple[str, ...], n_ops: int, dtype: str = "float32") -> Program:
    """A random program built by ``n_ops`` insertions into ``return param``."""
    prog = Program((Node("x"), _new_param(rng)))
    for _ in range(n_ops):
        prog = canonicalize(_insert(prog, rng, ops, at_output=True), dtype)
    return prog
