"""The real-number error: how well a program approximates its target when its arithmetic is exact.

Two measurements live here, both of the relative error ``p(x)/f(x) - 1`` with ``p`` read as
exact arithmetic: ``max_relative_error`` (the reports' digits: a dense scan, mpmath at its worst
points, golden-section refinement of the peaks) and ``real_max_error`` (the search's own
real-mode score: double-double residuals on the fitness points and a dense grid, the worst peaks
refined by parabolas), with ``relative_residuals`` (double-double residuals and their Jacobian,
which the real-mode fitter steps with) and ``interior_pole`` (a division that vanishes inside the
domain makes a program undefined there).

The AutoNumerics-Zero headline table reports *digits of precision per operation count*:
``digits = -log10(max |p(x)/f(x) - 1|)`` over the domain, where ``p`` is the program read as a
formula over the reals.  That number measures the approximation itself, free of the float32 or
float64 rounding of any particular backend, so it is the fair way to compare a searched program
with classical Taylor, Padé and minimax baselines of the same size.

How the maximum is found:

1. A dense scan over Chebyshev-spaced plus uniform points (errors of good approximations peak
   near the interval ends, where Chebyshev points cluster; uniform points cover the middle).
   When the error is far above float64 rounding (``F64_TRUST``), the scan runs vectorized in
   float64 and is cross-checked against mpmath at its worst points; otherwise every point is
   evaluated in mpmath.
2. Around the worst few local maxima, golden-section maximization in mpmath, so the reported
   maximum is not an under-estimate between samples.  The reported value is always an mpmath
   value, and refinement only ever raises it.

A program that divides by zero, takes the square root of a negative number or yields NaN or
infinity anywhere it is evaluated has infinite error.  In real mode a division by zero is
undefined even where IEEE arithmetic would produce a useful infinity (``c / x`` at ``x = 0``), so
give such programs a domain that excludes the pole.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np

from backends.numpy_backend import evaluate
from dsl.interpret import Semantics, fold
from dsl.ops import ldexp_exponent
from dsl.program import Program
from fitness.targets import Target, get_target

from .double_double import _evaluate_dd, dd_sub, evaluate_dd
from .problem import Problem, ProblemSpec
from .reference import mp_values, reference_values

#: Above this relative error a float64 evaluation (rounding noise ~1e-15 for short programs)
#: locates the maximum as well as mpmath does, about a thousand times faster.
F64_TRUST = 1e-10
#: The float64 scan is trusted only if mpmath agrees with it this well at its worst points.
_F64_AGREEMENT = 1e-2
MIN_PREC_BITS = 60


@dataclass(frozen=True)
class RealError:
    """Maximum relative error of a program over an interval, with exact arithmetic.

    ``digits`` is ``-log10(max_rel_error)`` (``inf`` for an exact program, ``-inf`` for one that
    is undefined somewhere); ``n_points`` counts the dense-scan points; ``scan`` says whether
    the dense scan ran in ``"float64"`` or ``"mpmath"``.
    """

    max_rel_error: float
    argmax: float
    digits: float
    n_points: int
    scan: str

    @staticmethod
    def of(max_rel_error: float, argmax: float, n_points: int, scan: str) -> "RealError":
        return RealError(float(max_rel_error), float(argmax), digits_of(max_rel_error), n_points, scan)


def digits_of(rel_error: float) -> float:
    """``-log10`` of a relative error, with 0 -> inf and inf/NaN -> -inf."""
    e = float(rel_error)
    if math.isnan(e) or math.isinf(e):
        return -math.inf
    return math.inf if e == 0.0 else -math.log10(e)


# --- mpmath evaluation --------------------------------------------------------------------------
def _div(a, b):
    return mpmath.nan if b == 0 else a / b


def _sqrt(a):
    return mpmath.nan if a < 0 else mpmath.sqrt(a)


def _fma(a, b, c):
    # exact product, one rounding of the sum: the real-number meaning of a fused multiply-add
    return mpmath.fadd(mpmath.fmul(a, b, exact=True), c)


def _copysign(a, b):
    # mpmath has no signed zero: copysign(a, 0) is |a|
    return -abs(a) if b < 0 else abs(a)


def _ldexp(op: str, a, k):
    n = ldexp_exponent(op, k)
    return mpmath.nan if n is None else mpmath.ldexp(a, n)


def _frexp(a):
    if a == 0 or not mpmath.isfinite(a):
        return a, mpmath.mpf(0)
    m, e = mpmath.frexp(a)
    return m, mpmath.mpf(e)


_MP_OPS: dict[str, Callable] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": _div,
    "fma": _fma,
    "neg": lambda a: -a,
    "sqrt": _sqrt,
    "abs": abs,
    "copysign": _copysign,
    "floor": mpmath.floor,
    "round": mpmath.nint,  # mpmath.nint rounds half to even, like the DSL's round
    "ldexp": lambda a, k: _ldexp("ldexp", a, k),
    "ldexp2": lambda a, k: _ldexp("ldexp2", a, k),
    "frexp_m": lambda a: _frexp(a)[0],
    "frexp_e": lambda a: _frexp(a)[1],
    "select_lt": lambda a, b, c, d: c if a < b else d,
    "cvt_f32": lambda a: a,  # a rounding: real-number semantics ignore it (dsl.ops)
}


def evaluate_mp(program: Program, x) -> mpmath.mpf:
    """The program's value at ``x`` with every operation read as real arithmetic.

    Each operation is rounded once at the current ``mpmath.mp`` precision (callers set >= 60
    bits), which stands in for exact arithmetic.  Undefined results (division by zero, square
    root of a negative number) and any NaN come back as ``mpmath.nan``; never raises for a valid
    program.
    """
    try:
        return fold(program, _MpSemantics(mpmath.mpf(x)))
    except (ArithmeticError, ValueError, _Undefined):
        return mpmath.nan


class _Undefined(Exception):
    """An operation gave NaN: the program is undefined there (no later operation can mend it)."""


class _MpSemantics(Semantics):
    """mpmath numbers at the current precision, one rounding per operation (``_MP_OPS``)."""

    def __init__(self, x):
        self.x = x

    def input(self):
        return self.x

    def const(self, i, value):
        return mpmath.mpf(value)

    def apply(self, i, node, args):
        value = _MP_OPS[node.op](*args)
        if mpmath.isnan(value):
            raise _Undefined
        return value


def relative_error_mp(program: Program, fn: Callable, x) -> mpmath.mpf:
    """``|p(x) / f(x) - 1|`` in mpmath at the current precision; ``inf`` where undefined.

    Where the target is exactly 0 the relative error is 0 if the program is exactly 0 too
    (the limit there is seen at the neighbouring points) and infinite otherwise.
    """
    p = evaluate_mp(program, x)
    f = fn(mpmath.mpf(x))
    if not (mpmath.isfinite(p) and mpmath.isfinite(f)):
        return mpmath.inf
    if f == 0:
        return mpmath.mpf(0) if p == 0 else mpmath.inf
    return abs((p - f) / f)


# --- float64 evaluation -------------------------------------------------------------------------
def _relative_errors(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        err = np.abs(y - ref) / np.abs(ref)
        err = np.where((y == ref) & np.isfinite(y), 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def relative_errors_f64(program: Program, x, ref, params=None) -> np.ndarray:
    """Pointwise ``|p(x) - ref| / |ref|`` with the program evaluated in float64.

    The cheap variant for a search loop.  ``params`` of shape ``(k,)`` or ``(batch, k)``
    replaces the program's parameters (one row per candidate constant vector), giving errors of
    shape ``(batch, len(x))``.  NaN results count as infinite error; ``p == ref == 0`` counts as
    exact.
    """
    y = evaluate(program, np.asarray(x, np.float64), "float64", params=params)
    return _relative_errors(y, np.asarray(ref, np.float64))


def sample_points(lo: float, hi: float, n: int) -> np.ndarray:
    """About ``n`` sorted distinct float64 points: half Chebyshev-Lobatto, half uniform, ends included."""
    n_cheb = max(n // 2, 2)
    k = np.arange(n_cheb)
    cheb = lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.pi * k / (n_cheb - 1)))
    uni = np.linspace(lo, hi, max(n - n_cheb, 2))
    pts = np.unique(np.clip(np.concatenate([cheb, uni, [lo, hi]]), lo, hi))
    return pts


def _reference_f64(target: Target, xs: np.ndarray) -> np.ndarray:
    if target.np_fn is not None:
        with np.errstate(all="ignore"):
            return np.asarray(target.np_fn(xs), np.float64)
    return np.array([float(target.mp_fn(mpmath.mpf(float(v)))) for v in xs])


# --- the maximum ---------------------------------------------------------------------------------
def _local_maxima(err: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` largest local maxima of a sampled error curve."""
    left = np.concatenate([[-np.inf], err[:-1]])
    right = np.concatenate([err[1:], [-np.inf]])
    peaks = np.nonzero((err >= left) & (err >= right))[0]
    order = peaks[np.argsort(-err[peaks], kind="stable")]
    return [int(i) for i in order[:count]]


def _golden_max(fn: Callable, a, b, rel_tol: float = 1e-7, max_iter: int = 60):
    """Maximize a unimodal ``fn`` on [a, b] by golden-section search; returns (x, fn(x))."""
    inv_phi = (mpmath.sqrt(5) - 1) / 2
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    width0 = b - a
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = fn(c), fn(d)
    for _ in range(max_iter):
        if b - a <= rel_tol * width0:
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = fn(c)
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = fn(d)
    return (c, fc) if fc >= fd else (d, fd)


def _scan(program: Program, target: Target, xs: np.ndarray, n_check: int) -> tuple[np.ndarray, str]:
    """Dense errors at ``xs`` as floats: float64 where that is trustworthy, mpmath otherwise."""
    fn = target.mp_fn
    err = relative_errors_f64(program, xs, _reference_f64(target, xs))
    bad = np.nonzero(~np.isfinite(err))[0]
    for i in bad:  # overflow in float64 is not a failure in real mode: ask mpmath
        err[i] = float(relative_error_mp(program, fn, float(xs[i])))
    finite = err[np.isfinite(err)]
    if finite.size == err.size and finite.max() >= F64_TRUST:
        worst = _local_maxima(err, n_check)
        exact = [float(relative_error_mp(program, fn, float(xs[i]))) for i in worst]
        top = err[worst[0]]
        if all(abs(e - err[i]) <= _F64_AGREEMENT * top for e, i in zip(exact, worst)):
            err[worst] = exact
            return err, "float64"
    if not np.all(np.isfinite(err)):  # an undefined point settles it; no need to scan on
        return err, "mpmath"
    return np.array([float(relative_error_mp(program, fn, float(v))) for v in xs]), "mpmath"


def max_relative_error(
    program: Program,
    target: Target | str,
    lo: float,
    hi: float,
    *,
    n_points: int = 4096,
    prec_bits: int = 64,
    refine: bool = True,
    n_refine: int = 8,
) -> RealError:
    """Maximum of ``|p(x)/f(x) - 1|`` over [lo, hi], the program read as exact real arithmetic.

    ``prec_bits`` (>= 60) is the mpmath precision standing in for exact arithmetic.  With
    ``refine`` the ``n_refine`` worst local maxima of the dense scan are maximized further by
    golden-section search in mpmath; the result is never below the dense scan's maximum.
    """
    if prec_bits < MIN_PREC_BITS:
        raise ValueError(f"prec_bits must be >= {MIN_PREC_BITS} to stand in for real arithmetic")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need a finite interval with lo < hi, got [{lo}, {hi}]")
    target = get_target(target) if isinstance(target, str) else target
    xs = sample_points(lo, hi, n_points)
    with mpmath.workprec(prec_bits):
        err, scan = _scan(program, target, xs, n_refine)
        i_max = int(np.argmax(err))
        best_x, best = float(xs[i_max]), float(err[i_max])
        if refine and math.isfinite(best):
            fn = target.mp_fn

            def objective(t):
                return relative_error_mp(program, fn, t)

            for i in _local_maxima(err, n_refine):
                a, b = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
                x_ref, e_ref = _golden_max(objective, a, b)
                e_ref = float(e_ref)
                if not e_ref <= best:  # also takes inf/NaN: an undefined point found between samples
                    best_x, best = float(x_ref), (e_ref if not math.isnan(e_ref) else math.inf)
    return RealError.of(best, best_x, len(xs), scan)


# --- the search's real-mode score: double-double on the fitness points and a dense grid --------------
def relative_residuals(program: Program, x, ref_hi, ref_lo, params=None, jacobian: bool = False):
    """Signed relative errors ``p(x)/f(x) - 1`` with p in double-double (and their Jacobian).

    Undefined or non-finite results count as ``inf``; where ``f(x) == 0`` the error is 0 if the
    program is exactly 0 there and ``inf`` otherwise (the convention of ``max_relative_error`` above).
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
