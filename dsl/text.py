"""The text form of a program, and its parser.

    # 2^x on [0, 1], degree 2
    c0 = param 0x1.0p+0
    c1 = param 0x1.62e42fefa39efp-1
    t = fma x c1 c0
    return t

One definition per line, ``NAME = OP ARG ...`` or ``NAME = const|param NUMBER``, then
``return NAME``.  ``x`` is the input.  Numbers are C99 hex floats (what ``format_program``
writes, so text round-trips bit for bit), decimal literals, ``inf`` or ``nan``; a number may also
stand directly as an operation's argument.  ``#`` starts a comment.  Parsing is a hand-written
tokenizer: nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import math
import functools
import re

from .ops import OPS
from .program import Node, Program

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# ASCII digits only: ``\d`` alone would also accept other scripts' digits (e.g. U+0661), which
# float() takes but float.fromhex() rejects with a ValueError.
_DEC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z", re.ASCII)
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?\Z", re.ASCII)
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class DSLSyntaxError(ValueError):
    """A problem in program text, with the 1-based line and column where it was found."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.message, self.line, self.column = message, line, column


def format_number(value: float) -> str:
    """Exact, round-trippable text for a float (C99 hex float; inf/nan by name)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value).hex()


def parse_number(token: str) -> float | None:
    low = token.lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    if _HEX.match(token):
        text = token if "p" in low else token + "p0"
        try:
            return float.fromhex(text)
        except OverflowError:  # too large for a float64: inf, as a decimal literal gives
            return -math.inf if token.startswith("-") else math.inf
    if _DEC.match(token):
        return float(token)
    return None


def format_program(program: Program, comment: str | None = None) -> str:
    lines = [f"# {line}" for line in comment.splitlines()] if comment else []
    names = ["x"]
    for i, node in enumerate(program.nodes[1:], start=1):
        name = f"v{i}"
        names.append(name)
        if node.is_leaf:
            lines.append(f"{name} = {node.op} {format_number(node.value)}")
        else:
            lines.append(f"{name} = {node.op} " + " ".join(names[a] for a in node.args))
    lines.append(f"return {names[program.output]}")
    return "\n".join(lines) + "\n"


def _tokens(line: str) -> list[tuple[str, int]]:
    """Whitespace-separated tokens with their 1-based columns; '=' is its own token."""
    out = []
    for m in re.finditer(r"=|[^\s=]+", line):
        out.append((m.group(0), m.start() + 1))
    return out


def parse_program(text: str) -> Program:
    """The program a text describes (memoized: the search reads the same texts again and again)."""
    if not isinstance(text, str):
        raise DSLSyntaxError("program text must be a string", 1, 1)
    return _parse(text)


@functools.lru_cache(maxsize=1 << 16)
def _parse(text: str) -> Program:
    nodes: list[Node] = [Node("x")]
    names: dict[str, int] = {"x": 0}
    output: int | None = None
    last_line = 1
    for lineno, raw in enumerate(text.splitlines(), start=1):
        last_line = lineno
        line = raw.split("#", 1)[0]
        toks = _tokens(line)
        if not toks:
            continue
        if output is not None:
            raise DSLSyntaxError("nothing may follow 'return'", lineno, toks[0][1])
        head, col = toks[0]
        if head == "return":
            if len(toks) != 2:
                raise DSLSyntaxError("'return' takes exactly one name", lineno, col)
            output = _operand(toks[1], names, nodes, lineno)
            continue
        if len(toks) < 3 or toks[1][0] != "=":
            raise DSLSyntaxError("expected 'NAME = OP ARG ...' or 'return NAME'", lineno, col)
        if not _NAME.match(head):
            raise DSLSyntaxError(f"invalid name {head!r}", lineno, col)
        if head in names:
            what = "the input" if head == "x" else "already defined"
            raise DSLSyntaxError(f"{head!r} is {what}; each name is assigned once", lineno, col)
        op, opcol = toks[2]
        args = toks[3:]
        if op in ("const", "param"):
            if len(args) != 1:
                raise DSLSyntaxError(f"'{op}' takes exactly one number", lineno, opcol)
            value = parse_number(args[0][0])
            if value is None:
                raise DSLSyntaxError(f"invalid number {args[0][0]!r}", lineno, args[0][1])
            nodes.append(Node(op, (), value))
        elif op in OPS:
            if len(args) != OPS[op].arity:
                raise DSLSyntaxError(
                    f"'{op}' takes {OPS[op].arity} argument(s), got {len(args)}", lineno, opcol
                )
            refs = tuple(_operand(a, names, nodes, lineno) for a in args)
            nodes.append(Node(op, refs))
        else:
            known = ", ".join(["const", "param", *OPS])
            raise DSLSyntaxError(f"unknown operation {op!r} (known: {known})", lineno, opcol)
        names[head] = len(nodes) - 1
    if output is None:
        raise DSLSyntaxError("missing 'return NAME'", last_line, 1)
    return Program(tuple(nodes), output)


def _operand(tok: tuple[str, int], names: dict[str, int], nodes: list[Node], lineno: int) -> int:
    word, col = tok
    if word in names:
        return names[word]
    value = parse_number(word)
    if value is not None:
        nodes.append(Node("const", (), value))
        return len(nodes) - 1
    if _NAME.match(word):
        raise DSLSyntaxError(f"undefined name {word!r}", lineno, col)
    raise DSLSyntaxError(f"invalid operand {word!r}", lineno, col)
