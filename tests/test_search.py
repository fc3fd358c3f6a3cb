"""The search: determinism, the equivalence cache, functional hashing, failed candidates, fronts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import search.engine as engine_mod
from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize, structural_hash
from dsl.program import cost
from dsl.text import format_program, parse_program
from fitness.problem import Problem
from search import checkpoint
from search.cache import EquivalenceCache, candidate_keys, family_hash, functional_hash, quantize
from search.config import RunConfig
from search.engine import Engine
from search.records import CacheEntry, FrontEntry
from search.front import cheapest_within, improves, most_accurate_within, pareto, pareto_ranks
from search.run import run
from search.worker import evaluate_batch, evaluate_one

TINY = dict(target="exp2", domain=(0.0, 1.0), budget_evals=60, population_size=8, tournament_size=4,
            n_points=256, time_limit=60.0, workers=1, max_ops=6, islands=1)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


@pytest.fixture
def problem() -> Problem:
    return Problem.build(RunConfig(**TINY).problem_spec)


def P(text: str):
    return canonicalize(parse_program(text))


def _state(run_dir: Path) -> dict:
    """The checkpointed engine state without wall-clock fields."""
    data = json.loads((Path(run_dir) / checkpoint.NAME).read_text())
    st = data["state"]
    st.pop("elapsed")
    st["history"] = [h[:1] + h[2:] for h in st["history"]]  # [candidates, elapsed, cost, error]
    return st


# --- determinism ---------------------------------------------------------------------------------
def test_same_seed_one_worker_gives_identical_runs(tmp_path):
    a = run(RunConfig(**TINY, seed=5, run_dir=str(tmp_path / "a")), quiet=True)
    b = run(RunConfig(**TINY, seed=5, run_dir=str(tmp_path / "b")), quiet=True)
    run(RunConfig(**TINY, seed=6, run_dir=str(tmp_path / "c")), quiet=True)
    assert a.candidates == b.candidates == 60
    assert a.front == b.front
    sa, sb, sc = _state(tmp_path / "a"), _state(tmp_path / "b"), _state(tmp_path / "c")
    assert sa["islands"] == sb["islands"]
    assert sa["best_per_cost"] == sb["best_per_cost"]
    assert sa["cache"] == sb["cache"]
    assert sa["rng_state"] == sb["rng_state"]
    assert sa == sb
    # the front file agrees too
    fa = json.loads((tmp_path / "a" / "front.json").read_text())["front"]
    fb = json.loads((tmp_path / "b" / "front.json").read_text())["front"]
    assert fa == fb
    # another seed is another run (so the equality above is not vacuous)
    assert sc["islands"] != sa["islands"]


# --- the equivalence cache -----------------------------------------------------------------------
def _scripted(monkeypatch, programs):
    """Make the engine's initial random programs come from ``programs``, in order."""
    queue = list(programs)

    def fake_random_program(rng, ops, n_ops, dtype="float32"):
        rng.integers(2)  # keep consuming the generator, like the real one
        return queue.pop(0)

    monkeypatch.setattr(engine_mod, "random_program", fake_random_program)
    return queue


def _result(cand, error: float, cost_: float) -> dict:
    return {"id": cand.id, "program": cand.program, "error": error, "cost": cost_,
            "summary": {"max_ulp": error}, "failed": None}


P1 = "p = param 0.5\na = mul x p\nb = add a x\nreturn b"
P1_EQUIV = "p = param 0.7\nq = sqrt x\na = mul p x\nb = add x a\nreturn b"  # commuted, dead code, other value
P_FMA = "p = param 0.5\nq = param 0.25\ny = fma x p q\nreturn y"
P_MULADD = "p = param 0.7\nq = param 1.5\na = mul x p\ny = add a q\nreturn y"  # another structure, one family
P_ASSOC1 = "p = param 0.5\ns = mul x x\na = add x s\ny = add a p\nreturn y"
P_ASSOC2 = "p = param 0.9\ns = mul x x\na = add s p\ny = add x a\nreturn y"
P_FMA_MORE = "p = param 0.5\nq = param 0.25\nr = param 0.0\na = fma x p q\ny = fma x r a\nreturn y"  # one more parameter
P_OTHER = "a = mul x x\nreturn a"
P_OTHER2 = "a = sqrt x\nreturn a"


def test_structurally_equivalent_candidate_is_answered_from_the_cache(monkeypatch, problem):
    p1, p2, p3 = P(P1), P(P1_EQUIV), P(P_OTHER)
    assert structural_hash(p1) == structural_hash(p2)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY), problem)
    (c1,) = eng.ask(1)
    assert c1.program == format_program(p1) and eng.state.n_hits == 0
    eng.tell([_result(c1, 5.0, 2.0)])
    (c3,) = eng.ask(1)  # p2 is answered from the cache on the way; p3 needs evaluating
    assert c3.program == format_program(p3)
    assert eng.state.n_hits == 1
    assert [c.id for c in eng.state.pending] == [c3.id]
    hit = eng.state.population[-1]
    assert hit.id == c1.id + 1 and hit.error == 5.0 and hit.program == c1.program
    assert eng.state.n_told == 2 and eng.state.n_evaluated == 1
    assert eng.hit_rate == 0.5


def test_same_family_candidate_is_answered_from_the_cache(monkeypatch, problem):
    """(x + x^2) + c and x + (x^2 + c): two structures, one family, one cost: the second is answered
    from the first's fit.  fma x c1 c2 and add (mul x c1) c2 span one family too, at two costs:
    neither answers for the other (the 1-op program would be lost to the 2-op one)."""
    fma, muladd = P(P_FMA), P(P_MULADD)
    assert family_hash(fma, problem.probes) == family_hash(muladd, problem.probes)
    assert candidate_keys(fma, problem.probes, "float32")[1] != candidate_keys(muladd, problem.probes, "float32")[1]
    p1, p2, p3 = P(P_ASSOC1), P(P_ASSOC2), P(P_OTHER)
    assert structural_hash(p1) != structural_hash(p2)
    assert family_hash(p1, problem.probes) == family_hash(p2, problem.probes)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY), problem)
    (c1,) = eng.ask(1)
    eng.tell([_result(c1, 7.0, cost(p1))])
    (c3,) = eng.ask(1)
    assert c3.program == format_program(p3)
    assert eng.state.n_hits == 1 and eng.state.hits["family"] == 1 and eng.state.population[-1].error == 7.0


def test_a_child_with_one_more_parameter_is_fitted(monkeypatch, problem):
    """A new parameter that starts neutral leaves the function as it was, not the family: before
    fitting the child computes its parent's function, and it is fitted all the same."""
    p1, p2, p3 = P(P_FMA), P(P_FMA_MORE), P(P_OTHER)
    x = problem.x
    assert np.array_equal(evaluate(p1, x, "float64"), evaluate(p2, x, "float64"))
    assert functional_hash(p1, problem.probes) == functional_hash(p2, problem.probes)
    assert family_hash(p1, problem.probes) != family_hash(p2, problem.probes)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY), problem)
    (c1,) = eng.ask(1)
    eng.tell([_result(c1, 7.0, 1.0)])
    (c2,) = eng.ask(1)
    assert c2.program == format_program(p2) and eng.state.n_hits == 0


def test_structures_that_converge_to_one_function_are_counted(monkeypatch, problem):
    p1, p2, p3 = P(P_FMA), P(P_FMA_MORE), P(P_OTHER)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY), problem)
    (c1,) = eng.ask(1)
    eng.tell([_result(c1, 7.0, 1.0)])
    (c2,) = eng.ask(1)
    eng.tell([dict(_result(c2, 8.0, 2.0), program=c1.program)])  # fitted to the same function
    assert eng.state.hits["converged"] == 1
    # counted, and the function's key names the better program; each family keeps its own answer
    assert eng.state.cache.lookup(c2.hashes)[0].error == 8.0
    fitted = functional_hash(parse_program(c1.program), problem.probes)
    assert eng.state.cache.entries[eng.state.cache.keys[fitted]].error == 7.0


def test_without_caching_the_equivalent_candidate_is_evaluated(monkeypatch, problem):
    p1, p2, p3 = P(P1), P(P1_EQUIV), P(P_OTHER)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY, caching=False), problem)
    (c1,) = eng.ask(1)
    eng.tell([_result(c1, 5.0, 2.0)])
    (c2,) = eng.ask(1)
    assert c2.program == format_program(p2)
    assert eng.state.n_hits == 0 and not eng.state.cache.entries


def test_failed_result_is_not_cached(monkeypatch, problem):
    p1, p2, p3 = P(P1), P(P1_EQUIV), P(P_OTHER)
    _scripted(monkeypatch, [p1, p2, p3])
    eng = Engine(RunConfig(**TINY), problem)
    (c1,) = eng.ask(1)
    eng.tell([dict(_result(c1, math.inf, 2.0), failed="worker failed: BrokenProcessPool", summary=None)])
    (c2,) = eng.ask(1)  # a worker crash says nothing about the program: it is evaluated again
    assert c2.program == format_program(p2) and eng.state.n_hits == 0
    assert eng.state.n_failed == 1


PROG_A, PROG_B, PROG_C = "return x", "y = neg x\nreturn y", "y = sqrt x\nreturn y"


def test_cache_keeps_the_better_result():
    # (programs as the cache stores them: text that parses, since a checkpointed cache is checked)
    cache = EquivalenceCache()
    e1, conv = cache.store(["s1", "g1"], CacheEntry(program=PROG_A, error=3.0, cost=1.0))
    assert not conv
    e2, _ = cache.store(["s2", "g1"], CacheEntry(program=PROG_B, error=5.0, cost=1.0))
    assert e2.program == PROG_A and cache.lookup(["s2", "g1"])[0].program == PROG_A
    e3, _ = cache.store(["s3", "g1"], CacheEntry(program=PROG_C, error=1.0, cost=1.0))
    assert e3.program == PROG_C and cache.lookup(["s1", "g1"])[0].program == PROG_C
    assert cache.lookup(["s3", "g1"]) == (e3, "structure")
    assert cache.lookup(["s9", "g1"]) == (e3, "family")
    assert cache.lookup(["nope"]) is None
    assert cache.lookup(["s1", "g2"]) is None  # the family decides: a known structure of another family is not a hit
    assert e1.program == PROG_A and e1.key != e3.key  # a better result is a new entry, never an edit
    again = EquivalenceCache.from_dict(json.loads(json.dumps(cache.to_dict())))
    assert again.lookup(["s2"]) == cache.lookup(["s2"])


def test_fitted_function_keys_never_decide_a_familys_answer():
    """Two structures that converge to one function (equal up to the quantization: a few ulps
    apart) are counted, but each family keeps its own best answer: sharing one entry would cost one
    of them its place at its own cost; and the function's key only names programs computing it."""
    cache = EquivalenceCache()
    h6, _ = cache.store(["sH6", "gH6", "vF"], CacheEntry(program="horner6", error=0.85, cost=6.0))
    h7, conv = cache.store(["sH7", "gH7", "vF"], CacheEntry(program="horner7", error=0.78, cost=7.0))
    assert conv and h7.program == "horner7" and cache.keys["vF"] == h7.key
    again, conv = cache.store(["sH6", "gH6", "vF"], CacheEntry(program="horner6b", error=0.84, cost=6.0))
    assert conv and again.program == "horner6b"  # not horner7: the cost-6 family keeps its own
    assert cache.lookup(["sH6", "gH6"])[0].program == "horner6b"
    assert cache.keys["vF"] == h7.key  # the best program computing F
    r, _ = cache.store(["sR", "gR", "vG"], CacheEntry(program="rational", error=3.0, cost=5.0))
    e, conv = cache.store(["sC", "gR", "vF"], CacheEntry(program="c", error=900.0, cost=5.0))
    assert conv and e is r and cache.keys["vF"] == h7.key  # F never names the rational


# --- functional hashing --------------------------------------------------------------------------
def test_quantize_merges_signed_zeros_and_maps_specials():
    q = quantize(np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, -1.0, 1e-300, 2.0]))
    assert q[0] == q[1]
    assert q[2] == q[3]  # every NaN is one token
    assert len({int(v) for v in q[[0, 2, 4, 5, 6, 7, 8, 9]]}) == 8  # otherwise all distinct
    # values equal up to rounding noise in the last mantissa bits share a token
    assert quantize(np.array([1.0]))[0] == quantize(np.array([1.0 + 2.0**-40]))[0]
    assert quantize(np.array([1.0]))[0] != quantize(np.array([1.0 + 2.0**-15]))[0]


def test_functional_hash_merges_signed_zeros_and_treats_nan_specially():
    probes = np.linspace(0.05, 0.95, 17).astype(np.float32)
    h = lambda t: functional_hash(parse_program(t), probes)  # noqa: E731
    # -0 and +0 outputs
    assert h("a = mul x 0\nreturn a") == h("a = mul x 0\nb = neg a\nreturn b")
    # NaN everywhere, of either sign, is one function; it differs from inf and from finite values
    nan1 = h("a = neg x\nb = sqrt a\nreturn b")
    nan2 = h("z = sub x x\nb = div z z\nreturn b")
    nan3 = h("a = neg x\nb = sqrt a\nc = neg b\nreturn c")
    assert nan1 == nan2 == nan3
    inf = h("z = sub x x\nb = div x z\nreturn b")
    ninf = h("z = sub x x\nb = div x z\nc = neg b\nreturn c")
    assert len({nan1, inf, ninf, h("a = mul x 0\nreturn a"), h("return x")}) == 5
    # a NaN at one probe only still tells functions apart
    assert h("a = sub x 0.5\nb = sqrt a\nreturn b") != h("a = sub x 0.5\nb = abs a\nc = sqrt b\nreturn c")
    # x*x*x and x*(x*x) are one function (reassociation canonicalization does not see)
    assert h("a = mul x x\nb = mul a x\nreturn b") == h("a = mul x x\nb = mul a x\nc = mul b 1\nreturn c")
    assert h("a = neg x\nb = neg a\nreturn b") == h("return x")


# --- pathological programs ------------------------------------------------------------------------
BAD = [
    "z = sub x x\ny = div x z\nreturn y",  # x / 0: inf, and 0/0 = NaN at x = 0
    "y = div 1 x\nreturn y",  # 1 / 0 at x = 0
    "a = mul x 1e30\nb = mul a 1e30\nreturn b",  # overflow
    "a = neg x\ny = sqrt a\nreturn y",  # NaN
    "p = param 1\nz = sub x x\ny = div p z\nreturn y",  # with a constant to fit
    "a = mul x x\nb = mul a 1e38\nc = mul b 1e38\nd = sub c c\nreturn d",  # inf - inf = NaN
]


@pytest.mark.parametrize("text", BAD)
def test_pathological_program_scores_infinite_error(problem, text):
    res = evaluate_one(problem, {"id": 0, "program": text, "seed": 1})
    assert res["error"] == math.inf
    assert res["cost"] == cost(parse_program(res["program"]))


def test_pathological_programs_never_enter_the_front(monkeypatch, problem):
    good = P("p = param 1\nq = param 0.7\ny = fma x q p\nreturn y")
    bad = [P(t) for t in BAD]
    queue = _scripted(monkeypatch, bad + [good])
    eng = Engine(RunConfig(**TINY), problem)
    spec = json.dumps(problem.spec.to_dict(), sort_keys=True)
    while queue:
        cands = eng.ask(1)  # (some bad programs share a functional hash: answered from the cache)
        if cands:
            eng.tell(evaluate_batch(spec, cands))
    assert eng.state.n_told == len(bad) + 1
    errors = [m.error for m in eng.state.population]
    assert errors[: len(bad)] == [math.inf] * len(bad)
    assert math.isfinite(errors[-1])
    front = eng.front()
    assert len(front) == 1 and front[0].program != format_program(bad[0])
    assert all(math.isfinite(e.error) for e in eng.state.best_per_cost.values())
    assert len(eng.state.best_per_cost) == 1
    assert eng.state.history and all(math.isfinite(h[3]) for h in eng.state.history)


# --- Pareto helpers -------------------------------------------------------------------------------
def _bpc(points):
    return {float(c): FrontEntry(id=i, program="return x", cost=float(c), error=float(e)) for i, (c, e) in enumerate(points)}


def test_pareto_front_of_hand_made_points():
    best = _bpc([(1, 10.0), (2, 5.0), (3, 7.0), (4, 1.0), (5, 1.0), (6, 0.5), (0, 100.0)])
    front = pareto(best)
    assert [(e.cost, e.error) for e in front] == [(0, 100.0), (1, 10.0), (2, 5.0), (4, 1.0), (6, 0.5)]
    assert pareto({}) == []
    assert [e.cost for e in pareto(_bpc([(3, 1.0), (1, 1.0)]))] == [1.0]  # equal error: the cheaper


def test_improves_and_selection_helpers():
    best = _bpc([(1, 10.0), (2, 5.0), (4, 1.0), (6, 0.5)])
    assert improves(best, FrontEntry(id=99, program="return x", cost=3.0, error=100.0))  # a new cost is always an improvement
    assert improves(best, FrontEntry(id=99, program="return x", cost=2.0, error=4.9))
    assert not improves(best, FrontEntry(id=99, program="return x", cost=2.0, error=5.0))  # ties keep the incumbent
    assert not improves(best, FrontEntry(id=99, program="return x", cost=2.0, error=6.0))
    assert cheapest_within(best, 5.0).cost == 2.0
    assert cheapest_within(best, 1.0).cost == 4.0
    assert cheapest_within(best, 0.1) is None
    assert most_accurate_within(best, 4.0).cost == 4.0
    assert most_accurate_within(best, 100.0).cost == 6.0
    assert most_accurate_within(best, 0.5) is None


def test_pareto_ranks():
    pts = [(1.0, 1.0), (2.0, 2.0), (0.5, 3.0), (3.0, 0.5), (2.0, 2.0), (1.0, 1.0), (5.0, 5.0), (math.inf, 0.0)]
    ranks = pareto_ranks(pts)
    assert ranks == [0, 1, 0, 0, 1, 0, 2, 0]
    assert pareto_ranks([]) == []
    assert pareto_ranks([(1.0, 1.0)]) == [0]


# --- islands and stops ------------------------------------------------------------------------------
def _drive(eng, problem, n):
    spec = json.dumps(problem.spec.to_dict(), sort_keys=True)
    while eng.state.n_told < n:
        cands = eng.ask(1)
        if cands:
            eng.tell(evaluate_batch(spec, cands))


def test_islands_breed_apart_and_exchange_their_fronts(problem):
    cfg = RunConfig(**{**TINY, "islands": 2, "migration_every": 30, "budget_evals": None})
    eng = Engine(cfg, problem)
    _drive(eng, problem, 29)
    assert all(isl.population for isl in eng.state.islands)
    assert {c.island for c in eng.state.pending} <= {0, 1}
    ids0 = {m.id for m in eng.state.islands[0].population}
    ids1 = {m.id for m in eng.state.islands[1].population}
    assert not ids0 & ids1  # nothing shared before the first migration
    fronts = [pareto(isl.best_per_cost) for isl in eng.state.islands]
    _drive(eng, problem, 30)
    # each island received its ring neighbour's front
    got1 = {m.id for m in eng.state.islands[1].population}
    assert {e.id for e in fronts[0]} <= got1 | {e.id for e in fronts[1]}
    assert eng.state.next_migration == 60


def test_stagnation_restarts_an_island_and_keeps_the_front(problem):
    cfg = RunConfig(**{**TINY, "islands": 2, "stagnation": 40, "budget_evals": None, "max_ops": 2})
    eng = Engine(cfg, problem)
    _drive(eng, problem, 200)
    events = eng.drain_events()
    assert eng.state.restarts >= 1 and events and all(e["event"] == "restart" for e in events)
    assert {"island", "why", "candidates"} <= set(events[0])
    assert events[0]["why"] == "stagnation"
    assert eng.front()  # the front outlives restarts
    assert eng.drain_events() == []


def test_a_time_limit_without_a_budget_uses_its_time(tmp_path):
    cfg = RunConfig(**{**TINY, "budget_evals": None, "time_limit": 4.0}, run_dir=str(tmp_path / "r"))
    res = run(cfg, quiet=True)
    assert res.stopped == "time" and res.why == "time limit of 4 s reached"
    assert res.candidates > 60  # TINY's budget would have stopped it here
    stop = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()][-1]
    assert stop["event"] == "stop" and stop["why"] == res.why and set(stop["hits"]) == {
        "identity", "structure", "family", "converged"}


def test_family_hash_ignores_parameter_values_and_operand_order(problem):
    a = P("p = param 0.3\nq = param 2.0\nr = mul x p\ny = add q r\nreturn y")
    b = P("p = param -7.0\nq = param 0.001\nr = mul p x\ny = add r q\nreturn y")
    c = P("p = param 1.0\nq = param 1.0\ny = fma p x q\nreturn y")
    assert family_hash(a, problem.probes) == family_hash(b, problem.probes) == family_hash(c, problem.probes)
    # c x + c (one parameter used twice) is another family than a x + b
    d = P("p = param 1.0\ny = fma p x p\nreturn y")
    assert family_hash(d, problem.probes) != family_hash(c, problem.probes)
    assert structural_hash(d) != structural_hash(c)
    # no family where the probe values make the program undefined: the structure is the key then
    e = P("p = param 1.0\nq = param 1.0\na = sub p q\nb = mul a x\nc = neg x\nd = sqrt c\ny = add d b\nreturn y")
    assert family_hash(e, problem.probes) is None


# --- niches for a target odd about (0, c) --------------------------------------------------------
IN_SQUARE = format_program(canonicalize(parse_program(
    "s = mul x x\nc1 = param 0.1\nc0 = param 0.2\np = fma s c1 c0\nc = param 0.5\ny = fma x p c\nreturn y")))
IN_X = format_program(canonicalize(parse_program(
    "c1 = param 0.1\nc0 = param 0.2\np = fma x c1 c0\nq = fma x p c1\nc = param 0.5\ny = fma x q c\nreturn y")))


@pytest.mark.parametrize("symmetry,queued", [("odd_offset", True), (None, False)])
def test_a_program_in_x_is_grown_when_it_leads_its_niche(problem, symmetry, queued):
    """For a target odd about (0, c) a program in x that is far behind the parity shape at its cost
    but the best program in x there is still expanded (the parity shape stalls where c + x·R cancels,
    and the rationals in x that overtake it later must grow through the middle costs)."""
    from dsl.growth import Hints
    from search.records import Candidate, Member

    assert cost(parse_program(IN_SQUARE)) == cost(parse_program(IN_X)) == 3
    eng = Engine(RunConfig(**TINY), problem, hints=Hints(symmetry, offset=0.5) if symmetry else Hints())
    isl = eng.state.islands[0]
    isl.population = [Member(id=i, program="v1 = param 1.0\nreturn v1\n", error=1e9, cost=0.0) for i in range(8)]
    eng.state.n_told = isl.n_told = 8
    for cid, prog, err in ((50, IN_SQUARE, 1.0), (51, IN_X, 1000.0)):
        eng.state.pending.append(Candidate(id=cid, program=prog, parent=1, mutation="insert", hashes=(str(cid),),
                                           seed=1, island=0))
        eng.tell([{"id": cid, "program": prog, "error": err, "cost": 3.0}])
    assert {e.parent for e in isl.expansions} == ({50, 51} if queued else {50})
    assert all(e.priority == 1 for e in isl.expansions if e.parent == 51)
