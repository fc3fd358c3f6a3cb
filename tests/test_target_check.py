"""--target-error stops a float32 search only for a program that holds on 2**22 inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import search.run as run_mod
from dsl.text import parse_program
from fitness.evaluate import score
from fitness.problem import Problem
from fitness.reference import mp_values
from fitness.targets import get_target
from fitness.verify import VerifyReport, verify
from search.config import RunConfig
from search.report import front_table
from search.results import complete_program, load_run
from search.run import resume, run
from search.worker import evaluate_batch
from search.records import Candidate

TINY = dict(target="exp2", domain=(0.0, 1.0), budget_evals=200, population_size=8, tournament_size=4,
            n_points=256, time_limit=120.0, workers=1, max_ops=6, seed=2)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _events(run_dir, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == kind]


def test_target_reached_only_after_a_dense_check(tmp_path):
    rd = tmp_path / "r"
    res = run(RunConfig(**TINY, target_error=300.0, run_dir=str(rd)), quiet=True)
    assert res.stopped == "target"
    checks = _events(rd, "dense_check")
    assert checks and checks[-1]["held"]
    record = load_run(str(rd))
    held = [e for e in record.front if e.dense_ulp is not None and e.error <= 300.0]
    assert held
    entry = held[0]
    # the recorded figure is the dense verification's own
    rep = verify(complete_program(record.config, entry), get_target("exp2"), 0.0, 1.0, "float32")
    assert rep.n_points > 4_000_000  # 2**22 drawn, duplicates merged
    assert entry.dense_ulp == rep.max_ulp
    assert f"dense checks (2^22 inputs; 2^16 for a target without a float64 function): {entry.cost:g} ops {rep.max_ulp:.4g} ULP" in front_table(record)


def test_a_program_failing_its_dense_check_does_not_stop_the_search(tmp_path, monkeypatch):
    calls = []

    def failing(config, entry, n_points=0):
        calls.append(entry.program)
        return VerifyReport("dense", 1 << 22, 1e9, 0.5, 1.0, 0.0, 0.0, "test")

    monkeypatch.setattr(run_mod, "dense_check", failing)
    rd = tmp_path / "r"
    res = run(RunConfig(**TINY, target_error=300.0, run_dir=str(rd)), quiet=True)
    assert res.stopped == "budget" and res.candidates == TINY["budget_evals"]
    assert calls, "no program reached the target: the test checks nothing"
    assert len(calls) == len(set(calls)), "a program that failed its check was checked again"
    state = json.loads((rd / "checkpoint.json").read_text())["state"]
    # failed programs carry their dense error everywhere, so nothing on the front claims the target
    assert all(e["error"] > 300.0 for e in state["best_per_cost"] if e["program"] in calls)
    assert all(e["error"] == 1e9 for e in state["cache"]["entries"].values() if e["program"] in calls)
    assert all(e["held"] is False for e in _events(rd, "dense_check"))


def test_real_mode_and_no_target_need_no_dense_check(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "dense_check", lambda *a, **k: pytest.fail("dense check in a run without one"))
    run(RunConfig(**dict(TINY, budget_evals=40), run_dir=str(tmp_path / "a")), quiet=True)
    res = run(RunConfig(**dict(TINY, budget_evals=40), mode="real", dtype="float64", target_error=0.5,
                        run_dir=str(tmp_path / "b")), quiet=True)
    assert res.stopped == "target"


def test_failed_checks_hand_their_worst_inputs_to_the_validation_set(tmp_path, monkeypatch):
    spikes = (0.123456789, 0.5, 0.987654321)

    def failing(config, entry, n_points=0):
        return VerifyReport("dense", 1 << 22, 1e9, spikes[0], 1.0, 0.0, 0.0, "test", spikes)

    monkeypatch.setattr(run_mod, "dense_check", failing)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run(RunConfig(**TINY, target_error=300.0, run_dir=str(whole)), quiet=True)
    state = json.loads((whole / "checkpoint.json").read_text())["state"]
    assert state["hard_points"] == list(spikes)  # once, however many checks failed
    # the points travel in the checkpoint: a resumed run is the same run
    run(RunConfig(**dict(TINY, budget_evals=90), target_error=300.0, run_dir=str(parts)), quiet=True)
    resume(parts, budget_evals=TINY["budget_evals"], quiet=True)
    a, b = (json.loads((d / "checkpoint.json").read_text())["state"] for d in (whole, parts))
    for st in (a, b):
        st.pop("elapsed")
        st["history"] = [h[:1] + h[2:] for h in st["history"]]
    assert a == b


def test_hard_points_extend_the_validation_set_and_can_only_raise_errors():
    problem = Problem.build(RunConfig(**TINY).problem_spec)
    spikes = np.array([0.25, 0.7071067690849304, 2.0, -1.0], np.float32)  # outside the domain: dropped
    hard = problem.with_hard_points(spikes)
    assert len(hard.val_x) == len(problem.val_x) + 2
    assert np.array_equal(hard.val_x[-2:], np.float32([0.25, 0.7071067690849304]))
    ref = mp_values(get_target("exp2"), hard.val_x[-2:].astype(np.float64))
    assert np.array_equal(hard.val_ref.hi[-2:], ref.hi)
    prog = parse_program("v1 = param 1.0\nv2 = param 0.7\nv3 = fma x v2 v1\nreturn v3\n")
    assert score(prog, hard).error >= score(prog, problem).error
    # the worker scores with them when the driver sends them
    spec = json.dumps(problem.spec.to_dict(), sort_keys=True)
    cand = {"id": 0, "program": "v1 = param 1.0\nv2 = param 0.7\nv3 = fma x v2 v1\nreturn v3\n", "seed": 1}
    with_hard = evaluate_batch(spec, [cand], "ops", tuple(map(float, spikes)))[0]
    without = evaluate_batch(spec, [cand])[0]
    assert with_hard["error"] >= without["error"] or with_hard["program"] != without["program"]


def test_front_entries_are_dense_checked_and_a_failed_newcomer_gives_its_place_back():
    """In float32 ulp mode a front entry close to 1 ULP is checked on 2^22 inputs once it has held
    its cost for a while; a newcomer whose check turns out worse than the checked entry it
    displaced gives the place back, and its dense error follows its program."""
    from fitness.problem import Problem
    from search.engine import DENSE_CHECK_DELAY, Engine

    cfg = RunConfig(**{**TINY, "islands": 1})
    eng = Engine(cfg, Problem.build(cfg.problem_spec))
    prog = "v1 = param 0.5\nv2 = fma x v1 v1\nv3 = mul v2 x\nv4 = add v3 x\nreturn v4\n"
    other = prog.replace("0.5", "0.25")

    def tell(i, program, error, cost=3.0):
        eng.state.pending.append(Candidate(id=i, program=program, mutation="insert", hashes=(f"s{i}",), seed=1))
        eng.tell([{"id": i, "program": program, "error": error, "cost": cost}])

    tell(1, prog, 0.9)
    assert eng.awaiting_confirmation() == []  # not yet: it has to hold its cost first
    for i in range(2, 2 + DENSE_CHECK_DELAY):
        tell(i, prog, 50.0, cost=4.0)
    (a,) = [e for e in eng.awaiting_confirmation() if e.cost == 3.0]
    eng.confirm(3.0, 0.95, 0.5)
    assert eng.state.best_per_cost[3.0].error == 0.95 and eng.state.best_per_cost[3.0].dense_ulp == 0.95
    tell(500, other, 0.92)
    assert eng.state.best_per_cost[3.0].program == other
    assert [e.id for e in eng.awaiting_confirmation(now=True) if e.cost == 3.0] == [500]
    eng.confirm(3.0, 1.1, 0.25, worst_inputs=[0.25, 0.75])
    assert eng.state.best_per_cost[3.0].program == prog and eng.state.best_per_cost[3.0].error == 0.95
    assert 0.25 in eng.state.hard_points and 0.75 in eng.state.hard_points
    tell(501, other, 0.92)  # the same program again, from another fit: its dense error comes with it
    assert eng.state.best_per_cost[3.0].program == prog
    assert eng.state.islands[0].population[-1].error == 1.1


def test_hard_points_retire_the_cache_answers_they_make_out_of_date():
    """A result within the validation threshold was measured without the hard points a failed
    dense check adds: its family is fitted again afterwards; a far result still answers."""
    from fitness.evaluate import VALIDATE_BELOW_ULP
    from fitness.problem import Problem
    from search.engine import Engine

    cfg = RunConfig(**{**TINY, "islands": 1})
    eng = Engine(cfg, Problem.build(cfg.problem_spec))
    near = "v1 = param 0.5\nv2 = fma x v1 v1\nv3 = mul v2 x\nv4 = add v3 x\nreturn v4\n"
    far = "v1 = param 0.5\nv2 = mul x v1\nreturn v2\n"
    for i, (program, error) in enumerate([(near, 0.9), (far, 10 * VALIDATE_BELOW_ULP)], start=1):
        eng.state.pending.append(Candidate(id=i, program=program, mutation="insert", hashes=(f"s{i}", f"g{i}@3"),
                                           seed=1))
        eng.tell([{"id": i, "program": program, "error": error, "cost": 3.0 if program == near else 1.0}])
    cache = eng.state.cache
    assert cache.lookup(["s1", "g1@3"]) and cache.lookup(["s2", "g2@3"])
    eng.confirm(3.0, 0.9, 0.5)  # holds: nothing changes
    assert cache.lookup(["s1", "g1@3"])
    eng.confirm(1.0, 400.0, 0.5, worst_inputs=[0.5])  # a check that finds a spike adds a hard point
    assert 0.5 in eng.state.hard_points
    assert cache.lookup(["s1", "g1@3"]) is None  # validated: out of date, fitted again
    assert cache.lookup(["s2", "g2@3"]) is not None  # never validated: its error stands
    restored = type(eng.state).from_dict(json.loads(json.dumps(eng.state.to_dict())))
    assert restored.cache.lookup(["s1", "g1@3"]) is None  # the checkpoint keeps the forgetting


@pytest.mark.parametrize("text", [
    # 6 ops, 0.87 ULP: most inputs rounded correctly, so only the others get an exact error
    "v1 = param 0x1.cb0fdep-13\nv2 = param 0x1.44a5a2p-10\nv3 = fma x v1 v2\nv4 = param 0x1.3d5b98p-7\n"
    "v5 = fma x v3 v4\nv6 = param 0x1.c67e64p-5\nv7 = fma x v5 v6\nv8 = param 0x1.ebfdfep-3\nv9 = fma v7 x v8\n"
    "v10 = param 0x1.62e428p-1\nv11 = fma x v9 v10\nv12 = param 0x1.0p0\nv13 = fma x v11 v12\nreturn v13",
    # 2 ops, 2e4 ULP: no input rounded correctly, every error computed
    "v1 = param 0x1.6041bcp-2\nv2 = param 0x1.4d560ep-1\nv3 = fma x v1 v2\nv4 = param 0x1.00a244p0\n"
    "v5 = fma x v3 v4\nreturn v5",
])
def test_the_dense_check_counts_every_point_as_a_full_error_computation_would(text):
    """The dense check computes exact errors only where the program misrounds; its maximum, mean,
    correctly rounded share and worst inputs are those of the error on every point."""
    from backends.numpy_backend import evaluate
    from fitness.metrics import correctly_rounded, ulp_errors
    from fitness.points import dense_points
    from fitness.reference import fast_reference

    program, target, n = parse_program(text), get_target("exp2"), 1 << 16
    rep = verify(program, target, 0.0, 1.0, "float32", n_dense=n, keep_worst=64)
    x = dense_points(0.0, 1.0, "float32", n=n)
    ref = fast_reference(target, x, "float32")
    y = evaluate(program, x, "float32")
    err = ulp_errors(y, ref.hi, ref.lo, "float32")
    assert rep.max_ulp == err.max() and rep.worst_x == x[np.argmax(err)]
    assert rep.mean_ulp == pytest.approx(err.mean(), rel=1e-12)
    assert rep.frac_correctly_rounded == np.mean(y == correctly_rounded(ref.hi, ref.lo, "float32"))
    assert sorted(err[np.isin(x, rep.worst_inputs)], reverse=True)[:64] == sorted(err, reverse=True)[:64]
