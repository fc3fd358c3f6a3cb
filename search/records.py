"""The kinds of record a search keeps, and the one validator every reader of a checkpoint uses.

The engine holds its records as plain JSON-ready dicts (they are its checkpoint, written as they
stand); every record that comes from disk is checked here, once, by kind, before anything reads
it: ``resume`` and ``report``/``export``/``verify`` read a run through the same
``results.read_checkpoint`` and ``EngineState.from_dict``, so they accept and refuse the same files.
"""

from __future__ import annotations

import math

from dsl.text import DSLSyntaxError, parse_program

#: the keys each kind of record must have (the validator checks their types)
KINDS: dict[str, tuple[str, ...]] = {
    "member": ("id", "program", "error", "cost"),  # a population member
    "front": ("id", "program", "error", "cost"),  # the best program at one cost
    "candidate": ("id", "program", "seed", "hashes", "mutation", "island"),  # asked, not yet told
    "cache": ("key", "program", "error", "cost"),  # a fitted result in the equivalence cache
    "expansion": ("parent", "program", "move", "priority", "shape", "error", "cost"),  # a queued growth
}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def check(record, kind: str, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``record`` is a well-formed record of ``kind``."""
    if not isinstance(record, dict):
        raise ValueError(f"{where} is not an object")
    for k in KINDS[kind]:
        if k not in record:
            raise ValueError(f"{where} lacks {k!r}")
    if not isinstance(record["program"], str):
        raise ValueError(f"{where}: program is not text")
    try:
        parse_program(record["program"])
    except DSLSyntaxError as exc:
        raise ValueError(f"{where}: program does not parse ({exc})") from None
    for k in ("error", "cost"):
        if k in KINDS[kind] and not _number(record[k]):
            raise ValueError(f"{where}: {k} is not a number")
    if "frame" in record and not (isinstance(record["frame"], dict) and all(
            isinstance(k, str) and _number(v) and math.isfinite(v) for k, v in record["frame"].items())):
        raise ValueError(f"{where}: frame constants are not a table of numbers")
    if "dense_ulp" in record and not _number(record["dense_ulp"]):
        raise ValueError(f"{where}: dense_ulp is not a number")
    if kind == "candidate":
        if not isinstance(record["hashes"], list) or not all(isinstance(h, str) for h in record["hashes"]):
            raise ValueError(f"{where}: hashes are not a list of strings")
        if not isinstance(record["island"], int) or isinstance(record["island"], bool):
            raise ValueError(f"{where}: island is not a number")
