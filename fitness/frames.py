"""Range-reduction frames: a fixed outer program that the search fills in with a core.

A full-range float32 function is rarely one polynomial.  A frame reduces the argument, calls the
core on the reduced argument, and reconstructs the result; the search evolves only the core, but
scores the *composed* program against the target on the full domain, so the reduction's own
rounding is part of what the core is tuned against.

``exp``: x = k ln2 + r with k = round(x / ln2) and r = x - k ln2 computed by a two-constant
Cody-Waite split with fma (k * LN2_HI is exact for |k| < 2**9 because LN2_HI has 15 significant
bits); the core approximates e^r on [-ln2/2, ln2/2]; the result is ldexp(core(r), k), which also
rounds subnormal results once.  Overflow (x > ~88.72) gives +inf and underflow (x < ~-103.97)
gives +0 through two branch-free selects; NaN propagates.

``compose(frame, core)`` inlines the core's nodes in place of the frame's ``core`` call: the core's
parameters stay, in order, the composed program's parameters, so fitting the composed program
fits the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dsl.program import Node, Program

LN2_HI = float.fromhex("0x1.62e4p-1")  # 15 significant bits: k * LN2_HI exact for |k| < 512
LN2_LO = float.fromhex("0x1.7f7d1cf79abcap-20")  # ln2 - LN2_HI, rounded
INV_LN2 = float.fromhex("0x1.715476p+0")
EXP_OVERFLOW = float.fromhex("0x1.62e42ep+6")  # largest float32 x with expf(x) finite
EXP_UNDERFLOW = float.fromhex("-0x1.9fe368p+6")  # below this expf(x) rounds to +0


@dataclass(frozen=True)
class Frame:
    name: str
    target: str
    core_domain: tuple[float, float]
    build: Callable[[Program], Program]
    description: str


class _Builder:
    """Appends nodes to a growing program; ``core`` inlines a core program."""

    def __init__(self) -> None:
        self.nodes: list[Node] = [Node("x")]

    def add(self, op: str, *args: int, value: float = 0.0) -> int:
        self.nodes.append(Node(op, tuple(args), value))
        return len(self.nodes) - 1

    def const(self, value: float) -> int:
        return self.add("const", value=value)

    def core(self, core: Program, arg: int) -> int:
        remap = {0: arg}
        live = core.live()
        for i, node in enumerate(core.nodes[1:], start=1):
            if not live[i]:
                continue
            remap[i] = self.add(node.op, *(remap[a] for a in node.args), value=node.value)
        return remap[core.output]

    def program(self, out: int) -> Program:
        return Program(tuple(self.nodes), out)


def _exp_frame(core: Program) -> Program:
    b = _Builder()
    k = b.add("round", b.add("mul", 0, b.const(INV_LN2)))
    r1 = b.add("fma", k, b.const(-LN2_HI), 0)
    r = b.add("fma", k, b.const(-LN2_LO), r1)
    p = b.core(core, r)
    y = b.add("ldexp", p, k)
    y = b.add("select_lt", b.const(EXP_OVERFLOW), 0, b.const(float("inf")), y)
    y = b.add("select_lt", 0, b.const(EXP_UNDERFLOW), b.const(0.0), y)
    return b.program(y)


FRAMES: dict[str, Frame] = {
    f.name: f
    for f in (
        Frame("exp", "exp", (-0.34657359027997264, 0.34657359027997264), _exp_frame,
              "x = k ln2 + r (Cody-Waite, fma), core ~ e^r, result ldexp(core, k); inf/0/NaN by select"),
    )
}


class FrameError(ValueError):
    pass


def get_frame(name: str) -> Frame:
    if name not in FRAMES:
        raise FrameError(f"unknown frame {name!r}; frames: {', '.join(FRAMES) or 'none'}")
    return FRAMES[name]


def compose(frame: str | Frame, core: Program) -> Program:
    f = get_frame(frame) if isinstance(frame, str) else frame
    return f.build(core)
