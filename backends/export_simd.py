"""Explicit SIMD C for programs with float input and output: an AVX-512 and an AVX2 vector
function, one op table each.

Why not leave it to GCC's vectorizer, as ``backends.export``'s scalar C does: SLEEF's AVX-512
``logf`` took 0.54x the time of the auto-vectorized export, because it reads the exponent and
mantissa with ``vgetexpps``/``vgetmantps`` and scales with ``vscalefps``, one instruction each,
where the scalar C's bit-level frexp and ldexp (written so that GCC vectorizes them at all) become
some twenty integer, mask and blend instructions.  No C compiler turns portable scalar code into
those instructions, so the export names them: ``NAME_v16(__m512)`` under ``__AVX512F__`` and
``__AVX512DQ__`` (x86-64-v4), ``NAME_v8(__m256)`` under ``__AVX2__`` and ``__FMA__``
(x86-64-v3), the interface of SLEEF's vector functions.  BENCHMARKS.md section ``peers`` times
both, side by side, against SLEEF.

Every op is one entry of ``SIMD_EXPR`` per ISA (generic in the lane type: float32 programs, and
float64 programs with float input and output, in two halves of doubles), walked by the project's
one fold (``dsl.interpret.fold``), and computes exactly what ``dsl.semantics`` defines, NaN
payloads aside (every NaN is a NaN): ``tests/test_export_simd.py`` checks each entry against the
numpy semantics on the host's ISAs, and ``benchmarks/simd_exact.py`` whole examples on all 2^32
inputs.  The IEEE facts each entry rests on are in its helper's comment.

A float64-inside program's last nodes (its final ``cvt_f32`` and the selects on x after it:
overflow, underflow, the exceptions) run once on the float lanes after the double halves are
rounded and joined, not once per half (``float32_tail``): rounding commutes with a select, and a
compare of a float32 input with a float32 constant is the same in both precisions.  On the lanes
those selects take, the body's value is never read; on the others (``backends.live_lanes``) an exp
frame's k is a small integer and a log frame's frexp argument a normal number, so the AVX2 body
builds 2^k and reads m and e off the bits without the clamps, NaN blends and zero, infinity and
subnormal fix-ups that only the dead lanes would need (``live_forms``).  The mirror of the tail: a
log frame's first nodes (frexp of x, the select by sqrt(1/2), m - 1) are float32 values whose
float64 ops are all exact, so on AVX2 they run once on the float lanes before the halves
(``float32_head``), and only the two values the rest of the body reads are widened.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from dsl.ops import LDEXP2_RANGE, LDEXP_CLAMP, OPS
from dsl.program import Program

from .export import _body, _c_literal, _live_ops, _rounded, one_multiply_forms
from .float32_edges import cone as _cone
from .float32_edges import f32_condition as _f32_condition
from .float32_edges import f32_operand as _f32_operand
from .float32_edges import float32_head, float32_tail, tail_nodes
from .live_lanes import float32_values, live_inputs, nan_follows_x, node_ranges

F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Isa:
    """One vector ISA: its C vector type, width, guard macro test and intrinsic prefix."""

    name: str
    vec: str  # __m512
    width: int
    guard: str  # preprocessor condition under which the vector function exists
    pre: str  # _mm512
    suffix: str  # v16: the function is NAME_v16
    march: str  # the -march level that enables it
    cpu_flags: frozenset  # the /proc/cpuinfo flags a CPU needs to run that level's code


ISAS: dict[str, Isa] = {
    "avx512": Isa("avx512", "__m512", 16, "defined(__AVX512F__) && defined(__AVX512DQ__)", "_mm512", "v16", "x86-64-v4",
                  frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
    "avx2": Isa("avx2", "__m256", 8, "defined(__AVX2__) && defined(__FMA__)", "_mm256", "v8", "x86-64-v3",
                frozenset({"avx2", "fma", "bmi2", "f16c", "movbe"})),
}


def cpu_flags() -> frozenset:
    """This CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "flags:")
    return frozenset(line.split(":", 1)[1].split())


# Ops that are one intrinsic (or a short expression) on both ISAs; ``{P}`` is the intrinsic
# prefix, ``{p}`` the file's helper prefix.
_COMMON = {
    "add": "{P}_add_ps({0}, {1})",
    "sub": "{P}_sub_ps({0}, {1})",
    "mul": "{P}_mul_ps({0}, {1})",
    "div": "{P}_div_ps({0}, {1})",
    "fma": "{P}_fmadd_ps({0}, {1}, {2})",
    "neg": "{P}_xor_ps({0}, {P}_set1_ps(-0.0f))",
    "sqrt": "{P}_sqrt_ps({0})",
    "copysign": "{p}_copysign({0}, {1})",
    "ldexp": "{p}_ldexp({0}, {1})",
    "ldexp2": "{p}_ldexp2({0}, {1})",
    "frexp_m": "{p}_frexp_m({0})",
    "frexp_e": "{p}_frexp_e({0})",
    "cvt_f32": "({0})",  # float32 programs only: rounding to float32 is the identity
}

SIMD_EXPR: dict[str, dict[str, str]] = {
    "avx512": {  # generic in the lane type: {s} is ps or pd (see _LANES)
        **{op: t.replace("_ps(", "_{s}(") for op, t in _COMMON.items()},
        "neg": "_mm512_xor_{s}({0}, _mm512_set1_{s}(-0.0{F}))",
        "abs": "_mm512_abs_{s}({0})",
        "floor": "_mm512_roundscale_{s}({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)",
        "round": "_mm512_roundscale_{s}({0}, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
        "select_lt": "_mm512_mask_blend_{s}(_mm512_cmp_{s}_mask({0}, {1}, _CMP_LT_OQ), {3}, {2})",
        "cvt_f32": "{cvt}",
    },
    "avx2": {  # generic in the lane type as well
        **{op: t.replace("_ps(", "_{s}(") for op, t in _COMMON.items()},
        "neg": "_mm256_xor_{s}({0}, _mm256_set1_{s}(-0.0{F}))",
        "abs": "_mm256_andnot_{s}(_mm256_set1_{s}(-0.0{F}), {0})",
        "floor": "_mm256_round_{s}({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)",
        "round": "_mm256_round_{s}({0}, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
        "select_lt": "_mm256_blendv_{s}({3}, {2}, _mm256_cmp_{s}({0}, {1}, _CMP_LT_OQ))",
        "cvt_f32": "{cvt}",
    },
}
# Cheaper forms of an op whose k argument is already an integer (the value of a round or floor
# node): the AVX-512 ldexp and ldexp2, whose truncation is then the identity, and the AVX2 float64
# ldexp, whose 2^k then comes from the bits of k + 1.5 * 2^52 with no integer conversion.
_INTEGRAL_K = {"avx512": {"ldexp2": "{p}_ldexp2_n({0}, {p}_ldexp2_clamp({1}))", "ldexp": "{p}_ldexp_n({0}, {1})"},
               "avx2": {}, "avx2_f64": {"ldexp": "{p}_ldexp_n({0}, {1})"}}

# The lane types of the generic entries: float32 programs, and float64 programs with float32
# input and output (the correctly rounded kernels of ``--mode cr``), 8 or 4 doubles a register.
_LANES = {
    ("avx512", "float32"): dict(V="__m512", s="ps", F="f", M="__mmask16", E="epi32", ABSM="0x7FFFFFFF", cvt="({0})"),
    ("avx512", "float64"): dict(V="__m512d", s="pd", F="", M="__mmask8", E="epi64", ABSM="0x7FFFFFFFFFFFFFFFLL",
                                cvt="_mm512_cvtps_pd(_mm512_cvtpd_ps({0}))"),
    ("avx2", "float32"): dict(V="__m256", s="ps", F="f", cvt="({0})"),
    ("avx2", "float64"): dict(V="__m256d", s="pd", F="", cvt="_mm256_cvtps_pd(_mm256_cvtpd_ps({0}))"),
}
_INTEGRAL_OPS = ("round", "floor")

# A select one of whose values is the constant +0.0 is a bitwise and with the compare mask on AVX2
# (all-ones or all-zeros lanes): GCC turns a vblendvps with zero into vpcmpgtd (it keeps blendv's
# sign-bit-only meaning) plus vandnps, one instruction more.  {z} is the other value.
_ZERO_SELECT = {"avx2": {2: "_mm256_andnot_{s}(_mm256_cmp_{s}({0}, {1}, _CMP_LT_OQ), {z})",
                         3: "_mm256_and_{s}(_mm256_cmp_{s}({0}, {1}, _CMP_LT_OQ), {z})"}}

for _isa, _table in SIMD_EXPR.items():
    assert set(_table) == set(OPS), f"every op in dsl.ops.OPS needs a {_isa} expression"

# Helpers: which ops need which, and their text per ISA.
_NEEDS = {"copysign": "copysign", "ldexp": "ldexp", "ldexp2": "ldexp2", "frexp_m": "frexp", "frexp_e": "frexp"}

_HELPERS: dict[str, dict[str, str]] = {
    "avx512": {
        "copysign": """\
/* the magnitude bits of a, the sign bit of b (ternary logic 0xE4: mask ? a : b, bitwise) */
static inline {V} {p}_copysign({V} a, {V} b)
{{
    return _mm512_castsi512_{s}(_mm512_ternarylogic_{E}(_mm512_cast{s}_si512(a), _mm512_cast{s}_si512(b),
                                                         _mm512_set1_{E}({ABSM}), 0xE4));
}}
""",
        "ldexp": """\
/* a * 2**trunc(k), k clamped to [-{LC}, {LC}], one rounding: vscalef rounds a * 2**floor(b) once,
   and b = trunc(kc) is an integer.  max/min return their second operand for a NaN, so a NaN k
   stays NaN through the clamp and scalef makes the result NaN, as the semantics say. */
static inline {V} {p}_ldexp({V} a, {V} k)
{{
    {V} kc = _mm512_min_{s}(_mm512_set1_{s}({LC}.0{F}), _mm512_max_{s}(_mm512_set1_{s}(-{LC}.0{F}), k));
    return _mm512_scalef_{s}(a, _mm512_roundscale_{s}(kc, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}}

/* the same for a k that is already an integer (a round or floor result): the clamp alone */
static inline {V} {p}_ldexp_n({V} a, {V} k)
{{
    return _mm512_scalef_{s}(a, _mm512_min_{s}(_mm512_set1_{s}({LC}.0{F}), _mm512_max_{s}(_mm512_set1_{s}(-{LC}.0{F}), k)));
}}
""",
        "ldexp2": """\
/* (a * 2**h) * 2**(n - h), h = floor(n / 2), for n = trunc(k) clamped to [{L2_LO}, {L2_HI}] (NaN k to
   the lower end: max returns its second operand for a NaN).  vscalef multiplies by 2**floor(b) and
   rounds once, so b = n / 2 gives 2**h and b = (n + 1) / 2 gives 2**(n - h) (both exact halves of
   an integer); h and n - h are normal exponents: two multiplies by exact powers of two, as the
   semantics say.  The clamp alone serves a k that is already an integer (a round or floor result):
   truncation is then the identity. */
static inline {V} {p}_ldexp2_clamp({V} k)
{{
    return _mm512_min_{s}(_mm512_max_{s}(k, _mm512_set1_{s}({L2_LO}.0{F})), _mm512_set1_{s}({L2_HI}.0{F}));
}}

static inline {V} {p}_ldexp2_n({V} a, {V} n)
{{
    const {V} half = _mm512_set1_{s}(0.5{F});
    return _mm512_scalef_{s}(_mm512_scalef_{s}(a, _mm512_mul_{s}(n, half)), _mm512_fmadd_{s}(n, half, half));
}}

static inline {V} {p}_ldexp2({V} a, {V} k)
{{
    return {p}_ldexp2_n(a, _mm512_roundscale_{s}({p}_ldexp2_clamp(k), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}}
""",
        "frexp": """\
/* vgetmant (interval [0.5, 1), the source's sign) and vgetexp (floor(log2|a|), exact) read
   subnormals right without scaling; 0, inf and NaN (vfpclass 0x9F) give m = a and e = 0. */
static inline {V} {p}_frexp_m({V} a)
{{
    {M} special = _mm512_fpclass_{s}_mask(a, 0x9F);
    return _mm512_mask_mov_{s}(_mm512_getmant_{s}(a, _MM_MANT_NORM_p5_1, _MM_MANT_SIGN_src), special, a);
}}

static inline {V} {p}_frexp_e({V} a)
{{
    {M} special = _mm512_fpclass_{s}_mask(a, 0x9F);
    return _mm512_maskz_add_{s}(({M})~special, _mm512_getexp_{s}(a), _mm512_set1_{s}(1.0{F}));
}}
""",
    },
    "avx2": {
        "copysign": """\
static inline __m256 {p}_copysign(__m256 a, __m256 b)
{{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, b));
}}
""",
        "ldexp": """\
/* a * 2**trunc(k), k clamped to [-{LC}, {LC}]: the product in double is exact (a float times a
   power of two in double's range) and the conversion back to float is the one rounding. */
static inline __m256 {p}_ldexp(__m256 a, __m256 k)
{{
    __m256 kc = _mm256_min_ps(_mm256_set1_ps({LC}.0f), _mm256_max_ps(_mm256_set1_ps(-{LC}.0f), k));
    __m256i n = _mm256_cvttps_epi32(kc); /* NaN k gives INT_MIN here; the blend below fixes it */
    __m256i n_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(n));
    __m256i n_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(n, 1));
    __m256d s_lo = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n_lo, _mm256_set1_epi64x(1023)), 52));
    __m256d s_hi = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n_hi, _mm256_set1_epi64x(1023)), 52));
    __m128 r_lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), s_lo));
    __m128 r_hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), s_hi));
    __m256 r = _mm256_insertf128_ps(_mm256_castps128_ps256(r_lo), r_hi, 1);
    return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), _mm256_cmp_ps(k, k, _CMP_UNORD_Q));
}}
""",
        "ldexp_live": """\
/* ldexp for a k that is an integer in [-126, 127] for every input, of an a that is NaN wherever
   x is NaN (backends.live_lanes.one_multiply_ldexps): 2**k from the bits of k + 1.5 * 2**23 + 127,
   one exact multiply, no clamp and no double lanes (a NaN a makes the product NaN whatever a NaN
   k's bits give). */
static inline __m256 {p}_ldexp_live(__m256 a, __m256 k)
{{
    __m256i bits = _mm256_castps_si256(_mm256_add_ps(k, _mm256_set1_ps(0x1.8p23f + 127.0f)));
    return _mm256_mul_ps(a, _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23)));
}}
""",
        "ldexp2": """\
/* (a * 2**h) * 2**(n - h), h = n >> 1, n = trunc(k) clamped to [{L2_LO}, {L2_HI}] (NaN k to the lower
   end: maxps returns its second operand for a NaN); the powers of two built from integer bits. */
static inline __m256 {p}_ldexp2(__m256 a, __m256 k)
{{
    __m256 kc = _mm256_min_ps(_mm256_max_ps(k, _mm256_set1_ps({L2_LO}.0f)), _mm256_set1_ps({L2_HI}.0f));
    __m256i n = _mm256_cvttps_epi32(kc);
    __m256i h = _mm256_srai_epi32(n, 1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, h), bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(a, s1), s2);
}}
""",
        "frexp": """\
/* C frexp read off the bits, subnormals scaled by 2**24 into the normal range first (exactly);
   m = a and e = 0 for 0, inf and NaN. */
static inline __m256 {p}_frexp_m(__m256 a)
{{
    const __m256i emask = _mm256_set1_epi32(0xFF);
    __m256i u = _mm256_castps_si256(a);
    __m256i biased = _mm256_and_si256(_mm256_srli_epi32(u, 23), emask);
    __m256 sub = _mm256_castsi256_ps(_mm256_cmpeq_epi32(biased, _mm256_setzero_si256()));
    __m256i v = _mm256_castps_si256(_mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(0x1p24f)), sub));
    __m256i m = _mm256_or_si256(_mm256_andnot_si256(_mm256_set1_epi32(0xFF << 23), v), _mm256_set1_epi32(126 << 23));
    __m256i special = _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_slli_epi32(u, 1), _mm256_setzero_si256()),
                                      _mm256_cmpeq_epi32(biased, emask));
    return _mm256_blendv_ps(_mm256_castsi256_ps(m), a, _mm256_castsi256_ps(special));
}}

static inline __m256 {p}_frexp_e(__m256 a)
{{
    const __m256i emask = _mm256_set1_epi32(0xFF);
    __m256i u = _mm256_castps_si256(a);
    __m256i biased = _mm256_and_si256(_mm256_srli_epi32(u, 23), emask);
    __m256i sub = _mm256_cmpeq_epi32(biased, _mm256_setzero_si256());
    __m256i v = _mm256_castps_si256(_mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(0x1p24f)),
                                                     _mm256_castsi256_ps(sub)));
    __m256i e = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(v, 23), emask),
                                 _mm256_add_epi32(_mm256_set1_epi32(126), _mm256_and_si256(sub, _mm256_set1_epi32(24))));
    __m256i special = _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_slli_epi32(u, 1), _mm256_setzero_si256()),
                                      _mm256_cmpeq_epi32(biased, emask));
    return _mm256_cvtepi32_ps(_mm256_andnot_si256(special, e));
}}
""",
    },
    # not an op's helper: the float32 head's frexp of an argument that is a positive finite float on
    # every live lane (export_simd.float32_head)
    "avx2_head": {
        "frexp_live": """\
/* frexp of an a that is a positive finite float wherever x is a number, NaN wherever x is NaN
   (backends.live_lanes.float32_values): subnormals scaled by 2**24 first (exactly), no zero or
   infinity case; NaN still gives m = a and e = 0. */
static inline __m256 {p}_frexp_m_live(__m256 a)
{{
    __m256 s = _mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(0x1p24f)), _mm256_cmp_ps(a, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ));
    __m256 m = _mm256_or_ps(_mm256_andnot_ps(_mm256_set1_ps(INFINITY), s), _mm256_set1_ps(0.5f));
    return _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}}

static inline __m256 {p}_frexp_e_live(__m256 a)
{{
    __m256 sub = _mm256_cmp_ps(a, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    __m256 s = _mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(0x1p24f)), sub);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(s), 23),
                                 _mm256_add_epi32(_mm256_set1_epi32(126), _mm256_and_si256(_mm256_castps_si256(sub), _mm256_set1_epi32(24))));
    return _mm256_andnot_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), _mm256_cvtepi32_ps(e));
}}
""",
    },
    "avx2_f64": {
        "copysign": """\
static inline __m256d {p}_copysign(__m256d a, __m256d b)
{{
    const __m256d sign = _mm256_set1_pd(-0.0);
    return _mm256_or_pd(_mm256_andnot_pd(sign, a), _mm256_and_pd(sign, b));
}}
""",
        "ldexp": """\
/* a * 2**trunc(k), k clamped to [-{LC}, {LC}]: 2**n is a normal double (its bits built from n, which
   vcvttpd2dq truncates), so the product is the one rounding.  max/min keep a NaN k NaN (they return
   their second operand then); the blend gives NaN for it, as the semantics say. */
static inline __m256d {p}_ldexp(__m256d a, __m256d k)
{{
    __m256d kc = _mm256_min_pd(_mm256_set1_pd({LC}.0), _mm256_max_pd(_mm256_set1_pd(-{LC}.0), k));
    __m256i n = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(kc));
    __m256d s = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n, _mm256_set1_epi64x(1023)), 52));
    return _mm256_blendv_pd(_mm256_mul_pd(a, s), _mm256_set1_pd(NAN), _mm256_cmp_pd(k, k, _CMP_UNORD_Q));
}}

/* the same for a k that is already an integer (a round or floor result): kc + 1.5 * 2**52 + 1023 is
   exact and its low 11 mantissa bits are kc + 1023, which the shift moves into the exponent field
   (the 2**51 bit above them leaves the register): 2**kc with no integer conversion */
static inline __m256d {p}_ldexp_n(__m256d a, __m256d k)
{{
    __m256d kc = _mm256_min_pd(_mm256_set1_pd({LC}.0), _mm256_max_pd(_mm256_set1_pd(-{LC}.0), k));
    __m256i bits = _mm256_castpd_si256(_mm256_add_pd(kc, _mm256_set1_pd(0x1.8p52 + 1023.0)));
    __m256d s = _mm256_castsi256_pd(_mm256_slli_epi64(bits, 52));
    return _mm256_blendv_pd(_mm256_mul_pd(a, s), _mm256_set1_pd(NAN), _mm256_cmp_pd(k, k, _CMP_UNORD_Q));
}}
""",
        "ldexp2": """\
/* (a * 2**h) * 2**(n - h), h = n >> 1, n = trunc(k) clamped to [{L2_LO}, {L2_HI}] (NaN k to the lower
   end: max returns its second operand for a NaN); n in int32 lanes (vcvttpd2dq truncates), the
   powers of two built from the bits in int64 lanes. */
static inline __m256d {p}_ldexp2(__m256d a, __m256d k)
{{
    __m256d kc = _mm256_min_pd(_mm256_max_pd(k, _mm256_set1_pd({L2_LO}.0)), _mm256_set1_pd({L2_HI}.0));
    __m128i n = _mm256_cvttpd_epi32(kc);
    __m128i h = _mm_srai_epi32(n, 1);
    __m256i bias = _mm256_set1_epi64x(1023);
    __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(h), bias), 52));
    __m256d s2 = _mm256_castsi256_pd(
        _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm_sub_epi32(n, h)), bias), 52));
    return _mm256_mul_pd(_mm256_mul_pd(a, s1), s2);
}}
""",
        "frexp": """\
/* C frexp read off the bits, subnormals scaled by 2**53 into the normal range first (exactly);
   m = a and e = 0 for 0, inf and NaN.  AVX2 has no int64 -> double conversion: |e| < 2**51, so
   the bits of 1.5 * 2**52 plus e, read as a double, are 1.5 * 2**52 + e exactly. */
static inline __m256d {p}_frexp_m(__m256d a)
{{
    const __m256i emask = _mm256_set1_epi64x(0x7FF);
    __m256i u = _mm256_castpd_si256(a);
    __m256i biased = _mm256_and_si256(_mm256_srli_epi64(u, 52), emask);
    __m256d sub = _mm256_castsi256_pd(_mm256_cmpeq_epi64(biased, _mm256_setzero_si256()));
    __m256i v = _mm256_castpd_si256(_mm256_blendv_pd(a, _mm256_mul_pd(a, _mm256_set1_pd(0x1p53)), sub));
    __m256i m = _mm256_or_si256(_mm256_andnot_si256(_mm256_set1_epi64x(0x7FFLL << 52), v),
                                _mm256_set1_epi64x(1022LL << 52));
    __m256i special = _mm256_or_si256(_mm256_cmpeq_epi64(_mm256_slli_epi64(u, 1), _mm256_setzero_si256()),
                                      _mm256_cmpeq_epi64(biased, emask));
    return _mm256_blendv_pd(_mm256_castsi256_pd(m), a, _mm256_castsi256_pd(special));
}}

static inline __m256d {p}_frexp_e(__m256d a)
{{
    const __m256i emask = _mm256_set1_epi64x(0x7FF);
    const __m256d magic = _mm256_set1_pd(0x1.8p52);
    __m256i u = _mm256_castpd_si256(a);
    __m256i biased = _mm256_and_si256(_mm256_srli_epi64(u, 52), emask);
    __m256i sub = _mm256_cmpeq_epi64(biased, _mm256_setzero_si256());
    __m256i v = _mm256_castpd_si256(_mm256_blendv_pd(a, _mm256_mul_pd(a, _mm256_set1_pd(0x1p53)),
                                                     _mm256_castsi256_pd(sub)));
    __m256i e = _mm256_sub_epi64(_mm256_and_si256(_mm256_srli_epi64(v, 52), emask),
                                 _mm256_add_epi64(_mm256_set1_epi64x(1022), _mm256_and_si256(sub, _mm256_set1_epi64x(53))));
    __m256i special = _mm256_or_si256(_mm256_cmpeq_epi64(_mm256_slli_epi64(u, 1), _mm256_setzero_si256()),
                                      _mm256_cmpeq_epi64(biased, emask));
    e = _mm256_andnot_si256(special, e);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(magic), e)), magic);
}}
""",
        "ldexp_live": """\
/* ldexp for a k that is an integer in [-{LC}, {LC}] wherever x is a number, of an a that is NaN
   wherever x is NaN (backends.live_lanes): 2**k from the bits of k + 1.5 * 2**52 + 1023, no clamp
   and no NaN blend (a NaN a makes the product NaN whatever the bits of a NaN k give). */
static inline __m256d {p}_ldexp_live(__m256d a, __m256d k)
{{
    __m256i bits = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(0x1.8p52 + 1023.0)));
    return _mm256_mul_pd(a, _mm256_castsi256_pd(_mm256_slli_epi64(bits, 52)));
}}
""",
        "frexp_live": """\
/* frexp of an a that is a normal double wherever x is a number, NaN wherever x is NaN
   (backends.live_lanes): no subnormal scaling, no zero or infinity case; NaN still gives m = a and
   e = 0.  e comes from the biased exponent added to the bits of 1.5 * 2**52 - 1022. */
static inline __m256d {p}_frexp_m_live(__m256d a)
{{
    __m256d m = _mm256_or_pd(_mm256_andnot_pd(_mm256_set1_pd(INFINITY), a), _mm256_set1_pd(0.5));
    return _mm256_blendv_pd(m, a, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
}}

static inline __m256d {p}_frexp_e_live(__m256d a)
{{
    const __m256d magic = _mm256_set1_pd(0x1.8p52);
    __m256i biased = _mm256_and_si256(_mm256_srli_epi64(_mm256_castpd_si256(a), 52), _mm256_set1_epi64x(0x7FF));
    __m256i bits = _mm256_add_epi64(biased, _mm256_set1_epi64x(0x4338000000000000LL - 1022));
    return _mm256_andnot_pd(_mm256_cmp_pd(a, a, _CMP_UNORD_Q), _mm256_sub_pd(_mm256_castsi256_pd(bits), magic));
}}
""",
    },
}

# Cheaper forms of ldexp and frexp in a float64-inside program's body, where the lanes its float32
# tail leaves to it bound their arguments (``backends.live_lanes``): (template, helper or None).
# AVX2 only, for now: there they replace some twenty integer and blend instructions per half.  The
# AVX-512 forms would save one or two (vscalefpd alone for an integral k in the clamp's range,
# vgetmantpd alone for a normal argument), and stay out until an AVX-512 host has checked them on
# all 2^32 inputs (benchmarks/simd_exact.py), as every form here was.
_LIVE_FORMS = {
    "avx512": {},
    "avx2": {"ldexp": ("{p}_ldexp_live({0}, {1})", "ldexp_live"),
             "frexp_m": ("{p}_frexp_m_live({0})", "frexp_live"),
             "frexp_e": ("{p}_frexp_e_live({0})", "frexp_live")},
}
_NORMAL64 = 2.0**-1022


def live_forms(program: Program, root: int, tail: tuple[int, ...], isa: str) -> dict[tuple, tuple[str, str | None]]:
    """{(op, argument names): (template, helper)} for the body's ldexp and frexp nodes that the
    tail's live lanes allow in their cheaper form: ldexp of an integral k whose range there lies in
    [-LDEXP_CLAMP, LDEXP_CLAMP]; frexp of an argument whose range there holds only normal numbers;
    in both, where NaN inputs are live, an a (argument) that is NaN on them."""
    if not _LIVE_FORMS[isa]:
        return {}
    live = live_inputs(program, tail)
    body = Program(program.nodes, root)
    ranges, nan_x = node_ranges(body, live), nan_follows_x(body)
    name = lambda j: "x" if j == 0 else f"v{j}"  # noqa: E731
    out = {}
    for _, n in _live_ops(body):
        form = _LIVE_FORMS[isa].get(n.op)
        if form is None or (live.nan and not nan_x[n.args[0]]):
            continue
        if n.op == "ldexp":
            k = ranges[n.args[1]]
            if program.nodes[n.args[1]].op not in _INTEGRAL_OPS or k is None or not -LDEXP_CLAMP <= k[0] <= k[1] <= LDEXP_CLAMP:
                continue
        else:
            a = ranges[n.args[0]]
            if a is None or not (a[0] >= _NORMAL64 or a[1] <= -_NORMAL64):
                continue
        out[n.op, tuple(name(j) for j in n.args)] = form
    return out


def one_multiply_simd(program: Program, isa: str) -> dict[tuple, tuple[str, str | None]]:
    """{(op, argument names): (template, helper)} for a float32 program's ldexp nodes whose k the
    program bounds to float32's normal exponents for every input (``live_lanes.one_multiply_ldexps``):
    one multiply by 2**k (``ldexp_live``).  AVX2 only, as the other live forms."""
    return one_multiply_forms(program, {"ldexp": ("{p}_ldexp_live({0}, {1})", "ldexp_live")}) if isa == "avx2" else {}


def _drop_unused(lines: list[str], result: str | tuple[str, ...]) -> list[str]:
    """The assignments whose variable a later line (or the result, or each of several) reads: a
    constant a cheaper form no longer needs (the zero of an and/andnot select) would be an unused
    variable."""
    kept: list[str] = []
    needed = {result} if isinstance(result, str) else set(result)
    for line in reversed(lines):
        var = line.split("=", 1)[0].split()[-1]
        if var in needed:
            kept.append(line)
            needed.update(re.findall(r"\bv\d+\b", line.split("=", 1)[1]))
    return kept[::-1]


# A select's arm of at least this many ops, whose other arm computes something too (at least
# _LAZY_OTHER ops), is computed only when a lane takes it: a fast path and a slow path (the sin and
# cos frames' table-free Payne-Hanek reduction for |x| >= 2^20), as SLEEF branches on its vectors.
_LAZY_MIN = 24
_LAZY_OTHER = 4


def _arm_nodes(program: Program, live: list[bool], selects: list[int], side: int) -> set[int]:
    """The nodes only the ``side`` arm (2: taken, 3: not taken) of ``selects`` (one condition) uses."""
    consumers: dict[int, list[tuple[int, int]]] = {}
    for j, n in enumerate(program.nodes):
        if live[j]:
            for pos, a in enumerate(n.args):
                consumers.setdefault(a, []).append((j, pos))
    chosen = set(selects)
    arm: set[int] = set()
    for i in range(len(program.nodes) - 1, 0, -1):
        uses = consumers.get(i, [])
        if live[i] and i != program.output and uses and all(
                (j in chosen and pos == side) or j in arm for j, pos in uses):
            arm.add(i)
    return arm


def lazy_arms(program: Program) -> list[tuple[tuple[int, int], int, frozenset[int]]]:
    """((a, b), side, nodes) for each select arm worth a branch (see ``_LAZY_MIN``): the selects
    ``a < b ? c : d`` on one condition, side 3 (d: needed where a < b fails) or 2; arms never
    overlap.  Skipping an arm no lane takes leaves every result as it is."""
    live = program.live()
    by_cond: dict[tuple[int, int], list[int]] = {}
    for j, n in enumerate(program.nodes):
        if live[j] and n.op == "select_lt":
            by_cond.setdefault((n.args[0], n.args[1]), []).append(j)

    def ops(nodes: set[int]) -> int:
        return sum(program.nodes[i].op not in ("const", "param") for i in nodes)

    found = []
    for cond, sel in by_cond.items():
        for side in (2, 3):
            arm = _arm_nodes(program, live, sel, side)
            if ops(arm) >= _LAZY_MIN and ops(_arm_nodes(program, live, sel, 5 - side)) >= _LAZY_OTHER:
                found.append((cond, side, frozenset(arm), frozenset(sel)))
    kept: list[tuple[tuple[int, int], int, frozenset[int], frozenset[int]]] = []
    for cond, side, arm, sel in sorted(found, key=lambda g: len(g[2])):
        if all(not (arm & a or sel & a or s & arm) for _, _, a, s in kept):
            kept.append((cond, side, arm, sel))
    return [(cond, side, arm) for cond, side, arm, _ in kept]


def _with_lazy_arms(program: Program, lines: list[str], isa: str, lanes: dict, V: str,
                    flags: dict[tuple[int, int], str] | None = None) -> list[str]:
    """``lines`` (one per node, ``v<i>``) with each lazy arm moved into an ``if`` on its select's
    compare mask (or on the int parameter ``flags`` names for its condition, when the caller
    tests the whole float vector once: ``hoisted_arms``), placed before the first select that reads it.  A select whose other value is
    already computed there starts as that value and blends the arm in inside the ``if`` (no blend
    at all where no lane takes the arm); any other select reading the arm blends after it, from
    arm values declared before the ``if`` (zero where no lane takes the arm: never selected then)."""
    arms = lazy_arms(program)
    if not arms:
        return lines
    live = program.live()
    by_var = {line.split("=", 1)[0].split()[-1]: line for line in lines}
    var_of = lambda i: "x" if i == 0 else f"v{i}"  # noqa: E731
    bare = lambda text: text.replace(f"const {V} ", "", 1)  # noqa: E731
    moved = set().union(*(arm for _, _, arm in arms))
    defined, inside = {"x"}, set()
    out: list[str] = []
    for line in lines:
        var = line.split("=", 1)[0].split()[-1]
        i = int(var[1:])
        if i in moved or i in inside:
            continue
        node = program.nodes[i]
        for k, (cond, side, arm) in enumerate(arms):
            if node.op == "select_lt" and (node.args[0], node.args[1]) == cond and node.args[side] in arm:
                arms[k] = (cond, side, frozenset())  # emitted once, before its first select
                a, b = (var_of(c) for c in cond)
                body = [i2 for i2 in sorted(arm) if f"v{i2}" in by_var]
                sels = [j for j, n in enumerate(program.nodes) if live[j] and n.op == "select_lt"
                        and (n.args[0], n.args[1]) == cond and n.args[side] in arm]
                early = [j for j in sels if var_of(program.nodes[j].args[5 - side]) in defined]
                read = {program.nodes[j].args[side] for j in sels if j not in early}
                if isa == "avx512":
                    full = "0x" + "F" * (int(lanes["M"].removeprefix("__mmask")) // 4)
                    test = f"_mm512_cmp_{lanes['s']}_mask({a}, {b}, _CMP_LT_OQ)"
                else:
                    full = "0x" + "F" * (2 if lanes["s"] == "ps" else 1)
                    test = f"_mm256_movemask_{lanes['s']}(_mm256_cmp_{lanes['s']}({a}, {b}, _CMP_LT_OQ))"
                cmp = f"({test} != {full})" if side == 3 else f"({test} != 0)"
                if flags and cond in flags:
                    cmp = f"({flags[cond]})"
                out += [f"    {V} v{j} = {var_of(program.nodes[j].args[5 - side])};" for j in early]
                out += [f"    {V} v{r} = {'_mm512' if isa == 'avx512' else '_mm256'}_setzero_{lanes['s']}();"
                        for r in sorted(read)]
                out.append(f"    if {cmp} {{ /* some lane takes this arm of v{i}: {len(body)} nodes */")
                out += ["    " + (bare(by_var[f"v{i2}"]) if i2 in read else by_var[f"v{i2}"]) for i2 in body]
                out += ["    " + bare(by_var[f"v{j}"]) for j in early]
                out.append("    }")
                inside |= set(early)
                defined |= {f"v{j}" for j in early}
        if i not in inside:
            out.append(line)
            defined.add(var)
    return out


def hoisted_arms(program: Program, isa: str) -> list[tuple[tuple[int, int], int]]:
    """(condition, side) of the lazy arms of a float64-inside program whose test can run once on
    the float vector before it is split into double halves: a compare of x, |x| or -x with a
    float32 constant (``_f32_operand``) is the same on float lanes as on the widened doubles, so
    one test of 8 floats replaces a test per half, and a half runs the arm whenever some lane of
    the vector takes it (running it where none of its own lanes does leaves every result as it is).
    AVX2 only until an AVX-512 host checks the 16-float form on every input."""
    if isa != "avx2":
        return []
    return [(cond, side) for cond, side, _ in lazy_arms(program)
            if _f32_operand(program, cond[0]) and _f32_operand(program, cond[1])]


def _arm_tests(program: Program, hoisted: list[tuple[tuple[int, int], int]], s: str) -> list[str]:
    """The hoisted arms' tests as C int expressions on ``x`` (lanes ``s``: ps for the float vector,
    pd for a double half): some lane takes the arm."""
    full = "0xFF" if s == "ps" else "0xF"
    out = []
    for (a, b), side in hoisted:
        test = (f"_mm256_movemask_{s}(_mm256_cmp_{s}({_x_operand(program, a, 'avx2', s)}, "
                f"{_x_operand(program, b, 'avx2', s)}, _CMP_LT_OQ))")
        out.append(f"({test} != {full})" if side == 3 else f"({test} != 0)")
    return out


# --- the float32 tail and head of a float64-inside program (``backends.float32_edges``) --------

def _x_operand(program: Program, j: int, isa: str, s: str = "ps") -> str:
    """An ``_f32_operand`` as a vector expression on lanes ``s`` (ps: float, pd: double)."""
    kind = _f32_operand(program, j)
    F = "f" if s == "ps" else ""
    if kind in ("abs", "neg"):
        return SIMD_EXPR[isa][kind].format("x", s=s, F=F)
    if kind == "x":
        return "x"
    dt = F32 if s == "ps" else np.dtype("float64")
    return f"{ISAS[isa].pre}_set1_{s}({_c_literal(_rounded(program.nodes[j].value, dt), dt)})"


_HASH_SLOTS = 8  # one __m256 of keys: vpermps picks a lane by the hash's top three bits


def exception_hash(keys: list[float]) -> int | None:
    """An odd multiplier M under which the float32 bit patterns of ``keys`` land in distinct slots
    ((bits * M mod 2^32) >> 29), found by a fixed search; None if there are too many keys."""
    if len(keys) > _HASH_SLOTS:
        return None
    bits = [int(np.float32(k).view(np.uint32)) for k in keys]
    m = 0x9E3779B1  # the golden-ratio multiplier, then its odd successors: the same M every time
    for _ in range(1 << 16):
        if len({(b * m) % (1 << 32) >> 29 for b in bits}) == len(bits):
            return m
        m = (m + 2) % (1 << 32)
    return None


def _exception_input(program: Program, t: int) -> float:
    """The c of an exception select's x == c."""
    return program.nodes[_f32_condition(program, program.nodes[t])[1]].value


def _exception_runs(program: Program, tail: tuple[int, ...]) -> dict[int, list[int]]:
    """{first tail node: the run} for runs of three or more consecutive exception selects
    (x == c gives a constant, else the chain) with distinct c and a hash multiplier."""
    runs, cur = {}, []

    def close():
        keys = [_exception_input(program, t) for t in cur]
        if len(cur) >= 3 and len(set(keys)) == len(keys) and exception_hash(keys) is not None:
            runs[cur[0]] = list(cur)

    for t in tail:
        n = program.nodes[t]
        cond = _f32_condition(program, n) if n.op == "select_lt" else None
        if (cond is not None and cond[0] == "eq" and program.nodes[n.args[2]].op in ("const", "param")
                and (not cur or n.args[3] == cur[-1])):
            cur.append(t)
        else:
            close()
            cur = []
    close()
    return runs


def _exception_hash_lines(program: Program, run: list[int], prev: str) -> tuple[list[str], str]:
    """AVX2 lines for a run of exception selects: one hash of x's bits picks the only exception x
    can equal (NaN in empty slots: never equal), one compare, and the blend only where a lane hit."""
    keys = [_exception_input(program, t) for t in run]
    vals = [program.nodes[program.nodes[t].args[2]].value for t in run]
    m = exception_hash(keys)
    slot = {int(np.float32(k).view(np.uint32)) * m % (1 << 32) >> 29: (k, v) for k, v in zip(keys, vals)}
    lit = lambda v: _c_literal(_rounded(v, F32), F32)  # noqa: E731
    ks = ", ".join(lit(slot[i][0]) if i in slot else "NAN" for i in range(_HASH_SLOTS))
    vs = ", ".join(lit(slot[i][1]) if i in slot else "0.0f" for i in range(_HASH_SLOTS))
    t = run[-1]
    return [f"    /* {len(run)} exceptions (x == c gives its value): a multiplicative hash of x's bits picks the only one x can equal */",
            f"    const __m256i h{t} = _mm256_srli_epi32(_mm256_mullo_epi32(_mm256_castps_si256(x), _mm256_set1_epi32((int){m:#010x}u)), 29);",
            f"    const __m256 e{t} = _mm256_cmp_ps(x, _mm256_permutevar8x32_ps(_mm256_setr_ps({ks}), h{t}), _CMP_EQ_OQ);",
            f"    const __m256 t{t} = _mm256_movemask_ps(e{t}) ? _mm256_blendv_ps({prev}, "
            f"_mm256_permutevar8x32_ps(_mm256_setr_ps({vs}), h{t}), e{t}) : {prev};"], f"t{t}"


def _f32_tail_lines(program: Program, root: int, tail: tuple[int, ...], isa: str, y: str) -> list[str]:
    """The tail on float lanes: ``y`` holds the root's value rounded to float.  On AVX2 a run of
    three or more exceptions is one hash lookup (``exception_hash``) instead of a compare and a
    blend each."""
    P = ISAS[isa].pre
    V = ISAS[isa].vec
    runs = _exception_runs(program, tail) if isa == "avx2" else {}
    skip: set[int] = set()

    def lit(j: int) -> str:
        return f"{P}_set1_ps({_c_literal(_rounded(program.nodes[j].value, F32), F32)})"

    names = {root: y}
    out = []
    for t in tail:
        n = program.nodes[t]
        if t in skip:
            continue
        if t in runs:
            lines, last = _exception_hash_lines(program, runs[t], names[n.args[3]])
            out += lines
            names[runs[t][-1]] = last
            skip |= set(runs[t])
            continue
        if n.op == "cvt_f32":
            names[t] = names[n.args[0]]
            continue
        cond = _f32_condition(program, n)
        val = lambda j: names.get(j) or ("x" if j == 0 else lit(j))  # noqa: E731
        c, d = val(n.args[2]), val(n.args[3])
        if cond[0] == "eq":
            mask = (f"_mm512_cmp_ps_mask(x, {lit(cond[1])}, _CMP_EQ_OQ)" if isa == "avx512"
                    else f"_mm256_cmp_ps(x, {lit(cond[1])}, _CMP_EQ_OQ)")
        else:
            a, b = _x_operand(program, cond[1], isa), _x_operand(program, cond[2], isa)
            mask = (f"_mm512_cmp_ps_mask({a}, {b}, _CMP_LT_OQ)" if isa == "avx512"
                    else f"_mm256_cmp_ps({a}, {b}, _CMP_LT_OQ)")
        blend = (f"_mm512_mask_blend_ps({mask}, {d}, {c})" if isa == "avx512"
                 else f"_mm256_blendv_ps({d}, {c}, {mask})")
        out.append(f"    const {V} t{t} = {blend};")
        names[t] = f"t{t}"
    return out + [f"    return {names[tail[-1]] if tail else y};"]


def _fused(op: str, args: list[str], negated: dict[str, str], isa: str) -> str | None:
    """One instruction for an op whose arguments say more than its table entry sees (AVX2): an fma
    of a negated operand is vfnmadd (-(a b) + c) or vfmsub (a b - c), the same single rounding of
    the same exact value; a select of its own compare's operands is vminps or vmaxps, whose
    definitions (a < b ? a : b and b > a ? b : a, the second operand for NaN or equal) are the
    select's to the bit, signed zeros included.  The negation, if nothing else reads it, is then
    dropped.  A template with ``{0}``... placeholders, or None."""
    if isa != "avx2":
        return None
    if op == "fma":
        a, b, c = args
        if b in negated:
            return f"_mm256_fnmadd_{{s}}({{0}}, {negated[b]}, {{2}})"
        if a in negated:
            return f"_mm256_fnmadd_{{s}}({negated[a]}, {{1}}, {{2}})"
        if c in negated:
            return f"_mm256_fmsub_{{s}}({{0}}, {{1}}, {negated[c]})"
    if op == "select_lt":
        if args[2] == args[0] and args[3] == args[1]:
            return "_mm256_min_{s}({0}, {1})"
        if args[2] == args[1] and args[3] == args[0]:
            return "_mm256_max_{s}({1}, {0})"
    return None


def _var(line: str) -> str:
    """The variable an assignment line defines."""
    return line.split("=", 1)[0].split()[-1]


def _float32_head_lines(program: Program, root: int, tail: tuple[int, ...], head: frozenset[int],
                        frontier: tuple[int, ...], isa: str, pf: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The head's nodes on float lanes, up to its frontier values, and the (table, helper) pairs
    they call (prefixed ``pf``): the float32 programs' forms, except frexp of an argument that is a
    positive finite float on every live lane (log's x), which skips the zero and infinity cases."""
    if not head:
        return [], []
    s, fl = ISAS[isa], _LANES[isa, "float32"]
    negated = {f"v{i}": ("x" if program.nodes[i].args[0] == 0 else f"v{program.nodes[i].args[0]}")
               for i in head if program.nodes[i].op == "neg"}
    body, live = Program(program.nodes, root), live_inputs(program, tail)
    facts, nan_x = float32_values(body, live), nan_follows_x(body)
    name = lambda j: "x" if j == 0 else f"v{j}"  # noqa: E731
    live_frexp = {(n.op, name(n.args[0])) for i, n in enumerate(program.nodes)
                  if i in head and n.op in ("frexp_m", "frexp_e") and facts[n.args[0]][0] > 0
                  and facts[n.args[0]][1] < math.inf and (nan_x[n.args[0]] or not live.nan)}
    used: list[tuple[str, str]] = []

    def expr(op: str, args: list[str]) -> str:
        fused = _fused(op, args, negated, isa)
        text = fused if fused is not None else SIMD_EXPR[isa][op]
        helper = (isa, _NEEDS.get(op))
        if args and (op, args[0]) in live_frexp:
            text, helper = "{p}_%s_live({0})" % op, ("avx2_head", "frexp_live")
        if helper[1] is not None and helper not in used:
            used.append(helper)
        return text.replace("{cvt}", fl["cvt"]).format(*args, P=s.pre, p=pf, s=fl["s"], F=fl["F"])

    leaf = lambda i, v: f"{s.pre}_set1_ps({_c_literal(_rounded(v, F32), F32)})"  # noqa: E731
    line = lambda var, e: f"    const {s.vec} {var} = {e};"  # noqa: E731
    got: dict[str, str] = {}
    for f in frontier:
        got.update((_var(ln), ln) for ln in _body(Program(program.nodes, f), leaf, expr, line)[0])
    lines = [got[v] for v in sorted(got, key=lambda v: int(v[1:]))]
    return ([f"    /* the float32 head: {len(head)} nodes whose values are float32s on every live lane, each op exact "
             "(live_lanes.float32_values), once on the float lanes */"]
            + _drop_unused(lines, tuple(f"v{f}" for f in frontier))), used


def isas_for(dtype: str = "float32") -> list[str]:
    """The ISAs that have vector functions for programs of ``dtype`` (both, for both dtypes)."""
    return list(ISAS)


def vector_function(program: Program, name: str, isa: str, prefix: str, dtype: str = "float32") -> str:
    """``static inline VEC NAME_vW(VEC x)`` (with its helpers, named ``PREFIX_isa_*``), guarded by
    the ISA's macros: float in and out, computed in ``dtype`` (float64: in two halves of 8 or 4
    doubles, ``NAME_d8``/``NAME_d4``, each result rounded to float once, as the scalar
    mixed-precision export does)."""
    if isa not in ISAS:
        raise ValueError(f"unknown vector ISA {isa!r}; choose from {', '.join(ISAS)}")
    if dtype not in ("float32", "float64") or isa not in isas_for(dtype):
        raise ValueError(f"no {isa} vector function for {dtype} programs")
    s = ISAS[isa]
    dt = np.dtype(dtype)
    lanes = _LANES[isa, dtype]
    table = _HELPERS[f"{isa}_f64" if isa == "avx2" and dtype == "float64" else isa]
    p = f"{prefix}_{isa}"
    fields = dict(p=p, LC=LDEXP_CLAMP, L2_LO=LDEXP2_RANGE[dtype][0], L2_HI=LDEXP2_RANGE[dtype][1], **lanes)
    root, tail = float32_tail(program) if dtype == "float64" else (program.output, ())
    body_prog = Program(program.nodes, root) if tail else program
    hoisted = hoisted_arms(body_prog, isa) if dtype == "float64" else []
    forms = live_forms(program, root, tail, isa) if tail else one_multiply_simd(program, isa) if dtype == "float32" else {}
    head, frontier = (float32_head(program, root, tail) if dtype == "float64" and isa == "avx2" and not hoisted
                      and not lazy_arms(body_prog) else (frozenset(), ()))
    used = {n.op for _, n in _live_ops(program)
            if (n.op, tuple("x" if j == 0 else f"v{j}" for j in n.args)) not in forms}  # in their usual form
    helpers = [h for h in table if any(_NEEDS.get(op) == h for op in used) or any(f[1] == h for f in forms.values())]
    out = [f"#if {s.guard}", "#include <immintrin.h>"]
    out += [table[h].format(**fields) for h in helpers]
    pf = f"{p}_f32"  # the head's float-lane helpers
    head_lines, head_helpers = _float32_head_lines(program, root, tail, head, frontier, isa, pf)
    if head:
        ffields = dict(p=pf, LC=LDEXP_CLAMP, L2_LO=LDEXP2_RANGE["float32"][0], L2_HI=LDEXP2_RANGE["float32"][1],
                       **_LANES[isa, "float32"])
        out += [_HELPERS[t][h].format(**ffields) for t, h in head_helpers]
    half = s.width // 2  # doubles per register
    core = f"{name}_{s.suffix}" if dtype == "float32" else f"{name}_d{half}"
    body_fn = f"{name}_h{half}" if tail or hoisted else core
    flags = {cond: f"arm{k}" for k, (cond, _) in enumerate(hoisted)}
    V = lanes["V"]
    params = "".join(f", int {f}" for f in flags.values()) + "".join(f", {V} v{f}" for f in frontier)
    what = f"{s.width} floats at once" if dtype == "float32" else f"{half} doubles at once (the float64 program)"
    if tail:
        what = f"{half} doubles at once: the float64 program up to v{root}, before its float32 tail"
    if hoisted:
        what += (f"; {', '.join(flags.values())}: whether some lane of the caller's vector takes each long "
                 "select arm (hoisted_arms)")
    if head:
        what += f"; {', '.join(f'v{f}' for f in frontier)}: the float32 head's values (float32_head), widened"
    out += [f"/* {name}() on {what} ({isa}); the same bits as the scalar function, lane by lane */",
            f"static inline {V} {body_fn}({V} x{params})", "{"]
    if not any(0 in n.args for i, n in _live_ops(body_prog) if i not in head):
        out.append("    (void)x; /* this program does not read x */" if not head else
                   "    (void)x; /* the body reads x only through the float32 head */")
    integral = {f"v{i}" for i, n in enumerate(program.nodes) if n.op in _INTEGRAL_OPS}
    plus_zero = {f"v{i}" for i, n in enumerate(program.nodes)
                 if n.op in ("const", "param") and _rounded(n.value, dt) == 0.0 and math.copysign(1.0, _rounded(n.value, dt)) > 0}

    negated = {f"v{i}": ("x" if n.args[0] == 0 else f"v{n.args[0]}")
               for i, n in enumerate(program.nodes) if n.op == "neg"}

    def expr(op: str, args: list[str]) -> str:
        fused = _fused(op, args, negated, isa)
        if fused is not None:
            return fused.format(*args, P=s.pre, s=lanes["s"])
        cheap = _INTEGRAL_K[f"{isa}_f64" if isa == "avx2" and dtype == "float64" else isa]
        table = cheap if op in cheap and args[1] in integral else SIMD_EXPR[isa]
        text = forms[op, tuple(args)][0] if (op, tuple(args)) in forms else table[op]
        if op == "select_lt" and isa in _ZERO_SELECT:
            zero = next((k for k in (2, 3) if args[k] in plus_zero), None)
            if zero is not None:
                text = _ZERO_SELECT[isa][zero].replace("{z}", "{%d}" % (5 - zero))
        return text.replace("{cvt}", lanes["cvt"]).format(*args, P=s.pre, p=p, s=lanes["s"], F=lanes["F"])

    leaf = lambda i, v: f"{s.pre}_set1_{lanes['s']}({_c_literal(_rounded(v, dt), dt)})"  # noqa: E731
    line = lambda var, e: f"    const {V} {var} = {e};"  # noqa: E731
    lines, result = _body(body_prog, leaf, expr, line)
    lines = [ln for ln in lines if _var(ln) not in {f"v{i}" for i in head}]
    lines = _with_lazy_arms(body_prog, _drop_unused(lines, result), isa, lanes, V, flags)
    out += lines + [f"    return {result};", "}"]
    half_tests = "".join(f", {t}" for t in _arm_tests(body_prog, hoisted, "pd"))
    if tail:  # the whole float64 program: the tail's few nodes after the root's value
        need = {f"v{i}" for i in tail_nodes(program, root, tail)}
        full, fres = _body(program, leaf, expr, line)
        head_need = {f"v{i}" for f in frontier for i in _cone(program, f) if i}
        kept = [ln for ln in full if _var(ln) in need and _var(ln) not in head_need]
        out += ["", f"/* {name}() on {half} doubles at once (the float64 program, {isa}) */",
                f"static inline {V} {core}({V} x)", "{"]
        out += [ln for ln in full if _var(ln) in head_need]  # the head, here in double lanes
        call = "".join(f", v{f}" for f in frontier)
        out += [f"    const {V} v{root} = {body_fn}(x{half_tests}{call});"]
        out += _drop_unused(kept, fres) + [f"    return {fres};", "}"]
    elif hoisted:
        out += ["", f"/* {name}() on {half} doubles at once (the float64 program, {isa}) */",
                f"static inline {V} {core}({V} x)", "{", f"    return {body_fn}(x{half_tests});", "}"]
    if dtype == "float64":  # float in and out: two halves widened exactly, each result rounded once
        lo, hi, join = (("_mm512_castps512_ps256({})", "_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd({}), 1))",
                         "_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(rlo)), "
                         "_mm256_castps_pd(rhi), 1))") if isa == "avx512" else
                        ("_mm256_castps256_ps128({})", "_mm256_extractf128_ps({}, 1)",
                         "_mm256_insertf128_ps(_mm256_castps128_ps256(rlo), rhi, 1)"))
        P, H = s.pre, "__m256" if isa == "avx512" else "__m128"
        tell = (f"each result rounded to float once, then the program's last {len(tail)} nodes on float lanes "
                f"(float32_tail)" if tail else "each result rounded to float once")
        if hoisted:
            tell += "; each long select arm's test once on the float lanes"
        if head:
            tell += f"; the float32 head ({len(head)} nodes) once on the float lanes first"
        out += ["", f"/* {name}() on {s.width} floats: two halves widened exactly, {tell} */",
                f"static inline {s.vec} {name}_{s.suffix}({s.vec} x)", "{"]
        out += [f"    const int {f} = {t};" for f, t in zip(flags.values(), _arm_tests(body_prog, hoisted, "ps"))]
        out += head_lines
        for r, half_of in (("rlo", lo), ("rhi", hi)):
            args = "".join(f", {f}" for f in flags.values()) + "".join(
                f", {P}_cvtps_pd({half_of.format(f'v{f}')})" for f in frontier)
            out.append(f"    {H} {r} = {P}_cvtpd_ps({body_fn}({P}_cvtps_pd({half_of.format('x')}){args}));")
        if tail:
            out += [f"    const {s.vec} y = {join};"] + _f32_tail_lines(program, root, tail, isa, "y") + ["}"]
        else:
            out += [f"    return {join};", "}"]
    out += [f"#endif /* {isa} */", ""]
    return "\n".join(out)


def vector_functions(program: Program, name: str, prefix: str, dtype: str = "float32") -> str:
    """Every vector function of ``name`` for a ``dtype`` program (each under its own guard)."""
    return "\n".join(vector_function(program, name, isa, prefix, dtype) for isa in isas_for(dtype))


def array_function(name: str, scalar: str, vector: str, storage: str = "", dtype: str = "float32") -> str:
    """``void NAME(const float *x, float *y, size_t n)``: the widest vector function the build
    enables (``VECTOR_v16``, else ``VECTOR_v8``), the scalar ``SCALAR`` for the tail and for
    builds with none; ``storage`` e.g. ``static inline``."""
    head = f"{storage + ' ' if storage else ''}void {name}(const float *x, float *y, size_t n)"
    body = ["/* y[i] = f(x[i]) for i < n; y may be x itself (each block is read before it is written),",
            "   otherwise the two must not overlap */", head, "{", "    size_t i = 0;"]
    for k, isa in enumerate(ISAS[i] for i in isas_for(dtype)):
        body += [f"#{'if' if k == 0 else 'elif'} {isa.guard}",
                 f"    for (; i + {isa.width} <= n; i += {isa.width})",
                 f"        {isa.pre}_storeu_ps(y + i, {vector}_{isa.suffix}({isa.pre}_loadu_ps(x + i)));"]
    body += ["#endif", "    for (; i < n; i++)", f"        y[i] = {scalar}(x[i]);", "}", ""]
    return "\n".join(body)


def simd_entry_points(program: Program, name: str, dtype: str = "float32") -> str:
    """What a C export with float input and output appends after its scalar ``NAME``: its vector
    functions ``NAME_v16`` and ``NAME_v8`` and ``static inline void
    NAME_array(const float *x, float *y, size_t n)`` on the widest the build enables."""
    guard = f"AUTONUMERICS_{name.upper()}_SIMD_H"
    widths = "16 (AVX-512) or 8 (AVX2) floats"
    return "\n".join([
        "", f"/* {name}() on {widths} at once, where the build enables the ISA",
        "   (-march=x86-64-v4, -march=x86-64-v3 or -march=native): explicit intrinsics, the same bits as",
        f"   {name}() lane by lane; {name}_array() runs the widest over an array. */",
        f"#ifndef {guard}", f"#define {guard}", "#include <stddef.h>",
        vector_functions(program, name, name.upper(), dtype),
        array_function(f"{name}_array", name, name, storage="static inline", dtype=dtype), f"#endif /* {guard} */", ""])
