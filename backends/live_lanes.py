"""What a float64-inside kernel's body must get right, lane by lane: the inputs whose result it
decides, the range of its values there, and where a NaN input stays NaN.

Why: a correctly rounded kernel ends in selects on x (overflow, underflow, log's domain errors)
that the SIMD export runs on float lanes after the body (``export_simd.float32_tail``).  On the
lanes those selects take, the body's value is never read; on the others x lies in one interval,
and over it an exp frame's k is a small integer and a log frame's frexp argument is a normal
nonzero number.  The vector export can then drop what only the dead lanes would need: ldexp's
clamp and NaN blend, frexp's zero, infinity and subnormal fix-ups (``export_simd._LIVE_FORMS``).

Every fact here over-approximates: a wider interval, or "unbounded", only costs the cheaper forms.
Both analyses are ``Semantics`` walked by the one fold, with an entry for every op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsl.interpret import Semantics, trace
from dsl.ops import OPS
from dsl.program import Program

Range = tuple[float, float] | None  # [lo, hi] holding the node's value on every live non-NaN lane


@dataclass(frozen=True)
class LiveInputs:
    """The inputs whose result the body decides: x in [lo, hi] (closed, over-approximated), and NaN
    when ``nan`` (a tail select that takes NaN lanes makes it False)."""

    lo: float = -math.inf
    hi: float = math.inf
    nan: bool = True


def _x_operand(program: Program, j: int) -> tuple[str, float] | None:
    """A compare operand that is x, |x|, -x or a constant, as (kind, constant value)."""
    n = program.nodes[j]
    if j == 0:
        return ("x", 0.0)
    if n.op in ("abs", "neg") and n.args == (0,):
        return (n.op, 0.0)
    if n.op in ("const", "param") and not math.isnan(n.value):
        return ("c", n.value)
    return None


def _true_set(a: tuple[str, float], b: tuple[str, float]) -> tuple[float, float, bool] | None:
    """``a < b`` as a set of x: (lo, hi, True) for the open interval (lo, hi), (lo, hi, False) for
    what lies outside [lo, hi] (|x| > c); None for anything else (no restriction is read from it)."""
    (ka, ca), (kb, cb) = a, b
    inf = math.inf
    if kb == "c" and ka in ("x", "abs", "neg"):
        return {"x": (-inf, cb, True), "abs": (-cb, cb, True), "neg": (-cb, inf, True)}[ka]
    if ka == "c" and kb in ("x", "abs", "neg"):
        return {"x": (ca, inf, True), "abs": (-ca, ca, False), "neg": (-inf, -ca, True)}[kb]
    return None


def _closed_hull(lo: float, hi: float, inside: bool, of_set: bool) -> tuple[float, float] | None:
    """A closed interval holding the set (``of_set``) or its complement, when one is an interval."""
    if inside == of_set:
        return (lo, hi)
    if lo == -math.inf:
        return (hi, math.inf)
    if hi == math.inf:
        return (-math.inf, lo)
    return None


def live_inputs(program: Program, tail: tuple[int, ...]) -> LiveInputs:
    """The inputs the body's value reaches the output on, given the float32 tail's nodes (each
    a ``cvt_f32`` or a select one of whose values is x or a constant and the other the chain)."""
    lo, hi, nan = -math.inf, math.inf, True
    simple = lambda j: j == 0 or program.nodes[j].op in ("const", "param")  # noqa: E731
    for t in tail:
        n = program.nodes[t]
        if n.op != "select_lt":
            continue
        a, b = _x_operand(program, n.args[0]), _x_operand(program, n.args[1])
        cond = _true_set(a, b) if a and b else None
        if cond is None:
            continue
        # the body is dropped where a < b holds (live: the complement), or kept only there (NaN,
        # whose compare is false, is then dead too)
        kept_where_true = not simple(n.args[2])
        nan = nan and not kept_where_true
        hull = _closed_hull(*cond, of_set=kept_where_true)
        if hull is not None:
            lo, hi = max(lo, hull[0]), min(hi, hull[1])
    return LiveInputs(lo, hi, nan)


# float32's normal exponents: 2**k for these is one float built from k's bits
NORMAL32_K = (-126.0, 127.0)


def _integral_range(program: Program, j: int, ranges: list[Range]) -> Range:
    """The exact range of node ``j`` if it is an integer on every lane (a round or floor, or one
    plus or minus an integral constant, exact below 2^24), else None."""
    n = program.nodes[j]
    if n.op in ("round", "floor"):
        return ranges[j]
    if n.op in ("add", "sub"):
        a, b = n.args
        cb = program.nodes[b]
        inner = _integral_range(program, a, ranges)
        if inner is not None and cb.op == "const" and float(cb.value).is_integer():
            lo, hi = (inner[0] + cb.value, inner[1] + cb.value) if n.op == "add" else (inner[0] - cb.value, inner[1] - cb.value)
            return (lo, hi) if max(abs(lo), abs(hi)) < 2.0**24 else None
    return None


def one_multiply_ldexps(program: Program) -> frozenset[int]:
    """The ldexp nodes of a float32 program whose k is an integer within float32's normal exponents
    for every input (the sigmoid frame clamps x first: ``_Ranges`` reads min and max selects) and
    whose a is NaN wherever x is: there ldexp is one multiply by 2**k built from k's bits.  The C
    and SIMD exports use that form."""
    live = program.live()
    ranges = node_ranges(program, LiveInputs(), "float32")
    nan_x = nan_follows_x(program)
    out = set()
    for i, n in enumerate(program.nodes):
        if live[i] and n.op == "ldexp":
            a, k = n.args
            kr = _integral_range(program, k, ranges)
            if kr is not None and NORMAL32_K[0] <= kr[0] and kr[1] <= NORMAL32_K[1] and nan_x[a]:
                out.add(i)
    return frozenset(out)


def _out(lo: float, hi: float) -> Range:
    """[lo, hi] widened by an ulp each way (the endpoints were rounded to nearest), or None when
    not a finite interval."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    return (math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf))


def _both(f):
    return lambda *a: None if any(v is None for v in a) else f(*a)


def _mul(a, b):
    p = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return _out(min(p), max(p))


def _abs(a):
    if a[0] >= 0:
        return a
    if a[1] <= 0:
        return (-a[1], -a[0])
    return (0.0, max(-a[0], a[1]))


def _div(a, b):
    if b[0] <= 0 <= b[1]:
        return None
    q = (a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1])
    return _out(min(q), max(q))


def _finite(r: Range) -> bool:
    return r is not None and math.isfinite(r[0]) and math.isfinite(r[1])


class _Ranges(Semantics):
    """Interval bounds of each node over x in [lo, hi], None where unknown.  x's interval may be
    unbounded on one side or both; it is then bounded only by clamps: a select of its own compare's
    operands (min or max, ``select_lt(a, b, a, b)`` or ``select_lt(a, b, b, a)``) of x, or of such a
    clamp, and a constant takes the constant's bound (so the exp-shaped frames that clamp x first get
    their k bounded for every input).  Only x and its clamps: they are NaN only where x is, so the
    bound holds on every other lane; every other op takes an unbounded interval as unknown."""

    def __init__(self, lo: float, hi: float):
        self.x = _out(lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (lo, hi)
        self._x_clamps = {0}  # x and its clamps by constants
        self._consts: set[int] = set()

    def input(self):
        return self.x

    def const(self, i, value):
        self._consts.add(i)
        return (value, value) if math.isfinite(value) else None

    def apply(self, i, node, args):
        a = node.args
        if node.op == "select_lt" and args[0] is not None and args[1] is not None:
            pick = min if (a[2], a[3]) == (a[0], a[1]) else max if (a[2], a[3]) == (a[1], a[0]) else None
            if pick is not None and {a[0], a[1]} & self._x_clamps and {a[0], a[1]} & self._consts:
                self._x_clamps.add(i)  # min or max of x (or a clamp of it) and a constant
                return (pick(args[0][0], args[1][0]), pick(args[0][1], args[1][1]))
        return self.ops[node.op](*[r if _finite(r) else None for r in args])

    ops = {
        "add": _both(lambda a, b: _out(a[0] + b[0], a[1] + b[1])),
        "sub": _both(lambda a, b: _out(a[0] - b[1], a[1] - b[0])),
        "mul": _both(_mul),
        "div": _both(_div),
        "fma": _both(lambda a, b, c: (lambda p: p and _out(p[0] + c[0], p[1] + c[1]))(_mul(a, b))),
        "neg": _both(lambda a: (-a[1], -a[0])),
        "sqrt": _both(lambda a: _out(math.sqrt(a[0]), math.sqrt(a[1])) if a[0] >= 0 else None),
        "abs": _both(_abs),
        "copysign": _both(lambda a, b: (lambda m: (-m[1], m[1]))(_abs(a))),
        "floor": _both(lambda a: (float(math.floor(a[0])), float(math.floor(a[1])))),
        "round": _both(lambda a: (float(round(a[0])), float(round(a[1])))),  # half to even, monotone
        "ldexp": lambda a, k: None,
        "ldexp2": lambda a, k: None,
        "frexp_m": _both(lambda a: (-1.0, 1.0)),
        "frexp_e": _both(lambda a: (-1100.0, 1100.0)),
        "select_lt": lambda a, b, c, d: None if c is None or d is None else (min(c[0], d[0]), max(c[1], d[1])),
        # rounding to float32 moves a value by at most 2^-24 of itself or 2^-150: widen each end outward
        "cvt_f32": _both(lambda a: _out(a[0] - abs(a[0]) * 2.0**-23 - 2.0**-149, a[1] + abs(a[1]) * 2.0**-23 + 2.0**-149)
                         if abs(a[0]) < 3e38 and abs(a[1]) < 3e38 else None),
    }


def _rounded32(f):
    """``f``'s interval widened by float32's rounding of the result (2^-24 of it, or 2^-150)."""
    def g(*args):
        r = f(*args)
        if r is None or not (abs(r[0]) < 3e38 and abs(r[1]) < 3e38):
            return None
        return _out(r[0] - abs(r[0]) * 2.0**-23 - 2.0**-149, r[1] + abs(r[1]) * 2.0**-23 + 2.0**-149)
    return g


class _Ranges32(_Ranges):
    """The same bounds for a program computed in float32: every op that may round widens its
    interval by that rounding (the real-number bounds alone hold only for float64's far smaller
    roundings, which ``_out``'s one-ulp widening covers)."""

    ops = {op: (f if op in ("neg", "abs", "copysign", "floor", "round", "select_lt", "frexp_e") else _rounded32(f))
           for op, f in _Ranges.ops.items()}


def _any_arg(*args: bool) -> bool:
    return any(args)


class _NanFollows(Semantics):
    """Whether a node is NaN on every lane where x is NaN (then so is whatever it scales: an
    ldexp of it needs no NaN blend for a k that is NaN there)."""

    def input(self):
        return True

    def const(self, i, value):
        return False

    ops = {**{op: _any_arg for op in ("add", "sub", "mul", "div", "fma", "neg", "sqrt", "abs", "floor", "round",
                                  "ldexp", "ldexp2", "cvt_f32")},
           "copysign": lambda a, b: a,
           "frexp_m": lambda a: a,
           "frexp_e": lambda a: False,  # 0 for NaN
           # a compare with a NaN operand is false (d); otherwise either value may be taken
           "select_lt": lambda a, b, c, d: d if (a or b) else (c and d)}


for _table in (_Ranges.ops, _Ranges32.ops, _NanFollows.ops):
    assert set(_table) == set(OPS), "every op in dsl.ops.OPS needs an entry in each live-lane analysis"


def node_ranges(program: Program, live: LiveInputs, dtype: str = "float64") -> list[Range]:
    """Each node's range over the live inputs (None: unbounded, unknown, or a dead node), for a
    program computed in ``dtype``."""
    return [r if _finite(r) else None for r in trace(program, (_Ranges32 if dtype == "float32" else _Ranges)(live.lo, live.hi))]


def nan_follows_x(program: Program) -> list[bool]:
    """Each node: NaN wherever x is NaN (False for dead nodes)."""
    return [bool(v) for v in trace(program, _NanFollows())]


# --- float32 values inside a float64 body --------------------------------------------------------
# A correctly rounded log frame starts with frexp of the float32 input, a select by sqrt(1/2) and
# m - 1: every one of those values is a float32, so each float64 op there is exact, and the same op
# on float lanes gives the same value.  The SIMD export can then run that head once on the 8 (16)
# float lanes instead of once per double half (``export_simd.float32_head``).
#
# A fact is None (not shown to be a float32 on every live lane) or (lo, hi, integral): the value is
# a float32 on every live lane, in [lo, hi] wherever it is not NaN (exact bounds: no rounding
# happens; lanes where x is NaN included, where frexp_e gives 0), and an integer there when
# ``integral``.  Every arithmetic op needs a proof that its exact result is a float32: then
# float64's rounding and float32's both return it.
F32Fact = tuple[float, float, bool] | None
_F32_MAX = float(3.4028234663852886e38)


def is_float32(v: float) -> bool:
    """Whether the double ``v`` is a float32 value (NaN and the infinities included)."""
    with np.errstate(over="ignore"):
        return math.isnan(v) or float(np.float32(v)) == v


def _hull(*facts) -> tuple[float, float]:
    return min(f[0] for f in facts), max(f[1] for f in facts)


def _frexp_e_range(lo: float, hi: float) -> tuple[float, float]:
    if 0 < lo and math.isfinite(hi):
        return float(math.frexp(lo)[1]), float(math.frexp(hi)[1])
    return -149.0, 129.0  # any float32 (0 for 0, inf and NaN)


def _exact_difference(a: tuple, b: tuple) -> tuple[float, float] | None:
    """[lo, hi] of a - b where every such difference is exact in float32 (Sterbenz: b/2 <= a <= 2b
    for a, b of one sign; or two integers whose difference stays below 2^24), else None."""
    if not all(map(math.isfinite, (a[0], a[1], b[0], b[1]))):
        return None
    lo, hi = a[0] - b[1], a[1] - b[0]
    if a[2] and b[2] and max(abs(lo), abs(hi)) < 2.0**24:
        return lo, hi
    if 0 < b[0] and b[1] / 2 <= a[0] and a[1] <= 2 * b[0]:
        return lo, hi
    if b[1] < 0 and 2 * b[1] <= a[0] and a[1] <= b[0] / 2:
        return lo, hi
    return None


class _Float32Values(Semantics):
    """The facts above, by the one fold: only ops with a rule here keep a node in float32."""

    def __init__(self, live: LiveInputs, program: Program):
        self.x = (live.lo, live.hi, False)
        self.program, self.nan = program, live.nan

    def input(self):
        return self.x

    def const(self, i, value):
        if not is_float32(value):
            return None
        if math.isnan(value):
            return (-math.inf, math.inf, False)
        return (value, value, math.isfinite(value) and float(value).is_integer())

    def apply(self, i, node, args):
        if any(a is None for a in args):
            return None
        op, idx = node.op, node.args
        if op == "neg":
            return (-args[0][1], -args[0][0], args[0][2])
        if op == "abs":
            lo, hi, k = args[0]
            return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)), k)
        if op == "copysign":
            m = max(abs(args[0][0]), abs(args[0][1]))
            return (-m, m, args[0][2])
        if op in ("round", "floor"):
            f = (lambda v: float(round(v))) if op == "round" else (lambda v: float(math.floor(v)))
            lo, hi, _ = args[0]
            return (f(lo) if math.isfinite(lo) else lo, f(hi) if math.isfinite(hi) else hi, True)
        if op == "select_lt":  # the compare reads float32 values: the same in either precision
            lo, hi = _hull(args[2], args[3])
            return (lo, hi, args[2][2] and args[3][2])
        if op == "frexp_m":
            lo, hi, _ = args[0]
            if 0 < lo and hi < math.inf:
                return (0.5, 1.0, False)
            if -math.inf < lo and hi < 0:
                return (-1.0, -0.5, False)
            return (-math.inf, math.inf, False)  # 0, inf and NaN give a itself
        if op == "frexp_e":
            lo, hi = _frexp_e_range(args[0][0], args[0][1])
            if self.nan:  # 0 where x is NaN: a number there, and in the range with the others
                lo, hi = min(lo, 0.0), max(hi, 0.0)
            return (lo, hi, True)
        if op == "add" and idx[0] == idx[1]:  # 2a: exact unless it overflows float32
            lo, hi, k = args[0]
            return (2 * lo, 2 * hi, k) if max(abs(lo), abs(hi)) <= _F32_MAX / 2 else None
        if op == "sub" and self.program.nodes[idx[1]].op == "round" and self.program.nodes[idx[1]].args == (idx[0],):
            return (-0.5, 0.5, False)  # a - round(a) is exact for every float
        if op in ("add", "sub"):
            b = args[1] if op == "sub" else (-args[1][1], -args[1][0], args[1][2])
            d = _exact_difference(args[0], b)
            return None if d is None else (d[0], d[1], args[0][2] and b[2])
        return None  # mul, div, fma, sqrt, ldexp, ldexp2, cvt_f32: no rule (yet)


def float32_values(program: Program, live: LiveInputs) -> list[F32Fact]:
    """Each node's fact over the live inputs (None for dead nodes and for those not shown to be a
    float32 on every live lane)."""
    return trace(program, _Float32Values(live, program))
