"""A rigorous upper bound on a program's maximum relative error over an interval.

``fitness.real_error`` *samples* the relative error ``r(x) = p(x)/f(x) - 1``; a sample can miss a
narrow peak.  This module proves an upper bound with interval arithmetic (``mpmath.iv``, outward
rounding), on an adaptive partition of [lo, hi].

Why Taylor forms.  Evaluating ``p(X)/f(X) - 1`` on an interval X directly (the "naive" form)
overestimates by about ``|p'| * width(X)``: p and f are treated as independent, so their
agreement to 15 digits is invisible unless X is narrower than ~1e-15.  The mean-value form
``r(m) + r'(X)(X - m)`` only moves the problem to the second order: the enclosure of r'(X)
is wide by ``|p''| * width``, so a bound of 1e-15 would need widths near 1e-7.  Instead each
subinterval ``X = c + h*T`` is bounded by an order-K Taylor form in the scaled variable
``tau = (x - c) / h``::

    r(c + h*tau) in  sum_{j<=K} R_j tau^j  +  R_{K+1}(X) * T^{K+1}

where ``R_j`` are the Taylor coefficients of r at the point c (thin intervals) and
``R_{K+1}(X)`` encloses the (K+1)-th coefficient over the whole subinterval (Lagrange
remainder).  Both come from forward-mode Taylor arithmetic on truncated power series with
interval coefficients, implemented below for every DSL operation and for the built-in targets
(``TARGET_SERIES``).  The polynomial part is bounded on a grid of tau plus a second-derivative
margin, so the overestimation shrinks like ``h^(K+1)``.  The naive form is kept as well and the
smaller bound wins: it is the better one on tiny intervals and where a program is not smooth.

Targets that vanish at a float z of the domain (log and log2 at 1; erf, tanh, sin at 0) are
handled by expanding at z and dividing both series by tau first: if p(z) = 0 exactly,
``p(x)/tau`` has Taylor coefficients enclosed by the shifted coefficients of p (mean value
theorem for integrals), so the removable singularity of p/f costs nothing.

Rigor and its limits.  Arithmetic, sqrt, exp, log, sin and cos come from mpmath's interval
context.  ``erf`` has no interval version in mpmath; it is enclosed by monotonicity from point
values computed with 32 guard bits and widened by twice their precision, which relies on
mpmath's erf being accurate to its working precision (true, but not machine-checked like
``iv.exp``).  Programs whose branch operations (floor, round, select_lt, ...) change branch
inside a subinterval get only the naive bound there, which rarely converges.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass
from typing import Callable

import mpmath
from mpmath import iv

from dsl.interpret import Semantics, fold
from dsl.ops import ldexp_exponent
from dsl.program import Program
from fitness.real_error import max_relative_error
from fitness.targets import Target, get_target

Series = list  # truncated Taylor series: a list of iv.mpf; length 1 means a constant

#: Exact float zeros of the built-in targets, where the relative error is a removable singularity.
KNOWN_ZEROS: dict[str, tuple[float, ...]] = {
    "log": (1.0,), "log2": (1.0,), "erf": (0.0,), "tanh": (0.0,), "sin": (0.0,),
}


class _NoBound(Exception):
    """No finite bound on this subinterval (a pole, a sqrt or log of a non-positive value)."""


class _NotSmooth(Exception):
    """A branch operation switches inside the subinterval: no Taylor form, only the naive one."""


@dataclass(frozen=True)
class ErrorBound:
    """A proven ``upper_bound`` on max |p(x)/f(x) - 1| over [lo, hi].

    ``sampled_max`` is the largest error actually observed (``fitness.real_error``, or a
    rigorous lower bound found on the way, whichever is larger); ``converged`` says the bound is
    within the requested factor of it.  ``n_intervals`` is the size of the final partition.
    """

    upper_bound: float
    sampled_max: float
    n_intervals: int
    converged: bool
    n_evaluations: int = 0
    elapsed_s: float = 0.0

    @property
    def ratio(self) -> float:
        """How much larger the bound is than the observed maximum (>= 1 up to rounding)."""
        return self.upper_bound / self.sampled_max if self.sampled_max > 0 else math.inf


# --- interval helpers ------------------------------------------------------------------------------
def _lo(a) -> mpmath.mpf:
    return mpmath.mp.make_mpf(a._mpi_[0])


def _hi(a) -> mpmath.mpf:
    return mpmath.mp.make_mpf(a._mpi_[1])


def _mag(a) -> mpmath.mpf:
    return max(abs(_lo(a)), abs(_hi(a)))


def _hull(a, b):
    return iv.mpf([min(_lo(a), _lo(b)), max(_hi(a), _hi(b))])


def _has_zero(a) -> bool:
    return _lo(a) <= 0 <= _hi(a)


def _zero():
    return iv.mpf(0)


# --- truncated power series with interval coefficients ---------------------------------------------
def s_const(value) -> Series:
    return [iv.mpf(value)]


def s_add(a: Series, b: Series) -> Series:
    if len(a) < len(b):
        a, b = b, a
    out = list(a)
    for i, v in enumerate(b):
        out[i] = out[i] + v
    return out


def s_neg(a: Series) -> Series:
    return [-v for v in a]


def s_sub(a: Series, b: Series) -> Series:
    return s_add(a, s_neg(b))


def s_scale(a: Series, c) -> Series:
    return [c * v for v in a]


def s_mul(a: Series, b: Series) -> Series:
    if len(a) == 1:
        return s_scale(b, a[0])
    if len(b) == 1:
        return s_scale(a, b[0])
    n = min(len(a), len(b))
    out = []
    for k in range(n):
        acc = a[0] * b[k]
        for i in range(1, k + 1):
            acc += a[i] * b[k - i]
        out.append(acc)
    return out


def s_sqr(a: Series) -> Series:
    """a*a, with half the products of s_mul and no dependency loss in the even terms."""
    out = []
    for k in range(len(a)):
        acc = None
        for i in range((k + 1) // 2):
            term = a[i] * a[k - i]
            acc = term if acc is None else acc + term
        acc = _zero() if acc is None else 2 * acc
        if k % 2 == 0:
            acc += a[k // 2] ** 2
        out.append(acc)
    return out


def _check_divisor(b0) -> None:
    if _has_zero(b0):
        raise _NoBound("division by an interval containing 0")


def s_div(a: Series, b: Series) -> Series:
    _check_divisor(b[0])
    if len(b) == 1:
        return [v / b[0] for v in a]
    n = len(b)
    a = a + [_zero()] * (n - len(a))
    q: Series = []
    for k in range(n):
        acc = a[k]
        for i in range(k):
            acc -= q[i] * b[k - i]
        q.append(acc / b[0])
    return q


def s_sqrt(a: Series) -> Series:
    a0 = a[0]
    if _hi(a0) < 0:
        raise _NoBound("sqrt of a negative value")
    if len(a) == 1:
        if _lo(a0) < 0:
            raise _NoBound("sqrt of a possibly negative value")
        return [iv.sqrt(a0)]
    if _lo(a0) <= 0:
        raise _NotSmooth("sqrt at or below 0")
    s = [iv.sqrt(a0)]
    for k in range(1, len(a)):
        acc = a[k]
        for i in range(1, k):
            acc -= s[i] * s[k - i]
        s.append(acc / (2 * s[0]))
    return s


def s_exp(a: Series) -> Series:
    e = [iv.exp(a[0])]
    for k in range(1, len(a)):
        acc = a[1] * e[k - 1]
        for i in range(2, k + 1):
            acc += i * a[i] * e[k - i]
        e.append(acc / k)
    return e


def s_log(a: Series) -> Series:
    if _lo(a[0]) <= 0:
        raise _NoBound("log of a non-positive value")
    out = [iv.log(a[0])]
    for k in range(1, len(a)):
        acc = a[k]
        for i in range(1, k):
            acc -= i * out[i] * a[k - i] / k
        out.append(acc / a[0])
    return out


def s_sincos(a: Series) -> tuple[Series, Series]:
    s, c = [iv.sin(a[0])], [iv.cos(a[0])]
    for k in range(1, len(a)):
        acc_s, acc_c = a[1] * c[k - 1], a[1] * s[k - 1]
        for i in range(2, k + 1):
            acc_s += i * a[i] * c[k - i]
            acc_c += i * a[i] * s[k - i]
        s.append(acc_s / k)
        c.append(-acc_c / k)
    return s, c


def _iv_erf(x):
    """erf on an interval by monotonicity (mpmath.iv has none): point values + outward margin."""
    prec = iv.prec
    with mpmath.workprec(prec + 32):
        lo, hi = mpmath.erf(_lo(x)), mpmath.erf(_hi(x))
        eps = mpmath.ldexp(mpmath.mpf(1), -(prec + 30))
        lo, hi = lo - abs(lo) * eps, hi + abs(hi) * eps
    return iv.mpf([lo, hi])


def s_erf(a: Series) -> Series:
    out = [_iv_erf(a[0])]
    n = len(a)
    if n == 1:
        return out
    # erf' = 2/sqrt(pi) exp(-a^2) a'; integrate term by term
    g = s_exp(s_neg(s_sqr(a[: n - 1])))
    da = [(k + 1) * a[k + 1] for k in range(n - 1)]
    h = s_mul(g, da)
    two_over_sqrt_pi = 2 / iv.sqrt(iv.pi)
    out.extend(two_over_sqrt_pi * h[k - 1] / k for k in range(1, n))
    return out


def _s_recip_plus_one(a: Series) -> Series:
    return s_div(s_const(1), s_add(s_const(1), a))


#: Series versions of the built-in targets: each maps the series of x to the series of f(x).
TARGET_SERIES: dict[str, Callable[[Series], Series]] = {
    "exp": s_exp,
    "exp2": lambda a: s_exp(s_scale(a, iv.log(2))),
    "log": s_log,
    "log2": lambda a: s_scale(s_log(a), 1 / iv.log(2)),
    "erf": s_erf,
    "tanh": lambda a: s_sub(s_const(1), s_scale(_s_recip_plus_one(s_exp(s_scale(a, 2))), 2)),
    "sin": lambda a: s_sincos(a)[0],
    "cos": lambda a: s_sincos(a)[1],
    "sigmoid": lambda a: _s_recip_plus_one(s_exp(s_neg(a))),
}


# --- the program as a series ----------------------------------------------------------------------
def _sign_of(a) -> int:
    """+1 or -1 if the interval has one sign (0 counts as +: mpmath has no -0), else raise."""
    if _lo(a) >= 0:
        return 1
    if _hi(a) < 0:
        return -1
    raise _NotSmooth("sign changes")


def _trunc_clamp(v, op: str = "ldexp") -> int:
    n = ldexp_exponent(op, v)
    if n is None:
        raise _NotSmooth(op)
    return n


def _exponent(v) -> int:
    return mpmath.frexp(v)[1] if v != 0 else 0


def _branch(op: str, args: list[Series]):
    """The branch a piecewise op takes on the whole subinterval (arguments' 0th coefficients)."""
    b = [a[0] for a in args]
    if op == "abs":
        return _sign_of(b[0])
    if op == "copysign":
        return _sign_of(b[0]) * _sign_of(b[1])
    if op in ("floor", "round"):
        fn = mpmath.floor if op == "floor" else mpmath.nint
        k_lo, k_hi = fn(_lo(b[0])), fn(_hi(b[0]))
        if k_lo != k_hi:
            raise _NotSmooth(op)
        return k_lo
    if op in ("ldexp", "ldexp2"):
        k_lo, k_hi = _trunc_clamp(_lo(b[1]), op), _trunc_clamp(_hi(b[1]), op)
        if k_lo != k_hi:
            raise _NotSmooth(op)
        return k_lo
    if op in ("frexp_m", "frexp_e"):
        e_lo, e_hi = _exponent(_lo(b[0])), _exponent(_hi(b[0]))
        if _has_zero(b[0]) or e_lo != e_hi:
            raise _NotSmooth(op)
        return e_lo
    if op == "select_lt":
        if _hi(b[0]) < _lo(b[1]):
            return True
        if _lo(b[0]) >= _hi(b[1]):
            return False
        raise _NotSmooth(op)
    raise AssertionError(op)


def _apply_branch(op: str, args: list[Series], d) -> Series:
    if op in ("abs", "copysign"):
        return s_scale(args[0], d)
    if op in ("floor", "round", "frexp_e"):
        return s_const(d)
    if op in ("ldexp", "ldexp2"):
        return s_scale(args[0], iv.mpf(mpmath.ldexp(1, d)))
    if op == "frexp_m":
        return s_scale(args[0], iv.mpf(mpmath.ldexp(1, -d)))
    if op == "select_lt":
        return args[2] if d else args[3]
    raise AssertionError(op)


def _hull_branch(op: str, args: list[Series]) -> Series:
    """Interval value of a piecewise op whose branch is undecided (constant series only)."""
    b = [a[0] for a in args]
    if op in ("abs", "copysign"):
        m = _mag(b[0])
        return [iv.mpf([0 if op == "abs" else -m, m])]
    if op in ("floor", "round"):
        fn = mpmath.floor if op == "floor" else mpmath.nint
        return [iv.mpf([fn(_lo(b[0])), fn(_hi(b[0]))])]
    if op in ("ldexp", "ldexp2"):
        k_lo, k_hi = _trunc_clamp(_lo(b[1]), op), _trunc_clamp(_hi(b[1]), op)
        ends = [b[0] * iv.mpf(mpmath.ldexp(1, k)) for k in (k_lo, k_hi)]
        return [_hull(*ends)]
    if op == "frexp_m":
        return [iv.mpf([-1, 1])]
    if op == "frexp_e":
        small = mpmath.mpf(0) if _has_zero(b[0]) else min(abs(_lo(b[0])), abs(_hi(b[0])))
        e_min = -mpmath.inf if small == 0 else _exponent(small)
        e_max = _exponent(_mag(b[0]))
        if _has_zero(b[0]):
            e_min, e_max = min(e_min, 0), max(e_max, 0)
        return [iv.mpf([e_min, e_max])]
    if op == "select_lt":
        return [_hull(args[2][0], args[3][0])]
    raise AssertionError(op)


_SMOOTH: dict[str, Callable[..., Series]] = {
    "add": s_add,
    "sub": s_sub,
    "mul": s_mul,
    "div": s_div,
    "fma": lambda a, b, c: s_add(s_mul(a, b), c),
    "neg": s_neg,
    "sqrt": s_sqrt,
    "cvt_f32": lambda a: a,  # a rounding: ignored in real numbers (dsl.ops)
}


def program_series(program: Program, x: Series, branches: dict[int, object]) -> Series:
    """Taylor series of the program's output given the series of x (interval coefficients).

    ``branches`` carries the branch decisions of piecewise operations: it must be filled by an
    evaluation over the whole subinterval (x[0] = X) and then reused at the expansion point,
    whose own x[0] cannot tell whether a branch switches elsewhere in X.  With a constant ``x``
    (naive interval evaluation) undecided branches take the hull of both.
    """
    return fold(program, _SeriesSemantics(x, branches))


class _SeriesSemantics(Semantics):
    """Interval Taylor series: smooth ops by ``_SMOOTH`` (x*x as a square, which is tighter),
    piecewise ops by the branch each one takes on the whole subinterval (``branches``)."""

    def __init__(self, x: Series, branches: dict[int, object]):
        self.x, self.branches = x, branches

    def input(self):
        return self.x

    def const(self, i, value):
        return s_const(value)

    def apply(self, i, node, args):
        if node.op == "mul" and node.args[0] == node.args[1]:
            return s_sqr(args[0])
        if node.op in _SMOOTH:
            return _SMOOTH[node.op](*args)
        if i not in self.branches:
            try:
                self.branches[i] = _branch(node.op, args)
            except _NotSmooth:
                if len(self.x) > 1:
                    raise
                return _hull_branch(node.op, args)
        return _apply_branch(node.op, args, self.branches[i])


# --- one subinterval --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Piece:
    """Subinterval [a, b] expanded at c: x = c + h*tau, tau in T (T = [-1, 1], [0, 1] or [-1, 0])."""

    a: mpmath.mpf
    b: mpmath.mpf
    zero: mpmath.mpf | None  # a known zero of the target at a or b: expand there

    def expansion(self):
        if self.zero is not None:
            c, h = self.zero, self.b - self.a
        else:
            c, h = (self.a + self.b) / 2, (self.b - self.a) / 2
        c_iv, h_iv = iv.mpf(c), iv.mpf(h)
        t_range = iv.mpf([_lo((iv.mpf(self.a) - c_iv) / h_iv), _hi((iv.mpf(self.b) - c_iv) / h_iv)])
        return c_iv, h_iv, t_range


def _relative_series(p: Series, f: Series, shift: bool) -> Series:
    """Series of p/f - 1; with ``shift`` both vanish at tau = 0 and are divided by tau first."""
    if shift:
        p = p + [_zero()] * (len(f) - len(p))
        p, f = p[1:], f[1:]
    return s_sub(s_div(p, f), s_const(1))


def _poly_bound(coeffs: Series, t_range, grid: int):
    """An upper bound of max |sum coeffs[j] tau^j| over tau in t_range, and the grid values.

    Values on a uniform grid (interval Horner), plus ``M s^2 / 8`` between neighbours, where
    M bounds |second derivative| on t_range and s is the spacing: a function exceeds the larger
    of its values at two points by at most that much between them.  The grid values' lower
    ends give the caller a rigorous lower bound too.
    """
    t0, t1 = _lo(t_range), _hi(t_range)
    tm = _mag(t_range)
    points = [t0 + g * (t1 - t0) / (grid - 1) for g in range(grid - 1)] + [t1]
    step = max(_hi(iv.mpf(v) - iv.mpf(u)) for u, v in zip(points, points[1:]))
    vals = []
    for point in points:
        t = iv.mpf(point)
        acc = coeffs[-1]
        for c in reversed(coeffs[:-1]):
            acc = acc * t + c
        vals.append(abs(acc))
    m2 = iv.mpf(0)
    for j in range(2, len(coeffs)):
        m2 += j * (j - 1) * abs(coeffs[j]) * iv.mpf(tm) ** (j - 2)
    return iv.mpf(max(_hi(v) for v in vals)) + m2 * iv.mpf(step) ** 2 / 8, vals


def _piece_bound(program: Program, fser: Callable, piece: _Piece, order: int, grid: int):
    """(upper, lower) bounds of max |r| on one subinterval; upper may be inf, lower may be 0."""
    c, h, t_range = piece.expansion()
    shift = piece.zero is not None
    extra = 1 if shift else 0
    x_whole = [c + h * t_range, h] + [_zero()] * (order + extra)
    branches: dict[int, object] = {}
    try:
        whole = _relative_series(program_series(program, x_whole, branches), fser(x_whole), shift)
    except _NotSmooth:
        return _naive_bound(program, fser, c + h * t_range), mpmath.mpf(0)
    naive = _mag(whole[0])
    x_point = [c, h] + [_zero()] * (order - 1 + extra)
    p = program_series(program, x_point, branches)
    f = fser(x_point)
    if shift:
        if not (_lo(p[0]) == 0 == _hi(p[0])):
            # p(z) != 0 (or unproven): |r| is unbounded near z, and ``whole``, which assumed
            # p(z) = 0, proves nothing
            return mpmath.inf, mpmath.mpf(0)
        f = [iv.mpf(0)] + f[1:]  # the target's zero is exact, whatever its series rounded to
    coeffs = _relative_series(p, f, shift)
    rem = abs(whole[order + 1]) * iv.mpf(_mag(t_range)) ** (order + 1)
    poly_upper, vals = _poly_bound(coeffs[: order + 1], t_range, grid)
    upper = min(naive, _hi(poly_upper + rem))
    lower = _lo(iv.mpf(max(_lo(v) for v in vals)) - rem)  # |r| at a grid point is at least this
    return upper, max(lower, mpmath.mpf(0))


def _naive_bound(program: Program, fser: Callable, x_iv) -> mpmath.mpf:
    p = program_series(program, [x_iv], {})
    f = fser([x_iv])
    return _mag(_relative_series(p, f, False)[0])


# --- the adaptive partition ------------------------------------------------------------------------
def _target_series(target: Target, series: Callable | None) -> Callable:
    if series is not None:
        return series
    if target.name in TARGET_SERIES:
        return TARGET_SERIES[target.name]
    raise ValueError(
        f"no rigorous bound for target {target.name!r}: it has no interval Taylor form; "
        "pass target_series= (a function from the series of x to the series of f(x))"
    )


def _float_up(v: mpmath.mpf) -> float:
    """The smallest float >= v, so a rounded bound is still a bound."""
    f = float(v)
    return math.nextafter(f, math.inf) if mpmath.mpf(f) < v else f


def _evaluate_piece(program, fser, piece, order, grid):
    try:
        return _piece_bound(program, fser, piece, order, grid)
    except (_NoBound, ZeroDivisionError):
        return mpmath.inf, mpmath.mpf(0)


def relative_error_bound(
    program: Program,
    target: Target | str,
    lo: float,
    hi: float,
    *,
    order: int = 12,
    prec_bits: int = 113,
    rtol: float = 0.02,
    max_evaluations: int = 20000,
    time_limit: float = 60.0,
    grid: int = 12,
    sampled_max: float | None = None,
    target_series: Callable[[Series], Series] | None = None,
) -> ErrorBound:
    """Prove an upper bound on max over [lo, hi] of |p(x)/f(x) - 1|, p read as real arithmetic.

    Subintervals are bisected, worst bound first, until each is bounded by ``(1 + rtol)`` times
    the largest error observed, or until ``max_evaluations`` subinterval bounds or
    ``time_limit`` seconds are spent.  Whatever stops it, ``upper_bound`` is a valid bound (a
    subinterval not yet bounded inherits its parent's bound, possibly inf); ``converged`` says
    whether every subinterval met the target.  ``sampled_max`` defaults to
    ``fitness.real_error.max_relative_error``.  Raises ValueError for a target with no series
    form (see ``TARGET_SERIES``; a user target can pass ``target_series``).
    """
    start = time.perf_counter()
    target = get_target(target) if isinstance(target, str) else target
    fser = _target_series(target, target_series)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need a finite interval with lo < hi, got [{lo}, {hi}]")
    if sampled_max is None:
        sampled_max = max_relative_error(program, target, lo, hi).max_rel_error
    if not math.isfinite(sampled_max):
        return ErrorBound(math.inf, math.inf, 1, True, 0, time.perf_counter() - start)
    zeros = [z for z in KNOWN_ZEROS.get(target.name, ()) if lo <= z <= hi]
    saved = iv.prec
    try:
        iv.prec = prec_bits
        with mpmath.workprec(prec_bits):
            result = _bisect(program, fser, lo, hi, zeros, sampled_max, order, grid, rtol,
                             max_evaluations, start + time_limit)
    finally:
        iv.prec = saved
    upper, observed, n_final, converged, n_eval = result
    return ErrorBound(_float_up(upper), float(observed), n_final, converged, n_eval,
                      time.perf_counter() - start)


def _bisect(program, fser, lo, hi, zeros, sampled, order, grid, rtol, max_eval, deadline):
    cuts = sorted({mpmath.mpf(lo), mpmath.mpf(hi), *(mpmath.mpf(z) for z in zeros)})
    zero_set = set(mpmath.mpf(z) for z in zeros)
    counter = itertools.count()
    heap = [(-mpmath.inf, next(counter), a, b) for a, b in zip(cuts, cuts[1:])]
    observed = mpmath.mpf(sampled)
    done_max, n_done, n_eval, stuck = mpmath.mpf(0), 0, 0, False
    while heap and n_eval < max_eval and time.perf_counter() < deadline:
        _, _, a, b = heapq.heappop(heap)
        zero = a if a in zero_set else b if b in zero_set else None
        upper, lower = _evaluate_piece(program, fser, _Piece(a, b, zero), order, grid)
        n_eval += 1
        observed = max(observed, lower)
        if upper <= (1 + rtol) * observed:
            done_max, n_done = max(done_max, upper), n_done + 1
            continue
        mid = (a + b) / 2
        if not a < mid < b:  # cannot split further: keep what we have
            done_max, n_done, stuck = max(done_max, upper), n_done + 1, True
            continue
        heapq.heappush(heap, (-upper, next(counter), a, mid))
        heapq.heappush(heap, (-upper, next(counter), mid, b))
    pending = max((-neg for neg, *_ in heap), default=mpmath.mpf(0))
    upper = max(done_max, pending)
    converged = not heap and not stuck
    return upper, observed, n_done + len(heap), converged, n_eval
