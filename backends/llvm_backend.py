"""Compile a program into a native, auto-vectorized array loop with llvmlite (LLVM 22).

The compiled function is ``void f(const T* noalias x, T* noalias y, i64 n)`` computing
``y[i] = program(x[i])``, with ``T`` = ``float`` or ``double``.  The loop is optimized for the
host CPU (its name and feature string, ``opt=3``, the new pass manager at speed level 3 with the
loop and SLP vectorizers on), so a straight-line body becomes 8-wide AVX2 code (``vfmadd``,
``vroundps``) on an AVX2 machine.

Bit-exactness against ``dsl.semantics`` is the contract, so:

- no fast-math flags anywhere: LLVM may then only make value-preserving rewrites (``x * 2`` to
  ``x + x``, ``fma(x, 1, c)`` to ``x + c``) and it never fuses a separate multiply and add;
- ``fma`` is ``llvm.fma`` (one rounding), ``round`` is ``llvm.roundeven`` (ties to even, whatever
  the rounding mode), ``floor``/``sqrt``/``abs``/``copysign`` are the matching intrinsics;
- ``ldexp`` is not ``llvm.ldexp``: LLVM 22 vectorizes the IR but the x86 (AVX2) code generator
  then calls libm's ``ldexpf`` once per element (seen in the assembly).
  With ``k`` clamped to [-512, 512], ``2**k`` is an exact normal double, so ``a * 2**k`` is one
  correctly rounded double multiply; a float32 ``a`` is widened to double first (the product is
  then exact) and rounded once when narrowed back;
- ``frexp`` is read off the bits (subnormals scaled into the normal range first), not
  ``llvm.frexp``, whose exponent for inf/NaN is unspecified.

What no backend can promise is the sign and payload of a NaN an operation creates: IEEE 754 and
LLVM leave them unspecified (and LLVM may commute the operands of ``fadd``, changing which input
NaN propagates).  Outputs agree "bit for bit, any NaN equal to any NaN"; only ``copysign`` with a
NaN sign argument turns that freedom into a different non-NaN value.

Compiled kernels are cached by the program's exact text plus dtype in a bounded LRU cache.  Each
kernel is linked into the process's one ORC JIT (created on first use) as its own library whose
resource tracker the ``Kernel`` holds: dropping the last reference unloads the machine code, so
the cache bound is also a bound on JIT memory.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import threading
from dataclasses import dataclass
from typing import Callable

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from dsl.interpret import Semantics, fold
from dsl.ops import LDEXP2_RANGE, LDEXP_CLAMP, OPS
from dsl.program import Program
from dsl.semantics import as_dtype
from dsl.text import format_program, parse_program

CACHE_SIZE = 1024


@dataclass(frozen=True)
class _Format:
    """IEEE binary format facts the bit-level emitters need."""

    ftype: ir.Type
    itype: ir.IntType
    mant_bits: int  # stored significand bits
    exp_mask: int  # all-ones biased exponent
    bias: int

    @property
    def sub_scale(self) -> int:
        """Scaling a subnormal by 2**sub_scale makes it normal, exactly."""
        return self.mant_bits + 1


_FORMATS = {
    np.dtype(np.float32): _Format(ir.FloatType(), ir.IntType(32), 23, 0xFF, 127),
    np.dtype(np.float64): _Format(ir.DoubleType(), ir.IntType(64), 52, 0x7FF, 1023),
}
_I64 = ir.IntType(64)
_F64 = ir.DoubleType()


class _Emitter:
    """Emits the IR of one loop body: intrinsic declarations, constants, one value per op."""

    def __init__(self, module: ir.Module, builder: ir.IRBuilder, dt: np.dtype):
        self.module, self.b, self.dt = module, builder, dt
        self.fmt = _FORMATS[dt]

    def const(self, value: float) -> ir.Constant:
        # Round with numpy (struct.pack, used by llvmlite, raises on float32 overflow).
        return ir.Constant(self.fmt.ftype, float(self.dt.type(value)))

    def intrinsic(self, base: str, *args: ir.Value, ty: ir.Type | None = None) -> ir.Value:
        ty = ty or self.fmt.ftype
        name = f"llvm.{base}.{'f32' if ty == ir.FloatType() else 'f64'}"
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty] * len(args)), name=name)
        return self.b.call(fn, list(args))

    def int_const(self, value: int) -> ir.Constant:
        return ir.Constant(self.fmt.itype, value)

    # --- ops without a single LLVM instruction ---------------------------------------------
    def ldexp(self, a: ir.Value, k: ir.Value) -> ir.Value:
        b, fmt = self.b, self.fmt
        k_nan = b.fcmp_unordered("uno", k, k)
        lo, hi = self.const(-LDEXP_CLAMP), self.const(LDEXP_CLAMP)
        kc = b.select(b.fcmp_ordered("<", k, lo), lo, k)
        kc = b.select(b.fcmp_ordered(">", kc, hi), hi, kc)
        kc = b.select(k_nan, self.const(0.0), kc)  # fptosi of NaN would be poison
        ki = b.fptosi(kc, _I64)  # truncates toward zero
        scale = b.bitcast(b.shl(b.add(ki, ir.Constant(_I64, 1023)), ir.Constant(_I64, 52)), _F64)
        if fmt.ftype == _F64:
            r = b.fmul(a, scale)
        else:  # exact double product, then the one rounding to float
            r = b.fptrunc(b.fmul(b.fpext(a, _F64), scale), fmt.ftype)
        return b.select(k_nan, self.const(float("nan")), r)

    def ldexp2(self, a: ir.Value, k: ir.Value) -> ir.Value:
        """Two multiplies in the dtype by powers of two built from integer bits: no wider type."""
        b, fmt = self.b, self.fmt
        lo, hi = LDEXP2_RANGE[self.dt.name]
        kc = b.select(b.fcmp_ordered(">", k, self.const(lo)), k, self.const(lo))  # NaN -> lo
        kc = b.select(b.fcmp_ordered("<", kc, self.const(hi)), kc, self.const(hi))
        n = b.fptosi(kc, fmt.itype)  # truncates toward zero
        h = b.ashr(n, self.int_const(1))
        shift, bias = self.int_const(fmt.mant_bits), self.int_const(fmt.bias)
        s1 = b.bitcast(b.shl(b.add(h, bias), shift), fmt.ftype)
        s2 = b.bitcast(b.shl(b.add(b.sub(n, h), bias), shift), fmt.ftype)
        return b.fmul(b.fmul(a, s1), s2)

    def cvt_f32(self, a: ir.Value) -> ir.Value:
        """Round to float (fptrunc: nearest even) and widen back exactly; nothing in float32."""
        if self.fmt.ftype == _F64:
            return self.b.fpext(self.b.fptrunc(a, ir.FloatType()), _F64)
        return a

    def frexp(self, a: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(m, e) with e already converted to the float type; C frexp with m=a, e=0 for 0/inf/NaN."""
        b, fmt = self.b, self.fmt
        shift, emask = self.int_const(fmt.mant_bits), self.int_const(fmt.exp_mask)
        biased = b.and_(b.lshr(b.bitcast(a, fmt.itype), shift), emask)
        is_sub = b.icmp_unsigned("==", biased, self.int_const(0))
        scaled = b.select(is_sub, b.fmul(a, self.const(2.0**fmt.sub_scale)), a)
        bits = b.bitcast(scaled, fmt.itype)
        biased2 = b.and_(b.lshr(bits, shift), emask)
        offset = b.select(is_sub, self.int_const(fmt.bias - 1 + fmt.sub_scale), self.int_const(fmt.bias - 1))
        e = b.sub(biased2, offset)
        m_bits = b.or_(
            b.and_(bits, self.int_const(~(fmt.exp_mask << fmt.mant_bits) & ((1 << fmt.itype.width) - 1))),
            self.int_const((fmt.bias - 1) << fmt.mant_bits),
        )
        m = b.bitcast(m_bits, fmt.ftype)
        special = b.or_(b.fcmp_ordered("==", a, self.const(0.0)), b.icmp_unsigned("==", biased, emask))
        m = b.select(special, a, m)
        e = b.select(special, self.int_const(0), e)
        return m, b.sitofp(e, fmt.ftype)


# One emitter per op of dsl.ops.OPS; a test walks the table against this dict.
EMITTERS: dict[str, Callable[..., ir.Value]] = {
    "add": lambda em, a, b: em.b.fadd(a, b),
    "sub": lambda em, a, b: em.b.fsub(a, b),
    "mul": lambda em, a, b: em.b.fmul(a, b),
    "div": lambda em, a, b: em.b.fdiv(a, b),
    "fma": lambda em, a, b, c: em.intrinsic("fma", a, b, c),
    "neg": lambda em, a: em.b.fneg(a),
    "sqrt": lambda em, a: em.intrinsic("sqrt", a),
    "abs": lambda em, a: em.intrinsic("fabs", a),
    "copysign": lambda em, a, b: em.intrinsic("copysign", a, b),
    "floor": lambda em, a: em.intrinsic("floor", a),
    "round": lambda em, a: em.intrinsic("roundeven", a),
    "ldexp": lambda em, a, k: em.ldexp(a, k),
    "ldexp2": lambda em, a, k: em.ldexp2(a, k),
    "frexp_m": lambda em, a: em.frexp(a)[0],
    "frexp_e": lambda em, a: em.frexp(a)[1],
    "select_lt": lambda em, a, b, c, d: em.b.select(em.b.fcmp_ordered("<", a, b), c, d),
    "cvt_f32": lambda em, a: em.cvt_f32(a),
}

assert set(EMITTERS) == set(OPS), "every op in dsl.ops.OPS needs an LLVM emitter"


class _IRSemantics(Semantics):
    """IR values: the loaded element, constants of the format, and ``EMITTERS`` for the ops."""

    def __init__(self, em: "_Emitter", xv: ir.Value):
        self.em, self.xv = em, xv

    def input(self):
        return self.xv

    def const(self, i, value):
        return self.em.const(value)

    def apply(self, i, node, args):
        return EMITTERS[node.op](self.em, *args)


def _counted_loop(fn: ir.Function, count: ir.Value, body: Callable[[ir.IRBuilder, ir.Value], None],
                  name: str) -> None:
    """Fill ``fn`` with ``for (i = 0; i < count; i++) body(b, i); return``."""
    entry, loop, done = fn.append_basic_block("entry"), fn.append_basic_block("loop"), fn.append_basic_block("exit")
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", count, ir.Constant(_I64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(_I64, name=name)
    i.add_incoming(ir.Constant(_I64, 0), entry)
    body(b, i)
    i_next = b.add(i, ir.Constant(_I64, 1), name=f"{name}.next", flags=("nuw", "nsw"))
    i.add_incoming(i_next, b.block)
    b.cbranch(b.icmp_signed("==", i_next, count), done, loop)
    b.position_at_end(done)
    b.ret_void()


def build_module(program: Program, dtype="float32", name: str = "kernel") -> ir.Module:
    """Unoptimized IR module holding the array loop ``void name(x, y, n)`` for ``program``."""
    dt = as_dtype(dtype)
    fmt = _FORMATS[dt]
    module = ir.Module(name=f"autonumerics_{name}")
    ptr = ir.PointerType()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, _I64]), name=name)
    fn.attributes.add("nounwind")
    x_ptr, y_ptr, n = fn.args
    for arg in (x_ptr, y_ptr):
        arg.add_attribute("noalias")  # lets the vectorizer skip runtime overlap checks
    x_ptr.name, y_ptr.name, n.name = "x", "y", "n"

    def element(b: ir.IRBuilder, i: ir.Value) -> None:
        xv = b.load(b.gep(x_ptr, [i], inbounds=True, source_etype=fmt.ftype), typ=fmt.ftype, name="xv")
        out = fold(program, _IRSemantics(_Emitter(module, b, dt), xv))
        b.store(out, b.gep(y_ptr, [i], inbounds=True, source_etype=fmt.ftype))

    _counted_loop(fn, n, element, "i")
    return module


def add_repeat_loop(module: ir.Module, name: str) -> str:
    """Add ``void name_repeat(x, y, n, reps)``: ``reps`` passes of the kernel loop ``name``.

    For timing: the passes run inside the compiled code, so a measurement is the kernel's own
    compute time, not Python's per-call overhead (on a small, L1-resident buffer one pass takes
    about as long as one ctypes call).  An empty inline-asm statement clobbering memory after
    each pass stops LLVM from merging the passes (they write the same values), as
    ``benchmark::ClobberMemory`` does.  Returns the new function's name.
    """
    kernel = module.get_global(name)
    ptr = ir.PointerType()
    rep_name = f"{name}_repeat"
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, _I64, _I64]), name=rep_name)
    fn.attributes.add("nounwind")
    x_ptr, y_ptr, n, reps = fn.args

    def one_pass(b: ir.IRBuilder, _r: ir.Value) -> None:
        b.call(kernel, [x_ptr, y_ptr, n])
        b.asm(ir.FunctionType(ir.VoidType(), []), "", "~{memory}", [], side_effect=True)

    _counted_loop(fn, reps, one_pass, "r")
    return rep_name


class _Jit:
    """The host target machine, the vectorizing pass pipeline and one ORC JIT for the process."""

    def __init__(self) -> None:
        # Registering the host target is still needed (only llvm.initialize() itself is gone).
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        self.tm = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
        )
        self.triple = target.triple
        self.lljit = llvm.create_lljit_compiler(self.tm)
        self._names = itertools.count()
        self.lock = threading.Lock()

    def optimize(self, module: ir.Module) -> llvm.ModuleRef:
        mod = llvm.parse_assembly(str(module))
        mod.triple = self.triple
        mod.data_layout = str(self.tm.target_data)
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(mod, pb)
        return mod

    def link(self, ir_text: str, symbol: str) -> tuple[object, int]:
        """Link IR as a new JIT library; returns (resource tracker, address of ``symbol``)."""
        with self.lock:
            lib = f"autonumerics_lib{next(self._names)}"
            tracker = llvm.JITLibraryBuilder().add_ir(ir_text).export_symbol(symbol).link(self.lljit, lib)
        return tracker, tracker[symbol]


@functools.cache
def _jit() -> _Jit:
    return _Jit()


def llvm_ir(program: Program, dtype="float32", name: str = "kernel", optimized: bool = True) -> str:
    """The module's IR text; ``optimized`` runs the host-tuned, vectorizing pipeline first."""
    module = build_module(program, dtype, name)
    if not optimized:
        return str(module)
    return str(_jit().optimize(module))


_SYMBOL = "autonumerics_kernel"
_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class Kernel:
    """A compiled program: ``kernel(x)`` returns ``program(x)`` as a new array of the kernel's dtype.

    ``out=`` writes into an existing contiguous array instead (used by timing, so allocation is
    not measured).  Holds the JIT resource tracker: the code lives as long as this object.
    """

    def __init__(self, program: Program, dtype: np.dtype, tracker: object, address: int):
        self.program, self.dtype = program, dtype
        self._tracker = tracker
        self._fn = _CFUNC(address)

    def __call__(self, x, out: np.ndarray | None = None) -> np.ndarray:
        xs = np.ascontiguousarray(x, dtype=self.dtype)
        if xs.ndim != 1:
            raise ValueError(f"kernels take a 1-D array, got shape {xs.shape}")
        if out is None:
            out = np.empty_like(xs)
        elif out.dtype != self.dtype or out.shape != xs.shape or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writeable contiguous array of the input's shape and the kernel's dtype")
        elif np.may_share_memory(xs, out):
            raise ValueError("out must not overlap the input (the loop's pointers are noalias)")
        self._fn(xs.ctypes.data, out.ctypes.data, xs.shape[0])
        return out

    def __repr__(self) -> str:
        return f"Kernel(dtype={self.dtype.name}, n_ops={self.program.n_ops})"


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile_text(text: str, dtype_name: str) -> Kernel:
    dt, program = as_dtype(dtype_name), parse_program(text)
    jit = _jit()
    optimized = jit.optimize(build_module(program, dt, _SYMBOL))
    tracker, address = jit.link(str(optimized), _SYMBOL)
    return Kernel(program, dt, tracker, address)


_REPEAT_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


@dataclass(frozen=True)
class RepeatedKernel:
    """``fn(x_ptr, y_ptr, n, reps)``: ``reps`` passes of a program over raw buffers (timing only:
    no argument checks).  Holds the JIT resource tracker, so the code lives as long as this."""

    fn: Callable[[int, int, int, int], None]
    tracker: object


@functools.lru_cache(maxsize=64)
def _compile_repeated_text(text: str, dtype_name: str) -> RepeatedKernel:
    dt, program = as_dtype(dtype_name), parse_program(text)
    module = build_module(program, dt, _SYMBOL)
    rep_name = add_repeat_loop(module, _SYMBOL)
    jit = _jit()
    tracker, address = jit.link(str(jit.optimize(module)), rep_name)
    return RepeatedKernel(_REPEAT_CFUNC(address), tracker)


def compile_repeated(program: Program, dtype="float32") -> RepeatedKernel:
    """JIT-compile ``program``'s array loop with ``add_repeat_loop`` around it (cached by text
    and dtype, like ``compile_program``)."""
    return _compile_repeated_text(format_program(program), as_dtype(dtype).name)


def compile_program(program: Program, dtype="float32") -> Kernel:
    """JIT-compile ``program`` (cached by its exact text and the dtype; compiling costs ~10-50 ms)."""
    return _compile_text(format_program(program), as_dtype(dtype).name)


def cache_info():
    """Hits, misses and size of the kernel cache (``functools.lru_cache`` statistics)."""
    return _compile_text.cache_info()
