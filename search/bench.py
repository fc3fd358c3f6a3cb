"""``autonumerics bench RUN_DIR``: how fast the exported winner runs, beside the platform's own
function and the memory-copy floor.

The winner is what ``autonumerics export`` would write (``search.exporting.choose_and_verify``:
the cheapest front entry confirmed within ``--max-ulp`` on dense verification); ``--front`` adds
every other front entry.  For each buffer size, every implementation is timed in one interleaved
run (``interleaved``: a block of calls per implementation per round, the order reversed every
other round) and reported as the median ns per element over the rounds, its spread (IQR/median)
and ratios to the memory-copy floor (``np.copyto`` of the same buffer) and to the platform
function (``np.exp2`` for exp2...), each ratio the median of the per-round ratios.  On a shared
machine only such ratios mean something, never the absolute times of separate runs.

Implementations:

- ``memory copy``: ``np.copyto`` into a preallocated buffer: what reading and writing costs;
- ``np.NAME`` / ``jnp.NAME``: the platform's function (numpy ufunc with ``out=``; ``jax.jit``
  of the ``jax.numpy`` function, on the device, waiting for the result);
- ``numpy evaluator``: ``backends.numpy_backend.evaluate`` (exact semantics; allocates at every
  step and emulates fma exactly, so it is the slow reference, not a fast path);
- ``llvmlite``: the compiled kernel called through raw pointers on preallocated buffers
  (``Kernel.__call__``'s ~4 us of argument checks per call would dominate a 16K buffer);
- ``XLA``: ``backends.jax_backend.jax_function``, one dispatch per call as a user would call it;
  on a cache-resident buffer JAX's dispatch (20-200 us here) outweighs the kernel, so
  ``XLA xR`` also runs the kernel R times inside one executable (``--xla-repeat``, see
  ``backends.speed_cost.xla_raw_callable``) and reports time per element per run.

Buffers: the first sizes (default 16384, in L2) show compute; 10M elements show the memory-bound
cost, which for a cheap kernel is the copy floor.  The input is page-aligned and every output
buffer this module allocates sits half a page from it (``backends.speed_cost.output_buffer``):
an output just past its input modulo 4 KiB made even ``np.copyto`` 10x slower here.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from backends import timing
from backends.timing import Timing, calls_for, machine, spread
from backends.timing import interleaved as timing_interleaved
from dsl.program import Program, cost as op_cost
from dsl.semantics import as_dtype

from . import policy

DEFAULT_SIZES = (16384, 10_000_000)
BACKENDS = ("numpy", "llvm", "xla")
LARGE = 131073  # from this many elements on (1 MiB in + out) a buffer is "large": past L2, memory-bound;
# the XLA xR row is for cache-resident buffers only
COPY = "memory copy (np.copyto)"

# The platform's own function per built-in target: (numpy name, jax name), None where absent.
PLATFORM = {
    "exp": ("np.exp", "jnp.exp"),
    "exp2": ("np.exp2", "jnp.exp2"),
    "log": ("np.log", "jnp.log"),
    "log2": ("np.log2", "jnp.log2"),
    "tanh": ("np.tanh", "jnp.tanh"),
    "sin": ("np.sin", "jnp.sin"),
    "cos": ("np.cos", "jnp.cos"),
    "erf": (None, "jax.scipy.special.erf"),
    "sigmoid": (None, "jax.nn.sigmoid"),
}


class BenchError(ValueError):
    """A user mistake (no such run, nothing within --max-ulp, bad sizes): one line, exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class Impl:
    """One row of the table: ``make(x, x_dev)`` builds a ``fn(x)`` timed on that buffer.

    ``repeat`` is how many kernel runs one call makes (time per element is divided by it);
    ``max_size``/``min_size`` skip the row on buffers outside that range.
    """

    label: str
    make: Callable
    repeat: int = 1
    max_size: int | None = None
    min_size: int | None = None
    kind: str = ""

    def applies(self, n: int) -> bool:
        return (self.max_size is None or n <= self.max_size) and (self.min_size is None or n >= self.min_size)


# --- implementations -------------------------------------------------------------------------------
def _jax_fn(name: str):
    import importlib

    mod, _, attr = name.rpartition(".")
    mod = {"jnp": "jax.numpy"}.get(mod, mod)
    return getattr(importlib.import_module(mod), attr)


def platform_impls(target: str, dtype, backends=BACKENDS) -> list[Impl]:
    """Rows for the platform's own function of ``target`` (none for a user target)."""
    np_name, jax_name = PLATFORM.get(target, (None, None))
    dt = as_dtype(dtype)
    out = []
    if np_name:
        ufunc = getattr(np, np_name.split(".", 1)[1])

        def make_np(x, x_dev, ufunc=ufunc):
            from backends.speed_cost import output_buffer

            buf = output_buffer(x)
            return lambda a: ufunc(a, out=buf)

        out.append(Impl(np_name, make_np, kind="platform-numpy"))
    if jax_name and "xla" in backends:
        def make_jax(x, x_dev, name=jax_name):
            import jax

            from backends.jax_backend import dtype_context

            fn = jax.jit(_jax_fn(name))
            if dt == np.float64:
                def call(a):
                    with dtype_context(dt):
                        return fn(x_dev).block_until_ready()
                return call
            return lambda a: fn(x_dev).block_until_ready()

        out.append(Impl(f"{jax_name} (XLA)", make_jax, kind="platform-xla"))
    return out


def program_impls(label: str, program: Program, dtype, backends=BACKENDS, xla_repeat: int = 64,
                  numpy_max_size: int | None = None) -> list[Impl]:
    """Rows for one program under each backend of ``backends``."""
    from backends import speed_cost

    dt = as_dtype(dtype)
    out = []
    if "numpy" in backends:
        def make_numpy(x, x_dev):
            from backends.numpy_backend import evaluate

            return lambda a: evaluate(program, a, dt)

        out.append(Impl(f"{label}, numpy evaluator", make_numpy, max_size=numpy_max_size, kind="numpy"))
    if "llvm" in backends:
        out.append(Impl(f"{label}, llvmlite",
                        lambda x, x_dev: speed_cost.array_callable(speed_cost.llvm_raw_callable(program, x, dt)),
                        kind="llvm"))
    if "xla" in backends:
        out.append(Impl(f"{label}, XLA",
                        lambda x, x_dev: speed_cost.array_callable(speed_cost.xla_raw_callable(program, x_dev, dt)),
                        kind="xla"))
        if xla_repeat > 1:
            out.append(Impl(f"{label}, XLA x{xla_repeat} per call",
                            lambda x, x_dev: speed_cost.array_callable(
                                speed_cost.xla_raw_callable(program, x_dev, dt, repeat=xla_repeat)),
                            repeat=xla_repeat, max_size=LARGE - 1, kind="xla-loop"))
    return out


def copy_impl() -> Impl:
    from backends.speed_cost import copy_callable

    return Impl(COPY, lambda x, x_dev: copy_callable(x), kind="copy")


# --- timing ---------------------------------------------------------------------------------------
@dataclass
class SizeResult:
    """Every row timed on one buffer, interleaved: per-round ns/element samples and summaries."""

    n: int
    samples: dict[str, np.ndarray]  # ns per element (per kernel run), one value per round
    calls: dict[str, int]

    @property
    def timings(self) -> dict[str, Timing]:
        return {k: Timing(float(np.median(v)), spread(v), self.n, len(v), self.calls[k]) for k, v in self.samples.items()}

    def median(self, label: str) -> float:
        return float(np.median(self.samples[label]))

    def ratio(self, a: str, b: str) -> float | None:
        """Median over rounds of t(a) / t(b), both timed in the same round (None if absent)."""
        if a not in self.samples or b not in self.samples:
            return None
        return float(np.median(self.samples[a] / self.samples[b]))

    def ratio_spread(self, a: str, b: str) -> float | None:
        if a not in self.samples or b not in self.samples:
            return None
        return spread(self.samples[a] / self.samples[b])


def interleaved(cands: dict[str, Callable], x: np.ndarray, *, rounds: int = 21, block_s: float = 0.004,
                warmup: int = 2, repeat: dict[str, int] | None = None) -> SizeResult:
    """ns per element of each candidate ``fn(x)``, timed by ``backends.timing.interleaved``
    (blocks of about ``block_s``, one per candidate per round, every per-round sample kept)."""
    n = int(np.size(x))
    repeat = repeat or {}
    fns = {k: (lambda fn=fn: fn(x)) for k, fn in cands.items()}
    calls = {k: calls_for(fn, block_s, warmup) for k, fn in fns.items()}
    secs = timing_interleaved(fns, rounds, calls)
    samples = {k: secs[k] * 1e9 / (n * repeat.get(k, 1)) for k in fns}
    return SizeResult(n, samples, calls)


def time_impls(impls: list[Impl], sizes, lo: float, hi: float, dtype="float32", *, rounds: int = 21,
               block_s: float = 0.004, log: Callable[[str], None] | None = None) -> dict[int, SizeResult]:
    """For each size, every applicable row timed in one ``interleaved`` run on one buffer of
    uniform inputs in [lo, hi] (one device copy shared by the XLA rows)."""
    dt = as_dtype(dtype)
    results: dict[int, SizeResult] = {}
    from backends.speed_cost import aligned_empty

    for n in sizes:
        x = aligned_empty(int(n), dt)  # page-aligned; outputs half a page away (speed_cost.output_buffer)
        x[:] = timing.cache_resident_input(lo, hi, dt, n=int(n))
        x_dev = None
        rows = [i for i in impls if i.applies(int(n))]
        if any(i.kind.startswith("xla") or i.kind == "platform-xla" for i in rows):
            import jax

            from backends.jax_backend import dtype_context

            with dtype_context(dt):
                x_dev = jax.device_put(x)
        with np.errstate(all="ignore"):
            cands = {i.label: i.make(x, x_dev) for i in rows}
            if log:
                log(f"timing {len(cands)} implementations on {n} elements, {rounds} rounds")
            results[int(n)] = interleaved(cands, x, rounds=rounds, block_s=block_s,
                                          repeat={i.label: i.repeat for i in rows})
        del cands, x, x_dev
    return results


# --- formatting -----------------------------------------------------------------------------------
def size_label(n: int) -> str:
    """``16K (cache-resident, 128 KiB in+out)`` / ``10M (large, 76 MiB in+out)`` (float32)."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        name = f"{n // 1_000_000}M"
    elif n % 1024 == 0:
        name = f"{n // 1024}K"
    else:
        name = str(n)
    nbytes = 2 * 4 * n
    size = f"{nbytes / 1024:.0f} KiB" if nbytes < 1 << 20 else f"{nbytes / (1 << 20):.0f} MiB"
    return f"{name} ({'cache-resident' if n < LARGE else 'large'}, {size} in+out)"


def markdown_table(results: dict[int, SizeResult], ratio_to: list[str]) -> str:
    """One markdown table: a row per (size, implementation); a ratio column per ``ratio_to`` label
    (median of per-round ratios within the same size's run, "-" when absent)."""
    head = ["buffer", "implementation", "ns/element (median)", "spread"] + [f"/ {r}" for r in ratio_to]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, res in results.items():
        for label, t in res.timings.items():
            cells = [size_label(n), label, f"{t.median_ns_per_element:.4g}", f"{100 * t.spread:.0f}%"]
            for r in ratio_to:
                q = res.ratio(label, r)
                cells.append("-" if q is None else f"{q:.3g}x")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the command's logic ---------------------------------------------------------------------------
def bench_run(record, max_ulp: float | None = 1.0, sizes=DEFAULT_SIZES, backends=BACKENDS, *,
              whole_front: bool = False, exhaustive: bool = False, rounds: int = 21,
              block_s: float = 0.004, xla_repeat: int = 64, numpy_max_size: int | None = None,
              log: Callable[[str], None] | None = None) -> str:
    """The benchmark table (text) for the winner of ``record`` (a ``search.results.RunRecord``).

    Raises ``BenchError`` for user mistakes (nothing within ``max_ulp``, bad sizes or backends).
    """
    from fitness.targets import get_target

    from .exporting import ExportError, choose_and_verify

    sizes = tuple(int(s) for s in sizes)
    if not sizes or any(s < 1 for s in sizes):
        raise BenchError("buffer sizes must be positive integers")
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        raise BenchError(f"unknown backend(s) {', '.join(bad) or '(none)'}; choose from {', '.join(BACKENDS)}")
    if max_ulp is not None and not (max_ulp >= 0 and np.isfinite(max_ulp)):
        raise BenchError("--max-ulp must be a finite number >= 0")
    cfg = record.config
    try:
        entry, report = choose_and_verify(record, max_ulp, None, exhaustive)
    except ExportError as exc:
        raise BenchError(str(exc)) from None
    dtype = policy.eval_dtype(cfg)
    programs = [("winner", entry)]
    if whole_front:
        programs += [(f"front #{e.id}", e) for e in sorted(record.front, key=lambda e: e.cost)
                     if e.id != entry.id]
    impls = [copy_impl(), *platform_impls(get_target(cfg.target).name, dtype, backends)]
    for label, e in programs:
        impls += program_impls(label, record.program(e), dtype, backends, xla_repeat, numpy_max_size)
    t0 = time.perf_counter()
    results = time_impls(impls, sizes, cfg.domain[0], cfg.domain[1], dtype, rounds=rounds, block_s=block_s, log=log)
    np_name = PLATFORM.get(get_target(cfg.target).name, (None, None))[0]
    ratio_to = [COPY] + ([np_name] if np_name and any(i.label == np_name for i in impls) else [])
    lines = [
        f"run {record.path}: {cfg.target} on [{cfg.domain[0]!r}, {cfg.domain[1]!r}], {dtype}",
        f"winner: candidate {entry.id}, {op_cost(record.program(entry)):g} operations (cost {entry.cost:g})"
        + (f"; {report.describe()}" if report is not None else ""),
    ]
    for label, e in programs[1:]:
        lines.append(f"{label}: cost {e.cost:g}, error {e.error:.4g} on the fitness points (not verified)")
    lines += [
        f"machine: {machine()}; {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"each buffer: all rows timed in one interleaved run ({rounds} rounds, blocks of ~{1e3 * block_s:g} ms, "
        f"{time.perf_counter() - t0:.0f} s in all); ns/element = median over rounds, spread = IQR/median, "
        "ratios = median of per-round ratios",
        "",
        markdown_table(results, ratio_to),
    ]
    return "\n".join(lines)


def parse_sizes(text: str) -> tuple[int, ...]:
    out = []
    for tok in text.split(","):
        tok = tok.strip().lower().replace("_", "")
        if not tok:
            continue
        mult = 1
        if tok[-1:] in ("k", "m"):
            mult = 1024 if tok[-1] == "k" else 1_000_000
            tok = tok[:-1]
        try:
            v = int(float(tok) * mult)
        except ValueError:
            raise BenchError(f"--sizes: {tok!r} is not a number (use e.g. 16K,10M or 16384,10000000)") from None
        if v < 1:
            raise BenchError("--sizes: sizes must be positive")
        out.append(v)
    if not out:
        raise BenchError("--sizes: give at least one size")
    return tuple(out)
