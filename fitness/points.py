"""Evaluation points: where candidates are scored.

95% of the float32 values in a domain like [-87, 88] lie in [-1, 1], so points drawn uniformly
over float bit patterns crowd near zero while points drawn uniformly by value miss tiny inputs.
The fitness set mixes both, plus the domain's endpoints and every binade edge (powers of two and
their float neighbours) inside it.  It depends only on the domain, the dtype and the count, never
on the run's seed, so runs of one problem share their cached reference values.
"""

from __future__ import annotations

import numpy as np

from dsl.semantics import as_dtype

_UINT = {4: np.uint32, 8: np.uint64}
_INT = {4: np.int32, 8: np.int64}


def to_ordinal(x, dtype) -> np.ndarray:
    """Map floats to integers that preserve order (-0 and +0 both map to 0)."""
    dt = as_dtype(dtype)
    bits = np.asarray(x, dt).view(_INT[dt.itemsize]).astype(np.int64)
    sign_mask = np.int64(1) << np.int64(8 * dt.itemsize - 1)
    mag = bits & (sign_mask - 1) if dt.itemsize == 4 else bits & np.int64(0x7FFFFFFFFFFFFFFF)
    return np.where(bits < 0, -mag, mag)


def from_ordinal(k, dtype) -> np.ndarray:
    dt = as_dtype(dtype)
    k = np.asarray(k, np.int64)
    mag = np.abs(k).astype(_UINT[dt.itemsize])
    sign = np.where(k < 0, _UINT[dt.itemsize](1) << _UINT[dt.itemsize](8 * dt.itemsize - 1), 0).astype(_UINT[dt.itemsize])
    return (mag | sign).view(dt)


def clamp_domain(lo: float, hi: float, dtype) -> tuple[float, float]:
    """The domain's endpoints as values of the dtype, rounded inward."""
    dt = as_dtype(dtype)
    a, b = dt.type(lo), dt.type(hi)
    if float(a) < lo:
        a = np.nextafter(a, dt.type(np.inf))
    if float(b) > hi:
        b = np.nextafter(b, dt.type(-np.inf))
    return float(a), float(b)


def binade_edges(lo: float, hi: float, dtype) -> np.ndarray:
    dt = as_dtype(dtype)
    pts = []
    mags = [abs(lo), abs(hi)]
    top = int(np.floor(np.log2(max(mags)))) + 1 if max(mags) > 0 else 0
    bottom = max(top - 40, np.finfo(dt).minexp)
    for e in range(bottom, top + 1):
        with np.errstate(over="ignore"):  # 2^top may overflow dt: its neighbour below is the largest finite
            p = dt.type(np.ldexp(1.0, e))
        for v in (p, np.nextafter(p, dt.type(0)), np.nextafter(p, dt.type(np.inf)), -p,
                  np.nextafter(-p, dt.type(0)), np.nextafter(-p, dt.type(-np.inf))):
            if lo <= float(v) <= hi:
                pts.append(v)
    return np.array(pts, dt)


def fitness_points(lo: float, hi: float, dtype="float32", n: int = 2048, seed: int = 20240601) -> np.ndarray:
    """Sorted, unique evaluation points in [lo, hi] of the given dtype."""
    dt = as_dtype(dtype)
    a, b = clamp_domain(lo, hi, dt)
    rng = np.random.default_rng(seed)
    half = n // 2
    by_value = rng.uniform(a, b, half).astype(dt)
    oa, ob = to_ordinal(np.array([a], dt), dt)[0], to_ordinal(np.array([b], dt), dt)[0]
    by_bits = from_ordinal(rng.integers(oa, ob + 1, n - half), dt)
    edges = binade_edges(a, b, dt)
    ends = np.array([a, b] + ([0.0] if a <= 0.0 <= b else []), dt)
    pts = np.concatenate([by_value, by_bits, edges, ends]).astype(dt)
    pts = pts[(pts >= a) & (pts <= b)]
    pts = np.where(pts == 0, dt.type(0), pts)  # merge -0 into +0
    return np.unique(pts)


def value_binade_edges(x: np.ndarray, fx: np.ndarray, fn, dtype="float32", max_pairs: int = 128,
                       binades: int = 40) -> np.ndarray:
    """Pairs of adjacent floats where ``|fn|`` crosses a power of two, found between sorted points.

    A ulp is constant within a binade of the *output*, so a program with a smooth relative error
    has its largest ulp error just below a power of two of the target's value, where the
    mantissa is nearly 2 (erf on [0, 1], 2 ops: the dense check's worst input had mantissa
    1.999997, the fitness points' best 1.9966, and their max error was 0.17% low).  The input's
    own binade edges (``binade_edges``) do not find these points unless the target is the
    identity.  ``x`` are sorted points with values ``fx``; ``fn`` gives float64 values of the
    target at an array of inputs (the crossing is bisected on float ordinals, 1 evaluation per
    pair per step).  Like the input edges, only the top ``binades`` binades of ``|fx|`` count
    (below them the relative error of a smooth program is its limit at the zero, already met at
    the binades kept); outputs below the dtype's smallest normal (where the ulp is constant) and
    sign changes are skipped; at most ``max_pairs`` crossings, evenly chosen.
    """
    dt = as_dtype(dtype)
    x = np.asarray(x, dt)
    with np.errstate(all="ignore"):
        fx = np.asarray(fx, np.float64)
        ok = np.isfinite(fx) & (np.abs(fx) >= np.finfo(dt).tiny)
        e = np.frexp(fx)[1]
    if np.any(ok):
        ok &= e >= e[ok].max() - binades
    i = np.flatnonzero(ok[:-1] & ok[1:] & (np.sign(fx[:-1]) == np.sign(fx[1:])) & (e[:-1] != e[1:]))
    if len(i) > max_pairs:
        i = i[np.linspace(0, len(i) - 1, max_pairs).round().astype(np.int64)]
    if len(i) == 0:
        return np.zeros(0, dt)
    lo_o, hi_o = to_ordinal(x[i], dt), to_ordinal(x[i + 1], dt)
    e_lo = e[i]
    while True:
        open_ = hi_o - lo_o > 1
        if not np.any(open_):
            break
        mid = (lo_o + hi_o) // 2
        with np.errstate(all="ignore"):
            fm = np.asarray(fn(from_ordinal(mid[open_], dt).astype(np.float64)), np.float64)
        same = np.zeros(len(mid), bool)
        same[open_] = np.frexp(fm)[1] == e_lo[open_]
        lo_o = np.where(open_ & same, mid, lo_o)
        hi_o = np.where(open_ & ~same, mid, hi_o)
    return np.unique(np.concatenate([from_ordinal(lo_o, dt), from_ordinal(hi_o, dt)]))


def dense_points(lo: float, hi: float, dtype="float32", n: int = 1 << 22, seed: int = 7) -> np.ndarray:
    """A far denser verification set: ``n`` points, half evenly spaced in value, half in bits."""
    return fitness_points(lo, hi, dtype, n=n, seed=seed)


def all_floats(lo: float, hi: float, dtype="float32", chunk: int = 1 << 24):
    """Every float of ``dtype`` in [lo, hi], in chunks (exhaustive verification)."""
    dt = as_dtype(dtype)
    a, b = clamp_domain(lo, hi, dt)
    oa = int(to_ordinal(np.array([a], dt), dt)[0])
    ob = int(to_ordinal(np.array([b], dt), dt)[0])
    for start in range(oa, ob + 1, chunk):
        k = np.arange(start, min(start + chunk, ob + 1), dtype=np.int64)
        yield from_ordinal(k, dt)


def count_floats(lo: float, hi: float, dtype="float32") -> int:
    dt = as_dtype(dtype)
    a, b = clamp_domain(lo, hi, dt)
    return int(to_ordinal(np.array([b], dt), dt)[0] - to_ordinal(np.array([a], dt), dt)[0] + 1)
