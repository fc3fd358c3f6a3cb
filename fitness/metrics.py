"""Error metrics against a reference ``hi + lo`` (see ``fitness.reference``).

ULP error is ``|y - f(x)| / ulp(f(x))``, with ``ulp`` the spacing of the output dtype in the
binade that holds the *exact* value ``f(x)`` (``2**(e - 23)`` for float32 with
``e = floor(log2 |f(x)|)``, floored at the subnormal spacing ``2**-149``).  A result that is NaN
or infinite where the exact value is finite is infinitely wrong; an infinite exact value (overflow)
is matched only by the same infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsl.semantics import as_dtype, round_pair_to_float32

_MANT = {np.dtype(np.float32): 23, np.dtype(np.float64): 52}
_MIN_EXP = {np.dtype(np.float32): -149, np.dtype(np.float64): -1074}


def exact_exponent(hi, lo) -> np.ndarray:
    """floor(log2 |hi + lo|) for the exact value ``hi + lo`` (lo tiny beside hi); -100000 for 0."""
    hi = np.asarray(hi, np.float64)
    lo = np.asarray(lo, np.float64)
    m, e = np.frexp(hi)  # |m| in [0.5, 1): hi = m * 2**e
    e = e.astype(np.int64) - 1
    # |hi| a power of two and the exact value just below it in magnitude: one binade lower
    below = (np.abs(m) == 0.5) & (lo != 0) & (np.sign(lo) != np.sign(hi))
    e = np.where(below, e - 1, e)
    # an exact zero has no binade: below every one, so its ulp is the subnormal floor (frexp(0)
    # gives e = 0, which would make the ulp of 0 that of [0.5, 1))
    return np.where(hi == 0, np.int64(-100_000), e)


def ulp_of_exact(hi, lo, dtype) -> np.ndarray:
    dt = as_dtype(dtype)
    e = exact_exponent(hi, lo)
    return np.ldexp(1.0, np.maximum(e - _MANT[dt], _MIN_EXP[dt]).astype(np.int32))


def ulp_errors(y, hi, lo, dtype, ulp=None) -> np.ndarray:
    """Per-point ULP error (float64 array); inf where the result is non-finite and wrong.
    ``ulp``: ``ulp_of_exact(hi, lo, dtype)`` when the caller has it already."""
    dt = as_dtype(dtype)
    y64 = np.asarray(y, dt).astype(np.float64)
    hi = np.asarray(hi, np.float64)
    lo = np.asarray(lo, np.float64)
    with np.errstate(all="ignore"):
        err = np.abs((y64 - hi) - lo) / (ulp_of_exact(hi, lo, dt) if ulp is None else ulp)
        finite_ref = np.isfinite(hi)
        same_special = (~finite_ref) & ((y64 == hi) | (np.isnan(hi) & np.isnan(y64)))
        err = np.where(finite_ref, np.where(np.isfinite(y64), err, np.inf), np.where(same_special, 0.0, np.inf))
    return err


def correctly_rounded(hi, lo, dtype) -> np.ndarray:
    """The correctly rounded value of ``hi + lo`` in the output dtype."""
    dt = as_dtype(dtype)
    if dt == np.float32:
        return round_pair_to_float32(hi, lo)
    return np.asarray(hi, np.float64)  # hi = RN64 of the exact value by construction


def relative_errors(y, hi, lo) -> np.ndarray:
    y64 = np.asarray(y).astype(np.float64)
    with np.errstate(all="ignore"):
        rel = np.abs((y64 - hi) - lo) / np.abs(hi)
        rel = np.where(hi == 0, np.where(y64 == 0, 0.0, np.inf), rel)
        return np.where(np.isfinite(rel), rel, np.where(np.isfinite(hi) & np.isfinite(y64), rel, np.inf))


@dataclass(frozen=True)
class ErrorSummary:
    max_ulp: float
    mean_ulp: float
    frac_correctly_rounded: float
    max_rel_error: float
    worst_x: float
    n_points: int

    def to_dict(self) -> dict:
        return {k: (float(v) if not isinstance(v, int) else v) for k, v in self.__dict__.items()}


def summarize(x, y, hi, lo, dtype) -> ErrorSummary:
    dt = as_dtype(dtype)
    err = ulp_errors(y, hi, lo, dt)
    cr = correctly_rounded(hi, lo, dt)
    y = np.asarray(y, dt)
    ok = (y == cr) | (np.isnan(y) & np.isnan(cr))
    worst = int(np.argmax(err)) if len(err) else 0
    rel = relative_errors(y, hi, lo)
    finite = err[np.isfinite(err)]
    mean = float(np.mean(err)) if np.all(np.isfinite(err)) else float("inf")
    return ErrorSummary(
        max_ulp=float(np.max(err)) if len(err) else 0.0,
        mean_ulp=mean if len(finite) else float("inf"),
        frac_correctly_rounded=float(np.mean(ok)) if len(ok) else 1.0,
        max_rel_error=float(np.max(rel)) if len(rel) else 0.0,
        worst_x=float(np.asarray(x)[worst]) if len(err) else float("nan"),
        n_points=int(len(err)),
    )
