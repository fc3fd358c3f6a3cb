"""Verification of a finalist on far more inputs than the search scored.

``dense``: at least 2**22 float32 inputs spread over the domain (half evenly by value, half evenly
by bit pattern, plus every binade edge).  ``exhaustive``: every float of the dtype in the domain,
in chunks.  The reference is the target's float64 function, with mpmath (>= 100 bits) wherever a
float64 value lies close enough to a float32 rounding midpoint that its own error could matter
(``fitness.reference.fast_reference``), so "correctly rounded" is exact.

``full_range``: every float32 bit pattern (2^32 inputs: infinities, NaNs, zeros, subnormals and
the overflow/underflow ranges included) with the target's special values checked
(``fitness.fullrange``, ``fitness.special``), for a complete float32 function such as a
framed program; returns a ``fitness.fullrange.FullRangeReport`` (same ``describe``/``to_dict``/
``max_ulp``/``worst_x`` as ``VerifyReport``, plus the special-value figures).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from backends.numpy_backend import evaluate
from dsl.program import Program

from .metrics import correctly_rounded, ulp_errors, ulp_of_exact
from .points import all_floats, count_floats, dense_points
from .reference import Reference, fast_reference
from .targets import Target

DENSE_POINTS = 1 << 22
USER_DENSE_POINTS = 1 << 16  # a target without a float64 function: every reference is an mpmath call
FLOAT64_DENSE_POINTS = 1 << 14


def dense_size(target: Target, dtype: str = "float32") -> int:
    """How many inputs a dense check uses: 2^22 float32 inputs where the target has a float64
    function to get references from (mpmath only near rounding boundaries), 2^16 where every
    reference is an mpmath call (a user target: about 40k a second), 2^14 for float64 programs."""
    if dtype != "float32":
        return FLOAT64_DENSE_POINTS
    return DENSE_POINTS if target.np_fn is not None else USER_DENSE_POINTS


@dataclass(frozen=True)
class VerifyReport:
    method: str  # "dense" or "exhaustive"
    n_points: int
    max_ulp: float
    worst_x: float
    mean_ulp: float
    frac_correctly_rounded: float
    seconds: float
    evaluator: str
    worst_inputs: tuple[float, ...] = ()  # the inputs with the largest errors, worst first (keep_worst)
    n_misrounded: int = -1  # inputs not correctly rounded: counted for mixed-precision (cr) programs

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        if not self.worst_inputs:
            del d["worst_inputs"]
        if self.n_misrounded < 0:
            del d["n_misrounded"]
        return d

    def describe(self) -> str:
        what = ("every float32 input in the domain" if self.method == "exhaustive"
                else f"{self.n_points} float32 inputs spread over the domain")
        mis = f" ({self.n_misrounded} misrounded)" if self.n_misrounded >= 0 else ""
        return (f"max {self.max_ulp:.4f} ULP (worst x = {self.worst_x!r}), {100 * self.frac_correctly_rounded:.4f}% "
                f"correctly rounded{mis}, checked on {what} ({self.method}) against mpmath-backed references")


def numpy_evaluator(program: Program, dtype: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: evaluate(program, x, dtype)


def best_evaluator(program: Program, dtype: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The llvmlite kernel when it compiles here (bit-identical to numpy, far faster), else numpy."""
    try:
        from backends.llvm_backend import compile_program

        kernel = compile_program(program, dtype)
        return kernel, "llvmlite"
    except Exception:  # llvmlite missing or unable to target this CPU: numpy is the reference anyway
        return numpy_evaluator(program, dtype), "numpy"


def verify(program: Program, target: Target, lo: float, hi: float, dtype: str = "float32",
           exhaustive: bool = False, n_dense: int | None = None, evaluator=None,
           progress: Callable[[int, int], None] | None = None, chunk: int = 1 << 22,
           full_range: bool = False, workers: int = 1, keep_worst: int = 0, compute: str | None = None):
    """``compute="float64"`` with ``dtype="float32"``: a mixed-precision program (float32 inputs and
    results, float64 inside, ``dsl.ops`` ``cvt_f32``) is run in float64 on the widened inputs."""
    if compute is not None and compute != dtype and (dtype, compute) != ("float32", "float64"):
        raise ValueError("mixed precision is float32 in and out with float64 inside")
    if full_range:
        if dtype != "float32":
            raise ValueError("full-range verification is for float32 programs")
        from .fullrange import verify_full_range

        return verify_full_range(program, target, evaluator=evaluator, progress=progress,
                                 chunk=min(chunk, 1 << 22), workers=workers, compute=compute or dtype)
    t0 = time.perf_counter()
    n_dense = dense_size(target, dtype) if n_dense is None else n_dense
    if evaluator is None and compute not in (None, dtype):
        from .fullrange import float32_function

        fn, ev_name = float32_function(program, compute), f"llvmlite ({compute} inside)"
    elif evaluator is None:
        fn, ev_name = best_evaluator(program, dtype)
    else:
        fn, ev_name = evaluator, "custom"
    if exhaustive:
        total = count_floats(lo, hi, dtype)
        chunks = ((x, fast_reference(target, x, dtype)) for x in all_floats(lo, hi, dtype, chunk=chunk))
    else:
        d = _dense_set(target, lo, hi, dtype, n_dense)
        total = len(d.x)
        chunks = ((d.x[i:i + chunk], Reference(d.ref.hi[i:i + chunk], d.ref.lo[i:i + chunk]),
                   d.ulp[i:i + chunk], d.cr[i:i + chunk], d.cr_err[i:i + chunk]) for i in range(0, total, chunk))
    done = 0
    max_ulp, worst_x, sum_ulp, n_cr = 0.0, float("nan"), 0.0, 0
    top_x, top_err = np.empty(0, np.float64), np.empty(0, np.float64)
    for x, ref, *known in chunks:
        y = np.asarray(fn(x), dtype)
        cr = known[1] if known else correctly_rounded(ref.hi, ref.lo, dtype)
        right = (y == cr) | (np.isnan(y) & np.isnan(cr))
        if known:
            err, wrong = _errors_given_rounding(y, ref, known[0], known[2], right, dtype)
        else:
            err, wrong = ulp_errors(y, ref.hi, ref.lo, dtype), None
        if keep_worst:
            pick = _worst_candidates(err, wrong, keep_worst)
            top_x, top_err = _worst(np.concatenate([top_x, x[pick]]), np.concatenate([top_err, err[pick]]), keep_worst)
        i = int(np.argmax(err))
        if err[i] > max_ulp or np.isnan(worst_x):
            max_ulp, worst_x = float(err[i]), float(x[i])
        sum_ulp += float(np.sum(err))
        n_cr += int(np.count_nonzero(right))
        done += len(x)
        if progress:
            progress(done, total)
    return VerifyReport("exhaustive" if exhaustive else "dense", done, max_ulp, worst_x,
                        sum_ulp / max(done, 1), n_cr / max(done, 1), time.perf_counter() - t0, ev_name,
                        tuple(float(v) for v in top_x), done - n_cr if compute not in (None, dtype) else -1)


@dataclass(frozen=True)
class _DenseSet:
    x: np.ndarray
    ref: Reference
    ulp: np.ndarray  # the ulp of each exact value
    cr: np.ndarray  # the correctly rounded result
    cr_err: np.ndarray  # its error in ulps: the error of every program that rounds correctly there


@functools.lru_cache(maxsize=2)
def _dense_set(target: Target, lo: float, hi: float, dtype: str, n: int) -> _DenseSet:
    """The dense points, their reference, its ulps, its correct rounding and that rounding's own
    error, computed once per process: a search checks every program that reaches the front's
    accuracy on the same inputs."""
    pts = dense_points(lo, hi, dtype, n=n)
    ref = fast_reference(target, pts, dtype)
    ulp = ulp_of_exact(ref.hi, ref.lo, dtype)
    cr = correctly_rounded(ref.hi, ref.lo, dtype)
    return _DenseSet(pts, ref, ulp, cr, ulp_errors(cr, ref.hi, ref.lo, dtype, ulp))


def _errors_given_rounding(y, ref: Reference, ulp, cr_err, right, dtype):
    """Every point's ulp error, computed only where ``y`` is not the correctly rounded result:
    elsewhere it is that result's own error, known in advance.  A program near 1 ULP rounds most
    inputs correctly, and the full computation over 2^22 points was half of a dense check's time.
    Also returns the indices of the other points (the only ones above half an ulp), or None where
    they are most points: gathering them would cost more than it saves."""
    wrong = np.flatnonzero(~right)
    if 2 * len(wrong) > len(y):
        return ulp_errors(y, ref.hi, ref.lo, dtype, ulp), None
    err = cr_err.copy()
    err[wrong] = ulp_errors(y[wrong], ref.hi[wrong], ref.lo[wrong], dtype, ulp[wrong])
    return err, wrong


def _worst_candidates(err: np.ndarray, wrong: np.ndarray | None, k: int) -> np.ndarray:
    """Indices that hold the ``k`` largest errors: the wrongly rounded points when there are at
    least ``k`` of them, with any correctly rounded point that reaches the k-th largest of their
    errors (a correctly rounded result is within half an ulp, a wrong one rarely is)."""
    if wrong is None or len(wrong) < k:
        return np.arange(len(err))
    key = np.where(np.isnan(err[wrong]), np.inf, err[wrong])
    kth = np.partition(key, len(key) - k)[len(key) - k]
    return np.flatnonzero((err >= kth) | np.isnan(err))


def _worst(x: np.ndarray, err: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` inputs with the largest errors (NaN errors count as largest), worst first."""
    key = np.where(np.isnan(err), np.inf, err)
    if len(key) > 4 * k:  # only the top k are sorted (argsort of 2^22 errors costs 0.3 s)
        part = np.argpartition(-key, k)[:k]
        x, key = x[part], key[part]
    idx = np.argsort(-key, kind="stable")[:k]
    return x[idx].astype(np.float64), key[idx]
