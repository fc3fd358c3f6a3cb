"""Every backend against the reference semantics (``dsl.semantics`` via the numpy evaluator).

"Bit-identical" means equal bit patterns, except that any NaN equals any NaN: IEEE 754 leaves the
sign and payload of a NaN an operation creates unspecified.  The one op that turns a NaN's sign
into a non-NaN result is ``copysign``; on x86 numpy, LLVM and GCC code all produce the same
default NaN, and over 240 random programs (14,776 such points) they agreed, so these points are
compared, except for JAX, whose GPU backend produces a NaN of the other sign.
Points where the float64 fma emulation of ``dsl.semantics`` is documented to be inexact are left
out (overflow and deep underflow of its exact-product split), as is a signed-zero slip of that
emulation, ``fma(-0, y, -0)`` giving +0 where IEEE says -0.
"""

from __future__ import annotations

import re

import ctypes
import importlib.util
import platform
import shutil
import subprocess

import jax
import llvmlite.binding as llvm
import numpy as np
import pytest

from backends import export, jax_backend, llvm_backend, timing
from backends.export import export_source
from backends.jax_backend import dtype_context, jax_function
from backends.llvm_backend import compile_program, llvm_ir
from backends.numpy_backend import NumpySemantics, evaluate
from dsl import interpret
from dsl.mutate import random_program
from dsl.ops import ALL_OPS, CORE_OPS, OPS
from dsl.program import Node, Program
from dsl.semantics import apply_op
from dsl.text import parse_program

DTYPES = ("float32", "float64")
UINT = {"float32": np.uint32, "float64": np.uint64}
CC = shutil.which("cc") or shutil.which("gcc")
C_FLAGS = (["-O2", "-ffp-contract=off"], ["-O3", "-march=native", "-ffp-contract=off"])
JAX_ON_CPU = jax.default_backend() == "cpu"

HORNER_EXP2 = """
c0 = param 0x1p0
c1 = param 0x1.62e42fefa39efp-1
c2 = param 0x1.ebfbdff82c58fp-3
c3 = param 0x1.c6b08d704a0c0p-5
c4 = param 0x1.3b2ab6fba4e77p-7
c5 = param 0x1.5d87fe78a6731p-10
c6 = param 0x1.430912f86c787p-13
t6 = fma x c6 c5
t5 = fma x t6 c4
t4 = fma x t5 c3
t3 = fma x t4 c2
t2 = fma x t3 c1
t1 = fma x t2 c0
return t1
"""


# --- inputs and comparison ---------------------------------------------------------------------
def special_inputs(dtype: str, rng: np.random.Generator, n_random: int = 3000) -> np.ndarray:
    """Signed zeros, subnormals, binade edges and their neighbours, huge values, inf, NaN, halves
    and integers (for round/floor), random bit patterns and values of moderate size."""
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    edges = [np.ldexp(dt.type(1), k) for k in range(fi.minexp - fi.nmant, fi.maxexp)]
    edges = np.array(edges + [fi.max, fi.tiny, fi.smallest_subnormal], dt)
    with np.errstate(over="ignore"):
        around = np.concatenate([edges, np.nextafter(edges, dt.type(np.inf)), np.nextafter(edges, dt.type(0))])
    fixed = np.array([0.0, 1.0, 0.5, 1.5, 2.5, 3.5, 0.49999997, 7.0, 1e-3, 1e3, np.inf, np.nan, 4.5e15], dt)
    bits = rng.integers(0, np.iinfo(UINT[dtype]).max, n_random, dtype=UINT[dtype], endpoint=True).view(dt)
    moderate = moderate_inputs(dtype, rng, n_random)
    x = np.concatenate([around, fixed, bits, moderate])
    return np.concatenate([x, -x])


def moderate_inputs(dtype: str, rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    """Random signs and exponents in [-20, 20], plus integers and halves in [-600, 600]."""
    mant = rng.uniform(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n)
    steps = rng.integers(-1200, 1200, n // 4) / 2.0
    return np.concatenate([np.ldexp(mant, rng.integers(-20, 21, n)), steps]).astype(dtype)


def bits_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    u = UINT[a.dtype.name]
    return (a.view(u) == b.view(u)) | (np.isnan(a) & np.isnan(b))


def trace(program: Program, x: np.ndarray, dtype: str) -> list:
    """The reference value of every live node (None for dead ones), broadcast to x's shape."""
    dt = np.dtype(dtype)
    with np.errstate(all="ignore"):
        vals = interpret.trace(program, NumpySemantics(dt, np.asarray(x, dt), None, True))
    return [None if v is None else np.broadcast_to(np.asarray(v, dt), x.shape) for v in vals]


def comparable(
    program: Program, x: np.ndarray, dtype: str, *, flushes_subnormals: bool = False, nan_signs_differ: bool = False
) -> np.ndarray:
    """Points where the reference is exact and unique (see the module docstring).

    ``nan_signs_differ`` drops points where ``copysign`` takes its sign from a NaN.

    ``flushes_subnormals`` also drops points where any value is subnormal, or the smallest normal
    (which may be a subnormal rounded up; x86 flush-to-zero tests before rounding): XLA on CPU
    runs with flush-to-zero and denormals-are-zero.
    """
    vals = trace(program, x, dtype)
    ok = np.ones(x.shape, bool)
    with np.errstate(all="ignore"):
        for i, node in enumerate(program.nodes):
            if vals[i] is None or node.is_leaf:
                continue
            args = [vals[a] for a in node.args]
            if node.op == "copysign" and nan_signs_differ:
                ok &= ~np.isnan(args[1])
            if node.op == "fma" and dtype == "float64":
                a, b, c = (np.abs(v) for v in args)
                p = a * b
                big = 2.0**990
                fine = (a <= big) & (b <= big) & (c <= big) & ((p == 0) | ((p >= 2.0**-960) & (p <= big)))
                ok &= fine & ~((p == 0) & (c == 0))
        if flushes_subnormals:
            tiny = np.finfo(np.dtype(dtype)).tiny
            for v in vals:
                if v is not None:
                    ok &= ~((v != 0) & (np.abs(v) <= tiny))
    return ok


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in representable steps (0 for equal values and for two NaNs; huge if one is NaN)."""
    dt = a.dtype
    s = np.dtype(f"int{dt.itemsize * 8}")
    def ordered(v):
        i = v.view(s).astype(np.int64)
        return np.where(i < 0, np.iinfo(s).min - i, i)
    d = np.abs(ordered(a).astype(np.float64) - ordered(b).astype(np.float64))
    both_nan = np.isnan(a) & np.isnan(b)
    return np.where(both_nan, 0, np.where(np.isnan(a) | np.isnan(b), np.inf, d))


def random_programs(ops: tuple[str, ...], dtype: str, count: int, seed: int) -> list[Program]:
    rng = np.random.default_rng(seed)
    return [random_program(rng, ops, int(rng.integers(1, 13)), dtype) for _ in range(count)]


def single_op_programs(op: str) -> list[Program]:
    """``op`` applied to x and a constant in every argument position pattern."""
    arity = OPS[op].arity
    patterns = {1: [(0,)], 2: [(0, 1), (1, 0), (0, 0)], 3: [(0, 1, 2), (1, 0, 0), (0, 0, 1)],
                4: [(0, 1, 0, 2), (1, 0, 2, 0), (0, 0, 0, 1)]}[arity]
    progs = []
    for c1, c2 in ((0.75, -3.0), (-2.5, 1e-3), (100.0, 0.5)):
        for args in patterns:
            nodes = (Node("x"), Node("const", (), c1), Node("const", (), c2), Node(op, args))
            progs.append(Program(nodes))
    return progs


def assert_bit_identical(got: np.ndarray, ref: np.ndarray, ok: np.ndarray, what: str) -> None:
    bad = ok & ~bits_equal(got, ref)
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        pytest.fail(f"{what}: {bad.sum()} mismatches, e.g. at indices {i}: got {got[i]}, want {ref[i]}")


# --- the op table --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_ldexp2_is_ldexp_where_its_first_product_is_normal(dtype):
    """ldexp2's two roundings are one where a * 2**(n>>1) is normal (the exp frames' case); its
    clamp and NaN rule are the documented ones."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(5)
    lo, hi = {"float32": (-252, 254), "float64": (-2044, 2046)}[dtype]
    emin, emax = np.finfo(dt).minexp, np.finfo(dt).maxexp - 1
    a = (rng.uniform(0.5, 2.0, 20000) * rng.choice([-1, 1], 20000)).astype(dt)
    k = rng.integers(max(2 * emin - 30, -600), min(2 * emax, 600) + 1, 20000).astype(dt)  # ldexp clamps at 512
    with np.errstate(all="ignore"):
        first = a * np.ldexp(dt.type(1), (k.astype(np.int64) >> 1))
        normal = (np.abs(first) >= np.finfo(dt).tiny) & np.isfinite(first) & (k >= lo) & (np.abs(k) <= 512)
        got, want = apply_op("ldexp2", dtype, a, k), apply_op("ldexp", dtype, a, k)
    assert normal.sum() > 10000
    assert bits_equal(got[normal], want[normal]).all()
    # the subnormal results of frames: core(r) near 1 and k down to -152 (float32), rounded once
    a1 = np.linspace(0.7, 1.42, 5000).astype(dt)
    for kk in (emin - 26, emin - 23, emin - 1, emax) if dtype == "float32" else ():  # ldexp's clamp: 512
        k1 = np.full_like(a1, kk)
        with np.errstate(all="ignore"):
            assert bits_equal(apply_op("ldexp2", dtype, a1, k1), apply_op("ldexp", dtype, a1, k1)).all()
    one = np.array([1.0, 1.0, 1.0, 1.0, 3.0], dt)
    ks = np.array([np.nan, np.inf, -np.inf, 2.9, -2.9], dt)
    with np.errstate(all="ignore"):
        got = apply_op("ldexp2", dtype, one, ks)
    tiny = np.ldexp(dt.type(1), emin) * np.ldexp(dt.type(1), lo - emin)  # 2**lo, rounded to 0
    assert list(got[3:]) == [4.0, 0.75] and got[0] == tiny == got[2] and got[1] == np.inf


def test_every_op_is_in_every_backend_table():
    for table in (llvm_backend.EMITTERS, jax_backend.JAX_IMPL, export._C_EXPR, export._NP_EXPR, export._JAX_EXPR):
        assert set(table) == set(OPS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(OPS))
def test_every_op_llvm_and_numpy_export(op, dtype, tmp_path):
    x = special_inputs(dtype, np.random.default_rng(1))
    for k, prog in enumerate(single_op_programs(op)):
        ref = evaluate(prog, x, dtype)
        ok = comparable(prog, x, dtype)
        assert_bit_identical(compile_program(prog, dtype)(x), ref, ok, f"llvm {op} {dtype} #{k}")
        module = import_fresh(export_source(prog, "numpy", "f", dtype), tmp_path / f"m{k}.py")
        assert_bit_identical(module.f(x), ref, ok, f"numpy export {op} {dtype} #{k}")


def jax_inexact_ops(dtype: str) -> set[str]:
    """Ops XLA does not lower exactly here (measured; see backends.jax_backend).

    XLA on CPU contracts ``a * b + c`` into a hardware fma, so ``fma`` is exact there; XLA on GPU
    does not contract, and lowers float32 division to ``div.full.f32`` (within 2 ulps; seen:
    31656.303 / 31656.303 = 0.9999999) and float32 sqrt to an approximation (within 1 ulp seen).
    """
    if JAX_ON_CPU:
        return set() if llvm.get_host_cpu_features().get("fma") else {"fma"}
    return {"fma", "div", "sqrt"} if dtype == "float32" else {"fma"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_jax(dtype):
    """Each op alone: bit-exact (flush-to-zero points aside on CPU) where XLA's lowering is
    exact; otherwise ``fma`` is one of the two roundings XLA may choose, ``div`` is within 2 ulps
    and ``sqrt`` within 1."""
    x = special_inputs(dtype, np.random.default_rng(2), 500)
    inexact = jax_inexact_ops(dtype)
    for op in OPS:
        for k, prog in enumerate(single_op_programs(op)):
            ok = comparable(prog, x, dtype, flushes_subnormals=JAX_ON_CPU, nan_signs_differ=True)
            got = np.asarray(jax_function(prog, dtype)(x))
            ref = evaluate(prog, x, dtype)
            what = f"jax {op} {dtype} #{k}"
            if op not in inexact:
                assert_bit_identical(got, ref, ok, what)
            elif op == "fma":
                a, b, c = (trace(prog, x, dtype)[i] for i in prog.nodes[prog.output].args)
                unfused = apply_op("add", dtype, apply_op("mul", dtype, a, b), c)
                assert (bits_equal(got, ref) | bits_equal(got, unfused) | ~ok).all(), what
            else:
                assert (ulp_distance(got, ref)[ok] <= (2 if op == "div" else 1)).all(), what


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_c_export(dtype, tmp_path):
    progs = [p for op in OPS for p in single_op_programs(op)]
    x = special_inputs(dtype, np.random.default_rng(3))
    check_c_exports(progs, x, dtype, tmp_path)


# --- random programs -----------------------------------------------------------------------------
OP_SETS = {"core": CORE_OPS, "all": ALL_OPS}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ops", list(OP_SETS))
def test_llvm_random_programs(ops, dtype):
    x = special_inputs(dtype, np.random.default_rng(4), 1500)
    xm = moderate_inputs(dtype, np.random.default_rng(5))
    for k, prog in enumerate(random_programs(OP_SETS[ops], dtype, 25, seed=10 + len(ops))):
        kernel = compile_program(prog, dtype)
        for xs in (x, xm):
            ok = comparable(prog, xs, dtype)
            assert_bit_identical(kernel(xs), evaluate(prog, xs, dtype), ok, f"llvm {ops} {dtype} program {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_export_random_programs(dtype, tmp_path):
    x = special_inputs(dtype, np.random.default_rng(6), 1000)
    for k, prog in enumerate(random_programs(ALL_OPS, dtype, 15, seed=20)):
        module = import_fresh(export_source(prog, "numpy", f"prog{k}", dtype, header="test"), tmp_path / f"p{k}.py")
        got = getattr(module, f"prog{k}")(x)
        assert_bit_identical(got, evaluate(prog, x, dtype), comparable(prog, x, dtype), f"numpy export {k}")


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("dtype", DTYPES)
def test_c_export_random_programs(dtype, tmp_path):
    progs = random_programs(CORE_OPS, dtype, 15, seed=30) + random_programs(ALL_OPS, dtype, 20, seed=31)
    x = special_inputs(dtype, np.random.default_rng(7), 1000)
    check_c_exports(progs + [parse_program(HORNER_EXP2)], x, dtype, tmp_path)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_random_programs_of_exact_ops(dtype):
    """Without mul/fma there is nothing for XLA to contract; with the inexact lowerings left out
    too, JAX is bit-exact (flush-to-zero points aside on CPU)."""
    ops = tuple(o for o in ALL_OPS if o not in {"mul", "fma"} | jax_inexact_ops(dtype))
    x = special_inputs(dtype, np.random.default_rng(8), 1000)
    for k, prog in enumerate(random_programs(ops, dtype, 12, seed=40)):
        ok = comparable(prog, x, dtype, flushes_subnormals=JAX_ON_CPU, nan_signs_differ=True)
        got = np.asarray(jax_function(prog, dtype)(x))
        assert_bit_identical(got, evaluate(prog, x, dtype), ok, f"jax program {k}")


def horner_mul_add(fused: Program) -> Program:
    """The Horner program with each ``fma x t c`` split into ``mul`` then ``add``."""
    nodes = [Node("x")]
    coeffs = [n.value for n in fused.nodes if n.op == "param"][::-1]  # c6 .. c0
    nodes.append(Node("param", (), coeffs[0]))
    for c in coeffs[1:]:
        acc = len(nodes) - 1
        nodes += [Node("mul", (0, acc)), Node("param", (), c)]
        nodes.append(Node("add", (len(nodes) - 2, len(nodes) - 1)))
    return Program(tuple(nodes))


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_horner_is_all_fused_or_all_unfused(dtype):
    """XLA either contracts every ``x * t + c`` of a Horner chain (CPU with fma hardware) or none
    (GPU): both the fma program and its mul+add twin then equal one of the two reference
    evaluations bit for bit."""
    x = np.linspace(0.0, 1.0, 4097).astype(dtype)
    fused = parse_program(HORNER_EXP2)
    unfused = horner_mul_add(fused)
    ref_fused, ref_unfused = evaluate(fused, x, dtype), evaluate(unfused, x, dtype)
    assert not bits_equal(ref_fused, ref_unfused).all()  # the test can tell them apart
    for prog in (fused, unfused):
        got = np.asarray(jax_function(prog, dtype)(x))
        contracted = "fma" not in jax_inexact_ops(dtype)
        assert bits_equal(got, ref_fused if contracted else ref_unfused).all()


def test_jax_float64_leaves_x64_off():
    prog = parse_program(HORNER_EXP2)
    y = jax_function(prog, "float64")(np.linspace(0, 1, 9))
    assert y.dtype == np.float64
    assert not jax.config.jax_enable_x64


# --- LLVM specifics ------------------------------------------------------------------------------
def test_llvm_ir_vectorizes_horner_with_fma():
    features = llvm.get_host_cpu_features()
    if not (features.get("avx2") and features.get("fma")):
        pytest.skip("host has no AVX2+FMA")
    text = llvm_ir(parse_program(HORNER_EXP2), "float32", "exp2_poly")
    # any vector width LLVM picks here (8 with AVX2, 8 or 16 with AVX-512), with vector fma
    lanes = {int(w) for w in re.findall(r"@llvm\.fma\.v(\d+)f32", text)}
    assert lanes and min(lanes) >= 4 and f"<{max(lanes)} x float>" in text, lanes
    unoptimized = llvm_ir(parse_program(HORNER_EXP2), "float32", "exp2_poly", optimized=False)
    assert "llvm.fma.f32" in unoptimized and not re.search(r"<\d+ x float>", unoptimized)


# every range-reduction op in one chain, ending in c (vectorization tests add their tails)
REDUCTION_CHAIN = """
        k = round x
        k2 = ldexp x k
        r = ldexp2 k2 k
        m = frexp_m r
        e = frexp_e r
        f = floor m
        s = select_lt e f m x
        a = abs s
        c = copysign a x
"""


def test_llvm_reduction_ops_vectorize():
    features = llvm.get_host_cpu_features()
    if not features.get("avx2"):
        pytest.skip("host has no AVX2")
    prog = parse_program(REDUCTION_CHAIN + """
        q = sqrt c
        return q
    """)
    text = llvm_ir(prog, "float32")
    # vectorized at whatever width LLVM picks for this host (8 lanes with AVX2, 8 or 16 with
    # AVX-512): no test may assume the host's vector width
    widths = {int(w) for w in re.findall(r"<(\d+) x float>", text)}
    assert widths and max(widths) >= 4, widths
    assert "call float @" not in text.split("vector.body", 1)[1].split("middle.block", 1)[0]


def test_kernel_cache_and_call_contract():
    prog = parse_program(HORNER_EXP2)
    k1 = compile_program(prog, "float32")
    assert compile_program(parse_program(HORNER_EXP2), "float32") is k1
    assert compile_program(prog, "float64") is not k1
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    out = np.empty_like(x)
    assert k1(x, out=out) is out
    assert bits_equal(out, k1(x[::1].copy())).all()
    assert bits_equal(k1(x[::2]), k1(x)[::2]).all()  # strided input is made contiguous
    assert k1(np.zeros(0, np.float32)).shape == (0,)
    with pytest.raises(ValueError):
        k1(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        k1(x, out=np.empty(3, np.float32))
    with pytest.raises(ValueError):
        k1(x, out=x)
    assert "n_ops=6" in repr(k1)
    assert llvm_backend.cache_info().maxsize == llvm_backend.CACHE_SIZE


# --- export specifics ----------------------------------------------------------------------------
def test_export_header_and_names():
    prog = parse_program(HORNER_EXP2)
    header = "target: 2^x\ndomain: [0, 1]\nmax ULP: 1.03 */ tricky"
    for lang in export.LANGS:
        text = export_source(prog, lang, "exp2_poly", "float32", header=header)
        assert "target: 2^x" in text and "max ULP: 1.03" in text
        assert "fma x v12 v1" in text  # the DSL program rides along as provenance
    assert "*/ tricky" not in export_source(prog, "c", "f", header=header)
    with pytest.raises(ValueError):
        export_source(prog, "c", "not a name")
    with pytest.raises(ValueError):
        export_source(prog, "fortran", "f")


def test_jax_export_runs(tmp_path):
    for dtype in DTYPES:
        prog = random_programs(ALL_OPS, dtype, 1, seed=50)[0]
        x = moderate_inputs(dtype, np.random.default_rng(9), 200)
        module = import_fresh(export_source(prog, "jax", "g", dtype), tmp_path / f"j_{dtype}.py")
        with dtype_context(dtype):
            got = np.asarray(module.g(x))
        assert got.dtype == np.dtype(dtype)
        want = np.asarray(jax_function(prog, dtype)(x))
        assert bits_equal(got, want).all()


@pytest.mark.skipif(CC is None or platform.machine() != "x86_64", reason="needs a C compiler on x86-64")
def test_c_export_vectorizes_with_gcc(tmp_path):
    """Every op except sqrt (which needs -fno-math-errno) in one loop: GCC must vectorize it."""
    probe = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout
    if "Free Software Foundation" not in probe:
        pytest.skip("the -fopt-info report is GCC's")
    if not llvm.get_host_cpu_features().get("avx2"):
        pytest.skip("host has no AVX2")
    prog = parse_program(REDUCTION_CHAIN + """
        d = div c 3
        t = fma d 0x1.8p-1 x
        n = neg t
        return n
    """)
    for dtype, T in (("float32", "float"), ("float64", "double")):
        (tmp_path / "p.h").write_text(export_source(prog, "c", "p", dtype))
        src = tmp_path / "loop.c"
        src.write_text(f'#include "p.h"\nvoid run(const {T}* restrict x, {T}* restrict y, long n)\n'
                       "{ for (long i = 0; i < n; i++) y[i] = p(x[i]); }\n")
        res = subprocess.run([CC, "-O3", "-march=native", "-ffp-contract=off", "-fopt-info-vec-optimized",
                              "-c", str(src), "-o", str(tmp_path / "loop.o")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert "loop vectorized" in res.stderr, res.stderr


# --- timing --------------------------------------------------------------------------------------
def test_timing_measures_and_compares():
    x = timing.cache_resident_input(0.0, 1.0, "float32", n=4096)
    prog = parse_program(HORNER_EXP2)
    t = timing.measure(timing.copy_floor(x), x, min_time=0.02, repeats=3, max_repeats=5)
    assert t.median_ns_per_element > 0 and t.n == 4096 and 3 <= t.repeats <= 5
    res = timing.compare(
        {"llvm": timing.llvm_callable(prog, x), "np.exp2": timing.platform_callable("np.exp2", x),
         "jax": timing.jax_program_callable(prog, x)},
        x, "np.exp2", min_time=0.02, repeats=3, max_repeats=3,
    )
    assert res["np.exp2"].ratio == 1.0 and res["llvm"].baseline == "np.exp2"
    assert all(r.median_ns_per_element > 0 and np.isfinite(r.spread) for r in res.values())
    with pytest.raises(KeyError):
        timing.compare({"a": timing.copy_floor(x)}, x, "b")


# --- helpers that build and load exported code ----------------------------------------------------
def import_fresh(source: str, path) -> object:
    """Import ``source`` as a new module from ``path`` (never cached in sys.modules)."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"an_export_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_c_exports(progs: list[Program], x: np.ndarray, dtype: str, tmp_path) -> None:
    """Export every program, build them into one shared library per flag set, compare each."""
    T = "float" if dtype == "float32" else "double"
    lines = []
    for k, prog in enumerate(progs):
        (tmp_path / f"p{k}.h").write_text(export_source(prog, "c", f"p{k}", dtype, header=f"program {k}"))
        lines += [f'#include "p{k}.h"',
                  f"void run{k}(const {T}* restrict x, {T}* restrict y, long n)",
                  f"{{ for (long i = 0; i < n; i++) y[i] = p{k}(x[i]); }}"]
    src = tmp_path / "all.c"
    src.write_text("\n".join(lines) + "\n")
    refs = [evaluate(p, x, dtype) for p in progs]
    oks = [comparable(p, x, dtype) for p in progs]
    for f, flags in enumerate(C_FLAGS):
        lib_path = tmp_path / f"lib{f}.so"
        cmd = [CC, *flags, "-Wall", "-Werror", "-shared", "-fPIC", str(src), "-o", str(lib_path), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
        lib = ctypes.CDLL(str(lib_path))
        for k in range(len(progs)):
            fn = getattr(lib, f"run{k}")
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
            y = np.empty_like(x)
            fn(x.ctypes.data, y.ctypes.data, x.size)
            assert_bit_identical(y, refs[k], oks[k], f"C {' '.join(flags)} {dtype} program {k}")


# --- the real-number evaluators: mpmath, double-double, interval series ----------------------------
def _real_inputs() -> np.ndarray:
    """Moderate float64 inputs (real-number semantics: no overflow, no special values)."""
    rng = np.random.default_rng(11)
    return np.concatenate([rng.uniform(-4, 4, 40), [0.5, 1.0, 2.5, -3.0, 0.25, 7.0, -0.75]])


def test_every_op_is_in_every_real_evaluator_table():
    from fitness import bounds, double_double, real_error

    assert set(double_double.DD_IMPL) == set(OPS)
    assert set(real_error._MP_OPS) == set(OPS)
    smooth, piecewise = set(bounds._SMOOTH), {"abs", "copysign", "floor", "round", "ldexp", "ldexp2", "frexp_m", "frexp_e",
                                              "select_lt"}  # cvt_f32 is smooth: a rounding, ignored in real numbers
    assert smooth | piecewise == set(OPS) and not smooth & piecewise


@pytest.mark.parametrize("op", list(OPS))
def test_every_op_real_evaluators_agree(op):
    """mpmath at 200 bits is the reference: double-double agrees to ~2^-100, the interval series of a
    point (order 0) encloses it, and where mpmath says undefined the others say so too."""
    import mpmath
    from mpmath import iv

    from fitness.bounds import _NoBound, program_series
    from fitness.double_double import evaluate_dd
    from fitness.real_error import evaluate_mp

    x = _real_inputs()
    for k, prog in enumerate(single_op_programs(op)):
        hi, lo = evaluate_dd(prog, x)
        for j, xv in enumerate(x):
            with mpmath.workprec(200):
                ref = evaluate_mp(prog, xv)
                if mpmath.isnan(ref) or not mpmath.isfinite(ref):
                    assert not np.isfinite(hi[j]) or op in ("floor", "round", "frexp_e"), (op, k, xv)
                    continue
                dd = mpmath.mpf(float(hi[j])) + mpmath.mpf(float(lo[j]))
                assert abs(dd - ref) <= abs(ref) * mpmath.mpf(2) ** -100 + mpmath.mpf(2) ** -1000, (op, k, xv, dd, ref)
                saved = iv.prec
                iv.prec = 200
                try:
                    enclosure = program_series(prog, [iv.mpf(float(xv))], {})[0]
                except (_NoBound, ZeroDivisionError, ValueError):
                    continue
                finally:
                    iv.prec = saved
                assert enclosure.a <= ref <= enclosure.b, (op, k, xv, enclosure, ref)


def test_cvt_f32_rounds_to_float32_once():
    """cvt_f32 in a float64 program: nearest even at ties (normal and subnormal), +-inf past the
    float32 range (the tie at FLT_MAX + half an ulp goes to inf), NaN and -0 kept; identity in
    float32.  Every backend matches this by the every-op tests above."""
    prog = Program((Node("x"), Node("cvt_f32", (0,))))
    fmax = float(np.finfo(np.float32).max)
    x = np.array([1 + 2.0**-24, 1 + 3 * 2.0**-24, 1 + 2.0**-24 + 2.0**-50, 1.5 * 2.0**-149, 2.5 * 2.0**-149,
                  2.0**-151, fmax + 2.0**103, fmax + 2.0**103 - 2.0**76, 1e39, -1e39, np.nan, -0.0])
    want = [1.0, 1 + 2.0**-22, 1 + 2.0**-23, 2.0**-148, 2.0**-148, 0.0, np.inf, fmax, np.inf, -np.inf, np.nan, -0.0]
    got = evaluate(prog, x, "float64")
    assert got.dtype == np.float64
    assert bits_equal(got, np.array(want)).all(), got
    for backend in (compile_program(prog, "float64"), jax_function(prog, "float64")):
        assert bits_equal(np.asarray(backend(x)), got).all()
    x32 = np.array([1.5, -0.0, np.inf, 1e-45], np.float32)
    assert bits_equal(evaluate(prog, x32, "float32"), x32).all()


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_mixed_precision_c_export(tmp_path):
    """float in, double inside, float out (io_dtype): bit-identical to the float64 evaluation of the
    widened input, rounded once by the program's cvt_f32, on random float32 bit patterns."""
    progs = random_programs(ALL_OPS, "float64", 12, seed=40)
    progs = [Program(p.nodes + (Node("cvt_f32", (p.output,)),), len(p.nodes)) for p in progs]
    x = np.random.default_rng(6).integers(0, 2**32, 50_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    lines = []
    for k, prog in enumerate(progs):
        (tmp_path / f"m{k}.h").write_text(export_source(prog, "c", f"m{k}", "float64", f"mixed {k}", io_dtype="float32"))
        lines += [f'#include "m{k}.h"', f"void run{k}(const float* restrict x, float* restrict y, long n)",
                  f"{{ for (long i = 0; i < n; i++) y[i] = m{k}(x[i]); }}"]
    (tmp_path / "all.c").write_text("\n".join(lines) + "\n")
    lib_path = tmp_path / "libm.so"
    res = subprocess.run([CC, "-O2", "-ffp-contract=off", "-Wall", "-Werror", "-shared", "-fPIC", str(tmp_path / "all.c"),
                          "-o", str(lib_path), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    lib = ctypes.CDLL(str(lib_path))
    for k, prog in enumerate(progs):
        fn = getattr(lib, f"run{k}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        with np.errstate(all="ignore"):
            ref = evaluate(prog, x.astype(np.float64), "float64").astype(np.float32)
        assert_bit_identical(y, ref, np.ones(len(x), bool), f"mixed C program {k}")
    with pytest.raises(ValueError, match="mixed precision"):
        export_source(progs[0], "numpy", "m", "float64", io_dtype="float32")
