"""Nanoseconds per element, measured so that numbers from a shared, noisy machine mean something.

- Every figure is a median over repeats of a timed block of calls, after warm-up calls (JIT
  compilation, page faults and cache filling are not measured).
- Each block lasts at least ``min_time / repeats`` seconds; repeats continue (up to
  ``max_repeats``) until the spread, IQR/median of the per-repeat times, drops below
  ``max_spread``.  The spread is always reported: a ratio of two timings with 10% spreads is not
  a 3% result.
- ``compare`` interleaves the candidates repeat by repeat, so a slow phase of the machine hits
  all of them alike, and reports each against a baseline measured in the same process.
- Buffers: ``cache_resident_input`` (16K elements, in L2) shows compute cost; ``large_input``
  (10M elements) shows the memory-bound cost, which for a cheap kernel is the copy floor.

Callables take the input array; ``out=`` buffers are preallocated where the API allows, so the
timing excludes allocation (except for the numpy evaluator and JAX, which allocate by design).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from dsl.program import Program
from dsl.semantics import as_dtype


@dataclass(frozen=True)
class Timing:
    """One measurement; ``ratio`` is median / baseline median when produced by ``compare``."""

    median_ns_per_element: float
    spread: float  # IQR / median of the per-repeat times
    n: int  # elements per call
    repeats: int
    calls_per_repeat: int
    ratio: float | None = None
    baseline: str | None = None

    def __str__(self) -> str:
        rel = f", {self.ratio:.3g}x {self.baseline}" if self.ratio is not None else ""
        return f"{self.median_ns_per_element:.3g} ns/elt (spread {100 * self.spread:.1f}%, {self.repeats} repeats{rel})"


def spread(samples) -> float:
    """IQR / median: how far one measurement can be trusted (a ratio of two timings with 10%
    spreads is not a 3% result)."""
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return float((q3 - q1) / med) if med > 0 else float("inf")


_spread = spread


def calls_for(fn: Callable[[], object], block_s: float, warmup: int = 2) -> int:
    """Calls of ``fn()`` per timed block so that one block lasts about ``block_s`` (at least one)."""
    pc = time.perf_counter
    for _ in range(warmup):
        fn()
    t0 = pc()
    fn()
    fn()
    return max(1, int(block_s / max((pc() - t0) / 2, 1e-9)))


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, calls: dict[str, int]) -> dict[str, np.ndarray]:
    """Seconds per call of each ``fn()``: one block of ``calls[k]`` calls per function per round,
    the order reversed every other round, every per-round sample kept.

    Interleaving makes the machine's slow phases hit every function alike, and per-round samples
    let a ratio be the median of per-round ratios, in which those phases cancel (on a shared
    machine, ratios of separate medians moved by tens of percent between runs; per-round ratios
    by a few).  The one timing loop of the project: ``search.bench`` and ``backends.speed_cost``
    use it too.
    """
    keys = list(fns)
    out = {k: np.empty(rounds) for k in keys}
    pc = time.perf_counter
    for r in range(rounds):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            fn, c = fns[k], calls[k]
            t0 = pc()
            for _ in range(c):
                fn()
            out[k][r] = (pc() - t0) / c
    return out


def _calibrate(fn: Callable, x, target_s: float, warmup: int) -> int:
    """Calls per repeat so that one repeat lasts about ``target_s`` (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn(x)
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x)
        dt = time.perf_counter() - t0
        if dt >= target_s or calls >= 1 << 24:
            return calls
        calls = max(calls * 2, int(calls * target_s / max(dt, 1e-9) * 1.1))


def _block(fn: Callable, x, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - t0) / calls


def measure(
    fn: Callable,
    x: np.ndarray,
    *,
    min_time: float = 0.2,
    repeats: int = 7,
    max_repeats: int = 31,
    max_spread: float = 0.05,
    warmup: int = 3,
) -> Timing:
    """Median ns per element of ``fn(x)``; see the module docstring for the protocol."""
    n = int(np.size(x))
    calls = _calibrate(fn, x, min_time / repeats, warmup)
    samples = [_block(fn, x, calls) for _ in range(repeats)]
    while _spread(samples) > max_spread and len(samples) < max_repeats:
        samples.append(_block(fn, x, calls))
    return Timing(float(np.median(samples)) * 1e9 / n, _spread(samples), n, len(samples), calls)


def compare(
    candidates: dict[str, Callable],
    x: np.ndarray,
    baseline: str,
    *,
    min_time: float = 0.2,
    repeats: int = 7,
    max_repeats: int = 31,
    max_spread: float = 0.05,
    warmup: int = 3,
) -> dict[str, Timing]:
    """Time every candidate on ``x``, interleaved, each with ``ratio`` to ``candidates[baseline]``."""
    if baseline not in candidates:
        raise KeyError(f"baseline {baseline!r} is not among the candidates")
    n = int(np.size(x))
    calls = {k: _calibrate(fn, x, min_time / repeats, warmup) for k, fn in candidates.items()}
    samples: dict[str, list[float]] = {k: [] for k in candidates}

    def round_() -> None:
        for k, fn in candidates.items():
            samples[k].append(_block(fn, x, calls[k]))

    for _ in range(repeats):
        round_()
    while max(_spread(s) for s in samples.values()) > max_spread and len(samples[baseline]) < max_repeats:
        round_()
    out = {
        k: Timing(float(np.median(s)) * 1e9 / n, _spread(s), n, len(s), calls[k]) for k, s in samples.items()
    }
    base = out[baseline].median_ns_per_element
    return {k: replace(t, ratio=t.median_ns_per_element / base, baseline=baseline) for k, t in out.items()}


# --- inputs ------------------------------------------------------------------------------------
def cache_resident_input(lo: float, hi: float, dtype="float32", n: int = 16384, seed: int = 0) -> np.ndarray:
    """``n`` uniform points in [lo, hi]: 64 KiB in float32, resident in L2 with its output."""
    return np.random.default_rng(seed).uniform(lo, hi, n).astype(as_dtype(dtype))


def large_input(lo: float, hi: float, dtype="float32", n: int = 10_000_000, seed: int = 0) -> np.ndarray:
    """A buffer far larger than the caches (10M elements), for the memory-bound figure."""
    return cache_resident_input(lo, hi, dtype, n, seed)


# --- callables ---------------------------------------------------------------------------------
def llvm_callable(program: Program, x: np.ndarray, dtype="float32") -> Callable:
    """The llvmlite kernel writing into a buffer preallocated for arrays shaped like ``x``."""
    from .llvm_backend import compile_program

    kernel = compile_program(program, dtype)
    out = np.empty(np.shape(x), as_dtype(dtype))
    return lambda a: kernel(a, out=out)


def jax_callable(fn: Callable, x: np.ndarray) -> Callable:
    """A JAX function (``jax_function`` or e.g. ``jax.jit(jnp.exp)``) on a copy of ``x`` already
    on the device; the call waits for the result (``block_until_ready``)."""
    import jax

    x_dev = jax.device_put(x)

    def call(a):
        return fn(x_dev if a is x else a).block_until_ready()

    return call


def jax_program_callable(program: Program, x: np.ndarray, dtype="float32") -> Callable:
    """``jax_function(program, dtype)`` wrapped by ``jax_callable`` (x64 handled for float64)."""
    from .jax_backend import dtype_context, jax_function

    fn = jax_function(program, dtype)
    with dtype_context(dtype):
        return jax_callable(fn, np.asarray(x, as_dtype(dtype)))


def copy_floor(x: np.ndarray) -> Callable:
    """``np.copyto`` into a preallocated buffer: what reading and writing the data costs."""
    out = np.empty_like(x)
    return lambda a: np.copyto(out, a)


def platform_callable(name: str, x: np.ndarray) -> Callable:
    """A library function by name: ``"np.exp"``, ``"np.exp2"``, ``"np.log"``..., or ``"jnp.exp"``,
    ``"jnp.exp2"``... (jitted, on the device).  numpy ufuncs write into a preallocated buffer."""
    lib, _, fname = name.partition(".")
    if lib in ("np", "numpy"):
        ufunc = getattr(np, fname)
        out = np.empty_like(x)
        return lambda a: ufunc(a, out=out)
    if lib in ("jnp", "jax"):
        import jax
        import jax.numpy as jnp

        return jax_callable(jax.jit(getattr(jnp, fname)), x)
    raise ValueError(f"unknown library in {name!r}; use np.NAME or jnp.NAME")


# --- the machine -------------------------------------------------------------------------------
def machine(versions: bool = True) -> str:
    """CPU model (lscpu), cores, Python and (with ``versions``) numpy, llvmlite and JAX with its
    backend: what a benchmark's numbers were measured on.  The one machine description."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except Exception:  # noqa: BLE001 - no lscpu (macOS...), any parse problem
        model = platform.processor() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    bits = [f"{model}, {cores} cores", f"Python {platform.python_version()}"]
    if not versions:
        return ", ".join(bits)
    bits.append(f"numpy {np.__version__}")
    try:
        import jax
        import llvmlite

        bits += [f"llvmlite {llvmlite.__version__}", f"jax {jax.__version__} ({jax.default_backend()})"]
    except Exception:  # noqa: BLE001
        pass
    return ", ".join(bits)
