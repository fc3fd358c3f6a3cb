"""Functional-equivalence cache (the Unified Functional Hashing idea).

Two keys lead to one fitted result:

- the *structural* hash (``dsl.structural_hash``): the canonical structure with parameter values
  masked.  Structures are fitted from several starts, so a structure seen before is not refitted
  (unless the mutation asked for a refit: a perturbed or redrawn constant; real mode's grown
  children, which start from their parent's fit, are always fitted: ``engine.GROWTH_MUTATIONS``);
- the *functional* hash: the program's outputs on fixed probe inputs, with its current constants,
  mantissas quantized, -0 merged with +0 and NaN/inf mapped to fixed tokens.  It catches programs
  that compute the same function but differ in structure in ways canonicalization does not see
  (``x*x*x`` against ``x*(x*x)``, ``neg(neg(a))``, ``a - b`` against ``a + neg(b)``).

The driver owns the cache; workers never see a candidate whose hash the driver knows.
"""

from __future__ import annotations

import hashlib

import numpy as np

from backends.numpy_backend import evaluate
from dsl.program import Program

QUANT_BITS = 20  # mantissa bits kept: equal up to rounding noise, distinct otherwise


def quantize(y: np.ndarray, bits: int = QUANT_BITS) -> np.ndarray:
    """Canonical integer tokens for float outputs: truncated mantissa, +-0 merged, NaN/inf fixed."""
    y = np.asarray(y, np.float64)
    m, e = np.frexp(np.where(np.isfinite(y), y, 0.0))
    q = np.trunc(m * (1 << bits)).astype(np.int64)
    tokens = q * 4096 + e.astype(np.int64)
    tokens = np.where(y == 0, 0, tokens)
    tokens = np.where(np.isnan(y), -1, tokens)
    tokens = np.where(np.isposinf(y), -2, tokens)
    tokens = np.where(np.isneginf(y), -3, tokens)
    return tokens


def functional_hash(program: Program, probes: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        y = evaluate(program, probes, "float64", exact_fma=False)
    return hashlib.blake2b(quantize(y).tobytes(), digest_size=12).hexdigest()


def frame_key(constants: dict[str, float] | None) -> str:
    """A hash suffix for a candidate's frame constants: one core in two frames is two functions."""
    if not constants:
        return ""
    text = ",".join(f"{k}={float(v).hex()}" for k, v in sorted(constants.items()))
    return "@" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class EquivalenceCache:
    """Maps structural and functional hashes to entry ids; entries hold the fitted result."""

    def __init__(self, entries: dict | None = None, keys: dict | None = None):
        self.entries: dict[str, dict] = dict(entries or {})
        self.keys: dict[str, str] = dict(keys or {})

    def lookup(self, *hashes: str) -> dict | None:
        for h in hashes:
            k = self.keys.get(h)
            if k is not None:
                return self.entries[k]
        return None

    def store(self, hashes: tuple[str, ...], result: dict) -> dict:
        """Record a result under all its hashes, keeping the better result for an existing entry."""
        existing = self.lookup(*hashes)
        if existing is not None and existing["error"] <= result["error"]:
            entry = existing
        else:
            key = existing["key"] if existing is not None else hashes[0]
            entry = dict(result, key=key)
            self.entries[key] = entry
        for h in hashes:
            self.keys[h] = entry["key"]
        return entry

    def to_dict(self) -> dict:
        return {"entries": self.entries, "keys": self.keys}

    @classmethod
    def from_dict(cls, data: dict) -> "EquivalenceCache":
        if not isinstance(data, dict) or not isinstance(data.get("entries", {}), dict) \
                or not isinstance(data.get("keys", {}), dict):
            raise ValueError("cache is not a pair of tables")
        return cls(data.get("entries", {}), data.get("keys", {}))
