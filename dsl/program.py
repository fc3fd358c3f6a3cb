"""Straight-line programs: a DAG of nodes in SSA order over one input ``x``.

A program is a tuple of nodes; node ``i`` may only read nodes ``j < i``.  Node 0 is always the
input ``x``.  Leaves are ``x``, literal constants (``const``: fixed by the program's author or by
folding) and trainable constants (``param``: fitted by the search).  The output is one node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .ops import LEAF_OPS, OPS


@dataclass(frozen=True)
class Node:
    """One SSA value.  ``value`` is used by ``const`` and ``param`` nodes only."""

    op: str
    args: tuple[int, ...] = ()
    value: float = 0.0

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS


@dataclass(frozen=True)
class Program:
    nodes: tuple[Node, ...]
    output: int = field(default=-1)

    def __post_init__(self) -> None:
        if not self.nodes or self.nodes[0].op != "x":
            raise ValueError("node 0 of a program must be the input x")
        out = self.output if self.output >= 0 else len(self.nodes) - 1
        object.__setattr__(self, "output", out)
        if not 0 <= out < len(self.nodes):
            raise ValueError(f"output index {out} out of range")
        for i, node in enumerate(self.nodes):
            if node.op == "x":
                if i != 0:
                    raise ValueError("the input x may appear only as node 0")
                continue
            if node.is_leaf:
                if node.args:
                    raise ValueError(f"node {i}: {node.op} takes no arguments")
                continue
            op = OPS.get(node.op)
            if op is None:
                raise ValueError(f"node {i}: unknown operation {node.op!r}")
            if len(node.args) != op.arity:
                raise ValueError(f"node {i}: {node.op} takes {op.arity} arguments, got {len(node.args)}")
            for a in node.args:
                if not 0 <= a < i:
                    raise ValueError(f"node {i}: argument {a} is not an earlier node")

    # --- trainable constants -------------------------------------------------------------
    @property
    def param_indices(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.nodes) if n.op == "param")

    @property
    def params(self) -> tuple[float, ...]:
        return tuple(self.nodes[i].value for i in self.param_indices)

    def with_params(self, values) -> "Program":
        idx = self.param_indices
        values = [float(v) for v in values]
        if len(values) != len(idx):
            raise ValueError(f"expected {len(idx)} parameter values, got {len(values)}")
        nodes = list(self.nodes)
        for i, v in zip(idx, values):
            nodes[i] = replace(nodes[i], value=v)
        return Program(tuple(nodes), self.output)

    # --- structure -----------------------------------------------------------------------
    def depends_on_x(self) -> tuple[bool, ...]:
        dep = []
        for node in self.nodes:
            if node.op == "x":
                dep.append(True)
            elif node.is_leaf:
                dep.append(False)
            else:
                dep.append(any(dep[a] for a in node.args))
        return tuple(dep)

    def live(self) -> tuple[bool, ...]:
        """Which nodes the output reads (x always counts as live)."""
        alive = [False] * len(self.nodes)
        alive[self.output] = True
        alive[0] = True
        for i in range(len(self.nodes) - 1, -1, -1):
            if alive[i]:
                for a in self.nodes[i].args:
                    alive[a] = True
        return tuple(alive)

    @property
    def n_ops(self) -> int:
        """Live operations, leaves excluded."""
        live = self.live()
        return sum(1 for i, n in enumerate(self.nodes) if live[i] and not n.is_leaf)


def cost(program: Program) -> float:
    """Operation-count cost: live operations that depend on x, each weighted by its table cost.

    Operations on constants alone are not counted: a compiler (or ``canonicalize``) folds them.
    """
    dep = program.depends_on_x()
    live = program.live()
    return float(
        sum(OPS[n.op].cost for i, n in enumerate(program.nodes) if live[i] and not n.is_leaf and dep[i])
    )


def dead_code_removed(program: Program) -> Program:
    live = program.live()
    remap: dict[int, int] = {}
    nodes: list[Node] = []
    for i, node in enumerate(program.nodes):
        if live[i]:
            remap[i] = len(nodes)
            nodes.append(Node(node.op, tuple(remap[a] for a in node.args), node.value))
    return Program(tuple(nodes), remap[program.output])


class Exact:
    """A program as a dictionary key that tells -0.0 from 0.0 (``Program`` equality does not: the
    two compare and hash equal as floats), for memoizing pure functions of programs."""

    __slots__ = ("program", "key", "_hash")

    def __init__(self, program: Program):
        self.program = program
        self.key = (program.output, tuple((n.op, n.args, n.value.hex() if n.is_leaf else "") for n in program.nodes))
        self._hash = hash(self.key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, Exact) and self.key == other.key

