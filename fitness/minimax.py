"""Minimax refinement of a program's constants: Remez-style exchange steps and sequential LP.

Least squares with Lawson reweighting (``fitness.fit``) converges to the minimax fit only
linearly and stalls well short of it for programs with many constants.  This refiner takes the
fit the rest of the way, for any residual function with a Jacobian (real mode: relative errors
in double-double on a dense grid; float32 ulp mode: errors in float32 ulps on the fitness points):

- **Remez-style exchange steps** on all constants at once: the error curve's extrema, rank+1 of
  them alternating in sign, form the reference, and one Newton step solves ``r_i + J_i d = s_i E``
  for the step d and the levelled error E.  It converges quadratically near an equioscillating
  fit (polynomial- and rational-like programs);
- **sequential linear programming** when the curve does not alternate often enough yet, or the
  exchange step does not lower the maximum: the linearized problem ``min_d max_i |r_i + J_i d|``
  over the extrema (with neighbours) and a sparse sample of the points, within a trust region,
  is one small LP (scipy's HiGHS).  It assumes nothing about how many alternation points the
  program's family has.

Both steps work in an orthonormal basis of the directions the constants can move the error in
(an SVD of the column-scaled Jacobian on the active set): redundant constants, common in evolved
programs (``(a x + b) * c``, a rational's common scale), are dropped instead of making the
exchange system singular, and ill-conditioning (a degree-12 monomial basis: ~1e10) does not
reach the LP.  Everything is deterministic.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class MinimaxOptions:
    max_iterations: int = 40
    stop_gain: float = 0.02  # stop once an accepted step lowers the max error by less than this
    patience: int = 2  # ... for this many consecutive steps
    max_rejections: int = 2  # rejected steps (error did not fall) before giving up
    radius: float = 64.0  # initial trust radius of the LP step (see ``_Basis``)
    tol: float = 2e-4  # converged when a step can lower the max error by less than this fraction
    rank_tol: float = 1e-12  # singular values below this (relative) are redundant directions
    extra_stride: int = 16  # every n-th grid point joins the LP's constraints besides the extrema


@dataclass(frozen=True)
class MinimaxInfo:
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


def refine(residuals: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], theta,
           opts: MinimaxOptions | None = None) -> tuple[np.ndarray, MinimaxInfo]:
    """Minimax refinement of the constants ``theta`` for signed residuals (see the module doc).

    ``residuals(theta)`` returns (r, jac): the residuals on a fixed point set and their Jacobian
    with respect to the constants, shape (k, n).  Each step works in the orthonormal basis of
    ``_Basis``.  It tries the exchange (Remez) Newton step first, a (rank+1)-square solve, and
    falls back to the trust-region LP when the error does not alternate rank+1 times or the
    exchange step does not lower the maximum.  Returns the best constants found (never worse on
    the points than the start).
    """
    opts = opts or MinimaxOptions()
    theta = np.asarray(theta, np.float64).copy()
    k = len(theta)
    r, jac = residuals(theta)
    err = float(np.max(np.abs(r)))
    start = err
    if k == 0 or not math.isfinite(err) or err == 0.0:
        return theta, MinimaxInfo(start, err, 0, 0)
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
                r_new, jac_new = residuals(trial)
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
        r_new, jac_new = residuals(trial)
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
    return theta, MinimaxInfo(start, err, it, solves, rank)
