"""Which nodes of a float64-inside program (float in and out, double inside: the correctly
rounded kernels) can run on float32 values instead, with the same bits.

The tail: a correctly rounded kernel ends in its final cvt_f32 and a few selects on the input
alone (overflow, underflow, tiny arguments, the exceptions of ``fitness.cr.with_exceptions``).
Rounding to float commutes with a select, cvt_f32 is the rounding the conversion to float does
anyway, and a compare of the float32 input with a float32 constant is the same in float and in
double: so the SIMD export runs those nodes once on the float lanes after the double halves, and
the scalar C export runs them in float after its one conversion.

The head: a log frame's first nodes are float32 values whose float64 ops are all exact
(``live_lanes.float32_values``), so the same ops in float give the same values.

Pure analysis of a ``Program``; the exporters (``backends.export``, ``backends.export_simd``) write
the code.
"""

from __future__ import annotations

import math

from dsl.program import Program

from .live_lanes import float32_values, is_float32, live_inputs

SAME_FLOAT = 2.0**-149  # |x - c| below this (exactly, or rounded in double) only at x = c


def f32_exact(program: Program, j: int) -> bool:
    """Whether node ``j`` is a constant that is a float32 (or NaN)."""
    n = program.nodes[j]
    return n.op in ("const", "param") and is_float32(n.value)


def f32_operand(program: Program, j: int) -> str | None:
    """A compare operand as float lanes, where it equals its double value: x, |x|, -x, or a float32
    constant (None otherwise)."""
    n = program.nodes[j]
    if j == 0:
        return "x"
    if n.op in ("abs", "neg") and n.args == (0,):
        return n.op
    return "c" if f32_exact(program, j) else None


def f32_condition(program: Program, node) -> tuple | None:
    """``a < b`` of a select as a float-lane compare: ("lt", a, b), ("eq", c) for the exception test
    |x - c| < t with c a float32 and 0 < t <= 2^-149 (true only at x = c, false for NaN), or None."""
    a, b = node.args[0], node.args[1]
    na, nb = program.nodes[a], program.nodes[b]
    if (na.op == "abs" and nb.op in ("const", "param") and 0.0 < nb.value <= SAME_FLOAT):
        d = program.nodes[na.args[0]]
        if d.op == "sub" and 0 in d.args:
            other = d.args[1] if d.args[0] == 0 else d.args[0]
            if other != 0 and f32_exact(program, other) and not math.isnan(program.nodes[other].value):
                return ("eq", other)
    if f32_operand(program, a) and f32_operand(program, b):
        return ("lt", a, b)
    return None


def float32_tail(program: Program) -> tuple[int, tuple[int, ...]]:
    """(root, tail) of a float64-inside program: ``tail`` (inner first) is the chain of output nodes
    that can run on float lanes after the halves' rounding (a ``cvt_f32``, or a select whose
    condition ``f32_condition`` reads and one of whose values is x or a constant), ``root`` the node
    the chain starts from, the last one the halves compute.  An empty tail: root is the output."""
    chain: list[int] = []
    i = program.output
    simple = lambda j: j == 0 or program.nodes[j].op in ("const", "param")  # noqa: E731
    while True:
        n = program.nodes[i]
        if n.op == "cvt_f32":
            chain.append(i)
            i = n.args[0]
            continue
        if n.op == "select_lt" and f32_condition(program, n) is not None:
            c, d = n.args[2], n.args[3]
            if simple(c) != simple(d):
                chain.append(i)
                i = d if simple(c) else c
                continue
        break
    if program.nodes[i].op in ("x", "const", "param"):
        return program.output, ()  # nothing for the double lanes to compute
    return i, tuple(reversed(chain))


# The head: the mirror of the tail, on AVX2 (``export_simd``): only the values the rest of the body reads
# (the frontier) are widened per half; each costs a widening per half, so the head is taken only
# where it saves work.

def float32_head(program: Program, root: int, tail: tuple[int, ...]) -> tuple[frozenset[int], tuple[int, ...]]:
    """(head, frontier) of a float64-inside program's body (its nodes up to ``root``): ``head`` the
    op nodes shown to be float32 values on every live lane, ``frontier`` (ascending) those of them
    the rest of the body reads.  Both empty where moving them saves nothing: per 8 floats the head
    costs each of its ops once on float lanes and two widenings per frontier value (one less if
    the body no longer reads x), against each op twice in double lanes."""
    none: tuple[frozenset[int], tuple[int, ...]] = (frozenset(), ())
    if not tail:
        return none
    body = Program(program.nodes, root)
    facts = float32_values(body, live_inputs(program, tail))
    live = body.live()
    ops = {i: n for i, n in enumerate(body.nodes) if live[i] and n.op not in ("x", "const", "param")}
    head = {i for i in ops if facts[i] is not None}
    if not head or root in head:
        return none
    rest = [n for i, n in ops.items() if i not in head]
    frontier = tuple(sorted({j for n in rest for j in n.args if j in head}))
    x_read = any(0 in n.args for n in rest)
    if len(head) <= 2 * (len(frontier) - (0 if x_read else 1)):
        return none
    return frozenset(head), frontier


def cone(program: Program, i: int) -> set[int]:
    """Node ``i`` and every node it reads, directly or not."""
    seen, todo = set(), [i]
    while todo:
        j = todo.pop()
        if j not in seen:
            seen.add(j)
            todo.extend(program.nodes[j].args)
    return seen


def tail_nodes(program: Program, root: int, tail: tuple[int, ...]) -> set[int]:
    """The nodes the tail reads besides the root: its conditions' (x, |x|, x - c, constants) and
    its constant values; cheap, so the double-lane function recomputes them after the root's."""
    need = set(tail)
    for t in tail:
        n = program.nodes[t]
        for a in n.args:
            if a != root and a not in tail:
                need |= cone(program, a)
    return need - {0}
