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
The fitter's smooth stand-in is the symmetric weight 1 / (smaller room) (``room_weight``): its
weighted error bounds r from above.
"""

from __future__ import annotations

import numpy as np

from .metrics import correctly_rounded
from .reference import Reference

CR_LIMIT = 1.0  # cr ratio below this: correctly rounded
MIN_ROOM = 2.0**-60  # relative to v's spacing: an exact value on a midpoint still gets a finite weight


def rounding_room(ref: Reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v, room below f, room above f) in float64, from exact reference values f = hi + lo."""
    v32 = np.asarray(correctly_rounded(ref.hi, ref.lo, "float32"), np.float32)
    with np.errstate(all="ignore"):
        v = v32.astype(np.float64)
        up = np.nextafter(v32, np.float32(np.inf)).astype(np.float64)
        down = np.nextafter(v32, np.float32(-np.inf)).astype(np.float64)
        mid_up, mid_down = (v + up) / 2, (v + down) / 2  # exact in float64
        # past +-FLT_MAX the rounding boundary is half an ulp beyond it (then +-inf)
        mid_up = np.where(np.isinf(up) & np.isfinite(v), v + (v - down) / 2, mid_up)
        mid_down = np.where(np.isinf(down) & np.isfinite(v), v - (up - v) / 2, mid_down)
        above = (mid_up - ref.hi) - ref.lo
        below = (ref.hi - mid_down) + ref.lo
        floor = MIN_ROOM * (up - down)
        return v, np.maximum(below, floor), np.maximum(above, floor)


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


def room_weight(ref: Reference) -> np.ndarray:
    """1 / (the smaller room): the fitter's symmetric, conservative stand-in for the cr ratio."""
    v, below, above = rounding_room(ref)
    with np.errstate(all="ignore"):
        w = 1.0 / np.minimum(below, above)
    return np.where(np.isfinite(w) & np.isfinite(v) & (v != 0), w, 0.0)


def misrounded(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the float64 values ``y``, rounded to float32, differ from the correctly rounded ``v``."""
    with np.errstate(all="ignore"):
        r = np.asarray(y, np.float64).astype(np.float32)
    v32 = np.asarray(v, np.float64).astype(np.float32)
    return ~((r.view(np.uint32) == v32.view(np.uint32)) | (np.isnan(r) & np.isnan(v32)))
