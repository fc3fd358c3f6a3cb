"""The kinds of record a search keeps, as frozen dataclasses, each with its one validator.

A record is built in the engine, or read back with ``Kind.from_dict(d, where)``: from a
checkpoint (``EngineState.from_dict``, which ``resume`` and ``report``/``export``/``verify`` reach
through the same ``results.read_checkpoint``), or from a worker's reply.  ``from_dict`` is the
only way in from outside, so every reader accepts and refuses the same records, with a
``ValueError`` naming the record; ``to_dict`` gives the JSON a checkpoint holds (optional fields
only when they are set).  Records never change: the engine replaces one with
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from dsl.text import DSLSyntaxError, parse_program

R = TypeVar("R", bound="Record")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _program(v) -> bool:
    if not isinstance(v, str):
        return False
    try:
        parse_program(v)
    except DSLSyntaxError:
        return False
    return True


def _frame(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _number(x) and math.isfinite(x) for k, x in v.items())


#: what each field must hold, by name (a field absent here is not checked beyond its presence)
_CHECKS = {
    "id": (_int, "a whole number"),
    "program": (_program, "a program that parses"),
    "error": (_number, "a number"),
    "cost": (_number, "a number"),
    "parent": (lambda v: v is None or _int(v), "a candidate id"),
    "mutation": (lambda v: v is None or isinstance(v, str), "a mutation name"),
    "frame": (lambda v: v is None or _frame(v), "a table of frame constants"),
    "summary": (lambda v: v is None or isinstance(v, dict), "an error summary"),
    "failed": (lambda v: v is None or isinstance(v, str), "a reason"),
    "from_cache": (lambda v: isinstance(v, bool), "true or false"),
    "island": (lambda v: v is None or _int(v), "an island number"),
    "dense_ulp": (lambda v: v is None or _number(v), "a number"),
    "dense_worst_x": (lambda v: v is None or _number(v), "a number"),
    "front_since": (_int, "a whole number"),
    "hashes": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(h, str) for h in v), "a list of hashes"),
    "seed": (_int, "a whole number"),
    "promising_below": (lambda v: v is None or _number(v), "a number"),
    "parent_error": (lambda v: v is None or _number(v), "a number"),
    "seconds": (_number, "a number"),
    "key": (lambda v: isinstance(v, str), "text"),
    "move": (lambda v: isinstance(v, str), "a move name"),
    "priority": (_int, "a whole number"),
    "shape": (lambda v: isinstance(v, str), "text"),
}
_FLOATS = {"error", "cost", "dense_ulp", "dense_worst_x", "promising_below", "parent_error", "seconds"}


@functools.cache
def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class Record:
    """What every kind shares: the JSON round trip and its validation."""

    #: fields written only when set (absent from the JSON when None)
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        out: dict[str, Any] = dict(self.__dict__)  # fields in declaration order (no slots)
        for name in self.OPTIONAL:
            if out[name] is None:
                del out[name]
        if "hashes" in out:
            out["hashes"] = list(out["hashes"])
        return out

    @classmethod
    def from_dict(cls: type[R], d, where: str, check: bool = True) -> R:
        """The record ``d`` holds; ValueError naming ``where`` unless it is well formed.

        ``check=False`` only for the island-epoch protocol, whose records the engine itself wrote a
        moment ago (in a worker): re-checking every member and queued expansion of every island at
        every epoch was most of the epoch driver's time.  Anything read from disk is checked."""
        if isinstance(d, cls):
            return d
        if not check:  # the engine's own records: take the fields as they are
            values = {n: d[n] for n in _names(cls) if n in d}
            if "hashes" in values:
                values["hashes"] = tuple(values["hashes"])
            return cls(**values)
        if not isinstance(d, dict):
            raise ValueError(f"{where} is not an object")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                if f.default is dataclasses.MISSING:
                    raise ValueError(f"{where} lacks {f.name!r}")
                continue
            v = d[f.name]
            ok, what = _CHECKS.get(f.name, (lambda _: True, ""))
            if check and not ok(v):
                raise ValueError(f"{where}: {f.name} is not {what}")
            if f.name in _FLOATS and v is not None:
                v = float(v)
            elif f.name == "hashes":
                v = tuple(v)
            values[f.name] = v
        return cls(**values)

    def replace(self: R, **changes) -> R:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Member(Record):
    """A population member: a fitted program on an island, and where it came from."""

    id: int
    program: str
    error: float
    cost: float
    parent: int | None = None
    mutation: str | None = None
    frame: dict | None = None  # the frame constants it was fitted with (an evolving frame)

    OPTIONAL: ClassVar[tuple[str, ...]] = ("frame",)


@dataclass(frozen=True)
class FrontEntry(Member):
    """The best program at one cost, on an island or on the run's front."""

    summary: dict | None = None  # its error summary on the search's points (``fitness.metrics``)
    failed: str | None = None
    from_cache: bool = False
    island: int | None = None  # the island that bred it
    dense_ulp: float | None = None  # its dense check (float32 ulp mode), once it has had one
    dense_worst_x: float | None = None
    front_since: int = 0  # the candidate count when it took its cost

    OPTIONAL: ClassVar[tuple[str, ...]] = ("frame", "failed", "island", "dense_ulp", "dense_worst_x")

    def member(self) -> Member:
        """The entry as a population member (what migration copies)."""
        return Member(self.id, self.program, self.error, self.cost, self.parent, self.mutation, self.frame)


@dataclass(frozen=True)
class Candidate(Record):
    """A program asked for and not yet told: what a worker fits and scores (a worker needs only
    ``id``, ``program`` and ``seed``; the rest is where the engine will enter the result)."""

    id: int
    program: str
    seed: int  # for its constant fitting
    parent: int | None = None
    mutation: str = "random"
    hashes: tuple[str, ...] = ()  # its cache keys before fitting (``search.cache.candidate_keys``)
    island: int = 0
    cost: float = 0.0
    promising_below: float | None = None  # refine and polish only a fit below this error
    frame: dict | None = None
    parent_error: float | None = None  # the parent's error, for a growth child (its lineage test)

    OPTIONAL: ClassVar[tuple[str, ...]] = ("promising_below", "frame", "parent_error")


@dataclass(frozen=True)
class Result(Record):
    """A worker's answer for one candidate: the fitted program and its score."""

    id: int
    program: str
    error: float
    cost: float
    summary: dict | None = None
    failed: str | None = None  # why it could not be scored (then its error is infinite)
    seconds: float = 0.0
    frame: dict | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("frame",)


@dataclass(frozen=True)
class CacheEntry(Record):
    """A fitted result as the equivalence cache keeps it (``key``: its name in the cache, empty
    before it is stored)."""

    program: str
    error: float
    cost: float
    summary: dict | None = None
    failed: str | None = None
    frame: dict | None = None
    key: str = ""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("frame",)


@dataclass(frozen=True)
class Expansion(Record):
    """A queued growth: a program to grow by one template move (``dsl.growth``)."""

    parent: int
    program: str
    move: str
    priority: int  # 0: the program improved its island's best at its cost; 1: it was close
    shape: str  # its structure (with its frame constants): one queue item per shape
    error: float
    cost: float
    frame: dict | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("frame",)


KINDS: dict[str, type[Record]] = {"member": Member, "front": FrontEntry, "candidate": Candidate,
                                  "result": Result, "cache": CacheEntry, "expansion": Expansion}
