"""The search's records: one frozen dataclass and one validator per kind (``search.records``)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from search.records import KINDS, CacheEntry, Candidate, Expansion, FrontEntry, Member, Result

PROG = "v1 = param 0.5\nv2 = fma x v1 v1\nreturn v2\n"

EXAMPLES = {
    "member": Member(id=3, program=PROG, error=1.5, cost=1.0, parent=1, mutation="insert"),
    "front": FrontEntry(id=3, program=PROG, error=1.5, cost=1.0, parent=1, mutation="insert",
                        summary={"max_ulp": 1.5}, island=2, dense_ulp=1.6, dense_worst_x=0.25, front_since=40),
    "candidate": Candidate(id=7, program=PROG, seed=11, parent=3, mutation="perturb", hashes=("sA", "gB@1"),
                           island=1, cost=1.0, promising_below=6.0, frame={"SPLIT": 0.75}),
    "result": Result(id=7, program=PROG, error=float("inf"), cost=1.0, failed="ZeroDivisionError: x"),
    "cache": CacheEntry(program=PROG, error=0.9, cost=1.0, summary=None, key="e4"),
    "expansion": Expansion(parent=3, program=PROG, move="grow_square", priority=0, shape="abc", error=1.5, cost=1.0),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_through_json(kind):
    rec = EXAMPLES[kind]
    assert isinstance(rec, KINDS[kind])
    back = KINDS[kind].from_dict(json.loads(json.dumps(rec.to_dict())), "here")
    assert back == rec


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_records_are_frozen(kind):
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXAMPLES[kind].program = "return x"  # type: ignore[misc]
    assert EXAMPLES[kind].replace(program="return x").program == "return x"


def test_optional_fields_stay_out_of_the_json_until_set():
    d = Member(id=1, program=PROG, error=2.0, cost=1.0).to_dict()
    assert "frame" not in d and d["parent"] is None
    d = FrontEntry(id=1, program=PROG, error=2.0, cost=1.0).to_dict()
    assert "dense_ulp" not in d and "island" not in d


@pytest.mark.parametrize("kind, change, message", [
    ("member", {"program": "y = nope x\nreturn y"}, "population[0]: program is not a program that parses"),
    ("member", {"error": "1.0"}, "error is not a number"),
    ("member", {"error": float("nan")}, "error is not a number"),
    ("front", {"dense_ulp": "x"}, "dense_ulp is not a number"),
    ("front", {"frame": {"SPLIT": float("inf")}}, "frame is not a table of frame constants"),
    ("candidate", {"hashes": [1, 2]}, "hashes is not a list of hashes"),
    ("candidate", {"island": True}, "island is not an island number"),
    ("expansion", {"priority": 0.5}, "priority is not a whole number"),
])
def test_a_malformed_record_is_refused_naming_it(kind, change, message):
    d = dict(EXAMPLES[kind].to_dict(), **change)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        KINDS[kind].from_dict(d, "population[0]")


def test_a_record_lacking_a_field_is_refused_and_a_worker_needs_little():
    d = EXAMPLES["member"].to_dict()
    del d["cost"]
    with pytest.raises(ValueError, match="front entry 2 lacks 'cost'"):
        Member.from_dict(d, "front entry 2")
    with pytest.raises(ValueError, match="is not an object"):
        Member.from_dict([1, 2], "front entry 2")
    # a worker's input: id, program and seed are enough
    c = Candidate.from_dict({"id": 0, "program": PROG, "seed": 1}, "a candidate")
    assert c.parent is None and c.hashes == () and c.promising_below is None


def test_a_front_entry_becomes_a_member_for_migration():
    e = EXAMPLES["front"]
    m = e.member()
    assert type(m) is Member and (m.id, m.program, m.error, m.cost, m.parent, m.mutation) == (
        e.id, e.program, e.error, e.cost, e.parent, e.mutation)
