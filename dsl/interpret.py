"""The one interpreter: a fold over a program's live nodes, in SSA order, given an implementation.

Every evaluator of the project is an implementation of ``Semantics`` walked by ``fold``: numpy
(``dsl.semantics``, ``backends.numpy_backend``), LLVM IR building (``backends.llvm_backend``),
JAX tracing (``backends.jax_backend``), source export (``backends.export``), mpmath and
double-double (``fitness.real_error``, ``fitness.double_double``) and interval Taylor series
(``fitness.bounds``).  An implementation says what the input, a literal constant and a trainable
constant are, and applies an operation to its arguments' values; the fold never changes.  A new
op is one entry in ``dsl.ops`` plus one entry in each implementation's table (every table is
checked against ``dsl.ops.OPS`` by the every-op agreement tests).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .program import Node, Program


class Semantics:
    """What one evaluator makes of each kind of node.

    ``ops`` maps an op name to a function of its arguments' values; ``apply`` may be overridden
    where an op needs the node itself (its index, which arguments repeat) or evaluator state.
    ``param`` receives ``k``, the constant's position among all the program's parameters (dead
    ones included, as ``Program.params`` counts them), so a vector of parameter values can stand
    in for the program's own.
    """

    ops: Mapping[str, Callable[..., Any]] = {}

    def input(self) -> Any:
        raise NotImplementedError

    def const(self, i: int, value: float) -> Any:
        raise NotImplementedError

    def param(self, i: int, value: float, k: int) -> Any:
        return self.const(i, value)

    def apply(self, i: int, node: Node, args: list) -> Any:
        return self.ops[node.op](*args)


def fold(program: Program, sem: Semantics) -> Any:
    """The value of the program's output under ``sem`` (dead nodes are never evaluated)."""
    live = program.live()
    values: list = [None] * len(program.nodes)
    k = 0
    for i, node in enumerate(program.nodes):
        if node.op == "param":
            if live[i]:
                values[i] = sem.param(i, node.value, k)
            k += 1
        elif not live[i]:
            continue
        elif node.op == "x":
            values[i] = sem.input()
        elif node.op == "const":
            values[i] = sem.const(i, node.value)
        else:
            values[i] = sem.apply(i, node, [values[a] for a in node.args])
    return values[program.output]


def trace(program: Program, sem: Semantics) -> list:
    """Like ``fold``, but every live node's value (dead nodes: None), for tests and diagnostics."""
    out: list = [None] * len(program.nodes)

    class _Recording(Semantics):
        def input(self):
            out[0] = sem.input()
            return out[0]

        def const(self, i, value):
            out[i] = sem.const(i, value)
            return out[i]

        def param(self, i, value, k):
            out[i] = sem.param(i, value, k)
            return out[i]

        def apply(self, i, node, args):
            out[i] = sem.apply(i, node, args)
            return out[i]

    fold(program, _Recording())
    return out
