"""Full-range float32 functions: frames, special values, exhaustive verification, C export.

The cores here are hand-made (float64 minimax-leaning fits rounded to float32), not evolved, so the
tests are fast and deterministic; what they check is the frame machinery around any core.
"""

from __future__ import annotations

import ctypes
import math
import platform
import shutil
import subprocess

import numpy as np
import pytest

from backends.export import export_source
from backends.llvm_backend import compile_program
from backends.numpy_backend import evaluate
from dsl.program import Node, Program
from dsl.text import format_program, parse_program
from fitness.cr import rounded_once
from fitness.frames import (ERF_ONE_LAST, FRAMES, FrameError, compose, compose_split, compose_trainable,
                            core_reference, frame_constants, get_frame, get_split, piece_range, split_params)
from fitness.fullrange import reference_f32, verify_full_range
from fitness.metrics import correctly_rounded, ulp_errors
from fitness.reference import mp_values
from fitness.special import FULL_RANGE, check_specials, get_spec, same_float32
from fitness.targets import get_target
from fitness.verify import verify

CC = shutil.which("cc") or shutil.which("gcc")
DEGREE = {"cbrt": 8, "expm1": 5, "exp": 6, "exp2": 6, "exp10": 6, "log": 8, "log2": 8, "sigmoid": 7, "tanh": 5, "log10": 8, "log1p": 8,
          "erf_mid": 9, "erf_tail": 10}


def horner(coeffs) -> Program:
    """c0 + t (c1 + t (c2 + ...)) with float32-rounded parameters."""
    nodes = [Node("x")] + [Node("param", (), float(np.float32(c))) for c in coeffs]
    acc = len(coeffs)
    for i in range(len(coeffs) - 2, -1, -1):
        nodes.append(Node("fma", (0, acc, 1 + i)))
        acc = len(nodes) - 1
    return Program(tuple(nodes), acc)


def horner64(coeffs, in_square: bool = False) -> Program:
    """c0 + t (c1 + t (c2 + ...)) with float64 parameters (``coeffs`` lowest degree first), t = x;
    ``in_square``: t = x^2 and the result times x (an odd core)."""
    nodes = [Node("x")] + ([Node("mul", (0, 0))] if in_square else [])
    t = len(nodes) - 1
    nodes.append(Node("param", (), float(coeffs[-1])))
    acc = len(nodes) - 1
    for v in coeffs[-2::-1]:
        nodes.append(Node("param", (), float(v)))
        nodes.append(Node("fma", (acc, t, len(nodes) - 1)))
        acc = len(nodes) - 1
    if in_square:
        nodes.append(Node("mul", (0, acc)))
        acc = len(nodes) - 1
    return Program(tuple(nodes), acc)


def fitted_core(frame: str, degree: int | None = None, interval: tuple[float, float] | None = None) -> Program:
    """A Lawson-weighted least-squares polynomial for the frame's core function."""
    a, b = interval or get_frame(frame).core_domain
    t = np.cos(np.linspace(0.0, math.pi, 2000)) * (b - a) / 2 + (a + b) / 2
    y = core_reference(frame, t)
    if frame == "sigmoid":
        return expm1_core(t, y, degree or DEGREE[frame])
    v = np.vander(t, (degree or DEGREE[frame]) + 1, increasing=True)
    w = np.ones_like(t)
    for _ in range(20):
        c, *_ = np.linalg.lstsq(v * w[:, None], y * w, rcond=None)
        r = np.abs(v @ c - y)
        w = w * np.sqrt(r / r.max() + 1e-3)
    if frame in ("exp", "exp2", "exp10"):
        c[0] = 1.0  # core(0) = 1 exactly: exp(+-0) = 1 and exp2(k) = 2^k exactly
    return horner(c)


def expm1_core(t: np.ndarray, y: np.ndarray, degree: int) -> Program:
    """s = t + t (t Q(t)) ~ e^t - 1: rounded relative to s, as the sigmoid frame needs (a Horner
    chain ending in 1 + t Q rounds relative to 1 + s and loses the frame's extra bits)."""
    v = np.vander(t, degree + 1, increasing=True)[:, 2:]
    w = 1 / np.maximum(np.abs(y), 1e-30)
    for _ in range(20):
        c, *_ = np.linalg.lstsq(v * w[:, None], (y - t) * w, rcond=None)
        r = np.abs(v @ c + t - y) / np.maximum(np.abs(y), 1e-30)
        w = w * np.sqrt(r / r.max() + 1e-3)
    q = horner(c)
    nodes = list(q.nodes) + [Node("mul", (0, q.output))]
    nodes.append(Node("fma", (0, len(nodes) - 1, 0)))
    return Program(tuple(nodes), len(nodes) - 1)


def near_identity_odd_core(frame: str, degree: int) -> Program:
    """x + x R(x^2), R ~ f(x)/x - 1 by weighted least squares: an odd core whose last operation
    adds the exact x (core(0) = 0, so +-0 come out right)."""
    a, b = get_frame(frame).core_domain
    t = np.cos(np.linspace(0.0, math.pi, 2000)) * (b - a) / 2 + (a + b) / 2
    t = t[t > 0]
    y = core_reference(frame, t) / t - 1.0
    v = np.vander(t * t, degree + 1, increasing=True)
    w = np.ones_like(t)
    for _ in range(20):
        c, *_ = np.linalg.lstsq(v * w[:, None], y * w, rcond=None)
        r = np.abs(v @ c - y)
        w = w * np.sqrt(r / r.max() + 1e-3)
    r_of_s = horner(c)  # its input is s = x^2: node 1 below
    nodes = [Node("x"), Node("mul", (0, 0))] + [Node(n.op, tuple(1 if i == 0 else i + 1 for i in n.args), n.value)
                                                 for n in r_of_s.nodes[1:]]
    nodes.append(Node("fma", (0, r_of_s.output + 1, 0)))
    return Program(tuple(nodes), len(nodes) - 1)


@pytest.fixture(scope="module")
def erf_split() -> Program:
    return compose_split("erf", [compose("erf_small", near_identity_odd_core("erf_small", 7)),
                                 compose("erf_mid", fitted_core("erf_mid")), compose("erf_tail", fitted_core("erf_tail"))])


@pytest.fixture(scope="module")
def composed() -> dict[str, Program]:
    return {name: compose(name, fitted_core(name)) for name in ("exp", "exp2", "exp10", "log", "log2", "sigmoid",
                                                                "tanh", "log10", "log1p", "expm1", "cbrt")}


def random_full_range(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0**-149, -(2.0**-149), 2.0**-126,
                         3.4028235e38, -3.4028235e38, 88.72283, 88.72284, -103.97208, -103.97209, 128.0,
                         127.99999, -150.0, -149.99998, -151.0, 0.5, 0.70710677, 1.4142135], np.float32)
    return np.concatenate([specials, -specials, bits.view(np.float32)])


# --- frames ------------------------------------------------------------------------------------------
def test_frames_compose_keep_core_params_in_order(composed):
    for name, prog in composed.items():
        core = fitted_core(name)
        assert prog.params == core.params, name
        assert get_frame(name).target == name
        # the frame's constants are literals: only the core's constants are fitted
        assert all(n.op != "param" for n in prog.nodes if n.value not in core.params)


def test_frames_accurate_with_hand_made_cores(composed):
    """The composed programs are accurate where the search scores them (a hand-made core)."""
    for name, (lo, hi), limit in (("exp", (-87.0, 88.0), 1.2), ("exp2", (-125.0, 127.0), 1.2),
                                  ("exp10", (-44.0, 38.5), 1.2),
                                  ("log", (1e-30, 1e30), 1.0), ("log2", (1e-30, 1e30), 1.1),
                                  ("sigmoid", (-104.0, 20.0), 1.0), ("tanh", (-10.0, 10.0), 1.0),
                                  ("log10", (1e-30, 1e30), 1.0), ("log1p", (1e-30, 1e30), 1.0),
                                  ("expm1", (-17.4, 88.7), 1.0), ("cbrt", (-1e30, 1e30), 1.0)):
        rng = np.random.default_rng(3)
        if name.startswith("log"):
            x = np.exp2(rng.uniform(math.log2(lo), math.log2(hi), 20000)).astype(np.float32)
        else:
            x = rng.uniform(lo, hi, 20000).astype(np.float32)
        x = np.concatenate([x, rng.uniform(0.25, 4.0, 20000).astype(np.float32)])
        cr, ref_hi, ref_lo, _ = reference_f32(get_target(name), x)
        err = ulp_errors(evaluate(composed[name], x, "float32"), ref_hi, ref_lo, "float32")
        assert err.max() < limit, (name, err.max(), x[np.argmax(err)])


def test_frame_constants_override_and_checks():
    core = fitted_core("exp")
    base = compose("exp", core)
    same = compose("exp", core, constants={"LN2_LO": get_frame("exp").constants["LN2_LO"]})
    assert format_program(base) == format_program(same)
    with pytest.raises(FrameError):
        frame_constants("exp", {"LN2_HI": math.log(2)})  # too many bits: k * LN2_HI inexact
    with pytest.raises(FrameError):
        frame_constants("log", {"NOPE": 1.0})
    with pytest.raises(FrameError):
        get_frame("nope")
    # a different split point (t in [-1/4, 1/2)) still reduces exactly and stays accurate
    prog = compose("log", fitted_core("log", 9, (-0.25, 0.5)), constants={"SPLIT": 0.75})
    x = np.exp2(np.random.default_rng(0).uniform(-10, 10, 5000)).astype(np.float32)
    cr, hi, lo, _ = reference_f32(get_target("log"), x)
    assert ulp_errors(evaluate(prog, x, "float32"), hi, lo, "float32").max() < 2.0


def test_trainable_frame_constants_round_trip(composed):
    core = fitted_core("log")
    prog, layout = compose_trainable("log", core, ("LN2_LO", "SPLIT"))
    assert len(layout) == len(prog.params) == len(core.params) + 2
    core_params, consts = split_params(layout, prog.params)
    assert core_params == core.params
    assert consts == {"LN2_LO": get_frame("log").constants["LN2_LO"], "SPLIT": get_frame("log").constants["SPLIT"]}
    x = random_full_range(5000, seed=2)
    assert np.all(same_float32(evaluate(prog, x, "float32"), evaluate(composed["log"], x, "float32")))
    # a negated literal (exp's -LN2_HI, -LN2_LO) comes back with its sign
    eprog, elayout = compose_trainable("exp", fitted_core("exp"), ("LN2_LO",))
    assert split_params(elayout, eprog.params)[1]["LN2_LO"] == get_frame("exp").constants["LN2_LO"]
    with pytest.raises(FrameError):
        compose_trainable("exp", core, ("NOPE",))


def test_core_reference_is_smooth_near_zero():
    for name in ("log", "log2", "log10"):
        t = np.array([-1e-4, -1e-6, 0.0, 1e-6, 1e-4])
        g = core_reference(name, t)
        assert np.all(np.isfinite(g))
        assert abs(g[2] - (-0.5 / {"log": 1.0, "log2": math.log(2), "log10": math.log(10)}[name])) < 1e-9
    g = core_reference("tanh", np.array([-1e-2, -1e-4, 0.0, 1e-4, 1e-2]))  # (e^t - 1 - t)/t^2
    assert np.all(np.isfinite(g)) and g[2] == 0.5 and abs(g[0] - (math.expm1(-1e-2) + 1e-2) / 1e-4) < 1e-9


# --- special values ----------------------------------------------------------------------------------
def test_special_values_of_composed_programs(composed):
    for name, prog in composed.items():
        assert check_specials(prog, name) == [], name
        # the llvmlite kernel agrees
        assert check_specials(compile_program(prog), name) == [], name


def test_special_checker_catches_wrong_values(composed):
    prog = composed["exp"]
    bad = lambda x: np.where(np.isnan(x), np.float32(0), evaluate(prog, x, "float32"))  # noqa: E731
    miss = check_specials(bad, "exp")
    assert miss and all("NaN" in m.why for m in miss)
    # a core with core(0) != 1: exp(0) is no longer exactly 1
    core = fitted_core("exp")
    nodes = list(core.nodes)
    nodes[1] = Node("param", (), float(np.float32(0.99999994)))
    off = compose("exp", Program(tuple(nodes), core.output))
    assert any(m.x == 0.0 and m.expected == 1.0 for m in check_specials(off, "exp"))
    # signed zero matters: a log returning +inf at 0 (and -0) is wrong
    logp = composed["log"]
    flipped = lambda x: np.where(x == 0, np.float32(np.inf), evaluate(logp, x, "float32"))  # noqa: E731
    assert len([m for m in check_specials(flipped, "log") if m.x == 0.0]) == 2


def test_full_range_registry():
    for name in ("exp", "exp2", "exp10", "expm1", "log", "log2", "log10", "log1p", "tanh", "sigmoid", "cbrt"):
        spec = get_spec(name)
        assert spec.cases and spec.target == name
        if spec.frame:
            assert get_frame(spec.frame).target == name
    assert set(FRAMES) >= {"exp", "exp2", "exp10", "log", "log2", "sigmoid", "tanh", "log10", "log1p", "expm1", "cbrt"}
    assert set(FULL_RANGE) >= {"exp", "exp2", "exp10", "log", "log2"}


# --- exhaustive verification -------------------------------------------------------------------------
def _direct(prog: Program, target: str, x: np.ndarray):
    """Max ULP and correctly rounded count computed point by point with mpmath."""
    y = evaluate(prog, x, "float32")
    ref = mp_values(get_target(target), x.astype(np.float64))
    cr = correctly_rounded(ref.hi, ref.lo, "float32")
    fin = np.isfinite(cr) & (cr != 0)
    err = ulp_errors(y[fin], ref.hi[fin], ref.lo[fin], "float32")
    return float(err.max()), int(np.count_nonzero(same_float32(y, cr))), int(np.count_nonzero(~fin & ~same_float32(y, cr)))


@pytest.mark.parametrize("name,lo,hi", [("exp", 88.7, 88.76), ("exp2", -150.05, -149.9), ("exp10", -45.16, -45.1),
                                        ("exp10", 38.5, 38.54), ("log", 0.9999, 1.0002),
                                        ("log2", 1e-45, 1e-44), ("sigmoid", -103.98, -103.95),
                                        ("sigmoid", -0.50002, -0.5), ("sigmoid", 16.6, 16.7),
                                        ("sigmoid", 42.99998, 43.00002),
                                        ("sigmoid", -87.34, -87.32),
                                        ("tanh", 1e-30, 1.025e-30), ("tanh", 0.17327, 0.17331), ("tanh", -9.02, -9.0),
                                        ("log10", 0.9999, 1.0002), ("log10", 9.999, 10.001),
                                        ("log1p", -1.0, -0.9999), ("log1p", 2.95e-8, 3.0e-8), ("log1p", -0.2931, -0.2928),
                                        ("expm1", 0.36, 0.3601), ("expm1", -17.34, -17.32), ("expm1", 2.95e-8, 3.0e-8),
                                        ("expm1", 88.72, 88.73), ("cbrt", 0.99999, 1.00002),
                                        ("cbrt", 1e-44, 1e-43), ("cbrt", -26.0, -25.99)])
def test_exhaustive_subrange_matches_direct_computation(composed, name, lo, hi):
    prog = composed[name]
    rep = verify_full_range(prog, name, lo, hi, chunk=1 << 20)
    from fitness.points import all_floats

    x = np.concatenate(list(all_floats(lo, hi, "float32")))
    assert rep.n_points == len(x)
    max_ulp, n_cr, n_special_bad = _direct(prog, name, x)
    assert rep.max_ulp == pytest.approx(max_ulp, abs=1e-6)  # float64 reference noise: ~2^-29 ULP
    assert round(rep.frac_correctly_rounded * rep.n_points) == n_cr
    assert rep.special_mismatches == n_special_bad
    assert rep.method == "exhaustive"


def test_full_range_detects_special_mismatches(composed):
    prog = composed["exp2"]
    broken = lambda x: np.where(x > 127.0, np.float32(3.0e38), evaluate(prog, x, "float32"))  # noqa: E731
    rep = verify_full_range(prog, "exp2", 127.99, 129.0, evaluator=broken, chunk=1 << 20)
    assert rep.special_mismatches > 0 and not rep.specials_ok
    assert rep.special_examples
    d = rep.to_dict()
    assert d["domain"] == [127.99, 129.0]
    good = verify_full_range(prog, "exp2", 127.99, 129.0, chunk=1 << 20)
    assert good.special_mismatches == 0


def test_verify_full_range_option_dispatches(composed, monkeypatch):
    """``fitness.verify.verify(full_range=True)`` hands over to ``verify_full_range`` (the 2^32 run
    itself is too slow for the fast suite; the sub-range tests above cover what it computes)."""
    import fitness.fullrange as fr

    seen = {}

    def fake(program, target, **kw):
        seen.update(kw, program=program, target=target)
        return "report"

    monkeypatch.setattr(fr, "verify_full_range", fake)
    prog = composed["log"]
    assert verify(prog, get_target("log"), 0.5, 1.0, full_range=True, workers=3) == "report"
    assert seen["workers"] == 3 and seen["program"] is prog
    with pytest.raises(ValueError):
        verify(prog, get_target("log"), 0.5, 1.0, dtype="float64", full_range=True)


def test_reference_f32_handles_specials():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0, 2.0**-149], np.float32)
    cr, hi, lo, n = reference_f32(get_target("log"), x)
    assert np.isnan(cr[0]) and cr[1] == np.inf and np.isnan(cr[2])
    assert cr[3] == -np.inf and cr[4] == -np.inf and np.isnan(cr[5])
    assert cr[6] == 0 and not np.signbit(cr[6])
    cr, *_ = reference_f32(get_target("exp"), np.array([100.0, -200.0, 88.72283], np.float32))
    assert cr[0] == np.inf and cr[1] == 0 and np.isfinite(cr[2])


# --- a split function: erf from two framed pieces ----------------------------------------------------
def test_split_erf_is_accurate_with_every_special_value(erf_split):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-4.5, 4.5, 100_000), rng.uniform(0.0, 1.0, 50_000),
                        np.exp2(rng.uniform(-149, 0, 20_000))]).astype(np.float32)
    cr, hi, lo, _ = reference_f32(get_target("erf"), x)
    err = ulp_errors(evaluate(erf_split, x, "float32"), hi, lo, "float32")
    assert err.max() < 1.0, (err.max(), x[np.argmax(err)])
    assert check_specials(erf_split, "erf") == []
    y = evaluate(erf_split, np.array([np.float32(ERF_ONE_LAST), np.nextafter(np.float32(ERF_ONE_LAST), np.float32(9))]),
                 "float32")
    assert y[1] == 1.0 and y[0] >= 1.0 - 2.0**-24  # the select gives 1 from the float32 after ERF_ONE_LAST on


def test_split_pieces_and_refusals():
    s = get_split("erf")
    assert s.target == "erf" and all(get_frame(p).target == "erf" for p in s.pieces)
    assert [piece_range(s, i) for i in range(3)] == [(0.0, 1.0), (1.0, 2.0), (2.0, math.inf)]
    core = fitted_core("erf_tail")
    with pytest.raises(FrameError, match="3 pieces"):
        compose_split("erf", [compose("erf_tail", core)])
    with pytest.raises(FrameError, match="unknown split"):
        get_split("nope")


def test_split_shares_the_pieces_common_nodes(erf_split):
    """|x| is computed once for both pieces and the select (a duplicate would cost in the C)."""
    assert sum(1 for n in erf_split.nodes if n.op == "abs") == 1


@pytest.mark.parametrize("lo,hi", [(0.9999, 1.0001), (1.9999, 2.0001), (3.9191, 3.9194), (-1.0001, -0.9999),
                                   (1e-40, 1.1e-40)])
def test_split_erf_exhaustive_subrange_matches_direct_computation(erf_split, lo, hi):
    rep = verify_full_range(erf_split, "erf", lo, hi, chunk=1 << 20)
    from fitness.points import all_floats

    x = np.concatenate(list(all_floats(lo, hi, "float32")))
    max_ulp, n_cr, n_special_bad = _direct(erf_split, "erf", x)
    assert rep.n_points == len(x) and rep.max_ulp == pytest.approx(max_ulp, abs=1e-6)
    assert round(rep.frac_correctly_rounded * rep.n_points) == n_cr and rep.special_mismatches == n_special_bad


def test_framed_core_symmetry_hints():
    """A core odd about 0 (erf on [0, 1]) gets the odd templates, read from its reference; cores
    without parity (e^r, erfc(t + 2.5), the log cores) do not."""
    from fitness.properties import frame_core_hints

    h = frame_core_hints("erf_small")
    assert h.symmetry == "odd" and h.odd_near_identity and not h.odd_unit_slope
    for frame in ("exp", "erf_mid", "erf_tail", "log", "tanh", "cbrt"):
        assert frame_core_hints(frame).symmetry is None, frame
    assert frame_core_hints("sigmoid").zeros == ((0.0, 0.0),)


# --- C export ----------------------------------------------------------------------------------------
@pytest.mark.skipif(CC is None or platform.machine() not in ("x86_64", "AMD64"), reason="needs a C compiler on x86-64")
def test_c_export_of_framed_programs_is_bit_identical(composed, erf_split, tmp_path):
    x = random_full_range(200_000)
    composed = {**composed, "erf": erf_split}
    for name in ("exp", "exp2", "exp10", "expm1", "log", "log10", "log1p", "sigmoid", "tanh", "cbrt", "erf"):
        fname = f"{name}_f32"
        src = tmp_path / f"{fname}.h"
        src.write_text(export_source(composed[name], "c", fname, "float32", f"test {name}"))
        loop = tmp_path / f"{name}_loop.c"
        loop.write_text(f'#include "{src.name}"\n#include <stddef.h>\n'
                        f"void run(const float *restrict x, float *restrict y, size_t n)\n"
                        f"{{ for (size_t i = 0; i < n; i++) y[i] = {fname}(x[i]); }}\n")
        lib = tmp_path / f"lib{name}.so"
        res = subprocess.run([CC, "-O3", "-march=native", "-ffp-contract=off", "-fopt-info-vec-optimized",
                              "-shared", "-fPIC", str(loop), "-o", str(lib), "-lm"],
                             capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        if "GCC" in subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.upper() or "gcc" in CC:
            assert f"{name}_loop.c:3" in res.stderr and "loop vectorized" in res.stderr, res.stderr
        fn = ctypes.CDLL(str(lib)).run
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, len(x))
        ref = evaluate(composed[name], x, "float32")
        bad = ~same_float32(y, ref)
        assert not np.any(bad), (name, x[bad][:5], y[bad][:5], ref[bad][:5])
        assert check_specials(lambda v: _call(fn, v), name) == []


def _call(fn, v):
    v = np.ascontiguousarray(v, np.float32)
    out = np.empty_like(v)
    fn(v.ctypes.data, out.ctypes.data, len(v))
    return out


def test_composed_programs_round_trip_as_text(composed):
    for prog in composed.values():
        again = parse_program(format_program(prog))
        x = random_full_range(2000, seed=5)
        assert np.all(same_float32(evaluate(again, x, "float32"), evaluate(prog, x, "float32")))


def test_mixed_precision_program_verifies_in_float64():
    """A float64 exp frame and core ending in cvt_f32 (float32 in and out): the verifier runs it
    in float64 and counts the misrounded inputs; a degree-10 float64 core leaves none on this range."""
    lo, hi = get_frame("exp").core_domain
    t = np.cos(np.linspace(0.0, math.pi, 400)) * (hi - lo) * 0.51 + (hi + lo) / 2
    c = np.polynomial.polynomial.polyfit(t, np.exp(t), 10)
    prog = rounded_once(compose("exp", horner64(c)))
    rep = verify_full_range(prog, "exp", 0.5, 0.5001, chunk=1 << 20, compute="float64")
    from fitness.points import all_floats

    x = np.concatenate(list(all_floats(0.5, 0.5001, "float32")))
    y = evaluate(prog, x.astype(np.float64), "float64").astype(np.float32)
    cr, *_ = reference_f32(get_target("exp"), x)
    assert rep.n_points == len(x) and rep.n_misrounded == int(np.count_nonzero(~same_float32(y, cr))) == 0
    assert "float64 inside" in rep.evaluator
    with pytest.raises(ValueError, match="compute"):
        verify_full_range(prog, "exp", 0.5, 0.5001, compute="float16")
    single = verify_full_range(prog, "exp", 0.5, 0.5001, chunk=1 << 20)  # the same program run in float32
    assert single.n_misrounded > 0
    listed = np.array(single.misrounded_inputs, np.float32)
    assert len(listed) == min(single.n_misrounded, 64) and np.all((listed >= 0.5) & (listed <= 0.5001))
    y32 = evaluate(prog, listed, "float32")
    assert not np.any(same_float32(y32, reference_f32(get_target("exp"), listed)[0]))


@pytest.mark.parametrize("frame", ["exp", "exp2", "exp10"])
def test_float64_exp_frames_scale_with_one_ldexp_bit_for_bit(frame):
    """In float64 (cr mode) the exp frames scale by one ldexp instead of ldexp2: the same values
    on every kind of float32 input (subnormal results, overflow, underflow, inf, NaN), fewer ops."""
    lo, hi = get_frame(frame).core_domain
    t = np.linspace(lo, hi, 400)
    c = np.polynomial.polynomial.polyfit(t, core_reference(frame, t), 10)
    wide = rounded_once(compose(frame, horner64(c), float64=True))
    narrow = rounded_once(compose(frame, horner64(c)))
    ops = [n.op for n in wide.nodes]
    assert "ldexp" in ops and "ldexp2" not in ops and "ldexp2" in [n.op for n in narrow.nodes]
    with np.errstate(invalid="ignore"):
        x = np.concatenate([random_full_range(200_000, seed=9).astype(np.float64),
                            np.linspace(-160.0, 130.0, 200_001), [np.inf, -np.inf, np.nan, 0.0, -0.0]])
    assert np.all(same_float32(evaluate(wide, x, "float64"), evaluate(narrow, x, "float64")))


@pytest.mark.parametrize("frame", ["log_atanh", "log2_atanh"])
def test_log_atanh_frame_in_float64_rounds_correctly(frame):
    """The float64 log frames for cr mode: a degree-7 float64 core in u = s^2 already rounds every
    float32 input of these subranges correctly (one final cvt_f32), special values included."""
    target = get_frame(frame).target
    lo, hi = get_frame(frame).core_domain
    u = np.linspace(lo, hi * 1.01, 400)
    c = np.polynomial.polynomial.polyfit(u, core_reference(frame, u), 7)
    prog = rounded_once(compose(frame, horner64(c)))
    for a, b in ((0.9999, 1.0002), (0.70, 0.7001), (1e30, 1.0001e30), (1e-40, 1.01e-40)):
        rep = verify_full_range(prog, target, a, b, chunk=1 << 20, compute="float64")
        assert rep.n_misrounded == 0 and rep.n_points > 500, (a, b, rep.n_misrounded)
    y = evaluate(prog, np.array([0.0, -0.0, -1.0, np.inf, np.nan, 1.0, 2.0**-140]), "float64")
    assert y[0] == y[1] == -np.inf and np.isnan(y[2]) and y[3] == np.inf and np.isnan(y[4]) and y[5] == 0.0
    if frame == "log2_atanh":
        assert y[6] == -140.0


def _sin_core() -> Program:
    """An accurate float64 core for the sin/cos frames: v P(v^2) ~ sin(pi v / 2) on [-1, 1]."""
    u = np.linspace(0.0, 1.0, 2000)
    v = np.sqrt(u)
    f = np.where(u > 0, np.sin(np.pi / 2 * v) / np.where(v > 0, v, 1.0), np.pi / 2)
    return horner64(np.polynomial.chebyshev.Chebyshev.fit(u, f, 9).convert(kind=np.polynomial.Polynomial).coef, True)


def test_turn_chunks_are_one_over_two_pi():
    """The seven chunks of 1/(2 pi) are its leading 203 bits, each at most 29 significant bits (so
    that a float32 times each is exact in float64), and INV_PI_HI + INV_PI_LO is 1/pi to 2^-82."""
    import mpmath

    from fitness.frames import INV_PI_HI, INV_PI_LO, TURN_CHUNKS

    with mpmath.workprec(400):
        total = sum(mpmath.mpf(c) for c in TURN_CHUNKS)
        assert 0 <= 1 / (2 * mpmath.pi) - total < mpmath.mpf(2) ** -203
        assert abs(mpmath.mpf(INV_PI_HI) + mpmath.mpf(INV_PI_LO) - 1 / mpmath.pi) < mpmath.mpf(2) ** -82
    for c in TURN_CHUNKS + (INV_PI_HI,):
        m, _ = math.frexp(c)
        assert (int(m * 2**53) & ((1 << 24) - 1)) == 0  # at most 29 significant bits


@pytest.mark.parametrize("frame", ["sin", "cos"])
def test_trig_frames_reduce_every_range_exactly(frame):
    """sin/cos in float64 with an accurate core: every float32 of slices near multiples of pi/2, at
    the two reductions' boundary 2^20, and among the largest floats rounds correctly (the table-free
    seven-chunk reduction), and the special values come out right (+-0, tiny, inf, NaN)."""
    prog = rounded_once(compose(frame, _sin_core()))
    big = 16367173 * 2.0**72  # a float32 close to a multiple of pi/2
    for a, b in ((1.5707, 1.5709), (3.14159, 3.1416), (2.0**20 - 0.5, 2.0**20 + 1.0), (big * 0.9999, big * 1.0001),
                 (3.0e38, 3.00001e38), (-1e-3, -0.999e-3)):
        rep = verify_full_range(prog, frame, a, b, chunk=1 << 20, compute="float64")
        assert rep.n_misrounded == 0 and rep.n_points > 10, (a, b, rep.n_misrounded)
    assert check_specials(lambda x: evaluate(prog, np.asarray(x, np.float64), "float64").astype(np.float32),
                          get_spec(frame)) == []


def test_float64_only_frames_need_cr_mode():
    from search.config import ConfigError, RunConfig

    with pytest.raises(ConfigError, match="--mode cr"):
        RunConfig(target="sin", domain=(-10.0, 10.0), frame="sin").validate()


def test_sigmoid_f64_frame_steps_off_the_midpoints_near_zero():
    """The float64 sigmoid frame: for |x| < 2^-11, 1/2 + x/4 is a float32 rounding midpoint at every
    odd multiple of 2^-23 (2^-24 below 0) while the exact value lies only x^3/48 from it; the frame's
    one step off it rounds all of them right, and the main path rounds slices elsewhere right with an
    accurate core; special values."""
    h = math.log(2) / 2
    t = np.linspace(-h, h, 4000)
    c = np.polynomial.chebyshev.Chebyshev.fit(t, np.exp(t), 12).convert(kind=np.polynomial.Polynomial).coef
    prog = rounded_once(compose("sigmoid_f64", horner64(c)))
    for a, b in ((2.0**-20, 2.0**-16), (-(2.0**-16), -(2.0**-20)), (-25.0, -24.9), (0.1, 0.101), (3.0, 3.01),
                 (-103.0, -102.9)):
        rep = verify_full_range(prog, "sigmoid", a, b, chunk=1 << 20, compute="float64")
        assert rep.n_misrounded == 0 and rep.n_points > 1000, (a, b, rep.n_misrounded)
    assert check_specials(lambda x: evaluate(prog, np.asarray(x, np.float64), "float64").astype(np.float32),
                          get_spec("sigmoid")) == []
