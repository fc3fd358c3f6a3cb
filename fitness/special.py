"""Special values of full-range float32 functions: what each target must return (C99 Annex F).

A full-range implementation is judged on more than its ULP error: NaN in must give NaN out,
infinities and signed zeros must come out right, overflow must give +inf and underflow +0 (or the
correctly rounded subnormal), inputs outside the mathematical domain must give NaN (``log(-1)``),
poles their infinity (``log(+-0) = -inf``), and a few results are exact by definition
(``exp(+-0) = 1``, ``log(1) = +0``, ``exp2(k) = 2^k``, ``log2(2^k) = k``).

``FullRangeSpec`` collects, per target, the frame a search fills in, the finite domain the search
scores on, and these expectations as ``SpecialCase`` rows (an input, the expected float32 result,
the rule it comes from).  An expected value of ``None`` means "finite (or the correctly rounded zero) and within
``TOLERANCE_ULP`` of the exact value" (mpmath at ``fitness.reference.PREC_BITS`` bits): used at
overflow/underflow thresholds, where the rule is "finite on this side, infinite (or zero) on the
other", and at a few landmarks; the exact cases are the ones Annex F (or the function) fixes.

``check_specials(fn, spec)`` evaluates any float32 array function (a compiled kernel, the numpy
evaluator, an exported module's function) on the cases and returns the mismatches: results are
compared bit for bit (so ``-0`` is not ``+0``), except that any NaN matches any NaN.

The registry ``FULL_RANGE`` is the target library ``autonumerics targets`` lists; ``register``
adds a user's entry (any target name ``fitness.targets.get_target`` accepts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from dsl.program import Program

from .frames import (EXP2_OVERFLOW, EXP10_OVERFLOW, EXP10_UNDERFLOW, EXP_OVERFLOW, EXP_UNDERFLOW, EXPM1_MINUS_ONE,
                     FLT_MAX, FLT_TRUE_MIN)

NAN = math.nan
INF = math.inf
FLT_MIN = float.fromhex("0x1p-126")
TOLERANCE_ULP = 1.0  # the "None" cases: finite and at most this far from the exact value


@dataclass(frozen=True)
class SpecialCase:
    x: float  # a float32 input (NaN payloads given as bit patterns via ``bits``)
    expected: float | None  # float32 result; NaN: any NaN; None: finite, within ``TOLERANCE_ULP`` of exact
    why: str
    bits: int | None = None  # the input's bit pattern, when ``x`` alone cannot say it (NaN payloads)

    def input32(self) -> np.float32:
        if self.bits is not None:
            return np.array([self.bits], np.uint32).view(np.float32)[0]
        return np.float32(self.x)


@dataclass(frozen=True)
class FullRangeSpec:
    target: str
    frame: str  # "" when no frame exists yet (free search, or the target is listed for verification only)
    search_domain: tuple[float, float]  # finite float32 domain the search scores on
    cases: tuple[SpecialCase, ...]
    description: str = ""
    input_domain: tuple[float, float] = (-INF, INF)  # where the function is real-valued (NaN outside)
    notes: tuple[str, ...] = field(default_factory=tuple)


def _nan_cases() -> list[SpecialCase]:
    return [
        SpecialCase(NAN, NAN, "NaN in, NaN out", bits=0x7FC00000),
        SpecialCase(NAN, NAN, "NaN in (negative sign), NaN out", bits=0xFFC00000),
        SpecialCase(NAN, NAN, "NaN in (signaling payload), NaN out", bits=0x7F800001),
        SpecialCase(NAN, NAN, "NaN in (payload), NaN out", bits=0x7FFFFFFF),
    ]


def _f32(v: float) -> float:
    return float(np.float32(v))


def _next_up(v: float) -> float:
    return float(np.nextafter(np.float32(v), np.float32(INF)))


def _next_down(v: float) -> float:
    return float(np.nextafter(np.float32(v), np.float32(-INF)))


def _exp_cases() -> list[SpecialCase]:
    c = _nan_cases() + [
        SpecialCase(INF, INF, "exp(+inf) = +inf"),
        SpecialCase(-INF, 0.0, "exp(-inf) = +0"),
        SpecialCase(0.0, 1.0, "exp(+0) = 1"),
        SpecialCase(-0.0, 1.0, "exp(-0) = 1"),
        SpecialCase(FLT_TRUE_MIN, 1.0, "exp(tiny) rounds to 1"),
        SpecialCase(-FLT_TRUE_MIN, 1.0, "exp(-tiny) rounds to 1"),
        SpecialCase(2.0**-30, 1.0, "exp(2^-30) rounds to 1"),
        SpecialCase(-(2.0**-30), 1.0, "exp(-2^-30) rounds to 1"),
        SpecialCase(EXP_OVERFLOW, None, "largest x with a finite exp(x): finite"),
        SpecialCase(_next_up(EXP_OVERFLOW), INF, "overflow: exp(x) = +inf above 0x1.62e42ep+6"),
        SpecialCase(100.0, INF, "overflow: exp(100) = +inf"),
        SpecialCase(FLT_MAX, INF, "overflow: exp(FLT_MAX) = +inf"),
        SpecialCase(-FLT_MAX, 0.0, "underflow: exp(-FLT_MAX) = +0"),
        SpecialCase(-200.0, 0.0, "underflow: exp(-200) = +0"),
        SpecialCase(_next_down(EXP_UNDERFLOW), 0.0, "underflow: exp(x) = +0 below -0x1.9fe368p+6"),
        SpecialCase(EXP_UNDERFLOW, None, "smallest x with exp(x) > 0: subnormal, within 1 ULP"),
        SpecialCase(-100.0, None, "subnormal result: within 1 ULP"),
        SpecialCase(-87.5, None, "result just below FLT_MIN: subnormal, within 1 ULP"),
        SpecialCase(1.0, None, "exp(1) = e, within 1 ULP"),
    ]
    return c


def _exp2_cases() -> list[SpecialCase]:
    c = _nan_cases() + [
        SpecialCase(INF, INF, "exp2(+inf) = +inf"),
        SpecialCase(-INF, 0.0, "exp2(-inf) = +0"),
        SpecialCase(0.0, 1.0, "exp2(+0) = 1"),
        SpecialCase(-0.0, 1.0, "exp2(-0) = 1"),
        SpecialCase(FLT_TRUE_MIN, 1.0, "exp2(tiny) rounds to 1"),
        SpecialCase(-FLT_TRUE_MIN, 1.0, "exp2(-tiny) rounds to 1"),
        SpecialCase(128.0, INF, "overflow: exp2(128) = +inf"),
        SpecialCase(EXP2_OVERFLOW, None, "largest x with a finite exp2(x): finite"),
        SpecialCase(FLT_MAX, INF, "overflow: exp2(FLT_MAX) = +inf"),
        SpecialCase(-150.0, 0.0, "exp2(-150) = 2^-150 rounds (ties to even) to +0"),
        SpecialCase(_next_up(-150.0), None, "exp2(x) just above 2^-150: 2^-149 within 1 ULP"),
        SpecialCase(-151.0, 0.0, "underflow: exp2(-151) = +0"),
        SpecialCase(-FLT_MAX, 0.0, "underflow: exp2(-FLT_MAX) = +0"),
    ]
    c += [SpecialCase(float(k), math.ldexp(1.0, k), f"exp2({k}) = 2^{k} exactly") for k in range(-149, 128)]
    return c


def _exp10_cases() -> list[SpecialCase]:
    """10^x is a GNU extension, not C99: the cases follow exp's (Annex F) shape; 10^k for small
    integer k is exact in float32 but, as for glibc, only asked within 1 ULP."""
    c = _nan_cases() + [
        SpecialCase(INF, INF, "exp10(+inf) = +inf"),
        SpecialCase(-INF, 0.0, "exp10(-inf) = +0"),
        SpecialCase(0.0, 1.0, "exp10(+0) = 1"),
        SpecialCase(-0.0, 1.0, "exp10(-0) = 1"),
        SpecialCase(FLT_TRUE_MIN, 1.0, "exp10(tiny) rounds to 1"),
        SpecialCase(-FLT_TRUE_MIN, 1.0, "exp10(-tiny) rounds to 1"),
        SpecialCase(EXP10_OVERFLOW, None, "largest x with a finite exp10(x): finite"),
        SpecialCase(_next_up(EXP10_OVERFLOW), INF, "overflow: exp10(x) = +inf above 0x1.344134p+5"),
        SpecialCase(100.0, INF, "overflow: exp10(100) = +inf"),
        SpecialCase(FLT_MAX, INF, "overflow: exp10(FLT_MAX) = +inf"),
        SpecialCase(-FLT_MAX, 0.0, "underflow: exp10(-FLT_MAX) = +0"),
        SpecialCase(-50.0, 0.0, "underflow: exp10(-50) = +0"),
        SpecialCase(_next_down(EXP10_UNDERFLOW), 0.0, "underflow: exp10(x) = +0 below -0x1.693c6ap+5"),
        SpecialCase(EXP10_UNDERFLOW, None, "smallest x with exp10(x) > 0: subnormal, within 1 ULP"),
        SpecialCase(-40.0, None, "subnormal result: within 1 ULP"),
    ]
    c += [SpecialCase(float(k), None, f"exp10({k}) = 10^{k}, within 1 ULP") for k in range(-10, 11) if k]
    return c


def _expm1_cases() -> list[SpecialCase]:
    return _nan_cases() + [
        SpecialCase(INF, INF, "expm1(+inf) = +inf"),
        SpecialCase(-INF, -1.0, "expm1(-inf) = -1"),
        SpecialCase(0.0, 0.0, "expm1(+0) = +0"),
        SpecialCase(-0.0, -0.0, "expm1(-0) = -0"),
        SpecialCase(FLT_TRUE_MIN, FLT_TRUE_MIN, "expm1(tiny) = tiny"),
        SpecialCase(-FLT_TRUE_MIN, -FLT_TRUE_MIN, "expm1(-tiny) = -tiny"),
        SpecialCase(2.0**-30, 2.0**-30, "expm1(2^-30) rounds to 2^-30"),
        SpecialCase(EXP_OVERFLOW, None, "largest x with a finite expm1(x): finite"),
        SpecialCase(_next_up(EXP_OVERFLOW), INF, "overflow: expm1(x) = +inf above 0x1.62e42ep+6"),
        SpecialCase(FLT_MAX, INF, "overflow: expm1(FLT_MAX) = +inf"),
        SpecialCase(-FLT_MAX, -1.0, "expm1(-FLT_MAX) = -1"),
        SpecialCase(_next_down(EXPM1_MINUS_ONE), -1.0, "expm1(x) rounds to -1 below -0x1.154244p+4"),
        SpecialCase(EXPM1_MINUS_ONE, None, "largest x with expm1(x) above -1 after rounding: within 1 ULP"),
        SpecialCase(1.0, None, "expm1(1) = e - 1, within 1 ULP"),
        SpecialCase(-1.0, None, "expm1(-1), within 1 ULP"),
        SpecialCase(0.4, None, "expm1(0.4) (k = 1, s near -0.29), within 1 ULP"),
        SpecialCase(45.0, None, "expm1(45) (k = 65), within 1 ULP"),
    ]


def _log_cases(name: str) -> list[SpecialCase]:
    """log, log2 or log10."""
    c = _nan_cases() + [
        SpecialCase(0.0, -INF, f"{name}(+0) = -inf (pole)"),
        SpecialCase(-0.0, -INF, f"{name}(-0) = -inf (pole)"),
        SpecialCase(INF, INF, f"{name}(+inf) = +inf"),
        SpecialCase(-INF, NAN, f"{name}(-inf) = NaN (domain error)"),
        SpecialCase(-1.0, NAN, f"{name}(-1) = NaN (domain error)"),
        SpecialCase(-FLT_TRUE_MIN, NAN, f"{name}(-tiny) = NaN (domain error)"),
        SpecialCase(-FLT_MAX, NAN, f"{name}(-FLT_MAX) = NaN (domain error)"),
        SpecialCase(1.0, 0.0, f"{name}(1) = +0"),
        SpecialCase(FLT_TRUE_MIN, None, f"{name} of the smallest subnormal, within 1 ULP"),
        SpecialCase(FLT_MIN, None, f"{name}(FLT_MIN), within 1 ULP"),
        SpecialCase(FLT_MAX, None, f"{name}(FLT_MAX), within 1 ULP (finite)"),
        SpecialCase(_next_down(1.0), None, f"{name} just below 1, within 1 ULP"),
        SpecialCase(_next_up(1.0), None, f"{name} just above 1, within 1 ULP"),
    ]
    if name == "log2":
        c += [SpecialCase(math.ldexp(1.0, k), float(k), f"log2(2^{k}) = {k} exactly") for k in range(-149, 128)]
    elif name == "log10":  # as glibc: 10^k within 1 ULP of k, not asked exact
        c += [SpecialCase(float(10.0**k), None, f"log10(10^{k}), within 1 ULP") for k in range(-10, 11) if k]
    else:
        c += [SpecialCase(2.0, None, "log(2), within 1 ULP"),
              SpecialCase(0.5, None, "log(1/2), within 1 ULP")]
    return c


def _log1p_cases() -> list[SpecialCase]:
    return _nan_cases() + [
        SpecialCase(-1.0, -INF, "log1p(-1) = -inf (pole)"),
        SpecialCase(INF, INF, "log1p(+inf) = +inf"),
        SpecialCase(-INF, NAN, "log1p(-inf) = NaN (domain error)"),
        SpecialCase(-2.0, NAN, "log1p(-2) = NaN (domain error)"),
        SpecialCase(_next_down(-1.0), NAN, "log1p just below -1 = NaN (domain error)"),
        SpecialCase(-FLT_MAX, NAN, "log1p(-FLT_MAX) = NaN (domain error)"),
        SpecialCase(0.0, 0.0, "log1p(+0) = +0"),
        SpecialCase(-0.0, -0.0, "log1p(-0) = -0"),
        SpecialCase(FLT_TRUE_MIN, FLT_TRUE_MIN, "log1p(tiny) = tiny"),
        SpecialCase(-FLT_TRUE_MIN, -FLT_TRUE_MIN, "log1p(-tiny) = -tiny"),
        SpecialCase(2.0**-30, 2.0**-30, "log1p(2^-30) rounds to 2^-30"),
        SpecialCase(_next_up(-1.0), None, "log1p just above -1, within 1 ULP"),
        SpecialCase(FLT_MAX, None, "log1p(FLT_MAX), within 1 ULP (finite)"),
        SpecialCase(1.0, None, "log1p(1) = ln 2, within 1 ULP"),
        SpecialCase(2.0**-20, None, "log1p(2^-20), within 1 ULP"),
        SpecialCase(2.0**24, None, "log1p(2^24), within 1 ULP"),
    ]


def _cbrt_cases() -> list[SpecialCase]:
    c = _nan_cases() + [
        SpecialCase(0.0, 0.0, "cbrt(+0) = +0"),
        SpecialCase(-0.0, -0.0, "cbrt(-0) = -0"),
        SpecialCase(INF, INF, "cbrt(+inf) = +inf"),
        SpecialCase(-INF, -INF, "cbrt(-inf) = -inf"),
        SpecialCase(FLT_TRUE_MIN, None, "cbrt of the smallest subnormal, within 1 ULP"),
        SpecialCase(FLT_MAX, None, "cbrt(FLT_MAX), within 1 ULP"),
        SpecialCase(-FLT_MAX, None, "cbrt(-FLT_MAX), within 1 ULP"),
    ]
    return c + [SpecialCase(float(k**3), float(k), f"cbrt({k**3}) = {k} exactly") for k in (-27, -8, -1, 1, 8, 27, 64)]


def _odd_saturating_cases(name: str, tiny_is_x: bool) -> list[SpecialCase]:
    c = _nan_cases() + [
        SpecialCase(0.0, 0.0, f"{name}(+0) = +0"),
        SpecialCase(-0.0, -0.0, f"{name}(-0) = -0"),
        SpecialCase(INF, 1.0, f"{name}(+inf) = 1"),
        SpecialCase(-INF, -1.0, f"{name}(-inf) = -1"),
        SpecialCase(FLT_MAX, 1.0, f"{name}(FLT_MAX) = 1"),
        SpecialCase(-FLT_MAX, -1.0, f"{name}(-FLT_MAX) = -1"),
        SpecialCase(20.0, 1.0, f"{name}(20) rounds to 1"),
        SpecialCase(-20.0, -1.0, f"{name}(-20) rounds to -1"),
    ]
    if tiny_is_x:
        c += [SpecialCase(FLT_TRUE_MIN, FLT_TRUE_MIN, f"{name}(tiny) = tiny"),
              SpecialCase(-FLT_TRUE_MIN, -FLT_TRUE_MIN, f"{name}(-tiny) = -tiny"),
              SpecialCase(2.0**-30, 2.0**-30, f"{name}(2^-30) rounds to 2^-30")]
    else:
        c += [SpecialCase(FLT_TRUE_MIN, None, f"{name}(tiny), within 1 ULP"),
              SpecialCase(2.0**-30, None, f"{name}(2^-30), within 1 ULP")]
    return c


def _trig_cases(name: str) -> list[SpecialCase]:
    """sin and cos: NaN at +-inf, the sign of zero kept by sin, and landmarks where the reduction is
    hard: near multiples of pi/2, at the largest floats (the seven-chunk reduction), and at the
    boundary of the two reductions (2^20)."""
    sin = name == "sin"
    c = _nan_cases() + [
        SpecialCase(INF, NAN, f"{name}(+inf) is NaN"),
        SpecialCase(-INF, NAN, f"{name}(-inf) is NaN"),
        SpecialCase(0.0, 0.0 if sin else 1.0, f"{name}(+0) = {'+0' if sin else '1'}"),
        SpecialCase(-0.0, -0.0 if sin else 1.0, f"{name}(-0) = {'-0' if sin else '1'}"),
        SpecialCase(FLT_TRUE_MIN, FLT_TRUE_MIN if sin else 1.0, f"{name}(tiny) = {'tiny' if sin else '1'}"),
        SpecialCase(-FLT_TRUE_MIN, -FLT_TRUE_MIN if sin else 1.0, f"{name}(-tiny) = {'-tiny' if sin else '1'}"),
        SpecialCase(2.0**-13, 2.0**-13 if sin else 1.0, f"{name}(2^-13) rounds to {'2^-13' if sin else '1'}"),
    ]
    for x, what in ((float.fromhex("0x1.921fb6p+0"), "pi/2 rounded"), (float.fromhex("0x1.921fb6p+1"), "pi rounded"),
                    (16367173 * 2.0**72, "a float32 close to a multiple of pi/2"), (2.0**20, "2^20"),
                    (_next_down(2.0**20), "just below 2^20"), (FLT_MAX, "FLT_MAX"), (-FLT_MAX, "-FLT_MAX"),
                    (1.0, "1")):
        c.append(SpecialCase(x, None, f"{name}({what}), within 1 ULP"))
    return c


def _sigmoid_cases() -> list[SpecialCase]:
    return _nan_cases() + [
        SpecialCase(INF, 1.0, "sigmoid(+inf) = 1"),
        SpecialCase(-INF, 0.0, "sigmoid(-inf) = +0"),
        SpecialCase(0.0, 0.5, "sigmoid(+0) = 1/2"),
        SpecialCase(-0.0, 0.5, "sigmoid(-0) = 1/2"),
        SpecialCase(FLT_MAX, 1.0, "sigmoid(FLT_MAX) = 1"),
        SpecialCase(-FLT_MAX, 0.0, "sigmoid(-FLT_MAX) = +0"),
        SpecialCase(-200.0, 0.0, "sigmoid(-200) underflows to +0"),
        SpecialCase(-100.0, None, "sigmoid(-100): subnormal, within 1 ULP"),
        SpecialCase(20.0, None, "sigmoid(20), within 1 ULP"),
    ]


FULL_RANGE: dict[str, FullRangeSpec] = {}


def register(spec: FullRangeSpec) -> FullRangeSpec:
    """Add (or replace) a target's full-range specification; returns it."""
    FULL_RANGE[spec.target] = spec
    return spec


for _spec in (
    FullRangeSpec("exp", "exp", (-87.3, 88.7), tuple(_exp_cases()), "e^x: +inf above 88.72, +0 below -103.97"),
    FullRangeSpec("exp2", "exp2", (-126.0, 127.5), tuple(_exp2_cases()), "2^x: +inf from 128, +0 at and below -150"),
    FullRangeSpec("exp10", "exp10", (-45.0, 38.5), tuple(_exp10_cases()),
                  "10^x: +inf above 38.53, +0 below -45.15"),
    FullRangeSpec("expm1", "expm1", (-17.4, 88.7), tuple(_expm1_cases()),
                  "e^x - 1: x for |x| < 2^-25 (-0 kept), -1 below -17.33, +inf above 88.72"),
    FullRangeSpec("log", "log", (0.25, 4.0), tuple(_log_cases("log")),
                  "ln x: -inf at +-0, NaN below 0, subnormal inputs exact in the reduction", (0.0, INF),
                  ("the search domain [1/4, 4] covers every reduction case (e = -2..2, both summation "
                   "orders); the frame makes all other binades the same problem",)),
    FullRangeSpec("log2", "log2", (0.25, 4.0), tuple(_log_cases("log2")),
                  "log2 x: -inf at +-0, NaN below 0, exact at powers of two", (0.0, INF)),
    FullRangeSpec("log1p", "log1p", (-0.75, 3.0), tuple(_log1p_cases()),
                  "log(1 + x): -inf at -1, NaN below -1, x for tiny |x| (-0 kept)", (-1.0, INF),
                  ("the search domain [-3/4, 3] covers u = 1 + x in [1/4, 4], every reduction case of the log "
                   "frame",)),
    FullRangeSpec("log10", "log10", (0.25, 4.0), tuple(_log_cases("log10")),
                  "log10 x: -inf at +-0, NaN below 0, subnormal inputs exact in the reduction", (0.0, INF)),
    FullRangeSpec("tanh", "tanh", (-9.0, 9.0), tuple(_odd_saturating_cases("tanh", True)),
                  "tanh x: odd, +-1 at +-inf, tanh(x) = x for tiny x"),
    FullRangeSpec("erf", "", (-4.0, 4.0), tuple(_odd_saturating_cases("erf", False)),
                  "erf x: odd, +-1 at +-inf and past 3.9192 (the split erf: frames erf_small, erf_mid, erf_tail)"),
    FullRangeSpec("cbrt", "cbrt", (-8.0, 8.0), tuple(_cbrt_cases()),
                  "cube root: odd, +-0 and +-inf kept, exact at the cubes of small integers"),
    FullRangeSpec("sin", "sin", (-3.4e38, 3.4e38), tuple(_trig_cases("sin")),
                  "sin x: NaN at +-inf, x for |x| < 2^-12 (-0 kept), exact reduction for every finite x"),
    FullRangeSpec("cos", "cos", (-3.4e38, 3.4e38), tuple(_trig_cases("cos")),
                  "cos x: NaN at +-inf, 1 for |x| < 2^-12, exact reduction for every finite x"),
    FullRangeSpec("sigmoid", "sigmoid", (-104.0, 20.0), tuple(_sigmoid_cases()),
                  "1/(1+e^-x): 1 at +inf, +0 at -inf and below -103.97"),
):
    register(_spec)


class SpecialsError(ValueError):
    pass


def get_spec(target: str) -> FullRangeSpec:
    if target not in FULL_RANGE:
        raise SpecialsError(f"no full-range specification for target {target!r}; "
                            f"known: {', '.join(FULL_RANGE)} (add one with fitness.special.register)")
    return FULL_RANGE[target]


def expected_values(spec: FullRangeSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, expected float32 results, exact hi, exact lo) of the spec's cases.

    For the ``None`` cases ``expected`` holds the correctly rounded value and (hi, lo) the exact one
    (mpmath); for the others hi is the expected value and lo is 0.
    """
    from .metrics import correctly_rounded
    from .reference import mp_values
    from .targets import get_target

    x = np.array([c.input32() for c in spec.cases], np.float32)
    exp = np.array([NAN if c.expected is None else c.expected for c in spec.cases], np.float64).astype(np.float32)
    hi, lo = exp.astype(np.float64), np.zeros(len(x))
    todo = np.array([c.expected is None for c in spec.cases], bool)
    if np.any(todo):
        ref = mp_values(get_target(spec.target), x[todo].astype(np.float64))
        exp[todo] = correctly_rounded(ref.hi, ref.lo, "float32")
        hi[todo], lo[todo] = ref.hi, ref.lo
    return x, exp, hi, lo


def same_float32(y: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Bit-for-bit equality of float32 arrays, any NaN equal to any NaN."""
    y = np.asarray(y, np.float32)
    expected = np.asarray(expected, np.float32)
    return (y.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(y) & np.isnan(expected))


@dataclass(frozen=True)
class Mismatch:
    x: float
    got: float
    expected: float
    why: str

    def to_dict(self) -> dict:
        f = lambda v: float(v).hex() if math.isfinite(v) else repr(float(v))  # noqa: E731
        return {"x": f(self.x), "got": f(self.got), "expected": f(self.expected), "why": self.why}

    def __str__(self) -> str:
        return f"x = {self.x!r}: got {self.got!r}, expected {self.expected!r} ({self.why})"


def as_function(program_or_fn: Program | Callable) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 array function: a ``Program`` through the numpy reference evaluator, or ``fn``."""
    if isinstance(program_or_fn, Program):
        from backends.numpy_backend import evaluate

        return lambda x: evaluate(program_or_fn, x, "float32")
    return program_or_fn


def check_specials(program_or_fn: Program | Callable, spec: FullRangeSpec | str,
                   tolerance_ulp: float = TOLERANCE_ULP) -> list[Mismatch]:
    """The spec's special cases on which the program (or function) is wrong; [] when all are right.

    Exact cases compare bit for bit (any NaN equal to any NaN); the ``None`` cases need a result
    of the right kind (finite, or the correctly rounded zero or infinity) within ``tolerance_ulp``.
    """
    from .metrics import ulp_errors

    spec = get_spec(spec) if isinstance(spec, str) else spec
    fn = as_function(program_or_fn)
    x, exp, hi, lo = expected_values(spec)
    with np.errstate(all="ignore"):
        y = np.asarray(fn(x), np.float32)
    ok = same_float32(y, exp)
    loose = np.array([c.expected is None for c in spec.cases], bool)
    if np.any(loose):
        err = ulp_errors(y[loose], hi[loose], lo[loose], "float32")
        kind_ok = np.isfinite(y[loose]) == np.isfinite(exp[loose])
        ok[loose] = ok[loose] | (kind_ok & (err <= tolerance_ulp))
    return [Mismatch(float(x[i]), float(y[i]), float(exp[i]), spec.cases[i].why)
            for i in np.flatnonzero(~ok)]


def special_mask(x: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Inputs whose correct result is a special value: a non-finite input, or a NaN, infinite or zero
    result.  On these a result must match bit for bit (sign of zero included): an exhaustive check
    counts the differences as special-value mismatches rather than as ULP errors."""
    return ~np.isfinite(x) | ~np.isfinite(cr) | (cr == 0)


def describe_specs(specs: Iterable[FullRangeSpec] | None = None) -> list[str]:
    """One line per full-range target (for ``autonumerics targets``)."""
    out = []
    for s in (specs or FULL_RANGE.values()):
        frame = s.frame or "-"
        dom = f"[{s.search_domain[0]:.6g}, {s.search_domain[1]:.6g}]"
        out.append(f"{s.target:<9} {frame:<6} {dom:<15} {len(s.cases):>3} special cases  {s.description}")
    return out
