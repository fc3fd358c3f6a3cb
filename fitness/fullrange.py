"""Exhaustive verification of a float32 function over every float32 bit pattern.

``verify_full_range(program, target)`` evaluates the program on all 2^32 float32 inputs (or on
every float32 of a finite domain ``[lo, hi]``), in chunks of consecutive bit patterns, with the
llvmlite kernel (bit-identical to the numpy reference semantics, ~100x faster), and compares each
result with the correctly rounded value of the target:

- the reference is the target's float64 numpy function rounded to float32; wherever that float64
  value lies within ``GUARD_ULPS`` float64 ulps of a float32 rounding midpoint (read off its bits:
  the 29 low significand bits against ``0x10000000``; subnormal float32 results are checked with
  the general test) it is recomputed with mpmath at ``fitness.reference.PREC_BITS`` bits, and the
  pair ``hi + lo`` is rounded once (``dsl.semantics.round_pair_to_float32``);
- the float64 function's non-finite results (log(0) = -inf, log(-1) = NaN, exp(1000) = inf) and
  its results at non-finite inputs are exact by C99 Annex F, and float64 results beyond FLT_MAX
  round to +-inf;
- a result counts as correctly rounded when its bits equal the correctly rounded value's bits
  (so -0 is not +0; any NaN equals any NaN);
- inputs whose correct result is a special value (a non-finite input, a NaN, infinite or zero
  correct result: ``fitness.special.special_mask``) must match exactly; differences there are
  *special-value mismatches*, reported apart from the ULP figures.  The ULP error of a result that
  is not correctly rounded is measured against the exact value (``fitness.metrics.ulp_errors``);
  +-inf where the correctly rounded value is that infinity counts as 0 ULP.

The target's explicit special cases (``fitness.special``) are checked too, and the report gives per
input binade (sign and biased exponent) the count, the correctly rounded count and the max ULP,
since a few binades around 0 hold most float32 values.

Chunks are independent: ``workers > 1`` runs them in a spawned process pool (each worker compiles
the kernel once); ``progress(done, total)`` is called after every chunk, in order.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dsl.program import Program
from dsl.semantics import round_pair_to_float32
from dsl.text import format_program, parse_program

from .metrics import ulp_errors
from .reference import mp_values
from .special import FullRangeSpec, check_specials, get_spec, special_mask
from .targets import Target, get_target

GUARD_ULPS = 16
MISROUNDED_KEPT = 64  # misrounded inputs a report lists
CHUNK = 1 << 22  # 4M inputs: half a binade, so a chunk never straddles two
TOTAL = 1 << 32
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FullRangeReport:
    method: str  # "full-range" (all 2^32 bit patterns) or "exhaustive" (every float32 in [lo, hi])
    n_points: int
    max_ulp: float  # over inputs whose correct result is finite and non-zero, and finite inputs
    worst_x: float
    mean_ulp: float  # mean ULP error over the same inputs (exact value, not the rounding)
    frac_correctly_rounded: float  # over all checked inputs (bitwise, NaN = NaN)
    frac_correctly_rounded_finite: float  # over inputs with a finite, non-zero correct result
    n_finite: int
    special_mismatches: int  # inputs with a special correct result (or input) that came out wrong
    special_examples: tuple = ()  # up to 10 (x, got, expected) hex triples
    special_case_mismatches: tuple = ()  # the target's listed special cases that failed (dicts)
    n_special_cases: int = 0
    n_mpmath: int = 0  # reference values recomputed with mpmath
    seconds: float = 0.0
    evaluator: str = "llvmlite"
    n_misrounded: int = 0  # inputs with a finite, non-zero correct result that came out otherwise
    misrounded_inputs: tuple = ()  # the first MISROUNDED_KEPT of them (float32 values), in input order
    binades: tuple = ()  # (sign, biased exponent, n, n_correctly_rounded, max_ulp, worst_x)
    domain: tuple = (-math.inf, math.inf)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["special_examples"] = [list(e) for e in self.special_examples]
        d["misrounded_inputs"] = [float(v) for v in self.misrounded_inputs]
        d["special_case_mismatches"] = list(self.special_case_mismatches)
        d["binades"] = [list(b) for b in self.binades]
        d["domain"] = [_jsonable(v) for v in self.domain]
        for k in ("max_ulp", "worst_x", "mean_ulp"):
            d[k] = _jsonable(d[k])
        return d

    @property
    def specials_ok(self) -> bool:
        return self.special_mismatches == 0 and not self.special_case_mismatches

    def describe(self) -> str:
        what = ("every float32 bit pattern (2^32 inputs, inf and NaN included)" if self.method == "full-range"
                else f"every float32 input in [{self.domain[0]!r}, {self.domain[1]!r}]")
        mis = f", {self.n_misrounded} misrounded" if "inside" in self.evaluator else ""
        spec = ("special values all right" if self.specials_ok else
                f"{self.special_mismatches} special-value mismatches, "
                f"{len(self.special_case_mismatches)} of {self.n_special_cases} listed special cases wrong")
        return (f"max {self.max_ulp:.4f} ULP (worst x = {self.worst_x!r}), "
                f"{100 * self.frac_correctly_rounded:.4f}% correctly rounded "
                f"({100 * self.frac_correctly_rounded_finite:.4f}% of the {self.n_finite} finite non-zero results{mis}), "
                f"{spec}; checked on {what} against mpmath-backed references")


def _jsonable(v):
    v = float(v)
    return v if math.isfinite(v) else repr(v)


def reference_f32(target: Target, x: np.ndarray, guard_ulps: int = GUARD_ULPS):
    """Correctly rounded float32 results at float32 inputs ``x``, and the exact values (hi, lo).

    Returns (cr, hi, lo, n_mpmath).  ``lo`` is non-zero only where mpmath recomputed the value.
    """
    if target.np_fn is None:
        raise ValueError(f"target {target.name!r} has no float64 numpy function; full-range verification needs one")
    x = np.asarray(x, np.float32)
    with np.errstate(all="ignore"):
        hi = np.asarray(target.np_fn(x.astype(np.float64)), np.float64)
        cr = hi.astype(np.float32)
    bits = hi.view(np.uint64)
    d = (bits & np.uint64(0x1FFFFFFF)).astype(np.int64) - 0x10000000
    near = np.abs(d) <= guard_ulps
    small = np.abs(hi) < 2.0**-125  # subnormal float32 results: the midpoint sits higher in the bits
    if np.any(small):
        hs = hi[small]
        r = hs.astype(np.float32)
        with np.errstate(all="ignore"):
            other = np.nextafter(r, np.where(hs > r, np.float32(np.inf), np.float32(-np.inf)))
            mid = (r.astype(np.float64) + other.astype(np.float64)) * 0.5
            near[small] = (np.abs(hs - mid) <= guard_ulps * np.spacing(np.abs(hs))) & (hs != 0)
    near &= np.isfinite(hi) & np.isfinite(x)
    lo = np.zeros_like(hi)
    idx = np.flatnonzero(near)
    if len(idx):
        exact = mp_values(target, x[idx].astype(np.float64))
        hi[idx], lo[idx] = exact.hi, exact.lo
        cr[idx] = round_pair_to_float32(exact.hi, exact.lo)
    return cr, hi, lo, len(idx)


def _ulp_errors_fast(y: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``fitness.metrics.ulp_errors`` for float32 results against non-zero finite exact values,
    reading the binade off the float64 bits (points with a non-zero ``lo`` take the general path)."""
    with np.errstate(all="ignore"):
        d = np.abs(y.astype(np.float64) - hi)
        ex = ((hi.view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int32) - 1023
        err = np.ldexp(d, -np.maximum(ex - 23, -149))
    err[np.isnan(err)] = np.inf
    exact = np.flatnonzero(lo != 0)
    if len(exact):
        err[exact] = ulp_errors(y[exact], hi[exact], lo[exact], "float32")
    return err


@dataclass
class _ChunkResult:
    start: int
    n: int = 0
    n_cr: int = 0
    n_finite: int = 0
    n_cr_finite: int = 0
    max_ulp: float = 0.0
    worst_x: float = math.nan
    sum_ulp: float = 0.0
    n_special_bad: int = 0
    special_examples: list = field(default_factory=list)
    misrounded: list = field(default_factory=list)
    n_mpmath: int = 0
    binade: tuple = (0, 0)


def _check_chunk(fn, target: Target, x: np.ndarray, start: int) -> _ChunkResult:
    res = _ChunkResult(start, n=len(x))
    if not len(x):
        return res
    with np.errstate(all="ignore"):
        y = np.asarray(fn(x), np.float32)
    cr, hi, lo, res.n_mpmath = reference_f32(target, x)
    ok = (y.view(np.uint32) == cr.view(np.uint32)) | (np.isnan(y) & np.isnan(cr))
    res.n_cr = int(np.count_nonzero(ok))
    special = special_mask(x, cr)
    bad_special = special & ~ok
    res.n_special_bad = int(np.count_nonzero(bad_special))
    for i in np.flatnonzero(bad_special)[:10]:
        res.special_examples.append((float(x[i]).hex() if np.isfinite(x[i]) else repr(float(x[i])),
                                     repr(float(y[i])), repr(float(cr[i]))))
    regular = ~special
    res.n_finite = int(np.count_nonzero(regular))
    res.n_cr_finite = int(np.count_nonzero(ok & regular))
    res.misrounded = [float(v) for v in x[regular & ~ok][:MISROUNDED_KEPT]]
    # ULP errors: all of them (mean and max), on the inputs with a finite, non-zero correct result
    if res.n_finite:
        xr, yr, hr, lr = x[regular], y[regular], hi[regular], lo[regular]
        err = _ulp_errors_fast(yr, hr, lr)
        i = int(np.argmax(err))
        res.max_ulp, res.worst_x = float(err[i]), float(xr[i])
        res.sum_ulp = float(np.sum(err)) if np.all(np.isfinite(err)) else math.inf
    b = int(x.view(np.uint32)[0])
    res.binade = (b >> 31, (b >> 23) & 0xFF)
    return res


# --- process pool plumbing: workers rebuild the kernel once from the program's text -----------------
_WORKER: dict = {}


def _worker_init(program_text: str, target_name: str, compute: str = "float32") -> None:
    program = parse_program(program_text)
    _WORKER["fn"] = float32_function(program, compute)
    _WORKER["target"] = get_target(target_name)


def float32_function(program: Program, compute: str) -> Callable[[np.ndarray], np.ndarray]:
    """The llvmlite kernel as a float32 -> float32 function: in float32, or (``compute`` =
    "float64", a mixed-precision program) on the exactly widened input, its float64 result
    converted to float32 (exact when the program ends in ``cvt_f32``, the one final rounding)."""
    from backends.llvm_backend import compile_program

    fn = compile_program(program, compute)
    if compute == "float32":
        return fn
    return lambda x: fn(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def _worker_chunk(start: int, stop: int, lo: float, hi: float) -> _ChunkResult:
    x = _chunk_inputs(start, stop, lo, hi)
    return _check_chunk(_WORKER["fn"], _WORKER["target"], x, start)


def _chunk_inputs(start: int, stop: int, lo: float, hi: float) -> np.ndarray:
    x = np.arange(start, stop, dtype=np.uint64).astype(np.uint32).view(np.float32)
    if lo != -math.inf or hi != math.inf:
        with np.errstate(invalid="ignore"):
            x64 = x.astype(np.float64)  # compare exactly: float32(lo) may lie outside [lo, hi]
            x = x[(x64 >= lo) & (x64 <= hi)]
    return x


def _ranges(lo: float, hi: float, chunk: int) -> list[tuple[int, int]]:
    """Bit-pattern ranges [start, stop) of ``chunk`` patterns that can hold inputs in [lo, hi]."""
    out = []
    for s in range(0, TOTAL, chunk):
        with np.errstate(invalid="ignore"):
            ends = np.array([s, s + chunk - 1], np.uint32).view(np.float32).astype(np.float64)
        a, b = np.nanmin(ends) if not np.all(np.isnan(ends)) else math.nan, np.nanmax(ends) if not np.all(np.isnan(ends)) else math.nan
        if lo == -math.inf and hi == math.inf:
            out.append((s, s + chunk))
        elif not math.isnan(a) and b >= lo and a <= hi:
            out.append((s, s + chunk))
    return out


def verify_full_range(program: Program, target: Target | str, lo: float = -math.inf, hi: float = math.inf,
                      *, spec: FullRangeSpec | str | None = None, chunk: int = CHUNK, workers: int = 1,
                      evaluator: Callable[[np.ndarray], np.ndarray] | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      compute: str = "float32") -> FullRangeReport:
    """Check ``program`` on every float32 bit pattern (default) or every float32 in [lo, hi].

    ``spec``: the target's special cases (``fitness.special``), by default the registered one for
    the target name if there is one.  ``evaluator`` replaces the llvmlite kernel (a float32 array
    function; then ``workers`` must be 1).  ``compute="float64"`` runs a mixed-precision program
    (float32 in, float64 inside, float32 out: ``dsl.ops`` ``cvt_f32``).
    """
    if compute not in ("float32", "float64"):
        raise ValueError(f"compute must be float32 or float64, not {compute!r}")
    t0 = time.perf_counter()
    target = get_target(target) if isinstance(target, str) else target
    if spec is None:
        from .special import FULL_RANGE

        spec = FULL_RANGE.get(target.name)
    elif isinstance(spec, str):
        spec = get_spec(spec)
    if chunk <= 0 or (1 << 23) % chunk:
        raise ValueError("chunk must divide 2^23 (chunks must not straddle binades)")
    ranges = _ranges(lo, hi, chunk)
    total = sum(b - a for a, b in ranges)
    ev_name = "custom" if evaluator is not None else "llvmlite"
    fn = evaluator
    if fn is None and workers <= 1:
        try:
            fn = float32_function(program, compute)
        except Exception:  # no llvmlite here: the numpy evaluator is the reference, only slower
            from backends.numpy_backend import evaluate

            fn, ev_name = (lambda x: evaluate(program, x.astype(compute), compute).astype(np.float32)), "numpy"
    results: list[_ChunkResult] = []
    done = 0
    if workers <= 1 or evaluator is not None:
        for a, b in ranges:
            r = _check_chunk(fn, target, _chunk_inputs(a, b, lo, hi), a)
            results.append(r)
            done += b - a
            if progress:
                progress(done, total)
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                    initargs=(format_program(program), target.name, compute)) as pool:
            futs = [pool.submit(_worker_chunk, a, b, lo, hi) for a, b in ranges]
            for (a, b), f in zip(ranges, futs):
                results.append(f.result())
                done += b - a
                if progress:
                    progress(done, total)
    return _merge(results, program, target, spec, lo, hi, fn, time.perf_counter() - t0, ev_name, compute)


def _merge(results, program, target, spec, lo, hi, fn, seconds, ev_name, compute) -> FullRangeReport:
    n = sum(r.n for r in results)
    n_finite = sum(r.n_finite for r in results)
    max_ulp, worst_x = 0.0, math.nan
    for r in results:
        if r.n_finite and (r.max_ulp > max_ulp or math.isnan(worst_x)):
            max_ulp, worst_x = r.max_ulp, r.worst_x
    sum_ulp = sum(r.sum_ulp for r in results)
    examples = [e for r in results for e in r.special_examples][:10]
    misrounded = tuple(v for r in results for v in r.misrounded)[:MISROUNDED_KEPT]
    binades: dict[tuple, list] = {}
    for r in results:
        if not r.n:
            continue
        b = binades.setdefault(r.binade, [r.binade[0], r.binade[1], 0, 0, 0.0, math.nan])
        b[2] += r.n
        b[3] += r.n_cr
        if r.n_finite and (r.max_ulp > b[4] or math.isnan(b[5])):
            b[4], b[5] = r.max_ulp, r.worst_x
    case_bad: tuple = ()
    n_cases = 0
    if spec is not None:
        if fn is None:
            fn = float32_function(program, compute)
        n_cases = len(spec.cases)
        case_bad = tuple(m.to_dict() for m in check_specials(fn, spec))
    method = "full-range" if (lo == -math.inf and hi == math.inf) else "exhaustive"
    return FullRangeReport(
        method=method, n_points=n, max_ulp=max_ulp, worst_x=worst_x,
        mean_ulp=sum_ulp / max(n_finite, 1), frac_correctly_rounded=sum(r.n_cr for r in results) / max(n, 1),
        frac_correctly_rounded_finite=sum(r.n_cr_finite for r in results) / max(n_finite, 1), n_finite=n_finite,
        n_misrounded=n_finite - sum(r.n_cr_finite for r in results), misrounded_inputs=misrounded,
        special_mismatches=sum(r.n_special_bad for r in results), special_examples=tuple(examples),
        special_case_mismatches=case_bad, n_special_cases=n_cases, n_mpmath=sum(r.n_mpmath for r in results),
        seconds=seconds, evaluator=ev_name if compute == "float32" else f"{ev_name} ({compute} inside)",
        binades=tuple(tuple(_jsonable(v) if isinstance(v, float) else v for v in b)
                      for _, b in sorted(binades.items())),
        domain=(lo, hi))
