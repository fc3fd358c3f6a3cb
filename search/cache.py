"""Functional-equivalence cache for programs with free constants (the Unified Functional Hashing
idea, made safe for fitted constants).

A fitted result may answer a later candidate only if that candidate spans exactly the same family
of functions, since fitting it could reach nothing the entry's fit could not.  Three hashes:

- *family* (``g``): the program's outputs on fixed probe inputs with its parameters set to fixed
  pseudo-random probe values (``PROBE_PARAMS``, by position in ``family_form``, an order that
  depends on the structure alone), quantized, and the program's cost (programs of one family at
  two costs are two points of the front: neither may answer for the other).  It ignores the
  candidate's current constants, so ``fma x c1 c2`` and ``add (mul x c1) c2`` share an entry, and a
  child with one more free parameter never shares its parent's, even when the new parameter starts
  neutral (``add 0``, ``mul 1``) and the child computes its parent's function until it is fitted.
  A program that is not finite everywhere at the probe values has no family hash;
- *structure* (``s``): ``dsl.structural_hash``, the canonical structure with parameter values
  masked.  It is the key when there is no family hash, and tells a structure hit from a family hit;
- *fitted function* (``v``): the outputs of the fitted program (its own constants) on the probes.
  Known only after fitting, it finds different structures that converged to the same function
  (counted as ``converged``); it names the best program known to compute that function, but never
  decides what a family answers with.

Outputs are quantized (mantissas truncated to ``QUANT_BITS``, -0 merged with +0, NaN/inf mapped to
fixed tokens) so that rounding noise does not split one function into several.  The driver owns
the cache; workers never see a candidate the driver can answer.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize, structural_hash
from dsl.program import Exact, Node, Program, cost

from .records import CacheEntry

QUANT_BITS = 20  # mantissa bits kept: equal up to rounding noise, distinct otherwise
# by parameter position; away from 0 and 1 (neutral values) and from each other
PROBE_PARAMS = np.random.default_rng(20240917).uniform(0.6, 1.7, 256) * np.where(
    np.random.default_rng(917).random(256) < 0.3, -1.0, 1.0)
HIT_KINDS = ("identity", "structure", "family", "converged")


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


def _digest(y: np.ndarray) -> str:
    return hashlib.blake2b(quantize(y).tobytes(), digest_size=12).hexdigest()


def functional_hash(program: Program, probes: np.ndarray) -> str:
    """The function a program computes with its own constants (``v`` key)."""
    with np.errstate(all="ignore"):
        y = evaluate(program, probes, "float64", exact_fma=False)
    return "v" + _digest(y)


def _fma_expanded(program: Program) -> Program:
    """The program with every fma(a, b, c) written as add(mul(a, b), c): the same family."""
    if not any(n.op == "fma" for n in program.nodes):
        return program
    nodes: list[Node] = []
    remap: dict[int, int] = {}
    for i, n in enumerate(program.nodes):
        args = tuple(remap[a] for a in n.args)
        if n.op == "fma":
            nodes.append(Node("mul", args[:2]))
            nodes.append(Node("add", (len(nodes) - 1, args[2])))
        else:
            nodes.append(Node(n.op, args, n.value))
        remap[i] = len(nodes) - 1
    return Program(tuple(nodes), remap[program.output])


def family_form(program: Program) -> Program:
    """The program in a form whose parameter order depends on its structure alone: fma expanded,
    every parameter set to one value, canonicalized (so commutative operands are ordered by
    structure, never by the constants they happen to hold)."""
    return _family_form(Exact(program))


@functools.lru_cache(maxsize=1 << 16)
def _family_form(exact: Exact) -> Program:
    prog = _fma_expanded(exact.program)
    prog = prog.with_params([1.0] * len(prog.param_indices))
    return canonicalize(prog, "float64")


def family_hash(program: Program, probes: np.ndarray) -> str | None:
    """The family of functions a program spans (``g`` key), or None when the program is not finite
    at every probe with the probe parameter values (then its structure alone is its key)."""
    return _family_hash(Exact(family_form(program)), np.asarray(probes, np.float64).tobytes())


@functools.lru_cache(maxsize=1 << 16)
def _family_hash(exact: Exact, probes: bytes) -> str | None:
    form = exact.program
    k = len(form.param_indices)
    theta = np.resize(PROBE_PARAMS, k) if k else None
    with np.errstate(all="ignore"):
        y = evaluate(form, np.frombuffer(probes, np.float64), "float64", params=theta, exact_fma=False)
    y = y.reshape(-1)
    if not np.all(np.isfinite(y)):
        return None
    return "g" + _digest(y) + f"/{k}"


def candidate_keys(program: Program, probes: np.ndarray, dtype: str, suffix: str = "") -> list[str]:
    """A candidate's cache keys before fitting: structure, then family (when it has one).

    The family key carries the program's cost: ``fma x c1 c2`` (1 op) and ``add (mul x c1) c2``
    (2 ops) span one family, but an answer from the 2-op program would put the 1-op candidate on
    the front at 2 ops, and lose the cheaper program.
    """
    keys = ["s" + structural_hash(program, dtype) + suffix]
    fam = family_hash(program, probes)
    if fam is not None:
        keys.append(f"{fam}@{cost(program):g}{suffix}")
    return keys


def frame_key(constants: dict[str, float] | None) -> str:
    """A hash suffix for a candidate's frame constants: one core in two frames is two functions."""
    if not constants:
        return ""
    text = ",".join(f"{k}={float(v).hex()}" for k, v in sorted(constants.items()))
    return "@" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class EquivalenceCache:
    """Maps hashes to entry ids; entries hold the fitted result."""

    def __init__(self, entries: dict[str, CacheEntry] | None = None, keys: dict[str, str] | None = None):
        self.entries: dict[str, CacheEntry] = dict(entries or {})
        self.keys: dict[str, str] = dict(keys or {})

    def lookup(self, keys) -> tuple[CacheEntry, str] | None:
        """The entry that answers a candidate with these keys, and the kind of the hit.

        The family key decides when there is one (a structure hash alone cannot tell every
        family apart); without it, the structure key.  A hit is a ``structure`` hit when the
        entry was stored under the candidate's structure key, a ``family`` hit otherwise.
        """
        family = [k for k in keys if k.startswith("g")]
        decisive = family or [k for k in keys if k.startswith("s")]
        for h in decisive:
            entry_id = self.keys.get(h)
            if entry_id is not None:
                entry = self.entries[entry_id]
                same = any(self.keys.get(k) == entry_id for k in keys if k.startswith("s"))
                return entry, ("structure" if same else "family")
        return None

    def store(self, keys: list[str], result: CacheEntry) -> tuple[CacheEntry, bool]:
        """Record a fitted result; returns (the entry its family now answers with, converged).

        The candidate's structure and family keys name the better of the entry they named and
        the new result.  The fitted-function key names the best program known to compute that
        function; it never decides what a family answers with: functions equal up to the
        quantization differ by a few ulps, and an answer from another structure would cost this
        one its place at its own cost.  A better result is a new entry (entries are never changed
        in place, so no key comes to name a function it did not).  ``converged``: the fitted
        function was known already under another structure or family.
        """
        fam = [k for k in keys if not k.startswith("v")]
        fitted = [k for k in keys if k.startswith("v")]
        own = {self.keys[k] for k in fam if k in self.keys}
        same_fn = {self.keys[k] for k in fitted if k in self.keys}
        converged = bool(same_fn - own)
        best = min((self.entries[i] for i in sorted(own)), key=lambda e: e.error, default=None)
        if best is None or result.error < best.error:
            best = result.replace(key=f"e{len(self.entries)}")
            self.entries[best.key] = best
        for h in fam:
            self.keys[h] = best.key
        for h in fitted:
            known = self.entries.get(self.keys.get(h, ""))
            if known is None or best.error < known.error:
                self.keys[h] = best.key
        return best, converged

    def forget(self, stale) -> int:
        """Stop answering with the entries ``stale(entry)`` names (their keys go; the entries stay,
        unreachable, so entry names are never reused); returns how many keys went.

        A result is measured against the problem as it was when it was fitted: when dense checks
        add hard points to the validation set, the errors of programs close enough to be
        validated are out of date, and a family answered from them would enter the front with
        an error the program no longer has."""
        gone = [h for h, i in self.keys.items() if stale(self.entries[i])]
        for h in gone:
            del self.keys[h]
        return len(gone)

    def to_dict(self) -> dict:
        return {"entries": {k: e.to_dict() for k, e in self.entries.items()}, "keys": self.keys}

    @classmethod
    def from_dict(cls, data: dict) -> "EquivalenceCache":
        """Parse and check a checkpointed cache (ValueError naming a malformed entry)."""
        if not isinstance(data, dict) or not isinstance(data.get("entries", {}), dict) \
                or not isinstance(data.get("keys", {}), dict):
            raise ValueError("cache is not a pair of tables")
        entries = {str(k): CacheEntry.from_dict(e, f"cache entry {k}") for k, e in data.get("entries", {}).items()}
        keys = data.get("keys", {})
        if any(not isinstance(v, str) or v not in entries for v in keys.values()):
            raise ValueError("cache keys point to missing entries")
        return cls(entries, keys)
