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
