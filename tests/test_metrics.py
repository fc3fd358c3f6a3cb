"""ULP arithmetic, correct rounding, the exact fma emulation, and reference values."""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import fitness.reference as reference
from dsl.semantics import fma
from fitness.metrics import correctly_rounded, exact_exponent, summarize, ulp_errors, ulp_of_exact
from fitness.reference import fast_reference, mp_values, reference_values
from fitness.targets import Target, get_target

CC = shutil.which("cc") or shutil.which("gcc")
F32_MAX = float(np.finfo(np.float32).max)


def f32bits(a) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def f64bits(a) -> np.ndarray:
    return np.asarray(a, np.float64).view(np.uint64)


def same_or_both_nan(a, b, bits) -> np.ndarray:
    return (bits(a) == bits(b)) | (np.isnan(a) & np.isnan(b))


def rn32(v: Fraction) -> float:
    """Independent oracle: round an exact rational to float32, ties to even, overflow to inf."""
    if v == 0:
        return 0.0
    sign = -1.0 if v < 0 else 1.0
    a = abs(v)
    if a >= Fraction(2**128 - 2**103):
        return sign * math.inf
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    q = max(e - 23, -149)
    scaled = a / Fraction(2) ** q
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    return sign * math.ldexp(float(n), q)


# --- ULP arithmetic ------------------------------------------------------------------------------
def test_ulp_at_binade_edges():
    tiny = 2.0**-70
    # exactly a power of two: the upper binade's ulp; just below it: the lower binade's
    assert ulp_of_exact(2.0, 0.0, "float32") == 2.0**-22
    assert ulp_of_exact(2.0, tiny, "float32") == 2.0**-22
    assert ulp_of_exact(2.0, -tiny, "float32") == 2.0**-23
    assert ulp_of_exact(-2.0, 0.0, "float32") == 2.0**-22
    assert ulp_of_exact(-2.0, tiny, "float32") == 2.0**-23  # |exact| just below 2
    assert ulp_of_exact(-2.0, -tiny, "float32") == 2.0**-22
    assert ulp_of_exact(1.0, -tiny, "float32") == 2.0**-24
    assert ulp_of_exact(np.nextafter(2.0, 0), 0.0, "float32") == 2.0**-23
    assert ulp_of_exact(1.0, -tiny, "float64") == 2.0**-53
    assert ulp_of_exact(1.0, 0.0, "float64") == 2.0**-52
    assert ulp_of_exact(2.0**100, -(2.0**20), "float32") == 2.0**76
    assert list(exact_exponent([4.0, 4.0, 4.0, 5.0], [0.0, 2.0**-60, -(2.0**-60), -(2.0**-60)])) == [2, 2, 1, 2]
    # the error of the float32 just below 2 against an exact value at / just below 2
    y = np.float32(np.nextafter(np.float32(2), np.float32(0)))
    assert ulp_errors(y, 2.0, 0.0, "float32")[()] == 0.5
    assert ulp_errors(y, 2.0, -tiny, "float32")[()] == pytest.approx(1.0, rel=1e-12)
    assert ulp_errors(np.float32(2), 2.0, -tiny, "float32")[()] == pytest.approx(tiny / 2.0**-23)
    assert ulp_errors(np.float32(2), 2.0, 0.0, "float32")[()] == 0.0


def test_ulp_of_subnormal_and_zero_results():
    assert ulp_of_exact(2.0**-140, 0.0, "float32") == 2.0**-149
    assert ulp_of_exact(2.0**-126, -(2.0**-200), "float32") == 2.0**-149
    assert ulp_of_exact(2.0**-126, 0.0, "float32") == 2.0**-149
    assert ulp_of_exact(2.0**-125, 0.0, "float32") == 2.0**-148
    assert ulp_of_exact(3 * 2.0**-149, 0.0, "float32") == 2.0**-149
    assert ulp_of_exact(1e-300, 0.0, "float32") == 2.0**-149
    assert ulp_of_exact(1e-310, 0.0, "float64") == 2.0**-1074
    # an exact zero is in no binade: the subnormal floor applies
    assert ulp_of_exact(0.0, 0.0, "float32") == 2.0**-149
    assert ulp_of_exact(0.0, 0.0, "float64") == 2.0**-1074
    sub = np.float32(2.0**-149)
    assert ulp_errors(sub, 0.0, 0.0, "float32")[()] == 1.0
    assert ulp_errors(np.float32(1e-8), 0.0, 0.0, "float32")[()] > 1e30
    assert ulp_errors(np.float32(-0.0), 0.0, 0.0, "float32")[()] == 0.0
    assert ulp_errors(np.float32(0.0), 2.0**-149, 0.0, "float32")[()] == 1.0
    assert ulp_errors(np.float32(2.0**-148), 2.0**-149 * 1.5, 0.0, "float32")[()] == 0.5


def test_nonfinite_results_are_infinitely_bad_and_matched_infinities_are_zero():
    nan, inf = np.float32(np.nan), np.float32(np.inf)
    y = np.array([nan, inf, -inf, np.float32(F32_MAX), inf, -inf, inf, nan, np.float32(1), np.float32(1)], np.float32)
    hi = np.array([1.0, 1.0, 1.0, math.inf, math.inf, -math.inf, -math.inf, math.inf, math.inf, math.nan])
    err = ulp_errors(y, hi, np.zeros_like(hi), "float32")
    assert list(err) == [math.inf, math.inf, math.inf, math.inf, 0.0, 0.0, math.inf, math.inf, math.inf, math.inf]
    s = summarize(np.arange(3, dtype=np.float32), np.array([1, np.nan, 1], np.float32),
                  np.ones(3), np.zeros(3), "float32")
    assert s.max_ulp == math.inf and s.mean_ulp == math.inf and s.worst_x == 1.0
    assert s.frac_correctly_rounded == pytest.approx(2 / 3)
    assert math.isinf(s.max_rel_error)


def test_ulp_errors_are_exact_on_random_values():
    rng = np.random.default_rng(1)
    x = rng.uniform(-8, 8, 2000)
    hi = np.exp2(x)
    lo = hi * rng.uniform(-2**-54, 2**-54, x.size)
    lo = np.where(np.abs(lo) <= np.spacing(hi) / 2, lo, 0.0)
    y = (hi + rng.integers(-5, 6, x.size) * np.spacing(hi.astype(np.float32)).astype(np.float64)).astype(np.float32)
    err = ulp_errors(y, hi, lo, "float32")
    for i in range(0, x.size, 97):
        exact = Fraction(float(hi[i])) + Fraction(float(lo[i]))
        e = exact.numerator.bit_length() - exact.denominator.bit_length()
        if Fraction(2) ** e > exact:
            e -= 1
        want = abs(Fraction(float(y[i])) - exact) / Fraction(2) ** (e - 23)
        assert err[i] == pytest.approx(float(want), rel=1e-12, abs=1e-12)


# --- correct rounding ----------------------------------------------------------------------------
def _midpoints() -> list[float]:
    out = []
    for r in (1.0, 1.5, 1.0 + 2**-23, 3.0, 2.0**-126, 2.0**-149, 0.0, 2.0**-127, 1e-40, 100.0, 2.0**127):
        r32 = np.float32(r)
        nxt = np.nextafter(r32, np.float32(np.inf))
        if np.isfinite(nxt):
            out.append((float(r32) + float(nxt)) / 2)
    out.append(2.0 - 2.0**-24)  # just below a binade edge
    out.append(2.0**128 - 2.0**103)  # between FLT_MAX and overflow
    out.append(2.0**-150)  # between 0 and the smallest subnormal
    out.append(3 * 2.0**-150)
    return out


@pytest.mark.parametrize("mid", _midpoints())
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_correctly_rounded_on_float32_midpoints(mid, sign):
    hi = sign * mid
    lo_mag = math.ldexp(1.0, math.frexp(hi)[1] - 80)  # far below a float64 ulp of hi
    for lo in (lo_mag, -lo_mag, 0.0):
        got = correctly_rounded(np.array([hi]), np.array([lo]), "float32")[0]
        want = rn32(Fraction(hi) + Fraction(lo))
        assert f32bits(got) == f32bits(np.float32(want)), (hi, lo, got, want)
    # the two signs of lo round to the two neighbours of the midpoint
    a = correctly_rounded(np.array([hi]), np.array([lo_mag]), "float32")[0]
    b = correctly_rounded(np.array([hi]), np.array([-lo_mag]), "float32")[0]
    assert a != b


def test_correctly_rounded_on_random_near_midpoint_pairs():
    rng = np.random.default_rng(7)
    n = 3000
    bits = rng.integers(0, 0x7F7FFFFF, n).astype(np.uint32)
    r = bits.view(np.float32)
    nxt = np.nextafter(r, np.float32(np.inf))
    mid = (r.astype(np.float64) + nxt.astype(np.float64)) / 2
    hi = np.where(rng.random(n) < 0.5, -mid, mid)
    # also points a few float64 ulps off the midpoint
    hi = np.where(rng.random(n) < 0.3, hi + rng.integers(-3, 4, n) * np.spacing(hi), hi)
    lo = rng.choice([-1.0, 0.0, 1.0], n) * rng.uniform(0.0, 0.49, n) * np.spacing(np.abs(hi))
    got = correctly_rounded(hi, lo, "float32")
    want = np.array([rn32(Fraction(float(h)) + Fraction(float(l))) for h, l in zip(hi, lo)], np.float32)
    assert np.array_equal(f32bits(got), f32bits(want))
    assert np.array_equal(correctly_rounded(hi, lo, "float64"), hi)


# --- exact fma against C ------------------------------------------------------------------------
C_FMA = r"""
#include <math.h>
void fmaf_arr(const float *a, const float *b, const float *c, float *o, long n)
{ for (long i = 0; i < n; i++) o[i] = fmaf(a[i], b[i], c[i]); }
void fma_arr(const double *a, const double *b, const double *c, double *o, long n)
{ for (long i = 0; i < n; i++) o[i] = fma(a[i], b[i], c[i]); }
"""


@pytest.fixture(scope="module")
def libfma(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("cfma")
    (d / "fma.c").write_text(C_FMA)
    subprocess.run([CC, "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", str(d / "libfma.so"),
                    str(d / "fma.c"), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(d / "libfma.so"))
    for fn in (lib.fmaf_arr, lib.fma_arr):
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_long]
    return lib


def _c_fma(lib, a, b, c, dt):
    a, b, c = (np.ascontiguousarray(v, dt) for v in (a, b, c))
    out = np.empty_like(a)
    fn = lib.fmaf_arr if dt == np.float32 else lib.fma_arr
    fn(a.ctypes.data, b.ctypes.data, c.ctypes.data, out.ctypes.data, a.size)
    return out


def _adversarial_f32(rng: np.random.Generator, n: int):
    f32 = np.float32
    A, B, C = [], [], []
    sign = lambda: rng.choice([-1.0, 1.0], n)  # noqa: E731
    # 1. any bit patterns: every binade, subnormals, inf, nan
    A.append(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(f32))
    B.append(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(f32))
    C.append(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(f32))
    # 2. a*b a float32 midpoint exactly (3 * odd 24-bit mantissa has 25 bits), c far below it
    ma = (rng.integers(2**22, 2**23 * 4 // 3 // 2, n) * 2 + 1).astype(np.float64)  # odd, 3*ma < 2**25
    ea = rng.integers(-60, 60, n)
    a = np.ldexp(ma, ea - 23)
    b = 3.0 * np.ldexp(1.0, rng.integers(-40, 40, n))
    A.append(a.astype(f32)); B.append((b * sign()).astype(f32))
    p = np.abs(a * b)
    C.append((np.ldexp(rng.uniform(1, 2, n), (np.floor(np.log2(p)) - rng.integers(30, 90, n)).astype(int)) * sign()).astype(f32))
    # 3. c on the float32 grid, a*b = half an ulp of c times (1 +- 2**-46): the float64 sum rounds
    #    exactly onto the midpoint
    s1 = sign()
    c = rng.uniform(1, 2, n).astype(f32) * np.ldexp(1.0, rng.integers(-100, 100, n)).astype(f32)
    ec = np.floor(np.log2(np.abs(c.astype(np.float64)))).astype(int)
    k = rng.integers(0, 3, n)
    a = np.ldexp(1.0 + s1 * (1 + k) * 2.0**-23, ec - 24)
    b = np.where(rng.random(n) < 0.6, 1.0 - s1 * 2.0**-23, 1.0 + sign() * 2.0**-23)
    A.append(a.astype(f32)); B.append(b.astype(f32)); C.append((c * sign()).astype(f32))
    # 4. subnormal products and sums
    A.append((rng.uniform(-1, 1, n) * 2.0**-70).astype(f32))
    B.append((rng.uniform(-1, 1, n) * 2.0**-70).astype(f32))
    C.append(rng.integers(0, 2**23, n).astype(np.uint32).view(f32) * sign().astype(f32))
    # subnormal midpoints: odd multiples of 2**-150, c a tiny correction that float64 drops... or not
    A.append(np.ldexp(rng.integers(1, 2**12, n) * 2 + 1.0, -75).astype(f32))
    B.append(np.ldexp(3.0, -75) * np.ones(n, f32))
    C.append(np.where(rng.random(n) < 0.5, f32(0), f32(2.0**-149) * sign().astype(f32)).astype(f32))
    # 5. overflow: products beyond FLT_MAX brought back by c, or landing on the overflow midpoint
    A.append(np.full(n, 18631.0, f32))  # 18631 * 1801 * 2**103 = 2**128 - 2**103
    B.append((np.ldexp(1801.0, 103) * sign()).astype(f32))
    C.append((rng.choice([0.0, 1.0, -1.0, 1e30, -1e30, 2.0**100, -F32_MAX], n)).astype(f32))
    A.append(np.ldexp(rng.uniform(1, 2, n), 64).astype(f32))
    B.append(np.ldexp(rng.uniform(1, 2, n), 64).astype(f32) * sign().astype(f32))
    C.append((rng.uniform(-1, 1, n) * F32_MAX).astype(f32))
    # 6. cancellation: c = -RN(a*b) gives the exact product error
    a = rng.uniform(-10, 10, n).astype(f32)
    b = rng.uniform(-10, 10, n).astype(f32)
    A.append(a); B.append(b); C.append(-(a * b))
    # 7. zeros of both signs and infinities
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0**-149], f32)
    g = np.array(np.meshgrid(sp, sp, sp)).reshape(3, -1)
    A.append(g[0]); B.append(g[1]); C.append(g[2])
    with np.errstate(all="ignore"):
        return (np.concatenate(A).astype(f32), np.concatenate(B).astype(f32), np.concatenate(C).astype(f32))


def test_fma32_matches_c_fmaf_bit_for_bit(libfma):
    rng = np.random.default_rng(2024)
    a, b, c = _adversarial_f32(rng, 20000)
    got = fma(a, b, c, "float32")
    want = _c_fma(libfma, a, b, c, np.float32)
    bad = ~same_or_both_nan(got, want, f32bits)
    assert not bad.any(), list(zip(a[bad][:5], b[bad][:5], c[bad][:5], got[bad][:5], want[bad][:5]))
    # the adversarial families really do hit double rounding of the plain float64 expression
    with np.errstate(all="ignore"):
        naive = (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)
    assert np.count_nonzero(~same_or_both_nan(naive, want, f32bits)) > 100


def test_fma64_matches_c_fma_in_the_moderate_range(libfma):
    rng = np.random.default_rng(99)
    n = 40000
    sgn = lambda: rng.choice([-1.0, 1.0], n)  # noqa: E731
    a = np.ldexp(rng.uniform(1, 2, n), rng.integers(-150, 150, n)) * sgn()
    b = np.ldexp(rng.uniform(1, 2, n), rng.integers(-150, 150, n)) * sgn()
    c = np.ldexp(rng.uniform(1, 2, n), rng.integers(-300, 300, n)) * sgn()
    # cancellation: the exact error of the product, and near it
    i = rng.random(n) < 0.3
    c = np.where(i, -(a * b) + rng.integers(-2, 3, n) * np.spacing(a * b), c)
    # products next to a float64 midpoint: (1 + k 2**-52)(1 - 2**-52), c tiny or on the grid
    j = rng.random(n) < 0.2
    a = np.where(j, 1.0 + rng.integers(1, 8, n) * 2.0**-52, a)
    b = np.where(j, (1.0 - 2.0**-52) * sgn(), b)
    c = np.where(j, rng.choice([0.0, 2.0**-80, -(2.0**-80), 2.0**-53, -(2.0**-53), 1.0, -1.0], n), c)
    zeros = np.array([0.0, -0.0, 1.0, -1.0, 3.5])
    g = np.array(np.meshgrid(zeros, zeros, zeros)).reshape(3, -1)
    a, b, c = np.concatenate([a, g[0]]), np.concatenate([b, g[1]]), np.concatenate([c, g[2]])
    got = fma(a, b, c, "float64")
    want = _c_fma(libfma, a, b, c, np.float64)
    bad = ~same_or_both_nan(got, want, f64bits)
    assert not bad.any(), list(zip(a[bad][:5], b[bad][:5], c[bad][:5], got[bad][:5], want[bad][:5]))


# --- reference values ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,xs", [
    ("exp2", [0.0, 0.1, 0.5, 0.7071067690849304, 1.0 - 2.0**-24]),
    ("exp", [-0.3, 1e-7, 0.25]),
    ("log", [0.5, 0.75, 0.9999999403953552, 1.0]),
    ("erf", [1e-30, 0.5, 1.0]),
    ("sigmoid", [-4.0, 0.0, 3.0]),
])
def test_mp_values_hi_lo_agree_with_mpmath_at_200_bits(name, xs):
    target = get_target(name)
    x = np.array(xs, np.float32)
    ref = mp_values(target, x)
    with mpmath.workprec(200):
        for xi, h, l in zip(x, ref.hi, ref.lo):
            truth = target.mp_fn(mpmath.mpf(float(xi)))
            got = mpmath.mpf(float(h)) + mpmath.mpf(float(l))
            if truth == 0:
                assert h == 0.0 and l == 0.0
                continue
            assert abs(got - truth) / abs(truth) < mpmath.mpf("1e-30"), (name, xi)
            assert abs(l) <= np.spacing(abs(h)) / 2  # hi is the float64 rounding of the value


def test_reference_cache_returns_identical_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path))
    target = get_target("exp2")
    x = np.linspace(0, 1, 300).astype(np.float32)
    first = reference_values(target, x, 0.0, 1.0, "float32")
    files = list((tmp_path / "reference").glob("*.npz"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("mp_values called although the values are cached")

    monkeypatch.setattr(reference, "mp_values", boom)
    second = reference_values(target, x, 0.0, 1.0, "float32")
    assert np.array_equal(f64bits(first.hi), f64bits(second.hi))
    assert np.array_equal(f64bits(first.lo), f64bits(second.lo))
    # other points, another domain, or no cache: computed afresh
    with pytest.raises(AssertionError, match="cached"):
        reference_values(target, x[:-1], 0.0, 1.0, "float32")
    with pytest.raises(AssertionError, match="cached"):
        reference_values(target, x, 0.0, 2.0, "float32")
    with pytest.raises(AssertionError, match="cached"):
        reference_values(target, x, 0.0, 1.0, "float32", use_cache=False)
    # a corrupt cache file is recomputed, not trusted
    files[0].write_bytes(b"garbage")
    monkeypatch.undo()
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path))
    third = reference_values(target, x, 0.0, 1.0, "float32")
    assert np.array_equal(f64bits(first.hi), f64bits(third.hi))


def _near_midpoints(target, lo, hi, n_pool, n_keep, rng) -> np.ndarray:
    """The float32 inputs (from a random pool) whose float64 value lies closest to a midpoint."""
    x = np.unique(np.concatenate([rng.uniform(lo, hi, n_pool // 2),
                                  np.linspace(lo, hi, n_pool // 2)]).astype(np.float32))
    x = x[(x >= lo) & (x <= hi)]
    with np.errstate(all="ignore"):
        y = target.np_fn(x.astype(np.float64))
        r = y.astype(np.float32)
    other = np.nextafter(r, np.where(y > r, np.float32(np.inf), np.float32(-np.inf)))
    mid = (r.astype(np.float64) + other.astype(np.float64)) / 2
    dist = np.abs(y - mid) / np.spacing(np.abs(y))
    return x[np.argsort(dist)[:n_keep]]


@pytest.mark.parametrize("name,lo,hi,pool", [
    ("exp2", 0.0, 1.0, 300_000), ("exp", -87.0, 88.0, 300_000), ("log", 0.5, 1.0, 300_000),
    ("sin", 0.0, 1.5707963267948966, 200_000), ("erf", 0.0, 1.0, 30_000),
])
def test_fast_reference_rounds_like_mpmath(name, lo, hi, pool):
    """Real targets, on random points and the closest to midpoints of a random pool (within 16 float64
    ulps of a midpoint is a 1-in-10**7 event: see the synthetic targets below for those)."""
    target = get_target(name)
    rng = np.random.default_rng(5)
    near = _near_midpoints(target, lo, hi, pool, 600, rng)
    x = np.concatenate([near, rng.uniform(lo, hi, 1400).astype(np.float32),
                        np.array([lo, hi], np.float32)])
    x = np.clip(x, np.float32(lo), np.float32(hi))
    fast = fast_reference(target, x, "float32")
    exact = mp_values(target, x)
    cr_fast = correctly_rounded(fast.hi, fast.lo, "float32")
    cr_exact = correctly_rounded(exact.hi, exact.lo, "float32")
    assert np.array_equal(f32bits(cr_fast), f32bits(cr_exact))
    # and the ulp errors it gives a float32 result are those of the exact reference (to float64 noise)
    y = cr_exact
    assert np.allclose(ulp_errors(y, fast.hi, fast.lo, "float32"), ulp_errors(y, exact.hi, exact.lo, "float32"),
                       rtol=0, atol=1e-6)


def _triple_midpoints(rng) -> np.ndarray:
    """float32 x with 3x exactly a float32 rounding midpoint: x = m 2**(k-23), m odd, 3m < 2**25."""
    m = rng.integers(2**22, 2**25 // 6, 3000) * 2 + 1
    k = rng.integers(-20, 20, m.size)
    x = np.ldexp(m.astype(np.float64), k - 23)
    assert np.all(3 * m < 2**25)
    return np.where(rng.random(m.size) < 0.5, -x, x).astype(np.float32)


@pytest.mark.parametrize("mp_sign,np_scale", [
    (1, 1.0),  # exact value a hair (2**-70 relative) above the midpoint, float64 says "on it"
    (-1, 1.0),  # a hair below
    (0, 1 + 3 * 2.0**-52),  # exactly on it, float64 three ulps above
    (0, 1 - 5 * 2.0**-52),  # exactly on it, float64 five ulps below
])
def test_fast_reference_rounds_like_mpmath_at_midpoints(mp_sign, np_scale):
    """A float64 function within a few ulps, where the exact value is (near) a float32 midpoint."""

    def mp_fn(x):  # evaluated inside mp_values' working precision
        return 3 * x * (1 + mp_sign * mpmath.mpf(2) ** -70)

    target = Target("triple", mp_fn, lambda x: 3 * x * np_scale, (-2.0, 2.0))
    rng = np.random.default_rng(3)
    x = np.concatenate([_triple_midpoints(rng), rng.uniform(-2, 2, 2000).astype(np.float32)])
    fast = fast_reference(target, x, "float32")
    exact = mp_values(target, x)
    want = correctly_rounded(exact.hi, exact.lo, "float32")
    assert np.array_equal(f32bits(correctly_rounded(fast.hi, fast.lo, "float32")), f32bits(want))
    # without the guard (float64 values taken as they are) many of these would round wrongly
    naive = correctly_rounded(fast_reference(target, x, "float32", guard_ulps=-1).hi, 0.0, "float32")
    assert np.count_nonzero(f32bits(naive) != f32bits(want)) > 500


def test_fitness_points_hold_the_inputs_where_the_target_crosses_a_power_of_two():
    # the largest ulp error of a smooth relative error is just below a power of two of the
    # *output* (mantissa near 2): the fitness set must hold both floats around each crossing
    from fitness.problem import Problem, ProblemSpec

    x = Problem.build(ProblemSpec("erf", 0.0, 1.0)).x
    for power in (0.5, 0.25, 2.0 ** -10):
        ref = mp_values(get_target("erf"), x.astype(np.float64)).hi
        below = np.flatnonzero(ref < power)[-1]
        a, b = x[below], x[below + 1]
        assert b == np.nextafter(a, np.float32(np.inf)), power  # adjacent floats straddle the power
        assert ref[below + 1] >= power
