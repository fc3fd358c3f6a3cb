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
from .growth import (GROW_MOVES, ZERO_MOVE, apply_growth, grow_horner_in, grow_horner_out, grow_rational,
                     grow_square, moves_for)
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


# --- templated growth (dsl.growth) ------------------------------------------------------------
GROW_SPLIT = np.array([0.30, 0.35, 0.20, 0.15])
GROW_WEIGHT = 0.15
# where the target is exactly 0 (log at 1, erf at 0), real mode needs the program to vanish exactly:
# a factor (x - z) is a structure evolution rarely stumbles on, so it gets its own template
ZERO_FACTOR_SHARE = 0.15  # of the template mass, when the problem names zeros


def _grow_horner_out(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    return grow_horner_out(program, rng, ops)


def _grow_horner_in(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    return grow_horner_in(program, rng, ops)


def _grow_square(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    return grow_square(program, rng, ops)


def _grow_rational(program: Program, rng: np.random.Generator, ops: tuple[str, ...]) -> Program | None:
    return grow_rational(program, rng, ops)


def _kinds(zeros, symmetry: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Mutation kinds and their probabilities with templates: ``GROW_WEIGHT`` of the mass goes to
    the growth moves that suit the target's symmetry (and ``ZERO_FACTOR_SHARE`` of that to the
    zero factor where the target has zeros), taken proportionally from the other kinds."""
    moves = moves_for(symmetry)
    split = np.array([GROW_SPLIT[GROW_MOVES.index(m)] for m in moves])
    base = (1.0 - GROW_WEIGHT) * WEIGHTS / WEIGHTS.sum()
    if zeros:
        return (MUTATIONS + moves + (ZERO_MOVE,),
                np.concatenate([base, GROW_WEIGHT * (1.0 - ZERO_FACTOR_SHARE) * split / split.sum(),
                                [GROW_WEIGHT * ZERO_FACTOR_SHARE]]))
    return MUTATIONS + moves, np.concatenate([base, GROW_WEIGHT * split / split.sum()])


def grow(
    program: Program,
    move: str,
    rng: np.random.Generator,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float64",
    zeros=(),
    symmetry: str | None = None,
) -> Program | None:
    """One named growth move (``GROW_MOVES`` or ``grow_zero_factor``), canonical, or None when the
    move does not apply to ``program`` or its result would cost more than ``max_ops``.

    The engine uses it to expand a program that just did well at its cost by each template in
    turn, rather than waiting for a random draw to pick both that parent and that move.
    """
    child = apply_growth(program, move, rng, ops, zeros, symmetry)
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
    zeros=(),
    symmetry: str | None = None,
) -> tuple[Program, str]:
    """One random mutation whose result costs at most ``max_ops``; returns (child, kind).

    With ``templates``, ``GROW_WEIGHT`` of the probability mass goes to the structured growth
    moves of ``dsl.growth`` that suit ``symmetry`` (taken proportionally from the other kinds);
    without it the draws, and so the children, are exactly those of the plain mutation.
    ``zeros`` (where the target is exactly 0, as floats or (hi, lo) pairs in the growth
    variable) add ``grow_zero_factor``, which multiplies the output by (v - z).
    """
    if templates:
        kinds, p = _kinds(zeros, symmetry)
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
        elif kind in GROW_MOVES or kind == ZERO_MOVE:
            child = apply_growth(program, kind, rng, ops, zeros, symmetry)
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
