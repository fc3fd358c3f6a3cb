"""Canonical form and structural hash.

Two programs that differ only by the order of commutative operands, by dead code, by duplicated
sub-expressions, by how their SSA lines are numbered, or by operations on constants alone have
the same canonical form.  Operations whose inputs are all literal constants are folded (in the
program's dtype, so the folded value is bit-exact); sub-expressions of constants and trainable
parameters alone become one trainable parameter, since they span the same family of functions.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from .ops import OPS
from .program import Exact, Node, Program, dead_code_removed
from .semantics import apply_op, as_dtype


def _round_value(value: float, dt: np.dtype) -> float:
    return float(dt.type(value))


def _fold(program: Program, dt: np.dtype) -> Program:
    """Fold constant-only operations; collapse parameter-only sub-expressions into a parameter."""
    out: list[Node] = []
    remap: dict[int, int] = {}

    def push(node: Node) -> int:
        out.append(node)
        return len(out) - 1

    for i, node in enumerate(program.nodes):
        if node.op == "x":
            remap[i] = push(node)
            continue
        if node.is_leaf:
            remap[i] = push(Node(node.op, (), _round_value(node.value, dt)))
            continue
        args = tuple(remap[a] for a in node.args)
        fixed = [out[a].is_leaf and out[a].op != "x" for a in args]
        if all(fixed):
            value = apply_op(node.op, dt, *[dt.type(out[a].value) for a in args])
            if any(out[a].op == "param" for a in args):
                # a trainable value only seeds fitting: keep it finite so programs compare equal
                remap[i] = push(Node("param", (), float(value) if np.isfinite(value) else 1.0))
            else:
                remap[i] = push(Node("const", (), float(value)))
        elif node.op == "fma" and fixed[0] and fixed[1] and "param" in (out[args[0]].op, out[args[1]].op):
            # fma(k1, k2, e) with a trainable factor spans the same family as add(k, e).
            prod = apply_op("mul", dt, dt.type(out[args[0]].value), dt.type(out[args[1]].value))
            seed = float(prod) if np.isfinite(prod) else 1.0
            remap[i] = push(Node("add", (push(Node("param", (), seed)), args[2])))
        else:
            remap[i] = push(Node(node.op, args))
    return Program(tuple(out), remap[program.output])


def _digest(parts: tuple) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()


def canonicalize(program: Program, dtype="float32") -> Program:
    """The canonical form (memoized: programs are immutable, and a search canonicalizes the same
    ones again and again)."""
    return _canonical(Exact(program), as_dtype(dtype).name)


@functools.lru_cache(maxsize=1 << 16)
def _canonical(exact: Exact, dtype: str) -> Program:
    program = exact.program
    dt = as_dtype(dtype)
    prog = _fold(dead_code_removed(program), dt)
    prog = dead_code_removed(prog)
    nodes = prog.nodes
    # Value-aware digests order operands; params stay distinct slots (never merged).
    digest: list[bytes] = []
    for i, node in enumerate(nodes):
        if node.op == "x":
            digest.append(_digest(("x",)))
        elif node.op == "const":
            digest.append(_digest(("const", node.value.hex() if np.isfinite(node.value) else repr(node.value))))
        elif node.op == "param":
            digest.append(_digest(("param", node.value.hex() if np.isfinite(node.value) else repr(node.value))))
        else:
            digest.append(None)  # filled below, after the arguments are ordered
            args = _ordered_args(node, digest)
            digest[i] = _digest((node.op, tuple(digest[a] for a in args)))
    # Emit in DFS post-order from the output, merging equal non-param nodes.  Equality is hash-consing
    # on the emitted arguments: two nodes merge when they have one op and the same (already merged)
    # arguments.  The value-aware digests only order operands: two parameters holding equal values
    # are still distinct slots, and so are the sub-expressions that read them.
    new_nodes: list[Node] = [Node("x")]
    emitted: dict[int, int] = {0: 0}
    by_key: dict[tuple, int] = {("x",): 0}

    def emit(i: int) -> int:
        if i in emitted:
            return emitted[i]
        node = nodes[i]
        args = _ordered_args(node, digest) if not node.is_leaf else ()
        new_args = tuple(emit(a) for a in args)
        if node.op == "const":
            key = ("const", node.value.hex() if np.isfinite(node.value) else repr(node.value))
        else:
            key = (node.op, new_args)
        if node.op != "param" and key in by_key:
            emitted[i] = by_key[key]
            return emitted[i]
        new_nodes.append(Node(node.op, new_args, node.value))
        emitted[i] = len(new_nodes) - 1
        if node.op != "param":
            by_key[key] = emitted[i]
        return emitted[i]

    out = emit(prog.output)
    return Program(tuple(new_nodes), out)


def _ordered_args(node: Node, digest: list) -> tuple[int, ...]:
    k = OPS[node.op].commutative_prefix
    if k < 2:
        return node.args
    head = sorted(node.args[:k], key=lambda a: digest[a])
    return tuple(head) + node.args[k:]


def structural_hash(program: Program, dtype="float32") -> str:
    """Hash of the canonical structure with parameter values masked (literal constants kept)."""
    return _structural_hash(Exact(program), as_dtype(dtype).name)


@functools.lru_cache(maxsize=1 << 16)
def _structural_hash(exact: Exact, dtype: str) -> str:
    canon = canonicalize(exact.program, dtype)
    keys: list[bytes] = []
    uses = [0] * len(canon.nodes)
    for node in canon.nodes:
        for a in node.args:
            uses[a] += 1
    for i, node in enumerate(canon.nodes):
        if node.op == "x":
            keys.append(_digest(("x",)))
        elif node.op == "param":
            # with its number of uses: one constant used twice (c x + c) spans another family
            # than two constants (a x + b)
            keys.append(_digest(("param", uses[i])))
        elif node.op == "const":
            keys.append(_digest(("const", repr(node.value))))
        else:
            k = OPS[node.op].commutative_prefix
            child = [keys[a] for a in node.args]
            if k >= 2:
                child = sorted(child[:k]) + child[k:]
            keys.append(_digest((node.op, tuple(child))))
    return keys[canon.output].hex()
