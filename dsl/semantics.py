"""Reference semantics of every operation in numpy, exact in float32 and float64.

This is the definition the other backends are tested against bit for bit, and what constant
folding uses, so it lives beside the op table.  numpy has no fma ufunc; ``fma`` is emulated
exactly:

- float32: the float64 product of two float32 values is exact; ``p + c`` in float64 can round
  twice only when the float64 sum lands exactly on a float32 rounding midpoint while the exact
  sum does not, so such sums are moved one float64 ulp toward the exact value first.
- float64: Boldo & Melquiond's emulation, ``RN(th + RO(tl + ul))`` with Veltkamp/Dekker's exact
  product and round-to-odd addition (exact away from overflow and deep underflow, where the
  split itself loses bits).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .ops import LDEXP2_RANGE, LDEXP_CLAMP, OPS

DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(name_or_dtype) -> np.dtype:
    dt = np.dtype(DTYPES.get(name_or_dtype, name_or_dtype) if isinstance(name_or_dtype, str) else name_or_dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"unsupported dtype {dt}; use float32 or float64")
    return dt


def _two_sum(a, b):
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def round_pair_to_float32(s, e) -> np.ndarray:
    """Correctly round the exact value ``s + e`` to float32, where ``s`` is a float64 and ``e`` a
    small correction of it (``|e|`` at most half a float64 ulp of ``s``, as TwoSum produces).

    Rounding ``s`` alone rounds twice; that differs from one rounding only when ``s`` lies exactly
    on a float32 midpoint (normal or subnormal) and ``e`` is non-zero, so such ``s`` are first moved
    one float64 ulp toward the exact value.
    """
    s = np.asarray(s, np.float64)
    e = np.asarray(e, np.float64)
    bits = np.atleast_1d(s).view(np.uint64)
    expo = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
    sig = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    shift = np.minimum(29 + np.maximum(0, -126 - expo), 60).astype(np.uint64)
    mask = (np.uint64(1) << shift) - np.uint64(1)
    half = np.uint64(1) << (shift - np.uint64(1))
    at_mid = ((sig & mask) == half).reshape(np.shape(s))
    with np.errstate(all="ignore"):
        bad = at_mid & (e != 0) & np.isfinite(s) & np.isfinite(e)
        if np.any(bad):
            s = np.where(bad, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
        return np.asarray(s).astype(np.float32)


def _fma32(a, b, c):
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    c64 = np.asarray(c, np.float64)
    p = a64 * b64  # exact: 24 + 24 significant bits fit in 53
    s = np.asarray(p + c64)
    if s.ndim == 0:  # scalars (constant folding): the same path on a 1-element array
        return _fma32(np.reshape(a64, 1), np.reshape(b64, 1), np.reshape(c64, 1))[0]
    # Rounding s to float32 is already correct unless s sits on a float32 rounding midpoint
    # (low 29 bits of a normal float32-range value equal to 1 << 28) or in the subnormal range;
    # only those rare elements need the exact sum's error term.
    bits = s.view(np.uint64)
    suspect = (bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    suspect |= np.abs(s) < 2.0**-125
    if np.any(suspect):
        idx = np.nonzero(suspect)
        pb = np.broadcast_to(p, s.shape)[idx]
        cb = np.broadcast_to(c64, s.shape)[idx]
        ss, e = _two_sum(pb, cb)
        finite = np.isfinite(pb)
        e = np.where(finite, e, 0.0)
        ss = np.where(finite, ss, pb + cb)
        out = s.astype(np.float32)
        out[idx] = round_pair_to_float32(ss, e)
        return out
    return s.astype(np.float32)


_SPLIT = np.float64(134217729.0)  # 2**27 + 1


def _two_prod64(a, b):
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _fma64(a, b, c):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    c = np.asarray(c, np.float64)
    uh, ul = _two_prod64(a, b)
    th, tl = _two_sum(c, uh)
    v, err = _two_sum(tl, ul)
    even = (np.asarray(v).view(np.uint64) & np.uint64(1)) == 0
    nudge = (err != 0) & even & np.isfinite(err)
    if np.any(nudge):
        v = np.where(nudge, np.nextafter(v, np.where(err > 0, np.inf, -np.inf)), v)
    r = th + v
    # an exact zero takes its sign from the plain expression (IEEE: -0 only for -0 + -0)
    ok = np.isfinite(r) & np.isfinite(uh) & np.isfinite(ul) & (r != 0)
    if not np.all(ok):
        r = np.where(ok, r, a * b + c)
    return r


def fma(a, b, c, dtype) -> np.ndarray:
    dt = as_dtype(dtype)
    with np.errstate(all="ignore"):
        if dt == np.float32:
            return _fma32(a, b, c)
        return _fma64(a, b, c)


def _ldexp(a, k, dt):
    k = np.asarray(k, dt)
    kk = np.clip(np.trunc(np.nan_to_num(k, nan=0.0, posinf=LDEXP_CLAMP, neginf=-LDEXP_CLAMP)), -LDEXP_CLAMP, LDEXP_CLAMP)
    r = np.ldexp(np.asarray(a, dt), kk.astype(np.int32))
    return np.where(np.isnan(k), dt.type(np.nan), r).astype(dt)


def _ldexp2(a, k, dt):
    lo, hi = LDEXP2_RANGE[dt.name]
    k = np.asarray(k, dt)
    kc = np.where(k > lo, k, dt.type(lo))  # NaN -> lo
    n = np.trunc(np.where(kc < hi, kc, dt.type(hi))).astype(np.int32)
    h = np.right_shift(n, 1)  # arithmetic: the floor of n / 2
    one = dt.type(1)
    return np.multiply(np.multiply(a, np.ldexp(one, h), dtype=dt), np.ldexp(one, n - h), dtype=dt)


def _frexp_m(a, dt):
    a = np.asarray(a, dt)
    m, _ = np.frexp(a)
    return np.where(np.isfinite(a) & (a != 0), m, a).astype(dt)


def _frexp_e(a, dt):
    a = np.asarray(a, dt)
    _, e = np.frexp(a)
    return np.where(np.isfinite(a) & (a != 0), e, 0).astype(dt)


def _select_lt(a, b, c, d, dt):
    return np.where(np.asarray(a) < np.asarray(b), c, d).astype(dt)


# Each entry takes numpy arrays (or scalars) of the program dtype and returns that dtype.
NUMPY_IMPL: dict[str, Callable] = {
    "add": lambda dt, a, b: np.add(a, b, dtype=dt),
    "sub": lambda dt, a, b: np.subtract(a, b, dtype=dt),
    "mul": lambda dt, a, b: np.multiply(a, b, dtype=dt),
    "div": lambda dt, a, b: np.divide(a, b, dtype=dt),
    "fma": lambda dt, a, b, c: fma(a, b, c, dt),
    "neg": lambda dt, a: np.negative(a, dtype=dt),
    "sqrt": lambda dt, a: np.sqrt(a, dtype=dt),
    "abs": lambda dt, a: np.abs(np.asarray(a, dt)),
    "copysign": lambda dt, a, b: np.copysign(a, b, dtype=dt),
    "floor": lambda dt, a: np.floor(a, dtype=dt),
    "round": lambda dt, a: np.rint(a, dtype=dt),
    "ldexp": lambda dt, a, k: _ldexp(a, k, dt),
    "ldexp2": lambda dt, a, k: _ldexp2(a, k, dt),
    "frexp_m": lambda dt, a: _frexp_m(a, dt),
    "frexp_e": lambda dt, a: _frexp_e(a, dt),
    "select_lt": lambda dt, a, b, c, d: _select_lt(a, b, c, d, dt),
    "cvt_f32": lambda dt, a: np.asarray(a, dt).astype(np.float32).astype(dt),
}

assert set(NUMPY_IMPL) == set(OPS), "every op in the table needs numpy semantics"


def apply_op(name: str, dtype, *args):
    dt = as_dtype(dtype)
    with np.errstate(all="ignore"):
        return NUMPY_IMPL[name](dt, *args)
