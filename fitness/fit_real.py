"""Real-number mode: fitting constants to minimax quality (the error is measured by ``fitness.real_error``).

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
``fitness.real_error`` scores with exact arithmetic, so that is a real limit of the program, not
noise; but an *exported* real-mode program computes in float64, whose rounding (~1e-16 per
operation) is of the same size: below ~1e-15, real-mode digits say how good the approximation
is, not how accurate its float64 code is.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dsl.program import Program

from .fit import FitOptions, fit_float64
from .minimax import MinimaxInfo as RealFitInfo
from .minimax import MinimaxOptions as RealFitOptions
from .minimax import refine
from .problem import Problem
from .real_error import real_grid, relative_residuals, trusted_points


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
    opts = opts or FitOptions()
    keep = trusted_points(problem) & (problem.ref.hi != 0)  # weight 1/|f|: finite and meaningful
    if not np.all(keep[problem.fit_idx]):
        problem = dataclasses.replace(problem, fit_idx=problem.fit_idx[keep[problem.fit_idx]])
    theta = fit_float64(program, problem, rng, opts)
    theta, _info = refine_minimax(program, problem, theta)
    return program.with_params(theta)
