"""Measured speed as a cost axis: a program's time per element in operation-count units.

``measured_cost(program, dtype, model)`` with ``model`` ``"llvm"`` (the llvmlite kernel) or
``"xla"`` (``jax.jit`` on the default JAX device, CPU here) times the program on a buffer of
inputs from the domain, interleaved with two fixed reference kernels, and returns

    cost = 1 + 7 * (r_P - 1) / (r_8 - 1)

where ``r_P`` is the median over rounds of t(program) / t(REF_1) and ``r_8`` the median of
t(REF_8) / t(REF_1); ``REF_1`` is ``fma(x, c1, c0)`` (1 op) and ``REF_8`` a degree-8 Horner
polynomial (8 fmas).  So the two references cost exactly 1 and 8, a chain of fmas costs about its
length, and slower operations (``div``, ``sqrt``, spilling registers...) cost what they take.
The map is affine and increasing in the measured time ratio, so it orders programs exactly as
the raw ratio ``r_P`` does (that is what ranks the Pareto front); it only gives the numbers the
scale of operation counts, and it cancels the per-call overhead (ctypes, JAX dispatch), which
adds the same time to every kernel.  Costs are floored at 0 and rounded to ``QUANTUM``.

What the number means.  The kernel is timed compute-bound: 64 passes over a 1024-element
buffer (4 KiB in + 4 KiB out, L1-resident), the passes looping inside the compiled code
(``llvm_backend.add_repeat_loop``), so neither memory traffic nor Python's per-call overhead
(a ctypes call costs about as long as one pass) hides the arithmetic.  Each further fma then
adds about its share: with llvmlite on this machine (AMD EPYC, AVX-512) t(REF_8) / t(REF_1) is
about 2.9.  (The first protocol timed one pass a call over 16K elements, L2-resident: a 1-fma
kernel ran at the memory-copy floor and t(REF_8) / t(REF_1) was 1.6 here and 1.08 on a CI
host, where the scale came out NaN; horner4 measured -3.7 to 7.5 op-equivalents.)  Slow
operations (``div``, ``sqrt``) and register pressure cost what they take, so they are in the
cost; an operation count misses them.

Protocol (see ``measure``).  Each round times REF_1, the program and REF_8 in one block each
(order reversed every other round, so drift cancels), a block being as many calls as fill
``Settings.block_s`` (at least one); per-round ratios; medians over the rounds.  llvmlite
kernels are called through raw pointers on preallocated buffers: 41 rounds of 20 us blocks,
about 3 ms a measurement after the ~50 ms compile.  XLA: JAX's dispatch costs 20-200 us a call
on this shared machine, far more than a kernel on a cache-resident buffer (and on a buffer large
enough to hide it the kernel is memory-bound: a degree-8 polynomial took 1.04-1.15x a 1-fma one
on 2**20 elements), so the program runs 64 times inside one executable
(``xla_raw_callable(repeat=64)``) on 16384 elements, 21 rounds, 25-50 ms a measurement after
0.1-0.3 s of compiling.

Noise, measured on the shared 2-core machine under its usual load (``python -m
backends.speed_cost`` repeats the study: 10 uncached measurements per program, one process), as
median +- standard deviation in op-equivalents:

    llvm: horner2 2.25+-0.04, horner4 4.72+-0.04, horner6 6.25+-0.33, horner10 10.67+-0.13,
          horner12 13.77+-0.10, 1/(x+c) 5.48+-0.01, fma(sqrt(x), x, c) 10.65+-0.52
    xla:  horner2 1.1+-0.2, horner4 1.7+-0.6, horner6 7.1+-0.9, horner10 9.7+-1.1,
          horner12 11.2+-1.3, 1/(x+c) 2.2+-0.4, fma(sqrt(x), x, c) 4.9+-0.5

horner6 is bimodal between processes (5.5 or 7.1: the vectorizer's unroll and the loop's
alignment), so ``QUANTUM`` = 0.25 for llvm and 0.5 for xla: closer costs are ties, decided by
error.  Outliers (a round preempted by another process) are removed by the medians; a machine
busy for the whole measurement still shifts it.  Measured costs make a run non-reproducible
bit for bit, unlike operation counts.  XLA's numbers differ from llvmlite's (its division is
cheap relative to its fma loop, its degree-6 loop is far slower than its degree-4 one): each
model ranks programs for its own backend.

Buffers are placed by ``output_buffer`` (input page-aligned, output half a page away): with an
output 16 bytes past its input modulo 4 KiB (what ``np.empty_like`` right after the input gave)
a streaming copy ran 10x slower here ("4K aliasing").

Caching.  ``measured_cost`` keeps a per-process LRU cache (``CACHE_SIZE`` entries, thread-safe)
keyed by (model, dtype, domain, ``dsl.canonical.structural_hash``): the canonical structure with
literal constants kept and fitted parameters masked, since the fitted values do not change the
machine code (rare exceptions: a parameter fitted to exactly 0, 1 or a power of 2 that LLVM then
folds; the first measurement of a structure is what the cache keeps).  Worker processes each
have their own cache; the engine's equivalence cache keeps the cost with each fitted result, so
a structure is measured again only in another process.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dsl.canonical import structural_hash
from dsl.program import Node, Program, cost as op_count_cost
from dsl.semantics import as_dtype

from .timing import calls_for, interleaved, spread

MODELS = ("llvm", "xla")
COST_MODELS = ("ops", *MODELS)
QUANTUM = {"llvm": 0.25, "xla": 0.5}
REF_HIGH_OPS = 8  # REF_1 costs 1, REF_8 costs REF_HIGH_OPS
MIN_REF_RATIO = 1.15  # t(REF_8) / t(REF_1) is ~2.9 (llvm) and ~3 (xla) here; below this the scale is noise
CACHE_SIZE = 4096
DEFAULT_DOMAIN = (0.0, 1.0)


@dataclass(frozen=True)
class Settings:
    n: int  # elements in the buffer
    rounds: int
    block_s: float  # target seconds per timed block (at least one call)
    repeat: int = 1  # kernel passes per call, inside the compiled code


SETTINGS = {
    "llvm": Settings(n=1024, rounds=41, block_s=20e-6, repeat=64),
    "xla": Settings(n=16384, rounds=21, block_s=0.0, repeat=64),
}


@dataclass(frozen=True)
class CostMeasurement:
    """One measurement: ``cost`` (rounded op-equivalents) and what it was computed from."""

    cost: float
    raw: float  # op-equivalents before rounding and flooring
    ratio: float  # median t(program) / t(REF_1)
    ref_ratio: float  # median t(REF_8) / t(REF_1)
    spread: float  # IQR / median of the per-round program ratios
    ns_per_element: float  # median program time per element (informative only: never compare)
    ref_ns_per_element: float  # median REF_1 time per element, same rounds
    n: int
    rounds: int
    model: str
    dtype: str
    seconds: float  # wall time of the measurement (compile included)


class SpeedCostError(ValueError):
    """An unknown cost model, or a program that cannot be timed on this backend."""


# --- reference programs ---------------------------------------------------------------------
# Generic coefficients (2**x Taylor terms): no value LLVM or XLA could simplify (0, 1, 2**k).
_REF_COEFFS = (1.0000001, 0.69314718, 0.24022650, 0.05550411, 0.00961813,
               0.00133336, 0.00015404, 0.00001525, 0.00000132)


def horner_program(degree: int, coeffs=_REF_COEFFS) -> Program:
    """``c0 + x*(c1 + x*(...))`` with ``degree`` fmas (the reference kernels; handy in tests)."""
    if degree < 1:
        raise ValueError("degree must be >= 1")
    coeffs = list(coeffs) + [1.0 / k for k in range(len(coeffs) + 1, degree + 2)]
    nodes = [Node("x")]
    idx = []
    for k in range(degree + 1):
        nodes.append(Node("param", (), float(coeffs[k])))
        idx.append(len(nodes) - 1)
    acc = idx[degree]
    for k in range(degree - 1, -1, -1):
        nodes.append(Node("fma", (0, acc, idx[k])))
        acc = len(nodes) - 1
    return Program(tuple(nodes), acc)


REF_LOW = horner_program(1)
REF_HIGH = horner_program(REF_HIGH_OPS)


# --- buffers ---------------------------------------------------------------------------------------
PAGE = 4096


def aligned_empty(n: int, dtype, page_offset: int = 0) -> np.ndarray:
    """An uninitialized 1-D array whose data starts ``page_offset`` bytes into a 4 KiB page."""
    dt = as_dtype(dtype)
    raw = np.empty(n * dt.itemsize + 2 * PAGE, np.uint8)
    start = (page_offset - raw.ctypes.data) % PAGE
    return raw[start:start + n * dt.itemsize].view(dt)


def output_buffer(x: np.ndarray, dtype=None) -> np.ndarray:
    """An output array like ``x`` placed half a page away from it modulo 4 KiB.

    Where an output lies less than one vector (32 bytes) past its input modulo 4 KiB, every
    load in a streaming loop seems to depend on a store just issued ("4K aliasing"): measured
    here, ``np.copyto`` of 64K float32 took 1.4 ns/element into ``np.empty_like(x)`` allocated
    right after ``x`` on the heap (16 bytes past it modulo 4 KiB) and 0.11-0.13 ns/element
    elsewhere.  Every timed kernel writes into a buffer placed by this function, so that timings
    do not depend on where the allocator happened to put the arrays.
    """
    dt = x.dtype if dtype is None else as_dtype(dtype)
    return aligned_empty(int(np.size(x)), dt, (x.ctypes.data + PAGE // 2) % PAGE)


def copy_callable(x: np.ndarray) -> Callable:
    """``np.copyto`` of ``x`` into a preallocated ``output_buffer``: the memory-copy floor."""
    out = output_buffer(x)
    return lambda a: np.copyto(out, a)


# --- raw callables: no argument checks, fixed buffers ------------------------------------------
def llvm_raw_callable(program: Program, x: np.ndarray, dtype="float32", repeat: int = 1) -> Callable[[], None]:
    """A zero-argument call of ``repeat`` passes of the llvmlite kernel over ``x`` into a
    preallocated output, the passes looping inside the compiled code (``add_repeat_loop``).

    No argument checks (``Kernel.__call__``'s cost about 4 us): the pointers are fixed here,
    once.  The returned function keeps the code, ``x`` and the output alive.
    """
    from .llvm_backend import compile_repeated

    dt = as_dtype(dtype)
    kernel = compile_repeated(program, dt)
    xs = np.ascontiguousarray(x, dt)
    out = output_buffer(xs)
    fn, xp, yp, n, reps = kernel.fn, xs.ctypes.data, out.ctypes.data, int(xs.shape[0]), int(repeat)

    def call() -> None:
        fn(xp, yp, n, reps)

    call.keep = (kernel, xs, out)
    return call


@functools.lru_cache(maxsize=256)
def _xla_looped(jitted, repeat: int) -> Callable:
    """``jit`` of ``repeat`` applications of ``jitted`` to the same input, each depending on the
    last through ``x + y * zero`` (``zero`` a runtime 0, so XLA cannot drop the dependence or
    hoist the body out of the loop): one dispatch, ``repeat`` kernel runs."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def body(x, leaves, zero):
        return lax.fori_loop(0, repeat, lambda i, y: jitted(x + y * zero, leaves), jnp.zeros_like(x))

    return jax.jit(body)


def xla_raw_callable(program: Program, x: np.ndarray, dtype="float32", repeat: int = 1) -> Callable[[], None]:
    """A zero-argument call of the program's jitted XLA function on ``x`` (copied to the device
    once here, unless it is a JAX array of the dtype already) that waits for the result.  float64 runs inside JAX's x64 mode, entered around each call.

    ``repeat`` > 1 runs the kernel ``repeat`` times inside one executable (see ``_xla_looped``):
    JAX's dispatch costs 20-200 us a call on this machine, far more than the kernel on a
    cache-resident buffer, so a single call measures the dispatch, not the program.
    """
    import jax

    from .jax_backend import dtype_context, jax_function

    dt = as_dtype(dtype)
    fn = jax_function(program, dt)
    with dtype_context(dt):
        if isinstance(x, jax.Array) and x.dtype == dt:
            x_dev = x  # already on the device (callers timing several programs share one copy)
        else:
            x_dev = jax.device_put(np.ascontiguousarray(x, dt))
        zero = jax.device_put(np.zeros((), dt))
    jitted, leaves = fn.jitted, fn.leaves
    if repeat > 1:
        looped = _xla_looped(jitted, int(repeat))

        def run():
            return looped(x_dev, leaves, zero)
    else:
        def run():
            return jitted(x_dev, leaves)

    if dt == np.float64:
        def call() -> None:
            with dtype_context(dt):
                run().block_until_ready()
    else:
        def call() -> None:
            run().block_until_ready()

    call.keep = (fn, x_dev, zero)
    return call


def raw_callable(program: Program, x: np.ndarray, dtype="float32", model: str = "llvm",
                 repeat: int = 1) -> Callable[[], None]:
    """``llvm_raw_callable`` or ``xla_raw_callable``, ``repeat`` passes a call."""
    _check_model(model)
    if model == "llvm":
        return llvm_raw_callable(program, x, dtype, repeat)
    return xla_raw_callable(program, x, dtype, repeat)


def array_callable(call: Callable[[], None]) -> Callable:
    """Adapt a raw zero-argument call to ``backends.timing``'s ``fn(x)`` convention (the
    argument is ignored: the raw call always works on its own fixed buffer)."""
    return lambda _x: call()


# --- measurement -------------------------------------------------------------------------------
def _check_model(model: str) -> None:
    if model not in MODELS:
        raise SpeedCostError(f"unknown measured cost model {model!r}; use one of {', '.join(MODELS)}")


def _input(domain, dtype, n: int) -> np.ndarray:
    lo, hi = (DEFAULT_DOMAIN if domain is None else domain)
    rng = np.random.default_rng(12345)
    x = aligned_empty(n, dtype)  # page-aligned; outputs go half a page away (see output_buffer)
    with np.errstate(over="ignore"):
        x[:] = rng.uniform(float(lo), float(hi), n).astype(as_dtype(dtype))
    return x


def measure(program: Program, dtype="float32", model: str = "llvm", domain=None, *,
            n: int | None = None, rounds: int | None = None) -> CostMeasurement:
    """Time ``program`` against the two references, interleaved (see the module docstring)."""
    _check_model(model)
    t_start = time.perf_counter()
    s = SETTINGS[model]
    n = s.n if n is None else int(n)
    rounds = s.rounds if rounds is None else int(rounds)
    if n < 1 or rounds < 1:
        raise ValueError("n and rounds must be positive")
    dt = as_dtype(dtype)
    x = _input(domain, dt, n)
    with np.errstate(all="ignore"):
        try:
            fns = [raw_callable(p, x, dt, model, s.repeat) for p in (REF_LOW, program, REF_HIGH)]
        except Exception as exc:  # noqa: BLE001 - a backend failure is reported as one error
            raise SpeedCostError(f"cannot run the program under {model}: {type(exc).__name__}: {exc}") from None
        named = dict(zip(("low", "program", "high"), fns))
        secs = interleaved(named, rounds, {k: calls_for(fn, s.block_s) for k, fn in named.items()})
        times = np.stack([secs["low"], secs["program"], secs["high"]], axis=1)
    ratios = times[:, 1] / times[:, 0]
    ref_ratios = times[:, 2] / times[:, 0]
    r_p, r_8 = float(np.median(ratios)), float(np.median(ref_ratios))
    if not r_8 > MIN_REF_RATIO:
        # the two references timed (nearly) alike: no scale to read the program's time against
        raw = float("nan")
    else:
        raw = 1.0 + (REF_HIGH_OPS - 1) * (r_p - 1.0) / (r_8 - 1.0)
    return CostMeasurement(
        cost=quantize(raw, model), raw=raw, ratio=r_p, ref_ratio=r_8, spread=spread(ratios),
        ns_per_element=float(np.median(times[:, 1])) * 1e9 / (n * s.repeat),
        ref_ns_per_element=float(np.median(times[:, 0])) * 1e9 / (n * s.repeat),
        n=n, rounds=rounds, model=model, dtype=dt.name, seconds=time.perf_counter() - t_start)


def quantize(raw: float, model: str) -> float:
    """Floor at 0 and round to the model's ``QUANTUM`` (differences below it are noise)."""
    if not np.isfinite(raw):
        return float("nan")
    q = QUANTUM[model]
    return round(round(raw / q) * q, 6) if raw > 0 else 0.0


# --- cached entry points -----------------------------------------------------------------------
class _LRU:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                self.hits += 1
                return self.data[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_CACHE = _LRU(CACHE_SIZE)


def cache_key(program: Program, dtype="float32", model: str = "llvm", domain=None) -> tuple:
    dt = as_dtype(dtype)
    lo, hi = DEFAULT_DOMAIN if domain is None else domain
    return (model, dt.name, float(lo), float(hi), structural_hash(program, dt))


def measured_cost(program: Program, dtype="float32", model: str = "llvm", domain=None) -> float:
    """The program's measured cost in op-equivalents (cached per process; see the module doc).

    ``domain`` (lo, hi) is where the timing inputs are drawn (default [0, 1]); pass the run's
    domain.  Raises ``SpeedCostError`` for an unknown model or a program the backend cannot run.
    If the measurement is degenerate (NaN: the machine was too loaded to tell the references
    apart), it is repeated once; a second NaN falls back to the operation count.
    """
    _check_model(model)
    key = cache_key(program, dtype, model, domain)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    value = measure(program, dtype, model, domain).cost
    if not np.isfinite(value):
        value = measure(program, dtype, model, domain).cost
    if not np.isfinite(value):
        value = op_count_cost(program)
    _CACHE.put(key, value)
    return value


def program_cost(program: Program, dtype="float32", model: str = "ops", domain=None) -> float:
    """The cost on the run's cost axis: operation count for ``"ops"``, else ``measured_cost``."""
    if model == "ops":
        return op_count_cost(program)
    return measured_cost(program, dtype, model, domain)


def cache_info() -> dict:
    return {"hits": _CACHE.hits, "misses": _CACHE.misses, "size": len(_CACHE.data), "maxsize": _CACHE.size}


def cache_clear() -> None:
    with _CACHE.lock:
        _CACHE.data.clear()
        _CACHE.hits = _CACHE.misses = 0


# --- noise study ---------------------------------------------------------------------------------
def noise_study(models=MODELS, repeats: int = 10, dtype="float32") -> str:
    """Repeat uncached measurements of a few programs; a table of median and SD per model."""
    from dsl.text import parse_program

    progs = {f"horner{d}": horner_program(d) for d in (2, 4, 6, 10, 12)}
    progs["div"] = parse_program("v1 = param 1.5\nv2 = add x v1\nv3 = div v1 v2\nreturn v3\n")
    progs["sqrt+fma"] = parse_program("v1 = param 0.3\nv2 = sqrt x\nv3 = fma v2 x v1\nreturn v3\n")
    lines = [f"{'model':<6}{'program':<10}{'median':>8}{'sd':>7}{'min':>7}{'max':>7}{'ms/meas':>9}"]
    for model in models:
        for name, p in progs.items():
            ms = [measure(p, dtype, model) for _ in range(repeats)]
            raws = np.array([m.raw for m in ms])
            lines.append(f"{model:<6}{name:<10}{np.median(raws):8.2f}{np.std(raws):7.2f}{raws.min():7.2f}"
                         f"{raws.max():7.2f}{1e3 * np.median([m.seconds for m in ms]):9.1f}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(noise_study(sys.argv[1:] or MODELS))
