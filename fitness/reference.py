"""Reference values: the exact function, as a float64 pair, computed with mpmath and cached.

Each reference value is stored as ``hi + lo`` with ``hi = RN64(f(x))`` and ``lo = RN64(f(x) - hi)``:
about 106 significant bits, enough to measure float32 and float64 ULP errors, to round correctly
to float32 (``dsl.semantics.round_pair_to_float32``) and to measure relative errors far below
float64's own.  mpmath works at ``PREC_BITS`` (>= 100) bits.

Computing mpmath values is slow (tens of thousands per second), so they are cached on disk as npz,
keyed by target, domain, dtype and a hash of the points; the cache folder is
``$AUTONUMERICS_CACHE`` or ``~/.cache/autonumerics``.  Files are written atomically.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np

from .atomic import atomic_write_bytes
from .targets import Target, TargetError

PREC_BITS = 128
CACHE_VERSION = 1


@dataclass(frozen=True)
class Reference:
    hi: np.ndarray  # float64
    lo: np.ndarray  # float64


def cache_dir() -> Path:
    return Path(os.environ.get("AUTONUMERICS_CACHE", Path.home() / ".cache" / "autonumerics"))


def mp_values(target: Target, x: np.ndarray, prec: int = PREC_BITS) -> Reference:
    """Exact-enough values of the target at float inputs ``x`` (each input converted exactly)."""
    hi = np.empty(len(x), np.float64)
    lo = np.empty(len(x), np.float64)
    with mpmath.workprec(prec):
        for i, xi in enumerate(np.asarray(x, np.float64)):
            try:
                y = target.mp_fn(mpmath.mpf(float(xi)))
                if isinstance(y, mpmath.mpc):
                    y = y.real if y.imag == 0 else mpmath.mpf("nan")
                h = float(y)
                lo[i] = float(y - h) if np.isfinite(h) else 0.0
                hi[i] = h
            except TargetError:  # a user target that failed, not a value outside a domain
                raise
            except (ValueError, ZeroDivisionError, OverflowError):
                hi[i], lo[i] = np.nan, 0.0
    return Reference(hi, lo)


def _key(target: Target, lo: float, hi: float, dtype: str, x: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{target.name}|{target.fingerprint}|{lo!r}|{hi!r}|{dtype}|{PREC_BITS}|".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:32]


def reference_values(target: Target, x: np.ndarray, lo: float, hi: float, dtype: str, use_cache: bool = True) -> Reference:
    """Reference values at ``x``, from the disk cache when a previous run computed them."""
    use_cache = use_cache and bool(target.fingerprint)  # a user function without a source file: never cached
    path = cache_path("reference", target, _key(target, lo, hi, dtype, x))
    data = read_cached(path, CACHE_VERSION) if use_cache else None
    if data is not None and np.array_equal(data.get("x"), x) and "hi" in data and "lo" in data:
        return Reference(data["hi"], data["lo"])
    ref = mp_values(target, x)
    if use_cache:
        write_cached(path, CACHE_VERSION, x=x, hi=ref.hi, lo=ref.lo)
    return ref


def cache_path(kind: str, target: Target, key: str) -> Path:
    """Where the disk cache keeps one ``kind`` of array for a target under ``key``."""
    return cache_dir() / kind / f"{target.name.replace(':', '_').replace('/', '_')}-{key}.npz"


def read_cached(path: Path, version: int) -> dict | None:
    """The arrays of a cache entry of this version, or None (missing, unreadable, another version:
    it is recomputed and overwritten).  npz without pickles: a cache never runs code."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != version:
                return None
            return {k: data[k].copy() for k in data.files if k != "version"}
    except (OSError, ValueError, KeyError):
        return None


def write_cached(path: Path, version: int, **arrays) -> None:
    """Write a cache entry atomically; a read-only cache folder costs speed, not correctness."""
    import io

    buf = io.BytesIO()
    np.savez(buf, version=np.int64(version), **arrays)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass


def fast_reference(target: Target, x: np.ndarray, dtype: str = "float32", guard_ulps: float = 16.0) -> Reference:
    """Reference for many points: float64 values, with mpmath wherever rounding could differ.

    The target's float64 numpy function is within a few float64 ulps; a value is recomputed with
    mpmath when it lies within ``guard_ulps`` float64 ulps of a rounding midpoint of ``dtype``
    (float32), where a few ulps could change the correctly rounded result.  The ``lo`` part is
    filled only for recomputed points (elsewhere the float64 value is within a few of its own
    ulps, far below a float32 ulp).  float64 outputs and targets without a numpy function use
    mpmath throughout.
    """
    x = np.asarray(x)
    if target.np_fn is None or dtype != "float32":
        return mp_values(target, x)
    with np.errstate(all="ignore"):
        hi = np.asarray(target.np_fn(x.astype(np.float64)), np.float64)
    lo = np.zeros_like(hi)
    r = hi.astype(np.float32)
    with np.errstate(all="ignore"):
        other = np.nextafter(r, np.where(hi > r, np.float32(np.inf), np.float32(-np.inf)))
        mid = (r.astype(np.float64) + other.astype(np.float64)) * 0.5
        near = np.abs(hi - mid) <= guard_ulps * np.spacing(np.abs(hi))
    near |= ~np.isfinite(hi)
    idx = np.flatnonzero(near)
    if len(idx):
        exact = mp_values(target, x[idx])
        hi[idx], lo[idx] = exact.hi, exact.lo
    return Reference(hi, lo)
