"""The one table of DSL operations.

Every backend (numpy evaluator, llvmlite, JAX, C export) reads its list of operations from
``OPS``; a test walks the table and checks that each backend implements every entry and that all
of them agree bit for bit. Adding an operation is one entry here plus one line per backend.

Semantics are IEEE-754 round-to-nearest-even in the program's dtype at every step: ``fma`` is a
fused multiply-add (one rounding), ``round`` rounds half to even, and the range-reduction
operations are exact.  The exact definitions that every backend must match:

- ``ldexp(a, k)``: ``a * 2**k`` rounded once, where ``k`` is first made an integer by truncation
  toward zero and clamped to [-512, 512] (NaN ``k`` gives NaN).
- ``ldexp2(a, k)``: ``(a * 2**h) * 2**(n - h)`` with ``h = n >> 1`` (floor of ``n / 2``), each
  product rounded in the dtype, where ``n`` is ``k`` clamped to ``LDEXP2_RANGE`` (twice the
  exponent range of the dtype's normal powers of two; NaN ``k`` counts as the lower end) and
  truncated toward zero.  Both factors are normal powers of two built from bits alone, so the op
  is two multiplies in the dtype, with no wider type (SLEEF's ``ldexp2kf``).  It equals ``ldexp``
  wherever ``a * 2**h`` is normal, as it is in the exp frames (``a`` near 1, ``|n| <= 152``).
- ``frexp_m(a)`` / ``frexp_e(a)``: ``a = m * 2**e`` with ``0.5 <= |m| < 1`` (C ``frexp``); for
  0, inf and NaN ``m`` is ``a`` and ``e`` is 0.
- ``select_lt(a, b, c, d)``: ``c if a < b else d`` (NaN compares false, giving ``d``).
- ``cvt_f32(a)``: ``a`` rounded to float32 (nearest even; beyond the float32 range +-inf,
  subnormals kept), the value then carried on in the program's dtype: a float64 program whose
  last step is ``cvt_f32`` is a float32 function computed in float64 with one final rounding (a
  mixed-precision program), and float32 steps inside a float64 program are a float64 op followed
  by ``cvt_f32`` (exact for add, sub, mul, div and sqrt: float64 has more than 2 * 24 + 2 bits).
  In a float32 program it is the identity.  The real-number evaluators (mpmath, double-double,
  interval series) ignore it as they ignore every rounding: they compute what the program
  approximates.
"""

from __future__ import annotations

from dataclasses import dataclass

LEAF_OPS = ("x", "const", "param")


@dataclass(frozen=True)
class Op:
    """One DSL operation.

    ``commutative_prefix`` is how many leading arguments may be reordered without changing the
    result (2 for add, mul and fma's product; 0 otherwise): canonical forms sort them.
    ``cost`` is the weight of the operation under the default operation-count cost model.
    ``group`` separates the arithmetic core, offered to every search, from the range-reduction
    primitives and the precision conversion that a target's op set must ask for.
    """

    name: str
    arity: int
    commutative_prefix: int = 0
    cost: float = 1.0
    group: str = "core"
    doc: str = ""


_TABLE = (
    Op("add", 2, 2, doc="a + b"),
    Op("sub", 2, doc="a - b"),
    Op("mul", 2, 2, doc="a * b"),
    Op("div", 2, doc="a / b"),
    Op("fma", 3, 2, doc="a * b + c with one rounding"),
    Op("neg", 1, doc="-a"),
    Op("sqrt", 1, doc="correctly rounded square root (NaN below 0)"),
    Op("abs", 1, group="reduction", doc="|a|"),
    Op("copysign", 2, group="reduction", doc="|a| with the sign of b"),
    Op("floor", 1, group="reduction", doc="largest integer <= a"),
    Op("round", 1, group="reduction", doc="nearest integer, ties to even"),
    Op("ldexp", 2, group="reduction", doc="a * 2**trunc(k), k clamped to [-512, 512]"),
    Op("ldexp2", 2, group="reduction", doc="(a * 2**(n>>1)) * 2**(n - (n>>1)), n = trunc(k) clamped, two roundings"),
    Op("frexp_m", 1, group="reduction", doc="mantissa m of a = m * 2**e, 0.5 <= |m| < 1"),
    Op("frexp_e", 1, group="reduction", doc="exponent e of a = m * 2**e, as a float"),
    Op("select_lt", 4, group="reduction", doc="c if a < b else d"),
    Op("cvt_f32", 1, group="precision", doc="a rounded to float32, kept in the program's dtype (identity in float32)"),
)

OPS: dict[str, Op] = {op.name: op for op in _TABLE}
CORE_OPS: tuple[str, ...] = tuple(op.name for op in _TABLE if op.group == "core")
ALL_OPS: tuple[str, ...] = tuple(OPS)
LDEXP_CLAMP = 512
# ldexp2's range of n per dtype: [2 emin, 2 emax], so that n >> 1 and n - (n >> 1) are normal exponents.
LDEXP2_RANGE: dict[str, tuple[int, int]] = {"float32": (-252, 254), "float64": (-2044, 2046)}


def ldexp_exponent(op: str, k, dtype: str = "float64") -> int | None:
    """The power of two ``ldexp`` or ``ldexp2`` scales by for a scalar ``k`` (float or mpf), or
    None where the result is NaN (``ldexp`` of a NaN ``k``): the rule the real-number evaluators
    share.  In real numbers ``ldexp2`` is exact scaling, like ``ldexp``; only its clamp differs."""
    if op == "ldexp":
        if k != k:
            return None
        lo, hi = -LDEXP_CLAMP, LDEXP_CLAMP
    else:
        lo, hi = LDEXP2_RANGE[dtype]
        if not k > lo:  # NaN too
            return lo
    return hi if k > hi else lo if k < lo else int(k)  # int() truncates toward zero


def op_set_from_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate an op-set given by name and return it in table order."""
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ValueError(f"unknown operation(s) {', '.join(unknown)}; known: {', '.join(OPS)}")
    return tuple(n for n in OPS if n in set(names))
