"""Range-reduction frames: a fixed outer program that the search fills in with a core.

A full-range float32 function is rarely one polynomial.  A frame reduces the argument, calls the
core on the reduced argument, and reconstructs the result; the search evolves only the core, but
scores the *composed* program against the target on the full domain, so the reduction's own
rounding is part of what the core is tuned against.  Every frame also produces the target's
special values (C99 Annex F, see ``fitness.special``) with branch-free selects, so a composed
program is a complete float32 function: NaN in gives NaN out, infinities and zeros are right.

``exp``: x = k ln2 + r with k = round(x / ln2) and r = x - k ln2 computed by a two-constant
Cody-Waite split with fma (k * LN2_HI is exact for |k| < 2**9 because LN2_HI has 15 significant
bits); the core approximates e^r on [-ln2/2, ln2/2]; the result is core(r) * 2^k, which also
rounds subnormal results once: ``ldexp2`` (two float32 multiplies by 2^(k>>1) and 2^(k - (k>>1))),
equal to a single-rounding ldexp here because core(r) * 2^(k>>1) stays normal (core(r) near 1,
|k| <= 152), and it needs no double lanes, which halved the vector width of the exported C.  A
program composed for float64 (``compose(..., float64=True)``, ``--mode cr``) scales with one
``ldexp`` instead (2^k is a normal double, so the product is exact: the same values, and one
vscalefpd in place of two).  Overflow (x > ~88.72) gives +inf and underflow (x < ~-103.97)
gives +0 through two branch-free selects; NaN propagates.

``exp2``: x = k + r with k = round(x) and r = x - k (exact); the core approximates 2^r on
[-1/2, 1/2]; the result is ldexp(core(r), k).  x >= 128 gives +inf, x < -151 (and -inf) gives +0.

``exp10``: as ``exp`` with log10(2) for ln2: k = round(x log2(10)), r = x - k log10(2) by a
two-constant Cody-Waite split (LOG10_2_HI has 15 significant bits, so k * LOG10_2_HI and the first
fma are exact); the core approximates 10^r on [-log10(2)/2, log10(2)/2]; the result is
ldexp(core(r), k).  x > 0x1.344134p+5 (~38.53) gives +inf, x < -0x1.693c6ap+5 (~-45.15) gives +0.

``sigmoid``: 1/(1 + E), E = e^-x, computed as S / (S + S E) with S = 2^-64 for x clamped to
[-105, 43] (every result beyond is +0 or 1): S E = (1 + s) 2^(k - 64) comes from the exp reduction
with the core approximating s = e^r - 1 (rounded relative to s, not to 1 + s), carried in two
floats: 1 + s and its exact remainder (Fast2Sum), plus the reduction's own rounding of r recovered
by an fma.  On the clamped range k - 64 lies in [-126, 88], so S E is one exact scaling and never
overflows, and the exports build 2^(k - 64) from its bits (``backends.live_lanes``).  S + S E and
its exact remainder come from a Fast2Sum ordered by max and min; the quotient is rounded once (a
division, into the subnormals below x = -87.3) and corrected by its exact fma residual and the low
parts: a single float32 E would let its relative rounding error (up to 2^-24 / 0.7) through to the
result together with the division's, more than 1 ULP at E = 0.3.  One formula for every input: no
branch, no select but the clamps (which keep NaN); sigmoid(-inf) = +0, sigmoid(+inf) = 1.

``sigmoid_f64`` (float64 evaluation, ``--mode cr``): the sigmoid as n / (1 + e) with e = e^-|x| from
the exp reduction and the core ~ e^r, all in double: every rounding inside is 2^-53, so none of the
float32 frame's two-float bookkeeping.  Near 0, for x an odd multiple of 2^-23 (2^-24 below 0),
1/2 + x/4 is exactly a float32 rounding midpoint and the exact value lies only x^3/48 from it, on the
side of -x: for |x| < 2^-11 the frame computes 1/2 + x/4 (exact) and steps one double ulp that way.

``expm1``: e^x - 1 = (2^k - 1) + 2^k s with s = e^r - 1 in two floats as for tanh (core
(e^r - 1 - r)/r^2); 2^k - 1 and its sum with 2^k s_hi are split exactly by 2Sum, so that the
cancellation of 1 + 2s at k = 1 (s near -0.29) costs nothing and the result rounds once; from
k = 65 the result is 2^k (1 + s) as for exp.  +inf above 88.72, -1 below -17.33, x for |x| < 2^-25.

``tanh``: tanh |x| = (1 - e)/(1 + e) with e = e^(-2|x|) in two floats as for the sigmoid, but
the core g approximates (e^r - 1 - r)/r^2 and the frame forms s = r + r^2 g itself (Fast2Sum), so
that 1 - e = -s for small |x| keeps s's relative accuracy (tanh x ~ x); the quotient is corrected by
its exact residual, with 1/(1 + e) = (1 + y0)/2, and copysign puts the sign back (+-0 kept).

``cbrt``: |x| = m 2^e (frexp) = t 2^(3q) with t = m 2^r in [1/2, 4); the core approximates
cbrt(t) only roughly (about 2^-13), and one Newton step whose residual y0^3 - t is computed from
the exact square of y0 (fma) rounds once; sign(x) and 2^q are put back exactly.

``sin`` and ``cos`` (float64 evaluation, ``--mode cr``: float32 in and out): x/pi = n + g with n an
integer and |g| <= 1/2, sin x = (-1)^n sin(pi g), and the core approximates S(v) = sin(pi v / 2) at
v = 2g in [-1, 1]; cos x = sin(x + pi/2) is the same with x/pi + 1/2.  The reduction is exact for
every finite float32 without a table.  For |x| < 2^20, q = x INV_PI_HI (1/pi to 29 bits) is exact
in float64, q - round(q) too (Sterbenz), and one fma adds x INV_PI_LO, so g rounds once relative to
itself (the 1/pi bits left out weigh 2^20 * 6.5e-26).  From 2^20 (x = m 2^e, e up to 104), 1/(2 pi)
is split into seven 29-bit chunks TURN_0..TURN_6 (2^-1 to 2^-203): each x TURN_i is exact, so is
its fraction t_i = p - round(p), and x/(2 pi) mod 1 = sum t_i to 2^-75, summed as a float64 and its
exact remainders (2Sum); the integer part of the sum goes exactly, doubling gives x/pi mod 2.  A
vector export computes that seven-chunk arm only when a lane needs it (``backends.export_simd``: a
select's long arm behind a branch).  inf gives NaN (inf - inf), x for |x| < 2^-12 (sin, -0 kept)
and 1 (cos) by select.

``erf_small``, ``erf_mid`` and ``erf_tail``: the three pieces of ``erf``, a *split* (``SPLITS``): no
single float32 formula of a dozen operations is within 1 ULP of erf on [0, 4] (BENCHMARKS
``erf_conditioning``), so |x| < 1, [1, 2) and [2, inf) get a core each, searched apart, and
``compose_split`` joins the composed pieces with one select per bound on |x|.  ``erf_small``: the
core approximates erf on [0, 1] at a = |x|, copysign puts the sign back (+-0 kept when
core(0) = 0).  ``erf_mid`` and ``erf_tail``: the core approximates erfc(a) at t = a - 1.5 (resp.
a - 3, exact by Sterbenz on the piece), the result 1 - core rounds once, and since erfc(a) <= 0.16
there, the core's own rounding costs at most 1/8 ULP of the result; a > 0x1.f5a888p+1 (~3.9192,
where erf rounds to 1) and +-inf give +-1 by select, NaN stays NaN.  (One erfc core on all of
[1, 3.92] needs degree 14 in float32; the search, 600 s, stalled at 1.07 ULP with 20 operations,
where two cores of degree 9 and 10 each sit inside its usual reach.)

``log``: x = m 2^e with m = frexp_m(x) in [1/2, 1) (exact, subnormals included), renormalized to
[sqrt(1/2), sqrt(2)) by doubling m (and decrementing e) when m < sqrt(1/2); t = m - 1 is exact
(Sterbenz).  The core g approximates (log1p(t) - t) / t^2 on [sqrt(1/2) - 1, sqrt(2) - 1], so
log1p(t) = t + t^2 g(t): the frame adds the exact t itself and the core only supplies the small,
smooth correction (a polynomial in t of degree ~8 reaches float32 accuracy).  The result
e ln2 + t + c, with c = t^2 g + e LN2_LO, is summed in one of two orders, picked by a select:
for |e| <= 1, e LN2_HI + t is exact (both are multiples of 2^-24 and the sum is below 2 in
magnitude), so y = (e LN2_HI + t) + c rounds once; for |e| >= 2, y = e LN2_HI + (t + c), where
the rounding of t + c is at most 1/8 ulp of y.  x = +-0 gives -inf, x < 0 (and -inf) NaN, +inf
+inf, NaN NaN.

``log10``: the same reduction; the core g approximates (log10(1 + t) - t/ln10) / t^2 and
y = (e LOG10_2_HI + t INV_LN10_HI) + (remainders + e LOG10_2_LO + t INV_LN10_LO + t^2 g): the first
sum is split exactly by Fast2Sum (e LOG10_2_HI is exact and at least 0.30 in magnitude when e != 0,
above |t/ln10| <= 0.18) and the product's rounding is recovered by an fma, so y rounds once.

``log1p``: u = 1 + x rounded and c = (1 + x) - u exactly (2Sum); the log frame on u, with c/u
(one division; it is below half an ulp of u, relative) added among the small terms, so that for
small x, log1p x = t + t^2 g + c/u keeps x's own low bits; |x| < 2^-25 gives x (signed zeros kept).

``log2``: the same reduction; the core g approximates (log2(1 + t) - t/ln2) / t^2, and
y = e + (t INV_LN2_HI + (t INV_LN2_LO + t^2 g)) with fma (e is an integer, the inner sum rounds
once relative to |y| >= 1/2 when e != 0).

Frame constants are named (``Frame.constants``) and can be overridden per composition
(``compose(frame, core, constants={...})``), which makes a frame a family the search (or a user)
can explore: the split of ln2 into LN2_HI + LN2_LO, the renormalization point, the thresholds.
Constants whose exactness the reduction relies on (LN2_HI needs at most 15 significant bits for
k * LN2_HI to be exact) are checked.  ``compose_trainable(frame, core, names)`` turns the named
constants into ``param`` nodes, so that one fit tunes them with the core; ``split_params`` maps
the fitted parameters back to (core parameters, frame constants).  A search run with
``--frame-evolve`` uses both: each candidate carries its own frame constants, the fitter tunes the
low parts (``FITTED``) with the core, and mutations move the discrete choices (``MOVED``: the bits
kept in LN2_HI, the log reduction's SPLIT, the float32 standing for 1/ln2) between values the
exactness checks accept.  Without it, ``compose`` keeps the parameters exactly the core's.

``compose(frame, core)`` inlines the core's nodes in place of the frame's ``core`` call: the core's
parameters stay, in order, the composed program's parameters, so fitting the composed program
fits the core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Mapping

import numpy as np

from dsl.program import Node, Program

LN2_HI = float.fromhex("0x1.62e4p-1")  # 15 significant bits: k * LN2_HI exact for |k| < 512
LN2_LO = float.fromhex("0x1.7f7d1cf79abcap-20")  # ln2 - LN2_HI, rounded
LN2 = float.fromhex("0x1.62e42fefa39efp-1")  # ln2 rounded to double (float64 frames' one fma)
INV_LN2 = float.fromhex("0x1.715476p+0")
EXP_OVERFLOW = float.fromhex("0x1.62e42ep+6")  # largest float32 x with expf(x) finite
EXP_UNDERFLOW = float.fromhex("-0x1.9fe368p+6")  # below this expf(x) rounds to +0
SIGMOID_LOW = -105.0  # below -103.97 every sigmoid(x) rounds to +0: the frame clamps x here ...
SIGMOID_HIGH = 43.0  # ... and here (above 17.33 every result is 1): then e^-x 2^-64 is a normal float
EXP2_OVERFLOW = float.fromhex("0x1.fffffep+6")  # largest float32 below 128: exp2f(x) finite up to here
EXP2_UNDERFLOW = -151.0  # below this (and -inf) exp2f(x) is +0
LOG2_10 = float.fromhex("0x1.a934f0p+1")  # log2(10) rounded to float32
LOG10_2_HI = float.fromhex("0x1.344p-2")  # 15 significant bits: k * LOG10_2_HI exact for |k| < 512
LOG10_2_LO = float.fromhex("0x1.3509f79fef312p-18")  # log10(2) - LOG10_2_HI, rounded
EXP10_OVERFLOW = float.fromhex("0x1.344134p+5")  # largest float32 x with 10^x rounding to a finite float32
EXP10_UNDERFLOW = float.fromhex("-0x1.693c6ap+5")  # smallest float32 x with 10^x rounding above +0
EXPM1_MINUS_ONE = float.fromhex("-0x1.154244p+4")  # below this (and -inf) expm1f(x) rounds to -1
SQRT_HALF = float.fromhex("0x1.6a09e6p-1")  # float32 just below sqrt(1/2)
INV_LN2_HI = float.fromhex("0x1.715476p+0")  # 1/ln2 rounded to float32
INV_LN2_LO = float.fromhex("0x1.4ae0bf85ddf44p-26")  # 1/ln2 - INV_LN2_HI, rounded
INV_LN10_HI = float.fromhex("0x1.bcb7b2p-2")  # 1/ln10 rounded to float32
INV_LN10_LO = float.fromhex("-0x1.5b235e39ab2a9p-27")  # 1/ln10 - INV_LN10_HI, rounded
# sin, cos: 1/(2 pi) in seven chunks of at most 29 significant bits (bits 2^-1 to 2^-203), so that a
# float32 x (24 bits) times each is exact in float64; enough for x up to 2^128 (x 2^-203 <= 2^-75)
TURN_CHUNKS = tuple(float.fromhex(h) for h in (
    "0x1.45f306cp-3", "0x1.c9c882ap-31", "0x1.4fe13a8p-61", "0x1.f47d4d3p-88", "0x1.dc0db62p-118",
    "0x1.2b32788p-147", "0x1.c820ffp-177"))
INV_PI_HI = float.fromhex("0x1.45f306cp-2")  # 1/pi to 29 bits: x INV_PI_HI exact in float64
INV_PI_LO = float.fromhex("0x1.c9c882a53f84fp-30")  # 1/pi - INV_PI_HI, rounded (the rest: 6.5e-26)
TRIG_FAST = 2.0**20  # |x| below this: the two-constant reduction; from here the seven chunks
TRIG_TINY = 2.0**-12  # |x| below this: sin x rounds to x and cos x to 1
ERF_BOUNDS = (1.0, 2.0)  # |x| below 1: erf_small; [1, 2): erf_mid; from 2: erf_tail
ERF_SHIFTS = {"erf_mid": 1.5, "erf_tail": 3.0}  # core variable t = |x| - shift, exact (Sterbenz) on the piece
ERF_ONE_LAST = float.fromhex("0x1.f5a888p+1")  # largest float32 with erf(x) rounding below 1 (~3.9192)
FLT_MAX = float.fromhex("0x1.fffffep+127")
FLT_TRUE_MIN = float.fromhex("0x1p-149")


@dataclass(frozen=True)
class Frame:
    name: str
    target: str
    core_domain: tuple[float, float]
    build: Callable[..., int]  # build(builder, core) -> output node; the builder holds the constants
    description: str
    core_target: str = ""  # what the core approximates, in words
    constants: Mapping[str, float] = field(default_factory=dict)  # named, overridable frame constants
    float64_only: bool = False  # its exactness needs float64 arithmetic (float32 in and out: --mode cr or faithful)


class FrameError(ValueError):
    pass


class _Builder:
    """Appends nodes to a growing program; ``core`` inlines a core program."""

    def __init__(self, constants: Mapping[str, float] | None = None, trainable: tuple[str, ...] = (),
                 float64: bool = False) -> None:
        self.nodes: list[Node] = [Node("x")]
        self.float64 = float64  # the program computes in float64 (--mode cr): 2^k is one exact ldexp
        self._consts: dict[float, int] = {}
        self.constants = dict(constants or {})
        self.trainable = tuple(trainable)
        self._named: dict[tuple[str, bool], int] = {}
        self.frame_params: dict[int, tuple[str, bool]] = {}  # param node -> (constant name, negated)

    def named(self, name: str, negate: bool = False) -> int:
        """The frame constant ``name`` (or its negation): a literal, or a trainable ``param`` if asked for."""
        key = (name, negate)
        if key not in self._named:
            value = -self.constants[name] if negate else self.constants[name]
            if name in self.trainable:
                self._named[key] = self.add("param", value=value)
                self.frame_params[self._named[key]] = key
            else:
                self._named[key] = self.const(value)
        return self._named[key]

    def add(self, op: str, *args: int, value: float = 0.0) -> int:
        self.nodes.append(Node(op, tuple(args), value))
        return len(self.nodes) - 1

    def const(self, value: float) -> int:
        # one node per distinct value (bit pattern, so 0.0 and -0.0 stay apart)
        key = (math.copysign(1.0, value), value) if not math.isnan(value) else ("nan",)
        if key not in self._consts:
            self._consts[key] = self.add("const", value=value)
        return self._consts[key]

    def core(self, core: Program, arg: int) -> int:
        remap = {0: arg}
        live = core.live()
        for i, node in enumerate(core.nodes[1:], start=1):
            if not live[i]:
                continue
            remap[i] = self.add(node.op, *(remap[a] for a in node.args), value=node.value)
        return remap[core.output]

    def program(self, out: int) -> Program:
        prog = Program(tuple(self.nodes), out)
        self.layout = tuple(("frame", *self.frame_params[i]) if i in self.frame_params else ("core",)
                            for i in prog.param_indices)
        return prog


def _cody_waite_frame(b: _Builder, core: Program, inv: str, hi: str, lo: str) -> int:
    """x = k c + r with k = round(x / c) and r by a two-constant split of c (``hi`` + ``lo``, the
    first fma exact), result ldexp(core(r), k), overflow and underflow by select (exp, exp10)."""
    k = b.add("round", b.add("mul", 0, b.named(inv)))
    r1 = b.add("fma", k, b.named(hi, negate=True), 0)
    r = b.add("fma", k, b.named(lo, negate=True), r1)
    p = b.core(core, r)
    y = b.add(_scale_op(b), p, k)
    y = b.add("select_lt", b.named("OVERFLOW"), 0, b.const(math.inf), y)
    y = b.add("select_lt", 0, b.named("UNDERFLOW"), b.const(0.0), y)
    return y


def _scale_op(b: _Builder) -> str:
    """core(r) * 2^k for the exp frames: ``ldexp2`` (= ldexp here: p near 1, |k| <= 152) needs no
    double lanes in a float32 program; in a float64 program 2^k is a normal double for every k the
    frame makes, so one ``ldexp`` (one vscalef) rounds the same, at half the exported ops."""
    return "ldexp" if b.float64 else "ldexp2"


def _exp_frame(b: _Builder, core: Program) -> int:
    return _cody_waite_frame(b, core, "INV_LN2", "LN2_HI", "LN2_LO")


def _exp10_frame(b: _Builder, core: Program) -> int:
    return _cody_waite_frame(b, core, "LOG2_10", "LOG10_2_HI", "LOG10_2_LO")


def _exp2_frame(b: _Builder, core: Program) -> int:
    k = b.add("round", 0)
    r = b.add("sub", 0, k)  # exact: |x - round(x)| <= 1/2 and x, k share the binade or r = 0
    p = b.core(core, r)
    y = b.add(_scale_op(b), p, k)
    y = b.add("select_lt", b.named("OVERFLOW"), 0, b.const(math.inf), y)
    y = b.add("select_lt", 0, b.named("UNDERFLOW"), b.const(0.0), y)
    return y


def _exp_reduce_exact(b: _Builder, a: int, negate: bool = False) -> tuple[int, int, int]:
    """(k, r, c) with a = k ln2 + r + c (-a = k ln2 + r + c with ``negate``): Cody-Waite with fma,
    and c, the rounding of r, recovered (r1 - r is exact by Sterbenz, the last fma rounds only c
    itself) for frames that carry e^a in two floats.  ``negate`` takes k from a * -INV_LN2 (the same
    rounding as -a * INV_LN2), so that -a is read by the first fma alone (one vfmsub in the SIMD
    export)."""
    k = b.add("round", b.add("mul", a, b.named("INV_LN2", negate=negate)))
    n_lo = b.named("LN2_LO", negate=True)
    r1 = b.add("fma", k, b.named("LN2_HI", negate=True), b.add("neg", a) if negate else a)  # exact
    r = b.add("fma", k, n_lo, r1)
    return k, r, b.add("fma", k, n_lo, b.add("sub", r1, r))


def _corrected_quotient(b: _Builder, n: int, n_lo: int, d: int, neg_d_lo: int, inv_d) -> int:
    """(n + n_lo) / (d + d_lo) to within a rounding: y0 = n / d rounded once, then
    y0 + (n - y0 d + n_lo - y0 d_lo) / d, the residual n - y0 d exact by fma (y0 the correctly
    rounded quotient); ``inv_d(y0)`` builds any node within a few percent of 1/d."""
    y0 = b.add("div", n, d)
    res = b.add("fma", y0, b.add("neg", d), n)
    corr = b.add("fma", y0, neg_d_lo, b.add("add", res, n_lo))
    return b.add("fma", corr, inv_d(y0), y0)


def _sigmoid_frame(b: _Builder, core: Program) -> int:
    """1/(1 + E), E = e^-x, as S / (S + S E) with S = 2^-64, for x clamped to [SIGMOID_LOW,
    SIGMOID_HIGH] (beyond, every result is +0 or 1): one formula for every input, no branch.

    S E = (p + p_lo) 2^kk with kk = k - 64, from the exp reduction of -x: the core approximates s = e^r - 1 (rounded relative to s, not
    to 1 + s); p = 1 + s and its exact remainder (Fast2Sum), plus the reduction's own rounding of r
    recovered by an fma.  On the clamped range kk lies in [-126, 88]: S E is a normal float (or, at
    x near 43, far below S), scaled by one exact ldexp, and never overflows, while the quotient
    reaches down to the subnormals (x < -87.3) with its one rounding.  S + S E and its exact
    remainder come from a Fast2Sum ordered by max and min (S E < S for x > 0, above it for x < 0);
    the quotient y0 = S / D is corrected by its exact fma residual, y = y0 + (S - y0 D - y0 D_lo) y0 / S.

    Why two floats: with E rounded to one float32, its relative error (up to 2^-24 / 0.7) reaches
    the sigmoid scaled by E / (1 + E), and with the division's own rounding that is more than 1 ULP
    (e^-|x| = 0.3: 1.09 ULP before the core's error).  NaN propagates (the clamps keep it)."""
    scale = b.const(2.0**-64)
    xl = b.add("select_lt", 0, b.named("SIGMOID_LOW"), b.named("SIGMOID_LOW"), 0)  # max(x, LOW), NaN kept
    hi = b.named("SIGMOID_HIGH")
    xc = b.add("select_lt", hi, xl, hi, xl)  # min(HIGH, xl), NaN kept
    k, r, c = _exp_reduce_exact(b, xc, negate=True)  # -xc = k ln2 + r + c
    kk = b.add("sub", k, b.const(64.0))  # exact
    s = b.core(core, r)  # ~ e^r - 1
    one = b.const(1.0)
    p = b.add("add", one, s)
    p_lo = b.add("sub", s, b.add("sub", p, one))  # (1 + s) - p, exact: |s| < 1, p - 1 exact (Sterbenz)
    p_lo = b.add("fma", c, p, p_lo)  # e^(r + c) ~ (1 + s)(1 + c)
    e, e_lo = b.add("ldexp", p, kk), b.add("ldexp", p_lo, kk)  # S E and its low part
    d = b.add("add", scale, e)
    big = b.add("select_lt", e, scale, scale, e)  # max(S E, S)
    small = b.add("select_lt", e, scale, e, scale)  # min(S E, S)
    d_lo = b.add("add", b.add("add", b.add("sub", big, d), small), e_lo)  # big - d exact (Sterbenz)
    y0 = b.add("div", scale, d)
    res = b.add("fma", y0, b.add("neg", d), scale)  # exact: y0 is the rounded quotient
    corr = b.add("fma", y0, b.add("neg", d_lo), res)
    return b.add("fma", corr, b.add("mul", y0, b.const(2.0**64)), y0)  # 1 / D ~ y0 / S (exact scaling)


def _sigmoid_f64_frame(b: _Builder, core: Program) -> int:
    """1/(1 + e^-x) = n / (1 + e), e = e^-|x| = core(r) 2^k, n = e (x < 0) or 1, all in float64 with
    one final rounding (``--mode cr``): e's and 1 + e's roundings and the division's are each
    2^-53 relative, far below float32's, so no two-float bookkeeping; e = +0 below -103.97."""
    one, zero = b.const(1.0), b.const(0.0)
    ax = b.add("abs", 0)
    a = b.add("neg", ax)
    k = b.add("round", b.add("mul", a, b.named("INV_LN2")))
    r = b.add("fma", k, b.named("LN2_LO", negate=True), b.add("fma", k, b.named("LN2_HI", negate=True), a))
    e = b.add("ldexp", b.core(core, r), k)  # 2^k, |k| <= 150, is a normal double: exact
    e = b.add("select_lt", a, b.named("UNDERFLOW"), zero, e)
    n = b.add("select_lt", 0, zero, e, one)
    y = b.add("div", n, b.add("add", one, e))
    # |x| < 2^-11: sigmoid x = 1/2 + x/4 - x^3/48 + ..., and 1/2 + x/4 (exact in float64) is a
    # float32 rounding midpoint for every x = odd multiple of 2^-23 (2^-24 below 0): the exact value
    # lies x^3/48 from it, below float64's reach.  It lies on the side of -x, and no other midpoint
    # is nearer than 2^-50: one float64 step that way (2^-53 above 1/2, 2^-54 below) rounds right.
    small = b.add("add", b.add("fma", 0, b.const(0.25), b.const(0.5)),
                  b.add("select_lt", zero, 0, b.const(-(2.0**-53)), b.const(2.0**-54)))
    return b.add("select_lt", ax, b.named("SMALL"), small, y)


def _expm1_two_floats(b: _Builder, core: Program, a: int) -> tuple[int, int, int]:
    """(k, s_hi, s_lo) with e^a = 2^k (1 + s_hi + s_lo): the core g ~ (e^r - 1 - r)/r^2, the frame
    adds the exact r itself (Fast2Sum) and the reduction's rounding c of r (e^(r + c) - 1 ~ s + c (1 + s))."""
    k, r, c = _exp_reduce_exact(b, a)
    g = b.core(core, r)
    u = b.add("mul", b.add("mul", r, r), g)
    s_hi = b.add("add", r, u)
    s_lo = b.add("add", b.add("sub", r, s_hi), u)  # exact remainder (Fast2Sum: |r| >= |u|)
    return k, s_hi, b.add("fma", c, s_hi, b.add("add", s_lo, c))


def _one_plus(b: _Builder, s_hi: int, s_lo: int) -> tuple[int, int]:
    """(p, p_lo) = 1 + s_hi + s_lo, p rounded, p_lo its remainder (Fast2Sum: |s_hi| < 1)."""
    one = b.const(1.0)
    p = b.add("add", one, s_hi)
    return p, b.add("add", b.add("add", b.add("sub", one, p), s_hi), s_lo)


def _two_sum(b: _Builder, x: int, y: int) -> tuple[int, int]:
    """(s, err) with s = x + y rounded and err = x + y - s exactly, whichever is larger (Knuth)."""
    s = b.add("add", x, y)
    yy = b.add("sub", s, x)
    return s, b.add("add", b.add("sub", x, b.add("sub", s, yy)), b.add("sub", y, yy))


def _expm1_frame(b: _Builder, core: Program) -> int:
    """e^x - 1 = (2^k - 1) + 2^k (s_hi + s_lo), s in two floats as for tanh: 2^k - 1 and
    (2^k - 1) + 2^k s_hi are split exactly (2Sum), every remainder goes into one small tail, and
    the result rounds once, so the cancellation at k = 1, 2 (s near -0.29: 1 + 2s) costs nothing.
    From k = 65, -1 is far below the result's ulp and y = 2^k (1 + s), as exp (2^k alone would
    overflow at k = 128).  Selects: +inf above 88.72, -1 below -17.33 (and at -inf), x itself for
    |x| < 2^-25 (e^x - 1 rounds to x there; -0 stays -0)."""
    one = b.const(1.0)
    k, s_hi, s_lo = _expm1_two_floats(b, core, 0)
    scale = b.add("ldexp2", one, k)  # 2^k, exact (|k| <= 150: k <= 64 where it is used)
    a_hi, a_lo = _two_sum(b, scale, b.const(-1.0))  # 2^k - 1
    t_hi, t_err = _two_sum(b, a_hi, b.add("mul", scale, s_hi))  # 2^k s_hi exact
    tail = b.add("fma", scale, s_lo, b.add("add", t_err, a_lo))
    small = b.add("add", t_hi, tail)
    p, p_lo = _one_plus(b, s_hi, s_lo)
    large = b.add("ldexp2", b.add("add", p, p_lo), k)
    y = b.add("select_lt", b.const(64.5), k, large, small)
    y = b.add("select_lt", b.named("OVERFLOW"), 0, b.const(math.inf), y)
    y = b.add("select_lt", 0, b.named("MINUS_ONE"), b.const(-1.0), y)
    return b.add("select_lt", b.add("abs", 0), b.named("TINY"), 0, y)


def _tanh_frame(b: _Builder, core: Program) -> int:
    """tanh |x| = (1 - e) / (1 + e), e = e^(-2|x|) in two floats, sign from x (copysign).

    The core g approximates (e^r - 1 - r) / r^2 (as the log core, so the frame adds the exact r
    itself: s = r + r^2 g is formed in two floats by Fast2Sum, and the reduction's rounding of r
    is recovered by an fma); 1 - e and 1 + e are Fast2Sums of 1 and e, the quotient is rounded
    once and corrected by its exact fma residual, with 1 / (1 + e) = (1 + y0) / 2.  For |x| < ln2/4
    (k = 0) the numerator is -s itself, with s's relative accuracy, so tanh x ~ x keeps it (1 - e
    from a rounded 1 + s keeps only the bits of s above 2^-24); e = +0 below -103.97 (and for
    |x| = inf) gives +-1; NaN propagates; tanh(+-0) = +-0.
    """
    one, zero = b.const(1.0), b.const(0.0)
    a = b.add("mul", b.add("abs", 0), b.const(-2.0))  # -2|x|, exact (-inf past FLT_MAX / 2)
    k, s_hi, s_lo = _expm1_two_floats(b, core, a)
    p, p_lo = _one_plus(b, s_hi, s_lo)
    under = b.named("UNDERFLOW")
    e = b.add("select_lt", a, under, zero, b.add("ldexp2", p, k))  # e^a in (0, 1]
    e_lo = b.add("select_lt", a, under, zero, b.add("ldexp2", p_lo, k))
    num = b.add("sub", one, e)
    num_lo = b.add("sub", b.add("sub", b.add("sub", one, num), e), e_lo)  # 1 - e - e_lo - num
    # k = 0 (|x| < ln2/4): 1 - e is -s itself, every bit of it; 1 - (1 + s rounded) keeps few
    k0 = b.add("abs", k)
    num = b.add("select_lt", k0, half := b.const(0.5), b.add("neg", s_hi), num)
    num_lo = b.add("select_lt", k0, half, b.add("neg", s_lo), num_lo)
    den = b.add("add", one, e)
    neg_den_lo = b.add("sub", b.add("sub", b.add("sub", den, one), e), e_lo)  # -(1 + e + e_lo - den)
    # 1 / (1 + e) = (1 + tanh) / 2
    y = _corrected_quotient(b, num, num_lo, den, neg_den_lo, lambda y0: b.add("fma", y0, half, half))
    return b.add("copysign", y, 0)


def _log_reduce(b: _Builder, src: int = 0) -> tuple[int, int]:
    """(t, e) with src = (1 + t) 2^e, t in [SPLIT - 1, 2 SPLIT - 1), both exact."""
    m0 = b.add("frexp_m", src)
    e0 = b.add("frexp_e", src)
    split = b.named("SPLIT")
    m = b.add("select_lt", m0, split, b.add("add", m0, m0), m0)
    one = b.const(1.0)
    e = b.add("select_lt", m0, split, b.add("sub", e0, one), e0)
    t = b.add("sub", m, one)
    return t, e


def _log_specials(b: _Builder, y: int, src: int = 0) -> int:
    y = b.add("select_lt", src, b.const(FLT_TRUE_MIN), b.const(-math.inf), y)  # +-0 (and x < 0) -> -inf
    y = b.add("select_lt", src, b.const(-0.0), b.const(math.nan), y)  # x < 0, -inf -> NaN (-0 is not < 0)
    y = b.add("select_lt", b.const(FLT_MAX), src, b.const(math.inf), y)  # +inf -> +inf
    return y


def _log_sum(b: _Builder, t: int, e: int, lo: int) -> int:
    """e ln2 + t + lo, summed in the order that is exact for the e at hand: for |e| <= 1, e LN2_HI + t
    is exact (both multiples of 2^-24, the sum below 2); for |e| >= 2, t + lo's rounding is tiny
    beside the result.  ``lo`` holds the small terms (t^2 g, e LN2_LO, ...)."""
    hi = b.named("LN2_HI")
    small = b.add("add", b.add("fma", e, hi, t), lo)
    large = b.add("fma", e, hi, b.add("add", t, lo))
    return b.add("select_lt", b.add("abs", e), b.const(1.5), small, large)


def _log_frame(b: _Builder, core: Program) -> int:
    t, e = _log_reduce(b)
    g = b.core(core, t)
    t2 = b.add("mul", t, t)
    lo = b.add("fma", t2, g, b.add("mul", e, b.named("LN2_LO")))  # t^2 g + e LN2_LO
    return _log_specials(b, _log_sum(b, t, e, lo))


def _atanh_reduce(b: _Builder) -> tuple[int, int, int]:
    """(s, u = s^2, e): the log reduction, then s = t / (t + 2) = (m - 1) / (m + 1) (t + 2 exact)."""
    t, e = _log_reduce(b)
    s = b.add("div", t, b.add("add", t, b.const(2.0)))
    return s, b.add("mul", s, s), e


def _log_atanh_frame(b: _Builder, core: Program) -> int:
    """log x = e ln2 + 2 atanh(s), s = t / (t + 2) = (m - 1) / (m + 1) in [-0.1716, 0.1716]:
    2 atanh(s) = 2s + s^3 core(s^2).  For float64 evaluation (cr mode): the core's argument spans
    a 30th of the log core's, so a float64 polynomial of modest degree reaches 2^-55, where
    (log1p(t) - t)/t^2 on [sqrt(1/2) - 1, sqrt(2) - 1] would need dozens of terms; in float32 the
    division's rounding alone is a ULP of the result, so the float32 searches keep ``log``."""
    s, u, e = _atanh_reduce(b)
    g = b.core(core, u)
    w = b.add("fma", b.add("mul", s, u), g, b.add("add", s, s))  # 2 atanh(s) = 2s + s^3 g, rounded once
    # e ln2 + w, rounded once: the fma multiplies exactly, ln2 in one double is off by 2^-55.3
    # relative, and |y| >= 0.35 |e| for e != 0 (|w| <= 0.35), so each rounding and ln2's error stay
    # near 2^-53 of y; no split constant and no exact-order select, which float32 needs
    return _log_specials(b, b.add("fma", e, b.named("LN2"), w))


def _log2_atanh_frame(b: _Builder, core: Program) -> int:
    """log2 x = e + (2/ln2) s + s^3 core(s^2), s = t / (t + 2): ``log_atanh`` in base 2 (float64
    evaluation, cr mode); exact at powers of two (t = 0)."""
    s, u, e = _atanh_reduce(b)
    lo = b.add("mul", b.add("mul", s, u), b.core(core, u))
    return _log_specials(b, b.add("add", e, b.add("fma", s, b.const(2 / math.log(2)), lo)))


def _log1p_frame(b: _Builder, core: Program) -> int:
    """log1p x = log u + c/u, u = 1 + x rounded and c = (1 + x) - u exactly (2Sum): the log frame on
    u, with c/u (below half an ulp of u, relative) among the small terms.  |x| < 2^-25 gives x
    itself (log1p x = x - x^2/2 rounds to x there; -0 stays -0); x = -1 gives -inf, x < -1 NaN."""
    u, c = _two_sum(b, b.const(1.0), 0)  # c = (1 + x) - u, exact
    t, e = _log_reduce(b, u)
    g = b.core(core, t)
    lo = b.add("fma", e, b.named("LN2_LO"), b.add("div", c, u))
    lo = b.add("fma", b.add("mul", t, t), g, lo)
    y = _log_specials(b, _log_sum(b, t, e, lo), u)
    return b.add("select_lt", b.add("abs", 0), b.named("TINY"), 0, y)


def _log2_frame(b: _Builder, core: Program) -> int:
    t, e = _log_reduce(b)
    g = b.core(core, t)
    t2 = b.add("mul", t, t)
    lo = b.add("fma", t2, g, b.add("mul", t, b.named("INV_LN2_LO")))  # t^2 g + t INV_LN2_LO
    q = b.add("fma", t, b.named("INV_LN2_HI"), lo)
    y = b.add("add", e, q)
    return _log_specials(b, y)


def _log10_frame(b: _Builder, core: Program) -> int:
    """log10 x = e log10(2) + t/ln10 + t^2 g: the two large terms summed exactly (Fast2Sum of
    e LOG10_2_HI, exact, and t INV_LN10_HI, whose own rounding an fma recovers), every small term
    added to the remainder, one rounding at the end."""
    t, e = _log_reduce(b)
    g = b.core(core, t)
    c_hi = b.named("INV_LN10_HI")
    q = b.add("mul", t, c_hi)
    q_err = b.add("fma", t, c_hi, b.add("neg", q))  # t INV_LN10_HI - q, exact
    a = b.add("mul", e, b.named("LOG10_2_HI"))  # exact: 13 significant bits, |e| <= 150
    s = b.add("add", a, q)
    s_err = b.add("sub", q, b.add("sub", s, a))  # exact: |a| >= 0.30 > |q| unless a = 0
    lo = b.add("fma", e, b.named("LOG10_2_LO"), b.add("fma", t, b.named("INV_LN10_LO"), q_err))
    lo = b.add("fma", b.add("mul", t, t), g, b.add("add", lo, s_err))
    return _log_specials(b, b.add("add", s, lo))


def _check_log10_constants(c: Mapping[str, float]) -> None:
    _check_log_constants(c)
    _check_exp10_constants(c)


def _cbrt_frame(b: _Builder, core: Program) -> int:
    """cbrt x = sign(x) cbrt(t) 2^q with |x| = m 2^e (frexp, exact), e = 3q + r, t = m 2^r in
    [1/2, 4): the core y0 ~ cbrt(t) needs only about 2^-13 relative, as one Newton step
    y1 = y0 - (y0^3 - t) / (3 y0^2) follows, with the residual y0^3 - t from the exact square
    y0^2 = p + p_lo (fma), so that y1 rounds once; 2^q scales exactly (cbrt never over- or
    underflows).  q = floor((e + 1/2) / 3) is exact (e is an integer, at least 1/6 from a
    multiple of 3 after the shift).  +-0, +-inf and NaN come back as they are."""
    ax = b.add("abs", 0)
    m = b.add("frexp_m", ax)
    e = b.add("frexp_e", ax)
    q = b.add("floor", b.add("mul", b.add("add", e, b.const(0.5)), b.const(float(np.float32(1 / 3)))))
    t = b.add("ldexp2", m, b.add("fma", q, b.const(-3.0), e))  # m 2^r, r = e - 3q in {0, 1, 2}
    y0 = b.core(core, t)
    p = b.add("mul", y0, y0)
    p_lo = b.add("fma", y0, y0, b.add("neg", p))  # y0^2 - p, exact
    res = b.add("fma", p_lo, y0, b.add("fma", p, y0, b.add("neg", t)))  # y0^3 - t
    y1 = b.add("sub", y0, b.add("div", res, b.add("mul", p, b.const(3.0))))
    y = b.add("copysign", b.add("ldexp2", y1, q), 0)
    y = b.add("select_lt", ax, b.const(FLT_TRUE_MIN), 0, y)  # +-0
    return b.add("select_lt", b.const(FLT_MAX), ax, 0, y)  # +-inf


def _erf_small_frame(b: _Builder, core: Program) -> int:
    """erf x = sign(x) core(|x|) for |x| < 1 (the split's first piece)."""
    return b.add("copysign", b.core(core, b.add("abs", 0)), 0)


def _erfc_piece_frame(shift: float, b: _Builder, core: Program) -> int:
    """erf x = sign(x) (1 - core(|x| - shift)), core ~ erfc, for |x| >= 1; 1 past ERF_ONE_LAST
    (the select is written so that NaN takes the core's path and stays NaN)."""
    a = b.add("abs", 0)
    y = b.add("sub", b.const(1.0), b.core(core, b.add("sub", a, b.const(shift))))
    y = b.add("select_lt", b.const(ERF_ONE_LAST), a, b.const(1.0), y)
    return b.add("copysign", y, 0)


def _trig_fast(b: _Builder, offset: bool) -> tuple[int, int]:
    """(g, odd) with x/pi (+ 1/2 for cos) = n + g, |g| <= 1/2 + tiny, odd = 1/2 for odd n, else 0,
    for |x| < TRIG_FAST: q = x INV_PI_HI is exact, q - n (and q + (1/2 - n) where g is small) is
    exact by Sterbenz, and one fma adds x INV_PI_LO, so g rounds once relative to itself."""
    q = b.add("mul", 0, b.named("INV_PI_HI"))
    half = b.const(0.5)
    if offset:
        n = b.add("round", b.add("add", q, half))
        a = b.add("add", q, b.add("sub", half, n))
    else:
        n = b.add("round", q)
        a = b.add("sub", q, n)
    g = b.add("fma", 0, b.named("INV_PI_LO"), a)
    h = b.add("mul", n, half)
    return g, b.add("sub", h, b.add("floor", h))


def _trig_slow(b: _Builder, offset: bool) -> tuple[int, int]:
    """(g, odd) as ``_trig_fast``, for every finite x (Payne-Hanek without a table): each chunk
    product p = x TURN_i is exact and so is t = p - round(p), x/(2 pi) mod 1 = sum t (+ 1/4 for
    cos) to 2^-75, summed as an exact high part and a low part (2Sum); the high part loses its
    integer exactly, and doubling gives x/pi mod 2 = h + hl, whose nearest integer n is -1, 0 or 1.
    inf and NaN give NaN (inf - inf)."""
    s = b.const(0.25) if offset else None
    lo = None
    for i in range(len(TURN_CHUNKS)):
        p = b.add("mul", 0, b.named(f"TURN_{i}"))
        t = b.add("sub", p, b.add("round", p))
        if s is None:
            s = t
            continue
        s, err = _two_sum(b, s, t)
        lo = err if lo is None else b.add("add", lo, err)
    s = b.add("sub", s, b.add("round", s))
    h, hl = b.add("add", s, s), b.add("add", lo, lo)
    n = b.add("round", h)
    g = b.add("add", b.add("sub", h, n), hl)
    return g, b.add("mul", b.add("abs", n), b.const(0.5))


def _trig_frame(offset: bool, b: _Builder, core: Program) -> int:
    """sin x (cos x = sin(x + pi/2): ``offset``) = (-1)^n sin(pi g) = sin(pi v / 2) at
    v = (-1)^n 2g with x/pi = n + g, and the core S(v) ~ sin(pi v / 2) on [-1, 1] (float64
    evaluation: ``--mode cr`` or ``--mode faithful``).  The sign goes in with the factor 2 (one
    exact multiply by +-2, from one fma of the parity) instead of a select after the core."""
    ax = b.add("abs", 0)
    fast = b.named("TRIG_FAST")
    g_fast, odd_fast = _trig_fast(b, offset)
    g_slow, odd_slow = _trig_slow(b, offset)
    g = b.add("select_lt", ax, fast, g_fast, g_slow)
    odd = b.add("select_lt", ax, fast, odd_fast, odd_slow)
    two = b.add("fma", odd, b.const(-8.0), b.const(2.0))  # 2 for even n, -2 for odd (odd is 0 or 1/2)
    y = b.core(core, b.add("mul", g, two))
    return b.add("select_lt", ax, b.named("TRIG_TINY"), b.const(1.0) if offset else 0, y)


def _check_exp_constants(c: Mapping[str, float]) -> None:
    m, _ = math.frexp(c["LN2_HI"])
    if (m * 2**15) != int(m * 2**15):
        raise FrameError("LN2_HI must have at most 15 significant bits (k * LN2_HI must be exact)")


def _check_exp10_constants(c: Mapping[str, float]) -> None:
    m, _ = math.frexp(c["LOG10_2_HI"])
    if (m * 2**15) != int(m * 2**15):
        raise FrameError("LOG10_2_HI must have at most 15 significant bits (k * LOG10_2_HI must be exact)")


def _check_log_constants(c: Mapping[str, float]) -> None:
    if not 0.5 <= c.get("SPLIT", 0.70710677) <= 1.0:
        raise FrameError("SPLIT must lie in [1/2, 1] (t = m - 1 must stay exact)")
    if "LN2_HI" in c:
        m, _ = math.frexp(c["LN2_HI"])
        if (m * 2**15) != int(m * 2**15):
            raise FrameError("LN2_HI must have at most 15 significant bits (e * LN2_HI + t must be exact)")
        if not c.get("SPLIT", 0.70710677) > c["LN2_HI"]:
            # e = -1, t = m - 1 in [SPLIT - 1, 0): -LN2_HI + t stays below 1 in magnitude (exact) only then
            raise FrameError("SPLIT must exceed LN2_HI (-LN2_HI + t must be exact for e = -1)")


_SQ = SQRT_HALF
_TRIG_CONSTANTS = {"INV_PI_HI": INV_PI_HI, "INV_PI_LO": INV_PI_LO, "TRIG_FAST": TRIG_FAST, "TRIG_TINY": TRIG_TINY,
                   **{f"TURN_{i}": c for i, c in enumerate(TURN_CHUNKS)}}
_HALF_LN2 = math.log(2) / 2  # the exp reduction's |r| bound
_ATANH_U_MAX = 0.02944  # s^2 at the ends of the log reduction: ((sqrt 2 - 1)/(sqrt 2 + 1))^2 = 0.029437...
FRAMES: dict[str, Frame] = {
    f.name: f
    for f in (
        Frame("exp", "exp", (-_HALF_LN2, _HALF_LN2), _exp_frame,
              "x = k ln2 + r (Cody-Waite, fma), core ~ e^r, result ldexp(core, k); inf/0/NaN by select",
              "e^r on [-ln2/2, ln2/2]",
              {"INV_LN2": INV_LN2, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO,
               "OVERFLOW": EXP_OVERFLOW, "UNDERFLOW": EXP_UNDERFLOW}),
        Frame("exp2", "exp2", (-0.5, 0.5), _exp2_frame,
              "x = k + r (k = round(x), r exact), core ~ 2^r, result ldexp(core, k); inf/0/NaN by select",
              "2^r on [-1/2, 1/2]",
              {"OVERFLOW": EXP2_OVERFLOW, "UNDERFLOW": EXP2_UNDERFLOW}),
        Frame("exp10", "exp10", (-0.1505149978319906, 0.1505149978319906), _exp10_frame,
              "x = k log10(2) + r (Cody-Waite, fma), core ~ 10^r, result ldexp(core, k); inf/0/NaN by select",
              "10^r on [-log10(2)/2, log10(2)/2]",
              {"LOG2_10": LOG2_10, "LOG10_2_HI": LOG10_2_HI, "LOG10_2_LO": LOG10_2_LO,
               "OVERFLOW": EXP10_OVERFLOW, "UNDERFLOW": EXP10_UNDERFLOW}),
        Frame("sigmoid", "sigmoid", (-_HALF_LN2, _HALF_LN2), _sigmoid_frame,
              "x clamped to [-105, 43]; S E = e^-x 2^-64 = (1 + s) 2^(k - 64) in two floats (Cody-Waite, fma), "
              "core s ~ e^r - 1, result S / (S + S E) corrected by the division's exact residual: one formula, "
              "+0/1/NaN included",
              "e^r - 1 on [-ln2/2, ln2/2]",
              {"INV_LN2": INV_LN2, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO,
               "SIGMOID_LOW": SIGMOID_LOW, "SIGMOID_HIGH": SIGMOID_HIGH}),
        Frame("sigmoid_f64", "sigmoid", (-_HALF_LN2, _HALF_LN2), _sigmoid_f64_frame,
              "e = e^-|x| = core(r) 2^k (Cody-Waite, fma), result n / (1 + e) with n = e (x < 0) or 1, all in "
              "float64, one final rounding; 1/2 + x/4 stepped off the midpoint for |x| < 2^-11; 1/+0/NaN by "
              "select (float64 evaluation, cr mode)",
              "e^r on [-ln2/2, ln2/2]",
              {"INV_LN2": INV_LN2, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO, "UNDERFLOW": EXP_UNDERFLOW, "SMALL": 2.0**-11},
              float64_only=True),
        Frame("expm1", "expm1", (-_HALF_LN2, _HALF_LN2), _expm1_frame,
              "x = k ln2 + r (Cody-Waite, fma, r's rounding recovered), core g ~ (e^r - 1 - r)/r^2, "
              "s = r + r^2 g in two floats, result (2^k - 1) + 2^k s by exact 2Sums and one rounding "
              "(2^k (1 + s) from k = 65); x for tiny |x|, -1/inf/NaN by select",
              "(e^r - 1 - r) / r^2 on [-ln2/2, ln2/2]",
              {"INV_LN2": INV_LN2, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO, "OVERFLOW": EXP_OVERFLOW,
               "MINUS_ONE": EXPM1_MINUS_ONE, "TINY": 2.0**-25}),
        Frame("tanh", "tanh", (-_HALF_LN2, _HALF_LN2), _tanh_frame,
              "e = e^(-2|x|) = (1 + s) 2^k in two floats (Cody-Waite, fma; s = r + r^2 g), core g ~ "
              "(e^r - 1 - r)/r^2, result sign(x) (1 - e)/(1 + e) corrected by the division's exact residual; "
              "+-1/NaN by select",
              "(e^r - 1 - r) / r^2 on [-ln2/2, ln2/2]",
              {"INV_LN2": INV_LN2, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO, "UNDERFLOW": EXP_UNDERFLOW}),
        Frame("cbrt", "cbrt", (0.5, 4.0), _cbrt_frame,
              "|x| = t 2^(3q) (frexp, t in [1/2, 4) exact), core y0 ~ cbrt(t), one Newton step with the "
              "residual y0^3 - t from the exact square (fma), result sign(x) y1 2^q; +-0/inf/NaN as they are",
              "cbrt(t) on [1/2, 4), to about 2^-13 (a Newton step follows)",
              {}),
        Frame("erf_small", "erf", (0.0, ERF_BOUNDS[0]), _erf_small_frame,
              "sign(x) core(|x|), core ~ erf on [0, 1]: the first piece of the split erf (|x| < 1)",
              "erf(t) on [0, 1]"),
        Frame("erf_mid", "erf", (ERF_BOUNDS[0] - 1.5, ERF_BOUNDS[1] - 1.5), partial(_erfc_piece_frame, ERF_SHIFTS["erf_mid"]),
              "sign(x) (1 - core(|x| - 1.5)), core ~ erfc: the second piece of the split erf (1 <= |x| < 2)",
              "erfc(t + 1.5) on [-0.5, 0.5]"),
        Frame("erf_tail", "erf", (ERF_BOUNDS[1] - 3.0, ERF_ONE_LAST - 3.0), partial(_erfc_piece_frame, ERF_SHIFTS["erf_tail"]),
              "sign(x) (1 - core(|x| - 3)), core ~ erfc, 1 past 3.9192: the third piece of the split erf (|x| >= 2)",
              "erfc(t + 3) on [-1, 0.9192]"),
        Frame("sin", "sin", (-1.0, 1.0), partial(_trig_frame, False),
              "x/pi = n + g (|x| < 2^20: 1/pi in two parts, fma; beyond: 1/(2 pi) in seven exact 29-bit chunks, "
              "2Sum), result core((-1)^n 2g), x for |x| < 2^-12; NaN for inf (float64 evaluation, cr or faithful mode)",
              "sin(pi v / 2) on [-1, 1]", _TRIG_CONSTANTS, float64_only=True),
        Frame("cos", "cos", (-1.0, 1.0), partial(_trig_frame, True),
              "x/pi + 1/2 = n + g as for sin, result core((-1)^n 2g), 1 for |x| < 2^-12; NaN for inf "
              "(float64 evaluation, cr or faithful mode)",
              "sin(pi v / 2) on [-1, 1]", _TRIG_CONSTANTS, float64_only=True),
        Frame("log", "log", (_SQ - 1.0, 2 * _SQ - 1.0), _log_frame,
              "x = (1 + t) 2^e (frexp, t in [sqrt(1/2)-1, sqrt(2)-1) exact), core g ~ (log1p(t) - t)/t^2, "
              "result e ln2 + t + t^2 g (split ln2, exact-order select); -inf/NaN/inf by select",
              "(log1p(t) - t) / t^2 on [sqrt(1/2) - 1, sqrt(2) - 1]",
              {"SPLIT": SQRT_HALF, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO}),
        Frame("log_atanh", "log", (0.0, _ATANH_U_MAX), _log_atanh_frame,
              "x = (1 + t) 2^e as for log, s = t/(t + 2), core g ~ (2 atanh(s) - 2s)/s^3 in u = s^2, result "
              "fma(e, ln2, 2s + s^3 g) (float64 evaluation, cr mode); -inf/NaN/inf by select",
              "(2 atanh(sqrt u) / sqrt u - 2) / u on [0, 0.02944]",
              {"SPLIT": SQRT_HALF, "LN2": LN2}, float64_only=True),
        Frame("log2_atanh", "log2", (0.0, _ATANH_U_MAX), _log2_atanh_frame,
              "x = (1 + t) 2^e as for log, s = t/(t + 2), core g ~ (2 atanh(s) - 2s)/(s^3 ln2) in u = s^2, result "
              "e + (2/ln2) s + s^3 g (float64 evaluation, cr mode); -inf/NaN/inf by select",
              "(2 atanh(sqrt u) / sqrt u - 2) / (u ln2) on [0, 0.02944]",
              {"SPLIT": SQRT_HALF}, float64_only=True),
        Frame("log10", "log10", (_SQ - 1.0, 2 * _SQ - 1.0), _log10_frame,
              "x = (1 + t) 2^e as for log, core g ~ (log10(1+t) - t/ln10)/t^2, result e log10(2) + t/ln10 + "
              "t^2 g (split constants, the two large terms by Fast2Sum, one final rounding); -inf/NaN/inf by select",
              "(log10(1 + t) - t / ln10) / t^2 on [sqrt(1/2) - 1, sqrt(2) - 1]",
              {"SPLIT": SQRT_HALF, "LOG10_2_HI": LOG10_2_HI, "LOG10_2_LO": LOG10_2_LO,
               "INV_LN10_HI": INV_LN10_HI, "INV_LN10_LO": INV_LN10_LO}),
        Frame("log1p", "log1p", (_SQ - 1.0, 2 * _SQ - 1.0), _log1p_frame,
              "u = 1 + x rounded with its exact remainder c (2Sum), u = (1 + t) 2^e as for log, core g ~ "
              "(log1p(t) - t)/t^2, result e ln2 + t + t^2 g + c/u (exact-order select); x for tiny |x|; "
              "-inf/NaN/inf by select",
              "(log1p(t) - t) / t^2 on [sqrt(1/2) - 1, sqrt(2) - 1]",
              {"SPLIT": SQRT_HALF, "LN2_HI": LN2_HI, "LN2_LO": LN2_LO, "TINY": 2.0**-25}),
        Frame("log2", "log2", (_SQ - 1.0, 2 * _SQ - 1.0), _log2_frame,
              "x = (1 + t) 2^e as for log, core g ~ (log2(1+t) - t/ln2)/t^2, result e + t/ln2 + t^2 g "
              "(split 1/ln2, fma); -inf/NaN/inf by select",
              "(log2(1 + t) - t / ln2) / t^2 on [sqrt(1/2) - 1, sqrt(2) - 1]",
              {"SPLIT": SQRT_HALF, "INV_LN2_HI": INV_LN2_HI, "INV_LN2_LO": INV_LN2_LO}),
    )
}

_CHECKS = {**dict.fromkeys(("exp", "expm1", "sigmoid", "tanh"), _check_exp_constants),
           **dict.fromkeys(("log", "log2", "log1p", "log_atanh", "log2_atanh"), _check_log_constants),
           "exp10": _check_exp10_constants, "log10": _check_log10_constants}


def get_frame(name: str) -> Frame:
    if name not in FRAMES:
        raise FrameError(f"unknown frame {name!r}; frames: {', '.join(FRAMES) or 'none'}")
    return FRAMES[name]


def frame_constants(frame: str | Frame, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The frame's constants with ``overrides`` applied (unknown names and broken exactness refused)."""
    f = get_frame(frame) if isinstance(frame, str) else frame
    consts = dict(f.constants)
    for name, value in (overrides or {}).items():
        if name not in consts:
            raise FrameError(f"frame {f.name!r} has no constant {name!r}; its constants: {', '.join(consts)}")
        consts[name] = float(value)
    if f.name in _CHECKS:
        _CHECKS[f.name]({k: float(np.float32(v)) for k, v in consts.items()})  # what float32 code uses
    return consts


def compose(frame: str | Frame, core: Program, constants: Mapping[str, float] | None = None,
            float64: bool = False) -> Program:
    """The complete program: ``frame`` around ``core`` (constants overridden by ``constants``).

    Its parameters are the core's, in order: fitting it fits the core.  ``float64``: the program
    will compute in float64 (``--mode cr``), where a frame may use a shortcut that is exact only
    there (the exp frames' one-ldexp scaling); the values are the same either way.
    """
    f = get_frame(frame) if isinstance(frame, str) else frame
    return _build(f, core, frame_constants(f, constants) if constants else dict(f.constants), (), float64)[0]


def _build(f: Frame, core: Program, consts: Mapping[str, float], trainable: tuple[str, ...],
           float64: bool = False) -> tuple[Program, tuple]:
    b = _Builder(consts, trainable, float64)
    prog = b.program(f.build(b, core))
    return prog, b.layout


def compose_trainable(frame: str | Frame, core: Program, trainable: tuple[str, ...],
                      constants: Mapping[str, float] | None = None, float64: bool = False) -> tuple[Program, tuple]:
    """``compose`` with the frame constants named in ``trainable`` as ``param`` nodes.

    Returns (program, layout): ``layout[i]`` says what the program's i-th parameter is, ``("core",)``
    or ``("frame", NAME, negated)``; ``split_params(layout, params)`` maps fitted values back to
    (core parameters, frame constants).  This is how a search can tune the frame itself (the low
    part of ln2, the renormalization point...) with the core's fitter; constants whose exactness the
    reduction needs (LN2_HI) must not be trained by moves that leave their bit budget.
    """
    f = get_frame(frame) if isinstance(frame, str) else frame
    unknown = [n for n in trainable if n not in f.constants]
    if unknown:
        raise FrameError(f"frame {f.name!r} has no constant {', '.join(map(repr, unknown))}; "
                         f"its constants: {', '.join(f.constants)}")
    consts = frame_constants(f, constants) if constants else dict(f.constants)
    return _build(f, core, consts, tuple(trainable), float64)


def split_params(layout: tuple, params) -> tuple[tuple[float, ...], dict[str, float]]:
    """(core parameters in order, {frame constant: value}) from a composed program's parameters."""
    core, frame = [], {}
    for spec, value in zip(layout, params):
        if spec[0] == "core":
            core.append(float(value))
        else:
            _, name, negated = spec
            frame[name] = -float(value) if negated else float(value)
    return tuple(core), frame


@dataclass(frozen=True)
class Split:
    """A function made of framed pieces chosen by |x|: piece i serves bounds[i-1] <= |x| < bounds[i].

    Each piece is a frame searched on its own (``--frame PIECE`` on a domain inside its range), so
    a split needs nothing new from the search; ``compose_split`` joins the pieces' composed programs
    into one straight-line program (every piece is computed, one select per bound picks), which
    exports, verifies and vectorizes like any other.
    """

    name: str
    target: str
    pieces: tuple[str, ...]
    bounds: tuple[float, ...]
    description: str


SPLITS: dict[str, Split] = {
    s.name: s
    for s in (
        Split("erf", "erf", ("erf_small", "erf_mid", "erf_tail"), ERF_BOUNDS,
              "erf_small for |x| < 1, erf_mid for [1, 2), erf_tail from 2 (its select gives +-1 past 3.9192)"),
    )
}


def get_split(name: str) -> Split:
    if name not in SPLITS:
        raise FrameError(f"unknown split {name!r}; splits: {', '.join(SPLITS) or 'none'}")
    return SPLITS[name]


def piece_range(split: str | Split, i: int) -> tuple[float, float]:
    """The |x| range piece ``i`` serves: [lo, hi) (0 and inf at the ends)."""
    s = get_split(split) if isinstance(split, str) else split
    edges = (0.0, *s.bounds, math.inf)
    return edges[i], edges[i + 1]


def compose_split(split: str | Split, programs: tuple[Program, ...] | list[Program]) -> Program:
    """One program from the pieces' composed programs (``compose(piece, core)``), in piece order."""
    s = get_split(split) if isinstance(split, str) else split
    if len(programs) != len(s.pieces):
        raise FrameError(f"split {s.name!r} has {len(s.pieces)} pieces ({', '.join(s.pieces)}), "
                         f"not {len(programs)}")
    nodes: list[Node] = [Node("x")]
    seen: dict[tuple, int] = {}

    def add(node: Node) -> int:
        # pieces share their reduction (|x|) and constants: one node each; parameters stay apart
        key = (node.op, node.args, math.copysign(1.0, node.value), node.value)
        if node.op != "param" and key in seen:
            return seen[key]
        nodes.append(node)
        seen[key] = len(nodes) - 1
        return len(nodes) - 1

    outs = []
    for prog in programs:
        remap = {0: 0}
        live = prog.live()
        for i, node in enumerate(prog.nodes[1:], start=1):
            if live[i]:
                remap[i] = add(Node(node.op, tuple(remap[a] for a in node.args), node.value))
        outs.append(remap[prog.output])
    a = add(Node("abs", (0,)))
    y = outs[-1]
    for bound, out in zip(reversed(s.bounds), reversed(outs[:-1])):
        y = add(Node("select_lt", (a, add(Node("const", (), bound)), out, y)))
    return Program(tuple(nodes), y)


def core_reference(frame: str | Frame, t: np.ndarray) -> np.ndarray:
    """What the core ideally computes at core inputs ``t`` (float64; for seeding and tests)."""
    f = get_frame(frame) if isinstance(frame, str) else frame
    t = np.asarray(t, np.float64)
    with np.errstate(all="ignore"):
        if f.name in ("exp", "sigmoid_f64"):
            return np.exp(t)
        if f.name == "exp2":
            return np.exp2(t)
        if f.name == "exp10":
            return np.power(10.0, t)
        if f.name == "sigmoid":
            return np.expm1(t)
        if f.name == "cbrt":
            return np.cbrt(t)
        if f.name in ("sin", "cos"):
            return np.sin(np.pi / 2 * t)
        if f.name == "erf_small":
            from scipy.special import erf

            return erf(t)
        if f.name in ("log_atanh", "log2_atanh"):  # (2 atanh(r)/r - 2)/u, r = sqrt u: a series where it cancels
            r = np.sqrt(np.maximum(t, 0.0))
            series = 2 / 3 + t * (2 / 5 + t * (2 / 7 + t * (2 / 9 + t * (2 / 11 + t * 2 / 13))))
            g = np.where(t < 1e-3, series, (2 * np.arctanh(r) / np.where(r > 0, r, 1.0) - 2) / np.where(t > 0, t, 1.0))
            return g / math.log(2) if f.name == "log2_atanh" else g
        if f.name in ERF_SHIFTS:
            from scipy.special import erfc

            return erfc(t + ERF_SHIFTS[f.name])
        if f.name in ("tanh", "expm1"):  # (e^t - 1 - t) / t^2, by its series near 0 where the quotient cancels
            series = 0.5 + t / 6 + t * t / 24 + t**3 / 120 + t**4 / 720
            return np.where(np.abs(t) < 1e-2, series, (np.expm1(t) - t) / (t * t))
        if f.name in ("log", "log2", "log10", "log1p"):
            base = {"log2": math.log(2), "log10": math.log(10)}.get(f.name, 1.0)
            # series near 0, where the quotient cancels: (log1p t - t)/t^2 = -1/2 + t/3 - t^2/4 + ...
            series = (-0.5 + t / 3 - t * t / 4 + t**3 / 5) / base
            return np.where(np.abs(t) < 1e-3, series, (np.log1p(t) - t) / (t * t) / base)
    raise FrameError(f"no core reference for frame {f.name!r}")


# --- the frame open to evolution ------------------------------------------------------------------
# Two kinds of frame constants can change during a search.  *Fitted* ones are smooth corrections
# (the low part of a split constant) that the constant fitter tunes together with the core.
# *Moved* ones are discrete choices the reduction's exactness constrains (how many bits the high
# part of ln2 keeps, where the log reduction splits, which float32 stands for 1/ln2): mutations move
# them between valid values, and the search keeps what scores better.  Thresholds for special values
# (OVERFLOW, UNDERFLOW) are fixed by the target's C99 behaviour and never change.
FITTED: dict[str, tuple[str, ...]] = {"exp": ("LN2_LO",), "exp10": ("LOG10_2_LO",), "log": ("LN2_LO",),
                                      "log2": ("INV_LN2_LO",)}
MOVED: dict[str, tuple[str, ...]] = {"exp": ("LN2_HI", "INV_LN2"), "log": ("SPLIT", "LN2_HI"),
                                     "log2": ("SPLIT", "INV_LN2_HI")}
# float32 bounds; log's lower bound lies above every LN2_HI a move can pick (see _check_log_constants)
SPLIT_RANGE = {"log": (float.fromhex("0x1.634p-1"), 0.875), "log2": (0.5625, 0.875)}
MAX_F32_STEPS = 8  # INV_LN2, INV_LN2_HI stay within this many float32 ulps of their rounded values


def evolvable(frame: str | Frame) -> tuple[str, ...]:
    """Names of the frame's constants a search may change (fitted ones first); () if none."""
    f = get_frame(frame) if isinstance(frame, str) else frame
    return FITTED.get(f.name, ()) + MOVED.get(f.name, ())


def evolvable_constants(frame: str | Frame, constants: Mapping[str, float] | None = None) -> dict[str, float]:
    """The evolvable constants' values: the frame's defaults, overridden (and checked) by ``constants``."""
    f = get_frame(frame) if isinstance(frame, str) else frame
    consts = frame_constants(f, constants)
    return {name: consts[name] for name in evolvable(f)}


def _exact_split(value, hi: float) -> float:
    """value - hi, for a split constant value = hi + lo (``value`` an mpmath number)."""
    import mpmath

    with mpmath.workprec(160):
        return float(value - mpmath.mpf(hi))


def _f32_step(value: float, steps: int) -> float:
    bits = np.array([value], np.float32).view(np.int32)[0] + np.int32(steps)
    return float(np.array([bits], np.int32).view(np.float32)[0])


def _ln2_hi(rng: np.random.Generator) -> float:
    """ln2 rounded down or up to 12..15 significant bits (k * LN2_HI stays exact)."""
    bits = int(rng.integers(12, 16))
    m, e = math.frexp(math.log(2))
    scaled = math.floor(m * 2**bits) if rng.random() < 0.5 else math.ceil(m * 2**bits)
    return math.ldexp(scaled, e - bits)


def mutate_constants(frame: str | Frame, constants: Mapping[str, float], rng: np.random.Generator) -> tuple[dict[str, float], str]:
    """A neighbouring valid choice of one moved constant: (new evolvable constants, what moved).

    Split pairs stay consistent: a new high part comes with the low part that completes the exact
    constant (the fitter may then tune the low part further).  Returns the constants unchanged
    (and "") for a frame with nothing to move.
    """
    import mpmath

    f = get_frame(frame) if isinstance(frame, str) else frame
    consts = evolvable_constants(f, constants)
    names = MOVED.get(f.name, ())
    if not names:
        return consts, ""
    name = names[int(rng.integers(len(names)))]
    for _ in range(16):  # a draw can land on a value the checks refuse (SPLIT against LN2_HI): redraw
        new = dict(consts)
        if name == "LN2_HI":
            new["LN2_HI"] = _ln2_hi(rng)
            new["LN2_LO"] = _exact_split(mpmath.ln2, new["LN2_HI"])
        elif name == "SPLIT":
            lo, hi = SPLIT_RANGE[f.name]
            moved = float(np.float32(consts["SPLIT"] * math.exp(rng.normal(0.0, 0.04))))
            new["SPLIT"] = float(np.float32(min(max(moved, lo), hi)))
        else:  # INV_LN2 or INV_LN2_HI: a few float32 ulps around 1/ln2 rounded
            home = float(np.float32(1 / math.log(2)))
            step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
            moved = _f32_step(consts[name], step)
            new[name] = moved if abs(moved - home) <= MAX_F32_STEPS * 2**-23 else home
            if name == "INV_LN2_HI":
                new["INV_LN2_LO"] = _exact_split(1 / mpmath.ln2, new["INV_LN2_HI"])
        try:
            frame_constants(f, new)
        except FrameError:
            continue
        if new != consts:
            return new, name
    return consts, ""
