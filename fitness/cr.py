"""The correct-rounding objective: how much of its rounding interval's room a float64 value uses.

A mixed-precision program (float32 in, float64 inside, one final ``cvt_f32``: ``dsl.ops``) is
correctly rounded at x exactly when its float64 value y, before that last rounding, lies inside
the rounding interval of the correctly rounded float32 result v = RN(f(x)): the open interval
between the midpoints to v's float32 neighbours (below a power of two the lower neighbour is half
as far).  These are the rounding-interval constraints RLIBM fits its polynomials to.  The exact
value f lies inside that interval, at some distance from each end: the *room* below and above.
The measure used here is the *cr ratio*

    r = (y - f) / room above f   (y >= f),    (f - y) / room below f   (y < f)

and y rounds to v exactly when r < 1.  A search in ``--mode cr`` minimizes max r over its points:
max r < 1 means every point is correctly rounded.  Inputs whose exact value lies near a midpoint
(little room) weigh the most, as they should: they are where correct rounding is hard.

Inputs whose correctly rounded value is infinite or zero (overflow, underflow, a zero of the
target) have no interval of this kind: their r is 0 when y rounds to v and infinite otherwise.
``faithful`` rooms (``--mode faithful``) measure the same ratio against a wider interval: the
float64 values that round to either float32 neighbour of f, which are within 1 ULP of it.

The fitter itself minimizes the error in float32 ulps (a minimax relative fit leaves the most room
everywhere at once); weighting by 1 / room made early fits chase the few hardest inputs.
"""

from __future__ import annotations

import numpy as np

from dsl.program import Node, Program

from .metrics import correctly_rounded
from .reference import Reference

CR_LIMIT = 1.0  # cr ratio below this: correctly rounded
MIN_ROOM = 2.0**-60  # relative to v's spacing: an exact value on a midpoint still gets a finite weight


def rounded_once(program: Program) -> Program:
    """A float64 program followed by its one rounding to float32 (``cvt_f32``): how a ``--mode cr``
    program runs, float32 in and out."""
    return Program(program.nodes + (Node("cvt_f32", (program.output,)),), len(program.nodes))


def rounding_room(ref: Reference, faithful: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v, room below f, room above f) in float64, from exact reference values f = hi + lo.

    ``faithful``: the room of the faithful interval instead, where y rounds to either float32
    neighbour of f (f's own value when f is a float32): from the midpoint below the lower
    neighbour to the midpoint above the upper one.  A result there is within 1 ULP of f, and the
    room is at least half an ulp on each side, so no input is hard; v stays the correctly rounded
    value (what ``misrounded`` compares with)."""
    v32 = np.asarray(correctly_rounded(ref.hi, ref.lo, "float32"), np.float32)
    with np.errstate(all="ignore"):
        v = v32.astype(np.float64)
        lo32 = hi32 = v32
        if faithful:
            side = (ref.hi - v) + ref.lo  # f - v, its sign exact
            lo32 = np.where(side < 0, np.nextafter(v32, np.float32(-np.inf)), v32)
            hi32 = np.where(side > 0, np.nextafter(v32, np.float32(np.inf)), v32)
        mid_down = _midpoint(lo32, -1)
        mid_up = _midpoint(hi32, 1)
        above = (mid_up - ref.hi) - ref.lo
        below = (ref.hi - mid_down) + ref.lo
        up = np.nextafter(v32, np.float32(np.inf)).astype(np.float64)
        down = np.nextafter(v32, np.float32(-np.inf)).astype(np.float64)
        width = up - down
        floor = MIN_ROOM * np.where(np.isfinite(width), width, 2 * np.minimum(up - v, v - down))  # finite at +-FLT_MAX
        return v, np.maximum(below, floor), np.maximum(above, floor)


def _midpoint(w32: np.ndarray, direction: int) -> np.ndarray:
    """The rounding boundary between float32 values ``w32`` and their neighbours in ``direction``
    (exact in float64); past +-FLT_MAX it is half an ulp beyond it (then +-inf)."""
    w = w32.astype(np.float64)
    nxt = np.nextafter(w32, np.float32(direction * np.inf)).astype(np.float64)
    back = np.nextafter(w32, np.float32(-direction * np.inf)).astype(np.float64)
    return np.where(np.isinf(nxt) & np.isfinite(w), w + (w - back) / 2, (w + nxt) / 2)


def cr_ratio(y: np.ndarray, ref: Reference, room: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """r per point (see the module docstring): below 1 exactly where y rounds to the correct float32."""
    v, below, above = rounding_room(ref) if room is None else room
    y = np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        d = (y - ref.hi) - ref.lo
        r = np.where(d >= 0, d / above, -d / below)
        special = ~np.isfinite(v) | (v == 0) | ~np.isfinite(r)
        if np.any(special):
            r = np.where(special, np.where(misrounded(y, v), np.inf, 0.0), r)
    return r


def misrounded(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the float64 values ``y``, rounded to float32, differ from the correctly rounded ``v``."""
    with np.errstate(all="ignore"):
        r = np.asarray(y, np.float64).astype(np.float32)
    v32 = np.asarray(v, np.float64).astype(np.float32)
    return ~((r.view(np.uint32) == v32.view(np.uint32)) | (np.isnan(r) & np.isnan(v32)))


# --- the hard inputs: exact values nearest a rounding midpoint ----------------------------------------
HARD_POINTS = 1024  # joined to a cr-mode problem's fitness points
HARD_VERSION = 1


def midpoint_margin(x32: np.ndarray, f64: np.ndarray) -> np.ndarray:
    """How near each float64 value ``f64`` lies to a float32 rounding midpoint: the smaller room
    over the spacing there (0 on a midpoint, 1/2 on a float32).  From float64 values, so good to
    about 2^-28: enough to rank inputs by difficulty, not to decide their rounding."""
    with np.errstate(all="ignore"):
        v32 = f64.astype(np.float32)
        v = v32.astype(np.float64)
        up = np.nextafter(v32, np.float32(np.inf)).astype(np.float64)
        down = np.nextafter(v32, np.float32(-np.inf)).astype(np.float64)
        m = np.minimum(((v + up) / 2 - f64) / (up - v), (f64 - (v + down) / 2) / (v - down))
    return np.where(np.isfinite(m) & np.isfinite(v) & (v != 0), m, np.inf)


def hard_inputs(target, lo: float, hi: float, k: int = HARD_POINTS, use_cache: bool = True,
                chunk: int = 1 << 22) -> np.ndarray:
    """The ``k`` float32 inputs of [lo, hi] whose exact values lie nearest a rounding midpoint
    (float64 values, sorted), read off the target's float64 function over every float32 of the
    domain (2^30 inputs take about a minute) and cached on disk; empty for a target without a
    float64 function.  These are the inputs a correctly rounded program finds hardest: the room
    their rounding interval leaves is the smallest.  The hardest come in runs of neighbours (near
    0, f(x) ~ f(0) + f'(0) x moves slowly through a midpoint), so each chunk of 2^22 consecutive
    inputs (half a binade) keeps its own hardest few, and the hardest ``k`` of those are kept:
    the set spreads over the binades of the domain."""
    import hashlib

    from .points import all_floats
    from .reference import cache_path, read_cached, write_cached

    if target.np_fn is None or k <= 0:
        return np.empty(0, np.float64)
    key = hashlib.sha256(f"v{HARD_VERSION}|{target.name}|{target.fingerprint}|{lo!r}|{hi!r}|{k}".encode()).hexdigest()[:32]
    path = cache_path("hard", target, key)
    use_cache = use_cache and bool(target.fingerprint)
    data = read_cached(path, HARD_VERSION) if use_cache else None
    if data is not None and "x" in data:
        return data["x"]
    from .points import count_floats

    per_chunk = max(2, k * chunk // max(count_floats(lo, hi, "float32"), 1))
    best_x, best_m = np.empty(0, np.float32), np.empty(0, np.float64)
    for x in all_floats(lo, hi, "float32", chunk=chunk):
        with np.errstate(all="ignore"):
            f = np.asarray(target.np_fn(x.astype(np.float64)), np.float64)
        m = midpoint_margin(x, f)
        if len(m) > per_chunk:
            keep = np.argpartition(m, per_chunk)[:per_chunk]
            x, m = x[keep], m[keep]
        best_x, best_m = np.concatenate([best_x, x]), np.concatenate([best_m, m])
        if len(best_m) > k:
            keep = np.argpartition(best_m, k)[:k]
            best_x, best_m = best_x[keep], best_m[keep]
    out = np.sort(best_x[np.isfinite(best_m)].astype(np.float64))
    if use_cache:
        write_cached(path, HARD_VERSION, x=out)
    return out


# --- exceptions: the few inputs no float64 evaluation rounds correctly ---------------------------------
MAX_EXCEPTIONS = 8
_SAME_INPUT = 2.0**-200  # below any difference of two distinct float32 values


def with_exceptions(program, inputs, values):
    """``program`` with its result replaced by ``values[i]`` exactly at float32 input ``inputs[i]``.

    Some exact values lie so near a rounding midpoint (within a float64 ulp) that the float64
    value before the last rounding lands on the midpoint or past it for any accurate core; an
    exhaustive check finds them, and CORE-MATH lists such inputs as exceptions too.  Each one
    costs a subtraction, an absolute value and a select: ``|x - a| < 2^-200`` holds only at
    x = a (two float32 values differ by at least 2^-149, exactly in float64), and is false for
    NaN, which keeps the program's own result.  Values must be float32 numbers (the correctly
    rounded results): the program's final ``cvt_f32`` has already rounded the rest.
    """
    from dsl.program import Node, Program

    nodes = list(program.nodes)
    y = program.output
    tiny = len(nodes)
    nodes.append(Node("const", (), _SAME_INPUT))
    for a, c in zip(inputs, values):
        nodes.append(Node("const", (), float(a)))
        nodes.append(Node("sub", (0, len(nodes) - 1)))
        nodes.append(Node("abs", (len(nodes) - 1,)))
        nodes.append(Node("const", (), float(c)))
        nodes.append(Node("select_lt", (len(nodes) - 2, tiny, len(nodes) - 1, y)))
        y = len(nodes) - 1
    return Program(tuple(nodes), y)
