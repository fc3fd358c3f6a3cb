"""The explicit SIMD C export (``backends.export_simd``): every op and random programs, on each
vector ISA the host can run, bit for bit against the numpy semantics; on every x86-64 host, that
both ISAs' code compiles.  Nothing here assumes a vector width: an ISA the CPU lacks is skipped."""

from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_backends import assert_bit_identical, comparable, random_programs, single_op_programs, special_inputs

from backends.export import export_source
from backends.export_simd import ISAS, SIMD_EXPR, cpu_flags, array_function, simd_entry_points, vector_function, vector_functions
from backends.numpy_backend import evaluate
from dsl.ops import ALL_OPS, OPS
from dsl.program import Node, Program
from dsl.text import parse_program

CC = shutil.which("cc") or shutil.which("gcc")
X86 = platform.machine() in ("x86_64", "AMD64")

# Programs where ldexp's or ldexp2's k is a round or floor result (the AVX-512 export's integral-k form).
INTEGRAL_K = ["""
c = const 0x1.715476p+0
t = mul x c
k = round t
r = ldexp2 x k
return r
""", """
k = floor x
m = frexp_m x
r = ldexp2 m k
return r
""", """
c = const 0x1.715476p+0
t = mul x c
k = round t
r = ldexp x k
return r
""", """
c = const 0x1p+4
t = mul x c
k = floor t
m = frexp_m x
r = ldexp m k
return r
"""]

# Selects with a zero value (the AVX2 export's and/andnot form for +0.0; -0.0 is not +0.0).
ZERO_SELECTS = ["""
c = const 0x1.8p+2
z = const 0x0p+0
r = select_lt x c z x
return r
""", """
c = const -0x1.8p+2
z = const 0x0p+0
r = select_lt c x x z
return r
""", """
c = const 0x1p-3
z = const -0x0p+0
r = select_lt x c z x
return r
"""]


@functools.lru_cache(maxsize=None)
def cc_targets(march: str) -> bool:
    """Whether the C compiler accepts -march=LEVEL (x86-64-v3/v4 need GCC 11 or Clang 12)."""
    if CC is None:
        return False
    res = subprocess.run([CC, f"-march={march}", "-x", "c", "-c", "-o", os.devnull, "-"], input="int x;\n",
                         capture_output=True, text=True)
    return res.returncode == 0


def host_runs(isa: str) -> bool:
    """Whether this CPU runs the ISA's code and the compiler can build it."""
    return cc_targets(ISAS[isa].march) and ISAS[isa].cpu_flags <= cpu_flags()


def build(programs, isa: str, tmp_path: Path, march: str) -> ctypes.CDLL:
    parts = ["#include <stddef.h>"]
    for k, prog in enumerate(programs):
        parts.append(export_source(prog, "c", f"p{k}", "float32"))
        parts.append(vector_functions(prog, f"p{k}", f"P{k}"))
        parts.append(array_function(f"run{k}", f"p{k}", f"p{k}"))
    src = tmp_path / f"simd_{isa}.c"
    src.write_text("\n".join(parts))
    so = tmp_path / f"simd_{isa}.so"
    res = subprocess.run([CC, "-O2", f"-march={march}", "-ffp-contract=off", "-Wall", "-Werror", "-shared", "-fPIC",
                          str(src), "-o", str(so), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return ctypes.CDLL(str(so))


def check(programs, isa: str, x: np.ndarray, tmp_path: Path) -> None:
    lib = build(programs, isa, tmp_path, ISAS[isa].march)
    for k, prog in enumerate(programs):
        fn = getattr(lib, f"run{k}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        assert_bit_identical(y, evaluate(prog, x, "float32"), comparable(prog, x, "float32"), f"{isa} program {k}")


def test_every_op_is_in_every_simd_table():
    for table in SIMD_EXPR.values():
        assert set(table) == set(OPS)


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_both_isas_compile_on_any_x86_host(tmp_path):
    """The code of each ISA compiles (-c) whatever the host CPU runs."""
    progs = [p for op in OPS for p in single_op_programs(op)[:1]] + [parse_program(t) for t in INTEGRAL_K]
    for isa, s in ISAS.items():
        if not cc_targets(s.march):
            continue  # an older compiler: the export's guards leave that ISA out of its builds
        src = tmp_path / f"{isa}.c"
        src.write_text("#include <stddef.h>\n" + "\n".join(
            export_source(p, "c", f"p{k}", "float32") + vector_function(p, f"p{k}", isa, f"P{k}")
            for k, p in enumerate(progs)))
        res = subprocess.run([CC, "-O2", f"-march={s.march}", "-ffp-contract=off", "-Wall", "-Werror", "-c", str(src),
                              "-o", str(tmp_path / f"{isa}.o")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
        assert f"p0_{s.suffix}" in src.read_text()


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_every_op_simd(isa, tmp_path):
    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    progs = [p for op in OPS for p in single_op_programs(op)] + [parse_program(t) for t in INTEGRAL_K + ZERO_SELECTS]
    check(progs, isa, special_inputs("float32", np.random.default_rng(13)), tmp_path)


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_simd_random_programs(isa, tmp_path):
    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    check(random_programs(ALL_OPS, "float32", 25, seed=41), isa, special_inputs("float32", np.random.default_rng(14), 1000),
          tmp_path)


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_array_function_tail_and_in_place(tmp_path):
    """Lengths that are not a multiple of the vector width end in the scalar loop; y may be x."""
    prog = parse_program(INTEGRAL_K[0])
    isa = next((i for i in ISAS if host_runs(i)), None)
    lib = build([prog], isa or "baseline", tmp_path, ISAS[isa].march if isa else "x86-64")
    fn = lib.run0
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    x = np.linspace(-150, 150, 37).astype(np.float32)
    want = evaluate(prog, x, "float32")
    for n in (0, 1, 7, 8, 15, 16, 17, 37):
        y = np.full_like(x, -7.0)
        fn(x.ctypes.data, y.ctypes.data, n)
        assert (y[:n].view(np.uint32) == want[:n].view(np.uint32)).all() and (y[n:] == -7.0).all(), n
    z = x.copy()
    fn(z.ctypes.data, z.ctypes.data, z.size)
    assert (z.view(np.uint32) == want.view(np.uint32)).all()


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_cli_c_export_has_the_vector_entry_points(tmp_path):
    """``autonumerics export --lang c`` of a float32 run: the scalar function, NAME_v16/NAME_v8 and
    a static inline NAME_array on the widest the build enables, all the same bits."""
    prog = parse_program(INTEGRAL_K[0])
    src = tmp_path / "f.c"
    src.write_text(export_source(prog, "c", "f", "float32") + simd_entry_points(prog, "f")
                   + "void run(const float *x, float *y, size_t n) { f_array(x, y, n); }\n")
    text = src.read_text()
    assert "f_v16(__m512 x)" in text and "f_v8(__m256 x)" in text
    isa = next((i for i in ISAS if host_runs(i)), None)
    so = tmp_path / "f.so"
    res = subprocess.run([CC, "-O2", f"-march={ISAS[isa].march if isa else 'x86-64'}", "-ffp-contract=off", "-Wall",
                          "-Werror", "-shared", "-fPIC", str(src), "-o", str(so), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    fn = ctypes.CDLL(str(so)).run
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    x = special_inputs("float32", np.random.default_rng(15), 500)
    y = np.empty_like(x)
    fn(x.ctypes.data, y.ctypes.data, x.size)
    assert_bit_identical(y, evaluate(prog, x, "float32"), comparable(prog, x, "float32"), "cli export")


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_every_op_float64_inside(isa, tmp_path):
    """Float in and out, float64 inside (the correctly rounded kernels): NAME_v16 / NAME_v8 compute
    on two halves of 8 / 4 doubles and round each result once, like the scalar mixed export."""
    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    progs = ([p for op in OPS for p in single_op_programs(op)] + [parse_program(t) for t in INTEGRAL_K + ZERO_SELECTS]
             + random_programs(ALL_OPS, "float64", 15, seed=43))
    x = special_inputs("float32", np.random.default_rng(16), 1000)
    x64 = special_inputs("float64", np.random.default_rng(17), 1000)
    check_float64_inside(progs, isa, x, x64[: x64.size - x64.size % 8], tmp_path)


def check_float64_inside(progs: list[Program], isa: str, x: np.ndarray, x64: np.ndarray, tmp_path: Path) -> None:
    """Each float64-inside program's NAME_array and its scalar NAME on float inputs ``x``, and its
    whole float64 program NAME_d8 / NAME_d4 on double inputs ``x64`` (a multiple of 8 long), bit
    for bit."""
    W, D = (8, "_mm512") if isa == "avx512" else (4, "_mm256")
    parts = ["#include <stddef.h>"]
    for k, prog in enumerate(progs):
        parts += [export_source(prog, "c", f"p{k}", "float64", io_dtype="float32"), simd_entry_points(prog, f"p{k}", "float64"),
                  f"void run{k}(const float *x, float *y, size_t n) {{ p{k}_array(x, y, n); }}",
                  # the scalar function (its float32 tail in float C), in a loop GCC may vectorize
                  f"void srun{k}(const float *x, float *y, size_t n) {{ for (size_t i = 0; i < n; i++) y[i] = p{k}(x[i]); }}",
                  # the float64 core itself, on double inputs (subnormal doubles included)
                  f"void core{k}(const double *x, double *y, size_t n) {{ for (size_t i = 0; i + {W} <= n; i += {W}) "
                  f"{D}_storeu_pd(y + i, p{k}_d{W}({D}_loadu_pd(x + i))); }}"]
    src, so = tmp_path / "d.c", tmp_path / "d.so"
    src.write_text("\n".join(parts))
    res = subprocess.run([CC, "-O2", f"-march={ISAS[isa].march}", "-ffp-contract=off", "-Wall", "-Werror", "-shared",
                          "-fPIC", str(src), "-o", str(so), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    lib = ctypes.CDLL(str(so))
    with np.errstate(invalid="ignore"):  # signalling NaNs among the inputs
        xd = x.astype(np.float64)
    for k, prog in enumerate(progs):
        fn = getattr(lib, f"run{k}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        with np.errstate(all="ignore"):
            want = evaluate(prog, xd, "float64").astype(np.float32)
        assert_bit_identical(y, want, comparable(prog, xd, "float64"), f"float64 program {k}")
        scalar = getattr(lib, f"srun{k}")
        scalar.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        scalar(x.ctypes.data, y.ctypes.data, x.size)
        assert_bit_identical(y, want, comparable(prog, xd, "float64"), f"float64 program {k}, scalar")
        core = getattr(lib, f"core{k}")
        core.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        zd = np.empty_like(x64)
        core(x64.ctypes.data, zd.ctypes.data, x64.size)
        assert_bit_identical(zd, evaluate(prog, x64, "float64"), comparable(prog, x64, "float64"), f"float64 core {k}")


def _tail_programs() -> list[Program]:
    """float64-inside programs ending in the nodes ``float32_tail`` moves to float lanes: the final
    cvt_f32, selects on x against float32 constants (overflow and underflow values, x itself for
    tiny |x|, a -x compare), the exceptions' |x - c| < 2^-200 test; and one whose compare constant is
    not a float32, which must stay in double lanes."""
    def prog(tail: list) -> Program:
        nodes = [Node("x"), Node("const", (), 0.75), Node("mul", (0, 1)), Node("fma", (2, 2, 1)), Node("div", (3, 2))]
        y = 4
        for kind, *rest in tail:
            start = len(nodes)
            if kind == "cvt":
                nodes.append(Node("cvt_f32", (y,)))
            elif kind == "lt":  # (a, b, taken, value): a, b in {"x", "abs", "neg", a float}
                a, b, taken, v = rest
                ref = []
                for o in (a, b):
                    if o == "x":
                        ref.append(0)
                    else:
                        nodes.append(Node(o, (0,)) if o in ("abs", "neg") else Node("const", (), o))
                        ref.append(len(nodes) - 1)
                if v == "x":
                    val = 0
                else:
                    nodes.append(Node("const", (), v))
                    val = len(nodes) - 1
                nodes.append(Node("select_lt", (ref[0], ref[1], val, y) if taken else (ref[0], ref[1], y, val)))
            else:  # ("eq", c, v): the exception test
                c, v = rest
                nodes += [Node("const", (), 2.0**-200), Node("const", (), c), Node("sub", (0, start + 1)),
                          Node("abs", (start + 2,)), Node("const", (), v), Node("select_lt", (start + 3, start, start + 4, y))]
            y = len(nodes) - 1
        return Program(tuple(nodes), y)

    return [prog([("lt", 4.5, "x", True, math.inf), ("lt", "x", -3.25, True, 0.0), ("cvt",), ("eq", 1.5, 2.25),
                  ("eq", -0.1875, -7.0)]),
            prog([("cvt",), ("lt", "abs", 2.0**-12, True, "x"), ("lt", "neg", 2.5, False, -1.0)]),
            prog([("lt", "x", 0.1, True, 3.0), ("cvt",)]),  # 0.1 is no float32: only the cvt moves
            prog([("lt", 0.5, 0.25, True, 1.0e-3)]),  # a compare of constants: float32 ones, it moves
            # five exceptions in a row: one hash lookup on AVX2 (three of them share a binade)
            prog([("cvt",), ("eq", 1.5, 2.25), ("eq", 1.75, -7.0), ("eq", 1.25, 3.0), ("eq", -0.1875, 0.5),
                  ("eq", 2.0**127 * 1.125, 2.0**-100), ("lt", "x", -3.25, True, 0.0)])]


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_float32_tail_keeps_every_bit(isa, tmp_path):
    """The float64-inside vector functions run the program's last selects and its cvt_f32 once on
    float lanes after rounding the double halves (``float32_tail``): the same bits as the numpy
    semantics, at the exceptions' inputs, at the compare constants and their neighbours, and NaN;
    the whole float64 program (NAME_d8 / NAME_d4, tail in double lanes) too."""
    from backends.export_simd import float32_tail

    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    progs = _tail_programs()
    assert [len(float32_tail(p)[1]) for p in progs] == [5, 3, 1, 1, 7]
    assert [vector_function(p, "f", "avx2", "F", "float64").count("_mm256_mullo_epi32") for p in progs] == [0, 0, 0, 0, 1]
    edges = np.array([4.5, -3.25, 1.5, -0.1875, 2.0**-12, -2.0**-12, -2.5, 2.5, 0.1, 0.0, -0.0, 1.75, 1.25,
                      2.0**127 * 1.125], np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))])
    x = np.concatenate([near, special_inputs("float32", np.random.default_rng(18), 600)])
    x = x[: x.size - x.size % 16]
    with np.errstate(invalid="ignore"):
        check_float64_inside(progs, isa, x, x.astype(np.float64), tmp_path)


def _arm_program(n_slow: int) -> str:
    """x < 1 ? (a few ops) : (a chain of n_slow ops): a select with a long arm."""
    lines = ["one = const 0x1p+0", "c = const 0x1.8p-1", "f1 = mul x c", "f2 = add f1 one", "f3 = mul f2 f2", "f4 = sub f3 c"]
    prev = "x"
    for i in range(n_slow):
        lines.append(f"s{i} = fma {prev} c one" if i % 2 else f"s{i} = mul {prev} c")
        prev = f"s{i}"
    return "\n".join(lines + [f"r = select_lt x one f4 {prev}", "return r"])


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_lazy_arms_keep_every_bit(isa, tmp_path):
    """A long select arm (the sin/cos frames' seven-chunk reduction for |x| >= 2^20) is computed
    only when a lane of the vector takes it: vectors where no lane does, where all do, and mixed
    ones (NaN takes the not-taken side) give the same bits as the numpy semantics."""
    from backends.export_simd import hoisted_arms, lazy_arms
    from fitness.frames import compose

    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    core = parse_program("v2 = mul x x\nc3 = param -0x1.4abbcep-2\nc1 = param 0x1.921fb6p+0\n"
                         "p = fma v2 c3 c1\nr = mul x p\nreturn r")
    f64 = [compose("sin", core), compose("cos", core)]
    f32 = [parse_program(_arm_program(30))]
    assert all(len(lazy_arms(p)) == 1 for p in f64 + f32) and not lazy_arms(parse_program(_arm_program(10)))
    rng = np.random.default_rng(5)
    small = rng.uniform(-1e5, 1e5, 64)
    large = np.ldexp(rng.uniform(1, 2, 64), rng.integers(20, 128, 64)) * rng.choice([-1, 1], 64)
    mixed = np.where(np.arange(64) % 7 == 3, large, small)
    x = np.concatenate([small, large, mixed, [np.nan, np.inf, -np.inf, 0.0, -0.0, 2.0**20, 1.0]]).astype(np.float32)
    parts = ["#include <stddef.h>"]
    for k, prog in enumerate(f64):
        parts += [export_source(prog, "c", f"p{k}", "float64", io_dtype="float32"), simd_entry_points(prog, f"p{k}", "float64"),
                  f"void run{k}(const float *x, float *y, size_t n) {{ p{k}_array(x, y, n); }}"]
    parts += [export_source(f32[0], "c", "q0", "float32"), simd_entry_points(f32[0], "q0", "float32"),
              "void runq(const float *x, float *y, size_t n) { q0_array(x, y, n); }"]
    text = "\n".join(parts)
    assert text.count("if (") >= 3 * len(ISAS)
    src, so = tmp_path / "lazy.c", tmp_path / "lazy.so"
    src.write_text(text)
    res = subprocess.run([CC, "-O2", f"-march={ISAS[isa].march}", "-ffp-contract=off", "-Wall", "-Werror", "-shared",
                          "-fPIC", str(src), "-o", str(so), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    lib = ctypes.CDLL(str(so))
    for fname, prog, dt in [("run0", f64[0], "float64"), ("run1", f64[1], "float64"), ("runq", f32[0], "float32")]:
        fn = getattr(lib, fname)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        xin = x.astype(np.float64) if dt == "float64" else x
        with np.errstate(all="ignore"):
            want = evaluate(prog, xin, dt).astype(np.float32)
        assert_bit_identical(y, want, comparable(prog, xin, dt), f"{isa} {fname}")
    # AVX2: the trig frames' arm test (|x| < 2^20) runs once on the 8 floats (hoisted_arms); the
    # mixed vectors above run the arm in a half none of whose own lanes takes it.  NAME_d4 (double
    # in and out) tests its own 4 lanes, on doubles beside 2^20 that no float reaches.
    assert all(len(hoisted_arms(p, "avx2")) == 1 and not hoisted_arms(p, "avx512") for p in f64)
    if isa == "avx2":
        assert text.count("(__m256d x, int arm0)") == 2 and text.count("if (arm0)") == 2
        edge = np.array([2.0**20, np.nextafter(2.0**20, 0), np.nextafter(2.0**20, np.inf), -2.0**20 - 2.0**-33])
        x64 = np.concatenate([x.astype(np.float64), np.tile(edge, 2)])
        x64 = x64[: x64.size - x64.size % 8]
        check_float64_inside(f64, isa, x[: x.size - x.size % 8], x64, tmp_path)


# --- live lanes: the cheaper ldexp and frexp forms a float64-inside body may use ----------------

def _example_program(name: str) -> Program:
    report = Path(__file__).resolve().parent.parent / "examples" / "cr" / f"{name}.c.verify.json"
    return parse_program(json.loads(report.read_text())["program"])


# A body whose frexp argument may be 0 (the tail leaves x >= -1 live), and an ldexp of a constant
# (not NaN where x is): neither may take the cheaper form.
_NOT_LIVE = ["""
m = frexp_m x
e = frexp_e x
y = add m e
c = cvt_f32 y
lo = const -0x1p+0
n = const nan
r = select_lt x lo n c
return r
""", """
a = const 0x1.8p+0
t = const 0x1.715476p+0
p = mul x t
k = round p
y = ldexp a k
c = cvt_f32 y
hi = const 0x1p+6
inf = const inf
r1 = select_lt hi x inf c
lo = const -0x1p+6
z = const 0x0p+0
r = select_lt x lo z r1
return r
"""]


def test_live_inputs_read_the_tail():
    """The tail's selects on x bound the inputs whose result the body decides: exp's overflow and
    underflow thresholds, log's domain (zero, negatives and +inf go to constants); a select that
    keeps the body only where its compare holds drops NaN too; |x| < c taking x bounds nothing."""
    from backends.export_simd import float32_tail
    from backends.live_lanes import LiveInputs, live_inputs

    def live(prog: Program) -> LiveInputs:
        return live_inputs(prog, float32_tail(prog)[1])

    h = float.fromhex
    assert live(_example_program("exp_f32_cr")) == LiveInputs(-h("0x1.9fe368p+6"), h("0x1.62e42ep+6"), True)
    assert live(_example_program("log_f32_cr")) == LiveInputs(2.0**-149, float(np.finfo(np.float32).max), True)
    progs = _tail_programs()
    assert live(progs[0]) == LiveInputs(-3.25, 4.5, True)
    assert live(progs[1]) == LiveInputs(-2.5, math.inf, False)  # -x < 2.5 keeps the body; |x| < 2^-12 bounds nothing


def test_live_forms_only_where_provable():
    """ldexp of an integral k bounded on the live inputs (and of an a NaN wherever x is), frexp of
    an argument that is a normal number there: the AVX2 forms without clamps, blends and fix-ups;
    none where zero stays live, a is a constant, or k is unbounded; none in AVX-512 code yet."""
    from backends.export_simd import float32_tail, live_forms

    def forms(prog: Program, isa: str = "avx2") -> set[str]:
        root, tail = float32_tail(prog)
        return {op for op, _ in live_forms(prog, root, tail, isa)}

    assert forms(_example_program("exp_f32_cr")) == {"ldexp"}
    assert forms(_example_program("exp2_f32_cr")) == {"ldexp"}
    assert forms(_example_program("log_f32_cr")) == {"frexp_m", "frexp_e"}
    assert forms(_example_program("sigmoid_f32_cr")) == set()  # its k = round(-|x| / ln2) is unbounded at x = inf
    assert forms(_example_program("exp_f32_cr"), "avx512") == set()
    assert [forms(parse_program(t)) for t in _NOT_LIVE] == [set(), set()]
    text = vector_function(_example_program("log_f32_cr"), "lg", "avx2", "LG", "float64")
    assert "LG_avx2_frexp_m_live(x)" in text and "LG_avx2_frexp_m(" not in text


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
@pytest.mark.parametrize("isa", list(ISAS))
def test_live_forms_keep_every_bit(isa, tmp_path):
    """The correctly rounded examples (whose AVX2 bodies use the live forms) and the programs that
    must not use them give the numpy semantics' bits: float inputs at and around the live bounds,
    zeros, subnormals, infinities and NaN; the whole float64 program (NAME_d4 / NAME_d8) on double
    inputs, subnormal doubles included."""
    if not host_runs(isa):
        pytest.skip(f"this CPU does not run {ISAS[isa].march} code")
    progs = [_example_program(n) for n in ("exp_f32_cr", "exp2_f32_cr", "exp10_f32_cr", "log_f32_cr", "log2_f32_cr")]
    progs += [parse_program(t) for t in _NOT_LIVE]
    h = float.fromhex  # exp's, exp2's and exp10's thresholds, log's domain, _NOT_LIVE's bounds
    edges = np.array([-h("0x1.9fe368p+6"), h("0x1.62e42ep+6"), -151.0, 128.0, -h("0x1.693c6ap+5"), h("0x1.344134p+5"),
                      2.0**-149, 2.0**-126, 1.0, -1.0, 64.0, -64.0], np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))])
    x = np.concatenate([near, special_inputs("float32", np.random.default_rng(19), 800)])
    x = x[: x.size - x.size % 16]
    x64 = special_inputs("float64", np.random.default_rng(20), 800)
    with np.errstate(invalid="ignore"):
        check_float64_inside(progs, isa, x, x64[: x64.size - x64.size % 8], tmp_path)


def _random_live_programs(rng: np.random.Generator, n: int) -> list[Program]:
    """exp- and log-shaped float64-inside programs with random constants and a random tail of
    selects on x (bounds that do or do not exclude zero, infinities and NaN): the live-form cases
    and their near misses."""
    progs = []
    for k in range(n):
        c = float(np.float32(rng.uniform(0.3, 3.0)))
        lo, hi = sorted(float(np.float32(v)) for v in rng.uniform(-300.0, 300.0, 2))
        if k % 2:
            body = [f"c = const {c.hex()}", "t = mul x c", "k = round t", "r = fma k c x",
                    "p = fma r r r", "y = ldexp p k"]  # k bounded where the tail bounds x
        else:
            lo = float(np.float32(abs(lo) * 2.0 ** -130)) if k % 4 else lo  # sometimes only positive x live
            body = ["m = frexp_m x", "e = frexp_e x", f"c = const {c.hex()}", "y = fma e c m"]
        tail = ["w = cvt_f32 y", f"lo = const {lo.hex()}", f"hi = const {hi.hex()}", "z = const 0x0p+0",
                "inf = const inf", "s1 = select_lt x lo z w", "s2 = select_lt hi x inf s1" if k % 3 else
                "s2 = select_lt x hi s1 inf", "return s2"]
        progs.append(parse_program("\n".join(body + tail)))
    return progs


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_random_live_forms_keep_every_bit(tmp_path):
    """Random exp- and log-shaped kernels with random tails: wherever the live forms apply and
    wherever they must not, NAME_v8 and NAME_d4 give the numpy semantics' bits (AVX2 only: the
    forms exist there)."""
    from backends.export_simd import float32_tail, live_forms

    if not host_runs("avx2"):
        pytest.skip("this CPU does not run x86-64-v3 code")
    progs = _random_live_programs(np.random.default_rng(23), 16)
    used = [bool(live_forms(p, *float32_tail(p), "avx2")) for p in progs]
    assert any(used) and not all(used)
    bounds = np.array([float.fromhex(n.value.hex()) for p in progs for n in p.nodes if n.op == "const"], np.float32)
    near = np.concatenate([bounds, np.nextafter(bounds, np.float32(np.inf)), np.nextafter(bounds, np.float32(-np.inf))])
    x = np.concatenate([near, special_inputs("float32", np.random.default_rng(24), 500)])
    x = x[: x.size - x.size % 16]
    x64 = special_inputs("float64", np.random.default_rng(25), 500)
    with np.errstate(invalid="ignore", over="ignore"):
        check_float64_inside(progs, "avx2", x, x64[: x64.size - x64.size % 8], tmp_path)


def test_node_ranges_hold_every_value():
    """``live_lanes.node_ranges`` over an x interval holds each node's value at every float32 x of
    it (numpy semantics), signs and roundings included: cvt_f32 of a negative range, a product of
    ranges across zero, a quotient, round and floor."""
    from test_backends import trace

    from backends.live_lanes import LiveInputs, node_ranges

    prog = parse_program("""
c = const -0x1.555556p-2
a = mul x c
b = cvt_f32 a
s = const 0x1.8p+1
d = sub x s
p = mul d b
k = round p
f = floor a
q = div k s
y = fma q f b
return y
""")
    for lo, hi in ((-3.0, 5.0), (-100.0, -0.75), (0.1, 0.3)):
        ranges = node_ranges(prog, LiveInputs(lo, hi))
        x = np.linspace(lo, hi, 20001).astype(np.float32).astype(np.float64)
        x = x[(lo <= x) & (x <= hi)]  # float32 rounding may step past an end
        for i, v in enumerate(trace(prog, x, "float64")):
            if v is not None and i > 0 and ranges[i] is not None:
                assert ranges[i][0] <= v.min() and v.max() <= ranges[i][1], (i, lo, hi, ranges[i], v.min(), v.max())


# --- AVX2 forms read off a node's arguments and off a select arm's inputs ------------------------

_FUSED = ["""
n = neg x
c = const 0x1.8p+1
d = const -0x1p-3
r = fma c n d
return r
""", """
c = const 0x1.8p+1
n = neg c
r = fma n x x
return r
""", """
n = neg x
c = const 0x1.8p+1
r = fma x c n
return r
""", """
c = const 0x1p-2
r = select_lt x c x c
return r
""", """
c = const -0x1p+1
r = select_lt x c c x
return r
""", """
n = neg x
r = select_lt x n x n
return r
""", """
n = neg x
r = select_lt n x x n
return r
"""]


def test_fused_forms_are_emitted():
    """An fma of a negated operand is one vfnmadd or vfmsub, a select of its own compare's operands
    one vminps or vmaxps, and a negation nothing else reads is gone (AVX2; AVX-512 keeps the table's
    forms until a host with it checks these on every input)."""
    texts = [vector_function(parse_program(t), "f", "avx2", "F") for t in _FUSED]
    for t, want in zip(texts, ["fnmadd", "fnmadd", "fmsub", "_mm256_min_ps", "_mm256_max_ps", "_mm256_min_ps",
                               "_mm256_max_ps"]):
        assert want in t and "blendv" not in t, t
    assert "_mm256_xor_ps" not in texts[0] and "_mm256_xor_ps" not in texts[2]
    assert all("fnmadd" not in vector_function(parse_program(t), "f", "avx512", "F") for t in _FUSED[:2])


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_fused_forms_keep_every_bit(tmp_path):
    """vfnmadd, vfmsub, vminps and vmaxps give the numpy semantics' bits: signed zeros (min(+0, -0)
    is the select's -0), NaN on either side of the compare, infinities."""
    if not host_runs("avx2"):
        pytest.skip("this CPU does not run x86-64-v3 code")
    x = special_inputs("float32", np.random.default_rng(41), 600)
    x = np.concatenate([x, np.array([0.25, -2.0, 0.0, -0.0], np.float32)])
    with np.errstate(all="ignore"):
        check([parse_program(t) for t in _FUSED], "avx2", x[: x.size - x.size % 8], tmp_path)


def _sigmoid(constants=None) -> Program:
    from fitness.frames import compose

    core = parse_program("c2 = param 0x1.555556p-3\nc1 = param 0x1p-1\nc0 = param 0x1p+0\n"
                         "p = fma x c2 c1\nq = fma x p c0\nr = mul x q\nreturn r")
    return compose("sigmoid", core, constants)


# k bounded by a clamp of x (min and max selects), or not (the clamp's max alone, or none)
_CLAMPED_K = ["""
lo = const -0x1.4p+6
hi = const 0x1.4p+6
a = select_lt x lo lo x
b = select_lt hi a hi a
t = const 0x1.715476p+0
p = mul b t
k = round p
c = const 0x1p+3
kk = sub k c
y = ldexp b kk
return y
""", """
lo = const -0x1.4p+6
a = select_lt x lo lo x
t = const 0x1.715476p+0
p = mul a t
k = round p
y = ldexp a k
return y
""", """
t = const 0x1.715476p+0
p = mul x t
k = round p
y = ldexp x k
return y
"""]


def test_one_multiply_ldexp_only_where_provable():
    """The sigmoid frame clamps x to [-105, 43], so its k - 64 lies in [-126, 88] for every input:
    both its ldexps are one multiply, in the C export and the AVX2 one (AVX-512 keeps vscalef).
    Clamped wider (to -200, or to 100), or with k unbounded (a max alone, no clamp), none is."""
    from backends.export import one_multiply_forms
    from backends.export_simd import one_multiply_simd
    from backends.live_lanes import one_multiply_ldexps

    prog = _sigmoid()
    assert len(one_multiply_ldexps(prog)) == 2 and len(one_multiply_simd(prog, "avx2")) == 2
    assert not one_multiply_simd(prog, "avx512")
    assert not one_multiply_ldexps(_sigmoid({"SIGMOID_LOW": -200.0}))
    assert not one_multiply_ldexps(_sigmoid({"SIGMOID_HIGH": 100.0}))
    assert [len(one_multiply_ldexps(parse_program(t))) for t in _CLAMPED_K] == [1, 0, 0]
    form = {"ldexp": ("F({0}, {1})", None)}
    assert len(one_multiply_forms(parse_program(_CLAMPED_K[0]), form)) == 1


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_one_multiply_ldexp_keeps_every_bit(tmp_path):
    """The sigmoid frame's vector function (one-multiply ldexps, min and max clamps, vfnmadd) gives
    the numpy semantics' bits: at and around the clamps and the subnormal results, on specials and
    random inputs; so do the near misses that keep the general ldexp."""
    if not host_runs("avx2"):
        pytest.skip("this CPU does not run x86-64-v3 code")
    rng = np.random.default_rng(43)
    edges = np.array([-105.0, 43.0, -103.97, -87.3, -88.7, 17.0, -80.0, 80.0, 100.0], np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))])
    x = np.concatenate([near, rng.uniform(-120, 60, 512).astype(np.float32), special_inputs("float32", rng, 500)])
    progs = [_sigmoid(), _sigmoid({"SIGMOID_LOW": -200.0})] + [parse_program(t) for t in _CLAMPED_K]
    x = x[: x.size - x.size % 8]
    with np.errstate(all="ignore"):
        check(progs, "avx2", x, tmp_path)


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_scalar_c_one_multiply_ldexp_keeps_every_bit(tmp_path):
    """The scalar C export takes the same one-multiply ldexp (so that GCC vectorizes a loop over
    the sigmoid): built for plain x86-64 (scalar code only, on any host), it gives the numpy
    semantics' bits at and around the clamps, on specials and random inputs."""
    from backends.export import export_source

    prog = _sigmoid()
    text = export_source(prog, "c", "p0", "float32")
    assert text.count("_ldexp_live(v") == 2 and "_ldexp(" not in text
    rng = np.random.default_rng(47)
    edges = np.array([-105.0, 43.0, -103.97, -87.3, -88.7], np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))])
    x = np.concatenate([near, rng.uniform(-120, 60, 512).astype(np.float32), special_inputs("float32", rng, 300)])
    progs = [prog, parse_program(_CLAMPED_K[0])]
    lib = build(progs, "scalar", tmp_path, "x86-64")
    for k, pr in enumerate(progs):
        fn = getattr(lib, f"run{k}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        with np.errstate(all="ignore"):
            assert_bit_identical(y, evaluate(pr, x, "float32"), comparable(pr, x, "float32"), f"scalar program {k}")


def test_node_ranges_read_clamps_of_an_unbounded_x():
    """Over every input (x unbounded), a max then a min select of x bound it, and what follows
    (the product, its rounding, k - 8) gets a finite range holding every value at every float32 x,
    infinities included; before the clamp, and with a max alone, the range is unknown (None)."""
    from test_backends import trace

    from backends.live_lanes import LiveInputs, node_ranges

    prog = parse_program(_CLAMPED_K[0])
    ranges = node_ranges(prog, LiveInputs(), "float32")
    names = {n: i for i, n in enumerate(["x", "lo", "hi", "a", "b", "t", "p", "k", "c", "kk"])}
    assert ranges[names["a"]] is None and ranges[names["b"]] == (-80.0, 80.0)
    assert ranges[names["kk"]][0] >= -124.0 and ranges[names["kk"]][1] <= 108.0
    x = special_inputs("float32", np.random.default_rng(53), 2000)
    with np.errstate(all="ignore"):
        values = trace(prog, x, "float32")
    for i in (names["b"], names["p"], names["k"], names["kk"]):
        v = values[i][~np.isnan(values[i])]
        assert ranges[i][0] <= v.min() and v.max() <= ranges[i][1], (i, ranges[i], v.min(), v.max())
    assert node_ranges(parse_program(_CLAMPED_K[1]), LiveInputs(), "float32")[5] is None  # k of a max alone
    # a clamp of a computed value with no range bounds nothing (x * 0 is NaN at x = +-inf)
    spurious = parse_program("z = const 0x0p+0\nt = mul x z\nlo = const -0x1p+2\nhi = const 0x1p+2\n"
                             "a = select_lt t lo lo t\nb = select_lt hi a hi a\nreturn b")
    assert node_ranges(spurious, LiveInputs(), "float32")[-1] is None


# --- the float32 head --------------------------------------------------------------------------
_LOG_HEAD = """
m = frexp_m x
e = frexp_e x
c = const 0x1.6a09e6p-1
one = const 0x1p+0
two = const 0x1p+1
m2 = add m m
mm = select_lt m c m2 m
e1 = sub e one
ee = select_lt m c e1 e
t = sub mm one
d = add t two
s = div t d
u = mul s s
p = param 0x1.5555555555555p-1
q = fma u p two
r = mul s q
ln2 = const 0x1.62e42fefa39efp-1
y = fma ee ln2 r
tiny = const 0x1p-149
ninf = const -inf
y1 = select_lt x tiny ninf y
mz = const -0x0p+0
nan = const nan
y2 = select_lt x mz nan y1
big = const 0x1.fffffep+127
inf = const inf
y3 = select_lt big x inf y2
z = cvt_f32 y3
return z
"""


def _facts(text: str, lo: float = -math.inf, hi: float = math.inf, nan: bool = True):
    from backends.live_lanes import LiveInputs, float32_values

    p = parse_program(text)
    return p, float32_values(p, LiveInputs(lo, hi, nan))


def test_float32_values_prove_only_exact_ops():
    """A node is a float32 on the live lanes only by a rule: frexp of a float32, 2a, a select of
    float32s, Sterbenz's m - 1 for m in [1/2, 2], integers below 2^24, a - round(a); t + 2, a
    product or a - floor(a) (which is not exact for a tiny negative a) are not."""
    p, f = _facts(_LOG_HEAD.replace("return z", "return y"), 2.0**-149, 3.4028234663852886e38)
    names = {n: i for i, n in enumerate(["x", "m", "e", "c", "one", "two", "m2", "mm", "e1", "ee", "t", "d"])}
    assert [p.nodes[names[k]].op for k in ("m", "ee", "d")] == ["frexp_m", "select_lt", "add"]
    assert f[names["m"]] == (0.5, 1.0, False) and f[names["m2"]] == (1.0, 2.0, False)
    assert f[names["mm"]] == (0.5, 2.0, False) and f[names["t"]] == (-0.5, 1.0, False)
    assert f[names["e"]][2] and f[names["ee"]][2] and f[names["e1"]][:2] == (-149.0, 127.0)
    assert f[names["d"]] is None  # t + 2 needs more than 24 bits
    # without the domain, frexp_m ranges over both signs (and 0, inf): m - 1 is not shown exact
    _, g = _facts(_LOG_HEAD.replace("return z", "return y"))
    assert g[names["m"]] is not None and g[names["t"]] is None
    _, h = _facts("k = round x\nr = sub x k\nf = floor x\ng = sub x f\nc = const 0x1.8p+1\nh = mul x c\n"
                  "j = sub k c\na = add r g\nb = add a h\nw = add b j\nreturn w")
    assert h[2] == (-0.5, 0.5, False) and h[4] is None and h[6] is None
    assert h[7] is None  # round(x) - 3 for an unbounded x: not below 2^24
    _, h2 = _facts("k = round x\nc = const 0x1.8p+1\nj = sub k c\nreturn j", -1e6, 1e6)
    assert h2[3] == (-1000003.0, 999997.0, True)
    # frexp_e gives 0 where x is NaN: its range holds 0 when NaN lanes are live
    _, n1 = _facts("e = frexp_e x\nreturn e", 1.0, 2.0)
    _, n2 = _facts("e = frexp_e x\nreturn e", 1.0, 2.0, nan=False)
    assert n1[1] == (0.0, 2.0, True) and n2[1] == (1.0, 2.0, True)


def test_float32_head_is_taken_only_where_it_saves_work():
    """A log frame's frexp, select and m - 1 move to float lanes (two values widened per half);
    an exp2 frame's round and x - round(x) would cost as many widenings as they save."""
    from backends.export_simd import float32_head, float32_tail

    log = parse_program(_LOG_HEAD)
    head, frontier = float32_head(log, *float32_tail(log))
    assert len(head) == 7 and len(frontier) == 2
    exp2 = parse_program("k = round x\nr = sub x k\nc = const 0x1.62e42fefa39efp-1\none = const 0x1p+0\n"
                         "p = fma r c one\ny = ldexp p k\nbig = const 0x1p+7\ninf = const inf\n"
                         "y1 = select_lt big x inf y\nz = cvt_f32 y1\nreturn z")
    assert float32_head(exp2, *float32_tail(exp2)) == (frozenset(), ())
    assert "float32 head" in vector_function(log, "f", "avx2", "F", "float64")
    assert "float32 head" not in vector_function(log, "f", "avx512", "F", "float64")  # not checked there yet


@pytest.mark.skipif(CC is None or not X86, reason="needs a C compiler for x86-64")
def test_float32_head_keeps_every_bit(tmp_path):
    """The log frame's head on float lanes (subnormal x scaled first, NaN kept, the live frexp)
    gives the numpy semantics' bits on every kind of input, and the whole float64 program NAME_d4
    (the head in double lanes) too; so does a head whose frexp argument may be 0 or infinite (no
    domain selects: the general float frexp)."""
    if not host_runs("avx2"):
        pytest.skip("this CPU does not run x86-64-v3 code")
    log = parse_program(_LOG_HEAD)
    open_domain = parse_program(_LOG_HEAD.replace("y3 = select_lt big x inf y2", "y3 = select_lt big two inf y2")
                                .replace("y1 = select_lt x tiny ninf y", "y1 = select_lt two tiny ninf y"))
    src = vector_function(log, "f", "avx2", "F", "float64")
    assert "frexp_m_live(x)" in src and "_f32_frexp_m_live" in src
    rng = np.random.default_rng(19)
    sub = np.frombuffer(rng.integers(1, 1 << 23, 400, dtype=np.uint32).tobytes(), np.float32)
    anyp = np.frombuffer(rng.integers(1, 0x7F800000, 2000, dtype=np.uint32).tobytes(), np.float32)
    edges = np.array([0.70710677, 0.70710683, 0.7071068, 1.0, 2.0, 0.5, 1.4142135], np.float32)
    x = np.concatenate([special_inputs("float32", rng, 600), sub, anyp, edges, np.nextafter(edges, np.float32(0))])
    x = x[: x.size - x.size % 16]
    with np.errstate(invalid="ignore"):
        check_float64_inside([log, open_domain], "avx2", x, x.astype(np.float64), tmp_path)
