"""Scoring a candidate: fit its constants, then measure its error on every fitness point."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize
from dsl.program import Program, cost

from .fit import FitOptions, fit_constants_ulp
from .metrics import ErrorSummary, summarize
from .problem import Problem, float64_inside


@dataclass(frozen=True)
class Scored:
    program: Program
    summary: ErrorSummary
    error: float  # the search objective: max ULP (ulp mode), max relative error (real mode), or max
    # cr ratio (cr mode, fitness.cr: below 1, every point rounds correctly)
    cost: float
    frame: dict[str, float] | None = None  # the evolvable frame constants, when the frame evolves


def objective(summary: ErrorSummary, mode: str) -> float:
    value = summary.max_rel_error if mode == "real" else summary.max_ulp
    return float(value) if np.isfinite(value) else float("inf")


VALIDATE_BELOW_ULP = 16.0


def score(program: Program, problem: Problem, frame_constants: dict[str, float] | None = None) -> Scored:
    """Error of the program as it stands (no fitting), in the problem's evaluation dtype.

    In ulp mode a program within ``VALIDATE_BELOW_ULP`` on the fitness points is also measured
    on the denser validation set, and its error is the larger of the two maxima: the front then
    holds errors that survive dense verification.
    """
    dt = problem.spec.eval_dtype
    frame = _frame_of(problem, frame_constants)
    full = problem.realize(program, frame)
    y = evaluate(full, problem.x, dt)
    if float64_inside(problem.spec.mode):
        return _score_cr(program, full, problem, y, frame)
    summary = summarize(problem.x, y, problem.ref.hi, problem.ref.lo, dt)
    error = objective(summary, problem.spec.mode)
    if problem.spec.mode == "real":
        # the real-number error: double-double evaluation on the fitness points and a dense grid,
        # the worst peaks refined (the float64 figure above includes float64 rounding noise)
        from .real_error import real_max_error

        rel, where = real_max_error(full, problem)
        summary = replace(summary, max_rel_error=rel, worst_x=where)
        return Scored(program, summary, objective(summary, "real"), cost(program), frame)
    if problem.val_x is not None and error <= VALIDATE_BELOW_ULP:
        yv = evaluate(full, problem.val_x, dt)
        val = summarize(problem.val_x, yv, problem.val_ref.hi, problem.val_ref.lo, dt)
        if val.max_ulp > summary.max_ulp:
            summary = replace(summary, max_ulp=val.max_ulp, worst_x=val.worst_x)
        summary = replace(summary, max_rel_error=max(summary.max_rel_error, val.max_rel_error))
        error = objective(summary, problem.spec.mode)
    return Scored(program, summary, error, cost(program), frame)


def _score_cr(program: Program, full: Program, problem: Problem, y: np.ndarray, frame) -> Scored:
    """cr and faithful modes: the float64 values before the final rounding against the rounding
    intervals (``fitness.cr``: the correctly rounded float32 value's, or the faithful one's), on the
    fitness points and, near the limit, the validation set."""
    room, val_room = problem.cr_rooms
    summary = cr_summary(problem.x, y, problem.ref, room)
    if problem.val_x is not None and summary.max_ulp <= VALIDATE_BELOW_ULP:
        val = cr_summary(problem.val_x, evaluate(full, problem.val_x, "float64"), problem.val_ref, val_room)
        if val.max_ulp > summary.max_ulp:
            summary = replace(summary, max_ulp=val.max_ulp, worst_x=val.worst_x)
        summary = replace(summary, frac_correctly_rounded=min(summary.frac_correctly_rounded, val.frac_correctly_rounded),
                          max_rel_error=max(summary.max_rel_error, val.max_rel_error))
    return Scored(program, summary, objective(summary, "cr"), cost(program), frame)


def cr_summary(x: np.ndarray, y: np.ndarray, ref, room=None) -> ErrorSummary:
    """An ``ErrorSummary`` in cr units: ``max_ulp``/``mean_ulp`` are cr ratios (``fitness.cr``: the
    error over the room the rounding interval leaves; below 1: rounds correctly),
    ``frac_correctly_rounded`` counts the points whose float32 rounding is the correct one."""
    from .cr import cr_ratio, misrounded, rounding_room
    from .metrics import relative_errors

    room = rounding_room(ref) if room is None else room
    e = cr_ratio(y, ref, room)
    bad = misrounded(y, room[0])
    worst = int(np.argmax(e)) if len(e) else 0
    rel = relative_errors(y, ref.hi, ref.lo)
    return ErrorSummary(
        max_ulp=float(np.max(e)) if len(e) else 0.0,
        mean_ulp=float(np.mean(e)) if len(e) and np.all(np.isfinite(e)) else float("inf"),
        frac_correctly_rounded=float(1.0 - np.mean(bad)) if len(bad) else 1.0,
        max_rel_error=float(np.max(rel)) if len(rel) else 0.0,
        worst_x=float(np.asarray(x)[worst]) if len(e) else float("nan"),
        n_points=int(len(e)),
    )


def _frame_of(problem: Problem, constants: dict[str, float] | None) -> dict[str, float] | None:
    """The evolvable frame constants a candidate carries (the defaults if it carries none)."""
    if not problem.spec.frame_evolve:
        return None
    from .frames import evolvable_constants

    return evolvable_constants(problem.spec.frame, constants)


def fit_constants(program: Program, problem: Problem, rng: np.random.Generator, opts: FitOptions | None = None) -> Program:
    """The program with fitted parameters: the one place the fitting mode is chosen (real mode:
    float64 stage then minimax refinement in double-double, ``fitness.fit_real``; ulp mode:
    ``fitness.fit``)."""
    if problem.spec.mode == "real":
        from .fit_real import fit_constants_real

        return fit_constants_real(program, problem, rng, opts) if program.param_indices else program
    return fit_constants_ulp(program, problem, rng, opts)


def fit_and_score(program: Program, problem: Problem, seed: int, opts: FitOptions | None = None,
                  frame_constants: dict[str, float] | None = None) -> Scored:
    """Fit the constants (seeded: the same program and seed give the same result), then score.

    With an evolving frame, the frame's fitted constants (``frames.FITTED``) are fitted together
    with the core's, starting from ``frame_constants``; the result carries them.
    """
    rng = np.random.default_rng(seed)
    frame = _frame_of(problem, frame_constants)
    if frame is None:
        # a frame adds only literal constants, so the composed program's parameters are the
        # candidate's, in order: fit the program that is evaluated, keep the candidate
        fitted = fit_constants(problem.realize(program), problem, rng, opts)
        fitted = canonicalize(program.with_params(fitted.params), problem.spec.eval_dtype)
        return score(fitted, problem)
    from .frames import FITTED, compose_trainable, split_params

    full, layout = compose_trainable(problem.spec.frame, program, FITTED[problem.spec.frame], frame,
                                     float64=float64_inside(problem.spec.mode))
    fitted = fit_constants(full, problem, rng, opts)
    core_params, trained = split_params(layout, fitted.params)
    frame = dict(frame, **{k: float(np.dtype(problem.spec.eval_dtype).type(v)) for k, v in trained.items()})
    fitted = canonicalize(program.with_params(core_params), problem.spec.eval_dtype)
    return score(fitted, problem, frame)
