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
from dataclasses import dataclass

import numpy as np

from dsl.program import Program

from .double_double import _evaluate_dd, dd_sub, evaluate_dd  # noqa: F401 - evaluate_dd is part of this API
from .minimax import MinimaxInfo as RealFitInfo
from .minimax import MinimaxOptions as RealFitOptions
from .minimax import refine
from .problem import Problem, ProblemSpec
from .reference import mp_values, reference_values

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
def refine_minimax(program: Program, problem: Problem, theta=None,
                   opts: RealFitOptions | None = None) -> tuple[np.ndarray, RealFitInfo]:
    """Minimax refinement (``fitness.minimax.refine``) of the program's constants on the
    real-mode grid, with relative residuals in double-double; ``theta`` is the start (default:
    the program's own constants).  Never worse on the grid than the start."""
    grid = real_grid(problem)
    theta = np.asarray(program.params if theta is None else theta, np.float64)
    return refine(lambda th: relative_residuals(program, grid.x, grid.ref_hi, grid.ref_lo, th, jacobian=True),
                  theta, opts)


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
