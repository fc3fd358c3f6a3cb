"""Double-double arithmetic and a double-double program evaluator (real-number semantics).

A value is a pair (hi, lo) of float64 arrays (or scalars) with |lo| <= ulp(hi)/2: about 106
significant bits, so a program's residual against a 106-bit reference is exact to ~1e-30 whatever
the program's condition.  ``evaluate_dd`` also carries forward-mode derivatives with respect to
every constant (float64 tangents beside the double-double values: exact up to float64 rounding,
no step size), which the minimax refiner (``fitness.minimax``) steps with.
"""

from __future__ import annotations

import numpy as np

from dsl.interpret import Semantics, fold
from dsl.ops import LDEXP2_RANGE, LDEXP_CLAMP, OPS
from dsl.program import Program

# A value is a pair (hi, lo) of float64 arrays (or scalars) with |lo| <= ulp(hi)/2.

_SPLIT = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _quick_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fix(hi, lo, plain):
    """Where double-double overflowed (inf/NaN), fall back to the plain float64 result.

    Overflow is not an error in real mode (the exact value exists), and IEEE infinities give the
    right limit of expressions such as ``c / (x + k / x)`` at tiny x; NaN stays NaN.
    """
    bad = ~np.isfinite(hi)
    if np.any(bad):
        hi = np.where(bad, plain, hi)
        lo = np.where(bad, 0.0, lo)
    badlo = ~np.isfinite(lo)
    if np.any(badlo):
        lo = np.where(badlo, 0.0, lo)
    return hi, lo


def dd_add(a, b, careful: bool = True):
    (ah, al), (bh, bl) = a, b
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    s, e = _quick_two_sum(s, e + t)
    s, e = _quick_two_sum(s, e + f)
    return _fix(s, e, ah + bh) if careful else (s, e)


def dd_neg(a):
    return -a[0], -a[1]


def dd_sub(a, b, careful: bool = True):
    return dd_add(a, dd_neg(b), careful)


def dd_mul(a, b, careful: bool = True):
    (ah, al), (bh, bl) = a, b
    p, e = _two_prod(ah, bh)
    p, e = _quick_two_sum(p, e + (ah * bl + al * bh))
    return _fix(p, e, ah * bh) if careful else (p, e)


def _dd_mul_d(a, q):
    p, e = _two_prod(a[0], q)
    return _quick_two_sum(p, e + a[1] * q)


def dd_div(a, b, careful: bool = True):
    """a / b; division by an exact zero is undefined in real mode (NaN)."""
    ah, (bh, bl) = a[0], b
    q1 = ah / bh
    r = dd_sub(a, _dd_mul_d(b, q1), False)
    q2 = r[0] / bh
    r = dd_sub(r, _dd_mul_d(b, q2), False)
    q3 = r[0] / bh
    q1, q2 = _quick_two_sum(q1, q2)
    hi, lo = dd_add((q1, q2), (q3, 0.0), False)
    if not careful:
        return hi, lo
    hi, lo = _fix(hi, lo, ah / bh)
    zero = (bh == 0) & (bl == 0)
    if np.any(zero):
        hi = np.where(zero, np.nan, hi)
    return hi, lo


def dd_sqrt(a, careful: bool = True):
    ah, al = a
    s = np.sqrt(np.maximum(ah, 0.0))
    p, e = _two_prod(s, s)
    r = dd_sub((ah, al), (p, e), False)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(s > 0, r[0] / (2.0 * s), 0.0)
    hi, lo = _quick_two_sum(s, corr)
    if careful:
        hi, lo = _fix(hi, lo, s)
    neg = ah < 0
    if np.any(neg):
        hi = np.where(neg, np.nan, hi)
    return hi, lo


def _dd_floor(a):
    ah, al = a
    fh = np.floor(ah)
    whole = fh == ah
    fl = np.where(whole, np.floor(al), 0.0)
    return _quick_two_sum(fh, fl)


def _dd_round(a):
    ah, al = a
    rh = np.rint(ah)
    whole = rh == ah
    tie = (np.abs(ah - rh) == 0.5) & (al != 0)
    rh = np.where(tie, ah + 0.5 * np.sign(al), rh)
    rl = np.where(whole, np.rint(al), 0.0)
    return _quick_two_sum(rh, rl)


def _dd_trunc_int(k):
    kh, kl = k
    kk = np.trunc(kh)
    whole = kk == kh
    kk = np.where(whole & (kh > 0) & (kl < 0), kk - 1, kk)
    kk = np.where(whole & (kh < 0) & (kl > 0), kk + 1, kk)
    return kk


def _dd_ldexp(a, k, op: str = "ldexp"):
    """a * 2**n with n from k as ``op`` takes it (``dsl.ops.ldexp_exponent``), exactly."""
    kk = _dd_trunc_int(k)
    if op == "ldexp":
        nan = np.isnan(kk)
        kk = np.clip(np.nan_to_num(kk, nan=0.0), -LDEXP_CLAMP, LDEXP_CLAMP).astype(np.int64)
    else:
        lo, hi = LDEXP2_RANGE["float64"]
        nan = np.zeros(np.shape(kk), bool)
        kk = np.where(kk > lo, kk, lo)  # NaN -> lo
        kk = np.where(kk < hi, kk, hi).astype(np.int64)
    hi_, lo_ = np.ldexp(a[0], kk), np.ldexp(a[1], kk)
    return np.where(nan, np.nan, hi_), lo_, kk


def _dd_frexp(a):
    ah, al = a
    m, e = np.frexp(ah)
    e = e.astype(np.int64)
    lower = (np.abs(m) == 0.5) & (al != 0) & (np.sign(al) != np.sign(ah))
    e = np.where(lower, e - 1, e)
    ok = np.isfinite(ah) & (ah != 0)
    e = np.where(ok, e, 0)
    return (np.ldexp(ah, -e), np.ldexp(al, -e)), e


def _dd_less(a, b):
    return (a[0] < b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))


def _t_add(*ts):
    out = None
    for t in ts:
        if t is not None:
            out = t if out is None else out + t
    return out


def _t_scale(t, s):
    return None if t is None else t * s


def evaluate_dd(program: Program, x, params=None, jacobian: bool = False):
    """The program at float64 points ``x`` in double-double arithmetic (real-number semantics).

    Returns ``(hi, lo)``, or ``(hi, lo, jac)`` with ``jacobian``: ``jac[j]`` is the derivative of
    the output with respect to the j-th parameter (forward mode, float64), shape ``(k, len(x))``.
    ``params`` replaces the program's parameter values.  Undefined results are NaN.

    A fast pass skips the overflow handling of every operation; points where its result is not
    finite are evaluated again with it (``_fix``), so overflowing intermediates still give their
    IEEE limits.
    """
    xs = np.asarray(x, np.float64)
    theta = np.asarray(program.params if params is None else params, np.float64)
    out = _evaluate_dd(program, xs, theta, jacobian, careful=False)
    bad = ~(np.isfinite(out[0]) & np.isfinite(out[1]))
    if jacobian:
        bad |= ~np.all(np.isfinite(out[2]), axis=0)
    if np.any(bad):
        idx = np.nonzero(bad)[0]
        again = _evaluate_dd(program, xs[idx], theta, jacobian, careful=True)
        for full, part in zip(out, again):
            full[..., idx] = part
    return out


def _dd_abs(a, ta, careful, k):
    s = np.where(a[0][0] < 0, -1.0, 1.0)
    return (a[0][0] * s, a[0][1] * s), _t_scale(ta[0], s)


def _dd_copysign(a, ta, careful, k):
    s = np.where(a[0][0] < 0, -1.0, 1.0) * np.where(a[1][0] < 0, -1.0, 1.0)
    return (a[0][0] * s, a[0][1] * s), _t_scale(ta[0], s)


def _dd_ldexp_op(a, ta, careful, k, op: str = "ldexp"):
    hi, lo, kk = _dd_ldexp(a[0], a[1], op)
    return (hi, lo), _t_scale(ta[0], np.ldexp(1.0, kk))


def _dd_frexp_m_op(a, ta, careful, k):
    v, e = _dd_frexp(a[0])
    return v, _t_scale(ta[0], np.ldexp(1.0, -e))


def _dd_frexp_e_op(a, ta, careful, k):
    _, e = _dd_frexp(a[0])
    return (e.astype(np.float64), 0.0), None


def _dd_select_lt(a, ta, careful, k):
    less = _dd_less(a[0], a[1])
    v = (np.where(less, a[2][0], a[3][0]), np.where(less, a[2][1], a[3][1]))
    t = None
    if ta[2] is not None or ta[3] is not None:
        zero = np.zeros((k, 1))
        t = np.where(less, zero if ta[2] is None else ta[2], zero if ta[3] is None else ta[3])
    return v, t


def _dd_div_op(a, ta, careful, k):
    v = dd_div(a[0], a[1], careful)
    t = None
    if ta[0] is not None or ta[1] is not None:
        t = _t_scale(_t_add(ta[0], _t_scale(ta[1], -v[0])), 1.0 / a[1][0])
    return v, t


def _dd_sqrt_op(a, ta, careful, k):
    v = dd_sqrt(a[0], careful)
    return v, _t_scale(ta[0], 0.5 / v[0])


#: op -> f(values, tangents, careful, k) -> (value, tangent): values are (hi, lo) pairs, tangents
#: (k, 1 or n) arrays of derivatives with respect to the k constants, or None where constant
DD_IMPL = {
    "add": lambda a, ta, c, k: (dd_add(a[0], a[1], c), _t_add(ta[0], ta[1])),
    "sub": lambda a, ta, c, k: (dd_sub(a[0], a[1], c), _t_add(ta[0], _t_scale(ta[1], -1.0))),
    "mul": lambda a, ta, c, k: (dd_mul(a[0], a[1], c), _t_add(_t_scale(ta[0], a[1][0]), _t_scale(ta[1], a[0][0]))),
    "div": _dd_div_op,
    "fma": lambda a, ta, c, k: (dd_add(dd_mul(a[0], a[1], c), a[2], c),
                                _t_add(_t_scale(ta[0], a[1][0]), _t_scale(ta[1], a[0][0]), ta[2])),
    "neg": lambda a, ta, c, k: (dd_neg(a[0]), _t_scale(ta[0], -1.0)),
    "sqrt": _dd_sqrt_op,
    "abs": _dd_abs,
    "copysign": _dd_copysign,
    "floor": lambda a, ta, c, k: (_dd_floor(a[0]), None),
    "round": lambda a, ta, c, k: (_dd_round(a[0]), None),
    "ldexp": _dd_ldexp_op,
    "ldexp2": lambda a, ta, c, k: _dd_ldexp_op(a, ta, c, k, "ldexp2"),
    "frexp_m": _dd_frexp_m_op,
    "frexp_e": _dd_frexp_e_op,
    "select_lt": _dd_select_lt,
    "cvt_f32": lambda a, ta, c, k: (a[0], ta[0]),  # a rounding: ignored in real numbers (dsl.ops)
}


class DDSemantics(Semantics):
    """(double-double value, tangent) pairs; ``denominators`` collects every division's divisor."""

    def __init__(self, xs: np.ndarray, theta: np.ndarray, jacobian: bool, careful: bool,
                 denominators: list | None = None):
        self.xs, self.theta, self.jacobian, self.careful = xs, theta, jacobian, careful
        self.k, self.denominators = len(theta), denominators

    def input(self):
        return (self.xs, np.zeros(self.xs.shape[0])), None

    def const(self, i, value):
        return (float(value), 0.0), None

    def param(self, i, value, k):
        t = None
        if self.jacobian:
            t = np.zeros((self.k, 1))
            t[k, 0] = 1.0
        return (float(self.theta[k]), 0.0), t

    def apply(self, i, node, args):
        a = [v for v, _t in args]
        ta = [t for _v, t in args] if self.jacobian else [None] * len(args)
        if node.op == "div" and self.denominators is not None:
            self.denominators.append(a[1][0])
        v, t = DD_IMPL[node.op](a, ta, self.careful, self.k)
        if self.careful and t is not None and not np.all(np.isfinite(t)):
            # an intermediate overflowed (c / x at tiny x): where the value is still finite its
            # derivative's limit is 0 (c2 / (c1 / x) -> 0 whatever c1), not inf * 0 = NaN
            t = np.where(np.isfinite(t) | ~np.isfinite(v[0]), t, 0.0)
        return v, t


def _evaluate_dd(program: Program, xs: np.ndarray, theta: np.ndarray, jacobian: bool, careful: bool,
                 denominators: list | None = None):
    n = xs.shape[0]
    k = len(theta)
    with np.errstate(all="ignore"):
        (hi, lo), t = fold(program, DDSemantics(xs, theta, jacobian, careful, denominators))
    hi = np.broadcast_to(np.asarray(hi, np.float64), (n,)).copy()
    lo = np.broadcast_to(np.asarray(lo, np.float64), (n,)).copy()
    if not jacobian:
        return hi, lo
    jac = np.zeros((k, n)) if t is None else np.broadcast_to(t, (k, n)).copy()
    return hi, lo, jac


assert set(DD_IMPL) == set(OPS), "every op in dsl.ops.OPS needs double-double semantics"
