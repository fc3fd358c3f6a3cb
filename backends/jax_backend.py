"""Evaluate a program with JAX: one ``jax.jit`` function per program, on any XLA platform.

Only ``jax.numpy``/``jax.lax`` are used, so the function runs on whichever device JAX picks (CPU,
GPU).  Each op of ``dsl.ops.OPS`` maps to the JAX expression in ``JAX_IMPL``; the functions
below it are written with ``jnp``/``lax``/``np`` alone so that ``backends.export`` can copy
their source into a self-contained module.

Exactness against ``dsl.semantics``, measured with JAX 0.10 on CPU (AVX2) and JAX 0.11 on an
H100 (the tests encode it):

- JAX has no fma primitive (StableHLO has none either), so ``fma`` is written ``a * b + c``.
  XLA on CPU compiles with floating-point contraction on: the pair becomes one hardware fma
  (bit-exact), but so does every other ``mul`` feeding an ``add``/``sub``, where
  ``dsl.semantics`` rounds twice.  XLA on GPU does not contract: there ``fma`` rounds twice.
  Either way results can differ wherever a program multiplies and then adds (usually by an
  ulp, more after cancellation); a Horner chain is all fused (CPU) or all unfused (GPU).
- XLA on CPU flushes subnormals to zero (seen: ``x * 0.5`` of a subnormal gave 0); the GPU
  keeps them.  A NaN made on the GPU is positive (x86 makes a negative one), which
  ``copysign`` can see.
- XLA on GPU lowers float32 division to ``div.full.f32`` (up to 2 ulps: 31656.303 / 31656.303
  gave 0.9999999) and float32 sqrt to an approximation (up to 1 ulp seen); float64 division and
  sqrt are IEEE there.
- XLA's algebraic simplifier rewrites some IEEE expressions into different ones (division by a
  broadcast scalar into a multiplication by its reciprocal, ``a / sqrt(b)`` into
  ``a * rsqrt(b)``).  Constants are therefore runtime arguments, not literals, and ``div``
  passes its operands through ``lax.optimization_barrier`` (see ``divide``).
- ``ldexp`` and ``frexp`` are exact bit-level constructions (``jnp.ldexp`` multiplies by a
  power of two that itself underflows, so it is not correctly rounded for subnormal results).

With those exceptions (no multiply-add pairs; no float32 div/sqrt on GPU; no subnormals on CPU)
JAX results are bit-identical to the reference.  Use the llvmlite backend or the numpy evaluator
where bit-exactness matters.

float64 needs JAX's x64 mode.  ``jax_function(p, "float64")`` turns it on only around its own
tracing and calls (``jax.enable_x64(True)`` as a context manager), so the process-wide setting
is left alone; the float64 arrays it returns keep their dtype, but operating on them outside
such a context truncates to float32.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import replace
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dsl.interpret import Semantics, fold
from dsl.ops import LDEXP2_RANGE, LDEXP_CLAMP, OPS
from dsl.program import Program
from dsl.semantics import as_dtype
from dsl.text import format_program, parse_program

CACHE_SIZE = 256  # compiled structures kept (XLA executables hold some memory each)


def x64_enabled():
    """A context manager turning on JAX's 64-bit mode for its extent (old and new JAX spellings)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older JAX
        from jax.experimental import enable_x64 as enable
    return enable(True)


def ldexp32(a, k):
    """float32 ``a * 2**trunc(k)``, ``k`` clamped to [-512, 512], NaN ``k`` gives NaN; one rounding.

    musl's ``scalbnf`` sequence, branch-free: factors of 2**127 or 2**-102 are applied first
    (exactly, or, for 2**-102, into a subnormal only when the final result is below 2**-151 and
    so rounds to zero either way) until the rest fits one float32 power of two.
    """
    k_nan = jnp.isnan(k)
    n = jnp.where(k_nan, 0.0, jnp.clip(jnp.trunc(k), -LDEXP_CLAMP, LDEXP_CLAMP)).astype(jnp.int32)
    y = a
    for _ in range(2):
        big = n > 127
        y = jnp.where(big, y * jnp.float32(2.0**127), y)
        n = jnp.where(big, n - 127, n)
    n = jnp.minimum(n, 127)
    for _ in range(2):
        small = n < -126
        y = jnp.where(small, y * jnp.float32(2.0**-102), y)
        n = jnp.where(small, n + 102, n)
    n = jnp.maximum(n, -126)
    scale = lax.bitcast_convert_type((n + 127) << 23, jnp.float32)
    return jnp.where(k_nan, jnp.float32(np.nan), y * scale)


def ldexp64(a, k):
    """float64 ``a * 2**trunc(k)`` (clamped to [-512, 512]): 2**k is an exact normal double."""
    k_nan = jnp.isnan(k)
    n = jnp.where(k_nan, 0.0, jnp.clip(jnp.trunc(k), -LDEXP_CLAMP, LDEXP_CLAMP)).astype(jnp.int64)
    scale = lax.bitcast_convert_type((n + 1023) << 52, jnp.float64)
    return jnp.where(k_nan, jnp.float64(np.nan), a * scale)


def ldexp2(a, k):
    """``(a * 2**h) * 2**(n - h)``, ``h = n >> 1``, ``n`` = ``trunc(k)`` clamped (NaN to the lower end)."""
    f32 = a.dtype == jnp.float32
    lo, hi = LDEXP2_RANGE["float32" if f32 else "float64"]
    itype, mant, bias = (jnp.int32, 23, 127) if f32 else (jnp.int64, 52, 1023)
    kc = jnp.where(k > lo, k, a.dtype.type(lo))
    n = jnp.trunc(jnp.where(kc < hi, kc, a.dtype.type(hi))).astype(itype)
    h = lax.shift_right_arithmetic(n, itype(1))
    s1 = lax.bitcast_convert_type((h + bias) << mant, a.dtype)
    s2 = lax.bitcast_convert_type((n - h + bias) << mant, a.dtype)
    return (a * s1) * s2


def cvt_f32(a):
    """``a`` rounded to float32, kept in a's dtype.  Below float32's normal range the rounding is
    done in a's own dtype (to a multiple of 2**-149, ties to even): XLA on CPU flushes float32
    subnormals to zero in the conversion itself."""
    if a.dtype == jnp.float32:
        return a
    tiny = jnp.abs(a) < jnp.asarray(2.0**-126, a.dtype)
    scale = jnp.asarray(2.0**149, a.dtype)
    sub = lax.round(a * scale, lax.RoundingMethod.TO_NEAREST_EVEN) / scale  # both exact in float64
    return jnp.where(tiny, sub, a.astype(jnp.float32).astype(a.dtype))


def frexp(a):
    """C ``frexp`` read off the bits, exponent as a float; ``(a, 0)`` for 0, inf and NaN."""
    if a.dtype == jnp.float32:
        itype, mant, emask, bias = jnp.int32, 23, 0xFF, 127
    else:
        itype, mant, emask, bias = jnp.int64, 52, 0x7FF, 1023
    biased = (lax.bitcast_convert_type(a, itype) >> mant) & emask
    is_sub = biased == 0
    scaled = jnp.where(is_sub, a * a.dtype.type(2.0 ** (mant + 1)), a)  # exact: lands in the normal range
    bits = lax.bitcast_convert_type(scaled, itype)
    e = ((bits >> mant) & emask) - jnp.where(is_sub, bias - 1 + mant + 1, bias - 1).astype(itype)
    m_bits = (bits & itype(~(emask << mant))) | itype((bias - 1) << mant)
    m = lax.bitcast_convert_type(m_bits, a.dtype)
    special = (a == 0) | (biased == emask)
    return jnp.where(special, a, m), jnp.where(special, 0, e).astype(a.dtype)


def divide(a, b):
    """IEEE ``a / b``, hidden from XLA's algebraic simplifier.

    XLA rewrites ``x / broadcast(s)`` into ``x * broadcast(1 / s)`` (even for a runtime ``s``)
    and ``a / sqrt(b)`` into ``a * rsqrt(b)``; both change results (seen on CPU: a third of the
    quotients).  Operands passed through ``optimization_barrier`` (the divisor broadcast to the
    full shape first) match no such pattern, and XLA still fuses the loop around the division.
    """
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    a, b = lax.optimization_barrier((jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)))
    return a / b


def _ldexp(a, k):
    return ldexp32(a, k) if a.dtype == jnp.float32 else ldexp64(a, k)


# One entry per op of dsl.ops.OPS; arguments are jnp arrays (or 0-d arrays) of the program dtype.
JAX_IMPL: dict[str, Callable] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": divide,
    "fma": lambda a, b, c: a * b + c,  # XLA contracts this to a hardware fma (see module doc)
    "neg": lambda a: -a,
    "sqrt": lambda a: jnp.sqrt(a),
    "abs": lambda a: jnp.abs(a),
    "copysign": lambda a, b: jnp.copysign(a, b),
    "floor": lambda a: jnp.floor(a),
    "round": lambda a: lax.round(a, lax.RoundingMethod.TO_NEAREST_EVEN),
    "ldexp": _ldexp,
    "ldexp2": ldexp2,
    "frexp_m": lambda a: frexp(a)[0],
    "frexp_e": lambda a: frexp(a)[1],
    "select_lt": lambda a, b, c, d: jnp.where(a < b, c, d),
    "cvt_f32": cvt_f32,
}

assert set(JAX_IMPL) == set(OPS), "every op in dsl.ops.OPS needs a JAX implementation"


class _JaxSemantics(Semantics):
    """Traced JAX values; every constant is read from ``leaves`` (a runtime argument)."""

    ops = JAX_IMPL

    def __init__(self, x, leaves, slot: dict[int, int]):
        self.x, self.leaves, self.slot = x, leaves, slot

    def input(self):
        return self.x

    def const(self, i, value):
        return self.leaves[self.slot[i]]


def _leaf_indices(program: Program) -> tuple[int, ...]:
    live = program.live()
    return tuple(i for i, n in enumerate(program.nodes) if live[i] and n.op in ("const", "param"))


def _structure(program: Program) -> Program:
    """The program with every constant's value zeroed: what the compiled XLA code depends on."""
    return Program(tuple(replace(n, value=0.0) if n.is_leaf else n for n in program.nodes), program.output)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jitted(structure_text: str, dtype_name: str) -> Callable:
    """``jax.jit`` of ``f(x, leaves)``, the program with its constants read from ``leaves``."""
    program, dt = parse_program(structure_text), as_dtype(dtype_name)
    slot = {i: k for k, i in enumerate(_leaf_indices(program))}

    def f(x, leaves):
        x = jnp.asarray(x, dt)
        return jnp.broadcast_to(fold(program, _JaxSemantics(x, leaves, slot)), x.shape).astype(dt)

    return jax.jit(f)


def jax_function(program: Program, dtype="float32") -> Callable:
    """A jit-compiled ``f(x) -> program(x)`` on JAX arrays (any device).

    The program's constants reach XLA as a runtime argument, not as literals: XLA's algebraic
    simplifier rewrites a division by a literal into a multiplication by its rounded reciprocal
    (seen on CPU: ``x / 0.75`` differed from IEEE division on a third of float64 inputs).  As a
    bonus, programs differing only in their constants share one compiled function (cached by
    the program's text with constants zeroed, plus dtype): refitting constants never recompiles.

    For float64 the returned callable enters ``jax.enable_x64(True)`` around each call, so the
    caller need not turn on x64 globally.
    """
    dt = as_dtype(dtype)
    with np.errstate(over="ignore"):  # float32 rounding of out-of-range values gives inf
        values = np.array([program.nodes[i].value for i in _leaf_indices(program)], np.float64).astype(dt)
    jitted = _jitted(format_program(_structure(program)), dt.name)
    with dtype_context(dt):
        leaves = jnp.asarray(values, dt)

    def call(x):
        with dtype_context(dt):
            return jitted(jnp.asarray(x, dt), leaves)

    call.jitted, call.leaves = jitted, leaves  # jitted(x, leaves) takes other constants too
    return call


def dtype_context(dtype):
    """The context under which JAX arrays of ``dtype`` exist (x64 mode for float64)."""
    return x64_enabled() if as_dtype(dtype) == np.float64 else contextlib.nullcontext()
