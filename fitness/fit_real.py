"""Real-number mode: fitting constants to minimax quality, and measuring the error exactly enough.

Why a second stage.  ``fitness.fit`` fits in float64 with finite-difference Jacobians and
Lawson reweighting.  That stalls around 1e-10..1e-12 relative error: the residuals of a program
evaluated in float64 carry rounding noise of ~1e-16 times the program's condition (an 8th power
multiplies it by 8), the finite-difference Jacobian is good to ~1e-8, and Lawson's iteration
converges to the minimax fit only linearly.  Real mode asks for the *real-number* error, so this
module refines the float64 result with

- residuals evaluated in **double-double** arithmetic (about 106 bits, vectorized numpy, a few
  tens of microseconds per operation on a thousand points) against the 106-bit reference
  ``hi + lo``: the residual is exact to ~1e-30 whatever the program's condition;
- **forward-mode derivatives** with respect to every constant (float64 tangents carried beside
  the double-double values: exact up to float64 rounding, no step size);
- **Remez-style exchange steps** on all constants at once: the error curve's extrema are
  found on a dense grid (1024 Chebyshev + uniform points), rank+1 of them alternating in sign
  form the reference, and one Newton step solves ``r_i + J_i d = s_i E`` for the step d and
  the levelled error E.  It converges quadratically near an equioscillating fit (polynomial-
  and rational-like programs);
- **sequential linear programming** when the curve does not alternate often enough yet, or the
  exchange step does not lower the maximum: the linearized problem ``min_d max_i |r_i + J_i d|``
  over the extrema (with neighbours) and a sparse sample of the grid, within a trust region,
  is one small LP (scipy's HiGHS).  It assumes nothing about how many
  alternation points the program's family has.

Both steps work in an orthonormal basis of the directions the constants can move the error in
(an SVD of the column-scaled Jacobian on the active set): redundant constants, common in
evolved programs (``(a x + b) * c``, a rational's common scale), are dropped instead of making
the exchange system singular, and ill-conditioning (a degree-12 monomial basis: ~1e10) does not
reach the LP.

Everything is deterministic (no random draws after the float64 stage).  The refinement runs on
every real-mode candidate and stops once the levelled error is within ``tol`` of the maximum
(minimax on the grid), or a step gains less than ``stop_gain`` twice, or steps are rejected:
a structure already at its minimax fit, or a poor one that does not improve, costs a few
double-double evaluations and at most two or three LPs (a few ms to ~20 ms); a good one near
the front runs on until its error stops falling (~40 ms for 12 constants).  Measured on the
search population of a 2^x run: the whole real-mode evaluation (float64 stage, refinement,
scoring) is 50-90 ms per candidate on a loaded 2-core machine, against 20-25 ms without the
refinement.

Limits.  The constants stay float64 (the program is exported and scored with float64
constants), so near 1e-16 relative error the fit is limited by the constants' granularity.
``fitness.realmode`` scores with exact arithmetic, so that is a real limit of the program, not
noise; but an *exported* real-mode program computes in float64, whose rounding (~1e-16 per
operation) is of the same size: below ~1e-15, real-mode digits say how good the approximation
is, not how accurate its float64 code is.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from dataclasses import dataclass

import numpy as np

from dsl.ops import LDEXP_CLAMP
from dsl.program import Program

from .problem import Problem, ProblemSpec
from .reference import mp_values, reference_values

# --- double-double arithmetic --------------------------------------------------------------------
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


def _dd_ldexp(a, k):
    kk = _dd_trunc_int(k)
    nan = np.isnan(kk)
    kk = np.clip(np.nan_to_num(kk, nan=0.0), -LDEXP_CLAMP, LDEXP_CLAMP).astype(np.int64)
    hi, lo = np.ldexp(a[0], kk), np.ldexp(a[1], kk)
    return np.where(nan, np.nan, hi), lo, kk


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


def _evaluate_dd(program: Program, xs: np.ndarray, theta: np.ndarray, jacobian: bool, careful: bool,
                 denominators: list | None = None):
    n = xs.shape[0]
    k = len(theta)
    live = program.live()
    vals: list = [None] * len(program.nodes)
    tans: list = [None] * len(program.nodes)
    p = 0
    with np.errstate(all="ignore"):
        for i, node in enumerate(program.nodes):
            if node.op == "param":
                vals[i] = (float(theta[p]), 0.0)
                if jacobian:
                    t = np.zeros((k, 1))
                    t[p, 0] = 1.0
                    tans[i] = t
                p += 1
                continue
            if not live[i]:
                continue
            if node.op == "x":
                vals[i] = (xs, np.zeros(n))
                continue
            if node.op == "const":
                vals[i] = (float(node.value), 0.0)
                continue
            a = [vals[j] for j in node.args]
            ta = [tans[j] for j in node.args] if jacobian else [None] * len(node.args)
            op = node.op
            t = None
            if op == "add":
                v = dd_add(a[0], a[1], careful)
                t = _t_add(ta[0], ta[1])
            elif op == "sub":
                v = dd_sub(a[0], a[1], careful)
                t = _t_add(ta[0], _t_scale(ta[1], -1.0))
            elif op == "mul":
                v = dd_mul(a[0], a[1], careful)
                t = _t_add(_t_scale(ta[0], a[1][0]), _t_scale(ta[1], a[0][0]))
            elif op == "div":
                v = dd_div(a[0], a[1], careful)
                if denominators is not None:
                    denominators.append(a[1][0])
                if ta[0] is not None or ta[1] is not None:
                    t = _t_scale(_t_add(ta[0], _t_scale(ta[1], -v[0])), 1.0 / a[1][0])
            elif op == "fma":
                v = dd_add(dd_mul(a[0], a[1], careful), a[2], careful)
                t = _t_add(_t_scale(ta[0], a[1][0]), _t_scale(ta[1], a[0][0]), ta[2])
            elif op == "neg":
                v = dd_neg(a[0])
                t = _t_scale(ta[0], -1.0)
            elif op == "sqrt":
                v = dd_sqrt(a[0], careful)
                t = _t_scale(ta[0], 0.5 / v[0])
            elif op == "abs":
                s = np.where(a[0][0] < 0, -1.0, 1.0)
                v = (a[0][0] * s, a[0][1] * s)
                t = _t_scale(ta[0], s)
            elif op == "copysign":
                s = np.where(a[0][0] < 0, -1.0, 1.0) * np.where(a[1][0] < 0, -1.0, 1.0)
                v = (a[0][0] * s, a[0][1] * s)
                t = _t_scale(ta[0], s)
            elif op == "floor":
                v = _dd_floor(a[0])
            elif op == "round":
                v = _dd_round(a[0])
            elif op == "ldexp":
                hi, lo, kk = _dd_ldexp(a[0], a[1])
                v = (hi, lo)
                t = _t_scale(ta[0], np.ldexp(1.0, kk))
            elif op == "frexp_m":
                v, e = _dd_frexp(a[0])
                t = _t_scale(ta[0], np.ldexp(1.0, -e))
            elif op == "frexp_e":
                _, e = _dd_frexp(a[0])
                v = (e.astype(np.float64), 0.0)
            elif op == "select_lt":
                less = _dd_less(a[0], a[1])
                v = (np.where(less, a[2][0], a[3][0]), np.where(less, a[2][1], a[3][1]))
                if ta[2] is not None or ta[3] is not None:
                    zero = np.zeros((k, 1))
                    t = np.where(less, zero if ta[2] is None else ta[2], zero if ta[3] is None else ta[3])
            else:  # pragma: no cover - the op table and this list are checked by a test
                raise ValueError(f"no double-double semantics for {op!r}")
            if careful and t is not None and not np.all(np.isfinite(t)):
                # an intermediate overflowed (c / x at tiny x): where the value is still finite its
                # derivative's limit is 0 (c2 / (c1 / x) -> 0 whatever c1), not inf * 0 = NaN
                t = np.where(np.isfinite(t) | ~np.isfinite(v[0]), t, 0.0)
            vals[i] = v
            tans[i] = t
    hi, lo = vals[program.output]
    hi = np.broadcast_to(np.asarray(hi, np.float64), (n,)).copy()
    lo = np.broadcast_to(np.asarray(lo, np.float64), (n,)).copy()
    if not jacobian:
        return hi, lo
    t = tans[program.output]
    jac = np.zeros((k, n)) if t is None else np.broadcast_to(t, (k, n)).copy()
    return hi, lo, jac


def relative_residuals(program: Program, x, ref_hi, ref_lo, params=None, jacobian: bool = False):
    """Signed relative errors ``p(x)/f(x) - 1`` with p in double-double (and their Jacobian).

    Undefined or non-finite results count as ``inf``; where ``f(x) == 0`` the error is 0 if the
    program is exactly 0 there and ``inf`` otherwise (``fitness.realmode``'s convention).
    """
    out = evaluate_dd(program, x, params, jacobian)
    hi, lo = out[0], out[1]
    ref_hi = np.asarray(ref_hi, np.float64)
    ref_lo = np.asarray(ref_lo, np.float64)
    with np.errstate(all="ignore"):
        d_hi, d_lo = dd_sub((hi, lo), (ref_hi, ref_lo))
        r = (d_hi + d_lo) / ref_hi
        zero = ref_hi == 0
        if np.any(zero):
            r = np.where(zero, np.where((hi == 0) & (lo == 0), 0.0, np.inf), r)
        r = np.where(np.isfinite(r) & np.isfinite(hi), r, np.inf)
        if not jacobian:
            return r
        jac = out[2] / np.where(zero, np.inf, ref_hi)
        jac = np.where(np.isfinite(jac), jac, 0.0)
    return r, jac


# --- the dense grid a real-mode problem is fitted and checked on ----------------------------------
GRID_POINTS = 1024


@dataclass(frozen=True)
class RealGrid:
    """Sorted float64 points (half Chebyshev-Lobatto, half uniform, ends included) and the 106-bit
    reference at them.  Points where the target is exactly 0 are left out of ``x`` (the relative
    error there is a limit) and kept in ``zeros`` (the program must vanish there)."""

    x: np.ndarray
    ref_hi: np.ndarray
    ref_lo: np.ndarray
    zeros: np.ndarray


def _grid_points(lo: float, hi: float, n: int) -> np.ndarray:
    from .realmode import sample_points

    return sample_points(lo, hi, n)


@functools.lru_cache(maxsize=8)
def _grid(spec_json: str, n: int) -> RealGrid:
    spec = ProblemSpec(**json.loads(spec_json))
    from .targets import get_target

    target = get_target(spec.target)
    x = _grid_points(spec.lo, spec.hi, n)
    ref = reference_values(target, x, spec.lo, spec.hi, "float64-realgrid")
    keep = np.isfinite(ref.hi) & (ref.hi != 0)
    return RealGrid(x[keep], ref.hi[keep], ref.lo[keep], x[ref.hi == 0])


def real_grid(problem: Problem, n: int = GRID_POINTS) -> RealGrid:
    """The problem's dense real-mode grid (reference values from the disk cache after the first build)."""
    return _grid(json.dumps(problem.spec.to_dict(), sort_keys=True), n)


# --- the error: dense values plus refinement of the worst peaks -----------------------------------
def _local_peaks(err: np.ndarray, count: int) -> np.ndarray:
    left = np.concatenate([[-np.inf], err[:-1]])
    right = np.concatenate([err[1:], [-np.inf]])
    peaks = np.nonzero((err >= left) & (err >= right) & np.isfinite(err))[0]
    order = peaks[np.argsort(-err[peaks], kind="stable")]
    return order[:count]


def _target_at(problem: Problem, xs: np.ndarray):
    ref = mp_values(problem.target, xs)
    return ref.hi, ref.lo


def refine_peaks(program: Program, problem: Problem, x: np.ndarray, err: np.ndarray,
                 count: int = 16, steps: int = 2, params=None) -> tuple[float, float]:
    """Largest ``|r|`` near the ``count`` worst local maxima of a sampled error curve ``err``.

    All peaks are refined together by ``steps`` parabola fits through three points around each
    (the vertices are evaluated exactly: double-double program, mpmath target, one batch per
    step), each keeping its best three points.  Returns (max error, where); never below the
    sampled maximum.
    """
    i_max = int(np.argmax(err))
    best, best_x = float(err[i_max]), float(x[i_max])
    if not math.isfinite(best) or len(x) < 3:
        return best, best_x
    peaks = [i for i in _local_peaks(err, count) if 0 < i < len(x) - 1]
    if not peaks:
        return best, best_x
    pk = np.array(peaks)
    px = np.stack([x[pk - 1], x[pk], x[pk + 1]], axis=1)
    py = np.stack([err[pk - 1], err[pk], err[pk + 1]], axis=1)
    for _ in range(steps):
        a, b, c = px[:, 0], px[:, 1], px[:, 2]
        fa, fb, fc = py[:, 0], py[:, 1], py[:, 2]
        with np.errstate(all="ignore"):
            den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
            v = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den
        ok = np.isfinite(v) & (a < v) & (v < c) & (v != b)
        if not np.any(ok):
            break
        px, py = px[ok], py[ok]
        v = v[ok]
        hi_, lo_ = _target_at(problem, v)
        fv = np.abs(relative_residuals(program, v, hi_, lo_, params))
        j = int(np.argmax(fv))
        if not math.isfinite(fv[j]):
            return math.inf, float(v[j])
        if fv[j] > best:
            best, best_x = float(fv[j]), float(v[j])
        # keep, for each peak, the three consecutive points around its largest value
        allx = np.concatenate([px, v[:, None]], axis=1)
        ally = np.concatenate([py, fv[:, None]], axis=1)
        order = np.argsort(allx, axis=1)
        allx = np.take_along_axis(allx, order, axis=1)
        ally = np.take_along_axis(ally, order, axis=1)
        top = np.clip(np.argmax(ally, axis=1), 1, 2)
        sel = top[:, None] + np.array([-1, 0, 1])[None, :]
        px = np.take_along_axis(allx, sel, axis=1)
        py = np.take_along_axis(ally, sel, axis=1)
    return best, best_x


#: Below this |f(x)| the reference pair ``hi + lo`` is not 106 bits (``lo`` is subnormal or 0), and
#: 1/|f| overflows near the subnormals: a relative error measured there is the reference's own.
#: Such points (float64 fitness points at tiny x for a target vanishing at 0, like erf) only
#: approach a limit the neighbouring points already show, so real mode leaves them out.
TINY_REFERENCE = 2.0**-968


def trusted_points(problem: Problem) -> np.ndarray:
    """Mask of the fitness points whose reference can measure a relative error (exact zeros of
    the target included: the program must vanish there)."""
    hi = np.abs(problem.ref.hi)
    return (hi >= TINY_REFERENCE) | (hi == 0)


def interior_pole(program: Program, x: np.ndarray, params=None) -> float | None:
    """An x in [x[0], x[-1]] where a division's denominator vanishes, or None.

    A denominator that changes sign between two neighbouring points of the sorted ``x`` (or is
    exactly 0 at one) vanishes in between: the program is undefined there as a real function,
    however smoothly the rest of it hides the pole (``c / (k - x)`` fed into ``d / (...)`` tends
    to a finite limit, and sampling never lands on the pole).  Such a program has no finite
    real-mode error; the interval bound of ``fitness.bounds`` agrees (it returns inf).  A
    denominator that dips to zero and back between two samples is not seen.
    """
    xs = np.asarray(x, np.float64)
    theta = np.asarray(program.params if params is None else params, np.float64)
    dens: list = []
    with np.errstate(all="ignore"):
        _evaluate_dd(program, xs, theta, False, careful=True, denominators=dens)
    for d in dens:
        d = np.broadcast_to(np.asarray(d, np.float64), xs.shape)
        zero = np.nonzero(d == 0)[0]
        if len(zero):
            return float(xs[zero[0]])
        ok = np.isfinite(d[:-1]) & np.isfinite(d[1:])
        flip = np.nonzero(ok & (np.sign(d[:-1]) != np.sign(d[1:])))[0]
        if len(flip):
            return float(0.5 * (xs[flip[0]] + xs[flip[0] + 1]))
    return None


def real_max_error(program: Program, problem: Problem, refine: bool = True) -> tuple[float, float]:
    """Max relative error with real-number arithmetic: the fitness points (those with a trusted
    reference) and the dense grid in double-double, plus refinement of the worst peaks; ``inf``
    for a program with a pole inside the domain (``interior_pole``).  Returns (error, where)."""
    grid = real_grid(problem)
    pole = interior_pole(program, np.concatenate([[problem.spec.lo], grid.x, [problem.spec.hi]]))
    if pole is not None:
        return math.inf, pole
    keep = trusted_points(problem)
    xs = problem.x[keep]
    r_fit = np.abs(relative_residuals(program, xs, problem.ref.hi[keep], problem.ref.lo[keep]))
    r_grid = np.abs(relative_residuals(program, grid.x, grid.ref_hi, grid.ref_lo))
    i = int(np.argmax(r_fit)) if len(r_fit) else 0
    fit_max, fit_x = (float(r_fit[i]), float(xs[i])) if len(r_fit) else (0.0, float(grid.x[0]))
    if refine:
        g_max, g_x = refine_peaks(program, problem, grid.x, r_grid)
    else:
        j = int(np.argmax(r_grid))
        g_max, g_x = float(r_grid[j]), float(grid.x[j])
    return (g_max, g_x) if g_max >= fit_max else (fit_max, fit_x)


# --- minimax refinement of the constants -----------------------------------------------------------
@dataclass(frozen=True)
class RealFitOptions:
    max_iterations: int = 40
    stop_gain: float = 0.02  # stop once an accepted step lowers the max error by less than this
    patience: int = 2  # ... for this many consecutive steps
    max_rejections: int = 2  # rejected steps (error did not fall) before giving up
    radius: float = 64.0  # initial trust radius of the LP step (see ``_Basis``)
    tol: float = 2e-4  # converged when a step can lower the max error by less than this fraction
    rank_tol: float = 1e-12  # singular values below this (relative) are redundant directions
    extra_stride: int = 16  # every n-th grid point joins the LP's constraints besides the extrema


@dataclass(frozen=True)
class RealFitInfo:
    start_error: float
    error: float
    iterations: int
    lp_solves: int
    rank: int = 0


def _active_set(r: np.ndarray, stride: int) -> np.ndarray:
    """Grid indices for the LP: every extremum of each sign run of r and the largest bumps of
    |r| (with their neighbours), the ends, and a sparse sample of the rest."""
    n = len(r)
    sign = r >= 0
    starts = np.concatenate([[0], np.nonzero(sign[1:] != sign[:-1])[0] + 1])
    ends = np.concatenate([starts[1:], [n]])
    a = np.abs(r)
    idx = [s + int(np.argmax(a[s:e])) for s, e in zip(starts, ends)]
    left = np.concatenate([[-np.inf], a[:-1]])
    right = np.concatenate([a[1:], [-np.inf]])
    bumps = np.nonzero((a >= left) & (a >= right))[0]
    top = bumps[np.argsort(-a[bumps], kind="stable")[:64]]
    core = np.unique(np.concatenate([np.array(idx, np.int64), top]))
    around = np.concatenate([core - 2, core - 1, core, core + 1, core + 2, [0, n - 1], np.arange(0, n, stride)])
    return np.unique(np.clip(around, 0, n - 1))


class _Basis:
    """An orthonormal basis of the directions the constants can move the residuals in.

    With ``Jc = J diag(1/c)`` (columns scaled to unit norm over the grid) and its SVD
    ``Jc = U S V^T``, a step ``w`` in the first ``rank`` columns of U is the parameter step
    ``delta = diag(1/c) V S^-1 w``.  Directions with singular values below ``rank_tol`` are
    dropped: evolved programs often hold redundant constants (``(a x + b) * c``, a rational's
    common scale), whose free direction would make the exchange system singular and the LP
    unbounded.  In this basis the step problem is perfectly conditioned whatever the
    program's own conditioning (a degree-12 monomial basis is ~1e10).
    """

    def __init__(self, jac: np.ndarray, rank_tol: float):
        # row norms scaled by the row's largest entry: a constant whose derivative is huge
        # (~1e160, a nearly singular program) must not overflow jac * jac
        big = np.max(np.abs(jac), axis=1) if jac.shape[1] else np.zeros(jac.shape[0])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            safe = np.where(big > 0, big, 1.0)
            norms = big * np.sqrt(np.sum((jac / safe[:, None]) ** 2, axis=1))
        self.used = (norms > 0) & np.isfinite(norms)
        jc = (jac[self.used] / norms[self.used, None]).T
        self.norms = norms[self.used]
        self.k = jac.shape[0]
        if jc.shape[1] == 0:
            self.rank = 0
            return
        u, sv, vt = np.linalg.svd(jc, full_matrices=False)
        self.rank = int(np.sum(sv > rank_tol * sv[0])) if sv[0] > 0 else 0
        self.u, self.sv, self.vt = u[:, : self.rank], sv[: self.rank], vt[: self.rank]

    def delta(self, w: np.ndarray) -> np.ndarray:
        out = np.zeros(self.k)
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite step is rejected by its caller
            out[self.used] = (self.vt.T @ (w / self.sv)) / self.norms
        return out


def _lp_step(r: np.ndarray, a: np.ndarray, scale: float, radius: float):
    """Solve min_w max_i |r_i + (a w)_i| with |w_j| <= radius * scale (the LP itself works in
    units of ``scale``, the current max error, so that its tolerances are relative to it).

    Returns (w, predicted max) or None when the LP fails.
    """
    from scipy.optimize import linprog

    k = a.shape[1]
    b = r / scale
    m = len(b)
    ones = np.ones((m, 1))
    a_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    b_ub = np.concatenate([-b, b])
    c = np.zeros(k + 1)
    c[-1] = 1.0
    bounds = [(-radius, radius)] * k + [(0, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs-ds")
        except (ValueError, np.linalg.LinAlgError):
            return None
    if res.status != 0 or res.x is None or not np.all(np.isfinite(res.x)):
        return None
    return res.x[:k] * scale, float(res.x[-1]) * scale


def _alternation(r: np.ndarray, count: int) -> np.ndarray | None:
    """Indices of ``count`` consecutive sign-alternating extrema of r (one per sign run, the
    global maximum among them, the smaller ends dropped), or None if r alternates less."""
    sign = r >= 0
    starts = np.concatenate([[0], np.nonzero(sign[1:] != sign[:-1])[0] + 1])
    if len(starts) < count:
        return None
    ends = np.concatenate([starts[1:], [len(r)]])
    a = np.abs(r)
    idx = [s + int(np.argmax(a[s:e])) for s, e in zip(starts, ends)]
    lo, hi = 0, len(idx)
    while hi - lo > count:
        if a[idx[lo]] < a[idx[hi - 1]]:
            lo += 1
        else:
            hi -= 1
    return np.array(idx[lo:hi])


def _exchange_step(r: np.ndarray, basis: _Basis, err: float):
    """Remez-style Newton step: with rank+1 alternating extrema as reference, solve
    ``r_i + (U w)_i = s_i E`` (s_i the sign of r_i) for the step w and the levelled error E.
    Returns (w, E) or None."""
    k = basis.rank
    if k == 0:
        return None
    ref = _alternation(r, k + 1)
    if ref is None:
        return None
    a = np.hstack([basis.u[ref], -np.sign(r[ref])[:, None] * err])
    try:
        sol = np.linalg.solve(a, -r[ref])
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(sol)):
        return None
    return sol[:k], abs(sol[k]) * err


def refine_minimax(program: Program, problem: Problem, theta=None,
                   opts: RealFitOptions | None = None) -> tuple[np.ndarray, RealFitInfo]:
    """Minimax refinement of the program's constants on the real-mode grid (see the module doc).

    Each step works in the orthonormal basis of ``_Basis``.  It tries the exchange (Remez)
    Newton step first, a (rank+1)-square solve, and falls back to the trust-region LP when the
    error does not alternate rank+1 times or the exchange step does not lower the maximum.
    ``theta`` is the starting parameter vector (default: the program's own).  Returns the best
    parameters found (never worse on the grid than the start).
    """
    opts = opts or RealFitOptions()
    grid = real_grid(problem)
    theta = np.asarray(program.params if theta is None else theta, np.float64).copy()
    k = len(theta)
    x, fh, fl = grid.x, grid.ref_hi, grid.ref_lo
    r, jac = relative_residuals(program, x, fh, fl, theta, jacobian=True)
    err = float(np.max(np.abs(r)))
    start = err
    if k == 0 or not math.isfinite(err) or err == 0.0:
        return theta, RealFitInfo(start, err, 0, 0)
    radius = opts.radius
    slow, failed, it, solves, rank = 0, 0, 0, 0, 0
    use_exchange = True
    for it in range(1, opts.max_iterations + 1):
        # both steps look only at the active set (every extremum of the error curve, their
        # neighbours and a sparse sample): a few hundred rows instead of the whole grid
        act = _active_set(r, opts.extra_stride)
        basis = _Basis(jac[:, act], opts.rank_tol)
        rank = basis.rank
        if rank == 0:
            break
        if use_exchange:
            step = _exchange_step(r[act], basis, err)
            if step is not None and err - step[1] <= opts.tol * err:
                break  # levelled on its reference to within tol: the minimax fit on the grid
            if step is not None:
                trial = theta + basis.delta(step[0])
                r_new, jac_new = relative_residuals(program, x, fh, fl, trial, jacobian=True)
                err_new = float(np.max(np.abs(r_new)))
                if err_new < err:
                    gain = (err - err_new) / err
                    theta, r, jac, err = trial, r_new, jac_new, err_new
                    slow = slow + 1 if gain < opts.stop_gain else 0
                    if slow >= opts.patience:
                        break
                    continue
            use_exchange = False  # until the LP has made progress again
        step = _lp_step(r[act], basis.u, err, radius)
        solves += 1
        if step is None:
            break
        w, predicted = step
        trial = theta + basis.delta(w)
        if np.array_equal(trial, theta):
            break  # below the constants' float64 granularity
        pred_gain = err - predicted
        if pred_gain <= opts.tol * err:
            break  # the linearized problem is at its minimax point
        r_new, jac_new = relative_residuals(program, x, fh, fl, trial, jacobian=True)
        err_new = float(np.max(np.abs(r_new)))
        rho = (err - err_new) / pred_gain if math.isfinite(err_new) else -math.inf
        w_max = float(np.max(np.abs(w))) / err
        at_edge = w_max > 0.5 * radius
        if err_new < err:
            gain = (err - err_new) / err
            theta, r, jac, err = trial, r_new, jac_new, err_new
            use_exchange = True
            # a step cut short by the trust region is not a sign of convergence
            slow = slow + 1 if gain < opts.stop_gain and not at_edge else 0
            if rho > 0.75 and at_edge:
                radius = min(radius * 8.0, 1e12)
            elif rho < 0.25:
                radius *= 0.25
            if slow >= opts.patience:
                break
        else:
            radius = min(radius, w_max) * 0.2
            failed += 1
            if radius < 1e-9 or failed > opts.max_rejections:
                break
    return theta, RealFitInfo(start, err, it, solves, rank)


def fit_constants_real(program: Program, problem: Problem, rng: np.random.Generator, opts=None) -> Program:
    """Real-mode fit: the float64 LM + Lawson stage of ``fitness.fit``, then ``refine_minimax``."""
    from .fit import FitOptions, fit_float64

    opts = opts or FitOptions()
    keep = trusted_points(problem) & (problem.ref.hi != 0)  # weight 1/|f|: finite and meaningful
    if not np.all(keep[problem.fit_idx]):
        problem = dataclasses.replace(problem, fit_idx=problem.fit_idx[keep[problem.fit_idx]])
    theta = fit_float64(program, problem, rng, opts)
    theta, _info = refine_minimax(program, problem, theta)
    return program.with_params(theta)
