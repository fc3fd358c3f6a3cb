"""Scoring a candidate: fit its constants, then measure its error on every fitness point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize
from dsl.program import Program, cost

from .fit import FitOptions, fit_constants
from .metrics import ErrorSummary, summarize
from .problem import Problem


@dataclass(frozen=True)
class Scored:
    program: Program
    summary: ErrorSummary
    error: float  # the search objective: max ULP (ulp mode) or max relative error (real mode)
    cost: float


def objective(summary: ErrorSummary, mode: str) -> float:
    value = summary.max_ulp if mode == "ulp" else summary.max_rel_error
    return float(value) if np.isfinite(value) else float("inf")


def score(program: Program, problem: Problem) -> Scored:
    """Error of the program as it stands (no fitting), in the problem's evaluation dtype."""
    dt = problem.spec.eval_dtype
    y = evaluate(program, problem.x, dt)
    summary = summarize(problem.x, y, problem.ref.hi, problem.ref.lo, dt)
    return Scored(program, summary, objective(summary, problem.spec.mode), cost(program))


def fit_and_score(program: Program, problem: Problem, seed: int, opts: FitOptions | None = None) -> Scored:
    """Fit the constants (seeded: the same program and seed give the same result), then score."""
    rng = np.random.default_rng(seed)
    fitted = fit_constants(program, problem, rng, opts)
    fitted = canonicalize(fitted, problem.spec.eval_dtype)
    return score(fitted, problem)
